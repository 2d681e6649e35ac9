"""Block-scaled formats (golden/block.py, docs/arithmetic.md section 9) against independent references.

References: the OCP MX v1.0 spec's format tables (constants written out below), ml_dtypes
(``float8_e5m2``, ``float8_e4m3fn``, ``float6_e3m2fn``, ``float6_e2m3fn``, ``float4_e2m1fn``,
``float8_e8m0fnu``) for element and scale codes and the element casts, NumPy's ``int8`` and ``rint``
for the integer elements, and the exact Fraction reference in golden/exact.py (which shares no code
with golden.block) for conversion, dot and the streamed GEMM.
"""

from __future__ import annotations

from fractions import Fraction
from zlib import crc32

import ml_dtypes
import numpy as np
import pytest

from golden.block import (BLOCK_PRESET_SPECS, BLOCK_PRESETS, BlockFormat, block_dot, block_gemm, block_sums,
                          dequantize, is_block_spec, parse_block_format, quantize_blocks, scale_exponents)
from golden.exact import (NAN, SignedZero, block_dot_fraction, block_stream_fraction, decode_block_fraction,
                          decode_fraction, quantize_block_fraction, round_int_fraction, scale_fraction)
from golden.formats import FixedFormat, FormatError, parse_format
from golden.raw import bitlen

MODES = ("rne", "rna", "rtz", "sr")
R = 6                                       # random bits of the sr tests


def _rng(*key):
    return np.random.default_rng(crc32(repr(key).encode()))


def _words(rng, shape, mode):
    return (rng.integers(0, 1 << R, shape), R) if mode == "sr" else (None, None)


# -- formats, presets and the spec syntax -------------------------------------------------------------

def test_presets_and_spec_syntax():
    assert BLOCK_PRESETS["mxfp8_e4m3"] == BlockFormat(parse_format("e4m3:fn"), 32, "e8m0")
    assert BLOCK_PRESETS["mxfp8_e5m2"] == BlockFormat(parse_format("e5m2"), 32, "e8m0")
    assert BLOCK_PRESETS["mxint8"] == BlockFormat(FixedFormat(8, 6), 32, "e8m0")
    assert BLOCK_PRESETS["hbfp4"] == BlockFormat(FixedFormat(4, 3), 32, "hbfp")
    assert parse_block_format("mxfp4_e2m1/16") == BlockFormat(parse_format("e2m1:finite"), 16)
    assert str(parse_block_format("mxfp4_e2m1/16")) == "mxfp4_e2m1/16"
    assert parse_block_format(" MX:fp8_e4m3/8 ") == parse_block_format("mx:e4m3:fn/8")
    assert parse_block_format("hbfp5/64") == BlockFormat(FixedFormat(5, 4), 64, "hbfp")
    assert parse_block_format("mx:fix8.7") == BlockFormat(FixedFormat(8, 7), 32, "e8m0")   # HBFP8 elements, MX rule
    for name, (spec, _) in BLOCK_PRESET_SPECS.items():
        fmt = BLOCK_PRESETS[name]
        assert str(fmt) == name and fmt.spec() == spec and parse_block_format(fmt.spec()) == fmt
        assert is_block_spec(name) and is_block_spec(spec)
    assert not any(is_block_spec(s) for s in ("e4m3:fn", "fp32", "fix8.6", "int4"))
    assert [BLOCK_PRESETS[n].bits_per_element for n in ("mxfp8_e4m3", "mxfp4_e2m1", "hbfp6")] == [8.25, 4.25, 6.25]


@pytest.mark.parametrize("spec, patterns", [
    ("mxfp8_e4m3/65", ["block size k", "between 2 and 64", "65"]),
    ("hbfp8/1", ["block size k", "between 2 and 64", r"\b1\b"]),
    ("mxint8/x", ["block size k", "integer", "'x'"]),
    ("mx:fp4_r4", ["fp4_r4", "radix-4"]),
    ("mx:e3m0:r4:fn/32", ["radix-4"]),
    ("mx:e5m10", ["e5m10", "16 bits", "at most 8"]),
    ("mx:int8", ["radix-2 float", "fix<W>.<F>", "fix8.6", "int8"]),
    ("mx:ufix8.6", ["unsigned", "ufix8.6"]),
    ("mx:fix20.6", ["fix20.6", "at most 16"]),
    ("mx:e4m3:wat", ["unknown format modifier"]),
    ("hbfp17", ["HBFP mantissa bits m", "between 2 and 16", "17"]),
    ("hbfp1", ["HBFP mantissa bits m", "between 2 and 16"]),
    ("mxfp9", ["unknown block format", "mxfp8_e4m3", "hbfp<m>", "mx:<element>"]),
])
def test_bad_block_specs_give_one_line_errors(spec, patterns):
    import re
    with pytest.raises(FormatError) as info:
        parse_block_format(spec)
    msg = str(info.value)
    assert "\n" not in msg
    for pat in patterns:
        assert re.search(pat, msg), f"{pat!r} not in {msg!r}"


def test_block_format_object_checks():
    with pytest.raises(FormatError, match="scale hbfp needs an HBFP element fix<m>.<m-1>"):
        BlockFormat(parse_format("e4m3:fn"), 32, "hbfp")
    with pytest.raises(FormatError, match="scale hbfp needs"):
        BlockFormat(FixedFormat(8, 6), 32, "hbfp")
    with pytest.raises(FormatError, match="block scale must be one of e8m0, hbfp"):
        BlockFormat(FixedFormat(8, 6), 32, "e5m0")
    with pytest.raises(FormatError, match="block size k must be an integer"):
        BlockFormat(FixedFormat(8, 6), 32.0)


# -- the element and scale formats against the OCP MX v1.0 tables ----------------------------------------

# Element data types of OCP MX v1.0 section 5 (and OFP8 for the FP8 types): exponent bias, emax, max
# normal, min normal, max subnormal, min subnormal, Inf, number of NaN codes. Written from the spec.
OCP_ELEMENTS = {
    "mxfp8_e5m2": (15, 15, 57344.0, 2.0 ** -14, 0.75 * 2.0 ** -14, 2.0 ** -16, True, 6),
    "mxfp8_e4m3": (7, 8, 448.0, 2.0 ** -6, 0.875 * 2.0 ** -6, 2.0 ** -9, False, 2),
    "mxfp6_e3m2": (3, 4, 28.0, 0.25, 0.1875, 0.0625, False, 0),
    "mxfp6_e2m3": (1, 2, 7.5, 1.0, 0.875, 0.125, False, 0),
    "mxfp4_e2m1": (1, 2, 6.0, 1.0, 0.5, 0.5, False, 0),
}


@pytest.mark.parametrize("name", list(OCP_ELEMENTS))
def test_mx_float_elements_match_the_spec_tables(name):
    bias, emax, max_normal, min_normal, max_sub, min_sub, has_inf, n_nan = OCP_ELEMENTS[name]
    fmt = BLOCK_PRESETS[name]
    el = fmt.element
    M = el.man_bits
    assert (el.bias, fmt.emax_elem, fmt.elem_max) == (bias, emax, max_normal)
    assert el.decode(np.array([1 << M, (1 << M) - 1, 1])).tolist() == [min_normal, max_sub, min_sub]
    codes = el.all_codes()
    assert el.has_inf == has_inf and int(el.is_nan(codes).sum()) == n_nan


