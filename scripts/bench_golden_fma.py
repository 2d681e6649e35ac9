"""Throughput of the golden FMA model (issue target: >= 2 million FMA/s on one core, FP8 x FP8 + 1-6-9).

    python scripts/bench_golden_fma.py [--n 4000000] [--repeat 3] [--acc e6m9] [--rounding rne]

Prints the best of ``--repeat`` runs over ``--n`` random operand triples. A benchmark, not a test:
wall-clock numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from golden.fp8_fma import fma


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--a-format", default="e5m2")
    ap.add_argument("--acc", default="e6m9")
    ap.add_argument("--rounding", default="rne")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    from golden.formats import parse_format
    fa, fc = parse_format(args.a_format), parse_format(args.acc)
    a = rng.integers(0, 1 << fa.width, args.n)
    b = rng.integers(0, 1 << fa.width, args.n)
    c = rng.integers(0, 1 << fc.width, args.n)
    kw = dict(rbits=rng.integers(0, 256, args.n), rand_bits=8) if args.rounding == "sr" else {}
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        fma(a, b, c, fa, fa, fc, args.rounding, **kw)
        best = min(best, time.perf_counter() - t0)
    print(f"golden fma {args.a_format} x {args.a_format} + {args.acc} ({args.rounding}): "
          f"{args.n / best / 1e6:.2f} M FMA/s (best of {args.repeat}, {args.n:,} operations, "
          f"1 core, NumPy {np.__version__}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
