"""Numerical studies built on the golden models (reusable by scripts and tests).

Two studies: the swamping study below (:func:`swamping_table`, Wang et al. 2018) and, at the end of
the module, the accumulation width study (:func:`vrr_theory`, :func:`vrr_measured`: Sakr et al. 2019's
variance retention ratio against lowbit's accumulator; ``docs/studies.md``).

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

import math
from functools import lru_cache

import numpy as np

from .accumulator import dot
from .formats import FloatFormat, parse_format

__all__ = ["SWAMPING_CONFIGS", "swamping_table", "narrowest_window", "exact_dot_values",
           "format_table", "vrr_theory", "vrr_measured", "vrr_model_mc", "lost_terms", "min_mantissa",
           "gaussian_magnitudes", "operand_magnitudes", "product_magnitudes", "V_CUTOFF", "LOST_CUTOFF",
           "ACC_EXP_BITS"]

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


# -- accumulation width: variance retention (Sakr et al. 2019) --------------------------------------
#
# Sakr, Wang, Chen, Choi, Agrawal, Shanbhag, Gopalakrishnan, "Accumulation Bit-Width Scaling For
# Ultra-Low Precision Training Of Deep Networks", ICLR 2019 (arXiv:1901.06588), measure what a
# narrow floating-point accumulator loses by the *variance retention ratio*
#
#     VRR = Var(computed sum of n products) / Var(exact sum)                       (ideal: 1)
#
# and call a mantissa width sufficient when the variance lost, counted in product variances, is
# small: v(n) = exp(n (1 - VRR)) <= 50, i.e. n (1 - VRR) <= ln 50 ~ 3.9.  Their model of the loss is
# *swamping*: when a product p is added to a running sum s whose exponent is larger, the bits of p
# below the accumulator's last place at s's exponent are shifted out and lost -- none when the
# exponent gap is at most m_acc - m_p (no swamping), some low bits when it lies between m_acc - m_p
# and m_acc (partial swamping), all of p beyond m_acc (full swamping).  Products are i.i.d. and zero
# mean, and the running sum of i - 1 products is treated as Gaussian with the ideal variance
# (i - 1) sigma_p**2 (central limit theorem).
#
# What is implemented here is lowbit's own evaluation of that model (see docs/studies.md for the
# derivation and for what could and could not be checked against the paper's text): the expected
# energy a step loses is computed exactly for the model's truncation, from the exact distribution of
# the running sum's binade and of the product, instead of through the paper's closed-form
# approximations, and the steps are added up independently.  Chunking applies the same model twice:
# inside a chunk of CL products, then to the n / CL chunk sums (Gaussian, on an m_acc-bit grid); the
# two ratios multiply.

V_CUTOFF = 50.0                       # the paper's cut-off on v(n) = exp(n (1 - VRR))
LOST_CUTOFF = math.log(V_CUTOFF)      # ... i.e. on n (1 - VRR), the variance lost in product units
ACC_EXP_BITS = 8                      # exponent bits of the study's accumulators e8m<M> (no overflow)


def _normal_interval_probs(edges, sigma):
    """P(edges[j] <= |X| < edges[j+1]) for X ~ N(0, sigma**2) (edges >= 0, ascending)."""
    z = np.asarray(edges, dtype=np.float64) / (sigma * math.sqrt(2.0))
    tail = np.array([math.erfc(v) for v in z.ravel()]).reshape(z.shape)     # P(|X| >= edge)
    return tail[..., :-1] - tail[..., 1:]


MAX_GRID_BITS = 16                    # widest product / chunk-sum grid the model enumerates


@lru_cache(maxsize=64)
def gaussian_magnitudes(m_p, sigma=1.0, below=16, above=8):
    """Distribution of ``|p|`` for ``p ~ N(0, sigma**2)`` rounded to nearest onto a float grid with
    ``m_p`` fraction bits (``m_p <= 16``): the paper's products. Returns ``(values, probs)``, values
    ascending; binades from ``below`` under to ``above`` over ``sigma`` (everything under the grid,
    a fraction ~2**-16 of the draws carrying ~2**-48 of the variance, counts as 0)."""
    if not 0 <= m_p <= MAX_GRID_BITS:
        raise ValueError(f"m_p must be 0 ... {MAX_GRID_BITS}, not {m_p}")
    e0 = math.floor(math.log2(sigma))
    sig = np.arange(1 << m_p, 2 << m_p, dtype=np.float64)                 # 1.0 ... 2 - ulp, scaled
    exps = np.arange(e0 - below, e0 + above)
    vals = np.concatenate([[0.0], (sig[None, :] * np.ldexp(1.0, exps - m_p)[:, None]).ravel()])
    mids = np.concatenate([[0.0], (vals[:-1] + vals[1:]) / 2, [np.inf]])
    mids[1] = vals[1]                              # below the smallest grid value: counted as 0
    probs = _normal_interval_probs(mids, sigma)
    vals.flags.writeable = False
    return vals, probs / probs.sum()


def operand_magnitudes(fmt, sigma=1.0):
    """Distribution of ``|a|`` for ``a ~ N(0, sigma**2)`` rounded to nearest (even) into ``fmt``
    (ties have probability 0). Returns ``(values, probs)`` over the finite magnitudes of ``fmt``."""
    fmt = parse_format(fmt)
    codes = np.arange(0, fmt.sign_mask, dtype=np.int64)
    vals = fmt.decode(codes)
    vals = np.unique(vals[np.isfinite(vals)])
    mids = np.concatenate([[0.0], (vals[:-1] + vals[1:]) / 2, [np.inf]])
    probs = _normal_interval_probs(mids, sigma)
    return vals, probs / probs.sum()


@lru_cache(maxsize=8)
def product_magnitudes(operand_fmt="e5m2", sigma=1.0):
    """Distribution of ``|a * b|`` for independent ``a, b ~ N(0, sigma**2)`` rounded into the float
    format ``operand_fmt`` (the study's FP8 products). Returns ``(values, probs)``, values ascending."""
    v, p = operand_magnitudes(operand_fmt, sigma)
    prod_v = (v[:, None] * v[None, :]).ravel()          # exact: few significant bits
    prod_p = (p[:, None] * p[None, :]).ravel()
    vals, inv = np.unique(prod_v, return_inverse=True)
    return vals, np.bincount(inv, weights=prod_p)


def _kept(values, u, rounding):
    """What the model keeps of addend magnitudes ``values`` aligned to a last place ``u`` (a power of
    two): ``trunc`` shifts the low bits out (the paper's swamping); ``rne`` rounds to the nearest
    multiple, a tie going either way with probability 1/2 (the parity of the running sum)."""
    q = values / u
    lo = np.floor(q)
    if rounding == "trunc":
        return lo * u
    if rounding != "rne":
        raise ValueError(f"rounding must be 'trunc' or 'rne', not {rounding!r}")
    frac = q - lo
    up = np.where(frac > 0.5, 1.0, np.where(frac == 0.5, 0.5, 0.0))
    # E[kept**2] is what matters: a tie keeps lo*u or (lo+1)*u with probability 1/2 each.
    return np.sqrt((1 - up) * (lo * u) ** 2 + up * ((lo + 1) * u) ** 2)


@lru_cache(maxsize=64)
def _binade_probs(N, sigma_p, kmin, kmax):
    """P[i, k - kmin] = P(2**k <= |s_i| < 2**(k+1)) for s_i ~ N(0, i sigma_p**2), i = 1 ... N - 1."""
    i = np.arange(1, N, dtype=np.float64)
    edges = np.ldexp(1.0, np.arange(kmin, kmax + 2))
    return _normal_interval_probs(edges[None, :] / np.sqrt(i)[:, None], sigma_p)


def _grid_bits(pos):
    """Fraction bits of the finest of the positive values ``pos`` (all dyadic)."""
    m, _ = np.frexp(pos)
    bits = 0
    while np.any(np.ldexp(m, bits + 1) != np.floor(np.ldexp(m, bits + 1))):
        bits += 1
    return bits


def _lost_steps(m_acc, N, dist, rounding):
    """Model energy lost by steps 2 ... N (index i - 2), in units of the products' variance:
    ``sum_k P_i(k) L(2**(k - m_acc))``, equations (3) and (4) of docs/studies.md."""
    vals, probs = dist
    var = float(np.sum(probs * vals ** 2))
    sigma_p = math.sqrt(var)
    kmax = math.ceil(math.log2(sigma_p * math.sqrt(N))) + 8            # far above the sum's scale
    kmin = min(math.floor(math.log2(sigma_p)) - 48, kmax - 8)           # below: nothing is lost
    ks = np.arange(kmin, kmax + 1)
    # Energy lost adding one product to a sum in binade k: its last place is 2**(k - m_acc). Nothing
    # is lost once that place is at or under the finest step of the addends' grid.
    pos = vals[vals > 0]
    step = float(np.min(np.ldexp(1.0, np.frexp(pos)[1] - 1 - _grid_bits(pos))))
    lost_k = np.zeros(len(ks))
    for j, k in enumerate(ks):
        u = math.ldexp(1.0, int(k) - m_acc)
        if u > step:
            lost_k[j] = (var - float(np.sum(probs * _kept(vals, u, rounding) ** 2))) / var
    P = _binade_probs(N, float(sigma_p), int(kmin), int(kmax))
    return P @ lost_k


def vrr_theory(m_acc, m_p, n, chunk=0, products="gaussian", rounding="trunc"):
    """Variance retention ratio of ``n`` products summed into an ``m_acc``-bit mantissa (Sakr et al.
    2019's swamping model, evaluated as in the notes above): equations (3)-(6) of docs/studies.md,
    lowbit's evaluation of the model, not a transcription of the paper's closed form (which could not
    be checked, see there).

    ``m_p``: fraction bits of the products. ``products``: ``"gaussian"`` (the paper's assumption:
    ``N(0, 1)`` on an ``m_p``-bit grid) or an operand format such as ``"e5m2"`` (the exact distribution
    of products of two ``N(0, 1)`` operands rounded into it; then ``m_p`` must be ``2 M + 1``).
    ``chunk``: 0 (none) or the chunk length ``CL`` (``n`` a multiple of it when longer); the chunk sums
    are modelled on an ``m_acc``-bit grid, so ``m_acc <= 16`` then. ``rounding``: ``"trunc"`` (the
    paper's swamping) or ``"rne"`` (the same model, the aligned addend rounded to nearest). ``n`` may
    be an int or a sequence (then an array is returned).
    """
    ns = np.atleast_1d(np.asarray(n, dtype=np.int64))
    if np.any(ns < 1):
        raise ValueError("n must be at least 1")
    if products != "gaussian":
        fmt = parse_format(products)
        if m_p != 2 * fmt.man_bits + 1:
            raise ValueError(f"products of {fmt} have {2 * fmt.man_bits + 1} fraction bits, not {m_p}")
        products = fmt.spec()
    if chunk and np.any((ns > chunk) & (ns % chunk != 0)):
        raise ValueError(f"n must be a multiple of the chunk length {chunk}")
    out = np.empty(len(ns))
    short = (ns <= chunk) | (not chunk)
    N = _pow2_at_least(int(ns.max()))
    if short.any():
        out[short] = _plain_curve(m_acc, m_p, products, rounding, N)[ns[short]]
    if (~short).any():
        inner = float(_plain_curve(m_acc, m_p, products, rounding, chunk)[chunk])
        outer = _outer_curve(m_acc, m_p, products, rounding, chunk, N // chunk)
        out[~short] = inner * outer[ns[~short] // chunk]
    return out if np.ndim(n) else float(out[0])


def _pow2_at_least(n):
    return 1 << max(n - 1, 1).bit_length()


def _dist(m_p, products):
    return gaussian_magnitudes(m_p) if products == "gaussian" else product_magnitudes(products)


def _curve(m_acc, N, dist, rounding):
    """VRR for n = 0 ... N (index n; entry 0 unused) of the model with addends ``dist``: equation
    (5) of docs/studies.md."""
    lost = np.zeros(N + 1)
    if N > 1:
        lost[2:] = np.cumsum(_lost_steps(m_acc, N, dist, rounding))
    n = np.maximum(np.arange(N + 1), 1)
    return 1.0 - lost / n


@lru_cache(maxsize=256)
def _plain_curve(m_acc, m_p, products, rounding, N):
    return _curve(m_acc, N, _dist(m_p, products), rounding)


@lru_cache(maxsize=256)
def _outer_curve(m_acc, m_p, products, rounding, chunk, N):
    """The outer accumulation of ``N`` chunk sums: Gaussian (central limit) with the variance the
    inner accumulation retained, on the accumulator's ``m_acc``-bit grid (equation (6) of
    docs/studies.md)."""
    dist = _dist(m_p, products)
    var_p = float(np.sum(dist[1] * dist[0] ** 2))
    inner = float(_plain_curve(m_acc, m_p, products, rounding, chunk)[chunk])
    return _curve(m_acc, N, gaussian_magnitudes(m_acc, sigma=math.sqrt(chunk * var_p * inner)),
                  rounding)


def lost_terms(vrr, n):
    """``n (1 - VRR)``: the variance lost, in units of one product's variance (``ln v(n)``; the
    cut-off (2) of docs/studies.md is ``ln 50``)."""
    return np.asarray(n) * (1.0 - np.asarray(vrr))


def min_mantissa(lost_by_width, cutoff=LOST_CUTOFF):
    """The narrowest width ``M`` of ``{M: n (1 - VRR)}`` from which on every wider width listed
    meets ``n (1 - VRR) <= cutoff`` (the paper's ``v(n) <= 50``); None if the widest does not."""
    ok = None
    for M in sorted(lost_by_width, reverse=True):
        if lost_by_width[M] <= cutoff:
            ok = M
        else:
            break
    return ok


def _ratio_stats(c, e):
    """VRR estimate ``sum(c**2) / sum(e**2)`` (both sums have mean 0 by symmetry) and its standard
    error by the delta method on the paired trials: ``sd(c**2 - R e**2) / (sqrt(T) mean(e**2))``."""
    c2, e2 = c * c, e * e
    R = float(c2.sum() / e2.sum())
    T = len(c)
    se = float(np.std(c2 - R * e2, ddof=1) / (math.sqrt(T) * e2.mean())) if T > 1 else math.inf
    return R, se


def vrr_measured(widths, lengths, chunks=(0, 64), trials=1024, seed=0, operand_fmt="e5m2",
                 acc_exp=ACC_EXP_BITS, rounding="rne", batch=1024):
    """Measured variance retention of lowbit's accumulator (:func:`golden.accumulator.dot`, fast
    path, one lane) on FP8 products: for every mantissa width ``M`` in ``widths``, chunk length in
    ``chunks`` and length ``n`` in ``lengths``, ``trials`` dot products of operands i.i.d. ``N(0, 1)``
    rounded (rne) into ``operand_fmt``, accumulated into ``e<acc_exp>m<M>``. The exact sums come from
    :func:`exact_dot_values`; the length-``n`` dot products use the first ``n`` operands of each trial
    (so the lengths share data). ``VRR = sum(computed**2) / sum(exact**2)`` over the trials (the
    population mean is 0 by symmetry); ``se`` its delta-method standard error on the paired trials.
    Returns rows ``dict(M, chunk, n, trials, vrr, se, lost, lost_se, rel_err_rms)`` (``lost`` =
    ``n (1 - VRR)``; ``rel_err_rms`` = rms(computed - exact) / rms(exact)).
    """
    fmt = parse_format(operand_fmt)
    lengths = sorted(int(n) for n in lengths)
    L = lengths[-1]
    rng = np.random.default_rng(seed)
    keys = [(M, ch, n) for M in widths for ch in chunks for n in lengths]
    res = {k: [] for k in keys}
    ex = {n: [] for n in lengths}
    done = 0
    while done < trials:
        t = min(batch, trials - done)
        a = fmt.encode(rng.standard_normal((t, L)))
        b = fmt.encode(rng.standard_normal((t, L)))
        for n in lengths:
            ex[n].append(exact_dot_values(a[:, :n], b[:, :n], fmt))
        for M, ch, n in keys:
            acc = parse_format(f"e{acc_exp}m{M}")
            kw = dict(acc_fmt=acc, lanes=1, chunk=ch, rounding=rounding)
            res[(M, ch, n)].append(acc.decode(dot(a[:, :n], b[:, :n], fmt, fmt, **kw)))
        done += t
    ex = {n: np.concatenate(v) for n, v in ex.items()}
    rows = []
    for M, ch, n in keys:
        c = np.concatenate(res[(M, ch, n)])
        e = ex[n]
        if not np.all(np.isfinite(c)):
            raise ArithmeticError(f"e{acc_exp}m{M} overflowed")
        R, se = _ratio_stats(c, e)
        rows.append(dict(M=M, chunk=ch, n=n, trials=len(c), vrr=R, se=se, lost=n * (1 - R),
                         lost_se=n * se,
                         rel_err_rms=float(np.sqrt(np.mean((c - e) ** 2) / np.mean(e ** 2)))))
    return rows


def _round_mantissa(x, bits):
    """``x`` rounded to nearest even onto a float grid with ``bits`` fraction bits (float64)."""
    m, e = np.frexp(x)                                   # x = m 2**e, 0.5 <= |m| < 1
    return np.ldexp(np.round(np.ldexp(m, bits + 1)), e - bits - 1)


def vrr_model_mc(m_acc, m_p, n, trials=4096, seed=0, rounding="trunc"):
    """Monte Carlo of the swamping model itself (not of lowbit's accumulator): ``trials`` sums of
    ``n`` products ``N(0, 1)`` rounded to ``m_p`` fraction bits, each added to the running sum ``s`` after
    aligning it to ``s``'s last place ``2**(floor(log2|s|) - m_acc)`` (``trunc``: low bits shifted out;
    ``rne``: rounded to nearest, ties to even); nothing else is rounded. Checks the independence
    approximations of :func:`vrr_theory`. Returns ``(VRR, se)`` against the exact sums."""
    rng = np.random.default_rng(seed)
    s = np.zeros(trials)
    exact = np.zeros(trials)
    for _ in range(n):
        p = _round_mantissa(rng.standard_normal(trials), m_p)
        exact += p                                       # exact: few bits, float64 has room
        _, e = np.frexp(s)
        u = np.ldexp(1.0, e - 1 - m_acc)                 # s = 0 gives a tiny u: exact
        q = np.abs(p) / u
        k = np.floor(q) if rounding == "trunc" else np.round(q)
        s = s + np.sign(p) * k * u
    return _ratio_stats(s, exact)
