"""Chunk-based dot-product accumulator (Wang et al. 2018): the golden model.

Wang et al., "Training Deep Neural Networks with 8-bit Floating Point Numbers" (NeurIPS 2018), keep
FP8 products and a 16-bit (1-6-9) accumulator accurate on long dot products by *chunk-based
accumulation*: the products of each chunk of ``CL`` terms are summed into an inner accumulator, and
the chunk sums into an outer one, so the running sum never swamps the small addends for long. This
module defines that unit bit for bit, vectorized with NumPy; the hardware implements exactly this.

Semantics
---------
A dot product of length ``L`` of operand codes ``a_i`` (format ``a_fmt``) and ``b_i`` (``b_fmt``),
both radix-2 float formats, is streamed as ``L/N`` *beats* of ``N`` lanes (``lanes``; ``L`` must be a
multiple of ``N``). The accumulator format ``acc_fmt`` (default ``e6m9``, the IEEE-style 1-6-9), the
rounding ``rne | rna | rtz | sr`` (default ``rne``), the chunk length ``CL`` (``chunk``, default 64;
``CL = 0`` means no chunking; ``CL`` must be a multiple of ``N``) and the alignment window
(``window``: ``"exact"`` or an integer ``w >= 1``) are parameters.

1. *Products.* ``p_i = a_i * b_i`` exactly, with the IEEE specials: NaN if either operand is NaN or
   for ``0 * Inf``; ``±Inf`` if an operand is infinite; the product of zeros is a zero signed by the
   XOR of the signs.
2. *Beat lane sum.* For an operand let ``e = max(e_field, 1) - bias`` (the weight of its hidden-bit
   position; subnormals use ``emin``), and for each nonzero finite product ``P_i = ea_i + eb_i``, so
   ``|p_i| < 2**(P_i + 2)``. Let ``T = max P_i`` over the beat's nonzero finite products. With window
   ``w`` every product's *magnitude* is truncated toward zero to a multiple of ``2**(T + 2 - w)``
   (the largest product keeps ``w`` bits); with ``"exact"`` nothing is truncated. ``S`` is the exact
   sum of the (truncated) products. Specials: a NaN product, or ``+Inf`` and ``-Inf`` together, give
   NaN; otherwise any ``±Inf`` gives that Inf. Zeros: if every product is zero, ``S = -0`` when all
   of them are ``-0`` and ``+0`` otherwise; a sum of products not all zero that cancels exactly (or
   truncates to zero) is ``+0``.
3. *Accumulation.* ``inner`` and ``outer`` start at ``-0`` (the identity of IEEE addition, so ``N =
   1`` without chunking is exactly a chain of fused multiply-adds ``inner = round(a*b + inner)``).
   Each beat does ``inner <- round(inner + S)``: the sum is exact and rounded once into ``acc_fmt``
   (IEEE addition of specials and zeros: ``x + (-x) = +0``, ``(-0) + (-0) = -0``). After every ``CL``
   products (``CL/N`` beats) -- unless that beat is the last of the dot product -- ``outer <-
   round(outer + inner)`` and ``inner <- -0``. After the last beat's inner update the result is
   ``round(outer + inner)`` if ``CL > 0``, else ``inner``. Every rounding is the one rounding of
   ``docs/arithmetic.md`` section 2 (``golden.raw.round_raw``): overflow, subnormals and NaN as there.
4. *Stochastic rounding.* Each rounding consumes one ``R``-bit random word (``rand_bits = R``) from
   one of two independent streams: ``rbits_inner`` (one word per beat, in beat order, shape
   ``(..., L/N)``) and ``rbits_outer`` (one word per outer rounding: the chunk flushes and then the
   final rounding, in order, shape ``(..., ceil(L/CL))``; unused when ``CL = 0``). The model never
   draws randomness itself.

Implementation
--------------
The exact lane sum ``S`` is computed as a fixed-point integer relative to the beat's lowest product
bit: in one int64 when its span fits, otherwise in 32-bit limbs held in int64 (:func:`exact_sum`), so
it is exact for any operand formats. ``inner + S`` is then formed exactly and rounded once: with
``add_raw`` when ``S`` is exact in at most 49 bits (``add_raw``'s proven domain), otherwise by an exact
multi-term sum of ``inner`` and the beat's products (never by adding a sticky-rounded ``S``, which
would not be exact under cancellation). A float64 fast path for ``rne`` into IEEE-style accumulator
formats (exact float64 sums checked with TwoSum, ties resolved with the exact remainder) is used when
it applies; tests check it bit-exact against the general path (``fast=False``).
"""

from __future__ import annotations

from math import prod

import numpy as np

from .formats import FloatFormat, check_int, check_rand_bits, check_rounding, parse_format
from .raw import Raw, add_raw, bitlen, round_raw, unpack

__all__ = ["dot", "gemm", "lane_sum", "exact_sum", "check_params"]

