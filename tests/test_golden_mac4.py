"""Tests of golden/mac4.py against independent exact references (fractions.Fraction)."""

import functools
from fractions import Fraction
from math import floor

import numpy as np
import pytest

from fp4ref import fp4_frac
from golden.exact import add_exact, decode_fraction, round_fraction
from golden.formats import parse_format
from golden.mac4 import (MAX_LANES, OFFSET_MAX, OFFSET_MIN, dot_mac4, gemm_int4, gemm_mac4, int4_dot,
                         int4_sum_width, mac4_acc, mac4_dot, sum_width)

RNG_SEED = 20200


# -- independent references -------------------------------------------------------------------------

def int4_value(code, signed):
    code = int(code)
    return code - 16 if signed and code >= 8 else code


def dot_ref(x_codes, g_codes, phase, offset, signed):
    return sum(Fraction(int4_value(x, signed)) * fp4_frac(g, phase) for x, g in zip(x_codes, g_codes)) \
        * Fraction(2) ** int(offset)


def fits(value, width):
    return -(1 << (width - 1)) <= value <= (1 << (width - 1)) - 1


@functools.cache
def lane_extremes(signed):
    """Min and max one-lane product over every (x, g, phase), in units of 2**-6 (offset 0)."""
    vals = [dot_ref([x], [g], ph, 6, signed) for x in range(16) for g in range(16) for ph in (0, 1)]
    assert all(v.denominator == 1 for v in vals)     # 2**-6 is a sufficient LSB
    return min(vals), max(vals)


# -- the exact dot product --------------------------------------------------------------------------

@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("offset", [OFFSET_MIN, -5, 0, 3, OFFSET_MAX])
def test_one_lane_exhaustive(signed, offset):
    x, g, ph = np.meshgrid(np.arange(16), np.arange(16), np.arange(2), indexing="ij")
    s, lsb = mac4_dot(x[..., None], g[..., None], ph, offset, 1, x_signed=signed)
    assert s.shape == lsb.shape == (16, 16, 2) and s.dtype == lsb.dtype == np.int64
    assert np.all(lsb == offset - 6)
    for (i, j, k), v in np.ndenumerate(s):
        assert Fraction(int(v)) * Fraction(2) ** (offset - 6) == dot_ref([i], [j], k, offset, signed)


@pytest.mark.parametrize("lanes", [2, 7, 16, 64])
@pytest.mark.parametrize("signed", [True, False])
def test_many_lanes_random(lanes, signed):
    rng = np.random.default_rng(RNG_SEED + lanes)
    rows = 60
    x = rng.integers(0, 16, (rows, lanes))
    g = rng.integers(0, 16, (rows, lanes))
    ph = rng.integers(0, 2, rows)
    off = rng.integers(-20, 21, rows)
    s, lsb = mac4_dot(x.astype(np.uint8), g.astype(np.uint8), ph, off, lanes, x_signed=signed)
    w = sum_width(lanes, signed)
    for r in range(rows):
        assert Fraction(int(s[r])) * Fraction(2) ** int(lsb[r]) == dot_ref(x[r], g[r], ph[r], off[r], signed)
        assert fits(int(s[r]), w)


def test_dot_broadcasting():
    rng = np.random.default_rng(RNG_SEED)
    x = rng.integers(0, 16, (3, 1, 5))
    g = rng.integers(0, 16, (1, 4, 5))
    ph = np.array([0, 1, 1, 0])
    s, lsb = mac4_dot(x, g, ph, np.array([[1], [2], [3]]), 5)
    assert s.shape == lsb.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            got = Fraction(int(s[i, j])) * Fraction(2) ** int(lsb[i, j])
            assert got == dot_ref(x[i, 0], g[0, j], ph[j], i + 1, True)


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("lanes", [1, 2, 3, 5, 8, 16, 100, 4096])
def test_sum_width_extremes(signed, lanes):
    lo, hi = lane_extremes(signed)
    w = sum_width(lanes, signed)
    assert fits(lanes * lo, w) and fits(lanes * hi, w)
    assert not (fits(lanes * lo, w - 1) and fits(lanes * hi, w - 1))
    # The extremes are reached by real codes: x = -8 (signed) or 15, g = ∓64 at phase 1.
    xval = -8 if signed else 15                           # code 8 or 15
    for g, gval in ((0b1111, -128), (0b0111, 128)):       # -64 and +64 at phase 1
        s, _ = mac4_dot(np.full(lanes, 8 if signed else 15), np.full(lanes, g), 1, 0, lanes, x_signed=signed)
        assert int(s) == lanes * xval * gval * 2 ** 6      # in units of 2**-6
        assert int(s) in (lanes * lo, lanes * hi)


