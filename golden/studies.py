"""Numerical studies built on the golden models (reusable by scripts and tests).

:func:`swamping_table` reproduces the point of Wang et al. 2018 (NeurIPS, "Training Deep Neural
Networks with 8-bit Floating Point Numbers", section 3 on chunk-based accumulation): accumulating a
long dot product of FP8 products in a 16-bit (1-6-9) accumulator *swamps* -- once the running sum is
``2**(p+1)`` times larger than a product, adding the product changes nothing -- and chunk-based
accumulation (an inner accumulator per chunk of ``CL`` products, an outer one over chunk sums) brings
the error back close to that of an FP32 accumulator.

Data. Swamping needs a running sum that grows much faster than the individual addends, i.e. products
with a nonzero mean: the sum then grows like ``L`` while the products stay O(1). With zero-mean data
the sum grows only like ``sqrt(L)`` and the effect is much weaker (and the *relative* error is
dominated by the occasional near-zero exact result). The default operands are therefore i.i.d.
``N(mu=1, sigma=1)`` values quantized to FP8 (e5m2, round to nearest even), so the products have mean
1 and variance 3; ``mu=0`` gives the zero-mean case for comparison.

Configurations (:data:`SWAMPING_CONFIGS`, all rne): 1-6-9 without chunking and with CL = 32, 64,
128, 256; FP32 without chunking for reference; and an 8-lane unit (N = 8, CL = 64) whose beat lane
sum aligns the products in a window of 8 to 14, 16, 24 or 32 bits, or exactly. Windows below 16 go
below the 16/24/32 of the hardware plan to show where a narrow window starts to cost.

Error. For each dot product the reference is the *exact* dot product of the quantized operands (an
integer multiple of ``2**-32`` for e5m2, computed in integers) and the error is ``|result - exact| /
|exact|``; the table reports its mean (and max) over the trials.
"""

from __future__ import annotations

import numpy as np

from .accumulator import dot
from .formats import FloatFormat, parse_format

__all__ = ["SWAMPING_CONFIGS", "swamping_table", "narrowest_window", "exact_dot_values",
           "format_table"]

#: (name, dot keyword arguments) of the accumulators compared by :func:`swamping_table`.
SWAMPING_CONFIGS = [
    ("1-6-9 no chunking", dict(acc_fmt="e6m9", lanes=1, chunk=0)),
    ("1-6-9 CL=32", dict(acc_fmt="e6m9", lanes=1, chunk=32)),
    ("1-6-9 CL=64", dict(acc_fmt="e6m9", lanes=1, chunk=64)),
    ("1-6-9 CL=128", dict(acc_fmt="e6m9", lanes=1, chunk=128)),
    ("1-6-9 CL=256", dict(acc_fmt="e6m9", lanes=1, chunk=256)),
    ("FP32 no chunking", dict(acc_fmt="fp32", lanes=1, chunk=0)),
    *((f"1-6-9 N=8 CL=64 window={w}", dict(acc_fmt="e6m9", lanes=8, chunk=64, window=w))
      for w in (8, 9, 10, 11, 12, 13, 14, 16)),
    ("1-6-9 N=8 CL=64 window=24", dict(acc_fmt="e6m9", lanes=8, chunk=64, window=24)),
    ("1-6-9 N=8 CL=64 window=32", dict(acc_fmt="e6m9", lanes=8, chunk=64, window=32)),
    ("1-6-9 N=8 CL=64 exact", dict(acc_fmt="e6m9", lanes=8, chunk=64, window="exact")),
]

DEFAULT_LENGTHS = (64, 256, 1024, 4096, 16384)


