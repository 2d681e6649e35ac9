#!/usr/bin/env python3
"""Swamping study: chunk-based accumulation of long FP8 dot products (Wang et al. 2018).

Writes ``swamping.csv`` (one row per accumulator configuration and length: mean and max relative
error over the trials) and ``swamping.png`` (mean relative error against L, log-log) to
``--out-dir``, and prints the table and the narrowest alignment window whose error stays within 1.5x
of the exact lane sum.

Data: operands i.i.d. N(mu, sigma) quantized to FP8 e5m2 (rne); the reference is the exact dot
product of the quantized operands. The default mu = 1 gives products of mean 1, so the running sum
grows like L and swamping -- a sum so much larger than the next product that adding it changes
nothing -- shows clearly, which is the regime chunk-based accumulation is designed for (Wang et al.
motivate it with exactly this growth of the accumulated sum in long dot products). Zero-mean data
(``--mu 0``) swamps far less because the sum only grows like sqrt(L); its relative errors are also
noisier, as the exact result is sometimes close to zero. See ``golden/studies.py``.

Configurations: the 1-6-9 accumulator (IEEE-style e6m9, rne) without chunking and with chunks of
32/64/128/256 products; an FP32 accumulator without chunking for reference; and an 8-lane unit (N =
8, CL = 64) whose beat lane sum aligns the products in a window of 8, 12, 16, 24 or 32 bits, or
exactly. matplotlib is optional: without it the PNG is skipped.

    python scripts/swamping_study.py --out-dir out [--seed 0] [--trials 64] [--lengths 64,256,...]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.studies import (DEFAULT_LENGTHS, SWAMPING_CONFIGS, format_table,  # noqa: E402
                            narrowest_window, swamping_table)

FIELDS = ["config", "L", "trials", "mean_rel_error", "max_rel_error"]


def _lengths(text):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lengths must be comma-separated integers, not {text!r}")
    if not values or any(v < 8 or v % 8 for v in values):
        raise argparse.ArgumentTypeError("--lengths must be positive multiples of 8 (the lane count)")
    return values


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6e}" if isinstance(r[k], float) else r[k]) for k in FIELDS})


def write_png(rows, path, title):
    """Plot mean relative error against L; return False (and write nothing) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    # Left: chunk length (and FP32) with one product per beat; right: the N = 8 lane-sum windows,
    # each on its own colour from a sequential map so neighbouring widths read as neighbours.
    names = list(dict.fromkeys(r["config"] for r in rows))
    lanes = [n for n in names if "N=8" in n]
    single = [n for n in names if n not in lanes]
    fig, axes = plt.subplots(1, 2 if lanes else 1, figsize=(13 if lanes else 8, 5.5), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, group, subtitle in ((axes[0][0], single, "chunking, one product per beat"),
                                (axes[0][-1], lanes, "N = 8 lanes, CL = 64: lane-sum window")):
        if not group:
            continue
        for k, name in enumerate(group):
            pts = sorted((r["L"], r["mean_rel_error"]) for r in rows if r["config"] == name)
            kw = {"color": cmap(k / max(len(group) - 1, 1))} if group is lanes else {}
            label = (name.split("window=")[-1] + " bits" if "window=" in name
                     else "exact lane sum" if group is lanes else name)
            ax.loglog([p[0] for p in pts], [max(p[1], 1e-12) for p in pts], "-", marker="o", ms=3,
                      label=label, **kw)
        ax.set_xlabel("dot-product length L")
        ax.set_title(subtitle, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    axes[0][0].set_ylabel("mean relative error")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the CSV and PNG")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--trials", type=int, default=64, help="dot products per length (default 64)")
    ap.add_argument("--lengths", type=_lengths, default=list(DEFAULT_LENGTHS),
                    help="comma-separated lengths (default 64,256,1024,4096,16384)")
    ap.add_argument("--mu", type=float, default=1.0, help="operand mean (default 1; 0 = zero-mean)")
    ap.add_argument("--sigma", type=float, default=1.0, help="operand standard deviation (default 1)")
    args = ap.parse_args(argv)
    if args.trials < 1:
        ap.error("--trials must be at least 1")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    rows = swamping_table(args.lengths, args.trials, args.seed, args.mu, args.sigma, SWAMPING_CONFIGS)
    elapsed = time.perf_counter() - t0
    csv_path = args.out_dir / "swamping.csv"
    write_csv(rows, csv_path)
    print(f"FP8 (e5m2) dot products of N({args.mu:g}, {args.sigma:g}) data, {args.trials} trials, "
          f"seed {args.seed}: mean relative error ({elapsed:.1f} s)")
    print(format_table(rows))
    for label, windows in (("of 16/24/32", (16, 24, 32)), ("of all tested", None)):
        w, ratios = narrowest_window(rows, 1.5, windows=windows)
        worst = ", ".join(f"w={k}: {v:.2f}x" for k, v in ratios.items())
        print(f"narrowest window {label} within 1.5x of the exact lane sum: "
              f"{w if w is not None else 'none'}  (worst error ratio over L: {worst})")
    print(f"wrote {csv_path}")
    png_path = args.out_dir / "swamping.png"
    if write_png(rows, png_path, f"Swamping: FP8 e5m2 products, N({args.mu:g},{args.sigma:g}) data"):
        print(f"wrote {png_path}")
    else:
        print("matplotlib not installed: skipped the PNG (pip install 'lowbit[plot]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
