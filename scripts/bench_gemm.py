#!/usr/bin/env python3
"""Time the GEMM emulators of the training recipes on one core, beside NumPy's float32 matmul.

Every path (golden.accumulator.gemm: e5m2 x e5m2 -> 1-6-9 by default, 1 lane and 8 lanes, window 16 or exact,
rne and sr; golden.mac4.gemm_mac4: INT4 x FP4 through the chunked accumulator, rne and sr;
golden.mac4.gemm_int4) is timed on an M = K = N GEMM (N(0, 1) data); each line gives M products/s
(wall time, best of ``--repeat``; and process CPU time, which a loaded machine disturbs less),
NumPy's float32 matmul on the same shape and their ratio, and the first call's time on a tiny GEMM
(compiling the kernel, or loading it from Numba's cache; the paths share one compiled kernel, so
only the first path pays). ``--general`` also times the general path (``fast=False``); ``--cold``
compiles into an empty cache.

    python scripts/bench_gemm.py [--size 256] [--repeat 5] [--general] [--cold]
        [--a-format e5m2] [--b-format e5m2] [--acc-format e6m9] [--rand-bits 8]

One core: NUMBA_NUM_THREADS and the BLAS thread counts are set to 1 before NumPy is imported.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _paths():
    """``(name, kind, keyword arguments)`` of every path the recipes use."""
    out = []
    for label, kw in (("N=1 CL=64 exact", dict(lanes=1, chunk=64)),
                      ("N=8 CL=64 w=16 ", dict(lanes=8, chunk=64, window=16)),
                      ("N=8 CL=64 exact", dict(lanes=8, chunk=64))):
        for rounding in ("rne", "sr"):
            out.append((f"fp8  {label} {rounding:3s}", "fp8", dict(kw, rounding=rounding)))
    for rounding in ("rne", "sr"):
        out.append((f"mac4 N=8 CL=64 acc   {rounding:3s}", "mac4",
                    dict(lanes=8, chunk=64, rounding=rounding)))
    out.append(("int4 x int4 (exact)        ", "int4", {}))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="M = K = N (default 256)")
    ap.add_argument("--repeat", type=int, default=5, help="best of this many runs (default 5)")
    ap.add_argument("--general", action="store_true", help="also time the general path (fast=False)")
    ap.add_argument("--cold", action="store_true", help="first calls compile into an empty Numba cache")
    ap.add_argument("--rand-bits", type=int, default=8, help="R of sr (default 8)")
    ap.add_argument("--a-format", default="e5m2", help="A's format of the fp8 paths (default e5m2)")
    ap.add_argument("--b-format", default="e5m2", help="B's format of the fp8 paths (default e5m2)")
    ap.add_argument("--acc-format", default="e6m9", help="accumulator format (default e6m9)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.cold:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="lowbit-numba-")

    import numpy as np

    from golden.accumulator import gemm
    from golden.formats import parse_format
    from golden.mac4 import gemm_int4, gemm_mac4

    n, R = args.size, args.rand_bits
    fa, fb, acc = parse_format(args.a_format), parse_format(args.b_format), args.acc_format
    rng = np.random.default_rng(args.seed)

    def operands(kind, m, k, nn):
        if kind == "fp8":
            return fa.encode(rng.normal(size=(m, k))), fb.encode(rng.normal(size=(k, nn)))
        return rng.integers(0, 16, (m, k)), rng.integers(0, 16, (k, nn))

    def words(kw, m, k, nn):
        if kw.get("rounding") != "sr":
            return {}
        dt = np.uint16 if R <= 16 else np.uint32
        return dict(rand_bits=R, rbits_inner=rng.integers(0, 1 << R, (m, nn, k // kw["lanes"]), dtype=dt),
                    rbits_outer=rng.integers(0, 1 << R, (m, nn, -(-k // kw["chunk"])), dtype=dt))

    def call(kind, A, B, kw, fast):
        if kind == "fp8":
            return gemm(A, B, fa, fb, acc, fast=fast, **kw)
        if kind == "mac4":
            return gemm_mac4(A, B, 0, 0, acc, fast=fast, **kw)
        return gemm_int4(A, B)

    def best_of(f):
        wall = cpu = float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        return wall, cpu

    products = n ** 3
    Af, Bf = rng.normal(size=(n, n)).astype(np.float32), rng.normal(size=(n, n)).astype(np.float32)
    np_wall, np_cpu = best_of(lambda: Af @ Bf)
    np_rate = products / np_wall / 1e6
    print(f"gemm {n}x{n}x{n} ({products / 1e6:.1f} M products), one core, best of {args.repeat}; "
          f"fp8 = {fa} x {fb}; accumulator {acc}; sr with R = {R}")
    print(f"NumPy float32 matmul: {np_rate:,.0f} M products/s (cpu {products / np_cpu / 1e6:,.0f})")
    print(f"{'path':29s} {'variant':8s} {'M prod/s':>9s} {'(cpu)':>8s} {'numpy/x':>8s} {'1st call':>9s}")
    for name, kind, kw in _paths():
        A, B = operands(kind, n, n, n)
        kwargs = dict(kw, **words(kw, n, n, n))
        a1, b1 = operands(kind, 8, 64, 8)
        t0 = time.perf_counter()
        call(kind, a1, b1, dict(kw, **words(kw, 8, 64, 8)), True)
        first = time.perf_counter() - t0
        variants = [("fast", True)] + ([("general", False)] if args.general and kind != "int4" else [])
        for label, fast in variants:
            wall, cpu = best_of(lambda: call(kind, A, B, kwargs, fast))
            rate = products / wall / 1e6
            first_s = f"{first:8.2f}s" if label == "fast" else f"{'-':>9s}"
            print(f"{name:29s} {label:8s} {rate:9.1f} {products / cpu / 1e6:8.1f} {np_rate / rate:8.0f} "
                  f"{first_s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