def test_sum_width_values():
    # Hand-derived: signed |p| <= 2**16 both signs -> 17 + bit_length(N); unsigned 15 * 2**13.
    for n in (1, 2, 3, 8, 16, 1000):
        assert sum_width(n, True) == 17 + n.bit_length()
        assert sum_width(n, False) == (n * 15 * 2 ** 13).bit_length() + 1
    assert [sum_width(n, s) for s in (True, False) for n in (1, 8, 16)] == [18, 21, 22, 18, 21, 22]


# -- forward INT4 x INT4 ----------------------------------------------------------------------------

@pytest.mark.parametrize("xs", [True, False])
@pytest.mark.parametrize("ws", [True, False])
def test_int4_dot(xs, ws):
    rng = np.random.default_rng(RNG_SEED + 2 * xs + ws)
    x = rng.integers(0, 16, (40, 9))
    w = rng.integers(0, 16, (40, 9))
    s = int4_dot(x, w, xs, ws)
    assert s.dtype == np.int64
    for r in range(40):
        assert int(s[r]) == sum(int4_value(a, xs) * int4_value(b, ws) for a, b in zip(x[r], w[r]))
    # exhaustive one lane and width extremes
    xa, wa = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    one = int4_dot(xa[..., None], wa[..., None], xs, ws)
    lo, hi = int(one.min()), int(one.max())
    assert sorted(int(v) for v in one.ravel()) == \
        sorted(int4_value(a, xs) * int4_value(b, ws) for a in range(16) for b in range(16))
    for n in (1, 3, 8, 16, 1024):
        wdt = int4_sum_width(n, xs, ws)
        assert fits(n * lo, wdt) and fits(n * hi, wdt)
        assert not (fits(n * lo, wdt - 1) and fits(n * hi, wdt - 1))


# -- accumulate -------------------------------------------------------------------------------------

ACC_FORMATS = ["fp16", "fp16_e6m9", "bf16", "fp32", "e4m3:fn", "e5m2"]


def _acc_case(fmt, rounding, seed, cancel):
    rng = np.random.default_rng(seed)
    n, lanes = 120, 8
    x = rng.integers(0, 16, (n, lanes))
    g = rng.integers(0, 16, (n, lanes))
    ph = rng.integers(0, 2, n)
    off = rng.integers(-24, 12, n)
    s, lsb = mac4_dot(x, g, ph, off, lanes)
    if cancel:   # accumulators close to -S: exercises the subtracting, cancelling path
        sval = np.ldexp(s.astype(np.float64), lsb) * rng.uniform(0.9, 1.1, n)
        acc = fmt.encode(-sval)
    else:
        acc = rng.integers(0, 1 << fmt.width, n)
    R = 5
    r = rng.integers(0, 1 << R, n) if rounding == "sr" else None
    return x, g, ph, off, s, lsb, acc, r, R


@pytest.mark.parametrize("fmt_name", ACC_FORMATS)
@pytest.mark.parametrize("rounding", ["rne", "rna", "rtz", "sr"])
@pytest.mark.parametrize("cancel", [False, True])
def test_acc_against_fraction(fmt_name, rounding, cancel):
    fmt = parse_format(fmt_name)
    x, g, ph, off, s, lsb, acc, r, R = _acc_case(fmt, rounding, RNG_SEED + len(fmt_name), cancel)
    out = mac4_acc(acc, x, g, ph, off, fmt, rounding, rbits=r, rand_bits=R if rounding == "sr" else None)
    assert out.shape == acc.shape
    for i in range(len(acc)):
        exact = add_exact(decode_fraction(fmt, int(acc[i])), dot_ref(x[i], g[i], ph[i], off[i], True))
        ri = int(r[i]) if r is not None else None
        assert int(out[i]) == round_fraction(fmt, exact, rounding, r=ri, rand_bits=R), (i, fmt_name)


def test_acc_sr_sweep_and_specials():
    fmt = parse_format("fp16")
    R = 4
    # 1 + 2**-13 * k: between fp16 neighbours 1 and 1 + 2**-10; S = 3 * 2**-13 -> frac 3/8.
    x = np.array([3]); g = np.array([4])                  # 3 * 4**0 = 3
    acc = np.uint16(0x3C00)                               # 1.0
    outs = [int(mac4_acc(acc, x, g, 0, -13, fmt, "sr", rbits=r, rand_bits=R)) for r in range(1 << R)]
    ups = sum(o == 0x3C01 for o in outs)
    assert set(outs) == {0x3C00, 0x3C01} and ups == floor(Fraction(3, 8) * 2 ** R)
    # Specials propagate; exact zero result is +0.
    for code in (0x7C00, 0xFC00, 0x7E00):
        assert int(mac4_acc(np.uint16(code), x, g, 1, 0, fmt)) == code
    assert int(mac4_acc(np.uint16(0xC200), x, g, 0, 0, fmt)) == 0   # -3 + 3
    assert int(mac4_acc(np.uint16(0x8000), np.array([0]), g, 0, 0, fmt)) == 0  # -0 + 0 = +0
    # Overflow: rne to Inf, rtz to max finite.
    big = np.full(16, 8)
    gm = np.full(16, 0b1111)                                # (-8) * (-64 * 2) = 1024 per lane
    assert int(mac4_acc(np.uint16(0x7BFF), big, gm, 1, 5, fmt)) == 0x7C00
    assert int(mac4_acc(np.uint16(0x7BFF), big, gm, 1, 5, fmt, "rtz")) == 0x7BFF