def exact_dot_values(a_codes, b_codes, fmt):
    """Exact dot products (last axis) of codes of the radix-2 float format ``fmt`` as float64.

    Each finite value is an integer multiple of ``2**(emin - man_bits)``, so the dot product is an
    exact integer sum scaled by ``2**(2*(emin - man_bits))``; it is summed in int64 when that provably
    cannot overflow and in Python integers otherwise, then converted (one float64 rounding).
    """
    fmt = parse_format(fmt)
    if not isinstance(fmt, FloatFormat) or fmt.radix != 2:
        raise ValueError(f"fmt must be a radix-2 float format, not {fmt}")
    a = fmt.decode(a_codes)
    b = fmt.decode(b_codes)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("exact_dot_values needs finite operands")
    q = fmt.emin - fmt.man_bits
    ai = np.ldexp(a, -q)                   # exact integers (< 2**(emax - q + 1))
    bi = np.ldexp(b, -q)
    L = a.shape[-1]
    bound = float(np.max(np.abs(ai), initial=0)) * float(np.max(np.abs(bi), initial=0)) * L
    if bound < 2.0 ** 62:
        s = (ai.astype(np.int64) * bi.astype(np.int64)).sum(axis=-1)
        return np.ldexp(s.astype(np.float64), 2 * q)
    ai_o = ai.astype(np.int64).astype(object)
    bi_o = bi.astype(np.int64).astype(object)
    s = (ai_o * bi_o).sum(axis=-1)
    return np.ldexp(np.vectorize(float, otypes=[np.float64])(s), 2 * q)


def swamping_table(lengths=DEFAULT_LENGTHS, trials=64, seed=0, mu=1.0, sigma=1.0, configs=None,
                   operand_fmt="e5m2"):
    """Mean relative error of long FP8 dot products for each accumulator configuration.

    For every length ``L`` the same ``trials`` pairs of vectors (i.i.d. ``N(mu, sigma)``, quantized
    to ``operand_fmt`` with rne) are fed to every configuration of ``configs`` (default
    :data:`SWAMPING_CONFIGS`; all use rne). Returns a list of dicts with keys ``config``, ``L``,
    ``trials``, ``mean_rel_error``, ``max_rel_error`` (ordered by config, then ``L``).
    """
    configs = SWAMPING_CONFIGS if configs is None else configs
    fmt = parse_format(operand_fmt)
    rng = np.random.default_rng(seed)
    data = {}
    for L in lengths:
        a = fmt.encode(rng.normal(mu, sigma, (trials, L)))
        b = fmt.encode(rng.normal(mu, sigma, (trials, L)))
        data[L] = (a, b, exact_dot_values(a, b, fmt))
    rows = []
    for name, kw in configs:
        acc = parse_format(kw.get("acc_fmt", "e6m9"))
        for L in lengths:
            a, b, exact = data[L]
            res = acc.decode(dot(a, b, fmt, fmt, **kw))
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(res - exact) / np.abs(exact)
            rows.append(dict(config=name, L=int(L), trials=int(trials),
                             mean_rel_error=float(np.mean(rel)), max_rel_error=float(np.max(rel))))
    return rows


def _errors(rows, config):
    return {r["L"]: r["mean_rel_error"] for r in rows if r["config"] == config}


def narrowest_window(rows, factor=1.5, prefix="1-6-9 N=8 CL=64", windows=None):
    """The narrowest window ``w`` whose mean error is within ``factor`` of the exact lane sum's.

    Compares the rows ``"{prefix} window={w}"`` (only ``w`` in ``windows`` if given) with
    ``"{prefix} exact"`` at every length (the worst ratio counts). Returns ``(w, {w: worst
    ratio})``; ``w`` is None if no window qualifies.
    """
    exact = _errors(rows, f"{prefix} exact")
    ratios = {}
    for r in rows:
        name = r["config"]
        if name.startswith(f"{prefix} window="):
            w = int(name.rsplit("=", 1)[1])
            if windows is not None and w not in windows:
                continue
            e = _errors(rows, name)
            ratios[w] = max(e[L] / exact[L] if exact[L] > 0 else (1.0 if e[L] == 0 else np.inf)
                            for L in e)
    ok = sorted(w for w, q in ratios.items() if q <= factor)
    return (ok[0] if ok else None), dict(sorted(ratios.items()))


def format_table(rows):
    """The table as aligned text: one line per config, one column per length (mean rel. error)."""
    lengths = sorted({r["L"] for r in rows})
    names = list(dict.fromkeys(r["config"] for r in rows))
    width = max(len(n) for n in names)
    lines = [f"{'config':{width}s}" + "".join(f"{'L=' + str(L):>11s}" for L in lengths)]
    for n in names:
        e = _errors(rows, n)
        lines.append(f"{n:{width}s}" + "".join(f"{e[L]:11.3e}" for L in lengths))
    return "\n".join(lines)
