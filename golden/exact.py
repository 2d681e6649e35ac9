"""Exact scalar reference: decode to :class:`fractions.Fraction`, round a Fraction into a format.

This is an independent, deliberately simple implementation of ``docs/arithmetic.md`` sections 1-2,
written from the definitions with exact rational arithmetic and no shared code with the vectorized
models in :mod:`golden.raw` (beyond the format parameters). Tests check the fast models against it.
Slow: use it on sampled or small exhaustive inputs.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor

from .formats import FloatFormat

__all__ = ["NAN", "INF", "decode_fraction", "round_fraction", "fma_fraction"]


class _Special:
    def __init__(self, name, sign=0):
        self.name, self.sign = name, sign

    def __repr__(self):
        return ("-" if self.sign else "") + self.name

    def __eq__(self, other):
        return isinstance(other, _Special) and (self.name, self.sign) == (other.name, other.sign)

    def __hash__(self):
        return hash((self.name, self.sign))


NAN = _Special("nan")
INF = _Special("inf")
NEG_INF = _Special("inf", 1)


class SignedZero:
    """Exact zero with a sign (Fraction(0) loses the sign)."""

    def __init__(self, sign):
        self.sign = sign

    def __repr__(self):
        return "-0" if self.sign else "+0"

    def __eq__(self, other):
        return isinstance(other, SignedZero) and self.sign == other.sign

    def __hash__(self):
        return hash(("zero", self.sign))


def decode_fraction(fmt: FloatFormat, code: int):
    """The exact value of ``code``: a Fraction, :class:`SignedZero`, ``NAN``, ``INF`` or ``NEG_INF``."""
    code = int(code)
    E, M = fmt.exp_bits, fmt.man_bits
    sign = code >> (E + M)
    e = (code >> M) & ((1 << E) - 1)
    f = code & ((1 << M) - 1)
    top = (1 << E) - 1
    if fmt.specials == "ieee" and e == top:
        if f:
            return NAN
        return NEG_INF if sign else INF
    if fmt.specials == "fn" and e == top and f == (1 << M) - 1:
        return NAN
    if fmt.radix == 4:
        mag = Fraction(4) ** (e - fmt.bias) if e > 0 else Fraction(0)
    elif e > 0:
        mag = Fraction(2) ** (e - fmt.bias) * (1 + Fraction(f, 1 << M))
    elif fmt.subnormals:
        mag = Fraction(2) ** (1 - fmt.bias) * Fraction(f, 1 << M)
    else:
        mag = Fraction(0)
    if mag == 0:
        return SignedZero(sign)
    return -mag if sign else mag


def _grid_below_above(fmt, x):
    """Adjacent grid points ``lo <= x < hi`` of the format (unbounded above) and lo's exponent code."""
    if fmt.radix == 2:
        emin = 1 - fmt.bias
        k = floor_log(x, 2)
        if fmt.subnormals and k < emin:
            ulp = Fraction(2) ** (emin - fmt.man_bits)
        else:
            ulp = Fraction(2) ** (k - fmt.man_bits)
        n = floor(x / ulp)
        return n * ulp, (n + 1) * ulp, n
    emin = 1 - fmt.bias
    k = floor_log(x, 4)
    if fmt.subnormals and k < emin:
        lo, hi = Fraction(0), Fraction(4) ** emin
        return lo, hi, 0
    lo = Fraction(4) ** k
    return lo, 4 * lo, k + fmt.bias


def floor_log(x: Fraction, base: int) -> int:
    """``floor(log_base(x))`` for a positive Fraction, exactly."""
    k = (int(x.numerator).bit_length() - int(x.denominator).bit_length()) // (1 if base == 2 else 2)
    while Fraction(base) ** k > x:
        k -= 1
    while Fraction(base) ** (k + 1) <= x:
        k += 1
    return k


def _encode_mag(fmt, mag: Fraction):
    """Magnitude code of a representable magnitude (after rounding); None if above max finite."""
    if mag == 0:
        return 0
    if fmt.radix == 4:
        k = floor_log(mag, 4)
        e = k + fmt.bias
        return e << fmt.man_bits
    k = floor_log(mag, 2)
    emin = 1 - fmt.bias
    if k < emin:
        return int(mag / Fraction(2) ** (emin - fmt.man_bits))
    e = k + fmt.bias
    f = int(mag / Fraction(2) ** (k - fmt.man_bits)) - (1 << fmt.man_bits)
    return (e << fmt.man_bits) | f