def test_acc_large_lanes_precision():
    # 4096 lanes of maximal products plus a tiny accumulator: the integer sum has 29 bits.
    fmt = parse_format("fp32")
    lanes = 4096
    x = np.full(lanes, 8); g = np.full(lanes, 0b1111)
    x[::3] = 5; g[::5] = 0b0011
    acc = fmt.encode(np.array([2.0 ** -30, -(2.0 ** 12) + 2.0 ** -11]))
    for rounding in ("rne", "rtz"):
        out = mac4_acc(acc, x, g, 1, -3, fmt, rounding)
        for i in range(2):
            exact = add_exact(decode_fraction(fmt, int(acc[i])), dot_ref(x, g, 1, -3, True))
            assert int(out[i]) == round_fraction(fmt, exact, rounding)


# -- validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: mac4_dot(np.zeros(1), np.zeros(1), 0, 0, 1), "x_codes must be integers"),
    (lambda: mac4_dot([0], [0], 0, 0, 0), "lanes"),
    (lambda: mac4_dot([0] * 2, [0] * 2, 0, 0, MAX_LANES + 1), "lanes"),
    (lambda: mac4_dot([0, 1], [0, 1], 0, 0, 3), r"shape \(\.\.\., 3\)"),
    (lambda: mac4_dot([16], [0], 0, 0, 1), "x_codes must be between 0 and 15"),
    (lambda: mac4_dot([0], [-1], 0, 0, 1), "g_codes must be between 0 and 15"),
    (lambda: mac4_dot([0], [0], 2, 0, 1), "phase must be between 0 and 1"),
    (lambda: mac4_dot([0], [0], 0, OFFSET_MAX + 1, 1), "offset must be between"),
    (lambda: mac4_dot([0], [0], 0, 0, 1, x_signed=1), "x_signed"),
    (lambda: mac4_acc(np.uint16(0), [0], [0], 0, 0, "int4"), "float format"),
    (lambda: mac4_acc(np.uint16(0), [0], [0], 0, 0, "fp16", "sr", rbits=0), "rand_bits"),
    (lambda: mac4_acc(np.uint16(0), [0], [0], 0, 0, "fp16", "sr", rbits=0, rand_bits=33), "rand_bits"),
    (lambda: mac4_acc(np.uint16(0), [0], [0], 0, 0, "fp16", "up"), "rounding"),
    (lambda: int4_dot([0, 1], [0], True, True), "last axis"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- GEMMs ------------------------------------------------------------------------------------------

def test_gemm_int4_against_int4_dot():
    rng = np.random.default_rng(RNG_SEED)
    X, W = rng.integers(0, 16, (5, 40)), rng.integers(0, 16, (40, 3))
    for xs in (True, False):
        for ws in (True, False):
            want = np.array([[int4_dot(X[m], W[:, n], xs, ws) for n in range(3)] for m in range(5)])
            np.testing.assert_array_equal(gemm_int4(X, W, xs, ws), want)


@pytest.mark.parametrize("rounding", ["rne", "sr"])
def test_gemm_mac4_against_dot_mac4(rounding):
    rng = np.random.default_rng(RNG_SEED + 1)
    M, K, N, lanes, chunk = 3, 32, 4, 4, 8
    X, G = rng.integers(0, 16, (M, K)), rng.integers(0, 16, (K, N))
    off = rng.integers(-20, 20, (M, N))
    kw = dict(acc_fmt="e6m9", lanes=lanes, chunk=chunk, rounding=rounding)
    if rounding == "sr":
        kw |= dict(rand_bits=6, rbits_inner=rng.integers(0, 64, (M, N, K // lanes)),
                   rbits_outer=rng.integers(0, 64, (M, N, K // chunk)))
    got = gemm_mac4(X, G, 1, off, **kw)
    for m in range(M):
        for n in range(N):
            one = {k: (v[m, n] if k.startswith("rbits") else v) for k, v in kw.items()}
            assert got[m, n] == dot_mac4(X[m], G[:, n], 1, off[m, n], **one), (m, n)
