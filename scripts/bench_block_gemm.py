#!/usr/bin/env python3
"""Time the block-scaled GEMM emulator (golden.block.block_gemm) and the conversion feeding it.

Quantizes A (M x K) and B (K x N) of N(0, 1) float32 data to block formats and times
``block_gemm`` (one exact block sum and one rounding into the accumulator per block pair) for a few
configurations; prints seconds and nanoseconds per product. ``--exact`` also times the exact integer
path (``fast=False``), which the float64 path must (and, in the tests, does) match bit for bit.

    python scripts/bench_block_gemm.py [--size 256] [--repeat 3] [--exact]

On a shared or loaded machine run it with ``OPENBLAS_NUM_THREADS=1``: the block sums are many small
matrix products, and multi-threaded BLAS then spends its time waiting for cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.block import block_gemm, quantize_blocks  # noqa: E402

CONFIGS = [
    ("mxfp8_e4m3 x mxfp8_e4m3 -> fp32 rne", ("mxfp8_e4m3", "mxfp8_e4m3"), dict()),
    ("mxfp8_e4m3 x mxfp8_e5m2 -> fp32 rne", ("mxfp8_e4m3", "mxfp8_e5m2"), dict()),
    ("mxfp4_e2m1 x mxfp4_e2m1 -> fp32 rne", ("mxfp4_e2m1", "mxfp4_e2m1"), dict()),
    ("hbfp8 x hbfp8 -> fp32 rne", ("hbfp8", "hbfp8"), dict()),
    ("mxfp8_e4m3 x mxfp8_e5m2 -> bf16 sr", ("mxfp8_e4m3", "mxfp8_e5m2"),
     dict(acc_fmt="bf16", rounding="sr", rand_bits=8)),
]


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="M = K = N, a multiple of 32 (default 256)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--exact", action="store_true", help="also time the exact path (fast=False)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = args.size
    rng = np.random.default_rng(args.seed)
    A = rng.standard_normal((n, n)).astype(np.float32)
    B = rng.standard_normal((n, n)).astype(np.float32)
    products = n ** 3
    print(f"M = K = N = {n}: {products:.3g} products, {products // 32:.3g} block pairs (k = 32)")
    for label, (fa, fb), kw in CONFIGS:
        a, sa = quantize_blocks(A, fa)
        b, sb = quantize_blocks(B, fb, axis=0)
        if kw.get("rounding") == "sr":
            kw = dict(kw, rbits_inner=rng.integers(0, 256, (n, n, n // 32)))
        t = _best(lambda: block_gemm(a, sa, b, sb, fa, fb, **kw), args.repeat)
        line = f"{label:<40} {t:8.3f} s  {t / products * 1e9:6.2f} ns/product"
        if args.exact:
            te = _best(lambda: block_gemm(a, sa, b, sb, fa, fb, fast=False, **kw), 1)
            line += f"   exact path {te:8.3f} s"
        print(line)
    tq = _best(lambda: quantize_blocks(A, "mxfp8_e4m3"), args.repeat)
    print(f"{'quantize_blocks mxfp8_e4m3 rne':<40} {tq:8.3f} s  {tq / n ** 2 * 1e9:6.2f} ns/element")


if __name__ == "__main__":
    main()
