"""Tests of golden/quantize.py (FP4 with two-phase rounding, GradScale, LUQ, the Chen et al. gradient
quantizers, PACT, SAWB, max-abs INT4) against independent exact references (fractions.Fraction,
integers), and the exact unbiasedness proofs of the stochastic quantizers."""

import functools
from fractions import Fraction
from math import floor, fsum, sqrt

import numpy as np
import pytest

from fp4ref import FP4, fp4_frac, grid
from golden.exact import round_fraction
from golden.formats import parse_format
from golden.mac4 import fp4_value
from golden.quantize import (LUQ_FP4, amax, amax_codes, bhq_plan, bhq_quantize, grad_dequantize,
                             gradscale_init, gradscale_update, luq_decode, luq_quantize, luq_quantize_codes,
                             luq_scale_exp, luq_smp, psq_quantize, ptq_quantize, quantize_fp4,
                             quantize_int4_maxabs, quantize_int4_pact, quantize_int4_sawb, tpr_quantize)

RNG_SEED = 20200


# -- FP4 quantizers ---------------------------------------------------------------------------------

def _sample_values(rng, scale_exp, phase):
    mags = 2.0 ** rng.uniform(-9, 8, 400)
    base = [Fraction(4) ** k for k in range(-4, 4)]
    special = [b * c for b in base for c in (1, Fraction(5, 2), Fraction(3, 2))]    # grid points, midpoints
    special += [Fraction(64), Fraction(100), Fraction(1, 10 ** 6)]
    vals = list(mags) + [float(v) for v in special] + [np.nextafter(float(v), np.inf) for v in special] \
        + [np.nextafter(float(v), 0) for v in special]
    vals = np.array(vals) * 2.0 ** (scale_exp + phase)
    signs = rng.choice([-1.0, 1.0], len(vals))
    return vals * signs


@pytest.mark.parametrize("phase", [0, 1])
@pytest.mark.parametrize("scale_exp", [0, -7, 5])
@pytest.mark.parametrize("rounding", ["rne", "rna", "rtz"])
def test_quantize_fp4_nearest(phase, scale_exp, rounding):
    rng = np.random.default_rng(RNG_SEED + phase + 10 * scale_exp)
    vals = _sample_values(rng, scale_exp, phase)
    codes = quantize_fp4(vals, phase, rounding, scale_exp=scale_exp)
    G = grid(phase, scale_exp)
    unit = Fraction(2) ** (phase + scale_exp)
    for v, c in zip(vals, codes):
        v = Fraction(float(v))
        q = fp4_frac(int(c), phase, scale_exp)
        assert q in G
        assert q == 0 or (q < 0) == (v < 0)
        y = abs(v) / unit                                    # the value on the 4**k grid
        if y >= Fraction(1, 64):
            if rounding == "rtz":
                assert abs(q) == max(abs(p) for p in G if abs(p) <= abs(v))
            else:
                d = abs(q - v)
                assert not any(abs(p - v) < d for p in G)        # nearest
                ties = [p for p in G if abs(p - v) == d and p != q]
                if ties:                                           # tie: even exponent field / away
                    assert rounding == "rne" and (int(c) & 7) % 2 == 0 or \
                        rounding == "rna" and abs(q) > abs(ties[0])
        else:   # below 4**-3: unbounded-exponent rounding (grid 4**-4, 4**-3), then flush below 4**-3
            mid = Fraction(5, 2) * Fraction(4) ** -4
            if rounding == "rtz" or y < mid or (y == mid and rounding == "rne"):
                assert q == 0 and (int(c) >> 3) == (v < 0)      # signed zero
            else:
                assert abs(q) == Fraction(1, 64) * unit


def test_tpr_phase1_is_twice_grid():
    rng = np.random.default_rng(RNG_SEED)
    vals = _sample_values(rng, 0, 0)
    c0, c1 = tpr_quantize(vals)
    for ph, c in ((0, c0), (1, c1)):
        assert all(Fraction(float(f)) == fp4_frac(int(k), ph, -2) for f, k in zip(fp4_value(c, ph, -2), c))
    g1 = set(grid(1))
    for v, a, b in zip(vals, c0, c1):
        q0, q1 = fp4_frac(int(a), 0), fp4_frac(int(b), 1)
        assert q1 in g1 and q1 == 2 * fp4_frac(int(b), 0)
        v = Fraction(float(v))
        if abs(v) >= Fraction(1, 32):
            assert not any(abs(p - v) < abs(q1 - v) for p in g1)
        if abs(v) >= Fraction(1, 64):
            assert not any(abs(p - v) < abs(q0 - v) for p in grid(0))


@pytest.mark.parametrize("phase", [0, 1])
@pytest.mark.parametrize("R", [1, 3, 8])
def test_quantize_fp4_sr_sweep(phase, R):
    rng = np.random.default_rng(RNG_SEED + R + phase)
    scale_exp = -3
    unit = Fraction(2) ** (phase + scale_exp)
    vals = np.concatenate([2.0 ** rng.uniform(-6, 6, 30) * rng.choice([-1, 1], 30), [1.0, -4.0, 200.0],
                           [0.012, -0.009, 0.005, 2.0 ** -7, -(2.0 ** -8)]])   # the last: below 4**-3
    vals = vals * float(unit)
    r = np.arange(1 << R)
    codes = quantize_fp4(vals[:, None], phase, "sr", rbits=r[None, :], rand_bits=R, scale_exp=scale_exp)
    for v, row in zip(vals, codes):
        y = abs(Fraction(float(v))) / unit
        got = sum(fp4_frac(int(c), phase, scale_exp) for c in row) / (1 << R)
        for rr, c in zip(r, row):      # every single draw agrees with the exact reference rounding
            assert int(c) == round_fraction(FP4, Fraction(float(v)) / unit, "sr", r=int(rr), rand_bits=R)
        if y < Fraction(1, 64):        # unbounded exponent: grid 4**-4, 4**-3, and 4**-4 flushes to 0
            up = floor((y - Fraction(1, 256)) / Fraction(3, 256) * 2 ** R) if y >= Fraction(1, 256) else 0
            assert abs(got) == Fraction(1, 64) * unit * Fraction(up, 2 ** R)
            continue
        if y >= 64:
            assert got == (64 if v > 0 else -64) * unit
            continue
        k = max(k for k in range(-3, 4) if Fraction(4) ** k <= y)
        lo, hi = Fraction(4) ** k, Fraction(4) ** (k + 1)
        frac = (y - lo) / (hi - lo)
        expect = (lo + (hi - lo) * Fraction(floor(frac * 2 ** R), 2 ** R)) * unit
        assert got == (expect if v > 0 else -expect)
        assert abs(abs(got) - y * unit) < (hi - lo) * unit / 2 ** R        # bias below one r step


def test_tpr_sr_needs_pair():
    vals = np.array([0.3, -1.7, 5.0])
    r0, r1 = np.array([0, 7, 3]), np.array([5, 1, 2])
    c0, c1 = tpr_quantize(vals, "sr", rbits=(r0, r1), rand_bits=3)
    assert np.array_equal(c0, quantize_fp4(vals, 0, "sr", rbits=r0, rand_bits=3))
    assert np.array_equal(c1, quantize_fp4(vals, 1, "sr", rbits=r1, rand_bits=3))
    with pytest.raises(ValueError, match="rbits"):
        tpr_quantize(vals, "sr", rbits=r0, rand_bits=3)


