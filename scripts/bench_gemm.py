#!/usr/bin/env python3
"""Time the chunk-accumulator GEMM emulator (golden.accumulator.gemm).

Emulates C = A @ B for FP8 (e5m2) operands of N(0, 1) data with the default 1-6-9 accumulator and
prints the wall time of each configuration. ``--general`` also times the general (non-fast) path.

    python scripts/bench_gemm.py [--size 256] [--repeat 3] [--general]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.accumulator import gemm  # noqa: E402
from golden.formats import parse_format  # noqa: E402

CONFIGS = [
    ("N=1  CL=64 exact  rne", dict(lanes=1, chunk=64)),
    ("N=1  CL=0  exact  rne", dict(lanes=1, chunk=0)),
    ("N=8  CL=64 w=16   rne", dict(lanes=8, chunk=64, window=16)),
    ("N=8  CL=64 exact  rne", dict(lanes=8, chunk=64)),
    ("N=8  CL=64 exact  sr ", dict(lanes=8, chunk=64, rounding="sr", rand_bits=8)),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="M = K = N (default 256)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--general", action="store_true", help="also time the general path (fast=False)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = args.size
    fmt = parse_format("e5m2")
    rng = np.random.default_rng(args.seed)
    A = fmt.encode(rng.normal(size=(n, n)))
    B = fmt.encode(rng.normal(size=(n, n)))
    print(f"gemm {n}x{n}x{n} ({n ** 3 / 1e6:.1f} M products), e5m2 x e5m2 -> e6m9, best of {args.repeat}")
    for name, kw in CONFIGS:
        kw = dict(kw)
        if kw.get("rounding") == "sr":
            nb = n // kw["lanes"]
            kw["rbits_inner"] = rng.integers(0, 1 << kw["rand_bits"], (n, n, nb))
            kw["rbits_outer"] = rng.integers(0, 1 << kw["rand_bits"], (n, n, -(-n // kw["chunk"])))
        variants = [("fast", True)] + ([("general", False)] if args.general else [])
        if kw.get("rounding") == "sr":
            variants = [("general", True)]
        for label, fast in variants:
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                gemm(A, B, fmt, fmt, "e6m9", fast=fast, **kw)
                best = min(best, time.perf_counter() - t0)
            print(f"  {name}  {label:8s} {best:7.2f} s  ({n ** 3 / best / 1e6:6.1f} M products/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
