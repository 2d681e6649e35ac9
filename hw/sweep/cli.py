"""``lowbit sweep FILE``: expand a sweep file and run its points locally or on a Dask cluster."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cliargs import UsageError, split_options
from ..synth.cli import flow_environment, flows_option, jobs_option
from ..synth.config import SynthError
from ..synth.flows import FLOWS
from ..tools import ToolError
from ..units import UnitError
from .spec import MAIN_SET, SweepError, load_sweep

__all__ = ["cli_main", "USAGE"]

USAGE = """\
usage: lowbit sweep FILE [-j N | --scheduler tcp://HOST:PORT] [-o DIR] [options]

Runs every point of the sweep file FILE (TOML, or JSON of the same shape; docs/synthesis.md
describes it): the synthesis flows and trainings it names, each point once, results cached in
DIR/<point>/<job>/result.json, so a second run resumes where the first stopped.

options:
  -j, --jobs N        local worker processes (default 2)
  --scheduler ADDR    run on the Dask cluster whose scheduler is ADDR (tcp://HOST:PORT or
                      tls://HOST:PORT; TLS settings come from Dask's configuration) instead
  -o, --out DIR       output folder (default build/sweep/<FILE's name without suffix>)
  --set NAME          run the file's list NAME instead of [[configs]] (e.g. smoke)
  --flows LIST        replace the file's flows: comma-separated subset of generic,asic,ice40,ecp5
  --liberty PATH      sky130 liberty for the asic flow (as for lowbit synth; sent to the workers)
  --force             ignore cached results
Writes DIR/sweep.json, sweep.csv, sweep.md and pareto_area_delay.png (pareto_accuracy_area.png
when trainings report an accuracy). Exit status: 0 when every point finished, 1 when some failed
(each with its reason in sweep.md), 2 for a bad sweep file or option (nothing is run).
"""

_FLAGS = ("-j", "--jobs", "-o", "--out", "--scheduler", "--set", "--flows", "--liberty")
_SWITCHES = ("--force", "-h", "--help")


def _parse(argv):
    """``(file, options)``; user errors raise :class:`UsageError`."""
    if any(a in ("-h", "--help") for a in argv):
        return None, {"help": True}
    if not argv or argv[0].startswith("-"):
        raise UsageError("sweep needs a sweep file (lowbit sweep FILE; lowbit sweep --help)")
    path, rest = argv[0], argv[1:]
    opts = split_options("sweep", rest, _FLAGS, _SWITCHES, "one sweep file; options start with -")
    for short, long in (("j", "jobs"), ("o", "out")):
        if short in opts and long in opts:
            raise UsageError(f"give -{short} or --{long}, not both")
    if "scheduler" in opts and ("j" in opts or "jobs" in opts):
        raise UsageError("-j sets the local pool's size; with --scheduler the cluster's workers run the points")
    return Path(path), opts


def run(argv):
    """Parse ``argv`` and run the sweep; returns the exit status (raises for user errors)."""
    from .execute import run_sweep
    from .pool import DaskPool, LocalPool, check_address
    from .report import write_sweep

    path, opts = _parse(argv)
    if opts.get("help"):
        print(USAGE, end="")
        return 0
    flows = flows_option(opts["flows"]) if "flows" in opts else None
    jobs = jobs_option({"jobs": opts.get("jobs", opts.get("j", "2"))})
    if "scheduler" in opts:
        try:
            check_address(opts["scheduler"])
        except ValueError as e:
            raise UsageError(str(e)) from None
    sweep = load_sweep(path, opts.get("set", MAIN_SET), flows=flows)
    out = Path(opts.get("out") or opts.get("o") or Path("build", "sweep", path.stem))
    used = tuple(f for f in FLOWS if any(f in p.flows for p in sweep.points))
    remote = "scheduler" in opts
    env, liberty = flow_environment(used, opts, out, remote=remote)
    pool = DaskPool(opts["scheduler"]) if remote else LocalPool(jobs)
    try:
        print(f"sweep {sweep.name}: {len(sweep.points)} points ({', '.join(used) or 'training only'}) on a "
              f"{pool.describe()} -> {out}", flush=True)
        result = run_sweep(sweep.points, out, pool, env=env, liberty_file=liberty.path if liberty else None,
                           force=bool(opts.get("force")))
    finally:
        if remote:
            pool.close()
    write_sweep(sweep, result, out, liberty)
    failed = result.count("failed") + result.count("unbuildable")
    print(f"sweep: {result.count('done')} done, {result.count('cached')} cached, {failed} failed in "
          f"{result.seconds:.1f} s; {out / 'sweep.md'}")
    return 1 if failed else 0


def cli_main(argv):
    """Entry point for ``lowbit sweep``; user errors print one ``lowbit: error:`` line and return 2."""
    from .pool import PoolError
    try:
        return run(list(argv))
    except (UsageError, UnitError, SynthError, ToolError, SweepError, PoolError) as e:
        print(f"lowbit: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowbit: interrupted; finished points are kept and a new run resumes from them", file=sys.stderr)
        return 130