# -- GradScale --------------------------------------------------------------------------------------

def gradscale_ref(se, m, F):
    if not np.isfinite(m):
        return se + 1
    scaled = Fraction(float(m)) / Fraction(2) ** se
    F = Fraction(float(F))
    return se + 1 if scaled > F else se - 1 if scaled <= F / 2 else se


def test_gradscale_cases():
    # per layer: keep, shrink, grow, boundaries exactly
    se = np.array([0, 0, 0, 3, 3, -2, -2, 5, 0, 0])
    m = np.array([40.0, 64.5, 32.0, 512.0, np.nextafter(512.0, np.inf), 8.0, np.nextafter(8.0, np.inf),
                  0.0, np.inf, np.nan])
    assert list(gradscale_update(se, m)) == [0, 1, -1, 3, 4, -3, -2, 4, 1, 1]
    rng = np.random.default_rng(RNG_SEED)
    for F in (64.0, 6.0, 448.0):
        se = rng.integers(-40, 40, 300)
        m = 2.0 ** rng.uniform(-60, 60, 300)
        m[:50] = F * 2.0 ** se[:50].astype(float)
        m[50:100] = F / 2 * 2.0 ** se[50:100].astype(float)
        out = gradscale_update(se, m, F)
        assert [int(o) for o in out] == [gradscale_ref(int(s), v, F) for s, v in zip(se, m)]


def test_gradscale_init():
    rng = np.random.default_rng(RNG_SEED)
    for F in (64.0, 6.0, 448.0, 1.0):
        m = np.concatenate([2.0 ** rng.uniform(-1070, 1000, 200), [5e-324, 1.0, 64.0, 32.0, 1e308]])
        s = gradscale_init(m, F)
        for v, e in zip(m, s):
            scaled = Fraction(float(v)) / Fraction(2) ** int(e)
            assert Fraction(F) / 2 < scaled <= Fraction(F)
        assert np.array_equal(gradscale_update(s, m, F), s)     # the fixed point keeps
    assert int(gradscale_init(0.0)) == 0
    with pytest.raises(ValueError, match="finite"):
        gradscale_init(np.inf)


# -- INT4 quantizers --------------------------------------------------------------------------------

def rne_int(t):
    t = Fraction(float(t))
    n = floor(t)
    d = t - n
    return n + 1 if d > Fraction(1, 2) or (d == Fraction(1, 2) and n % 2) else n


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("bits", [4, 2, 8])
def test_pact(signed, bits):
    rng = np.random.default_rng(RNG_SEED + bits)
    alpha = 2.5
    v = np.concatenate([rng.uniform(-4, 4, 500), [0.0, alpha, -alpha, 10.0, -10.0, alpha / 3]])
    codes, scale = quantize_int4_pact(v, alpha, bits=bits, signed=signed)
    qmax = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1
    assert scale == alpha / qmax and codes.dtype == np.uint8
    for x, c in zip(v, codes):
        c = int(c)
        assert 0 <= c < 2 ** bits
        q = c - 2 ** bits if signed and c >= 2 ** (bits - 1) else c
        assert (-qmax if signed else 0) <= q <= qmax
        xc = min(max(x, -alpha if signed else 0.0), alpha)
        assert q == rne_int(xc / scale)
        assert abs(q * scale - xc) <= scale / 2 * (1 + 1e-12)


def test_pact_sr_and_rtz():
    alpha = 1.5
    v = np.linspace(-0.5, 2.0, 101)
    codes, scale = quantize_int4_pact(v, alpha, rounding="rtz")
    assert [int(c) for c in codes] == [floor(Fraction(float(min(max(x, 0.0), alpha) / scale))) for x in v]
    R = 4
    t = 0.3 / scale
    c, _ = quantize_int4_pact(np.full(1 << R, 0.3), alpha, rounding="sr", rbits=np.arange(1 << R), rand_bits=R)
    frac = Fraction(float(t)) - floor(Fraction(float(t)))
    assert sum(int(x) for x in c) == (1 << R) * floor(float(t)) + floor(frac * 2 ** R)


def test_maxabs():
    rng = np.random.default_rng(RNG_SEED)
    w = rng.normal(size=(6, 50))
    codes, scale = quantize_int4_maxabs(w)
    assert scale == np.max(np.abs(w)) / 7
    ints = np.where(codes >= 8, codes.astype(int) - 16, codes.astype(int))
    assert ints.min() >= -7 and ints.max() <= 7 and 7 in np.abs(ints)
    assert all(int(q) == rne_int(x / scale) for x, q in zip(w.ravel(), ints.ravel()))
    # per-row scales
    codes_r, scale_r = quantize_int4_maxabs(w, axis=1)
    assert scale_r.shape == (6, 1) and np.all(scale_r[:, 0] == np.max(np.abs(w), axis=1) / 7)
    ints_r = np.where(codes_r >= 8, codes_r.astype(int) - 16, codes_r.astype(int))
    assert np.all(np.max(np.abs(ints_r), axis=1) == 7)
    # all zero
    c0, s0 = quantize_int4_maxabs(np.zeros(5))
    assert s0 == 0 and not np.any(c0)


def test_sawb_formula():
    rng = np.random.default_rng(RNG_SEED)
    w = rng.normal(0, 0.05, 2000)
    codes, scale = quantize_int4_sawb(w)
    ew2 = fsum(float(x) ** 2 for x in w) / len(w)
    ew1 = fsum(abs(float(x)) for x in w) / len(w)
    alpha = 12.1 * sqrt(ew2) - 12.2 * ew1
    assert 0 < alpha < np.max(np.abs(w))                      # Gaussian: clips the tails
    assert abs(7 * scale - alpha) <= 1e-12 * alpha
    ints = np.where(codes >= 8, codes.astype(int) - 16, codes.astype(int))
    assert ints.min() == -7 and ints.max() == 7
    for x, q in zip(w, ints):
        xc = min(max(float(x), -alpha), alpha)
        assert abs(q * scale - xc) <= scale / 2 * (1 + 1e-9)
    # coefficients are parameters
    _, s2 = quantize_int4_sawb(w, c1=3.212, c2=2.178)
    assert abs(7 * s2 - (3.212 * sqrt(ew2) - 2.178 * ew1)) <= 1e-12 * 7 * s2
    # constant magnitude: alpha = 12.1 - 12.2 < 0 -> falls back to max|w|
    c, s = quantize_int4_sawb(np.array([1.0, -1.0, 1.0, -1.0]))
    assert s == 1 / 7 and list(c) == [7, 9, 7, 9]
    # per-channel
    wc = rng.normal(0, 1, (3, 400)) * np.array([[0.1], [1.0], [10.0]])
    _, sc = quantize_int4_sawb(wc, axis=1)
    for i in range(3):
        a = 12.1 * sqrt(fsum(x * x for x in wc[i]) / 400) - 12.2 * fsum(abs(x) for x in wc[i]) / 400
        assert abs(7 * sc[i, 0] - a) <= 1e-12 * a


