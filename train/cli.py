"""``lowbit train``: train models through the recipes' golden arithmetic and report accuracy.

    lowbit train [--recipe NAME ...] [--model mlp|cnn ...] [--epochs N] [--seeds K] [--data SPEC]
                 [-o DIR] [-j N] [--synth REPORT] [--lr LR] [--batch-size B]

Runs every (recipe, model, seed) in its own worker process (``-j`` at a time), prints one progress
line per epoch, and writes ``report.json``, ``report.md``, ``curves.png`` and, when a synthesis
report exists, ``frontier.png`` into ``-o`` (default ``build/train``) once every run has finished:
a failure leaves nothing half-written. User errors raise :class:`hw.cliargs.UsageError` or
``ValueError`` with a one-line message (``lowbit: error: ...``, exit status 2).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from hw.cliargs import UsageError

from .loop import Hyper
from .models import MODELS
from .recipes import RECIPES, get_recipe

__all__ = ["cli_main", "DEFAULT_EPOCHS", "DEFAULT_SEEDS"]

DEFAULT_EPOCHS = 15
#: Seeds per model when --seeds is not given: the MLP is cheap enough for three.
DEFAULT_SEEDS = {"mlp": 3, "cnn": 1}
DEFAULT_SYNTH = "build/synth/report.json"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message.replace("argument ", ""))


def _positive():
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
        return v
    return parse


def _positive_float():
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        if not v > 0 or v == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
        return v
    return parse


def parser():
    p = _Parser(prog="lowbit train", description="Train through the golden arithmetic of each recipe.")
    p.add_argument("--recipe", action="append", metavar="NAME",
                   help=f"recipe (repeatable; default all: {', '.join(RECIPES)})")
    p.add_argument("--model", action="append", choices=list(MODELS), help="model (repeatable; default both)")
    p.add_argument("--epochs", type=_positive(), default=DEFAULT_EPOCHS,
                   help=f"epochs per run (default {DEFAULT_EPOCHS})")
    p.add_argument("--seeds", type=_positive(), default=None,
                   help="seeds per recipe and model (default: 3 for mlp, 1 for cnn)")
    p.add_argument("--data", default="digits", help="digits (scikit-learn, default) or mnist:DIR (IDX files)")
    p.add_argument("-o", "--out", default="build/train", help="output folder (default build/train)")
    p.add_argument("-j", "--jobs", type=_positive(), default=2, help="parallel runs (default 2)")
    p.add_argument("--synth", default=DEFAULT_SYNTH,
                   help=f"synthesis report for frontier.png (default {DEFAULT_SYNTH})")
    p.add_argument("--lr", type=_positive_float(), default=Hyper.lr, help=f"learning rate ({Hyper.lr})")
    p.add_argument("--batch-size", type=_positive(), default=Hyper.batch_size,
                   help=f"minibatch size ({Hyper.batch_size})")
    return p


def _say(line):
    print(line, flush=True)


def _worker(task):
    """One run in a worker process (the data are loaded there from their spec)."""
    from .data import load_data
    from .loop import run
    recipe, model, seed, epochs, data_spec, hyper = task
    return run(recipe, model, load_data(data_spec), epochs, seed, Hyper(**hyper), progress=_say)


def _check_out(out):
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"-o/--out: {out!r} exists and is not a folder")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not parent.is_dir():
        raise UsageError(f"-o/--out: cannot create {out!r} ({str(parent)!r} is not a folder)")
    return path


def cli_main(argv):
    from .data import load_data
    from .report import frontier_points, load_synth, summarize, write_reports

    try:
        args = parser().parse_args(argv)
    except SystemExit as e:            # --help: argparse printed it and exits 0
        return e.code
    recipes = list(dict.fromkeys(args.recipe or RECIPES))
    for name in recipes:
        get_recipe(name)
    models = list(dict.fromkeys(args.model or MODELS))
    out = _check_out(args.out)
    data = load_data(args.data)          # checks the data before any work
    synth = load_synth(args.synth)
    hyper = asdict(Hyper(lr=args.lr, batch_size=args.batch_size))
    tasks = [(r, m, s, args.epochs, args.data, hyper) for m in models for r in recipes
             for s in range(args.seeds or DEFAULT_SEEDS[m])]
    # Longest runs first (CNNs, then low-precision recipes) so the pool ends together.
    order = sorted(tasks, key=lambda t: (t[1] != "cnn", t[0] == "fp32"))
    _say(f"lowbit train: {len(tasks)} runs ({', '.join(recipes)}; {', '.join(models)}), "
         f"{args.epochs} epochs, {args.jobs} in parallel")
    t0 = time.perf_counter()
    if args.jobs == 1:
        runs = [_worker(t) for t in order]
    else:
        # A fresh process per run (maxtasksperchild=1) so each run's peak memory is its own.
        ctx = multiprocessing.get_context("spawn")
        # One BLAS thread per worker: the runs are the parallelism (threads of several workers
        # fighting over the same cores made the small float32 GEMMs 50x slower).
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})
        try:
            with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
                runs = pool.map(_worker, order, chunksize=1)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    total = time.perf_counter() - t0
    rank = {(t[0], t[1], t[2]): k for k, t in enumerate(tasks)}
    runs.sort(key=lambda r: rank[(r["recipe"], r["model"], r["seed"])])
    summary = summarize(runs)
    report = {"data": data.name, "n_train": len(data.x_train), "n_test": len(data.x_test), "hyper": hyper,
              "jobs": args.jobs, "epochs": args.epochs, "total_wall_s": total, "runs": runs,
              "summary": summary, "synth_path": str(args.synth), "frontier": None,
              "recipes": {name: RECIPES[name].summary for name in recipes}}
    if synth is not None:
        points, used, missing = frontier_points(summary, synth)
        report["frontier"] = {"points": points, "used": used, "missing": missing}
    written = write_reports(report, out)
    for row in summary:
        gap = "" if row["recipe"] == "fp32" or row["gap_to_fp32"] is None else f" ({row['gap_to_fp32']:+.2f})"
        _say(f"{row['model']} {row['recipe']:<22} {row['acc_mean']:6.2f} ± {row['acc_std']:.2f} %{gap}  "
             f"{row['wall_s_mean']:.1f} s/run  {row['peak_rss_mib']:.0f} MiB")
    _say(f"wrote {', '.join(str(out / w) for w in written)} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    from hw.cli import main
    sys.exit(main(["train", *sys.argv[1:]]))