def test_mxint8_and_hbfp_elements():
    """MXINT8: 8-bit two's complement with an implicit 2**-6: -2 (code 0x80) ... 127/64. HBFP-m:
    m-bit two's complement fractions n * 2**-(m-1); both clamp to a symmetric range."""
    fmt = BLOCK_PRESETS["mxint8"]
    ref = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.float64) / 64
    assert np.array_equal(fmt.element.decode(np.arange(256)), ref)
    assert (fmt.emax_elem, fmt.elem_max, fmt.max_int) == (0, 127 / 64, 127)
    assert fmt.element.decode(np.array([0x80]))[0] == -2.0
    for m in (4, 6, 8):
        h = BLOCK_PRESETS[f"hbfp{m}"]
        assert (h.emax_elem, h.elem_max, h.max_int) == (-1, 1 - 2.0 ** (1 - m), 2 ** (m - 1) - 1)


# -- exhaustive element and scale codes against ml_dtypes ----------------------------------------------

ML_TYPES = {
    "mxfp8_e5m2": ml_dtypes.float8_e5m2, "mxfp8_e4m3": ml_dtypes.float8_e4m3fn,
    "mxfp6_e3m2": ml_dtypes.float6_e3m2fn, "mxfp6_e2m3": ml_dtypes.float6_e2m3fn,
    "mxfp4_e2m1": ml_dtypes.float4_e2m1fn,
}


def _ml_decode(dtype, codes):
    with np.errstate(invalid="ignore"):
        return np.asarray(codes).astype(np.uint8).view(dtype).astype(np.float64)


@pytest.mark.parametrize("name", list(ML_TYPES))
def test_element_decode_exhaustive_matches_ml_dtypes(name):
    el = BLOCK_PRESETS[name].element
    codes = el.all_codes()
    ours, ref = el.decode(codes), _ml_decode(ML_TYPES[name], codes)
    assert np.array_equal(ours, ref, equal_nan=True)
    assert np.array_equal(np.signbit(ours), np.signbit(ref)) or np.isnan(ref).any()
    real = ~np.isnan(ref)
    assert np.array_equal(np.signbit(ours[real]), np.signbit(ref[real]))
    # ... and every code's exact value (the Fraction reference) is the same number.
    for c, v in zip(codes, ours):
        f = decode_fraction(el, int(c))
        assert (np.isnan(v) if f is NAN or f == NAN else (v == 0) if isinstance(f, SignedZero) else
                (np.isinf(v) if not isinstance(f, Fraction) else Fraction(v) == f))


def test_e8m0_scale_codes_exhaustive_match_ml_dtypes():
    codes = np.arange(256)
    s, nan = scale_exponents(codes)
    ours = np.where(nan, np.nan, np.ldexp(1.0, s))
    ref = _ml_decode(ml_dtypes.float8_e8m0fnu, codes)
    assert np.array_equal(ours, ref, equal_nan=True) and nan.tolist() == [False] * 255 + [True]
    assert all(scale_fraction(c) == Fraction(2) ** (int(c) - 127) for c in codes[:255]) and scale_fraction(255) is NAN
    # Encoding: the code of 2**s is s + 127, as ml_dtypes casts the power of two (no zero, no sign).
    e = np.arange(-127, 128)
    assert np.array_equal(np.ldexp(np.float32(1), e).astype(np.float32).astype(ml_dtypes.float8_e8m0fnu)
                          .view(np.uint8), e + 127)
    assert (ml_dtypes.finfo(ml_dtypes.float8_e8m0fnu).max, ml_dtypes.finfo(ml_dtypes.float8_e8m0fnu).tiny) \
        == (2.0 ** 127, 2.0 ** -127)


def _boundary_values(el):
    """float32 inputs around every rounding decision of ``el``: each grid value, each midpoint
    between neighbours (the ties) and the float32 neighbours of both, both signs."""
    vals = np.unique(el.decode(el.all_codes()))
    vals = vals[np.isfinite(vals) & (vals >= 0)]
    top = vals[-1] + (vals[-1] - vals[-2])                     # the next grid value above max
    grid = np.append(vals, top)
    mids = (grid[:-1] + grid[1:]) / 2
    x = np.concatenate([grid, mids, [vals[1] / 4]]).astype(np.float32)
    x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(0))])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("name", list(ML_TYPES))
def test_element_rne_rounding_matches_ml_dtypes_on_every_boundary(name):
    """The element rounding (rne, the spec's) is ml_dtypes' cast wherever both define the result the
    same way: for every value up to the midpoint above the largest element, every tie, and the float32
    neighbours of all of them; plus random float32 values over the element range."""
    fmt, dtype = BLOCK_PRESETS[name], ML_TYPES[name]
    el = fmt.element
    rng = _rng("elem-rne", name)
    x = _boundary_values(el)
    x = np.concatenate([x, (rng.standard_normal(20000) * np.exp2(rng.integers(-12, 8, 20000)) * fmt.elem_max / 4)
                        .astype(np.float32)])
    ml = x.astype(dtype).view(np.uint8).astype(np.int64)
    plain = el.encode(x.astype(np.float64), "rne").astype(np.int64)       # round_raw, unclamped
    inside = np.abs(x) <= fmt.elem_max                              # both saturate / round alike here
    assert inside.sum() > 100 and np.array_equal(plain[inside], ml[inside])
    # The block conversion's element step rounds the same way and then clamps: ml_dtypes' cast of the
    # value clamped first is the same thing (elem_max is a grid value).
    clamped = fmt.round_elements(x.astype(np.float64), "rne").astype(np.int64)
    ml_clamped = np.clip(x, -fmt.elem_max, fmt.elem_max).astype(dtype).view(np.uint8).astype(np.int64)
    assert np.array_equal(clamped, ml_clamped)


