"""Reports of a synthesis run: ``report.json`` (everything), ``report.md`` (tables), ``area.png``.

The JSON holds no timestamps and sorts its keys, so the same inputs give the same bytes. The PNG
needs matplotlib (the ``plot`` extra); without it the Markdown says so and no PNG is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..export import write_atomic
from .flows import NAND2_WEIGHTS, SETTINGS

__all__ = ["build_report", "write_reports", "markdown", "main_table"]


def build_report(results, unavailable, baseline, versions, liberty=None):
    """The report dict: per-configuration results plus what they were measured with (``liberty``:
    the :class:`~hw.synth.config.Liberty` of the ASIC flow, if it ran)."""
    base = next((r for r in results if r["id"] == baseline), None)
    base_area = _get(base, "asic", "area_um2") if base else None
    for r in results:
        area = _get(r, "asic", "area_um2")
        r["area_per_mac_um2"] = round(area / r["macs"], 3) if area and r["macs"] else None
        r["area_per_lane_um2"] = round(area / r["lanes"], 3) if area and r.get("lanes") else None
        r["area_vs_baseline"] = round(area / base_area, 3) if area and base_area else None
    chosen = {"path": liberty.label, "source": liberty.source} if liberty is not None else None
    return {"baseline": baseline, "configs": results, "not_available": unavailable,
            "settings": SETTINGS, "versions": versions, "liberty": chosen}


def _get(result, flow, key):
    value = result.get("flows", {}).get(flow, {})
    return value.get(key) if isinstance(value, dict) else None


def _variant(result, family, variant):
    """One FPGA run's results (empty if the flow did not run or failed)."""
    flow = result.get("flows", {}).get(family) or {}
    return (flow.get("variants") or {}).get(variant) or {}


def _fmt(value, digits=None):
    if value is None:
        return ""
    if digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


_MAIN_HEADER = ["unit", "configuration", "area µm²", "cells", "delay ns (source)", "ASIC Fmax MHz",
                "iCE40 LUT4", "ECP5 LUT4", "Fmax iCE40/ECP5 MHz", "µm² per MAC", "µm² per lane",
                "× baseline area"]


