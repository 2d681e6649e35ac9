"""The accumulator's float64 fast path for ``rne`` into IEEE-style formats.

Exact float64 lane sums where they are exact (checked per block), ``inner + S`` with TwoSum and the
tie resolved by the exact remainder. :mod:`golden.accumulator` uses it when it applies; the tests
check it bit-exact against the general path (``fast=False``).
"""

from __future__ import annotations

import numpy as np

from .exactsum import BIG
from .lanesum import MAX_WINDOW

__all__ = ["Tables", "RneAcc", "fast_lane_sums", "round_rne_float", "add_round_float"]


class Tables:
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


def fast_lane_sums(ta, tb, a_codes, b_codes, window, lanes):
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
    T = np.where(valid, P, -BIG).max(axis=-1)
    lsb = np.where(valid, P - mm, BIG).min(axis=-1)
    if window != "exact":
        g = np.maximum(T + 2 - min(window, MAX_WINDOW), lsb)  # a cut below every lsb cuts nothing
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


class RneAcc:
    """The constants of ``rne`` rounding into an IEEE-style accumulator format (computed once)."""

    def __init__(self, acc):
        self.M, self.emin, self.max_value = acc.man_bits, acc.emin, acc.max_value


@np.errstate(invalid="ignore", over="ignore")
def round_rne_float(s, err, k):
    """``rne`` rounding of the exact value ``s + err`` into the format of ``k`` (a :class:`RneAcc`).

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
def add_round_float(x, y, k):
    """``rne(x + y)`` for exact float64 accumulator values / lane sums (TwoSum keeps it exact)."""
    s = x + y
    bp = s - x
    err = (x - (s - bp)) + (y - bp)             # TwoSum: s + err == x + y exactly (no overflow)
    err = np.where(np.isfinite(s), err, 0.0)
    return round_rne_float(s, err, k)