def test_where_ml_dtypes_differs_from_the_block_conversion():
    """docs/arithmetic.md 9.4: out of range ml_dtypes gives Inf (E5M2) or NaN (E4M3) where the OCP
    conversion clamps; FP6/FP4 saturate in both; ml_dtypes casts NaN to -0 in FP6/FP4."""
    big = np.array([1e6, -1e6, np.inf], np.float32)
    assert np.isinf(big.astype(ml_dtypes.float8_e5m2).astype(np.float64)).all()
    assert np.isnan(big.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)).all()
    for name in ("mxfp8_e5m2", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1"):
        fmt = BLOCK_PRESETS[name]
        assert fmt.element.decode(fmt.round_elements(big[:2].astype(np.float64))).tolist() == \
            [fmt.elem_max, -fmt.elem_max]
    for name in ("mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1"):
        with np.errstate(invalid="ignore", over="ignore"):
            cast = big.astype(ML_TYPES[name]).astype(np.float64)
            nan_cast = np.array([np.nan], np.float32).astype(ML_TYPES[name]).astype(np.float64)
        assert cast.tolist() == [BLOCK_PRESETS[name].elem_max, -BLOCK_PRESETS[name].elem_max,
                                 BLOCK_PRESETS[name].elem_max]
        assert nan_cast[0] == 0 and np.signbit(nan_cast[0])


# -- conversion ----------------------------------------------------------------------------------------

def _independent_scale(fmt, blocks):
    """The shared exponent from NumPy's log2 (exact enough for float32 maxima) and the spec's emax."""
    amax = np.abs(blocks.astype(np.float64)).max(axis=-1)
    emax = {"mxint8": 0, "mxfp8_e4m3": 8, "mxfp8_e5m2": 15, "mxfp6_e3m2": 4, "mxfp6_e2m3": 2,
            "mxfp4_e2m1": 2}.get(fmt.name, -1)
    with np.errstate(divide="ignore"):
        lg = np.log2(amax)
    s = np.floor(lg) - emax if fmt.scale == "e8m0" else np.ceil(lg) - emax - 1
    return np.clip(np.where(amax > 0, s, -127), -127, 127).astype(np.int64)


@pytest.mark.parametrize("name", list(BLOCK_PRESETS))
def test_conversion_rne_matches_ml_dtypes_and_numpy(name):
    """quantize_blocks (rne) on random float32 blocks: the scale from NumPy's log2, the elements from
    ml_dtypes' cast (floats) or np.rint (integers) of the clamped scaled value."""
    fmt = BLOCK_PRESETS[name]
    rng = _rng("conv", name)
    x = (rng.standard_normal((400, 32)) * np.exp2(rng.integers(-40, 40, (400, 1)))).astype(np.float32)
    x[::7, 3] = 0.0
    codes, scales = quantize_blocks(x, fmt)
    s = _independent_scale(fmt, x)
    assert np.array_equal(scales[:, 0], s + 127)
    y = np.clip(np.ldexp(x.astype(np.float64), -s[:, None]), -fmt.elem_max, fmt.elem_max)
    if name in ML_TYPES:
        ref = y.astype(np.float32).astype(ML_TYPES[name]).view(np.uint8)   # y is exact in float32
    else:
        F = fmt.element.frac_bits
        n = np.clip(np.rint(np.ldexp(y, F)), -fmt.max_int, fmt.max_int).astype(np.int64)
        ref = (n & ((1 << fmt.element.bits) - 1)).astype(np.uint8)
    assert np.array_equal(codes, ref)


def _adversarial_blocks(fmt, k=32):
    """Blocks that hit every stated edge case (docs/arithmetic.md 9.4)."""
    f32max = float(np.finfo(np.float32).max)
    sub = float(np.finfo(np.float32).smallest_subnormal)
    em = fmt.elem_max
    rows = [
        [0.0] * k, [-0.0, 0.0] * (k // 2),                                  # all-zero blocks
        [1.0, np.nan] + [0.5] * (k - 2), [np.inf] + [1.0] * (k - 1),        # NaN / Inf in a block
        [-np.inf, np.nan] + [0.0] * (k - 2),
        [f32max, -f32max] + [1.0] * (k - 2),                                # the top of FP32
        [f32max * 0.75, 2.0 ** 127, 2.0 ** 126 * 1.5] + [-1e38] * (k - 3),  # HBFP scale overflow
        [sub, -3 * sub, 2.0 ** -126 * (1 - 2.0 ** -23)] + [-sub] * (k - 3),  # FP32 subnormals
        [2.0 ** -126, sub, -2.0 ** -130] + [2.0 ** -140] * (k - 3),          # normal and subnormal
        [2.0 ** -120, -2.0 ** -125] + [2.0 ** -133] * (k - 2),              # scale underflow (MX)
        [-1.999, 1.0] + [0.25] * (k - 2), [-2.0, 1.999] + [-0.0] * (k - 2),  # MXINT8's -128
        [-1.9960938, 0.5] + [-1.99] * (k - 2),
        [em, -em] + [em * 0.999] * (k - 2),                                 # max at the element max
    ]
    # Ties: with the element maximum in the block the scale is 2**0, so the scaled values are the
    # given ones: every midpoint between neighbours, the midpoint above the maximum, both signs.
    grid = np.unique(np.abs(fmt.element.decode(fmt.element.all_codes())))
    grid = grid[np.isfinite(grid)]
    grid = np.append(grid, 2 * grid[-1] - grid[-2])
    mids = ((grid[:-1] + grid[1:]) / 2).tolist()
    mids = [m * sgn for m in mids for sgn in (1, -1)]
    for i in range(0, len(mids), k - 1):
        chunk = mids[i:i + k - 1]
        rows.append([em] + chunk + [0.0] * (k - 1 - len(chunk)))
    return np.array(rows, dtype=np.float32)


def _random_blocks(rng, n, k=32):
    """float32 blocks of every kind: wide and narrow magnitude spreads, random bit patterns (all
    exponents, subnormals, NaN and Inf), zeros."""
    a = rng.standard_normal((n, k)) * np.exp2(rng.integers(-60, 60, (n, 1)) + rng.integers(0, 20, (n, k)))
    b = rng.integers(0, 1 << 32, (n, k), dtype=np.uint64).astype(np.uint32).view(np.float32)
    mix = rng.random((n, 1)) < 0.3
    x = np.where(mix, b, a.astype(np.float32))
    x[rng.random((n, k)) < 0.05] = 0.0
    return x.astype(np.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(BLOCK_PRESETS))
def test_conversion_matches_the_exact_reference(name, mode):
    fmt = BLOCK_PRESETS[name]
    rng = _rng("quant", name, mode)
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.concatenate([_adversarial_blocks(fmt), _random_blocks(rng, 12)])
    rbits, rand_bits = _words(rng, x.shape, mode)
    codes, scales = quantize_blocks(x, fmt, mode, rbits=rbits, rand_bits=rand_bits)
    for i, row in enumerate(x):
        rc, rs = quantize_block_fraction(fmt, [float(v) for v in row], mode,
                                         r=None if rbits is None else rbits[i], rand_bits=rand_bits)
        assert (int(scales[i, 0]), codes[i].tolist()) == (rs, rc), f"{name} {mode} block {i}: {row.tolist()}"


CONVERSION_FORMATS = list(BLOCK_PRESETS) + ["mx:e4m3/32", "mx:e5m2:nosub/16", "mx:e3m4:fn/32", "mx:e2m5:finite/8",
                                             "mx:fix16.15/32", "hbfp2/32"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CONVERSION_FORMATS)
def test_conversion_fast_path_is_the_general_path(name, mode):
    """quantize_blocks' compiled element roundings (fast) against the general path (fast=False) on
    the adversarial blocks (ties of every element format, overflow, FP32 subnormals, NaN/Inf blocks),
    random blocks and BF16/FP16 input, sr with 1-bit, 16-bit and 32-bit words: the same codes and
    scales. (test_conversion_matches_the_exact_reference checks the presets against Fractions.)"""
    fmt = parse_block_format(name)
    rng = _rng("quant-fast", name, mode)
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.concatenate([_adversarial_blocks(fmt, fmt.k), _random_blocks(rng, 40, fmt.k)])
        inputs = [x, x.astype(ml_dtypes.bfloat16), x.astype(np.float16)]
    for v in inputs:
        for R in ((1, 16, 32) if mode == "sr" else (None,)):
            r = rng.integers(0, 1 << R, v.shape, dtype=np.uint64) if R else None
            got = quantize_blocks(v, fmt, mode, rbits=r, rand_bits=R)
            want = quantize_blocks(v, fmt, mode, rbits=r, rand_bits=R, fast=False)
            assert got[0].dtype == want[0].dtype
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), (v.dtype, R)
    # round_elements outside the compiled range (|x| < 2**-900) falls back to the general path
    tiny = np.array([2.0 ** -950, -2.0 ** -950, 1.0, 0.0])
    assert np.array_equal(fmt.round_elements(tiny), fmt.round_elements(tiny, fast=False))


def test_conversion_edge_cases_as_stated():
    """docs/arithmetic.md 9.4, case by case."""
    e4 = BLOCK_PRESETS["mxfp8_e4m3"]
    x = np.array([[0.0, -0.0] * 16, [1.0, np.nan] + [0.5] * 30, [-np.inf] + [1.0] * 31], np.float32)
    codes, scales = quantize_blocks(x, e4)
    assert scales[:, 0].tolist() == [0, 255, 255] and codes[1:].tolist() == [[0] * 32] * 2
    assert codes[0].tolist() == [0x00, 0x80] * 16                          # zero signs kept
    assert np.isnan(dequantize(codes, scales, e4)[1:]).all()
    # The top of FP32: floor(log2) = 127, s = 127 - 8; the maximum itself rounds to 448 * 2**119 (rne).
    c, s = quantize_blocks(np.array([[np.finfo(np.float32).max] * 32], np.float32), e4)
    assert s[0, 0] == 127 + 119 and c[0, 0] == 0x7E
    # HBFP: the scale would be 2**128 for a maximum of 2**127 or more; it saturates at 2**127 and the
    # elements clamp to the largest mantissa.
    h8 = BLOCK_PRESETS["hbfp8"]
    c, s = quantize_blocks(np.array([[2.0 ** 127, -3e38] + [0.0] * 30], np.float32), h8)
    assert s[0, 0] == 254 and c[0, :2].tolist() == [127, 0x81]
    # HBFP's ceil rule: a power-of-two maximum gets the exponent of its own binade and clamps one step
    # down (the emulator's behaviour); the MX rule with the same elements represents it exactly.
    c, s = quantize_blocks(np.array([[1.0] + [0.25] * 31], np.float32), h8)
    assert s[0, 0] == 127 and c[0, :2].tolist() == [127, 32]
    mxh = parse_block_format("mx:fix8.7")
    c, s = quantize_blocks(np.array([[1.0] + [0.25] * 31], np.float32), mxh)
    assert s[0, 0] == 128 and c[0, :2].tolist() == [64, 16]
    # MXINT8 never produces -128 (0x80): -2 * X clamps to -127/64 * X; dequantize still reads 0x80 as -2.
    m8 = BLOCK_PRESETS["mxint8"]
    c, s = quantize_blocks(np.array([[-1.9990234, 1.0] + [0.0] * 30], np.float32), m8)
    assert c[0, 0] == 0x81 and s[0, 0] == 127
    assert dequantize(np.array([[0x80] * 32]), np.array([[128]]), m8)[0, 0] == -4.0
    # FP32 subnormal blocks: the scale underflows to 2**-127 and the elements round to zero.
    sub = np.float32(np.finfo(np.float32).smallest_subnormal)
    c, s = quantize_blocks(np.array([[sub, -sub] + [0.0] * 30], np.float32), e4)
    assert s[0, 0] == 0 and c[0, :2].tolist() == [0x00, 0x80]
    # E5M2 overflow by rounding: 61440 * X rounds (rne) to Inf; the conversion clamps to 57344.
    e5 = BLOCK_PRESETS["mxfp8_e5m2"]
    c, s = quantize_blocks(np.array([[61440.0, -61440.0] + [1.0] * 30], np.float32), e5)
    assert s[0, 0] == 127 and c[0, :2].tolist() == [0x7B, 0xFB]


def test_conversion_axis_dtypes_and_round_trip():
    rng = _rng("axis")
    x = rng.standard_normal((64, 3)).astype(np.float32)
    fmt = BLOCK_PRESETS["mxfp6_e2m3"]
    c0, s0 = quantize_blocks(x, fmt, axis=0)
    c1, s1 = quantize_blocks(x.T, fmt)
    assert np.array_equal(c0, c1.T) and np.array_equal(s0, s1.T) and s0.shape == (2, 3)
    assert np.array_equal(dequantize(c0, s0, fmt, axis=0), dequantize(c1, s1, fmt).T)
    # bfloat16 and float16 inputs are exact float32 values: the same blocks.
    xb = x.astype(ml_dtypes.bfloat16)
    assert np.array_equal(quantize_blocks(xb, fmt, axis=0)[0], quantize_blocks(xb.astype(np.float32), fmt, axis=0)[0])
    # Dequantized blocks convert back to themselves under the MX rule (it is idempotent on its own
    # output), also with HBFP elements (mx:fix<m>.<m-1>) ...
    specs = [n for n in BLOCK_PRESETS if not n.startswith("hbfp")] + ["mx:fix4.3", "mx:fix8.7"]
    for spec in specs:
        c, s = quantize_blocks(x.T, spec)
        c2, s2 = quantize_blocks(dequantize(c, s, spec).astype(np.float32), spec)
        assert np.array_equal(c, c2) and np.array_equal(s, s2), spec
    # ... but not under HBFP's ceil rule: a block whose largest mantissa is a power of two (4 of at
    # most 7 for HBFP4) is re-read at the next lower exponent, and that 8 clamps to 7 (section 9.4).
    h4 = BLOCK_PRESETS["hbfp4"]
    c, s = quantize_blocks(np.array([[0.5] + [0.125] * 31], np.float32) * np.float32(1.01), h4)
    assert c[0, :2].tolist() == [4, 1] and s[0, 0] == 127
    c2, s2 = quantize_blocks(dequantize(c, s, h4).astype(np.float32), h4)
    assert c2[0, :2].tolist() == [7, 2] and s2[0, 0] == 126


def test_dequantize_matches_the_exact_reference():
    for name in ("mxfp8_e5m2", "mxfp4_e2m1", "mxint8", "hbfp6"):
        fmt = BLOCK_PRESETS[name]
        codes = fmt.element.all_codes()
        pad = -len(codes) % fmt.k
        codes = np.concatenate([codes, codes[:pad]]).reshape(-1, fmt.k)
        for sc in (0, 1, 127, 200, 254, 255):
            scales = np.full((codes.shape[0], 1), sc)
            got = dequantize(codes, scales, fmt)
            for row, vals in zip(codes, got):
                for c, v, ref in zip(row, vals, decode_block_fraction(fmt, row, sc)):
                    if ref is NAN or ref == NAN:
                        assert np.isnan(v)
                    elif isinstance(ref, SignedZero):
                        assert v == 0 and np.signbit(v) == bool(ref.sign)
                    elif isinstance(ref, Fraction):
                        assert Fraction(v) == ref
                    else:
                        assert np.isinf(v) and np.signbit(v) == bool(ref.sign)


def test_round_int_fraction():
    assert [round_int_fraction(Fraction(v), "rne") for v in (0.5, 1.5, -2.5, 2.25)] == [0, 2, -2, 2]
    assert [round_int_fraction(Fraction(v), "rna") for v in (0.5, -1.5)] == [1, -2]
    assert [round_int_fraction(Fraction(v), "rtz") for v in (1.75, -1.75)] == [1, -1]
    assert round_int_fraction(Fraction(5, 4), "sr", r=3, rand_bits=2) == 2     # floor(0.25*4) + 3 = 4
    assert round_int_fraction(Fraction(5, 4), "sr", r=2, rand_bits=2) == 1


@pytest.mark.parametrize("args, message", [
    (dict(values=np.zeros((2, 32))), "values must be a float32 .* not float64"),
    (dict(values=np.zeros((2, 30), np.float32)), "length 30, not a multiple of the block size k=32"),
    (dict(values=np.zeros((2, 32), np.float32), rounding="rnd"), "rounding must be one of"),
    (dict(values=np.zeros((2, 32), np.float32), rounding="sr", rand_bits=4), "rbits is required"),
    (dict(values=np.zeros((2, 32), np.float32), rounding="sr", rand_bits=4, rbits=np.full((2, 32), 16)),
     r"rbits values must be in \[0, 2\*\*4\)"),
    (dict(values=np.zeros((2, 32), np.float32), axis=2), "axis must be between -2 and 1"),
    (dict(values=np.zeros((2, 32), np.float32), fmt="mxint8/4x"), "fmt: block size k must be an integer"),
])
def test_conversion_errors_are_one_line(args, message):
    args = dict(dict(fmt="mxint8"), **args)
    with pytest.raises(ValueError, match=message) as info:
        quantize_blocks(**args)
    assert "\n" not in str(info.value)


# -- block dot products --------------------------------------------------------------------------------

def _block_codes(rng, fmt, shape, p_special=0.03):
    """Random element codes (all codes, specials rare) and scale codes (mostly near 127, sometimes
    extreme or NaN)."""
    codes = rng.integers(0, 1 << fmt.element.width, shape)
    el = fmt.element
    if not fmt.is_fixed and el.has_nan:
        special = el.is_nan(codes) | el.is_inf(codes)
        codes = np.where(special & (rng.random(shape) > p_special), codes & (el.sign_mask | 1), codes)
    nb = shape[-1] // fmt.k
    sshape = shape[:-1] + (nb,)
    scales = rng.integers(110, 145, sshape)
    u = rng.random(sshape)
    scales = np.where(u < 0.04, rng.choice([0, 1, 253, 254], sshape), scales)
    scales = np.where(u > 0.985, 255, scales)
    return codes, scales


DOT_PAIRS = [("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp8_e4m3", "mxfp8_e5m2"), ("mxfp8_e5m2", "mxfp8_e5m2"),
             ("mxfp6_e3m2", "mxfp6_e2m3"), ("mxfp4_e2m1", "mxfp4_e2m1"), ("mxint8", "mxint8"),
             ("hbfp8", "hbfp8"), ("hbfp4", "mxfp4_e2m1")]
ACCS = ("fp32", "bf16", "e6m9")


def _ref_dots(fa, fb, acc, a, sa, b, sb, c, mode, r):
    return [block_dot_fraction(fa, fb, acc, a[i], sa[i], b[i], sb[i], None if c is None else int(c[i]), mode,
                               r=None if r is None else int(r[i]), rand_bits=R) for i in range(len(a))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pair", DOT_PAIRS, ids="-".join)
def test_block_dot_matches_the_exact_reference(pair, mode):
    fa, fb = BLOCK_PRESETS[pair[0]], BLOCK_PRESETS[pair[1]]
    rng = _rng("dot", pair, mode)
    for acc_name in ACCS:
        acc = parse_format(acc_name)
        n_dot, nblk = 40, int(rng.integers(1, 4))
        a, sa = _block_codes(rng, fa, (n_dot, 32 * nblk))
        b, sb = _block_codes(rng, fb, (n_dot, 32 * nblk))
        c = rng.integers(0, 1 << acc.width, n_dot)
        c[:5] = [0, acc.sign_mask, 0, acc.sign_mask, acc.max_code]
        r, _ = _words(rng, (n_dot,), mode)
        got = block_dot(a, sa, b, sb, c, fa, fb, acc, mode, rbits=r, rand_bits=R if mode == "sr" else None)
        ref = _ref_dots(fa, fb, acc, a, sa, b, sb, c, mode, r)
        assert got.tolist() == ref, f"{pair} {acc_name} {mode}"


def _wide_e5m2_blocks(rng, n):
    """E5M2 blocks mixing the largest and the smallest magnitudes: exact sums of up to 70 bits,
    beyond add_raw's 49, with cancellations of the large terms."""
    e5 = BLOCK_PRESETS["mxfp8_e5m2"].element
    big = rng.choice([0x7B, 0x7A, 0x78, 0x70], (n, 32))
    small = rng.integers(1, 4, (n, 32))
    codes = np.where(rng.random((n, 32)) < 0.5, big, small) | (rng.integers(0, 2, (n, 32)) << 7)
    codes[:, 1] = codes[:, 0] ^ e5.sign_mask                  # the two largest cancel
    return codes


@pytest.mark.parametrize("mode", MODES)
def test_block_dot_edge_cases_against_the_reference(mode):
    """Wide E5M2 sums, exact cancellation (+0, or -0 from all -0 products), extreme scales
    overflowing and underflowing FP32, NaN scales, NaN/Inf elements."""
    e5 = BLOCK_PRESETS["mxfp8_e5m2"]
    acc = parse_format("fp32")
    rng = _rng("dot-edge", mode)
    n = 24
    a = _wide_e5m2_blocks(rng, n)
    b = _wide_e5m2_blocks(rng, n)
    b[:, 0] = b[:, 1] = 0x7B                                        # +57344 * (x - x)
    sa = np.full((n, 1), 127)
    sb = np.full((n, 1), 127)
    a[0], b[0] = 0x80, 0x00                                         # all products -0
    a[1], b[1] = 0x80, 0x80                                         # all products +0
    a[2, 2:], b[2, 2:] = 0, 0                                       # 57344**2 - 57344**2 = +0
    sa[3], sb[3] = 254, 254                                         # 2**254 * ...: overflow
    sa[4], sb[4] = 0, 0                                             # 2**-254 * ...: underflow
    sa[5] = 255                                                     # NaN scale
    a[6, 5], b[6, 5] = 0x7C, 0x3C                                   # +Inf element
    a[7, 5], a[7, 6] = 0x7C, 0xFC                                   # Inf - Inf
    b[7, 5], b[7, 6] = 0x3C, 0x3C
    a[8, 5], b[8, 5] = 0x7C, 0x00                                   # Inf * 0
    a[9, 5] = 0x7F                                                  # NaN element
    c = np.zeros(n, np.int64)
    c[0] = acc.sign_mask
    c[10] = 0x7F800000                                              # c = +Inf
    c[11] = 0x7FC00000                                              # c = NaN
    r, _ = _words(rng, (n,), mode)
    got = block_dot(a, sa, b, sb, c, e5, e5, acc, mode, rbits=r, rand_bits=R if mode == "sr" else None)
    assert got.tolist() == _ref_dots(e5, e5, acc, a, sa, b, sb, c, mode, r)
    assert got[0] == acc.sign_mask and got[1] == 0 and got[5] == acc.nan_code
    S = block_sums(a, sa, b, sb, e5, e5)
    assert bool(S.nan[5]) and bool(S.nan[7]) and bool(S.inf[6]) and S.sign[0, 0] == 1
    finite = ~S.nan & ~S.inf
    assert ((bitlen(S.sig) > 49) & finite).sum() > n // 2          # the wide-sum path is exercised


def test_block_dot_shapes_c_and_lanes():
    rng = _rng("dot-shapes")
    fa = BLOCK_PRESETS["mxfp4_e2m1"]
    a, sa = _block_codes(rng, fa, (3, 1, 64))
    b, sb = _block_codes(rng, fa, (1, 4, 64))
    y = block_dot(a, sa, b, sb, None, fa, fa)
    assert y.shape == (3, 4) and y.dtype == np.uint32
    assert block_dot(a[:0], sa[:0], b, sb, None, fa, fa).shape == (0, 4)
    for lanes in (1, 2, 4, 8, 16, 32):                 # a hardware parameter: never the result
        assert np.array_equal(block_dot(a, sa, b, sb, None, fa, fa, lanes=lanes), y)
    with pytest.raises(ValueError, match="block size k=32 must be a multiple of lanes=5"):
        block_dot(a, sa, b, sb, None, fa, fa, lanes=5)
    with pytest.raises(ValueError, match="lanes must be between 1 and 64"):
        block_dot(a, sa, b, sb, None, fa, fa, lanes=0)
    with pytest.raises(ValueError, match="fmt_a and fmt_b must have the same block size k .* 32 and 16"):
        block_dot(a, sa, b, sb, None, fa, "mxfp4_e2m1/16")
    with pytest.raises(ValueError, match=r"a_codes \(\.\.\., n\) and a_scales \(\.\.\., n/k\)"):
        block_dot(a, sa[..., :1], b, sb, None, fa, fa)
    with pytest.raises(ValueError, match="scales must be 8-bit codes"):
        block_dot(a, sa + 300, b, sb, None, fa, fa)
    with pytest.raises(ValueError, match="acc_fmt must be a radix-2 float format"):
        block_dot(a, sa, b, sb, None, fa, fa, acc_fmt="int8")


# -- the streamed GEMM ---------------------------------------------------------------------------------

def _ref_gemm(fa, fb, acc, A, As, B, Bs, chunk_blocks, mode, rbi, rbo):
    M, N = A.shape[0], B.shape[1]
    return [[block_stream_fraction(fa, fb, acc, A[m], As[m], B[:, n], Bs[:, n], chunk_blocks, mode,
                                   rbi=None if rbi is None else rbi[m, n], rbo=None if rbo is None else rbo[m, n],
                                   rand_bits=R) for n in range(N)] for m in range(M)]


GEMM_CASES = [("mxfp8_e4m3", "mxfp8_e5m2", "fp32"), ("mxfp8_e5m2", "mxfp8_e5m2", "bf16"),
              ("mxfp4_e2m1", "mxfp6_e2m3", "e6m9"), ("mxint8", "mxint8", "fp32"), ("hbfp8", "hbfp8", "fp32"),
              ("hbfp4", "hbfp4", "bf16")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", GEMM_CASES, ids="-".join)
def test_block_gemm_matches_the_exact_reference(case, mode):
    fa, fb, acc = BLOCK_PRESETS[case[0]], BLOCK_PRESETS[case[1]], parse_format(case[2])
    rng = _rng("gemm", case, mode)
    M, N, nb = 3, 4, 5
    A, As = _block_codes(rng, fa, (M, 32 * nb))
    Bt, Bts = _block_codes(rng, fb, (N, 32 * nb))
    B, Bs = Bt.T, Bts.T
    for chunk in (0, 64):
        cb = chunk // 32
        rbi, _ = _words(rng, (M, N, nb), mode)
        rbo, _ = _words(rng, (M, N, -(-nb // cb) if cb else 0), mode)
        kw = dict(rbits_inner=rbi, rbits_outer=rbo if cb else None, rand_bits=R) if mode == "sr" else {}
        got = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=chunk, **kw)
        ref = _ref_gemm(fa, fb, acc, A, As, B, Bs, cb, mode, rbi, rbo if cb else None)
        assert got.tolist() == ref, f"{case} {mode} chunk={chunk}"
        assert np.array_equal(block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=chunk, fast=False, **kw), got)


def test_block_gemm_of_one_block_is_block_dot():
    rng = _rng("gemm-dot")
    fa, fb = BLOCK_PRESETS["mxfp8_e4m3"], BLOCK_PRESETS["hbfp6"]
    A, As = _block_codes(rng, fa, (6, 32))
    Bt, Bts = _block_codes(rng, fb, (5, 32))
    for mode in ("rne", "rtz"):
        C = block_gemm(A, As, Bt.T, Bts.T, fa, fb, "bf16", mode)
        D = block_dot(A[:, None], As[:, None], Bt[None], Bts[None], None, fa, fb, "bf16", mode)
        assert np.array_equal(C, D)


@pytest.mark.parametrize("case", [("mxfp8_e5m2", "mxfp8_e5m2"), ("mxfp8_e4m3", "mxfp8_e5m2"),
                                  ("mxfp6_e3m2", "mxint8"), ("hbfp8", "mxfp4_e2m1")], ids="-".join)
def test_block_gemm_fast_path_is_the_exact_path(case, monkeypatch):
    """The fast path (the accumulator kernel, its exactness test, the zero signs and the fallback of
    flagged outputs to the exact path) gives the same codes as the exact integer path on realistic
    data, on wide E5M2 blocks, on zero blocks, with specials and NaN scales."""
    import golden.block as gb
    fa, fb = BLOCK_PRESETS[case[0]], BLOCK_PRESETS[case[1]]
    rng = _rng("fast", case)
    M, K, N = 20, 256, 18
    A, As = quantize_blocks((rng.standard_normal((M, K)) * np.exp2(rng.integers(-30, 30, (M, 1)))).astype(np.float32), fa)
    B, Bs = quantize_blocks(rng.standard_normal((K, N)).astype(np.float32), fb, axis=0)
    A[2, :64] = 0 if fa.is_fixed else fa.element.sign_mask       # zero blocks (with -0 elements)
    A[3, :32] = 0
    B[:32, 4] = 0 if fb.is_fixed else fb.element.sign_mask
    neg_zero_row = not fa.is_fixed
    if neg_zero_row:
        A[13] = fa.element.sign_mask                             # -0 * (positive) everywhere: C = -0
        B[:, 7] = 1
    As[5, 1] = 255                                               # NaN scale
    Bs[2, 6] = 0
    if case[0] == "mxfp8_e5m2":
        A[7:10] = np.tile(_wide_e5m2_blocks(rng, 3), (1, K // 32))
        A[11, 40] = 0x7C                                         # Inf element
        A[12, 41] = 0x7F                                         # NaN element
    flagged = _count_fallback(monkeypatch, gb)
    for mode, acc in (("rne", "fp32"), ("rtz", "bf16"), ("rna", "e6m9")):
        C1 = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=64)
        C0 = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=64, fast=False)
        assert np.array_equal(C1, C0), (case, mode)
        if neg_zero_row:
            assert C1[13, 7] == parse_format(acc).sign_mask and C1[13, 8] in (0, parse_format(acc).sign_mask)
    # The kernel computed most outputs itself (otherwise this test would prove little), and the
    # wide E5M2 rows went to the exact path.
    assert sum(flagged) < 0.2 * 3 * M * N
    assert (sum(flagged) > 0) == (case[0] == "mxfp8_e5m2")


def _count_fallback(monkeypatch, gb):
    """Record how many outputs each block_gemm call recomputes on the exact path."""
    flagged = []
    real = gb._pair_gemm

    def spy(*args):
        flagged.append(args[9].size)                             # rows
        return real(*args)
    monkeypatch.setattr(gb, "_pair_gemm", spy)
    return flagged


def _adversarial_gemm(rng, fa, fb, M, K, N):
    """Block operands ``(A, As, B, Bs)`` mixing realistic quantized rows with the edge cases:
    random codes (specials included) under scales near 127, extreme (0, 1, 253, 254) and NaN; block
    sums cancelling each other and within a block; rows of -0 and of +0; scales that put the sums
    in the subnormal range of FP32/BF16 and beyond their largest values."""
    A, As = _block_codes(rng, fa, (M, K))
    Bt, Bts = _block_codes(rng, fb, (N, K))
    B, Bs = Bt.T.copy(), Bts.T.copy()
    x = (rng.standard_normal((M, K)) * np.exp2(rng.integers(-20, 20, (M, 1)))).astype(np.float32)
    qa, qas = quantize_blocks(x, fa)
    qb, qbs = quantize_blocks(rng.standard_normal((K, N)).astype(np.float32), fb, axis=0)
    A[: M // 2], As[: M // 2] = qa[: M // 2], qas[: M // 2]               # realistic rows and columns
    B[:, : N // 2], Bs[:, : N // 2] = qb[:, : N // 2], qbs[:, : N // 2]
    neg = 0 if fa.is_fixed else fa.element.sign_mask
    flip = (lambda c: (-fa.element.to_int(c)) & ((1 << fa.element.bits) - 1)) if fa.is_fixed else \
        (lambda c: c ^ fa.element.sign_mask)
    if K >= 64:
        A[0, 32:64], As[0, 1] = flip(A[0, :32]), As[0, 0]                 # S_1 = -S_0 against equal B blocks
        B[32:64], Bs[1] = B[:32], Bs[0]
    A[1, 1:32:2] = flip(A[1, 0:32:2])                                     # p, -p inside a block
    B[1:32:2] = B[0:32:2]
    A[2] = neg                                                            # -0 (or +0) times anything
    A[3] = 0                                                              # +0
    s = -130 - int(np.log2(fa.elem_max * fb.elem_max))                    # row 4 x column 1: ~2**-130
    As[4], Bs[:, 1] = 127 + s // 2, 127 + s - s // 2
    As[5], Bs[:, 2] = 254, 254                                            # 2**254: overflow
    As[6, 0] = 255                                                        # NaN scale
    if fa.element == BLOCK_PRESETS["mxfp8_e5m2"].element and M > 8:
        A[7:9] = np.tile(_wide_e5m2_blocks(rng, 2), (1, K // 32))        # sums beyond float64
        As[7:9] = 127
    return A, As, B, Bs


BLOCK_KERNEL_CASES = [("mxfp8_e4m3", "mxfp8_e5m2", "fp32"), ("mxfp8_e5m2", "mxfp8_e5m2", "fp32"),
                      ("mxfp8_e4m3", "mxfp8_e4m3", "bf16"), ("mxfp6_e3m2", "mxfp6_e2m3", "e6m9"),
                      ("mxfp4_e2m1", "mxfp4_e2m1", "bf16"), ("mxint8", "hbfp8", "fp32"),
                      ("hbfp4", "hbfp6", "fp16_e6m9"), ("hbfp4", "mxfp4_e2m1", "fp16")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", BLOCK_KERNEL_CASES, ids="-".join)
def test_block_gemm_kernel_matches_the_exact_path(case, mode, monkeypatch):
    """The kernel path of block_gemm against the exact path (fast=False), bit for bit: every preset
    element format, FP32/BF16/1-6-9/FP16 accumulators (with and without subnormals), every rounding
    (sr with given words, the extremes 0 and 2**R - 1 among them), no chunking and chunks of 1 and
    3 blocks (K = 7 blocks: a partial last chunk), outputs across several kernel tiles (N > 256)."""
    import golden.block as gb
    fa, fb, acc = BLOCK_PRESETS[case[0]], BLOCK_PRESETS[case[1]], parse_format(case[2])
    rng = _rng("kernel", case, mode)
    flagged = _count_fallback(monkeypatch, gb)
    subnormal = False
    runs = ((12, 20, 0), (12, 20, 32), (12, 20, 96), (7, 260, 96))
    for M, N, chunk in runs:
        A, As, B, Bs = _adversarial_gemm(rng, fa, fb, M, 7 * 32, N)
        cb = chunk // 32
        kw = {}
        if mode == "sr":
            Rb = 8 if acc.man_bits >= 10 else 16
            ri = rng.integers(0, 1 << Rb, (M, N, 7))
            ri[0, :3], ri[1, :3] = 0, (1 << Rb) - 1
            kw = dict(rbits_inner=ri, rand_bits=Rb,
                      rbits_outer=rng.integers(0, 1 << Rb, (M, N, -(-7 // cb))) if cb else None)
        C1 = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=chunk, **kw)
        C0 = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=chunk, fast=False, **kw)
        assert np.array_equal(C1, C0), (M, N, chunk)
        mag = C1.astype(np.int64) & (acc.sign_mask - 1)
        subnormal |= bool(((mag > 0) & (mag < (1 << acc.man_bits))).any())
    if acc.name in ("fp32", "bf16"):
        assert subnormal                                                  # subnormal results occur
    assert sum(flagged) < 0.5 * sum(M * N for M, N, _ in runs)            # mostly the kernel's own


def test_kernel_range_holds_for_every_element_format():
    """The kernel's magnitude bounds hold for the extreme element formats BlockFormat accepts."""
    from golden.block import _kernel_range_ok
    extremes = ["mx:e7m0:fn:bias=0", "mx:e7m0:fn:bias=127", "mx:e1m6:finite", "mx:fix16.-64", "mx:fix8.128",
                "mx:fix2.128", "mxfp8_e5m2", "hbfp4"]
    fmts = [parse_block_format(s) for s in extremes]
    assert all(_kernel_range_ok(a, b) for a in fmts for b in fmts)


def test_block_gemm_tile_path_and_shapes():
    """The float64 tile sums (the fast path where the kernel does not apply: sr with M + R > 51) and
    empty outputs, against the exact path."""
    fa, fb = BLOCK_PRESETS["mxfp8_e4m3"], BLOCK_PRESETS["mxfp8_e5m2"]
    rng = _rng("tile-path")
    A, As, B, Bs = _adversarial_gemm(rng, fa, fb, 9, 96, 11)
    kw = dict(rbits_inner=rng.integers(0, 1 << 32, (9, 11, 3)), rand_bits=32)
    assert np.array_equal(block_gemm(A, As, B, Bs, fa, fb, "fp32", "sr", **kw),
                          block_gemm(A, As, B, Bs, fa, fb, "fp32", "sr", fast=False, **kw))
    assert block_gemm(A[:0], As[:0], B, Bs, fa, fb).shape == (0, 11)
    assert block_gemm(A, As, B[:, :0], Bs[:, :0], fa, fb).shape == (9, 0)


@pytest.mark.parametrize("mode", ["rne", "sr"])
def test_block_gemm_lanes_and_errors(mode):
    rng = _rng("gemm-err", mode)
    f = BLOCK_PRESETS["mxint8"]
    A, As = _block_codes(rng, f, (2, 64))
    Bt, Bts = _block_codes(rng, f, (3, 64))
    kw = dict(rbits_inner=rng.integers(0, 16, (2, 3, 2)), rand_bits=4) if mode == "sr" else {}
    C = block_gemm(A, As, Bt.T, Bts.T, f, f, rounding=mode, **kw)
    for lanes in (1, 4, 32):
        assert np.array_equal(block_gemm(A, As, Bt.T, Bts.T, f, f, rounding=mode, lanes=lanes, **kw), C)
    for kwargs, message in [
        (dict(lanes=3), "block size k=32 must be a multiple of lanes=3"),
        (dict(chunk=48), "chunk=48 must be 0 .* or a multiple of the block size k=32"),
        (dict(chunk=-32), "chunk must be at least 0"),
        (dict(fmt_b="mxint8/16"), "same block size k"),
    ]:
        args = dict(fmt_a=f, fmt_b=f, rounding=mode, **kw)
        args.update(kwargs)
        with pytest.raises(ValueError, match=message) as info:
            block_gemm(A, As, Bt.T, Bts.T, **args)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"A_scales must have shape \(2, 2\) and B_scales \(2, 3\)"):
        block_gemm(A, As, Bt.T, Bts, f, f, rounding=mode, **kw)
    with pytest.raises(ValueError, match="needs A_codes"):
        block_gemm(A, As, Bt, Bts.T, f, f, rounding=mode, **kw)
    if mode == "sr":
        with pytest.raises(ValueError, match="rbits_inner of shape"):
            block_gemm(A, As, Bt.T, Bts.T, f, f, rounding="sr", rbits_inner=np.zeros((2, 3, 3), int), rand_bits=4)


# -- long sweeps (opt in: --long or LOWBIT_LONG=1) --------------------------------------------------------

@pytest.mark.long
@pytest.mark.parametrize("mode", MODES)
def test_long_sweep_against_the_exact_reference(mode):
    """More of the same: 150 random blocks per preset, 200 dots per pair and accumulator, every
    conversion and dot checked against the Fraction reference."""
    rng = _rng("long", mode)
    for name, fmt in BLOCK_PRESETS.items():
        with np.errstate(over="ignore", invalid="ignore"):
            x = _random_blocks(rng, 150)
        rbits, rand_bits = _words(rng, x.shape, mode)
        codes, scales = quantize_blocks(x, fmt, mode, rbits=rbits, rand_bits=rand_bits)
        for i, row in enumerate(x):
            ref = quantize_block_fraction(fmt, [float(v) for v in row], mode,
                                          r=None if rbits is None else rbits[i], rand_bits=rand_bits)
            assert (codes[i].tolist(), int(scales[i, 0])) == ref, (name, mode, i)
    for pair in DOT_PAIRS:
        fa, fb = BLOCK_PRESETS[pair[0]], BLOCK_PRESETS[pair[1]]
        for acc_name in ACCS:
            acc = parse_format(acc_name)
            a, sa = _block_codes(rng, fa, (200, 64))
            b, sb = _block_codes(rng, fb, (200, 64))
            c = rng.integers(0, 1 << acc.width, 200)
            r, _ = _words(rng, (200,), mode)
            got = block_dot(a, sa, b, sb, c, fa, fb, acc, mode, rbits=r, rand_bits=R if mode == "sr" else None)
            assert got.tolist() == _ref_dots(fa, fb, acc, a, sa, b, sb, c, mode, r), (pair, acc_name, mode)


@pytest.mark.long
def test_long_block_gemm_kernel_sweep():
    """Random block pairs, accumulators, roundings, R, chunks and shapes (N up to 300: two kernel
    tiles): the kernel path against the exact path."""
    rng = _rng("long-kernel")
    names = list(BLOCK_PRESETS)
    accs = ["fp32", "bf16", "e6m9", "fp16", "fp16_e6m9"]
    for trial in range(120):
        fa, fb = BLOCK_PRESETS[names[trial % len(names)]], BLOCK_PRESETS[str(rng.choice(names))]
        acc = parse_format(accs[trial % len(accs)])
        mode = MODES[trial % len(MODES)]
        nb = int(rng.integers(1, 9))
        M, N = int(rng.integers(7, 12)), int(rng.choice([3, 17, 64, 300]))
        A, As, B, Bs = _adversarial_gemm(rng, fa, fb, M, 32 * nb, N)
        cb = int(rng.integers(0, nb + 1))
        kw = {}
        if mode == "sr":
            Rb = int(rng.integers(1, min(33, 52 - acc.man_bits)))
            kw = dict(rbits_inner=rng.integers(0, 1 << Rb, (M, N, nb)), rand_bits=Rb,
                      rbits_outer=rng.integers(0, 1 << Rb, (M, N, -(-nb // cb))) if cb else None)
        C1 = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=32 * cb, **kw)
        C0 = block_gemm(A, As, B, Bs, fa, fb, acc, mode, chunk=32 * cb, fast=False, **kw)
        assert np.array_equal(C1, C0), (trial, fa, fb, acc, mode, nb, cb, M, N)