def main_table(report):
    """Lines of the main Markdown table (one row per configuration)."""
    rows = []
    for r in report["configs"]:
        delay = _get(r, "asic", "delay_ns")
        source = _get(r, "asic", "delay_source")
        fmax_fpga = "/".join(_fmt(_variant(r, fam, "nodsp").get("fmax_mhz"), 1) or "-" for fam in ("ice40", "ecp5"))
        rows.append([
            r["unit"], r["label"] or r["id"],
            _fmt(_get(r, "asic", "area_um2"), 1), _fmt(_get(r, "asic", "cell_count")),
            f"{delay:.3f} ({source})" if delay is not None else "",
            _fmt(_get(r, "asic", "fmax_mhz"), 1),
            _fmt(_variant(r, "ice40", "nodsp").get("luts")), _fmt(_variant(r, "ecp5", "nodsp").get("luts")),
            fmax_fpga if fmax_fpga != "-/-" else "",
            _fmt(r.get("area_per_mac_um2"), 1), _fmt(r.get("area_per_lane_um2"), 1),
            _fmt(r.get("area_vs_baseline"), 2),
        ])
    return _table(_MAIN_HEADER, rows)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def markdown(report, png_note):
    """The Markdown report text."""
    s_asic, s_ice, s_ecp = SETTINGS["asic"], SETTINGS["ice40"], SETTINGS["ecp5"]
    lines = ["# lowbit synthesis report", ""]
    lines += main_table(report)
    lines += ["", f"Baseline for \"× baseline area\": `{report['baseline']}` (total ASIC area ratio). "
              "\"Per MAC\" divides the ASIC area by the multiply-accumulates per cycle (1 for an FMA, "
              "`lanes` for mac4 and the accumulator, the products per beat for block_dot and the accumulator's "
              "block front; empty for the rounder); \"per lane\" divides it by the values a quantizer or "
              "reducer (luq, tpr_quantize, amax; block_quantize: the elements of its block) takes per "
              "cycle, its share of the LFSR and the per-beat logic included. ASIC Fmax is given for "
              "pipelined configurations (stages > 0) only. FPGA columns are the no-DSP runs.", ""]
    lines += ["## FPGA detail", ""]
    rows = []
    for r in report["configs"]:
        for fam in ("ice40", "ecp5"):
            for variant in ("dsp", "nodsp"):
                v = _variant(r, fam, variant)
                if not v:
                    continue
                note = v.get("error") or v.get("fmax_note") or ""
                rows.append([r["id"], fam, variant, _fmt(v.get("luts")), _fmt(v.get("ffs")),
                             _fmt(v.get("carries")), _fmt(v.get("dsps")), _fmt(v.get("fmax_mhz"), 1), note])
    lines += _table(["config", "family", "run", "LUT4", "FF", "carry", "DSP", "Fmax MHz", "note"], rows)
    lines += ["", "## Generic gates", ""]
    rows = [[r["id"], _fmt(_get(r, "generic", "cell_count")), _fmt(_get(r, "generic", "nand2_eq")),
             _fmt(_get(r, "generic", "depth"))] for r in report["configs"] if "generic" in r.get("flows", {})]
    lines += _table(["config", "gates", "NAND2 eq.", "depth (gates)"], rows)
    weights = ", ".join(f"{t.strip('$_')} {w:g}" for t, w in NAND2_WEIGHTS.items())
    lines += ["", f"NAND2-equivalent weights (static-CMOS transistors / 4): {weights}.", ""]
    errors = [(r["id"], e) for r in report["configs"] for e in r.get("errors", [])]
    if errors:
        lines += ["## Errors", ""] + [f"- `{cid}`: {e}" for cid, e in errors] + [""]
    if report["not_available"]:
        lines += ["## Not available", ""]
        lines += [f"- `{u['id']}` ({u['unit']}): {u['reason']}" for u in report["not_available"]] + [""]
    lines += ["## How these were measured", "",
              f"- ASIC: Yosys `synth -flatten`, `dfflibmap`, `abc -liberty` with {s_asic['abc_script']}, "
              f"cells {', '.join(s_asic['dont_use'])} excluded; no buffering or sizing. Delay: "
              f"{s_asic['timing']}; \"nldm estimate\" is lowbit's own table-based timing of the mapped "
              "netlist (used when OpenSTA's `sta` is not installed), \"opensta\" is OpenSTA.",
              *_liberty_line(report.get("liberty")),
              f"- iCE40 {s_ice['device']} {s_ice['package']} and ECP5 {s_ecp['device']} {s_ecp['package']}: "
              "`synth_ice40`/`synth_ecp5` counts of the unit alone; Fmax from nextpnr "
              f"(--freq {s_ice['freq_mhz']}/{s_ecp['freq_mhz']} MHz, --seed {s_ice['seed']}) with every unit "
              "port registered by a scan wrapper (register to register through the unit).",
              f"- Generic: `abc -g {SETTINGS['generic']['abc_gates']}`; depth from `ltp -noff`.",
              f"- {png_note}", "", "## Tool versions", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(report["versions"].items())]
    return "\n".join(lines) + "\n"


def _liberty_line(liberty):
    """The report's liberty bullet (none if the ASIC flow did not run)."""
    if not liberty:
        return []
    origin = "bundled with lowbit" if liberty["source"] == "bundled" else f"from {liberty['source']}"
    return [f"- Liberty: `{liberty['path']}` ({origin}); its hash is under tool versions."]


def _plot(report, path):
    """Bar chart of area per MAC; returns a note for the Markdown."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "area.png not written: matplotlib is not installed (pip install lowbit[plot])."
    rows = [r for r in report["configs"] if r.get("area_per_mac_um2")]
    if not rows:
        return "area.png not written: no configuration has an ASIC area per MAC."
    units = list(dict.fromkeys(r["unit"] for r in rows))
    colours = {u: f"C{k}" for k, u in enumerate(units)}
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(rows) + 2), 4.5))
    values = [r["area_per_mac_um2"] for r in rows]
    bars = ax.bar([r["id"] for r in rows], values, color=[colours[r["unit"]] for r in rows])
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
    baseline = next((r for r in report["configs"] if r["id"] == report.get("baseline")), None)
    if baseline and baseline.get("area_per_mac_um2"):
        ax.axhline(baseline["area_per_mac_um2"], color="grey", lw=0.8, ls="--")
        ax.annotate(f"baseline {baseline['id']}", (len(rows) - 0.5, baseline["area_per_mac_um2"]),
                    ha="right", va="bottom", fontsize=7, color="grey")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours[u]) for u in units], labels=units,
              fontsize=8)
    ax.set_ylabel("sky130 area per MAC (µm²)")
    ax.set_title("Area per multiply-accumulate")
    ax.tick_params(axis="x", labelrotation=60)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return "area.png: ASIC area per MAC by configuration."


def write_reports(report, out):
    """Write ``report.json``, ``report.md`` and (with matplotlib) ``area.png`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "report.json", json.dumps(report, sort_keys=True, indent=1) + "\n")
    note = _plot(report, out / "area.png")
    write_atomic(out / "report.md", markdown(report, note))
    return out / "report.json"
