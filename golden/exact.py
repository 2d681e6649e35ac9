"""Exact scalar reference: decode to :class:`fractions.Fraction`, round a Fraction into a format.

This is an independent, deliberately simple implementation of ``docs/arithmetic.md`` sections 1-2,
written from the definitions with exact rational arithmetic and no shared code with the vectorized
models in :mod:`golden.raw` (beyond the format parameters). Tests check the fast models against it.
Slow: use it on sampled or small exhaustive inputs.
"""

from __future__ import annotations

from fractions import Fraction
from math import copysign, floor, isinf, isnan

from .formats import FloatFormat

__all__ = ["NAN", "INF", "decode_fraction", "round_fraction", "fma_fraction", "round_int_fraction",
           "scale_fraction", "element_fraction", "decode_block_fraction", "quantize_block_fraction",
           "block_dot_fraction", "block_stream_fraction"]


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


# -- block formats (docs/arithmetic.md section 9) ----------------------------------------------------
#
# Written from the section's text: the scale code's value, the element values, the shared-exponent
# rules (floor / ceil of log2 of the block maximum, from ``floor_log``), rounding through
# ``round_fraction`` or ``round_int_fraction`` and clamping, and block dot products as sequences of
# exact IEEE additions. Nothing here comes from golden.block or golden.raw; only the format
# parameters (``fmt.element``, ``fmt.k``, ``fmt.scale``) are shared.

def round_int_fraction(x, rounding="rne", r=None, rand_bits=None):
    """Round an exact value to an integer with the modes of section 2 (on the magnitude)."""
    x = Fraction(x)
    mag = abs(x)
    q = floor(mag)
    frac = mag - q
    if rounding == "rtz":
        up = False
    elif rounding == "rne":
        up = frac > Fraction(1, 2) or (frac == Fraction(1, 2) and q % 2 == 1)
    elif rounding == "rna":
        up = frac >= Fraction(1, 2)
    elif rounding == "sr":
        up = floor(frac * 2 ** rand_bits) + r >= 2 ** rand_bits
    else:
        raise ValueError(rounding)
    q += int(up)
    return -q if x < 0 else q


def scale_fraction(code):
    """The value of an 8-bit scale code: ``2**(code - 127)``, or ``NAN`` for ``0xFF``."""
    code = int(code)
    return NAN if code == 0xFF else Fraction(2) ** (code - 127)


def element_fraction(elem, code):
    """The exact value of a block element code (float or two's-complement fixed point)."""
    if isinstance(elem, FloatFormat):
        return decode_fraction(elem, code)
    code, W = int(code), elem.bits
    n = code - (1 << W) if code >> (W - 1) else code
    return SignedZero(0) if n == 0 else Fraction(n, 1) / Fraction(2) ** elem.frac_bits


def _largest_element(elem):
    if isinstance(elem, FloatFormat):
        return decode_fraction(elem, elem.max_code)
    return Fraction((1 << (elem.bits - 1)) - 1) / Fraction(2) ** elem.frac_bits


def decode_block_fraction(fmt, codes, scale):
    """Values ``X * P_i`` of one block: a NaN scale makes every element NaN."""
    X = scale_fraction(scale)
    if X is NAN:
        return [NAN] * len(codes)
    return [mul_exact(element_fraction(fmt.element, c), X) for c in codes]


