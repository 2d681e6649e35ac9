"""golden.stochastic_round.round_codes against golden.exact.round_fraction (exact Fraction arithmetic,
written independently of golden.raw), for float and fixed-point sources, all four modes.

Inputs mix random codes, codes near the target's range, exact ties of the target grid (including the
subnormal range and just above the largest finite value), specials and the fixed-point extremes. For
``sr`` each input is also tried with the two random words around its rounding threshold (found by
bisection on the reference), so an off-by-one in the comparison cannot hide.
"""

from __future__ import annotations

import os
import zlib
from fractions import Fraction

import numpy as np
import pytest

from golden.exact import decode_fraction, round_fraction
from golden.formats import FixedFormat, FloatFormat, parse_format
from golden.stochastic_round import check_sr_formats, round_codes

MODES = ["rne", "rna", "rtz", "sr"]


def rng_for(*tag):
    seed = int(os.environ.get("LOWBIT_SEED", "0") or 0)
    return np.random.default_rng([seed, zlib.crc32(repr(tag).encode())])


def fixed_value(fmt: FixedFormat, code: int) -> Fraction:
    """n * 2**-F with n the two's-complement (or unsigned) integer of ``code``."""
    n = int(code)
    if fmt.signed and n >= 1 << (fmt.bits - 1):
        n -= 1 << fmt.bits
    return Fraction(n) * Fraction(2) ** (-fmt.frac_bits)


def exact_value(fmt, code):
    return fixed_value(fmt, code) if isinstance(fmt, FixedFormat) else decode_fraction(fmt, code)


def encode_exact(fmt, value: Fraction):
    """The code of ``fmt`` holding exactly ``value`` (None if it is not representable)."""
    if isinstance(fmt, FixedFormat):
        n = value * Fraction(2) ** fmt.frac_bits
        lo = -(1 << (fmt.bits - 1)) if fmt.signed else 0
        hi = (1 << (fmt.bits - 1)) - 1 if fmt.signed else (1 << fmt.bits) - 1
        if n.denominator != 1 or not lo <= n <= hi:
            return None
        return int(n) % (1 << fmt.bits)
    code = round_fraction(fmt, value, "rtz")
    return code if decode_fraction(fmt, code) == value else None


def target_ties(dst: FloatFormat, src, rng, n):
    """Source codes exactly halfway between adjacent target values (and above the top one)."""
    top = dst.max_code
    mags = rng.integers(0, top, n)
    out = []
    for m in mags.tolist() + [top - 1, 0]:
        lo, hi = (v if isinstance(v, Fraction) else Fraction(0)
                  for v in (decode_fraction(dst, m), decode_fraction(dst, m + 1)))
        for v in ((lo + hi) / 2, (3 * lo + hi) / 4, (lo + 3 * hi) / 4):
            out.append(v)
    # Halfway between the largest finite value and the next binade step (overflow boundary).
    mx = decode_fraction(dst, top)
    ulp = mx - decode_fraction(dst, top - 1)
    out += [mx + ulp / 2, mx + ulp / 4, mx + ulp, 2 * mx]
    codes = []
    for v in out:
        for s in (v, -v):
            c = encode_exact(src, s)
            if c is not None:
                codes.append(c)
    return codes


