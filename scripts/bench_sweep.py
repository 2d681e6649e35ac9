"""Benchmark of ``lowbit sweep``: per-point overhead against running the same point directly, and
the wall time of an 8-point synthesis sweep with 1 and 2 workers.

    python scripts/bench_sweep.py [--out build/bench-sweep] [--no-dask] [--repeat 2]

The 8 points are ``mac4`` with 1, 2, 4, 8 lanes and 0 or 1 stages through the generic and asic
flows (a few seconds each). Every measurement starts from an empty output folder, so nothing is
cached. "Direct" is what a task does for a point, called in this process: elaborate the design
(``hw.synth.flows.prepare``) and run each flow (``run_flow``). Overhead per point is
(sweep wall time with 1 worker - sum of the direct times) / points: process start-up, shipping
tasks and results, writing ``result.json`` and the reports. A cached re-run shows the part that
does not depend on the flows (elaboration to compute the keys, dispatch).

Goals (issue 14): overhead under 1 s per point; 2 workers at most 0.6x the wall time of one.
Wall times depend on what else the machine runs: measurements alternate in rounds (after one
unmeasured warm-up point), each round prints the load average, and the best of the rounds is
reported. A Dask cluster's own start-up is not counted (a user's cluster is already running); the
local pool's process start-up is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from hw.synth.cli import flow_environment
from hw.synth.flows import prepare, run_flow
from hw.sweep.execute import run_sweep
from hw.sweep.pool import DaskPool, LocalPool
from hw.sweep.report import write_sweep
from hw.sweep.spec import load_sweep

SWEEP = """
name = "bench"
flows = ["generic", "asic"]
[[configs]]
unit = "mac4"
params = { lanes = [1, 2, 4, 8], stages = [0, 1] }
"""


def _load():
    return os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3


def _sweep_wall(sweep, out, pool, env, liberty):
    if out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    run = run_sweep(sweep.points, out, pool, env=env, liberty_file=liberty.path, progress=False)
    write_sweep(sweep, run, out, liberty)
    wall = time.monotonic() - start
    bad = [o.point.id for o in run.outcomes if o.status not in ("done", "cached")]
    if bad:
        sys.exit(f"bench: points failed: {bad}")
    return wall, run


def _direct(points, root, env):
    """Seconds per point of what a task does for it, in this process."""
    seconds = []
    for point in points:
        if root.exists():
            shutil.rmtree(root)
        start = time.monotonic()
        prepared = prepare(point.config)
        for flow in point.flows:
            run_flow(prepared, flow, root / flow, env, lambda step, s: None)
        seconds.append(time.monotonic() - start)
    return seconds


def _dask_wall(sweep, out, workers, env, liberty):
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster, set_as_default=False) as client:
        # The cluster's start-up is not the sweep's: a user's cluster is already running.
        return _sweep_wall(sweep, out, DaskPool(client=client), env, liberty)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench-sweep", help="scratch folder (emptied)")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster measurement")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of measurements (the best is reported)")
    args = parser.parse_args(argv)
    root = Path(args.out).resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    path = root / "bench.toml"
    path.write_text(SWEEP)
    sweep = load_sweep(path)
    n = len(sweep.points)
    env, liberty = flow_environment(("generic", "asic"), {}, root)
    print(f"machine: {os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in _load())}")
    print(f"points: {n} ({', '.join(p.config.label for p in sweep.points)}), flows generic+asic, "
          f"timing: {env.sta and 'opensta' or 'nldm estimate'}")

    _direct(sweep.points[:1], root / "warmup", env)  # the first YoWASP call compiles and caches
    rows = {}

    def measure(name, func):
        value = func()
        rows.setdefault(name, []).append(value)
        print(f"  {name}: {value:.1f} s", flush=True)

    for rep in range(args.repeat):
        print(f"round {rep + 1} of {args.repeat} (load average {' '.join(f'{x:.2f}' for x in _load())})")
        measure("direct, sum over points", lambda: sum(_direct(sweep.points, root / "direct", env)))
        measure("local pool, 1 worker", lambda: _sweep_wall(sweep, root / "j1", LocalPool(1), env, liberty)[0])
        measure("local pool, 2 workers", lambda: _sweep_wall(sweep, root / "j2", LocalPool(2), env, liberty)[0])
        if not args.no_dask:
            for workers in (1, 2):
                measure(f"Dask, {workers} worker{'s' if workers > 1 else ''}",
                        lambda: _dask_wall(sweep, root / "dask", workers, env, liberty))
    start = time.monotonic()
    rerun = run_sweep(sweep.points, root / "j1", LocalPool(1), env=env, progress=False)
    cached = time.monotonic() - start
    assert all(o.status == "cached" for o in rerun.outcomes)

    best = {name: min(values) for name, values in rows.items()}
    direct = best["direct, sum over points"]
    print(f"\nbest of {args.repeat} (s): " + "; ".join(f"{k} {v:.1f}" for k, v in best.items()))
    for kind in ("local pool", "Dask"):
        one, two = best.get(f"{kind}, 1 worker"), best.get(f"{kind}, 2 workers")
        if one is None:
            continue
        print(f"{kind}: overhead {(one - direct) / n:+.2f} s per point against direct (goal < 1 s); "
              f"2 workers {two:.1f} s = {two / one:.2f}x of 1 worker (goal <= 0.6x)")
    print(f"local pool, 1 worker, every point cached: {cached:.1f} s ({cached / n:.2f} s per point)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in _load())}")


if __name__ == "__main__":
    main()
