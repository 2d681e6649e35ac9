#!/usr/bin/env python3
"""Chunking inside a real training step: the error of a captured GEMM with and without chunks.

Captures (``train.tiles.capture``) a GEMM of a seeded ``fp8-wang2018`` training step — by default
the CNN's ``conv2`` backward-weight GEMM, 72 x 4,096 x 16 — and runs its FP8 operand codes through
``golden.accumulator.gemm`` with the recipe's unit (8 lanes, window 10, 1-6-9, rne) at several chunk
lengths, including 0 (no chunking). Prints, against the exact product of the same FP8 operands, the
relative L1 error and how much the sums cancel (the median of |sum| / sum of |products|). This is
the measurement behind the no-chunk ablation's explanation in ``docs/training.md``.

    python scripts/chunking_in_training.py [--model cnn] [--layer conv2] [--role bwd_weight] [--steps 0,21]
"""

from __future__ import annotations

import argparse

import numpy as np

from golden.accumulator import gemm
from golden.formats import parse_format
from train.tiles import capture


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--layer", default="conv2")
    ap.add_argument("--role", default="bwd_weight", choices=["fwd", "bwd_data", "bwd_weight"])
    ap.add_argument("--steps", default="0,21", help="training steps of epoch 1 (comma-separated)")
    ap.add_argument("--chunks", default="64,256,0", help="chunk lengths (0: no chunking)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    acc = parse_format("e6m9")
    print("step  M x K x N          cancellation  " + "  ".join(f"CL={c:<5}" for c in args.chunks.split(",")))
    for step in map(int, args.steps.split(",")):
        t = capture("fp8-wang2018", args.model, args.layer, args.role, seed=args.seed, step=step)
        fa, fb = parse_format(t.config["a_format"]), parse_format(t.config["b_format"])
        a, b = fa.decode(t.a), fb.decode(t.b)
        # The reference in float64: each FP8 x FP8 product is exact there, and its rounding of the
        # running sum (2**-53 relative per addition) is far below 1-6-9's (2**-10).
        exact = a @ b
        cancel = np.median(np.abs(exact) / np.maximum(np.abs(a) @ np.abs(b), 1e-300))
        errs = []
        for chunk in map(int, args.chunks.split(",")):
            c = acc.decode(gemm(t.a, t.b, fa, fb, acc, t.config["lanes"], chunk, int(t.config["window"])))
            errs.append(np.abs(c - exact).sum() / np.abs(exact).sum())
        shape = f"{t.a.shape[0]} x {t.a.shape[1]} x {t.b.shape[1]}"
        print(f"{step:>4}  {shape:<18} {cancel:12.3f}  " + "  ".join(f"{e:8.2e}" for e in errs))


if __name__ == "__main__":
    main()