def sample_codes(src, dst, rng, n):
    codes = []
    if isinstance(src, FixedFormat):
        W = src.bits
        codes += rng.integers(0, 1 << W, n).tolist()
        # Small magnitudes (most of the interesting rounding happens with few significant bits).
        small = rng.integers(0, 1 << rng.integers(1, W, n)) if W > 1 else np.zeros(n, np.int64)
        codes += (small % (1 << W)).tolist()
        if src.signed:
            codes += ((-small) % (1 << W)).tolist()
        ends = [0, 1, (1 << W) - 1, 1 << (W - 1), (1 << (W - 1)) - 1, (1 << (W - 1)) + 1]
        codes += ends
    else:
        E, M, W = src.exp_bits, src.man_bits, src.width
        codes += rng.integers(0, 1 << W, n).tolist()
        # Exponent fields around the target's range: subnormal targets, normal, overflow.
        lo = max(0, src.bias + dst.emin - dst.man_bits - 4)
        hi = min((1 << E) - 1, src.bias + dst.emax + 3)
        e = rng.integers(lo, hi + 1, n)
        man = rng.integers(0, 1 << M, n)
        # Some mantissas with many trailing zeros (ties and near-ties of the target).
        z = rng.integers(0, M + 1, n)
        man = np.where(rng.random(n) < 0.5, (man >> z) << z, man)
        sign = rng.integers(0, 2, n)
        codes += ((sign << (W - 1)) | (e << M) | man).tolist()
        inf = ((1 << E) - 1) << M
        codes += [0, 1 << (W - 1), inf, inf | (1 << (W - 1)), inf | 1, (1 << W) - 1, 1, (1 << M) - 1,
                  1 << M, inf - 1]
    codes += target_ties(dst, src, rng, n // 8)
    return np.array(sorted(set(codes)), dtype=np.int64)


def reference(src, dst, codes, rounding, rbits=None, R=None):
    out = []
    for k, c in enumerate(codes.tolist()):
        r = None if rbits is None else int(rbits[k])
        out.append(round_fraction(dst, exact_value(src, c), rounding, r=r, rand_bits=R))
    return np.array(out, dtype=np.int64)


def threshold_r(dst, value, R):
    """Smallest r in [0, 2**R] for which sr rounds ``value`` away from the lower grid point."""
    down = round_fraction(dst, value, "sr", r=0, rand_bits=R)
    lo, hi = 0, 1 << R          # round_fraction(..., r) is monotonic in r
    while lo < hi:
        mid = (lo + hi) // 2
        if round_fraction(dst, value, "sr", r=mid, rand_bits=R) != down:
            hi = mid
        else:
            lo = mid + 1
    return lo


CASES = [
    ("fp32", "e5m2", 400),
    ("fp16", "fp8_e4m3", 400),
    ("bf16", "e5m2:nosub", 400),
    ("fix16.8", "e5m2", 500),
    ("fix16.8", "fp8_e4m3", 300),
    ("fix16.8", "fp16", 300),
    ("ufix12.20", "e5m2", None),         # exhaustive: subnormal and underflow range of e5m2
    ("ufix12.20", "e5m2:nosub", None),
    ("fix24.-3", "e5m2", 400),           # overflow to Inf
    ("fix24.-3", "fp8_e4m3", 300),       # saturation (no Inf)
    ("fix24.-3", "bf16", 300),
    ("fix24.-3", "e3m2:nosub:finite", 300),
]


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("source, target, n", CASES, ids=lambda v: str(v))
def test_round_codes_matches_fraction(source, target, n, rounding):
    src, dst = (parse_format(f) for f in (source, target))
    rng = rng_for(source, target, rounding)
    if n is None:
        codes = np.arange(1 << src.width, dtype=np.int64)
    else:
        codes = sample_codes(src, dst, rng, n)
    R = {"sr": 5}.get(rounding)
    rbits = rng.integers(0, 1 << R, codes.size) if R else None
    got = round_codes(codes, source, target, rounding, rbits=rbits, rand_bits=R).astype(np.int64)
    assert got.dtype == np.int64 and got.shape == codes.shape
    want = reference(src, dst, codes, rounding, rbits, R)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{source}->{target} {rounding}: {bad.size} mismatches, e.g. code {codes[bad[0]]:#x}"
                           f" got {got[bad[0]]:#x} want {want[bad[0]]:#x}")


@pytest.mark.parametrize("R", [1, 3, 8, 32])
@pytest.mark.parametrize("source, target", [("fp32", "e5m2"), ("fix16.8", "fp8_e4m3"), ("bf16", "e5m2:nosub"),
                                            ("fix24.-3", "e5m2")])
def test_sr_at_the_rounding_threshold(source, target, R):
    """For each input, the random words just below and at its threshold (and 0 and 2**R - 1)."""
    src, dst = (parse_format(f) for f in (source, target))
    rng = rng_for("threshold", source, target, R)
    codes = sample_codes(src, dst, rng, 60)
    vals = [exact_value(src, c) for c in codes.tolist()]
    rows, rs = [], []
    for c, v in zip(codes.tolist(), vals):
        if not isinstance(v, Fraction) or v == 0:
            cand = [0, (1 << R) - 1]
        else:
            t = threshold_r(dst, v, R)
            cand = {0, (1 << R) - 1, max(t - 1, 0), min(t, (1 << R) - 1)}
        for r in sorted(cand):
            rows.append(c)
            rs.append(r)
    codes = np.array(rows, dtype=np.int64)
    rbits = np.array(rs, dtype=np.uint64)
    got = round_codes(codes, source, target, "sr", rbits=rbits, rand_bits=R).astype(np.int64)
    want = reference(src, dst, codes, "sr", rbits, R)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (f"{source}->{target} R={R}: code {codes[bad[0]]:#x} r={rbits[bad[0]]} "
                           f"got {got[bad[0]]:#x} want {want[bad[0]]:#x}")


def test_sr_probability_over_all_words():
    """Averaged over all 2**R words, sr rounds up with probability floor(frac * 2**R) / 2**R."""
    R = 6
    src, dst = parse_format("fix16.8"), parse_format("e5m2")
    # 1 + 5/32 + 3/256: between 1 and 1.25 (e5m2's grid step at 1 is 1/4); frac = 0.671875.
    x = Fraction(1) + Fraction(5, 32) + Fraction(3, 256)
    code = encode_exact(src, x)
    words = np.arange(1 << R)
    got = round_codes(np.full(words.size, code), src, dst, "sr", rbits=words, rand_bits=R)
    up = int(np.sum(got == round_fraction(dst, Fraction(5, 4), "rne")))
    down = int(np.sum(got == round_fraction(dst, Fraction(1), "rne")))
    frac = (x - 1) / Fraction(1, 4)
    assert up + down == words.size
    assert up == int(frac * (1 << R))


def test_deterministic_modes_ignore_random_bits():
    codes = np.arange(0, 1 << 16, 97)
    for mode in ("rne", "rna", "rtz"):
        a = round_codes(codes, "fp16", "e5m2", mode)
        b = round_codes(codes, "fp16", "e5m2", mode, rbits=np.zeros(codes.size, np.int64), rand_bits=8)
        assert np.array_equal(a, b)


def test_result_dtype_follows_target_width():
    assert round_codes([0x3C00], "fp16", "e5m2", "rne").dtype == np.uint8
    assert round_codes([0x3F800000], "fp32", "fp16", "rne").dtype == np.uint16
    assert int(round_codes([0x3F800000], "fp32", "fp16", "rne")[0]) == 0x3C00


@pytest.mark.parametrize("call, words", [
    (lambda: round_codes([0], "fp32", "e5m2", "rnd"), ("rounding", "rne, rna, rtz, sr")),
    (lambda: round_codes([0], "fp32", "e5m2", "sr", rbits=[0]), ("rand_bits", "required")),
    (lambda: round_codes([0], "fp32", "e5m2", "sr", rand_bits=4), ("sr", "rbits")),
    (lambda: round_codes([0], "fp32", "e5m2", "sr", rbits=[16], rand_bits=4), ("random bits", "rand_bits=4")),
    (lambda: round_codes([0], "fp32", "e5m2", "sr", rbits=[0], rand_bits=0), ("rand_bits", "1 and 32")),
    (lambda: round_codes([0], "fp32", "e5m2", "sr", rbits=[0], rand_bits=33), ("rand_bits", "1 and 32")),
    (lambda: round_codes([0], "int8", "e5m2", "rne"), ("source", "int8")),
    (lambda: round_codes([0], "fp4_r4", "e5m2", "rne"), ("source", "fp4_r4")),
    (lambda: round_codes([0], "fp32", "fix16.8", "rne"), ("target", "fix16.8")),
    (lambda: round_codes([0], "fp32", "fp4_r4", "rne"), ("target", "fp4_r4")),
    (lambda: round_codes([0], "fp32", "int4", "rne"), ("target", "int4")),
    (lambda: round_codes([0], "fp32", "e4m3:bias=99", "rne"), ("bias", "0 and 15")),
    (lambda: round_codes([0], "fix99.1", "e5m2", "rne"), ("bits", "48")),
    (lambda: round_codes([0], "e5m2x", "e5m2", "rne"), ("unknown format", "e5m2x")),
    (lambda: round_codes([256], "e5m2", "e4m3", "rne"), ("out of range",)),
    (lambda: round_codes([4096], "ufix12.20", "e4m3", "rne"), ("out of range",)),
])
def test_parameter_errors(call, words):
    with pytest.raises(ValueError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_check_sr_formats_returns_parsed_formats():
    src, dst = check_sr_formats("ufix12.20", "fp8_e4m3")
    assert src == FixedFormat(12, 20, signed=False)
    assert dst == FloatFormat(4, 3, specials="fn")
