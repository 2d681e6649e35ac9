"""golden.fp8_fma against the exact Fraction reference and an IEEE binary16 FMA built from NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from golden.exact import fma_fraction
from golden.formats import parse_format
from golden.fp8_fma import fma
from golden.references import binary16_fma

COMBOS = [
    ("e5m2", "e5m2", "e6m9"),
    ("e5m2", "e5m2", "fp16_e6m9"),
    ("fp8_e4m3", "e5m2", "e6m9"),
    ("e5m2", "e5m2", "e6m9:nosub"),
    ("fp16", "fp16", "fp16"),
    ("fp16", "fp16", "fp32"),
    ("bf16", "bf16", "fp32"),
    ("fp32", "fp32", "fp32"),
    ("e3m2:nosub", "e2m1:fn", "e4m3:finite"),
]


def _near_products(rng, fa, fb, fc, a, b, n):
    """Addends close to -a*b (cancellation) and random codes, mixed."""
    with np.errstate(invalid="ignore", over="ignore"):
        prod = fa.decode(a) * fb.decode(b)
        near = fc.encode(-prod * (1 + rng.normal(0, 2.0 ** -fc.man_bits, n)))
    return np.where(rng.random(n) < 0.4, near, rng.integers(0, 1 << fc.width, n))


@pytest.mark.parametrize("rounding", ["rne", "rna", "rtz", "sr"])
@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(c))
def test_fma_matches_fraction(combo, rounding):
    fa, fb, fc = (parse_format(f) for f in combo)
    rng = np.random.default_rng(abs(hash((combo, rounding))) % 2 ** 32)
    n = 800
    a = rng.integers(0, 1 << fa.width, n)
    b = rng.integers(0, 1 << fb.width, n)
    c = _near_products(rng, fa, fb, fc, a, b, n)
    R = 7
    rb = rng.integers(0, 1 << R, n)
    kw = dict(rbits=rb, rand_bits=R) if rounding == "sr" else {}
    y = fma(a, b, c, fa, fb, fc, rounding, **kw)
    for k in range(n):
        ref = fma_fraction(fa, fb, fc, int(a[k]), int(b[k]), int(c[k]), rounding, r=int(rb[k]), rand_bits=R)
        assert int(y[k]) == ref, f"{combo} {rounding}: a={a[k]:#x} b={b[k]:#x} c={c[k]:#x}"


@pytest.mark.parametrize("acc", ["e6m9"])
def test_fp8_pairs_exhaustive_against_fraction(acc):
    """All 65,536 e5m2 pairs with c = +0, -0 and one random addend each, against Fraction."""
    f8, fc = parse_format("e5m2"), parse_format(acc)
    a, b = (x.ravel() for x in np.meshgrid(np.arange(256), np.arange(256)))
    rng = np.random.default_rng(11)
    for c in (np.zeros(a.size, np.int64), np.full(a.size, fc.sign_mask), rng.integers(0, 1 << 16, a.size)):
        y = fma(a, b, c, f8, f8, fc, "rne")
        for k in range(a.size):
            ref = fma_fraction(f8, f8, fc, int(a[k]), int(b[k]), int(c[k]), "rne")
            assert int(y[k]) == ref, f"a={a[k]:#x} b={b[k]:#x} c={c[k]:#x}"


def test_fp16_fma_matches_ieee_binary16():
    rng = np.random.default_rng(5)
    n = 1_000_000
    f16 = parse_format("fp16")
    a = rng.integers(0, 1 << 16, n)
    b = rng.integers(0, 1 << 16, n)
    c = _near_products(rng, f16, f16, f16, a, b, n)
    ours = fma(a, b, c, "fp16", "fp16", "fp16", "rne").astype(np.int64)
    ref = binary16_fma(a, b, c)
    nan = f16.is_nan(ref)
    assert np.array_equal(ours[~nan], ref[~nan])
    assert np.all(ours[nan] == f16.nan_code)


@pytest.mark.parametrize("rounding", ["rne", "rtz"])
def test_zero_signs(rounding):
    e5m2 = "e5m2"
    one, p0, m0 = 0x3C, 0x00, 0x80
    y = fma(np.array([one, one, m0, m0, p0]), np.array([one, one, one, p0, one]),
            np.array([0xBC00, 0x3C00, 0x8000, 0x8000, 0x8000]), e5m2, e5m2, "fp16", rounding)
    # 1 - 1 = +0; 1 + 1 = 2; (-0)(1) + (-0) = -0; (-0)(+0) + (-0) = -0; (+0)(1) + (-0) = +0
    assert list(y) == [0x0000, 0x4000, 0x8000, 0x8000, 0x0000]


def test_invalid_operations_give_canonical_nan():
    inf, zero, one = 0x7C, 0x00, 0x3C
    y = fma(np.array([inf, zero, inf]), np.array([zero, inf, one]), np.array([0, 0, 0xFE00]),
            "e5m2", "e5m2", "e6m9", "rne")
    assert list(y) == [parse_format("e6m9").nan_code] * 3


def test_overflow_and_saturation():
    big = 0x7B   # 57344, e5m2's largest
    y_ieee = fma(np.array([big]), np.array([big]), np.array([0]), "e5m2", "e5m2", "fp16", "rne")
    assert y_ieee[0] == 0x7C00
    y_rtz = fma(np.array([big]), np.array([big]), np.array([0]), "e5m2", "e5m2", "fp16", "rtz")
    assert y_rtz[0] == 0x7BFF
    y_fn = fma(np.array([big]), np.array([big]), np.array([0]), "e5m2", "e5m2", "fp8_e4m3", "rne")
    assert y_fn[0] == 0x7E


def test_fma_parameter_errors():
    with pytest.raises(ValueError, match="acc_format must be a radix-2 float format"):
        fma(0, 0, 0, acc_format="fp4_r4")
    with pytest.raises(ValueError, match="rounding must be one of"):
        fma(0, 0, 0, rounding="up")
    with pytest.raises(ValueError, match="rand_bits is required"):
        fma(0, 0, 0, rounding="sr")