def quantize_block_fraction(fmt, values, rounding="rne", r=None, rand_bits=None):
    """One block of float values (Python floats, e.g. float32 values) to ``(codes, scale_code)``.

    A NaN or infinite value gives the NaN scale and codes 0. Otherwise the shared exponent is
    ``floor(log2(amax)) - emax`` (scale ``e8m0``) or ``ceil(log2(amax)) - emax - 1`` (``hbfp``),
    ``emax = floor(log2(largest element))``, ``-127`` for an all-zero block, clamped to
    ``[-127, 127]``; each element is ``v / 2**s`` rounded into the element format and clamped to the
    largest element magnitude with its sign. ``r`` lists one random word per element for ``sr``.
    """
    elem = fmt.element
    if any(isnan(v) or isinf(v) for v in values):
        return [0] * len(values), 0xFF
    exact = [Fraction(v) for v in values]
    amax = max(abs(x) for x in exact)
    emax = floor_log(_largest_element(elem), 2)
    if amax == 0:
        s = -127
    else:
        t = floor_log(amax, 2)
        if fmt.scale == "e8m0":
            s = t - emax
        else:
            s = (t if amax == Fraction(2) ** t else t + 1) - emax - 1
    s = min(max(s, -127), 127)
    codes = []
    for i, (v, x) in enumerate(zip(values, exact)):
        ri = None if r is None else int(r[i])
        y = x / Fraction(2) ** s
        if isinstance(elem, FloatFormat):
            sign_bit = 1 << (elem.width - 1)
            y = SignedZero(int(copysign(1.0, v) < 0)) if x == 0 else y
            code = round_fraction(elem, y, rounding, r=ri, rand_bits=rand_bits)
            if isinstance(decode_fraction(elem, code), _Special):      # overflow to Inf: clamp
                code = (code & sign_bit) | elem.max_code
        else:
            top = (1 << (elem.bits - 1)) - 1
            n = round_int_fraction(y * Fraction(2) ** elem.frac_bits, rounding, ri, rand_bits)
            code = min(max(n, -top), top) % (1 << elem.bits)
        codes.append(code)
    return codes, s + 127


def _block_sum(fa, fb, a_codes, a_scales, b_codes, b_scales):
    """``sum_j Xa_j Xb_j sum_i Pa_ji Pb_ji`` as exact IEEE additions of the scaled products, from -0."""
    k = fa.k
    total = SignedZero(1)
    for j, (sa, sb) in enumerate(zip(a_scales, b_scales)):
        Xa, Xb = scale_fraction(sa), scale_fraction(sb)
        for i in range(j * k, (j + 1) * k):
            p = mul_exact(element_fraction(fa.element, a_codes[i]), element_fraction(fb.element, b_codes[i]))
            p = NAN if (Xa is NAN or Xb is NAN) else mul_exact(p, Xa * Xb)
            total = add_exact(total, p)
    return total


def block_dot_fraction(fa, fb, acc, a_codes, a_scales, b_codes, b_scales, c=None, rounding="rne", r=None,
                       rand_bits=None):
    """Exact reference of ``round(c + sum_j Xa_j Xb_j sum_i Pa_ji Pb_ji)`` for one dot product (one
    rounding into ``acc``; ``c`` an ``acc`` code, ``None`` for ``-0``)."""
    S = _block_sum(fa, fb, a_codes, a_scales, b_codes, b_scales)
    cv = SignedZero(1) if c is None else decode_fraction(acc, c)
    return round_fraction(acc, add_exact(cv, S), rounding, r=r, rand_bits=rand_bits)


def block_stream_fraction(fa, fb, acc, a_codes, a_scales, b_codes, b_scales, chunk_blocks=0, rounding="rne",
                          rbi=None, rbo=None, rand_bits=None):
    """Exact reference of one ``block_gemm`` output: block pair ``j`` adds its exact sum to ``inner``
    with one rounding; every ``chunk_blocks`` blocks (unless last) ``outer <- round(outer + inner)``,
    ``inner <- -0``; with chunking the result is ``round(outer + inner)``."""
    k, nb = fa.k, len(a_scales)
    inner = outer = SignedZero(1)
    ko = 0

    def rnd(v, word):
        return decode_fraction(acc, round_fraction(acc, v, rounding, r=word, rand_bits=rand_bits))

    for j in range(nb):
        blk = slice(j * k, (j + 1) * k)
        S = _block_sum(fa, fb, a_codes[blk], a_scales[j:j + 1], b_codes[blk], b_scales[j:j + 1])
        inner = rnd(add_exact(inner, S), None if rbi is None else int(rbi[j]))
        if chunk_blocks and (j + 1) % chunk_blocks == 0 and j != nb - 1:
            outer = rnd(add_exact(outer, inner), None if rbo is None else int(rbo[ko]))
            ko += 1
            inner = SignedZero(1)
    if chunk_blocks:
        inner = rnd(add_exact(outer, inner), None if rbo is None else int(rbo[ko]))
    return round_fraction(acc, inner)
