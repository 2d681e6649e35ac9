"""``lowbit synth`` / ``python -m hw.synth``: one configuration, the default matrix, or the smoke set."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cliargs import UsageError, split_options, split_unit_args, unit_help
from ..tools import ToolError
from ..units import UnitError
from ..sweep.spec import SweepError
from . import timing
from .config import SynthError, config_from_args, find_liberty, find_unit, scripts_dir
from .flows import FLOWS, FlowEnv, tool_versions, unpack_liberty
from .report import build_report, main_table, write_reports

__all__ = ["cli_main", "USAGE", "flows_option", "jobs_option", "flow_environment"]

USAGE = """\
usage: lowbit synth UNIT [--param value ...] [options]   one configuration
       lowbit synth [--matrix FILE] [options]            the default matrix (or a sweep FILE)
       lowbit synth --smoke [options]                    one tiny design through every flow

options:
  --flows LIST     comma-separated subset of generic,asic,ice40,ecp5 (default: all)
  -j, --jobs N     parallel jobs (default 2)
  --out DIR        build folder (default build/synth, build/synth-smoke for --smoke)
  --liberty PATH   sky130 liberty (.lib or .lib.gz); default $LOWBIT_LIBERTY, else
                   $PDK_ROOT/sky130A/libs.ref/sky130_fd_sc_hd/lib/sky130_fd_sc_hd__tt_025C_1v80.lib
                   if that exists, else the copy bundled with lowbit (the same library)
  --force          ignore cached results
