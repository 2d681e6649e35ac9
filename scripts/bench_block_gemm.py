#!/usr/bin/env python3
"""Time the block-scaled GEMM emulator (golden.block.block_gemm) and the conversion feeding it, on one core.

Quantizes A (M x K) and B (K x N) of N(0, 1) float32 data to block formats and times ``block_gemm``
(one exact block sum and one rounding into the accumulator per block pair) on an M = K = N GEMM for
a few configurations, then on the shapes of the CNN's ``conv2`` GEMMs in the ``mxfp8`` recipe. Each
line gives M products/s (wall time, best of ``--repeat``) of

* ``kernel``: the default path, the accumulator's compiled kernel with one block pair per beat;
* ``tile``: the float64 block sums (``_tile_sums``) into ``accumulate_sums``, the default before the
  kernel and still the fast path where the kernel does not apply (forced here by hiding the kernel);
* ``exact``: the exact integer path (``fast=False``, with ``--exact``), the reference the others
  match bit for bit (tests/test_golden_block.py);

beside NumPy's float32 matmul on the same shape. Then ``quantize_blocks`` (compiled element
rounding against ``fast=False``) in M elements/s, and with ``--bhq`` BHQ's plan search
(``golden.quantize.bhq_plan`` on 4,096 row ranges: fqt-bhq's per-step cost, compiled and reference).

    python scripts/bench_block_gemm.py [--size 256] [--repeat 3] [--exact] [--bhq]

One core: NUMBA_NUM_THREADS and the BLAS thread counts are set to 1 before NumPy is imported. The
first call of each configuration (compiling, or loading Numba's cache) is not timed.
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import golden.block as gb  # noqa: E402
from golden.block import block_gemm, quantize_blocks  # noqa: E402

CONFIGS = [
    ("mxfp8_e4m3 x mxfp8_e4m3 -> fp32 rne", ("mxfp8_e4m3", "mxfp8_e4m3"), dict()),
    ("mxfp8_e4m3 x mxfp8_e5m2 -> fp32 rne", ("mxfp8_e4m3", "mxfp8_e5m2"), dict()),
    ("mxfp4_e2m1 x mxfp4_e2m1 -> fp32 rne", ("mxfp4_e2m1", "mxfp4_e2m1"), dict()),
    ("hbfp4 x hbfp4 -> fp32 rne", ("hbfp4", "hbfp4"), dict()),
    ("hbfp8 x hbfp8 -> fp32 rne", ("hbfp8", "hbfp8"), dict()),
    ("mxfp8_e4m3 x mxfp8_e5m2 -> bf16 sr CL=64", ("mxfp8_e4m3", "mxfp8_e5m2"),
     dict(acc_fmt="bf16", rounding="sr", rand_bits=8, chunk=64)),
]

#: The mxfp8 recipe's conv2 GEMMs (batch 64 x 8 x 8 positions, 3 x 3 x 8 -> 16 channels, K padded
#: to a multiple of 32): forward X W, backward-data dY W^T, backward-weight X^T dY.
TRAINING = [
    ("conv2 fwd     4096 x   96 x 16", (4096, 96, 16), ("mxfp8_e4m3", "mxfp8_e4m3")),
    ("conv2 bwd-dat 4096 x   32 x 72", (4096, 32, 72), ("mxfp8_e5m2", "mxfp8_e4m3")),
    ("conv2 bwd-wgt   72 x 4096 x 16", (72, 4096, 16), ("mxfp8_e4m3", "mxfp8_e5m2")),
]


@contextmanager
def _tile_path():
    """block_gemm without the kernel: its float64 tile sums (the path where the kernel does not apply)."""
    applies = gb.kernels.applies
    gb.kernels.applies = lambda *args: False
    try:
        yield
    finally:
        gb.kernels.applies = applies


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _gemm_line(label, M, K, N, fa, fb, kw, rng, args):
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    a, sa = quantize_blocks(A, fa)
    b, sb = quantize_blocks(B, fb, axis=0)
    if kw.get("rounding") == "sr":
        kw = dict(kw, rbits_inner=rng.integers(0, 1 << kw["rand_bits"], (M, N, K // 32)),
                  rbits_outer=rng.integers(0, 1 << kw["rand_bits"], (M, N, -(-K // kw.get("chunk", K) or 1))))
    products = M * K * N
    run = lambda **more: block_gemm(a, sa, b, sb, fa, fb, **kw, **more)      # noqa: E731
    C = run()                                                                # compile or load the kernel
    t_kernel = _best(run, args.repeat)
    with _tile_path():
        assert np.array_equal(run(), C)
        t_tile = _best(run, args.repeat)
    t_np = _best(lambda: A @ B, args.repeat)
    line = (f"{label:<48} {products / t_kernel / 1e6:9.1f} {products / t_tile / 1e6:9.1f} "
            f"{t_tile / t_kernel:6.1f}x {products / t_np / 1e6:10.0f}")
    if args.exact:
        t0 = time.perf_counter()
        assert np.array_equal(run(fast=False), C)
        line += f" {products / (time.perf_counter() - t0) / 1e6:9.2f}"
    print(line)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="M = K = N, a multiple of 32 (default 256)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    ap.add_argument("--exact", action="store_true", help="also time the exact path (fast=False), once")
    ap.add_argument("--bhq", action="store_true", help="also time BHQ's plan search on 4,096 rows")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = args.size
    rng = np.random.default_rng(args.seed)
    head = f"{'block_gemm, M products/s':<48} {'kernel':>9} {'tile':>9} {'gain':>7} {'numpy f32':>10}"
    print(f"one core, best of {args.repeat}; k = 32\n{head}" + (f" {'exact':>9}" if args.exact else ""))
    for label, (fa, fb), kw in CONFIGS:
        _gemm_line(f"{n}^3 {label}", n, n, n, fa, fb, kw, rng, args)
    for label, (M, K, N), (fa, fb) in TRAINING:
        _gemm_line(f"{label} mxfp8", M, K, N, fa, fb, {}, rng, args)

    x = rng.standard_normal((4096, 96)).astype(np.float32)
    print(f"\n{'quantize_blocks, M elements/s':<48} {'fast':>9} {'general':>9} {'gain':>7}")
    for name, kw in (("mxfp8_e4m3", {}), ("mxfp4_e2m1", {}),
                     ("hbfp4", dict(rounding="sr", rbits=rng.integers(0, 1 << 16, x.shape, dtype=np.uint16),
                                    rand_bits=16))):
        for axis in (1, 0):
            run = lambda **more: quantize_blocks(x, name, axis=axis, **kw, **more)     # noqa: E731
            run()
            t_fast, t_gen = _best(run, args.repeat), _best(lambda: run(fast=False), args.repeat)
            label = f"4096 x 96 {name} {kw.get('rounding', 'rne')} axis {axis}"
            print(f"{label:<48} {x.size / t_fast / 1e6:9.1f} {x.size / t_gen / 1e6:9.1f} {t_gen / t_fast:6.1f}x")

    if args.bhq:
        from golden.quantize import bhq_plan
        m = np.exp(rng.normal(0, 1, 4096))
        bhq_plan(m)
        t_fast = _best(lambda: bhq_plan(m), args.repeat)
        t_ref = _best(lambda: bhq_plan(m, fast=False), 1)
        print(f"\n{'bhq_plan, 4,096 rows (s per plan)':<48} {t_fast:9.3f} {t_ref:9.3f} {t_ref / t_fast:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
