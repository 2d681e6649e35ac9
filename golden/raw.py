"""Raw values, exact arithmetic on them, and the one rounding function.

A :class:`Raw` is an array of exact values ``(-1)**sign * (sig + sticky*eps) * 2**exp`` with
``0 < eps < 1``: ``sticky`` stands for nonzero bits below the least significant bit of ``sig``. It is
the golden-model counterpart of the hardware's unpacked value (``docs/arithmetic.md`` section 4).
:func:`round_raw` is the one rounding of ``docs/arithmetic.md`` section 2; every model rounds through
it. Everything is vectorized over NumPy arrays.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .checks import check_rand_bits, check_rounding

__all__ = ["Raw", "unpack", "unpack_float", "from_float", "from_int", "bitlen", "mul_raw", "add_raw", "div_raw",
           "round_raw", "round_to_int", "raw_zero"]

U64 = np.uint64
_WORK = 61        # add_raw aligns the larger operand's leading one to this bit


class Raw(NamedTuple):
    sign: np.ndarray    # int64, 0 or 1
    sig: np.ndarray     # uint64, < 2**63
    exp: np.ndarray     # int64, weight of sig's bit 0
    sticky: np.ndarray  # bool, nonzero bits below sig's bit 0
    nan: np.ndarray     # bool
    inf: np.ndarray     # bool (sign gives its sign)

    @property
    def zero(self):
        return (self.sig == 0) & ~self.sticky & ~self.nan & ~self.inf

    def broadcast(self):
        arrays = np.broadcast_arrays(*self)
        return Raw(*(np.array(a) for a in arrays))


def _u(x):
    return np.asarray(x).astype(U64)


def raw_zero(shape, sign=0):
    z = np.zeros(shape, dtype=bool)
    return Raw(np.full(shape, sign, np.int64), np.zeros(shape, U64), np.zeros(shape, np.int64), z, z, z)


def bitlen(x):
    """Bit length of each uint64 (0 for 0), exact for the full 64-bit range."""
    x = _u(x)
    _, e = np.frexp(x.astype(np.float64))
    e = e.astype(np.int64)
    # float64 rounding of values >= 2**53 can bump the exponent by one; undo it.
    high = np.clip(e - 1, 0, 63).astype(U64)
    bumped = (e > 64) | ((e > 0) & ((x >> high) == 0))
    return np.where(bumped, e - 1, e)


def unpack(fmt, codes):
    """Codes of ``fmt`` (float, integer or fixed-point format) to exact :class:`Raw` values."""
    return fmt.to_raw(codes)


def unpack_float(fmt, codes):
    """Codes of the float format ``fmt`` to exact :class:`Raw` values (``FloatFormat.to_raw``)."""
    sign, e, f = fmt.fields(codes)
    top = (1 << fmt.exp_bits) - 1
    if fmt.specials == "ieee":
        nan, inf = (e == top) & (f != 0), (e == top) & (f == 0)
    elif fmt.specials == "fn":
        nan, inf = (e == top) & (f == (1 << fmt.man_bits) - 1), np.zeros(e.shape, bool)
    else:
        nan = inf = np.zeros(e.shape, bool)
    special = nan | inf
    if fmt.radix == 4:
        sig = np.where(e > 0, 1, 0)
        exp = 2 * (np.maximum(e, 1) - fmt.bias)
    else:
        hidden = np.where(e > 0, 1 << fmt.man_bits, 0)
        sig = hidden + f
        if not fmt.subnormals:
            sig = np.where(e > 0, sig, 0)
        exp = np.maximum(e, 1) - fmt.bias - fmt.man_bits
    sig = np.where(special, 0, sig)
    sticky = np.zeros(np.shape(sig), dtype=bool)
    return Raw(sign.astype(np.int64), _u(sig), exp.astype(np.int64), sticky, nan, inf)


def from_float(values):
    """Exact :class:`Raw` of float64 values."""
    v = np.asarray(values, dtype=np.float64)
    nan = np.isnan(v)
    inf = np.isinf(v)
    sign = np.signbit(v).astype(np.int64)
    mag = np.where(nan | inf, 0.0, np.abs(v))
    m, e = np.frexp(mag)
    sig = _u(np.ldexp(m, 53))
    exp = e.astype(np.int64) - 53
    return Raw(sign, sig, exp, np.zeros(v.shape, bool), nan, inf)


def from_int(ints):
    """Exact :class:`Raw` of int64 values."""
    i = np.asarray(ints).astype(np.int64)
    sign = (i < 0).astype(np.int64)
    sig = _u(np.abs(i))
    z = np.zeros(i.shape, bool)
    return Raw(sign, sig, np.zeros(i.shape, np.int64), z, z, z)


def mul_raw(a, b):
    """Exact product of two :class:`Raw` arrays (their significands' product must fit 63 bits)."""
    if np.any(a.sticky) or np.any(b.sticky):
        raise ValueError("mul_raw needs exact operands (no sticky bits)")
    if np.any(bitlen(a.sig) + bitlen(b.sig) > 63):
        raise ValueError("mul_raw: significand product wider than 63 bits")
    nan = a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)
    inf = (a.inf | b.inf) & ~nan
    sig = np.where(nan | inf, U64(0), a.sig * b.sig)
    return Raw(a.sign ^ b.sign, sig, a.exp + b.exp, np.zeros(sig.shape, bool), nan, inf)


