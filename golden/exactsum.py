"""Exact sum of many finite terms ``(-1)**sign * sig * 2**exp``: the beat sums of the accumulator.

One int64 when the terms' span fits, otherwise 32-bit limbs held in int64, so the sum is exact for
any operand formats; the result keeps the leading 62 bits and a sticky bit, which
:func:`golden.raw.round_raw` rounds exactly as the exact sum (``docs/arithmetic.md`` section 7).
"""

from __future__ import annotations

import numpy as np

from .raw import bitlen

__all__ = ["exact_sum", "shr"]

U64 = np.uint64
BIG = 1 << 40               # beyond any exponent in play
_M32 = U64(0xFFFFFFFF)


def shr(x, n):
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
    if np.any(nz & (np.abs(exp) >= BIG // 4)):
        raise ValueError("exact_sum: exponents must be below 2**38 in magnitude")
    lb = bitlen(sig)
    anynz = nz.any(axis=1)
    base = np.where(anynz, np.where(nz, exp, BIG).min(axis=1), 0)
    span = np.where(anynz, np.where(nz, exp + lb, -BIG).max(axis=1) - base, 0)
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
