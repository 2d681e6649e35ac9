"""A sweep's outputs: ``sweep.json`` (everything, deterministic), ``sweep.csv`` (one row per point),
``sweep.md`` (tables, the Pareto frontiers, failures) and the Pareto plots.

``pareto_area_delay.png`` puts every point's ASIC area against its critical-path delay;
``pareto_accuracy_area.png`` (only when trainings returned an ``accuracy``) puts accuracy against
ASIC area per MAC, one series per training. Frontier points (no other point is at least as good on
both axes and better on one) are drawn larger, joined and labelled. The plots need matplotlib
(the ``plot`` extra); without it ``sweep.md`` says so.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..export import write_atomic
from .execute import legacy_record

__all__ = ["build_sweep", "pareto_front", "write_sweep", "CSV_METRICS"]

#: The metric columns of ``sweep.csv`` after the parameters: (column, flow, key[, FPGA variant]).
CSV_METRICS = (
    ("asic_area_um2", "asic", "area_um2"), ("asic_cells", "asic", "cell_count"),
    ("asic_delay_ns", "asic", "delay_ns"), ("asic_delay_source", "asic", "delay_source"),
    ("asic_fmax_mhz", "asic", "fmax_mhz"),
    ("generic_gates", "generic", "cell_count"), ("generic_nand2_eq", "generic", "nand2_eq"),
    ("generic_depth", "generic", "depth"),
    ("ice40_luts", "ice40", "luts", "nodsp"), ("ice40_fmax_mhz", "ice40", "fmax_mhz", "nodsp"),
    ("ecp5_luts", "ecp5", "luts", "nodsp"), ("ecp5_fmax_mhz", "ecp5", "fmax_mhz", "nodsp"),
)


def _metric(record, flow, key, variant=None):
    value = (record.get("flows") or {}).get(flow)
    if not isinstance(value, dict):
        return None
    if variant is not None:
        value = (value.get("variants") or {}).get(variant) or {}
    return value.get(key)


def pareto_front(items, x, y, maximize_y=False):
    """Ids of the items (dicts with ``id``) on the frontier of ``x`` (lower is better) and ``y``
    (lower is better, or higher with ``maximize_y``), sorted by ``x``; items without both values
    take no part."""
    sign = -1 if maximize_y else 1
    pts = sorted((i[x], sign * i[y], i["id"]) for i in items if i.get(x) is not None and i.get(y) is not None)
    front, best = [], None
    for px, py, pid in pts:
        if best is None or py < best:
            front.append(pid)
            best = py
    return front


def build_sweep(sweep, run, liberty=None):
    """The ``sweep.json`` data of ``run`` (a :class:`~hw.sweep.execute.SweepRun` of ``sweep``):
    one record per point in file order (the ``lowbit synth`` fields plus ``status``, ``reason``,
    ``area_per_mac_um2``, ``area_per_lane_um2``, ``area_vs_baseline`` and, with trainings, ``train``), the frontiers, the
    tool versions the workers reported. No times or hosts, so equal results give equal bytes
    (``status`` still tells whether a point ran or came from the cache)."""
    points = []
    for outcome in run.outcomes:
        record = legacy_record(outcome)
        area = _metric(record, "asic", "area_um2")
        record["area_per_mac_um2"] = round(area / record["macs"], 3) if area and record["macs"] else None
        record["area_per_lane_um2"] = round(area / record["lanes"], 3) if area and record["lanes"] else None
        record["status"], record["reason"] = outcome.status, outcome.reason
        if outcome.point.trainings:
            record["train"] = {t.name: {"options": t.options, "runner": t.runner,
                                        "result": (outcome.jobs.get(t.folder) or {}).get("result")}
                               for t in outcome.point.trainings}
        points.append(record)
    base = next((r for r in points if r["id"] == sweep.baseline), None)
    base_area = _metric(base, "asic", "area_um2") if base else None
    for r in points:
        area = _metric(r, "asic", "area_um2")
        r["area_vs_baseline"] = round(area / base_area, 3) if area and base_area else None
    area_delay = pareto_front([{"id": r["id"], "area": _metric(r, "asic", "area_um2"),
                                "delay": _metric(r, "asic", "delay_ns")} for r in points], "area", "delay")
    accuracy = {}
    for name in _training_names(points):
        items = [{"id": r["id"], "area": r["area_per_mac_um2"], "accuracy": _accuracy(r, name)} for r in points]
        if any(i["accuracy"] is not None for i in items):
            accuracy[name] = pareto_front(items, "area", "accuracy", maximize_y=True)
    chosen = {"path": liberty.label, "source": liberty.source} if liberty is not None else None
    return {"sweep": sweep.name, "file": str(sweep.path), "set": sweep.set, "baseline": sweep.baseline,
            "points": points, "frontier": {"area_delay": area_delay, "accuracy_area_per_mac": accuracy},
            "versions": run.versions, "liberty": chosen}


def _training_names(points):
    return list(dict.fromkeys(n for r in points for n in (r.get("train") or {})))


def _accuracy(record, name):
    result = ((record.get("train") or {}).get(name) or {}).get("result") or {}
    value = result.get("accuracy")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _csv(data):
    points = data["points"]
    params = list(dict.fromkeys(k for r in points for k in r["params"]))
    trainings = _training_names(points)
    front = set(data["frontier"]["area_delay"])
    header = ["id", "unit", "label", "status", "reason", *params, *(m[0] for m in CSV_METRICS),
              "area_per_mac_um2", "area_per_lane_um2", "area_vs_baseline", "pareto_area_delay", *(f"train_{n}_accuracy" for n in trainings)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in points:
        values = [r["params"].get(p) for p in params]
        values = [",".join(map(str, v)) if isinstance(v, list) else v for v in values]
        metrics = [_metric(r, *m[1:]) for m in CSV_METRICS]
        has_asic = _metric(r, "asic", "area_um2") is not None
        writer.writerow([r["id"], r["unit"], r["label"], r["status"], r["reason"], *values, *metrics,
                         r["area_per_mac_um2"], r["area_per_lane_um2"], r["area_vs_baseline"],
                         (1 if r["id"] in front else 0) if has_asic else None,
                         *(_accuracy(r, n) for n in trainings)])
    return buf.getvalue()


def _fmt(value, digits=None):
    if value is None:
        return ""
    return f"{value:,.{digits}f}" if digits is not None else str(value)


def _markdown(data, run, notes):
    points = data["points"]
    counts = {s: sum(1 for r in points if r["status"] == s) for s in ("done", "cached", "failed", "unbuildable")}
    lines = [f"# lowbit sweep: {data['sweep']}", "",
             f"{len(points)} points from `{data['file']}` (set `{data['set']}`): {counts['done']} done, "
             f"{counts['cached']} cached, {counts['failed'] + counts['unbuildable']} failed "
             f"({counts['unbuildable']} do not build). Ran on a {run.pool} in {run.seconds:.1f} s wall time.", ""]
    trainings = _training_names(points)
    front = set(data["frontier"]["area_delay"])
    header = ["point", "unit", "configuration", "status", "area µm²", "delay ns", "µm² per MAC",
              "generic NAND2 eq.", *(f"accuracy {n}" for n in trainings), "area/delay frontier"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in points:
        row = [r["id"], r["unit"], r["label"], r["status"], _fmt(_metric(r, "asic", "area_um2"), 1),
               _fmt(_metric(r, "asic", "delay_ns"), 3), _fmt(r["area_per_mac_um2"], 1),
               _fmt(_metric(r, "generic", "nand2_eq"), 1), *(_fmt(_accuracy(r, n)) for n in trainings),
               "yes" if r["id"] in front else ""]
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    lines += ["", "## Pareto frontiers", ""]
    if front:
        lines.append("- ASIC area vs delay (both lower is better), by area: "
                     + ", ".join(f"`{i}`" for i in data["frontier"]["area_delay"]))
    else:
        lines.append("- ASIC area vs delay: no point has both (the asic flow did not run or failed).")
    for name, ids in data["frontier"]["accuracy_area_per_mac"].items():
        lines.append(f"- Accuracy ({name}, higher is better) vs area per MAC: " + ", ".join(f"`{i}`" for i in ids))
    lines += [f"- {n}" for n in notes]
    failed = [r for r in points if r["status"] in ("failed", "unbuildable")]
    if failed:
        lines += ["", "## Failed points", ""] + [f"- `{r['id']}`: {r['reason']}" for r in failed]
    lines += ["", "## Tool versions", ""]
    if len(data["versions"]) > 1:
        lines.append("Workers reported different tool versions; every result's cache key names its own.")
    for k, versions in enumerate(data["versions"]):
        prefix = f"worker set {k + 1}: " if len(data["versions"]) > 1 else ""
        lines += [f"- {prefix}{name}: {value}" for name, value in sorted(versions.items())]
    if data.get("liberty"):
        lines.append(f"- liberty file: `{data['liberty']['path']}` ({data['liberty']['source']})")
    return "\n".join(lines) + "\n"


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _scatter(plt, path, items, front, xlabel, ylabel, title, series=None):
    """One frontier plot: every item grey-ish, frontier items larger, joined and labelled."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    groups = series or {"": (items, front)}
    for k, (name, (group, ids)) in enumerate(groups.items()):
        colour = f"C{k}"
        xs = [i["x"] for i in group]
        ys = [i["y"] for i in group]
        ax.scatter(xs, ys, s=18, color=colour, alpha=0.45, label=f"{name} points".strip())
        on = sorted((i for i in group if i["id"] in ids), key=lambda i: i["x"])
        if on:
            ax.plot([i["x"] for i in on], [i["y"] for i in on], "-", color=colour, lw=1)
            ax.scatter([i["x"] for i in on], [i["y"] for i in on], s=60, color=colour, edgecolor="black",
                       zorder=3, label=f"{name} frontier".strip())
            for i in on:
                ax.annotate(i["id"], (i["x"], i["y"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, lw=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _plots(data, out):
    """Write the plots that have data; returns notes for ``sweep.md``."""
    points = data["points"]
    area_delay = [{"id": r["id"], "x": _metric(r, "asic", "area_um2"), "y": _metric(r, "asic", "delay_ns")}
                  for r in points]
    area_delay = [i for i in area_delay if i["x"] is not None and i["y"] is not None]
    accuracy = {}
    for name in data["frontier"]["accuracy_area_per_mac"]:
        items = [{"id": r["id"], "x": r["area_per_mac_um2"], "y": _accuracy(r, name)} for r in points]
        items = [i for i in items if i["x"] is not None and i["y"] is not None]
        if items:
            accuracy[name] = (items, set(data["frontier"]["accuracy_area_per_mac"][name]))
    for stale in ("pareto_area_delay.png", "pareto_accuracy_area.png"):  # from an earlier run
        Path(out, stale).unlink(missing_ok=True)
    notes = []
    if not area_delay:
        notes.append("No area/delay plot: no point has an ASIC area and delay.")
    if data["frontier"]["accuracy_area_per_mac"] and not accuracy:
        notes.append("No accuracy plot: no point has both an accuracy and an ASIC area per MAC.")
    if not area_delay and not accuracy:
        return notes
    plt = _pyplot()
    if plt is None:
        return notes + ["Pareto plots not written: matplotlib is not installed (pip install 'lowbit[plot]')."]
    if area_delay:
        _scatter(plt, Path(out, "pareto_area_delay.png"), area_delay, set(data["frontier"]["area_delay"]),
                 "sky130 area (µm²)", "critical-path delay (ns)", "ASIC area vs delay (frontier marked)")
        notes.append("`pareto_area_delay.png`: ASIC area against delay, frontier marked.")
    if accuracy:
        _scatter(plt, Path(out, "pareto_accuracy_area.png"), None, None, "sky130 area per MAC (µm²)", "accuracy",
                 "Accuracy vs area per MAC (frontier marked)", series=accuracy)
        notes.append("`pareto_accuracy_area.png`: accuracy against ASIC area per MAC, one series per training, "
                     "frontier marked.")
    return notes


def write_sweep(sweep, run, out, liberty=None):
    """Write ``sweep.json``, ``sweep.csv``, ``sweep.md`` and the plots into ``out``; returns the data."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = build_sweep(sweep, run, liberty)
    write_atomic(out / "sweep.json", json.dumps(data, sort_keys=True, indent=1) + "\n")
    write_atomic(out / "sweep.csv", _csv(data))
    notes = _plots(data, out)
    write_atomic(out / "sweep.md", _markdown(data, run, notes))
    return data