def _shift_right(x, n):
    """``(x >> n, bits shifted out != 0)`` for uint64 ``x`` and int64 ``n >= 0`` (any size)."""
    n = np.asarray(n, dtype=np.int64)
    big = n >= 64
    nc = np.clip(n, 0, 63).astype(U64)
    q = np.where(big, U64(0), x >> nc)
    lost = np.where(big, x != 0, (x & ((U64(1) << nc) - U64(1))) != 0)
    return q, lost


def add_raw(a, b):
    """Sum of two :class:`Raw` arrays, exact up to a sticky bit (``docs/arithmetic.md`` section 4).

    The operand whose leading one is higher is placed with that bit at bit 61; the other is aligned to
    it and bits shifted out become the sticky bit (subtracting a sticky operand borrows one unit from
    the window, which keeps floor-based roundings exact). The result keeps at least 58 significant
    bits above the sticky bit, enough for any format of at most 24 bits of precision with up to 32
    random bits. Operands must have at most 49 significant bits and no sticky bit. An exact zero
    sum of operands of opposite signs is +0 (IEEE 754 round-to-nearest and toward zero).
    """
    a, b = Raw(*np.broadcast_arrays(*a)), Raw(*np.broadcast_arrays(*b))
    if np.any(a.sticky) or np.any(b.sticky):
        raise ValueError("add_raw needs exact operands (no sticky bits)")
    la, lb = bitlen(a.sig), bitlen(b.sig)
    if np.any(la > 49) or np.any(lb > 49):
        raise ValueError("add_raw: operands wider than 49 bits")
    ta = np.where(la > 0, a.exp + la, np.iinfo(np.int64).min // 4)
    tb = np.where(lb > 0, b.exp + lb, np.iinfo(np.int64).min // 4)
    a_big = ta >= tb
    xs, xsig, xexp, xl = (np.where(a_big, a.sign, b.sign), np.where(a_big, a.sig, b.sig),
                          np.where(a_big, a.exp, b.exp), np.where(a_big, la, lb))
    ys, ysig, yexp = np.where(a_big, b.sign, a.sign), np.where(a_big, b.sig, a.sig), np.where(a_big, b.exp, a.exp)
    # Frame: X's leading one at bit _WORK.
    xshift = np.clip(_WORK + 1 - xl, 0, 63)
    frame = xexp - xshift
    X = xsig << xshift.astype(U64)
    d = yexp - frame          # position of Y's bit 0 in the frame
    Yl = ysig << np.clip(d, 0, 63).astype(U64)
    Yr, lost = _shift_right(ysig, np.maximum(-d, 0))
    Y = np.where(d >= 0, Yl, Yr)
    lost = np.where(d >= 0, False, lost) & (ysig != 0)
    sub = xs != ys
    borrow = (sub & lost).astype(U64)
    mag_sub = np.where(X >= Y, X - Y - borrow, Y - X)  # Y > X only when nothing was shifted out
    sign_sub = np.where(X >= Y, xs, ys)
    sig = np.where(sub, mag_sub, X + Y)
    sign = np.where(sub, sign_sub, xs)
    zero = (sig == 0) & ~lost
    # IEEE 754: x + (-x) = +0; (+0) + (-0) = +0; (-0) + (-0) = -0.
    sign = np.where(zero & sub, 0, sign)
    nan = a.nan | b.nan | (a.inf & b.inf & (a.sign != b.sign))
    inf = (a.inf | b.inf) & ~nan
    inf_sign = np.where(a.inf, a.sign, b.sign)
    sign = np.where(inf, inf_sign, sign)
    special = nan | inf
    return Raw(sign.astype(np.int64), np.where(special, U64(0), sig), np.where(special, 0, frame),
               lost & ~special, nan, inf)


#: Significant bits :func:`div_raw` delivers above its sticky bit.
DIV_BITS = 62


def div_raw(a, b):
    """Quotient ``a / b`` of two :class:`Raw` arrays, exact up to a sticky bit.

    ``b`` must be finite, nonzero and exact; ``a`` exact, with at most 62 significant bits (zeros, NaN
    and Inf pass through, signed by the XOR of the signs). A nonzero quotient has its leading one at
    bit 61 (``DIV_BITS`` significant bits) and the sticky bit stands for the nonzero remainder: enough
    for any rounding of section 2 into a format of at most 24 bits of precision with up to 32 random
    bits (``24 + 32 + 1 <= 62``). Restoring long division, one quotient bit per step, on integers.
    """
    arrays = [np.array(x) for x in np.broadcast_arrays(*a, *b)]
    a, b = Raw(*arrays[:6]), Raw(*arrays[6:])
    if np.any(a.sticky) or np.any(b.sticky):
        raise ValueError("div_raw needs exact operands (no sticky bits)")
    if np.any(b.nan | b.inf | (b.sig == 0)):
        raise ValueError("div_raw needs a finite nonzero divisor")
    la, lb = bitlen(a.sig), bitlen(b.sig)
    if np.any(la > DIV_BITS) or np.any(lb > DIV_BITS):
        raise ValueError(f"div_raw: operands wider than {DIV_BITS} bits")
    zero = a.sig == 0
    # Normalize both significands to 62 bits: x = xs * 2**xe, y = ys * 2**ye, xs/ys in (1/2, 2).
    xs = a.sig << np.where(zero, 0, DIV_BITS - la).astype(U64)
    ys = b.sig << (DIV_BITS - lb).astype(U64)
    xe = a.exp - np.where(zero, 0, DIV_BITS - la)
    ye = b.exp - (DIV_BITS - lb)
    first = xs >= ys                 # the quotient's integer part, 0 or 1
    rem = np.where(first, xs - ys, xs)
    q = first.astype(U64)
    # With the integer part 1 the quotient needs DIV_BITS - 1 more bits, with 0 DIV_BITS (the first
    # of them is then 1): rem < ys < 2**62, so 2 * rem fits 63 bits.
    steps = np.where(first, DIV_BITS - 1, DIV_BITS)
    for i in range(DIV_BITS):
        active = i < steps
        rem2 = rem << U64(1)
        bit = active & (rem2 >= ys)
        q = np.where(active, (q << U64(1)) | bit.astype(U64), q)
        rem = np.where(active, np.where(bit, rem2 - ys, rem2), rem)
    exp = xe - ye - steps
    special = a.nan | a.inf
    sig = np.where(zero | special, U64(0), q)
    return Raw((a.sign ^ b.sign).astype(np.int64), sig, np.where(zero | special, 0, exp).astype(np.int64),
               (rem != 0) & ~zero & ~special, a.nan, a.inf)


def _round_bits(sig, exp, sticky, u, rounding, rbits, rand_bits):
    """Round the magnitude ``(sig + sticky*eps) * 2**exp`` to ``q * 2**u``; return ``q``.

    Ties of ``rne`` go to even ``q``; ``sr`` adds the random bits to the first ``rand_bits`` bits
    below the rounding position and keeps the carry.
    """
    s = u - exp                      # bits of sig below the rounding position
    if rounding == "sr":
        bad = sticky & (s < rand_bits)
    else:
        bad = sticky & (s < 1)
    if np.any(bad):
        raise AssertionError("round_raw: sticky bit above the rounding position (model precision bug)")
    q_right, _ = _shift_right(sig, np.maximum(s, 0))
    q = np.where(s > 0, q_right, sig << np.clip(-s, 0, 63).astype(U64))
    sc = np.clip(s, 0, 63).astype(U64)
    rem = np.where(s >= 64, sig, sig & ((U64(1) << sc) - U64(1)))
    rem = np.where(s > 0, rem, U64(0))
    if rounding == "rtz":
        up = np.zeros(q.shape, bool)
    elif rounding in ("rne", "rna"):
        in_range = (s >= 1) & (s <= 64)
        half = U64(1) << np.clip(s - 1, 0, 63).astype(U64)
        gt = in_range & ((rem > half) | ((rem == half) & sticky))
        eq = in_range & (rem == half) & ~sticky
        up = gt | (eq & ((q & U64(1)) == 1)) if rounding == "rne" else gt | eq
    else:
        R = rand_bits
        r = np.broadcast_to(np.asarray(rbits), q.shape).astype(U64)
        if np.any(r >> U64(R)):
            raise ValueError(f"random bits out of range for rand_bits={R}")
        top_r, _ = _shift_right(rem, np.maximum(s - R, 0))
        top_l = rem << np.clip(R - s, 0, 63).astype(U64)
        top = np.where(s >= R, top_r, top_l)
        up = (top + r) >= (U64(1) << U64(R))
    return q + up.astype(U64)


def round_raw(fmt, raw, rounding="rne", rbits=None, rand_bits=None):
    """Round exact :class:`Raw` values into codes of ``fmt`` with one rounding.

    Implements ``docs/arithmetic.md`` section 2 exactly: rounding on the magnitude, subnormal spacing
    below the normal range (or an unbounded exponent then flush to a signed zero without
    subnormals), overflow to Inf (``rne``, ``rna``, ``sr``) or the largest finite value (``rtz`` and
    formats without Inf), canonical NaN. ``rbits`` are the explicit random bits of ``sr``.
    """
    check_rounding(rounding)
    rand_bits = check_rand_bits(rand_bits, rounding)
    if not hasattr(fmt, "radix"):
        raise TypeError(f"round_raw rounds into float formats, not {fmt}")
    if rounding == "sr":
        if rbits is None:
            raise ValueError("rounding 'sr' needs rbits (the random bits)")
        shape = np.broadcast_shapes(*(np.shape(f) for f in raw), np.shape(rbits))
        raw = Raw(*(np.array(np.broadcast_to(f, shape)) for f in raw))
        rbits = np.broadcast_to(np.asarray(rbits), shape)
    else:
        raw = raw.broadcast()
    sign, sig, exp, sticky, nan, inf = raw
    if np.any(sticky & (sig == 0)):
        raise AssertionError("round_raw: sticky without significand bits")
    L = bitlen(sig) - 1
    t = exp + L                      # exponent (radix 2) of the leading one
    zero = (sig == 0) & ~nan & ~inf
    M, bias = fmt.man_bits, fmt.bias
    if fmt.radix == 2:
        emin = 1 - bias
        u = (np.maximum(t, emin) if fmt.subnormals else t) - M
        u = np.where(zero, 0, u)
        q = _round_bits(sig, exp, sticky, u, rounding, rbits, rand_bits)
        carry = q >> U64(M + 1) != 0
        q = np.where(carry, q >> U64(1), q)
        u = u + carry
        normal = q >= U64(1 << M)
        e_field = np.where(normal, u + M + bias, 0)
        mant = np.where(normal, q - U64(1 << M), q).astype(np.int64)
        flushed = normal & (e_field < 1)            # only reachable without subnormals
        rzero = zero | (q == 0) | flushed
    else:
        rzero, e_field, mant = _round_radix4(fmt, sig, exp, sticky, t, zero, rounding, rbits, rand_bits)
    ovf_exp = e_field > fmt.exp_max_field + 1
    e_clip = np.clip(e_field, 0, fmt.exp_max_field + 1)
    mag = (e_clip << M) | mant
    ovf = (ovf_exp | (mag > fmt.max_code)) & ~rzero
    if fmt.has_inf:
        ovf_mag = fmt.max_code if rounding == "rtz" else fmt.inf_code
        inf_mag = fmt.inf_code
    else:
        ovf_mag = inf_mag = fmt.max_code
    mag = np.where(ovf, ovf_mag, mag)
    mag = np.where(rzero, 0, mag)
    mag = np.where(inf, inf_mag, mag)
    code = mag | (sign << (fmt.width - 1))
    nan_code = fmt.nan_code if fmt.has_nan else 0
    code = np.where(nan, nan_code, code)
    return code.astype(fmt.code_dtype)


def _round_radix4(fmt, sig, exp, sticky, t, zero, rounding, rbits, rand_bits):
    """Radix-4 rounding onto the grid ``4**k`` (``docs/arithmetic.md`` section 2.3)."""
    F = 60
    kmin = fmt.emin
    k = np.floor_divide(t, 2)
    sub = fmt.subnormals & (k < kmin)
    kk = np.where(fmt.subnormals, np.maximum(k, kmin), k)
    kk = np.where(zero, 0, kk)
    sh = exp - 2 * kk + F            # y = x / 4**kk * 2**F
    yl = sig << np.clip(sh, 0, 63).astype(U64)
    yr, lost = _shift_right(sig, np.maximum(-sh, 0))
    y = np.where(sh >= 0, yl, yr)
    st = sticky | np.where(sh >= 0, False, lost)
    one = U64(1 << F)
    e_lo = np.where(sub, 0, kk + fmt.bias)
    lo_base = np.where(sub, U64(0), one)       # value of the lower grid point, in y units
    span = np.where(sub, one, U64(3) * one)    # distance to the upper grid point
    mid = lo_base + span // U64(2)             # 2.5 * 4**k, or 4**kmin / 2
    if rounding == "rtz":
        up = np.zeros(y.shape, bool)
    elif rounding in ("rne", "rna"):
        gt = (y > mid) | ((y == mid) & st)
        eq = (y == mid) & ~st
        up = gt | (eq & ((e_lo & 1) == 1)) if rounding == "rne" else gt | eq
    else:
        R = rand_bits
        r = np.broadcast_to(np.asarray(rbits), y.shape).astype(U64)
        if np.any(r >> U64(R)):
            raise ValueError(f"random bits out of range for rand_bits={R}")
        num = (y - lo_base) >> U64(F - R)               # floor(frac * 2**R * span / 2**F)
        top = np.where(sub, num, num // U64(3))
        up = (top + r) >= (U64(1) << U64(R))
    e_field = e_lo + up
    flushed = (e_field < 1) & (not fmt.subnormals)
    rzero = zero | (e_field <= 0) | flushed
    return rzero, np.where(rzero, 0, e_field), np.zeros(y.shape, np.int64)


def round_to_int(values, rounding="rne", rbits=None, rand_bits=None, fast=True):
    """Round float64 values to int64 with the modes of section 2 (NaN gives 0; saturates at 2**62).

    ``fast`` allows the compiled loop :func:`golden.kernels.round_int` (the same results, on exact
    float64 integer and fraction parts); ``False`` forces the general path below, the reference."""
    check_rounding(rounding)
    rand_bits = check_rand_bits(rand_bits, rounding)
    if fast:
        from . import kernels       # here, not at the top: golden.kernels imports modules that import this one
        return kernels.round_int(values, rounding, rbits, rand_bits)
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isnan(v), 0.0, np.clip(v, -2.0 ** 62, 2.0 ** 62))
    raw = from_float(v)
    if rounding == "sr":
        if rbits is None:
            raise ValueError("rounding 'sr' needs rbits (the random bits)")
        # Keep enough bits below the binary point for R random bits: 53-bit significands of values
        # below 2**62 have their bit 0 at exponent >= -1074, and sticky is never set here.
    q = _round_bits(raw.sig, raw.exp, raw.sticky, np.zeros(v.shape, np.int64), rounding,
                    None if rbits is None else np.broadcast_to(np.asarray(rbits), v.shape), rand_bits)
    q = q.astype(np.int64)
    return np.where(raw.sign != 0, -q, q)