def round_fraction(fmt: FloatFormat, value, rounding="rne", r=None, rand_bits=None):
    """Round an exact value (Fraction, SignedZero, NAN, INF, NEG_INF) into a code of ``fmt``."""
    sign_bit = 1 << (fmt.width - 1)
    if value is NAN or value == NAN:
        return fmt.nan_code if fmt.has_nan else 0
    if isinstance(value, _Special):
        mag = fmt.inf_code if fmt.has_inf else fmt.max_code
        return mag | (sign_bit if value.sign else 0)
    if isinstance(value, SignedZero):
        return sign_bit if value.sign else 0
    value = Fraction(value)
    if value == 0:
        return 0
    sign = value < 0
    x = abs(value)
    lo, hi, lo_id = _grid_below_above(fmt, x)
    if x == lo:
        y = lo
    elif rounding == "rtz":
        y = lo
    elif rounding in ("rne", "rna"):
        mid = (lo + hi) / 2
        if x > mid:
            y = hi
        elif x < mid:
            y = lo
        elif rounding == "rna":
            y = hi
        else:
            y = lo if lo_id % 2 == 0 else hi
    elif rounding == "sr":
        frac = (x - lo) / (hi - lo)
        y = hi if floor(frac * 2 ** rand_bits) + r >= 2 ** rand_bits else lo
    else:
        raise ValueError(rounding)
    max_val = decode_fraction(fmt, fmt.max_code)
    if y > max_val:
        if fmt.has_inf and rounding != "rtz":
            mag = fmt.inf_code
        else:
            mag = fmt.max_code
        return mag | (sign_bit if sign else 0)
    if not fmt.subnormals and y != 0:
        min_normal = (Fraction(2) if fmt.radix == 2 else Fraction(4)) ** (1 - fmt.bias)
        if y < min_normal:
            y = Fraction(0)
    return _encode_mag(fmt, y) | (sign_bit if sign else 0)


def _neg(v):
    if isinstance(v, SignedZero):
        return SignedZero(1 - v.sign)
    if isinstance(v, _Special):
        return v if v is NAN else (INF if v.sign else NEG_INF)
    return -v


def mul_exact(a, b):
    """Exact IEEE product of two exact values."""
    if a is NAN or b is NAN or a == NAN or b == NAN:
        return NAN
    sa = a.sign if isinstance(a, (SignedZero, _Special)) else int(a < 0)
    sb = b.sign if isinstance(b, (SignedZero, _Special)) else int(b < 0)
    s = sa ^ sb
    a_inf, b_inf = isinstance(a, _Special), isinstance(b, _Special)
    a_zero, b_zero = isinstance(a, SignedZero), isinstance(b, SignedZero)
    if (a_inf and b_zero) or (b_inf and a_zero):
        return NAN
    if a_inf or b_inf:
        return NEG_INF if s else INF
    if a_zero or b_zero:
        return SignedZero(s)
    return a * b


def add_exact(a, b):
    """Exact IEEE sum of two exact values (x + (-x) = +0)."""
    if a is NAN or b is NAN or a == NAN or b == NAN:
        return NAN
    if isinstance(a, _Special) and isinstance(b, _Special):
        return a if a.sign == b.sign else NAN
    if isinstance(a, _Special):
        return a
    if isinstance(b, _Special):
        return b
    if isinstance(a, SignedZero) and isinstance(b, SignedZero):
        return SignedZero(a.sign & b.sign)
    if isinstance(a, SignedZero):
        return b
    if isinstance(b, SignedZero):
        return a
    s = a + b
    return SignedZero(0) if s == 0 else s


def fma_fraction(fa, fb, fc, a, b, c, rounding="rne", r=None, rand_bits=None):
    """Exact reference of ``round(a*b + c)`` into ``fc``'s format for one triple of codes."""
    p = mul_exact(decode_fraction(fa, a), decode_fraction(fb, b))
    s = add_exact(p, decode_fraction(fc, c))
    return round_fraction(fc, s, rounding, r=r, rand_bits=rand_bits)
