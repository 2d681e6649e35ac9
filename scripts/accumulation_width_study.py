#!/usr/bin/env python3
"""Accumulation width study: Sakr et al. 2019's variance retention ratio against lowbit's accumulator.

For mantissa widths M (default 6 ... 14), chunk lengths (default none and 64) and dot-product lengths n
(default 2**6 ... 2**14), measures the variance retention ratio VRR = Var(computed) / Var(exact) of
lowbit's golden accumulator (``golden.accumulator.dot``, one lane, accumulator ``e8m<M>``: 8 exponent
bits, so nothing overflows) on FP8 products (operands i.i.d. N(0, 1) rounded into e5m2), for rne (the
default rounding) and rtz (a diagnostic), and puts beside it the swamping model's prediction
(``golden.studies.vrr_theory``) with the paper's Gaussian products and with the exact FP8 product
distribution. The paper's criterion for enough bits is v(n) = exp(n (1 - VRR)) <= 50, i.e. a variance
loss n (1 - VRR) of at most ln 50 = 3.9 product variances; the study reports the narrowest width that
meets it per n, predicted and measured (point estimate, and with the 95 % upper bound of the loss).

Writes ``accumulation_width.csv`` (one row per rounding, M, chunk and n) and
``accumulation_width_min.csv`` (the minimum widths) to ``--out-dir``, and the plot to ``--png``
(default ``<out-dir>/accumulation-width.png``; the committed one is ``docs/accumulation-width.png``).
See docs/studies.md. matplotlib is optional: without it the PNG is skipped.

    python scripts/accumulation_width_study.py --out-dir out [--trials 8192] [--seed 0]
        [--widths 6-14] [--lengths 64,...,16384] [--chunks 0,64] [--roundings rne,rtz] [--png PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.studies import (ACC_EXP_BITS, LOST_CUTOFF, lost_terms, min_mantissa,  # noqa: E402
                            vrr_measured, vrr_theory)

FIELDS = ["rounding", "M", "chunk", "n", "trials", "vrr", "se", "lost", "lost_se", "rel_err_rms",
          "theory_vrr", "theory_lost", "theory_fp8_vrr", "theory_fp8_lost"]
M_P = 5                    # fraction bits of an e5m2 x e5m2 product (3-bit x 3-bit significands)


def _ints(text, name):
    out = []
    try:
        for part in text.split(","):
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-"))
                out += list(range(lo, hi + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--{name}: comma-separated integers or ranges, not {text!r}")
    if not out:
        raise argparse.ArgumentTypeError(f"--{name} is empty")
    return out


def theory(M, n, chunk, products):
    return vrr_theory(M, M_P, n, chunk=chunk, products=products)


def min_table(rows, lengths, chunks, roundings, theory_widths):
    """Minimum widths per (chunk, n): predicted (Gaussian and FP8 products) and measured."""
    out = []
    for ch in chunks:
        for n in lengths:
            pred = {p: min_mantissa({M: float(lost_terms(theory(M, n, ch, p), n))
                                     for M in theory_widths}) for p in ("gaussian", "e5m2")}
            row = dict(chunk=ch, n=n, predicted=pred["gaussian"], predicted_fp8=pred["e5m2"])
            for rd in roundings:
                sel = {r["M"]: r for r in rows if r["rounding"] == rd and r["chunk"] == ch and r["n"] == n}
                row[f"measured_{rd}"] = min_mantissa({M: r["lost"] for M, r in sel.items()})
                row[f"measured_{rd}_upper"] = min_mantissa({M: r["lost"] + 1.96 * r["lost_se"]
                                                            for M, r in sel.items()})
            out.append(row)
    return out


def _fmt_min(v, widths):
    """A measured minimum: '<=M' at the narrowest width measured, '>M' past the widest."""
    if v is None:
        return f">{max(widths)}"
    return str(v) if v > min(widths) else f"<={v}"


def write_png(rows, mins, path, chunks, roundings, widths, trials):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(len(roundings), len(chunks) + 1, figsize=(5.2 * (len(chunks) + 1),
                             4.6 * len(roundings)), squeeze=False)
    for ri, rd in enumerate(roundings):
        for ci, ch in enumerate(chunks):
            ax = axes[ri][ci]
            for k, M in enumerate(widths):
                col = cmap(k / max(len(widths) - 1, 1))
                sel = sorted((r for r in rows if r["rounding"] == rd and r["chunk"] == ch
                              and r["M"] == M), key=lambda r: r["n"])
                ns = [r["n"] for r in sel]
                ax.errorbar(ns, [r["lost"] for r in sel], yerr=[1.96 * r["lost_se"] for r in sel],
                            fmt="o", ms=3, color=col, capsize=2, lw=0.8, label=f"M={M}")
                ax.plot(ns, [r["theory_lost"] for r in sel], "-", color=col, lw=1)
            ax.axhline(LOST_CUTOFF, color="red", lw=0.8, ls="--")
            ax.set_xscale("log", base=2)
            ax.set_yscale("symlog", linthresh=1)
            ax.set_xlabel("dot-product length n")
            ax.set_ylabel("n (1 - VRR)  [product variances lost]")
            ax.set_title(f"{rd}, {'no chunking' if not ch else f'CL = {ch}'}: measured (dots, 95 % CI)"
                         "\nvs swamping model, Gaussian products (lines); red: ln 50", fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            if ri == 0 and ci == 0:
                ax.legend(fontsize=7, ncol=3)
        ax = axes[ri][-1]
        for ch, mk in zip(chunks, ("o", "s", "^", "v")):
            sel = [m for m in mins if m["chunk"] == ch]
            ns = [m["n"] for m in sel]
            tag = "no chunk" if not ch else f"CL={ch}"
            ax.plot(ns, [m["predicted"] for m in sel], "-", marker=mk, ms=4,
                    label=f"predicted, Gaussian p ({tag})")
            ax.plot(ns, [m["predicted_fp8"] for m in sel], ":", marker=mk, ms=4,
                    label=f"predicted, FP8 p ({tag})")
            meas = [m[f"measured_{rd}"] for m in sel]
            ax.plot(ns, [max(widths) + 0.6 if v is None else v for v in meas], "--", marker=mk,
                    mfc="none", ms=7, label=f"measured {rd} ({tag})")
        ax.axhspan(min(widths) - 0.5, max(widths) + 0.5, color="0.9", zorder=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("dot-product length n")
        ax.set_ylabel("minimum mantissa M with n (1 - VRR) <= ln 50")
        ax.set_title(f"minimum mantissa, {rd} (grey: widths measured;\nmeasured "
                     f"'<= {min(widths)}' drawn at {min(widths)}, '> {max(widths)}' above)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(f"Variance retention (Sakr et al. 2019) of lowbit's accumulator e{ACC_EXP_BITS}m<M>: "
                 f"FP8 e5m2 products of N(0,1) data, {trials} trials per point", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the CSVs")
    ap.add_argument("--png", type=Path, default=None, help="plot path (default <out-dir>/...png)")
    ap.add_argument("--trials", type=int, default=8192, help="dot products per point (default 8192)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--widths", type=lambda t: _ints(t, "widths"), default=list(range(6, 15)))
    ap.add_argument("--lengths", type=lambda t: _ints(t, "lengths"),
                    default=[1 << k for k in range(6, 15)])
    ap.add_argument("--chunks", type=lambda t: _ints(t, "chunks"), default=[0, 64])
    ap.add_argument("--roundings", default="rne,rtz", help="comma-separated (default rne,rtz)")
    ap.add_argument("--theory-widths", type=lambda t: _ints(t, "theory-widths"),
                    default=list(range(1, 17)),
                    help="widths the predicted minimum is sought among (default 1-16; the chunked "
                         "model enumerates M-bit chunk sums, so at most 16)")
    args = ap.parse_args(argv)
    roundings = [r for r in args.roundings.split(",") if r]
    if args.trials < 2:
        ap.error("--trials must be at least 2")
    for ch in args.chunks:
        if ch and any(n > ch and n % ch for n in args.lengths):
            ap.error(f"every length above the chunk length {ch} must be a multiple of it")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    rows = []
    for rd in roundings:
        t1 = time.perf_counter()
        for r in vrr_measured(args.widths, args.lengths, args.chunks, args.trials, args.seed,
                              rounding=rd):
            r["rounding"] = rd
            for key, prod in (("theory", "gaussian"), ("theory_fp8", "e5m2")):
                v = theory(r["M"], r["n"], r["chunk"], prod)
                r[f"{key}_vrr"], r[f"{key}_lost"] = v, float(lost_terms(v, r["n"]))
            rows.append(r)
        print(f"{rd}: measured in {time.perf_counter() - t1:.0f} s", flush=True)
    mins = min_table(rows, args.lengths, args.chunks, roundings, args.theory_widths)
    elapsed = time.perf_counter() - t0

    with open(args.out_dir / "accumulation_width.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.9g}" if isinstance(r[k], float) else r[k]) for k in FIELDS})
    min_fields = list(mins[0])
    with open(args.out_dir / "accumulation_width_min.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=min_fields)
        w.writeheader()
        w.writerows({k: (_fmt_min(v, args.widths) if k.startswith("measured") else v)
                     for k, v in m.items()} for m in mins)

    print(f"e5m2 products of N(0,1) data into e{ACC_EXP_BITS}m<M>, {args.trials} trials, seed "
          f"{args.seed}, {elapsed:.0f} s. Minimum mantissa M with n (1 - VRR) <= ln 50 = "
          f"{LOST_CUTOFF:.2f} (measured widths {min(args.widths)}-{max(args.widths)}; "
          "'upper': with the 95 % upper bound of the loss):")
    head = ["chunk", "n", "pred (Gaussian p)", "pred (FP8 p)"]
    for rd in roundings:
        head += [f"meas {rd}", f"meas {rd} upper"]
    print(" | ".join(head))
    for m in mins:
        cells = [str(m["chunk"] or "none"), str(m["n"]), str(m["predicted"]), str(m["predicted_fp8"])]
        for rd in roundings:
            cells += [_fmt_min(m[f"measured_{rd}"], args.widths),
                      _fmt_min(m[f"measured_{rd}_upper"], args.widths)]
        print(" | ".join(cells))
    print(f"wrote {args.out_dir / 'accumulation_width.csv'} and {args.out_dir / 'accumulation_width_min.csv'}")
    png = args.png or args.out_dir / "accumulation-width.png"
    if write_png(rows, mins, png, args.chunks, roundings, args.widths, args.trials):
        print(f"wrote {png}")
    else:
        print("matplotlib not installed: skipped the PNG (pip install 'lowbit[plot]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