@pytest.mark.parametrize("call, match", [
    (lambda: quantize_fp4([1.0], 0, "sr", rbits=None, rand_bits=0), "rand_bits"),
    (lambda: quantize_fp4([1.0], scale_exp=0.5), "scale_exp must be integers"),
    (lambda: gradscale_update(0, -1.0), "nonnegative"),
    (lambda: gradscale_update(0, 1.0, fmt_max=0), "fmt_max"),
    (lambda: quantize_int4_pact([1.0], 0.0), "alpha"),
    (lambda: quantize_int4_pact([1.0], 1.0, bits=9), "bits"),
    (lambda: quantize_int4_maxabs([np.nan]), "finite"),
    (lambda: quantize_int4_sawb([]), "nonempty"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- LUQ: definitions (independent Fraction reference) -----------------------------------------------

def luq_level(code):
    """Signed level of an fp4_luq code, in units of alpha, from the layout alone: sign = bit 3,
    exponent e = bits 0-2, e = 0 zero, else 2**(e-1)."""
    code = np.asarray(code).astype(np.int64)
    e = code & 7
    mag = np.where(e == 0, 0, np.left_shift(1, np.maximum(e - 1, 0)))
    return np.where(code >> 3 == 1, -mag, mag)


def floor_log2(y):
    n = y.numerator.bit_length() - y.denominator.bit_length()
    while Fraction(2) ** n > y:
        n -= 1
    while Fraction(2) ** (n + 1) <= y:
        n += 1
    return n


def luq_ref(x, alpha, rounding, r=None, R=None):
    """LUQ of the float x with scale alpha, as (sign bit, level), written from the definitions:
    stochastic underflow below alpha, log-domain rounding between 2**n alpha and 2**(n+1) alpha,
    saturation at 2**6 alpha, the R-bit rule up iff floor(p * 2**R) + r >= 2**R for the probability
    p of rounding up; rne: nearest, ties up (1.5 * 2**n) or to 0 (alpha / 2)."""
    if np.isnan(x):
        return 0, 0
    sign = 1 if np.signbit(x) else 0
    if np.isinf(x):
        return sign, 64
    y = abs(Fraction(float(x))) / Fraction(float(alpha))
    if y >= 64:
        return sign, 64
    if y >= 1:
        n = floor_log2(y)
        lo = Fraction(2) ** n
        p = (y - lo) / lo                               # LUQ's P(up) = (|x| - 2**n a) / (2**n a)
        up = floor(p * 2 ** R) + r >= 2 ** R if rounding == "sr" else y >= lo * Fraction(3, 2)
        return sign, min(int(lo) * 2 if up else int(lo), 64)
    up = floor(y * 2 ** R) + r >= 2 ** R if rounding == "sr" else y > Fraction(1, 2)
    return sign, 1 if up else 0


def _luq_cases(rng):
    """Values around every decision point of the R-bit rule for a few alphas (short and long
    significands, powers of two), plus random magnitudes, zeros, Inf, NaN."""
    out = []
    for alpha in (1.0, 2.0 ** -7, 3 * 2.0 ** -10, 1 / 3, 0.7, 2.0 ** 40 / 7):
        base = [alpha * 2.0 ** n * (1 + j / 16) for n in range(-1, 8) for j in range(16)]
        base += [alpha * j / 256 for j in range(1, 256, 7)]
        v = np.array(base)
        v = np.concatenate([v, np.nextafter(v, 0), np.nextafter(v, np.inf),
                            alpha * 2.0 ** rng.uniform(-12, 8, 200), [0.0, -0.0, np.inf, -np.inf, np.nan]])
        out.append((alpha, v * rng.choice([-1.0, 1.0], len(v))))
    return out


@pytest.mark.parametrize("R", [1, 3, 8, 17, 32])
def test_luq_sr_definition(R):
    rng = np.random.default_rng(RNG_SEED + R)
    for alpha, v in _luq_cases(rng):
        r = rng.integers(0, 1 << R, v.shape, dtype=np.uint64)
        codes, a = luq_quantize(v, alpha, "sr", rbits=r, rand_bits=R)
        assert a == alpha and codes.dtype == np.uint8
        lev = luq_level(codes)
        for x, c, l, rr in zip(v, codes, lev, r):
            sign, mag = luq_ref(x, alpha, "sr", int(rr), R)
            assert (int(c) >> 3, abs(int(l))) == (sign, mag), (x, alpha, int(rr))


def test_luq_rne_definition():
    rng = np.random.default_rng(RNG_SEED)
    for alpha, v in _luq_cases(rng):
        codes, _ = luq_quantize(v, alpha, "rne")
        for x, c in zip(v, codes):
            sign, mag = luq_ref(x, alpha, "rne")
            assert (int(c) >> 3, abs(int(luq_level(c)))) == (sign, mag), (x, alpha)
    # the ties, stated
    c, _ = luq_quantize(np.array([1.5, 0.5, 3.0, 0.25, -6.0, 96.0, 100.0]), 1.0, "rne")
    assert list(luq_level(c)) == [2, 0, 4, 0, -8, 64, 64]


@pytest.mark.parametrize("x_format", ["fp16", "bf16", "fp32"])
def test_luq_codes_form_is_the_values_form(x_format):
    """The hardware form (float codes, alpha = 2**scale_exp) equals LUQ of the decoded values."""
    fmt = parse_format(x_format)
    rng = np.random.default_rng(RNG_SEED)
    codes = np.arange(1 << 16) if fmt.width == 16 else rng.integers(0, 1 << 32, 1 << 16, dtype=np.int64)
    codes = np.concatenate([codes, fmt.edge_codes()])
    R = 8
    for se in (-20, -3, 0, 9):
        r = rng.integers(0, 1 << R, codes.shape)
        q = luq_quantize_codes(codes, x_format, se, "sr", rbits=r, rand_bits=R)
        q2, _ = luq_quantize(fmt.decode(codes), 2.0 ** se, "sr", rbits=r, rand_bits=R)
        assert np.array_equal(q, q2)
        assert np.array_equal(luq_quantize_codes(codes, x_format, se, "rne"),
                              luq_quantize(fmt.decode(codes), 2.0 ** se, "rne")[0])
    # per-element scale exponents broadcast
    se = rng.integers(-10, 10, codes.shape)
    q = luq_quantize_codes(codes, x_format, se, "rne")
    assert np.array_equal(q, luq_quantize(fmt.decode(codes), np.ldexp(1.0, se), "rne")[0])


def test_luq_specials_and_layout():
    assert LUQ_FP4 == parse_format("e3m0:bias=1:finite") and str(LUQ_FP4) == "fp4_luq"
    assert list(luq_decode(np.arange(16), 0.5)) == [0.0, 0.5, 1, 2, 4, 8, 16, 32, -0.0, -0.5, -1, -2, -4,
                                                    -8, -16, -32]
    assert list(luq_level(np.arange(16))) == [int(v) for v in LUQ_FP4.decode(np.arange(16))]
    f16 = parse_format("fp16")
    c = f16.encode(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-7, -1e-7, 65504.0]))
    q = luq_quantize_codes(c, "fp16", 0, "sr", rbits=np.zeros(len(c), np.int64), rand_bits=4)
    assert list(q) == [0, 7, 15, 0, 8, 0, 8, 7]        # NaN -> +0; Inf saturates; zeros keep the sign


def test_luq_alpha_from_max():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.normal(size=(3, 16)) * np.array([[1e-3], [1.0], [7e5]])
    # per tensor: the max magnitude maps exactly to the top level, deterministically
    R = 6
    codes, alpha = luq_quantize(x, "max", "sr", rbits=rng.integers(0, 1 << R, x.shape), rand_bits=R)
    assert alpha.shape == () and alpha == np.max(np.abs(x)) / 64
    i = np.unravel_index(np.argmax(np.abs(x)), x.shape)
    assert abs(int(luq_level(codes[i]))) == 64
    # per block: one alpha per block of 8 along the last axis
    codes, alpha = luq_quantize(x, "max", "rne", block=8)
    assert alpha.shape == (3, 2)
    assert np.array_equal(alpha, np.max(np.abs(x.reshape(3, 2, 8)), axis=-1) / 64)
    assert np.array_equal(amax(x, block=8), alpha * 64)
    dec = luq_decode(codes, alpha, block=8)
    assert np.all(np.abs(dec) <= np.repeat(alpha, 8, axis=-1) * 64)
    assert np.all(np.max(np.abs(dec.reshape(3, 2, 8)), axis=-1) == alpha * 64)
    # power-of-two alpha: the smallest power of two whose top level covers the max
    _, a2 = luq_quantize(x, "pow2", "rne", block=4)
    m = amax(x, block=4)
    assert np.all(a2 * 64 >= m) and np.all(a2 * 32 < m)
    assert np.all(np.frexp(a2)[0] == 0.5)
    assert list(luq_scale_exp(np.array([0.0, 1.0, 64.0, 64.5, 128.0, 2.0 ** -30, 3.0]))) == \
        [0, -6, 0, 1, 1, -36, -4]
    # all-zero block: alpha 0 ("max") or 1 ("pow2"), codes keep the zeros' signs
    z = np.array([[0.0, -0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 0.25]])
    c, a = luq_quantize(z, "max", "rne", block=4)
    assert list(a[:, 0]) == [0.0, 2.0 / 64] and list(c[0]) == [0, 8, 0, 0]
    assert list(luq_quantize(z, "pow2", "rne", block=4)[1][:, 0]) == [1.0, 2.0 ** -5]


@pytest.mark.parametrize("spec, want", [("fp16", (-30, 10)), ("bf16", (-139, 122)), ("fp32", (-155, 122)),
                                        ("e5m2", (-22, 10)), ("e4m3:fn", (-15, 3)), ("e5m2:nosub", (-20, 10))])
def test_luq_scale_exp_range_covers_every_maximum(spec, want):
    """The scale of every finite positive magnitude of the format lies in the range, both ends
    reached (over all codes of the 8- and 16-bit formats; fp32 at its extremes)."""
    from golden.quantize import luq_scale_exp_range
    fmt = parse_format(spec)
    assert luq_scale_exp_range(fmt) == want
    codes = fmt.all_codes() if fmt.width <= 16 else np.array([1, 2, 1 << 23, fmt.max_code, fmt.max_code - 1])
    v = fmt.decode(codes)
    v = v[np.isfinite(v) & (v > 0)]
    s = luq_scale_exp(v)
    if fmt.width <= 16:
        assert (int(s.min()), int(s.max())) == want
    assert want[0] <= s.min() and s.max() <= want[1]


def test_amax_nan_inf():
    v = np.array([[1.0, -3.0, np.inf, 2.0], [np.nan, -np.inf, -np.inf, 0.0], [0.0, -0.0, 0.0, -5.0]])
    m = amax(v, block=2)
    assert np.isnan(m[1, 0]) and m[0, 1] == np.inf and m[1, 1] == np.inf and m[0, 0] == 3.0
    assert m[2, 0] == 0.0 and m[2, 1] == 5.0 and np.isnan(amax(v))
    with pytest.raises(ValueError, match="finite"):
        luq_quantize(v, "max", "rne")
    with pytest.raises(ValueError, match="block must divide"):
        amax(v, block=3)
    # the code-domain reducer: magnitude codes, NaN codes above Inf above finite values
    for name in ("fp16", "bf16", "fp8_e4m3", "fp32"):
        fmt = parse_format(name)
        rng = np.random.default_rng(RNG_SEED)
        vals = rng.normal(size=(4, 64)) * 2.0 ** rng.integers(-8, 8, (4, 1))
        codes = fmt.encode(vals)
        got = amax_codes(codes, name, block=16)
        dec = fmt.decode(got)
        assert got.dtype == fmt.code_dtype
        assert np.array_equal(dec, np.max(np.abs(fmt.decode(codes)).reshape(4, 4, 16), axis=-1))
        codes[0, 3] = fmt.encode(np.array([np.nan]))[0] | fmt.sign_mask
        assert np.isnan(fmt.decode(amax_codes(codes, name, block=16))[0, 0])
        assert np.isnan(fmt.decode(amax_codes(codes, name)))
        if fmt.has_inf:
            codes[1, 20] = fmt.encode(np.array([-np.inf]))[0]
            assert fmt.decode(amax_codes(codes, name, block=16))[1, 1] == np.inf


def test_luq_smp():
    """SMP: the mean of s samples has expectation E[Q] and variance Var[Q] / s, exactly (every pair
    of R-bit words enumerated)."""
    R = 4
    x = np.array([0.3, -0.05, 1.7, 2.9, -40.0, 0.01])
    alpha = 1.0
    words = np.arange(1 << R)
    single = luq_level(luq_quantize(x[None, :], alpha, "sr", rbits=words[:, None], rand_bits=R)[0])
    e1 = [Fraction(int(s), 1 << R) for s in single.sum(axis=0)]
    v1 = [Fraction(int(s2), 1 << R) - e * e for s2, e in zip((single ** 2).sum(axis=0), e1)]
    r0, r1 = np.meshgrid(words, words, indexing="ij")
    rb = np.stack([r0.ravel(), r1.ravel()])[:, :, None] * np.ones(len(x), np.int64)   # (2, 256, 6)
    mean, codes, a = luq_smp(np.broadcast_to(x, (1 << 2 * R, len(x))), rb, R, scale=alpha)
    assert codes.shape == (2, 1 << 2 * R, len(x)) and a == alpha
    n = luq_level(codes).sum(axis=0)                                   # exact integer sums
    assert np.array_equal(mean, n / 2)
    for j in range(len(x)):
        e2 = Fraction(int(n[:, j].sum()), 2 << 2 * R)
        var2 = Fraction(int((n[:, j] ** 2).sum()), 4 << 2 * R) - e2 * e2
        assert e2 == e1[j] and var2 == v1[j] / 2
    assert any(v > 0 for v in v1)
    with pytest.raises(ValueError, match="rbits must have shape"):
        luq_smp(x, np.zeros((2, 3)), R)


# -- Exact unbiasedness: E[Q(x)] over all 2**R words, every FP16 x ------------------------------------
#
# For each quantizer and every finite binary16 x, E[Q(x)] = 2**-R * sum over the 2**R words r of
# Q(x, r), summed exactly in integers (units of 2**-24 for the input, of the result's grid for Q). The
# claim checked (docs/arithmetic.md, gradient quantizers, "bias"): inside the range, with lo <= |x| <
# hi the two grid neighbours of |x|, gap = hi - lo,
#     |x| - |E[Q(x)]| = (((|x| - lo) * 2**R) mod gap) / 2**R,   so   0 <= |x| - |E[Q(x)]| < 2**-R * gap,
# and E[Q(x)] has the sign of x. lo and gap are derived here from each quantizer's definition, not
# from the model. Out of range, the stated saturation / flush values are checked.

UNIT = 24                                        # binary16 values are integers in units of 2**-24
F16 = np.arange(1 << 16)
F16_VALUES = F16.astype(np.uint16).view(np.float16).astype(np.float64)      # numpy's own decoding
F16_FINITE = np.isfinite(F16_VALUES)
X_UNITS = np.where(F16_FINITE, np.abs(np.where(F16_FINITE, F16_VALUES, 0.0)) * 2.0 ** UNIT, 0).astype(np.int64)
CI_RBITS = (1, 2, 3, 4, 5, 8)


def _word_sums(quantize, level, R, codes=F16, chunk_elems=1 << 20):
    """For each code: the exact integer sum over all 2**R words r of level(quantize(code, r)), the
    words enumerated through the model (vectorized, in chunks)."""
    words = np.arange(1 << R, dtype=np.int64)
    step = max(1, chunk_elems >> R)
    out = np.empty(len(codes), np.int64)
    for i in range(0, len(codes), step):
        c = codes[i:i + step]
        out[i:i + len(c)] = level(quantize(c[:, None], words[None, :])).sum(axis=1)
    return out


def _floor_log2(x):
    """floor(log2(x)) of positive int64 arrays."""
    return np.frexp(x.astype(np.float64))[1].astype(np.int64) - 1      # exact below 2**53


def _check_bias(name, R, sums, q_unit, lo, gap, inside):
    """sums * q_unit = 2**R * E[Q(x)] in units of 2**-24; lo, gap in the same units; inside: mask."""
    assert inside.any()
    got = np.where(F16_VALUES < 0, -sums, sums)[inside] * q_unit
    assert np.all(got >= 0), f"{name} R={R}: E[Q(x)] with the wrong sign"
    x = X_UNITS[inside] << R
    bias = x - got                                                     # 2**R * (|x| - |E[Q(x)]|)
    g = gap[inside]
    bad = ~((bias >= 0) & (bias < g))
    assert not bad.any(), f"{name} R={R}: bound violated at codes {F16[inside][bad][:5]}"
    expect = ((X_UNITS[inside] - lo[inside]) << R) % g
    bad = bias != expect
    assert not bad.any(), f"{name} R={R}: bias differs from the formula at codes {F16[inside][bad][:5]}"
    return bias, g


# LUQ with alpha = 2**s: levels alpha * 2**(e-1).
LUQ_SCALES = (-20, -3, 9)


def _luq_proof(R, s):
    sums = _word_sums(lambda c, r: luq_quantize_codes(c, "fp16", s, "sr", rbits=r, rand_bits=R), luq_level, R)
    A = 1 << (s + UNIT)                                                # alpha in units of 2**-24
    X = X_UNITS
    n = np.where(X >= A, _floor_log2(np.maximum(X, 1)) - (s + UNIT), 0)
    lo = np.where(X >= A, A << n, 0)
    gap = A << n
    inside = F16_FINITE & (X <= 64 * A)
    bias, g = _check_bias(f"LUQ s={s}", R, sums, A, lo, gap, inside)
    log_range = (X[inside] >= A)
    assert np.all(bias[log_range] < X[inside][log_range])        # relative bias < 2**-R in the log range
    # saturation above the top level, NaN -> 0, Inf -> +-top
    sat = ~F16_FINITE | (X > 64 * A)
    nan = np.isnan(F16_VALUES)
    expect = np.where(nan, 0, 64 << R) * np.where(np.signbit(F16_VALUES), -1, 1)
    assert np.array_equal(sums[sat], expect[sat])
    return bias, log_range


@pytest.mark.parametrize("s", LUQ_SCALES)
@pytest.mark.parametrize("R", CI_RBITS)
def test_luq_unbiased_exact(R, s):
    _luq_proof(R, s)


def test_luq_unbiased_exact_log_range_r10():
    """With R >= 10 (binary16's fraction width) the log-domain rounding is exactly unbiased for
    every binary16 x in [alpha, 2**6 alpha]: only stochastic underflow keeps a bias."""
    R, s = 10, -3
    A = 1 << (s + UNIT)
    codes = F16[F16_FINITE & (X_UNITS >= A) & (X_UNITS <= 64 * A)]
    sums = _word_sums(lambda c, r: luq_quantize_codes(c, "fp16", s, "sr", rbits=r, rand_bits=R), luq_level, R,
                      codes)
    assert len(codes) > 12000 and np.array_equal(sums * A, np.where(F16_VALUES[codes] < 0, -1, 1) * (X_UNITS[codes] << R))


@pytest.mark.long
@pytest.mark.parametrize("s", LUQ_SCALES)
def test_luq_unbiased_exact_r12(s):
    bias, log_range = _luq_proof(12, s)
    assert not bias[log_range].any()           # exact in the log range (R >= 10)
    # stochastic underflow: |x| / alpha has bits down to 2**-(24 + s), so it is biased iff that is
    # more than R = 12 bits
    assert bias[~log_range].any() == (24 + s > 12)


# Sun et al.'s FP4 with sr: y = x * 2**-(s + ph), grid 4**k (k = -3 ... 3) times 2**(s + ph).
SUN_CASES = ((0, 0), (-5, 1))


def _sun_proof(R, s, ph):
    def level(c):          # signed value of an fp4_r4 code in units of 4**-3 (layout: sign, e; 4**(e-4))
        e = c.astype(np.int64) & 7
        mag = np.where(e == 0, 0, np.left_shift(1, 2 * np.maximum(e - 1, 0)))
        return np.where(c >> 3 == 1, -mag, mag)

    sums = _word_sums(lambda c, r: quantize_fp4(F16_VALUES[c], ph, "sr", rbits=r, rand_bits=R, scale_exp=s),
                      level, R)
    sh = s + ph - 6 + UNIT                             # 4**-3 * 2**(s + ph) in units of 2**-24
    assert sh >= 0
    unit = 1 << sh
    X = X_UNITS
    Y = X  # compare in x units: grid point 4**k * 2**(s+ph) = unit * 4**(k+3)
    k3 = np.where(Y >= unit, _floor_log2(np.maximum(Y, 1)) - sh, 0) // 2   # k + 3 = floor(log4(y / 4**-3))
    lo = unit << (2 * k3)
    gap = 3 * lo
    inside = F16_FINITE & (Y >= unit) & (Y <= 64 * 64 * unit)
    _check_bias(f"FP4 s={s} ph={ph}", R, sums, unit, lo, gap, inside)
    # below 4**-3: the unbounded-exponent step between 4**-4 and 4**-3, then flush (biased to zero)
    low = F16_FINITE & (Y < unit)
    q = unit // 4                                      # 4**-4 in units (unit >= 4 for these cases)
    F = np.where(Y >= q, ((Y - q) << R) // (3 * q), 0)
    expect = F * np.where(np.signbit(F16_VALUES), -1, 1)
    assert np.array_equal(sums[low], expect[low])
    assert np.all(np.abs(sums[low]) * unit <= X[low] << R)
    # above 64: saturation; NaN -> +0, Inf -> +-64
    sat = ~F16_FINITE | (Y > 64 * 64 * unit)
    expect = np.where(np.isnan(F16_VALUES), 0, (64 * 64) << R) * np.where(np.signbit(F16_VALUES), -1, 1)
    assert np.array_equal(sums[sat], expect[sat])


@pytest.mark.parametrize("s, ph", SUN_CASES)
@pytest.mark.parametrize("R", CI_RBITS)
def test_fp4_sr_unbiased_exact(R, s, ph):
    _sun_proof(R, s, ph)


@pytest.mark.long
@pytest.mark.parametrize("s, ph", SUN_CASES)
def test_fp4_sr_unbiased_exact_r12(s, ph):
    _sun_proof(12, s, ph)


# lowbit's sr (round_raw) from binary16 into e5m2.

def _e5m2_proof(R):
    from golden.stochastic_round import round_codes

    def level(c):          # signed e5m2 value in units of 2**-16 (layout: sign, 5-bit e, 2-bit f)
        c = c.astype(np.int64)
        e, f = (c >> 2) & 31, c & 3
        mag = np.where(e == 0, f, (4 + f) << np.maximum(e - 1, 0))
        return np.where(c >> 7 == 1, -mag, mag)

    sums = _word_sums(lambda c, r: round_codes(c, "fp16", "e5m2", "sr", rbits=r, rand_bits=R), level, R)
    q_unit = 1 << (UNIT - 16)
    X = X_UNITS
    t = np.maximum(_floor_log2(np.maximum(X, 1)) - UNIT, -14)        # binade, the subnormals' at -14
    ulp = np.left_shift(1, t - 2 + UNIT)
    lo = X // ulp * ulp
    inside = F16_FINITE & (X <= 57344 << UNIT)
    bias, _ = _check_bias("sr fp16->e5m2", R, sums, q_unit, lo, ulp, inside)
    if R >= 8:        # binary16 has 8 bits below e5m2's last place: exactly unbiased
        assert not bias.any()
    else:
        assert bias.any()


@pytest.mark.parametrize("R", CI_RBITS)
def test_sr_unbiased_exact(R):
    _e5m2_proof(R)


@pytest.mark.long
def test_sr_unbiased_exact_r12():
    _e5m2_proof(12)


def test_sr_fp32_sampled():
    """lowbit's sr from binary32 into e5m2 on sampled inputs: the same exact bias formula (binary32
    has 21 bits below e5m2's last place, so R = 12 leaves a bias)."""
    from golden.stochastic_round import round_codes
    rng = np.random.default_rng(RNG_SEED)
    e5m2 = parse_format("e5m2")
    x = (rng.uniform(1, 2, 200) * 2.0 ** rng.integers(-20, 15, 200)).astype(np.float32)
    x[:5] = [3 * 2.0 ** -18, 1.0 + 2.0 ** -20, 57344.0, 2.0 ** -16 * 0.75, 1.0]
    codes = x.view(np.uint32).astype(np.int64)
    for R in (4, 12):
        words = np.arange(1 << R)
        q = round_codes(codes[:, None], "fp32", "e5m2", "sr", rbits=words[None, :], rand_bits=R)
        vals = e5m2.decode(q)
        for xi, row in zip(x, vals):
            xf = Fraction(float(xi))
            e = Fraction(float(row.sum())) / 2 ** R       # multiples of 2**-16 below 2**16: exact
            t = max(floor_log2(xf), -14)
            ulp = Fraction(2) ** (t - 2)
            lo = floor(xf / ulp) * ulp
            assert xf - e == ((xf - lo) * 2 ** R % ulp) / 2 ** R


# -- Chen et al. 2020: PTQ, PSQ, BHQ -------------------------------------------------------------------

def grid_code_ref(x, lo, hi, bits, rounding, r=None, R=None):
    """One element on the grid lo + k * step, step = (hi - lo) / B (float64, as the docs state),
    t = (x - lo) / step (float64), then the integer rounding written with Fractions."""
    B = 2 ** bits - 1
    step = (hi - lo) / B
    t = Fraction(0) if step == 0 else Fraction(float((x - lo) / step))
    n = floor(t)
    frac = t - n
    if rounding == "sr":
        up = floor(frac * 2 ** R) + r >= 2 ** R
    else:
        up = frac > Fraction(1, 2) or (frac == Fraction(1, 2) and n % 2 == 1)
    return min(max(n + up, 0), B)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_ptq_psq_definition(bits):
    rng = np.random.default_rng(RNG_SEED + bits)
    g = rng.normal(size=(6, 20)) * 2.0 ** rng.integers(-6, 6, (6, 1))
    g[2] = 0.25                                   # a constant row: step 0, codes 0, value exact
    R = 5
    r = rng.integers(0, 1 << R, g.shape)
    for rounding in ("sr", "rne"):
        kw = dict(rbits=r, rand_bits=R) if rounding == "sr" else {}
        qt, qs = ptq_quantize(g, bits, rounding, **kw), psq_quantize(g, bits, rounding, **kw)
        assert qs.codes.dtype == np.uint8 and qs.zero.shape == (6, 1) and qt.zero.shape == (1, 1)
        for i in range(6):
            for j in range(20):
                rr = int(r[i, j]) if rounding == "sr" else None
                assert int(qt.codes[i, j]) == grid_code_ref(g[i, j], g.min(), g.max(), bits, rounding, rr, R)
                assert int(qs.codes[i, j]) == grid_code_ref(g[i, j], g[i].min(), g[i].max(), bits, rounding,
                                                            rr, R)
        assert np.array_equal(qs.order, np.arange(6)) and np.all(qs.sizes == 1) and np.all(qs.shrink == 1)
        d = grad_dequantize(qs)
        assert np.array_equal(d[2], g[2])
        assert np.all(np.abs(d - g) <= qs.step * (1 + 1e-12))


def householder_ref(k):
    """The k x k reflection H = I - 2 v v^T / (v^T v), v = e1 - 1/sqrt(k) 1 (dense, float64); the
    identity for k = 1 (a group of one is not transformed)."""
    if k == 1:
        return np.eye(1)
    v = -np.ones(k) / np.sqrt(k)
    v[0] += 1
    return np.eye(k) - 2 * np.outer(v, v) / np.dot(v, v)


def bhq_inverse_ref(q, n):
    """T^-1 (slot space -> input rows) as a dense matrix built from the plan per the docs:
    block diag(diag(a, 1, ..., 1) H_k), then the rows put back in input order."""
    tinv = np.zeros((n, n))
    start = 0
    for k, a in zip(q.sizes, q.shrink):
        k = int(k)
        s = np.ones(k)
        s[0] = a
        tinv[start:start + k, start:start + k] = s[:, None] * householder_ref(k)
        start += k
    out = np.zeros((n, n))
    out[q.order] = tinv
    return out


def outlier_grad():
    """A gradient with a few rows far larger than the rest (the case BHQ is built for)."""
    rng = np.random.default_rng(RNG_SEED)
    g = rng.normal(size=(32, 64)) * 0.01
    g[[3, 17, 25]] *= np.array([[400.0], [150.0], [60.0]])
    return g


def test_bhq_plan_and_transform():
    g = outlier_grad()
    m = g.max(axis=1) - g.min(axis=1)
    R = 6
    q = bhq_quantize(g, 4, "sr", rbits=np.random.default_rng(1).integers(0, 1 << R, g.shape), rand_bits=R)
    n, G = g.shape[0], len(q.sizes)
    assert sorted(q.order) == list(range(n)) and q.sizes.sum() == n
    starts = np.concatenate([[0], np.cumsum(q.sizes)[:-1]])
    leaders = q.order[starts]
    assert set(leaders) == set(np.argsort(-m, kind="stable")[:G])          # the G largest ranges lead
    followers = np.delete(q.order, starts)
    assert np.all(np.diff(m[followers]) <= 0)                               # in decreasing range
    quota = (n - G) * m[leaders] / m[leaders].sum()
    assert np.all(np.abs((q.sizes - 1) - quota) < 1)                        # proportional to the leader
    for k, a, s0 in zip(q.sizes, q.shrink, starts):
        l1, l2 = m[q.order[s0]], m[q.order[s0 + 1]] if k > 1 else 0.0
        if k > 1:
            assert a == pytest.approx(min(max(np.cbrt((k - 1) * l1 / (np.sqrt(k) * l2)), 1), k), rel=1e-12)
    # the decode is T^-1 (zero + codes * step) with T^-1 built from the docs
    tinv = bhq_inverse_ref(q, n)
    y = q.zero + q.codes * q.step
    assert np.allclose(grad_dequantize(q), tinv @ y, rtol=0, atol=1e-12 * np.abs(g).max())
    # H spreads the first row evenly (H e1 = 1/sqrt(k)) and is its own inverse
    for k in (2, 5, 16):
        H = householder_ref(k)
        assert np.allclose(H[:, 0], 1 / np.sqrt(k)) and np.allclose(H @ H, np.eye(k))
    # with 16 bits and rne, the quantized gradient is close: |error| <= sum_k |T^-1_jk| step_k / 2
    q16 = bhq_quantize(g, 16, "rne")
    err = np.abs(grad_dequantize(q16) - g)
    assert np.all(err <= (np.abs(bhq_inverse_ref(q16, n)) @ q16.step)[:, :] / 2 * (1 + 1e-6) + 1e-15)
    # groups=None: the G of least modelled variance (docs) among all G
    def cost(p):
        order, sizes, shrink = p
        st = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        c = 0.0
        for k, a, s0 in zip(sizes, shrink, st):
            l1 = m[order[s0]]
            c += l1 ** 2 if k == 1 else (l1 / (a * np.sqrt(k)) + m[order[s0 + 1]]) ** 2 * (a * a + k - 1)
        return c
    chosen = cost(bhq_plan(m))
    assert all(chosen <= cost(bhq_plan(m, G)) * (1 + 1e-12) for G in range(1, n + 1))
    assert len(bhq_plan(m, 5)[1]) == 5


def _per_group_apply(x, sizes, shrink, inverse):
    """The group transforms one group at a time (the form _bhq_apply had before it stacked groups
    of one size): a 2-D _householder per group."""
    from golden.quantize import _householder
    y = x.copy()
    start = 0
    for k, a in zip(sizes, shrink):
        k = int(k)
        if k > 1:
            blk = y[start:start + k].copy()
            if inverse:
                blk = _householder(blk, k)
                blk[0] = blk[0] * a
            else:
                blk[0] = blk[0] / a
                blk = _householder(blk, k)
            y[start:start + k] = blk
        start += k
    return y


def _bits_equal(a, b):
    return a.shape == b.shape and np.array_equal(np.asarray(a, np.float64).view(np.int64),
                                                 np.asarray(b, np.float64).view(np.int64))


def _bhq_ranges(rng, n, kind):
    if kind == "lognormal":
        return np.exp(rng.normal(0, 1, n))
    if kind == "outliers":
        m = rng.random(n) * 1e-3
        m[: min(n, 3)] = [5.0, 3.0, 1.0][:min(n, 3)]
        return rng.permutation(m)
    if kind == "ties":
        return rng.integers(0, 4, n) * 0.25
    if kind == "zeros":
        return np.zeros(n)
    return rng.random(n)


@pytest.mark.parametrize("kind", ["uniform", "lognormal", "outliers", "ties", "zeros"])
def test_bhq_fast_plan_and_transforms_are_the_reference(kind):
    """bhq_plan's compiled search (fast) picks the reference's G and plan bit for bit (ties of
    ranges and of costs, zero ranges, outliers, 1 to 600 rows); the stacked group transforms of
    bhq_quantize and grad_dequantize equal the one-group-at-a-time transforms bit for bit (zeros of
    both signs, 1 to 17 columns)."""
    from golden.quantize import _bhq_apply
    rng = np.random.default_rng([RNG_SEED, len(kind)])
    for n in (1, 2, 5, 8, 9, 33, 130, 600):
        m = _bhq_ranges(rng, n, kind)
        fast, ref = bhq_plan(m), bhq_plan(m, fast=False)
        assert all(np.array_equal(f, r) for f, r in zip(fast, ref)) and _bits_equal(fast[2], ref[2]), n
        for D in (1, 2, 3, 17):
            g = rng.standard_normal((n, D)) * m[:, None]
            g[0, 0], g[n // 2, -1] = -0.0, 0.0
            order, sizes, shrink = fast
            for inverse in (False, True):
                assert _bits_equal(_bhq_apply(g[order], sizes, shrink, inverse),
                                   _per_group_apply(g[order], sizes, shrink, inverse)), (n, D, inverse)
            q = bhq_quantize(g, 4, "sr", rbits=rng.integers(0, 1 << 8, g.shape), rand_bits=8)
            y = q.zero + q.codes * q.step
            want = np.empty_like(y)
            want[q.order] = _per_group_apply(y, q.sizes, q.shrink, True)
            assert _bits_equal(grad_dequantize(q), want), (n, D)


def test_bhq_plan_huge_ranges_take_the_reference():
    m = np.array([1e300, 3e299, 1.0, 0.5, 0.0])
    with np.errstate(over="ignore", invalid="ignore"):          # the model's squares overflow
        assert all(np.array_equal(f, r) for f, r in zip(bhq_plan(m), bhq_plan(m, fast=False)))


@pytest.mark.long
def test_long_bhq_plan_sweep():
    """Training-sized gradients (up to 4,096 rows): the compiled search picks the reference's plan."""
    rng = np.random.default_rng([RNG_SEED, 4096])
    for n, kind in ((4096, "lognormal"), (4096, "outliers"), (1856, "ties"), (2500, "uniform")):
        m = _bhq_ranges(rng, n, kind)
        fast, ref = bhq_plan(m), bhq_plan(m, fast=False)
        assert all(np.array_equal(f, r) for f, r in zip(fast, ref)) and _bits_equal(fast[2], ref[2]), (n, kind)


@functools.lru_cache(maxsize=None)
def _exact_stats(name, R=8, bits=4):
    """E[Q(g)] and the total variance sum_elements Var[Q(g)] of a quantizer on outlier_grad(), exactly
    over the R-bit words: each transformed element rounds up with probability p = (count of words
    that round it up) / 2**R, read off the 2**R runs in which every element gets the same word r (each
    run gives every element its exact marginal); the elements' roundings are independent, so
    Var = sum_j sum_k (T^-1_jk)**2 step_k**2 p_k (1 - p_k) per column."""
    fn = {"ptq": ptq_quantize, "psq": psq_quantize, "bhq": bhq_quantize}[name]
    g = outlier_grad()
    runs = [fn(g, bits, "sr", rbits=np.full(g.shape, r), rand_bits=R) for r in range(1 << R)]
    q = runs[0]
    codes = np.stack([x.codes.astype(np.int64) for x in runs])
    up = codes - codes[0]                             # r = 0 never rounds up
    assert up.min() >= 0 and up.max() <= 1
    p = up.sum(axis=0) / 2 ** R
    step = np.broadcast_to(q.step, g.shape)
    tinv = bhq_inverse_ref(q, g.shape[0])
    var = float(np.sum((tinv ** 2) @ (step ** 2 * p * (1 - p))))
    mean = np.mean([grad_dequantize(x) for x in runs], axis=0)
    return g, q, tinv, var, mean


@pytest.mark.parametrize("name", ["ptq", "psq", "bhq"])
def test_chen_unbiased_and_bounds(name):
    g, q, tinv, var, mean = _exact_stats(name)
    R, B = 8, 15
    N, D = g.shape
    # unbiased up to the R-bit truncation (< 2**-R step per element) and float64 rounding
    step = np.broadcast_to(q.step, g.shape)
    assert np.all(np.abs(mean - g) <= 2.0 ** -R * (np.abs(tinv) @ step) + 1e-12 * np.abs(g).max())
    # the variance bounds (Chen et al.: D/4 ||T^-1||_F**2 with the grids' bin widths)
    rng_rows = g.max(axis=1) - g.min(axis=1)
    ptq_bound = N * D * (g.max() - g.min()) ** 2 / (4 * B ** 2)
    psq_bound = D * np.sum(rng_rows ** 2) / (4 * B ** 2)
    assert psq_bound <= ptq_bound
    if name == "ptq":
        assert var <= ptq_bound
    elif name == "psq":
        assert var <= psq_bound
    else:   # per group: (1 + (a**2 - 1)/k) * sum_j (l1/(a sqrt k) + sum_{i>=2} |H_ji| m_i)**2
        bound, start = 0.0, 0
        for k, a in zip(q.sizes, q.shrink):
            k = int(k)
            m = rng_rows[q.order[start:start + k]]
            H = np.abs(householder_ref(k))
            r = m[0] / a * H[:, 0] + H[:, 1:] @ m[1:]
            bound += (1 + (a * a - 1) / k) * np.sum(r ** 2)
            start += k
        bound *= D / (4 * B ** 2)
        assert var <= bound
        assert bound < psq_bound / 4                     # the bound itself beats PSQ's here


def test_chen_variance_order():
    """The variance property: on a gradient with a few outlier rows, PSQ's variance is below the
    per-tensor quantizer's and BHQ's far below PSQ's (exact variances over all R-bit words). (PTQ's
    actual variance depends on where the small rows fall in its coarse bins; here they sit near grid
    points, so it is only 3.8x PSQ's, while its bound is 27x PSQ's.)"""
    v = {name: _exact_stats(name)[3] for name in ("ptq", "psq", "bhq")}
    assert v["psq"] < v["ptq"] / 2
    assert v["bhq"] < v["psq"] / 8


@pytest.mark.parametrize("name", ["ptq", "psq", "bhq"])
def test_chen_variance_monte_carlo(name):
    """A seeded Monte Carlo over independent random words agrees with the exact variance (which
    assumes independent roundings): within 10 % with 300 draws (the estimate's spread is ~1 %)."""
    g, q, tinv, var, mean = _exact_stats(name)
    fn = {"ptq": ptq_quantize, "psq": psq_quantize, "bhq": bhq_quantize}[name]
    rng = np.random.default_rng(RNG_SEED + 7)
    K, R = 300, 8
    samples = np.stack([grad_dequantize(fn(g, 4, "sr", rbits=rng.integers(0, 1 << R, g.shape), rand_bits=R))
                        for _ in range(K)])
    emp = float(np.sum(samples.var(axis=0, ddof=1)))
    assert abs(emp - var) < 0.1 * var


@pytest.mark.parametrize("call, match", [
    (lambda: psq_quantize(np.ones(5), 4, "rne"), "2-D"),
    (lambda: psq_quantize(np.full((2, 2), np.nan), 4, "rne"), "finite"),
    (lambda: ptq_quantize(np.ones((2, 2)), 0, "rne"), "bits"),
    (lambda: ptq_quantize(np.array([[1e308, -1e308]]), 4, "rne"), "overflows"),
    (lambda: bhq_quantize(np.ones((2, 2)), 4, "sr", rand_bits=4), "rbits"),
    (lambda: bhq_quantize(np.ones((2, 2)), 4, "rtz"), "rounding"),
    (lambda: bhq_quantize(np.ones((3, 2)), 4, "rne", groups=4), "groups"),
    (lambda: psq_quantize(np.ones((2, 2)), 4, "sr", rbits=np.full((2, 2), 16), rand_bits=4), "rbits"),
    (lambda: luq_quantize([1.0], 0.0, "rne"), "scale"),
    (lambda: luq_quantize([1.0], "max", "rtz"), "rounding"),
    (lambda: luq_quantize([1.0], "max", "sr"), "rand_bits"),
    (lambda: luq_quantize([1.0], "mean", "rne"), "scale"),
    (lambda: luq_quantize_codes([1], "fp4_r4", 0, "rne"), "x_format"),
    (lambda: luq_quantize_codes([1.5], "fp16", 0, "rne"), "codes"),
    (lambda: luq_quantize_codes([1], "fp16", 1 << 20, "rne"), "scale_exp"),
    (lambda: luq_scale_exp(np.inf), "finite"),
    (lambda: luq_quantize([1e-310, 0.0], "pow2", "rne"), "2\\*\\*-1016"),
    (lambda: amax([]), "nonempty"),
    (lambda: amax_codes([0, 1], "fp16", block=0), "block"),
])
def test_validation_gradient_quantizers(call, match):
    with pytest.raises(ValueError, match=match):
        call()