U64 = np.uint64
_BIG = 1 << 40              # beyond any exponent in play
_M32 = U64(0xFFFFFFFF)
_ADD_RAW_BITS = 49          # add_raw's operand limit
_BLOCK_ELEMS = 1 << 20      # products materialized at once
_MAX_WINDOW = 1 << 12       # wider than any product span (< 1200 bits): such windows cut nothing


# -- parameters -------------------------------------------------------------------------------------

def _float_format(fmt, name):
    fmt = parse_format(fmt)
    if not isinstance(fmt, FloatFormat) or fmt.radix != 2:
        raise ValueError(f"{name} must be a radix-2 float format, not {fmt}")
    return fmt


def check_params(L, lanes=1, chunk=64, window="exact"):
    """Validate the shape parameters; return ``(lanes, chunk, window)`` normalized.

    Raises :class:`ValueError` with a one-line message naming the parameter.
    """
    lanes = check_int("lanes", lanes)
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    chunk = check_int("chunk", chunk)
    if chunk < 0:
        raise ValueError(f"chunk must be 0 (no chunking) or a positive multiple of lanes, not {chunk}")
    if chunk % lanes:
        raise ValueError(f"chunk={chunk} must be a multiple of lanes={lanes}")
    if L < 1:
        raise ValueError("the dot-product length L (last axis) must be at least 1")
    if L % lanes:
        raise ValueError(f"the dot-product length L={L} must be a multiple of lanes={lanes}")
    if not (isinstance(window, str) and window == "exact"):
        if isinstance(window, str):
            raise ValueError(f"window must be 'exact' or an integer >= 1, not {window!r}")
        window = check_int("window", window)
        if window < 1:
            raise ValueError(f"window must be 'exact' or an integer >= 1, not {window}")
    return lanes, chunk, window


def _codes(x, name):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must be an array of integer codes, not dtype {x.dtype}")
    return x


def _rbits(rb, name, shape, R):
    if rb is None:
        raise ValueError(f"{name} is required for rounding 'sr' (one {R}-bit word per rounding)")
    rb = np.asarray(rb)
    if not np.issubdtype(rb.dtype, np.integer):
        raise ValueError(f"{name} must be an array of integers, not dtype {rb.dtype}")
    try:
        rb = np.broadcast_to(rb, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {rb.shape} does not broadcast to {shape}") from None
    if rb.size and (rb.min() < 0 or rb.max() >= (1 << R)):
        raise ValueError(f"{name} values must be in [0, 2**{R})")
    return rb.astype(U64)


# -- exact multi-term sum ---------------------------------------------------------------------------

def _shr(x, n):
    """``x >> n`` for uint64 ``x`` and int64 ``n >= 0`` of any size (0 for ``n >= 64``)."""
    return np.where(n >= 64, U64(0), x >> np.clip(n, 0, 63).astype(U64))


def _normalize_limbs(acc):
    """Propagate carries so every limb but the top one is in ``[0, 2**32)`` (in place)."""
    for j in range(acc.shape[1] - 1):
        c = acc[:, j] >> 32
        acc[:, j] -= c << 32
        acc[:, j + 1] += c


def _limb_sum(sign, sig, exp, base, span, K):
    """Exact sum of rows of terms in 32-bit limbs; returns ``(sign, sig, exp, sticky)``.

    ``sig`` < 2**63, ``exp - base >= 0`` for nonzero terms. The result's ``sig`` holds the sum's
    leading 62 bits (its top bit at bit 61) and ``sticky`` flags nonzero bits below them.
    """
    n = sig.shape[0]
    nz = sig != 0
    off = np.where(nz, exp - base[:, None], 0)
    q = off >> 5
    r = (off & 31).astype(U64)
    pad = 2                                  # two zero limbs below limb 0 keep gathers in range
    kbits = (K - 1).bit_length()
    ncols = pad + (int(span.max()) + kbits) // 32 + 5
    acc = np.zeros((n, ncols), np.int64)
    lo = (sig & _M32) << r                   # < 2**63
    hi = (sig >> U64(32)) << r               # < 2**62
    c0 = (lo & _M32).astype(np.int64)
    c1 = ((lo >> U64(32)) + (hi & _M32)).astype(np.int64)
    c2 = (hi >> U64(32)).astype(np.int64)
    neg = sign == 1
    c0, c1, c2 = (np.where(neg, -c, c) for c in (c0, c1, c2))
    rows = np.arange(n)
    for k in range(K):                       # each limb gets < 3K addends of magnitude < 2**33
        col = q[:, k] + pad
        acc[rows, col] += c0[:, k]
        acc[rows, col + 1] += c1[:, k]
        acc[rows, col + 2] += c2[:, k]
    _normalize_limbs(acc)
    negative = acc[:, -1] < 0
    acc[negative] = -acc[negative]
    _normalize_limbs(acc)                    # now every limb is in [0, 2**32): the magnitude
    nzl = acc != 0
    anyl = nzl.any(axis=1)
    h = ncols - 1 - np.argmax(nzl[:, ::-1], axis=1)
    h = np.where(anyl, h, pad)
    Lh, Lm, Ll = (acc[rows, h - i].astype(U64) for i in (0, 1, 2))
    d = bitlen(Lh) + 2                        # V = Lh:Lm:Ll has 64 + bitlen(Lh) bits; keep V >> d
    du = d.astype(U64)
    mid = np.where(d <= 32, Lm << np.clip(32 - d, 0, 63).astype(U64),
                   Lm >> np.clip(d - 32, 0, 63).astype(U64))
    out = (Lh << (U64(64) - du)) + mid + (Ll >> du)
    lost_l = (Ll & ((U64(1) << np.minimum(du, U64(32))) - U64(1))) != 0
    lost_m = (d > 32) & ((Lm & ((U64(1) << np.clip(d - 32, 0, 32).astype(U64)) - U64(1))) != 0)
    below = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(nzl, axis=1)], axis=1)
    lost_below = below[rows, h - 2] > 0
    sticky = (lost_l | lost_m | lost_below) & anyl
    out_exp = base + 32 * (h - 2 - pad) + d
    return (negative & anyl).astype(np.int64), np.where(anyl, out, U64(0)), out_exp, sticky