The default matrix is the sweep file hw/synth/scripts/matrix.toml (lowbit sweep runs any sweep file).
A matrix or smoke run writes report.json, report.md and area.png into the build folder, and the
sweep's sweep.json, sweep.csv, sweep.md and Pareto plot; a single configuration prints its row and
keeps its results in <out>/<config-id>/. A run with the asic flow prints the liberty it uses; the
reports name it too.
"""

_FLAGS = ("-j", "--jobs", "--out", "--liberty", "--flows", "--matrix")
_SWITCHES = ("--force", "--smoke", "-h", "--help")


def _parse(argv):
    """``(unit, params, options)``; ``unit`` is ``None`` for a matrix or smoke run."""
    if argv and not argv[0].startswith("-"):
        unit = find_unit(argv[0])
        params, opts = split_unit_args(unit, argv[1:], _FLAGS, _SWITCHES)
        if "matrix" in opts or "smoke" in opts:
            raise UsageError("--matrix and --smoke do not take a unit")
        return unit, params, opts
    opts = split_options("synth", argv, _FLAGS, _SWITCHES, "a unit name goes first")
    if "matrix" in opts and "smoke" in opts:
        raise UsageError("give --matrix or --smoke, not both")
    return None, {}, opts


def flows_option(text):
    """The flows named by ``--flows`` (in the order of ``FLOWS``); ``FLOWS`` for ``None``."""
    if text is None:
        return FLOWS
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in chosen if f not in FLOWS]
    if bad or not chosen:
        raise UsageError(f"--flows: expected names from {','.join(FLOWS)}, not {text!r}")
    return tuple(f for f in FLOWS if f in chosen)


def jobs_option(opts):
    """``-j``/``--jobs`` as a positive integer (default 2)."""
    text = opts.get("jobs", opts.get("j", "2"))
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise UsageError(f"--jobs: expected a positive integer, not {text!r}")
    return jobs


def _liberty(opts):
    """The liberty for the ASIC flow (see :func:`find_liberty`); a one-line error if it is missing."""
    chosen = find_liberty(opts.get("liberty"))
    if chosen.path.is_file():
        return chosen
    if chosen.source == "bundled":
        raise SynthError(f"the bundled liberty is missing: {chosen.path} (an incomplete lowbit installation: "
                         "reinstall it, give --liberty, or leave asic out of --flows)")
    raise SynthError(f"liberty file not found: {chosen.path} (from {chosen.source}; without --liberty and "
                     "LOWBIT_LIBERTY the bundled copy is used; or leave asic out of --flows)")


def flow_environment(flows, opts, out, remote=False):
    """``(env, liberty)``: what the flows share, and the chosen liberty (``None`` without asic).

    ``flows`` are all flows the run has. With ``remote`` (a Dask cluster) the workers look for
    OpenSTA themselves, so the local ``sta`` is not reported.
    """
    scripts = scripts_dir()
    chosen, liberty = None, None
    if "asic" in flows:
        chosen = _liberty(opts)
        try:
            liberty = unpack_liberty(chosen.path, out).resolve()
        except (OSError, EOFError) as e:  # not gzip data, truncated, unreadable
            raise SynthError(f"cannot read liberty {chosen.path} (from {chosen.source}): {e}") from None
        print(f"liberty: {chosen.describe()}", flush=True)
    sta = timing.find_sta() if "asic" in flows else None
    if "asic" in flows and remote:
        print("note: each worker times the ASIC netlist with its own OpenSTA (sta), or lowbit's NLDM estimate "
              "without it; every result names its delay source", flush=True)
    elif "asic" in flows and sta is None:
        print("note: OpenSTA (sta) is not on PATH; ASIC delays are lowbit's NLDM estimate", flush=True)
    versions = tool_versions(chosen.path if chosen else None, sta)
    return FlowEnv(scripts=scripts, liberty=liberty, sta=sta, versions=versions), chosen


def run(argv):
    """Parse ``argv`` and run; returns the exit status (raises for user errors)."""
    from ..sweep.execute import legacy_record, run_sweep
    from ..sweep.pool import LocalPool
    from ..sweep.report import write_sweep
    from ..sweep.spec import MAIN_SET, Point, load_sweep

    unit, params, opts = _parse(argv)
    if opts.get("h") or opts.get("help"):
        print(USAGE, end="")
        if unit is not None:
            print(unit_help(unit), end="")
        return 0
    chosen_flows = flows_option(opts.get("flows")) if opts.get("flows") is not None else None
    jobs = jobs_option(opts)
    sweep = None
    if unit is not None:
        points = [Point(config_from_args(unit, params), chosen_flows or FLOWS)]
    else:
        path = opts.get("matrix") or scripts_dir() / "matrix.toml"
        sweep = load_sweep(path, "smoke" if opts.get("smoke") else MAIN_SET, flows=chosen_flows)
        points = list(sweep.points)
    out = Path(opts.get("out") or ("build/synth-smoke" if opts.get("smoke") else "build/synth"))
    flows = tuple(f for f in FLOWS if any(f in p.flows for p in points))
    env, liberty = flow_environment(flows, opts, out)
    outcome = run_sweep(points, out, LocalPool(jobs), env=env, force=bool(opts.get("force")))
    results = [legacy_record(o) for o in outcome.outcomes if o.status != "unbuildable"]
    failed = [{"id": o.point.id, "unit": o.point.config.unit.name, "reason": o.reason}
              for o in outcome.outcomes if o.status == "unbuildable"]
    if unit is not None and failed:
        raise SynthError(f"{unit.name} {failed[0]['reason']}")
    report = build_report(results, failed, sweep.baseline if sweep else None, env.versions, liberty)
    if unit is None:
        for missing in report["not_available"]:
            print(f"not available: {missing['id']} ({missing['unit']}): {missing['reason']}")
        path = write_reports(report, out)
        write_sweep(sweep, outcome, out, liberty)
        print(f"report: {path} ({len(results)} configurations, {len(report['not_available'])} not available); "
              f"sweep: {out / 'sweep.md'}")
    else:
        print("\n".join(main_table(report)))
        print(f"results: {out / points[0].id}/<flow>/result.json")
    return 1 if any(r["errors"] for r in results) else 0


def cli_main(argv):
    """Entry point for ``lowbit synth``; user errors print one ``lowbit: error:`` line and return 2."""
    try:
        return run(list(argv))
    except (UsageError, UnitError, SynthError, ToolError, SweepError) as e:
        print(f"lowbit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
