"""golden.formats / golden.raw against independent references.

References: ml_dtypes (float8_e5m2, float8_e4m3fn, bfloat16), numpy.float16, and the exact
Fraction evaluation of golden.exact (written from the definitions, sharing no code with golden.raw).
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from golden.exact import SignedZero, decode_fraction, round_fraction
from golden.formats import (PRESETS, FixedFormat, FloatFormat, FormatError, IntFormat, parse_format)
from golden.raw import Raw, add_raw, bitlen, div_raw, from_float, mul_raw, round_raw, unpack

MODES = ("rne", "rna", "rtz")

# -- presets and spec strings ----------------------------------------------------------------------


def test_presets_equal_their_spec_strings():
    assert parse_format("fp8_e5m2") == parse_format("e5m2")
    assert parse_format("fp8_e4m3") == parse_format("e4m3:fn")
    assert parse_format("fp16_e6m9") == parse_format("e6m9:nosub:fn")
    assert parse_format("fp16") == FloatFormat(5, 10)
    assert parse_format("bf16") == FloatFormat(8, 7)
    assert parse_format("fp32") == FloatFormat(8, 23)
    assert parse_format("fp4_r4") == FloatFormat(3, 0, bias=4, radix=4, subnormals=False, specials="finite")
    assert parse_format("int4") == IntFormat(4)
    assert parse_format("e4m3:bias=8:fn").bias == 8
    assert parse_format("ufix12.4") == FixedFormat(12, 4, signed=False)


@pytest.mark.parametrize("name", list(PRESETS))
def test_spec_round_trip(name):
    fmt = PRESETS[name]
    assert parse_format(fmt.spec()) == fmt


def test_fp4_r4_magnitudes():
    fmt = parse_format("fp4_r4")
    mags = fmt.decode(np.arange(8))
    assert list(mags) == [0.0] + [4.0 ** k for k in range(-3, 4)]
    assert fmt.max_value == 64.0


def test_fp4_luq_magnitudes():
    fmt = parse_format("fp4_luq")
    assert fmt == FloatFormat(3, 0, bias=1, specials="finite") and fmt.subnormals
    assert list(fmt.decode(np.arange(8))) == [0.0] + [2.0 ** k for k in range(7)]
    assert fmt.max_value == 64.0 and fmt.min_normal == 1.0


def test_special_codes():
    e5m2, e4m3, e6m9 = parse_format("e5m2"), parse_format("fp8_e4m3"), parse_format("fp16_e6m9")
    assert (e5m2.nan_code, e5m2.inf_code, e5m2.max_code) == (0x7E, 0x7C, 0x7B)
    assert (e4m3.nan_code, e4m3.inf_code, e4m3.max_code) == (0xFF, None, 0x7E)
    assert e4m3.max_value == 448.0
    assert e6m9.max_code == 0x7FFE and e6m9.nan_code == 0xFFFF
    # 1-6-9 without subnormals: the smallest magnitude is 2**-30 (bias 31).
    assert e6m9.decode(np.array([1, 1 << 9]))[0] == 0.0
    assert e6m9.decode(np.array([1 << 9]))[0] == 2.0 ** -30


@pytest.mark.parametrize("spec", ["e5m2", "fp8_e4m3", "fp16_e6m9", "e2m1:finite", "bf16"])
def test_edge_codes(spec):
    """Both signed zeros, the smallest magnitude and normal, the largest finite value, Inf, NaN."""
    fmt = parse_format(spec)
    codes = fmt.edge_codes()
    vals = fmt.decode(codes)
    finite = vals[np.isfinite(vals)]
    assert len(set(codes.tolist())) == len(codes) and list(codes) == sorted(codes)
    assert {0, fmt.sign_mask} <= set(codes.tolist())
    assert np.max(finite) == fmt.max_value and np.min(finite) == -fmt.max_value
    assert np.min(np.abs(finite[finite != 0])) == float(fmt.decode(np.array([1]))[0] or fmt.min_normal)
    assert fmt.min_normal in finite
    assert np.isinf(vals).sum() == (2 if fmt.has_inf else 0)
    assert np.isnan(vals).sum() == (2 if fmt.has_nan else 0)


@pytest.mark.parametrize("spec, message", [
    ("e0m3", "exp_bits must be between 1 and 8"),
    ("e5m24", "man_bits must be between 0 and 23"),
    ("e4m3:bias=16", "bias must be between 0 and 15"),
    ("e4m3:bias=x", "bias must be an integer"),
    ("e3m2:r4", "radix-4 formats have no mantissa"),
    ("e3m0", "needs at least 1 mantissa bit"),
    ("e4m3:wat", "unknown format modifier"),
    ("fp9", "unknown format"),
    ("e4m3:fn:finite", "more than one specials modifier"),
    ("int1", "at least 2 bits"),
    ("fix60.3", "bits must be between"),
])
def test_bad_specs_give_one_line_errors(spec, message):
    with pytest.raises(FormatError, match=message) as info:
        parse_format(spec)
    assert "\n" not in str(info.value)


# -- decode against ml_dtypes / numpy ------------------------------------------------------------

REFERENCE_TYPES = [
    ("fp8_e5m2", ml_dtypes.float8_e5m2, np.uint8),
    ("fp8_e4m3", ml_dtypes.float8_e4m3fn, np.uint8),
    ("bf16", ml_dtypes.bfloat16, np.uint16),
    ("fp16", np.float16, np.uint16),
]


@pytest.mark.parametrize("name, dtype, utype", REFERENCE_TYPES)
def test_decode_exhaustive_matches_reference(name, dtype, utype):
    fmt = parse_format(name)
    codes = fmt.all_codes()
    ours = fmt.decode(codes)
    with np.errstate(invalid="ignore"):
        ref = codes.astype(utype).view(dtype).astype(np.float64)
    assert np.array_equal(ours, ref, equal_nan=True)
    real = ~np.isnan(ref)
    assert np.array_equal(np.signbit(ours[real]), np.signbit(ref[real]))


@pytest.mark.parametrize("name, dtype, utype", REFERENCE_TYPES)
def test_encode_rne_matches_reference(name, dtype, utype):
    fmt = parse_format(name)
    rng = np.random.default_rng(7)
    # Magnitudes from far below the smallest subnormal to beyond the largest value, plus exact
    # midpoints between neighbours (where ties-to-even decides).
    x = rng.standard_normal(200_000) * np.exp2(rng.integers(-30, 20, 200_000))
    codes = fmt.all_codes()
    vals = fmt.decode(codes)
    finite = np.isfinite(vals)
    neighbours = np.sort(vals[finite])
    mids = (neighbours[:-1] + neighbours[1:]) / 2
    x = np.concatenate([x, mids, -mids, [0.0, -0.0, np.inf, -np.inf, np.nan]])
    if dtype is ml_dtypes.bfloat16:
        # ml_dtypes converts float64 to bfloat16 through float32 (a double rounding: e.g.
        # -4.453125080411453 gives -4.4375, not the nearest -4.46875), so feed it float32 values.
        x = x.astype(np.float32).astype(np.float64)
    if fmt.specials == "fn":
        # ml_dtypes turns out-of-range values into NaN; lowbit saturates (docs/arithmetic.md 2.4).
        x = x[~(np.abs(x) >= fmt.max_value + fmt.max_value / 2 ** (fmt.man_bits + 2)) | np.isnan(x)]
        x = x[~np.isinf(x)]
    with np.errstate(over="ignore", invalid="ignore"):
        ref = x.astype(dtype).view(utype).astype(np.int64)
    ours = fmt.encode(x).astype(np.int64)
    nan = np.isnan(x)
    assert np.array_equal(ours[~nan], ref[~nan])
    assert np.all(fmt.is_nan(ours[nan]))


def test_fn_formats_saturate():
    fmt = parse_format("fp8_e4m3")
    codes = fmt.encode(np.array([1e9, -1e9, 470.0, np.inf]))
    assert list(codes) == [0x7E, 0xFE, 0x7E, 0x7E]


# -- rounding against the exact Fraction reference ---------------------------------------------

FORMATS_FOR_EXACT = ["e5m2", "fp8_e4m3", "fp16_e6m9", "e6m9", "e3m2:nosub", "e4m3:finite", "e2m1:fn",
                     "fp4_r4", "e3m0:r4:bias=3:fn", "e2m0:r4:fn",
                     "e2m0:r4:bias=1:finite", "fp4_luq"]


def _fraction_samples(rng, n):
    """Exact dyadic values with long expansions across a wide exponent range."""
    out = []
    for _ in range(n):
        num = int(rng.integers(1, 1 << 40))
        exp = int(rng.integers(-60, 20))
        sign = -1 if rng.random() < 0.5 else 1
        out.append(sign * Fraction(num) * Fraction(2) ** exp)
    return out


@pytest.mark.parametrize("spec", FORMATS_FOR_EXACT)
@pytest.mark.parametrize("rounding", MODES + ("sr",))
def test_round_raw_matches_fraction(spec, rounding):
    fmt = parse_format(spec)
    rng = np.random.default_rng(abs(hash((spec, rounding))) % 2 ** 32)
    values = _fraction_samples(rng, 600)
    # Every code's value and the midpoints between neighbours: the exact ties.
    codes = range(1 << fmt.width) if fmt.width <= 10 else rng.integers(0, 1 << fmt.width, 1500)
    grid = sorted({decode_fraction(fmt, int(c)) for c in codes
                   if isinstance(decode_fraction(fmt, int(c)), Fraction)})
    values += grid + [(a + b) / 2 for a, b in zip(grid, grid[1:])]
    R = 5
    rbits = rng.integers(0, 1 << R, len(values))
    sign = np.array([int(v < 0) for v in values], np.int64)
    # Exact Raw: |v| = num / 2**k with a power-of-two denominator.
    nums = [abs(v).numerator for v in values]
    dens = [abs(v).denominator for v in values]
    shift = np.array([d.bit_length() - 1 for d in dens], np.int64)
    sig = np.array(nums, dtype=np.uint64)
    z = np.zeros(len(values), bool)
    raw = Raw(sign, sig, -shift, z, z, z)
    ours = round_raw(fmt, raw, rounding, rbits=rbits if rounding == "sr" else None,
                     rand_bits=R if rounding == "sr" else None)
    for k, v in enumerate(values):
        ref = round_fraction(fmt, v, rounding, r=int(rbits[k]), rand_bits=R)
        assert int(ours[k]) == ref, f"{spec} {rounding}: {v} -> {int(ours[k]):#x}, exact says {ref:#x}"


@pytest.mark.parametrize("spec", FORMATS_FOR_EXACT)
def test_decode_matches_fraction_exhaustive(spec):
    fmt = parse_format(spec)
    codes = fmt.all_codes()
    vals = fmt.decode(codes)
    for c, v in zip(codes, vals):
        ref = decode_fraction(fmt, int(c))
        if isinstance(ref, Fraction):
            assert Fraction(v) == ref
        elif isinstance(ref, SignedZero):
            assert v == 0 and np.signbit(v) == bool(ref.sign)
        elif repr(ref) == "nan":
            assert np.isnan(v)
        else:
            assert np.isinf(v) and np.signbit(v) == bool(ref.sign)


def test_specials_and_zero_signs():
    fmt = parse_format("e5m2")
    assert list(fmt.encode(np.array([-0.0, 0.0, -1e-30, 1e-30]), "rne")) == [0x80, 0x00, 0x80, 0x00]
    # Overflow: Inf for rne/rna/sr, largest finite for rtz.
    assert list(fmt.encode(np.array([1e6, -1e6]), "rne")) == [0x7C, 0xFC]
    assert list(fmt.encode(np.array([1e6, -1e6]), "rtz")) == [0x7B, 0xFB]
    assert list(fmt.encode(np.array([1e6]), "sr", rbits=0, rand_bits=4)) == [0x7C]
    # Canonical NaN: sign 0, exponent all ones, mantissa MSB set.
    assert fmt.encode(np.array([np.nan]))[0] == 0x7E
    assert parse_format("e4m3:finite").encode(np.array([np.nan]))[0] == 0  # no NaN code


def test_nosub_flushes_after_rounding_with_unbounded_exponent():
    fmt = parse_format("e5m2:nosub")
    tiny = 2.0 ** -14       # smallest normal
    # Just below the smallest normal: rounds up onto it (unbounded exponent), so it is kept.
    assert fmt.decode(fmt.encode(np.array([tiny * (1 - 2 ** -5)])))[0] == tiny
    # Well below: rounds to a value below the normal range, then flushes to a signed zero.
    assert list(fmt.encode(np.array([tiny * 0.7, -tiny * 0.7]))) == [0x00, 0x80]


def test_sr_probability_is_exact_over_all_random_words():
    fmt = parse_format("e5m2")
    R = 6
    x = 1.0 + 0.25 * 0.4375         # 0.4375 of the way from 1.0 to 1.25: floor(0.4375 * 64) = 28
    codes = fmt.encode(np.full(1 << R, x), "sr", rbits=np.arange(1 << R), rand_bits=R)
    assert np.sum(codes == fmt.encode(np.array([1.25]))[0]) == 28


# -- exact helpers -----------------------------------------------------------------------------


def test_bitlen_exact_for_all_64_bit_values():
    x = np.array([0, 1, 2, 3, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, (1 << 63) - 1, 1 << 63,
                  (1 << 64) - 1], dtype=np.uint64)
    assert list(bitlen(x)) == [int(v).bit_length() for v in x]


def _to_fraction(raw, k):
    mag = Fraction(int(raw.sig[k])) * Fraction(2) ** int(raw.exp[k])
    return -mag if raw.sign[k] else mag


def test_add_raw_is_exact_or_sticky():
    rng = np.random.default_rng(3)
    n = 3000
    def rand_raw():
        sig = rng.integers(0, 1 << 49, n, dtype=np.uint64) >> rng.integers(0, 49, n).astype(np.uint64)
        return Raw(rng.integers(0, 2, n), sig, rng.integers(-80, 80, n), np.zeros(n, bool),
                   np.zeros(n, bool), np.zeros(n, bool))
    a, b = rand_raw(), rand_raw()
    s = add_raw(a, b)
    for k in range(n):
        exact = _to_fraction(a, k) + _to_fraction(b, k)
        got = _to_fraction(s, k)
        unit = Fraction(2) ** int(s.exp[k])
        if s.sticky[k]:
            # The true sum lies strictly inside the unit above the window value, on its side.
            assert abs(got) < abs(exact) < abs(got) + unit and (exact > 0) == (s.sign[k] == 0)
            assert int(s.sig[k]).bit_length() >= 58
        else:
            assert got == exact
            if exact == 0 and a.sign[k] != b.sign[k]:
                assert s.sign[k] == 0


def test_div_raw_is_exact_or_sticky():
    rng = np.random.default_rng(4)
    n = 3000
    def rand_raw(lo):
        sig = rng.integers(lo, 1 << 62, n, dtype=np.uint64) >> rng.integers(0, 62, n).astype(np.uint64)
        return Raw(rng.integers(0, 2, n), np.maximum(sig, lo).astype(np.uint64), rng.integers(-80, 80, n),
                   np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool))
    a, b = rand_raw(0), rand_raw(1)
    a.sig[:5] = [0, 1, 3, 1 << 61, 12345]
    b.sig[:5] = [7, 1, 3, 3, 12345]
    q = div_raw(a, b)
    for k in range(n):
        exact = _to_fraction(a, k) / _to_fraction(b, k)
        got = _to_fraction(q, k)
        if exact == 0:
            assert got == 0 and not q.sticky[k] and q.sign[k] == a.sign[k] ^ b.sign[k]
            continue
        assert int(q.sig[k]).bit_length() == 62 and (exact < 0) == (q.sign[k] == 1)
        if q.sticky[k]:
            assert abs(got) < abs(exact) < abs(got) + Fraction(2) ** int(q.exp[k])
        else:
            assert got == exact
    nan_inf = div_raw(unpack(parse_format("e5m2"), np.array([0x7E, 0xFC])), from_float(np.array([2.0, 2.0])))
    assert list(nan_inf.nan) == [True, False] and list(nan_inf.inf) == [False, True] and nan_inf.sign[1] == 1
    with pytest.raises(ValueError, match="divisor"):
        div_raw(from_float(np.array([1.0])), from_float(np.array([0.0])))


def test_mul_raw_specials():
    fmt = parse_format("e5m2")
    a = unpack(fmt, np.array([0x7C, 0x7C, 0x00, 0x3C]))     # inf, inf, +0, 1.0
    b = unpack(fmt, np.array([0x00, 0xBC, 0x7E, 0xBC]))     # +0, -1.0, nan, -1.0
    p = mul_raw(a, b)
    assert list(p.nan) == [True, False, True, False]
    assert list(p.inf) == [False, True, False, False]
    assert list(p.sign[1:2]) == [1]


def test_from_float_round_trips():
    x = np.array([1.5, -3.25e-300, 7e300, 0.0, -0.0])
    raw = from_float(x)
    back = np.ldexp(raw.sig.astype(np.float64), raw.exp) * np.where(raw.sign, -1, 1)
    assert np.array_equal(back, x) and np.array_equal(np.signbit(back), np.signbit(x))


def test_int_format_rounds_and_saturates():
    fmt = parse_format("int4")
    assert list(fmt.encode(np.array([-9.0, -8.5, -7.5, 0.5, 1.5, 7.4, 9.0]))) == [8, 8, 8, 0, 2, 7, 7]
    assert list(fmt.to_int(fmt.all_codes())) == list(range(8)) + list(range(-8, 0))