def exact_sum(sign, sig, exp):
    """Exact sum along the last axis of finite terms ``(-1)**sign * sig * 2**exp`` (``sig < 2**63``).

    Returns ``(sign, sig, exp, sticky)`` over the leading axes, meaning ``(-1)**sign * (sig +
    sticky*eps) * 2**exp``: the exact sum whenever it fits in 62 bits (then ``sticky`` is False and
    ``sig`` is odd or zero), otherwise its leading 62 bits (top bit at bit 61) and a sticky bit for the
    nonzero bits below. That keeps 62 - 24 = 38 >= 32 bits between the rounding position of any
    format of at most 24 bits of precision and the sticky bit, so :func:`golden.raw.round_raw`
    rounds it exactly as it would the exact sum, in every mode (``sr`` with up to 32 random bits).
    An exact zero is returned as ``sign 0, sig 0, exp 0``; callers apply IEEE's signed-zero rules.
    """
    sign, sig, exp = np.broadcast_arrays(np.asarray(sign, np.int64), np.asarray(sig).astype(U64),
                                         np.asarray(exp, np.int64))
    out_shape, K = sig.shape[:-1], sig.shape[-1]
    sign, sig, exp = (x.reshape(-1, K) for x in (sign, sig, exp))
    if np.any(sig >> U64(63)):
        raise ValueError("exact_sum: significands must be below 2**63")
    nz = sig != 0
    if np.any(nz & (np.abs(exp) >= _BIG // 4)):
        raise ValueError("exact_sum: exponents must be below 2**38 in magnitude")
    lb = bitlen(sig)
    anynz = nz.any(axis=1)
    base = np.where(anynz, np.where(nz, exp, _BIG).min(axis=1), 0)
    span = np.where(anynz, np.where(nz, exp + lb, -_BIG).max(axis=1) - base, 0)
    kbits = (K - 1).bit_length()
    small = span + kbits <= 62               # |sum| <= K * 2**span <= 2**62: exact in int64
    off = np.where(nz & small[:, None], exp - base[:, None], 0)
    mag = np.where(nz & small[:, None], sig << np.clip(off, 0, 62).astype(U64), U64(0)).astype(np.int64)
    v = np.where(sign == 1, -mag, mag).sum(axis=1)
    out_sign = (v < 0).astype(np.int64)
    out_sig = np.abs(v).astype(U64)
    out_exp = base.copy()
    sticky = np.zeros(v.shape, bool)
    if not small.all():
        w = np.flatnonzero(~small)
        s_, g_, e_, t_ = _limb_sum(sign[w], sig[w], exp[w], base[w], span[w], K)
        out_sign[w], out_sig[w], out_exp[w], sticky[w] = s_, g_, e_, t_
    # Canonical form: exact results with trailing zeros stripped; zero as 0 * 2**0.
    exact = ~sticky & (out_sig != 0)
    tz = bitlen(out_sig & (~out_sig + U64(1))) - 1
    tz = np.where(exact, tz, 0)
    out_sig = out_sig >> tz.astype(U64)
    out_exp = np.where(out_sig != 0, out_exp + tz, 0)
    out_sign = np.where(out_sig != 0, out_sign, 0)
    return tuple(x.reshape(out_shape) for x in (out_sign, out_sig, out_exp, sticky))


# -- products, window, lane sum (general path) ------------------------------------------------------

def _products(a_fmt, b_fmt, a_codes, b_codes):
    """Exact products and their ``P = ea + eb`` (Raw fields broadcast to a common shape)."""
    ra, rb = unpack(a_fmt, a_codes), unpack(b_fmt, b_codes)
    sign = ra.sign ^ rb.sign
    nan = ra.nan | rb.nan | (ra.inf & (rb.sig == 0) & ~rb.nan & ~rb.inf) | \
        (rb.inf & (ra.sig == 0) & ~ra.nan & ~ra.inf)
    inf = (ra.inf | rb.inf) & ~nan
    sig = np.where(nan | inf, U64(0), ra.sig * rb.sig)     # <= 48 bits for formats of <= 24 bits
    exp = ra.exp + rb.exp
    P = exp + (a_fmt.man_bits + b_fmt.man_bits)
    sign, sig, exp, P, nan, inf = np.broadcast_arrays(sign, sig, exp, P, nan, inf)
    return sign, sig, exp, P, nan, inf


def _window_sum(sign, sig, exp, P, nan, inf, window):
    """Truncate a beat's products (last axis = lanes) and sum them: ``(S, terms)``.

    ``S`` is a :class:`Raw` over the leading axes; ``terms`` are the truncated products
    ``(sign, sig, exp)`` (for the exact ``inner + S`` fallback).
    """
    valid = (sig != 0) & ~nan & ~inf
    if window != "exact":
        T = np.where(valid, P, -_BIG).max(axis=-1)
        g = (T + 2 - min(window, _MAX_WINDOW))[..., None]
        sh = g - exp
        cut = valid & (sh > 0)
        sig = np.where(cut, _shr(sig, sh), sig)
        exp = np.where(cut, g, exp)
    s_sign, s_sig, s_exp, s_sticky = exact_sum(sign, sig, exp)
    # Specials.
    any_nan = nan.any(axis=-1)
    pos_inf = (inf & (sign == 0)).any(axis=-1)
    neg_inf = (inf & (sign == 1)).any(axis=-1)
    s_nan = any_nan | (pos_inf & neg_inf)
    s_inf = (pos_inf | neg_inf) & ~s_nan
    # Zeros: all products zero -> -0 iff all are -0; otherwise an exact zero sum is +0.
    all_zero = ((~valid & ~nan & ~inf)).all(axis=-1)
    all_neg_zero = all_zero & (sign == 1).all(axis=-1)
    s_sign = np.where(s_nan, 0, np.where(s_inf, neg_inf.astype(np.int64),
                                         np.where(all_zero, all_neg_zero.astype(np.int64), s_sign)))
    special = s_nan | s_inf
    S = Raw(s_sign.astype(np.int64), np.where(special, U64(0), s_sig), np.where(special, 0, s_exp),
            s_sticky & ~special, s_nan, s_inf)
    return S, (sign, sig, exp)


def lane_sum(a_codes, b_codes, a_fmt, b_fmt, window="exact"):
    """The beat lane sum ``S`` (semantics step 2) as a :class:`golden.raw.Raw`.

    ``a_codes`` and ``b_codes`` have shape ``(..., N)``: the last axis holds one beat's ``N`` lanes;
    the result has shape ``(...)``. ``S`` is exact (``sticky`` False, ``sig`` odd or zero) whenever it
    fits in 62 bits -- always for a window ``w`` with ``w + ceil(log2 N) <= 62`` -- and otherwise is its
    leading 62 bits plus a sticky bit (see :func:`exact_sum`). Specials and signed zeros as specified.
    """
    a_fmt, b_fmt = _float_format(a_fmt, "a_fmt"), _float_format(b_fmt, "b_fmt")
    a_codes, b_codes = _codes(a_codes, "a_codes"), _codes(b_codes, "b_codes")
    shape = np.broadcast_shapes(a_codes.shape, b_codes.shape)
    if len(shape) < 1 or shape[-1] < 1:
        raise ValueError("lane_sum needs at least one lane (last axis)")
    _, _, window = check_params(shape[-1], 1, 0, window)
    S, _ = _window_sum(*_products(a_fmt, b_fmt, a_codes, b_codes), window)
    return S


# -- float64 fast path (rne) ------------------------------------------------------------------------

class _Tables:
    """Per-format decode tables: value (float64) and hidden-bit exponent ``max(e, 1) - bias``."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.small = fmt.width <= 16
        if self.small:
            codes = fmt.all_codes()
            self.val = fmt.decode(codes)
            self.exp = self._exp(codes)

    def _exp(self, codes):
        e = (np.asarray(codes).astype(np.int64) >> self.fmt.man_bits) & ((1 << self.fmt.exp_bits) - 1)
        return np.maximum(e, 1) - self.fmt.bias

    def values(self, codes):
        if self.small:
            return self.val[codes]
        return self.fmt.decode(codes)

    def exps(self, codes):
        if self.small:
            return self.exp[codes]
        return self._exp(codes)


def _fast_lane_sums(ta, tb, a_codes, b_codes, window, lanes):
    """Float64 lane sums of a block, shape ``(..., beats)``, and whether every one is exact.

    Products of radix-2 formats of at most 24 bits are exact in float64. The truncated products of a
    beat are multiples of ``2**lo`` below ``2**(T+2)``, so their sum (and every partial sum) is exact
    in float64 when ``T + 2 - lo + ceil(log2 N) <= 53``; otherwise the caller uses the general path.
    """
    av = ta.values(a_codes)
    bv = tb.values(b_codes)
    with np.errstate(invalid="ignore"):     # 0 * Inf is NaN, as specified
        p = av * bv
    shape = p.shape[:-1] + (p.shape[-1] // lanes, lanes)
    p = p.reshape(shape)
    if lanes == 1 and window == "exact":
        return p[..., 0], True
    P = (ta.exps(a_codes) + tb.exps(b_codes))
    P = np.broadcast_to(P, p.shape[:-2] + (p.shape[-2] * lanes,)).reshape(shape)
    mm = ta.fmt.man_bits + tb.fmt.man_bits
    valid = np.isfinite(p) & (p != 0)
    T = np.where(valid, P, -_BIG).max(axis=-1)
    lsb = np.where(valid, P - mm, _BIG).min(axis=-1)
    if window != "exact":
        g = np.maximum(T + 2 - min(window, _MAX_WINDOW), lsb)  # a cut below every lsb cuts nothing
        gg = np.where(valid, g[..., None], 0)
        pt = np.ldexp(np.trunc(np.ldexp(p, -gg)), gg)
        p = np.where(valid & (pt == 0), 0.0, pt)  # a product truncated away is +0
        lsb = g
    kbits = (lanes - 1).bit_length()
    ok = bool(np.all(~valid.any(axis=-1) | (T + 2 - lsb + kbits <= 53)))
    s = p[..., 0]
    with np.errstate(invalid="ignore"):     # Inf + -Inf is NaN, as specified
        for k in range(1, lanes):              # in order: -0 + -0 stays -0 (np.sum would give +0)
            s = s + p[..., k]
    return s, ok


class _RneAcc:
    """The constants of ``rne`` rounding into an IEEE-style accumulator format (computed once)."""

    def __init__(self, acc):
        self.M, self.emin, self.max_value = acc.man_bits, acc.emin, acc.max_value


@np.errstate(invalid="ignore", over="ignore")
def _round_rne_float(s, err, k):
    """``rne`` rounding of the exact value ``s + err`` into the format of ``k`` (a :class:`_RneAcc`).

    ``s`` is the float64 round-to-nearest of the exact value and ``err`` the exact remainder. A
    midpoint of the accumulator format (at most 25 bits) is a float64, so no midpoint lies strictly
    between the exact value and ``s``: ``rne(s)`` is the correctly rounded result unless ``s`` is
    exactly a midpoint, when the sign of ``err`` decides. Overflow gives Inf; Inf and NaN pass.
    """
    a = np.abs(s)
    _, e = np.frexp(a)
    u = np.maximum(e - 1, k.emin) - k.M          # weight of the last kept bit (subnormal: emin - M)
    y = np.ldexp(a, -u)                          # exact: a power-of-two scaling
    q = np.rint(y)
    if np.any(err != 0):
        fl = np.floor(y)
        tie = (y - fl == 0.5) & (err != 0)
        up = np.signbit(err) == np.signbit(s)
        q = np.where(tie, np.where(up, fl + 1.0, fl), q)
    r = np.ldexp(q, u)
    r = np.where(r > k.max_value, np.inf, r)
    r = np.copysign(r, s)
    return np.where(np.isfinite(s), r, s)


@np.errstate(invalid="ignore", over="ignore")
def _add_round_float(x, y, k):
    """``rne(x + y)`` for exact float64 accumulator values / lane sums (TwoSum keeps it exact)."""
    s = x + y
    bp = s - x
    err = (x - (s - bp)) + (y - bp)             # TwoSum: s + err == x + y exactly (no overflow)
    err = np.where(np.isfinite(s), err, 0.0)
    return _round_rne_float(s, err, k)


# -- accumulation engine ----------------------------------------------------------------------------

class _State:
    """``inner``/``outer`` held as acc codes (general path) or exact float64 values (fast path)."""

    def __init__(self, acc, B):
        self.acc = acc
        neg_zero = np.full(B, acc.sign_mask, dtype=np.int64).astype(acc.code_dtype)
        self.inner, self.outer, self.kind = neg_zero, neg_zero.copy(), "codes"

    def as_codes(self):
        if self.kind == "float":
            self.inner, self.outer = self.acc.encode(self.inner), self.acc.encode(self.outer)
            self.kind = "codes"

    def as_float(self):
        if self.kind == "codes":
            self.inner, self.outer = self.acc.decode(self.inner), self.acc.decode(self.outer)
            self.kind = "float"


def _general_step(acc, inner, S, terms, rounding, rb, R):
    """``round(inner + S)`` for codes ``inner`` and a beat's :class:`Raw` ``S`` (one rounding).

    Precision. The value handed to ``round_raw`` must equal ``inner + S`` up to a sticky bit that
    lies at least ``R`` (<= 32) bits below the rounding position, which for ``acc_fmt`` (precision
    ``p = M + 1 <= 24``) is at most ``M`` bits below the sum's leading bit. Two cases:

    * ``S`` exact in at most 49 bits (no sticky): ``add_raw`` takes two exact operands of at most 49
      bits and keeps at least 58 >= 23 + 32 + 1 bits above its sticky bit -- its proven contract.
    * otherwise ``S`` may carry a sticky bit, and adding a sticky ``S`` is *not* safe: when ``inner``
      cancels the top of ``S`` the result's leading bit drops to where ``S``'s sticky bit was (see
      ``test_cancellation_against_wide_lane_sum``: 1.125*2**31 - 2**-31 - 2**-32 against inner =
      -1.125*2**31). So ``inner`` and the beat's truncated products are summed again, exactly, by
      :func:`exact_sum`, which returns the exact total's leading 62 bits (top at bit 61) and a sticky
      bit: the rounding position is at most ``M <= 23`` bits below bit 61, leaving ``61 - 23 = 38 >=
      32`` bits above the sticky bit.
    """
    ir = unpack(acc, inner)
    wide = ~S.nan & ~S.inf & (S.sticky | (bitlen(S.sig) > _ADD_RAW_BITS))
    if wide.any():
        zero = np.zeros_like(S.sig)
        S_ok = Raw(np.where(wide, 0, S.sign), np.where(wide, zero, S.sig), np.where(wide, 0, S.exp),
                   S.sticky & ~wide, S.nan, S.inf)
    else:
        S_ok = S
    r = add_raw(ir, S_ok)
    fix = wide & ~ir.nan & ~ir.inf
    if fix.any():
        # S is not exact in 49 bits: sum inner and the beat's products exactly in one go (exact_sum),
        # which is exact and keeps 62 bits + sticky of the exact total (never round S first).
        w = np.flatnonzero(fix)
        t_sign, t_sig, t_exp = (t[w] for t in terms)
        sg = np.concatenate([ir.sign[w, None], t_sign], axis=1)
        sgg = np.concatenate([ir.sig[w, None], t_sig], axis=1)
        ex = np.concatenate([ir.exp[w, None], t_exp], axis=1)
        s_, g_, e_, k_ = exact_sum(sg, sgg, ex)     # nonzero terms: an exact zero is +0
        r = Raw(*(np.array(f) for f in r))
        r.sign[w], r.sig[w], r.exp[w], r.sticky[w] = s_, g_, e_, k_
    return round_raw(acc, r, rounding, rbits=rb, rand_bits=R)


def _flush_general(acc, outer, inner, rounding, rb, R):
    return round_raw(acc, add_raw(unpack(acc, outer), unpack(acc, inner)), rounding, rbits=rb, rand_bits=R)


def _engine(a_codes, b_codes, a_fmt, b_fmt, acc, lanes, chunk, window, rounding, rbi, rbo, R, fast):
    """Run the accumulator on codes broadcasting to ``(..., L)``; return result codes ``(...)``."""
    shape = np.broadcast_shapes(a_codes.shape, b_codes.shape)
    if len(shape) < 1:
        raise ValueError("a_codes and b_codes need a last axis (the dot-product length L)")
    batch_shape, L = shape[:-1], shape[-1]
    lanes, chunk, window = check_params(L, lanes, chunk, window)
    a_fmt.fields(a_codes), b_fmt.fields(b_codes)          # range checks (one-line ValueErrors)
    B = prod(batch_shape)
    nb = L // lanes
    cb = chunk // lanes
    n_outer = -(-nb // cb) if cb else 0
    if rounding == "sr":
        rbi = _rbits(rbi, "rbits_inner", batch_shape + (nb,), R).reshape(B, nb)
        rbo = _rbits(rbo, "rbits_outer", batch_shape + (n_outer,), R).reshape(B, n_outer) \
            if cb else None
    else:
        rbi = rbo = None
    use_fast = (fast and rounding == "rne" and acc.specials == "ieee" and acc.subnormals
                and a_fmt.precision + b_fmt.precision <= 53)
    if use_fast:
        ta, tb, k = _Tables(a_fmt), _Tables(b_fmt), _RneAcc(acc)
    st = _State(acc, B)
    k_out = 0
    blk = max(1, min(nb, _BLOCK_ELEMS // max(1, B * lanes)))
    if B == 0:
        return np.zeros(batch_shape, acc.code_dtype)
    for j0 in range(0, nb, blk):
        j1 = min(nb, j0 + blk)
        a_blk = a_codes[..., j0 * lanes:j1 * lanes]
        b_blk = b_codes[..., j0 * lanes:j1 * lanes]
        fast_blk = False
        if use_fast:
            Sf, fast_blk = _fast_lane_sums(ta, tb, a_blk, b_blk, window, lanes)
        if fast_blk:
            Sf = np.broadcast_to(Sf, batch_shape + (j1 - j0,)).reshape(B, j1 - j0)
            st.as_float()
        else:
            sign, sig, exp, P, nan, inf = _products(a_fmt, b_fmt, a_blk, b_blk)
            fields = [np.broadcast_to(f, batch_shape + (f.shape[-1],)).reshape(B, j1 - j0, lanes)
                      for f in (sign, sig, exp, P, nan, inf)]
            S, terms = _window_sum(*fields, window)
            st.as_codes()
        for j in range(j0, j1):
            if fast_blk:
                st.inner = _add_round_float(st.inner, Sf[:, j - j0], k)
            else:
                Sj = Raw(*(f[:, j - j0] for f in S))
                tj = tuple(t[:, j - j0] for t in terms)
                st.inner = _general_step(acc, st.inner, Sj, tj, rounding,
                                         None if rbi is None else rbi[:, j], R)
            if cb and (j + 1) % cb == 0 and j != nb - 1:
                if fast_blk:
                    st.outer = _add_round_float(st.outer, st.inner, k)
                    st.inner = np.full(B, -0.0)
                else:
                    st.outer = _flush_general(acc, st.outer, st.inner, rounding,
                                              None if rbo is None else rbo[:, k_out], R)
                    st.inner = np.full(B, acc.sign_mask, np.int64).astype(acc.code_dtype)
                k_out += 1
    if cb:
        if st.kind == "float":
            st.inner = _add_round_float(st.outer, st.inner, k)
        else:
            st.inner = _flush_general(acc, st.outer, st.inner, rounding,
                                      None if rbo is None else rbo[:, k_out], R)
    st.as_codes()
    return np.asarray(st.inner).astype(acc.code_dtype).reshape(batch_shape)


def _setup(a_fmt, b_fmt, acc_fmt, rounding, rand_bits):
    a_fmt = _float_format(a_fmt, "a_fmt")
    b_fmt = _float_format(b_fmt, "b_fmt")
    acc = _float_format(acc_fmt, "acc_fmt")
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    return a_fmt, b_fmt, acc, R


def dot(a_codes, b_codes, a_fmt, b_fmt, acc_fmt="e6m9", lanes=1, chunk=64, window="exact",
        rounding="rne", rbits_inner=None, rbits_outer=None, rand_bits=None, fast=True):
    """Dot products through the chunk-based accumulator (see the module docstring).

    Parameters
    ----------
    a_codes, b_codes : integer arrays broadcasting to ``(..., L)``
        Operand codes; every leading index is an independent dot product of length ``L``.
    a_fmt, b_fmt, acc_fmt : spec strings or :class:`~golden.formats.FloatFormat` (radix 2)
    lanes : int
        ``N``, products summed per beat; ``L`` must be a multiple.
    chunk : int
        ``CL``, products per chunk (a multiple of ``lanes``), or 0 for no chunking.
    window : ``"exact"`` or int ``w >= 1``
        Alignment window of the beat lane sum.
    rounding : ``"rne" | "rna" | "rtz" | "sr"``
    rbits_inner, rbits_outer : integer arrays, for ``sr`` only
        Random words broadcasting to ``(..., L/N)`` and ``(..., ceil(L/CL))``.
    rand_bits : int
        ``R``, bits per random word (``sr`` only, 1 to 32).
    fast : bool
        Allow the float64 fast path (``rne``, IEEE-style ``acc_fmt``); ``False`` forces the general
        path. Results are identical.

    Returns
    -------
    Codes of ``acc_fmt``, shape ``(...)``.
    """
    a_fmt, b_fmt, acc, R = _setup(a_fmt, b_fmt, acc_fmt, rounding, rand_bits)
    a_codes, b_codes = _codes(a_codes, "a_codes"), _codes(b_codes, "b_codes")
    return _engine(a_codes, b_codes, a_fmt, b_fmt, acc, lanes, chunk, window, rounding,
                   rbits_inner, rbits_outer, R, fast)


def gemm(A, B, a_fmt, b_fmt, acc_fmt="e6m9", lanes=1, chunk=64, window="exact", rounding="rne",
         rbits_inner=None, rbits_outer=None, rand_bits=None, fast=True):
    """``C = A @ B`` with every ``C[m, n]`` computed exactly as ``dot(A[m, :], B[:, n], ...)``.

    ``A``: ``(M, K)`` codes of ``a_fmt``; ``B``: ``(K, N)`` codes of ``b_fmt``. For ``sr`` the random
    words broadcast to ``(M, N, K/lanes)`` and ``(M, N, ceil(K/chunk))``. Returns ``(M, N)`` codes of
    ``acc_fmt``. The outputs are accumulated together (vectorized over all ``M*N`` of them, one beat at
    a time), without materializing more than a block of the ``M*N*K`` products.
    """
    a_fmt, b_fmt, acc, R = _setup(a_fmt, b_fmt, acc_fmt, rounding, rand_bits)
    A, B = _codes(A, "A"), _codes(B, "B")
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"gemm needs 2-D A and B, got shapes {A.shape} and {B.shape}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"gemm: inner dimensions differ: A is {A.shape}, B is {B.shape}")
    return _engine(A[:, None, :], np.ascontiguousarray(B.T)[None, :, :], a_fmt, b_fmt, acc, lanes,
                   chunk, window, rounding, rbits_inner, rbits_outer, R, fast)


# -- the INT4 x FP4 front end (hw.mac4's lane sum feeding the accumulator) --------------------------

def accumulate_sums(S, acc_fmt, chunk_beats, rounding="rne", rbits_inner=None, rbits_outer=None,
                    rand_bits=None):
    """The accumulation of item 3 over given exact beat sums.

    ``S`` is a :class:`~golden.raw.Raw` of shape ``(B, nb)``: beat ``j`` of dot product ``b`` (exact,
    at most 49 significant bits, no sticky). ``chunk_beats`` is ``CL / N`` (0: no chunking). Returns
    ``(B,)`` codes. ``rbits_inner`` ``(B, nb)`` and ``rbits_outer`` ``(B, ceil(nb / chunk_beats))``
    feed ``sr``.
    """
    acc = _float_format(acc_fmt, "acc_fmt")
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    B, nb = S.sig.shape
    n_outer = -(-nb // chunk_beats) if chunk_beats else 0
    if rounding == "sr":
        rbi = _rbits(rbits_inner, "rbits_inner", (B, nb), R)
        rbo = _rbits(rbits_outer, "rbits_outer", (B, n_outer), R) if chunk_beats else None
    else:
        rbi = rbo = None
    neg_zero = np.full(B, acc.sign_mask, np.int64).astype(acc.code_dtype)
    inner, outer, k_out = neg_zero.copy(), neg_zero.copy(), 0
    for j in range(nb):
        Sj = Raw(*(f[:, j] for f in S))
        inner = round_raw(acc, add_raw(unpack(acc, inner), Sj), rounding,
                          rbits=None if rbi is None else rbi[:, j], rand_bits=R)
        if chunk_beats and (j + 1) % chunk_beats == 0 and j != nb - 1:
            outer = _flush_general(acc, outer, inner, rounding, None if rbo is None else rbo[:, k_out], R)
            inner = neg_zero.copy()
            k_out += 1
    if chunk_beats:
        inner = _flush_general(acc, outer, inner, rounding, None if rbo is None else rbo[:, k_out], R)
    return inner


def dot_mac4(x_codes, g_codes, phase, offset, acc_fmt="e6m9", lanes=8, chunk=64, rounding="rne",
             x_signed=True, rbits_inner=None, rbits_outer=None, rand_bits=None):
    """Dot products of INT4 ``x`` and radix-4 FP4 ``g`` through the chunk-based accumulator.

    Each beat's ``S`` is :func:`golden.mac4.mac4_dot` of its ``lanes`` pairs (exact: no window);
    ``phase`` is per beat (broadcasting to ``(..., L/N)``), ``offset`` per dot product (``(...)``).
    ``x_codes``, ``g_codes``: ``(..., L)`` 4-bit codes. Otherwise as :func:`dot` (item 3 and 4).
    """
    from .mac4 import mac4_dot

    x, g = _codes(x_codes, "x_codes"), _codes(g_codes, "g_codes")
    shape = np.broadcast_shapes(x.shape, g.shape)
    if len(shape) < 1:
        raise ValueError("x_codes and g_codes need a last axis (the dot-product length L)")
    batch, L = shape[:-1], shape[-1]
    lanes, chunk, _ = check_params(L, lanes, chunk)
    nb = L // lanes
    x = np.broadcast_to(x, shape).reshape(*batch, nb, lanes)
    g = np.broadcast_to(g, shape).reshape(*batch, nb, lanes)
    ph = np.broadcast_to(np.asarray(phase), (*batch, nb))
    off = np.broadcast_to(np.asarray(offset)[..., None], (*batch, nb))
    s, lsb = mac4_dot(x, g, ph, off, lanes, x_signed)
    B = prod(batch)
    sign = (s < 0).astype(np.int64).reshape(B, nb)
    sig = np.abs(s).astype(U64).reshape(B, nb)
    z = np.zeros((B, nb), bool)
    S = Raw(sign, sig, lsb.reshape(B, nb).astype(np.int64), z, z, z)
    out = accumulate_sums(S, acc_fmt, chunk // lanes, rounding,
                          None if rbits_inner is None else np.broadcast_to(rbits_inner, (*batch, nb)).reshape(B, nb),
                          None if rbits_outer is None else np.reshape(
                              np.broadcast_to(rbits_outer, (*batch, np.shape(rbits_outer)[-1])), (B, -1)),
                          rand_bits)
    return out.reshape(batch)
