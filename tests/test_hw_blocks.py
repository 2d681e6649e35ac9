# amaranth: UnusedElaboratable=no
"""The shared hardware blocks in Amaranth's simulator, each against an independent reference:
Python integers (``bit_length``, shifts, ``*``), the blocks' documented definitions, and the golden
models (``golden.raw.round_raw``, ``golden.raw.unpack``, ``golden.lfsr.lfsr_words``).

Components whose constructor raises (the parameter-validation tests) were still created, so Amaranth
would warn that they were never elaborated; the linter option on the first line keeps that warning
(an error under ``filterwarnings = error``) out of this file only.
"""

from __future__ import annotations

import math
import os
import zlib

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from golden.formats import parse_format
from golden.lfsr import lfsr_lane_words, lfsr_words
from golden.raw import Raw, round_raw, unpack
from hw.align import shift_left, shift_right_sticky
from hw.float import Unpack
from hw.lzc import LeadingZeroCounter, Normalizer
from hw.multiply import BOOTH_MIN_WIDTH, unsigned_product
from hw.pipeline import Pipeline, check_stages, placement
from hw.rounder import Rounder
from hw.stochastic_round.lfsr import LFSR

from simutil import pack_fields, run_comb

E5M2 = parse_format("e5m2")


def rng_for(*tag):
    seed = int(os.environ.get("LOWBIT_SEED", "0") or 0)
    return np.random.default_rng([seed, zlib.crc32(repr(tag).encode())])


def rand_ints(rng, bits, n):
    """``n`` uniform Python ints of ``bits`` bits (any width)."""
    out = [0] * n
    for lo in range(0, bits, 32):
        chunk = min(32, bits - lo)
        words = rng.integers(0, 1 << chunk, n).tolist()
        out = [o | (w << lo) for o, w in zip(out, words)]
    return out


# -- leading-zero count -------------------------------------------------------------------------------

@pytest.mark.parametrize("width", range(1, 10))
def test_lzc_exhaustive(width):
    dut = LeadingZeroCounter(width)
    xs = np.arange(1 << width)
    (count,) = run_comb(dut, [(dut.i, xs)], [dut.count])
    assert count.tolist() == [width - int(x).bit_length() for x in xs]


def test_lzc_random_24_bits():
    rng = rng_for("lzc24")
    xs = [x >> s for x, s in zip(rand_ints(rng, 24, 600), rng.integers(0, 25, 600).tolist())]
    xs += [0, 1, (1 << 24) - 1, 1 << 23]
    dut = LeadingZeroCounter(24)
    (count,) = run_comb(dut, [(dut.i, xs)], [dut.count])
    assert count.tolist() == [24 - x.bit_length() for x in xs]


# -- normalizer ----------------------------------------------------------------------------------------

def normalize_ref(sig, exp, width, floor=None, granule=1):
    """The docstring's definition: shift left by min(lzc, exp - floor) (none when exp <= floor), or by
    lzc rounded down to a multiple of ``granule``; the exponent drops by the shift."""
    lzc = width - sig.bit_length()
    if floor is None:
        amount = lzc - lzc % granule
    else:
        amount = max(0, min(lzc, exp - floor))
    return (sig << amount) & ((1 << width) - 1), exp - amount


def check_normalizer(dut, width, sigs, exps, **kw):
    sig_out, exp_out = run_comb(dut, [(dut.sig, sigs), (dut.exp, exps)], [dut.sig_out, dut.exp_out])
    for s, e, so, eo in zip(sigs, exps, sig_out.tolist(), exp_out.tolist()):
        assert (so, eo) == normalize_ref(s, e, width, **kw), f"sig={s:#x} exp={e} {kw}"


def test_normalizer_exhaustive_sig_no_floor():
    dut = Normalizer(8, signed(6))
    sigs = [s for s in range(256) for _ in range(3)]
    exps = [e for _ in range(256) for e in (-32, 0, 31)]
    check_normalizer(dut, 8, sigs, exps)


@pytest.mark.parametrize("granule", [2, 4, 8])
def test_normalizer_granule(granule):
    rng = rng_for("granule", granule)
    width = 11
    sigs = [s >> k for s, k in zip(rand_ints(rng, width, 400), rng.integers(0, width + 1, 400).tolist())]
    exps = rng.integers(-40, 40, 400).tolist()
    dut = Normalizer(width, signed(7), granule=granule)
    check_normalizer(dut, width, sigs, exps, granule=granule)
    # The defining property: fewer than `granule` leading zeros left (for a nonzero sig).
    out, _ = run_comb(dut, [(dut.sig, sigs), (dut.exp, exps)], [dut.sig_out, dut.exp_out])
    for s, o in zip(sigs, out.tolist()):
        if s:
            assert width - o.bit_length() < granule


@pytest.mark.parametrize("floor, exp_min", [(-14, None), (-6, None), (0, None), (-14, -14), (-31, None)])
def test_normalizer_floor(floor, exp_min):
    rng = rng_for("floor", floor, exp_min)
    width, n = 11, 600
    sigs = [s >> k for s, k in zip(rand_ints(rng, width, n), rng.integers(0, width + 1, n).tolist())]
    lo = -32 if exp_min is None else exp_min
    exps = rng.integers(lo, 32, n).tolist()
    # Exponents right at and around the floor, where the clamp matters.
    exps = [floor + d if lo <= floor + d < 32 else e for e, d in zip(exps, rng.integers(-3, 12, n).tolist())]
    dut = Normalizer(width, signed(6), floor=floor, exp_min=exp_min)
    check_normalizer(dut, width, sigs, exps, floor=floor)


def test_normalizer_exp_out_holds_exp_minus_width():
    dut = Normalizer(12, signed(4))
    check_normalizer(dut, 12, [0, 1, 0x800], [-8, -8, -8])


def test_normalizer_floor_far_below_exp_range():
    dut = Normalizer(11, signed(5), floor=-126)
    check_normalizer(dut, 11, [1, 0x155, 0x400, 0], [-14, -14, -14, -14], floor=-126)


# -- shifters ------------------------------------------------------------------------------------------

class Shifters(wiring.Component):
    def __init__(self, width, max_shift):
        self._width, self._max = width, max_shift
        super().__init__({
            "value": In(width), "amount": In(range(max_shift + 1)),
            "shr": Out(width), "sticky": Out(1), "shl": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        shr, st = shift_right_sticky(m, self.value, self.amount, self._max)
        m.d.comb += [self.shr.eq(shr), self.sticky.eq(st),
                     self.shl.eq(shift_left(m, self.value, self.amount, self._max))]
        return m


@pytest.mark.parametrize("width, max_shift", [(6, 3), (6, 5), (6, 6), (6, 9), (6, 20), (1, 2), (5, 31)])
def test_shifters_exhaustive(width, max_shift):
    dut = Shifters(width, max_shift)
    vals = [v for v in range(1 << width) for _ in range(max_shift + 1)]
    amts = [a for _ in range(1 << width) for a in range(max_shift + 1)]
    shr, sticky, shl = run_comb(dut, [(dut.value, vals), (dut.amount, amts)], [dut.shr, dut.sticky, dut.shl])
    mask = (1 << width) - 1
    assert shr.tolist() == [v >> a for v, a in zip(vals, amts)]
    assert sticky.tolist() == [int(v & ((1 << a) - 1) != 0) for v, a in zip(vals, amts)]
    assert shl.tolist() == [(v << a) & mask for v, a in zip(vals, amts)]


def test_shifters_random_wide():
    rng = rng_for("shift")
    width, max_shift, n = 29, 40, 800
    vals = [v >> k for v, k in zip(rand_ints(rng, width, n), rng.integers(0, width, n).tolist())]
    amts = rng.integers(0, max_shift + 1, n).tolist()
    dut = Shifters(width, max_shift)
    shr, sticky, shl = run_comb(dut, [(dut.value, vals), (dut.amount, amts)], [dut.shr, dut.sticky, dut.shl])
    assert shr.tolist() == [v >> a for v, a in zip(vals, amts)]
    assert sticky.tolist() == [int(v & ((1 << a) - 1) != 0) for v, a in zip(vals, amts)]
    assert shl.tolist() == [(v << a) & ((1 << width) - 1) for v, a in zip(vals, amts)]


# -- multiplier ----------------------------------------------------------------------------------------

class Product(wiring.Component):
    def __init__(self, wa, wb):
        super().__init__({"a": In(wa), "b": In(wb), "p": Out(wa + wb)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(unsigned_product(m, self.a, self.b))
        return m


@pytest.mark.parametrize("wa, wb", [(3, 3), (4, 5), (1, 7)])
def test_product_exhaustive_small(wa, wb):
    a = [x for x in range(1 << wa) for _ in range(1 << wb)]
    b = [y for _ in range(1 << wa) for y in range(1 << wb)]
    dut = Product(wa, wb)
    (p,) = run_comb(dut, [(dut.a, a), (dut.b, b)], [dut.p])
    assert p.tolist() == [x * y for x, y in zip(a, b)]


@pytest.mark.parametrize("wa, wb", [(8, 8), (11, 11), (8, 13), (13, 8), (9, 10), (24, 24)])
def test_product_booth_random(wa, wb):
    assert min(wa, wb) >= BOOTH_MIN_WIDTH
    rng = rng_for("mul", wa, wb)
    n = 600
    a = rand_ints(rng, wa, n) + [0, (1 << wa) - 1, (1 << wa) - 1, 1, 1 << (wa - 1), 0b1010101 & ((1 << wa) - 1)]
    b = rand_ints(rng, wb, n) + [(1 << wb) - 1, (1 << wb) - 1, 0, 1, (1 << wb) - 1, (1 << wb) - 1]
    # Booth digits: runs of ones and alternating bits exercise the +-2, +-1 and 0 digits.
    alt = int("10" * wb, 2) & ((1 << wb) - 1)
    a += [(1 << wa) - 1, (1 << wa) - 3]
    b += [alt, alt >> 1]
    dut = Product(wa, wb)
    (p,) = run_comb(dut, [(dut.a, a), (dut.b, b)], [dut.p])
    assert p.tolist() == [x * y for x, y in zip(a, b)]


def test_product_strided_sweep_booth_8x8():
    a = [x for x in range(256) for _ in range(256)]
    b = [y for _ in range(256) for y in range(256)]
    sel = slice(None, None, 29)     # every 29th pair (29 is odd and prime to 256): each a and b occurs
    dut = Product(8, 8)
    (p,) = run_comb(dut, [(dut.a, a[sel]), (dut.b, b[sel])], [dut.p])
    assert p.tolist() == [x * y for x, y in zip(a[sel], b[sel])]


# -- the one rounder -----------------------------------------------------------------------------------

ROUNDER_FORMATS = ["e5m2", "e6m9", "fp16_e6m9", "e4m3:fn", "e5m2:nosub", "e4m3:finite"]
MODES = ["rne", "rna", "rtz", "sr"]


def rounder_vectors(fmt, rounding, W, exp_range, R, rng, n):
    """Inputs satisfying the Rounder's contract; returns dict of python-int lists."""
    lo, hi = exp_range
    look = {"rtz": 0, "rne": 1, "rna": 1, "sr": R}[rounding]
    sticky_ok = W >= fmt.precision + look
    rows = []   # (sign, sig, exp, sticky, nan, inf, zero)

    def add(sign, sig, exp, sticky=0, nan=0, inf=0, zero=0):
        rows.append((sign, sig, exp, int(sticky and sticky_ok and sig != 0), nan, inf, zero))

    top = 1 << (W - 1)
    # Normalized significands; many with trailing zeros, so exact ties occur at every position.
    lows = rand_ints(rng, W - 1, n)
    zs = rng.integers(0, W, n).tolist()
    exps = rng.integers(lo, hi + 1, n).tolist()
    for low, z, e, s, st in zip(lows, zs, exps, rng.integers(0, 2, n).tolist(), (rng.random(n) < 0.3).tolist()):
        add(s, top | ((low >> z) << z), e, st)
    # Exact ties and their neighbours at the normal rounding position: kept bits, then 1000..0.
    below = W - fmt.precision
    for e, kept in zip(rng.integers(lo, hi + 1, n // 4).tolist(), rand_ints(rng, fmt.precision - 1, n // 4)):
        tie = (top | (kept << below)) | (1 << (below - 1))
        add(0, tie, e)
        add(1, tie, e, sticky=1)
        add(0, tie - 1, e)
    # Around overflow: the largest binades, all-ones significands.
    for e in range(max(lo, fmt.emax - 1), min(hi, fmt.emax + 2) + 1):
        for sig in (top | (top - 1), top | ((top - 1) >> 1), top | (top >> (fmt.precision - 1)) >> 1, top):
            add(0, sig, e)
            add(1, sig, e, sticky=1)
    # Unnormalized significands at or below emin, only where the contract allows them.
    if fmt.subnormals and lo <= fmt.emin:
        exps = rng.integers(lo, min(hi, fmt.emin) + 1, n).tolist()
        for sig, k, e, st in zip(rand_ints(rng, W, n), rng.integers(0, W + 1, n).tolist(), exps,
                                 (rng.random(n) < 0.3).tolist()):
            sig >>= k
            add(0, sig, e, st, zero=int(sig == 0 and not st))
    # Specials (their sig is don't-care for the hardware) and zeros.
    for s in (0, 1):
        add(s, 0, lo, zero=1)
        add(s, top | 5, hi, nan=1)
        add(s, top, lo, inf=1)
        add(s, 0, hi, nan=1)
    cols = list(zip(*rows))
    return dict(zip(("sign", "sig", "exp", "sticky", "nan", "inf", "zero"), (list(c) for c in cols)))


def rounder_case(spec, rounding, W, exp_range, R, seed_tag, n=220):
    fmt = parse_format(spec)
    rng = rng_for("rounder", spec, rounding, W, exp_range, seed_tag)
    v = rounder_vectors(fmt, rounding, W, exp_range, R, rng, n)
    count = len(v["sig"])
    rand = rng.integers(0, 1 << R, count).tolist() if rounding == "sr" else None
    dut = Rounder(fmt, rounding, W, exp_range, rand_bits=R)
    layout = dut.i.shape()
    packed = pack_fields(layout, sig=np.array(v["sig"], dtype=object), exp=np.array(v["exp"], dtype=object),
                         sticky=v["sticky"], sign=v["sign"], is_nan=v["nan"], is_inf=v["inf"], is_zero=v["zero"])
    drive = [(dut.i.as_value(), packed)]
    if rand is not None:
        drive.append((dut.rand, rand))
    (got,) = run_comb(dut, drive, [dut.o.as_value()])
    special = np.array(v["nan"], bool) | np.array(v["inf"], bool)
    raw = Raw(np.array(v["sign"], np.int64),
              np.where(special, 0, np.array(v["sig"], dtype=object)).astype(np.uint64),
              np.array(v["exp"], np.int64) - (W - 1),
              np.array(v["sticky"], bool) & ~special,
              np.array(v["nan"], bool), np.array(v["inf"], bool))
    want = round_raw(fmt, raw, rounding, rbits=None if rand is None else np.array(rand, np.uint64),
                     rand_bits=R).astype(np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{spec} {rounding} W={W} exp_range={exp_range}: {bad.size}/{count} mismatches; first: "
        + ", ".join(f"{k}={v[k][bad[0]]:#x}" if k == "sig" else f"{k}={v[k][bad[0]]}" for k in v)
        + (f", rand={rand[bad[0]]}" if rand else "") + f": got {got[bad[0]]:#x} want {want[bad[0]]:#x}")
    return v


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("spec", ROUNDER_FORMATS)
def test_rounder_matches_round_raw(spec, rounding):
    fmt = parse_format(spec)
    p, R = fmt.precision, 5
    # The narrowest legal significand, and a wide one that may carry a sticky bit in every mode.
    for W in (p + 1, p + R + 3):
        exp_range = (fmt.emin - W - 4, fmt.emax + 2)
        v = rounder_case(spec, rounding, W, exp_range, R if rounding == "sr" else None, "wide")
    # The cases that must have been exercised: overflow, results in the subnormal range, ties.
    exps = np.array(v["exp"])
    assert np.any(exps > fmt.emax) and np.any(exps < fmt.emin)


@pytest.mark.parametrize("rounding", ["rne", "sr"])
@pytest.mark.parametrize("spec", ["e5m2", "e4m3:fn", "e5m2:nosub"])
def test_rounder_narrow_exp_ranges(spec, rounding):
    """No subnormal shifter (lo = emin), a capped one far below, and no overflow logic (hi < emax)."""
    fmt = parse_format(spec)
    R = 3 if rounding == "sr" else None
    W = fmt.precision + 4
    for exp_range in [(fmt.emin, fmt.emax), (fmt.emin - 60, fmt.emin + 2), (fmt.emin + 1, fmt.emax - 2)]:
        rounder_case(spec, rounding, W, exp_range, R, "narrow", n=120)


def test_rounder_sr_wide_random_word():
    """R larger than the bits below the last place of a narrow significand (zeros are appended)."""
    fmt = parse_format("e5m2")
    rounder_case("e5m2", "sr", fmt.precision + 1, (fmt.emin - 8, fmt.emax + 1), 12, "R12", n=300)


def test_rounder_m0_luq_code_exhaustive():
    """``fp4_luq`` (radix 2, no mantissa, subnormal spacing: LUQ's rounding) over every short
    significand, exponent, sticky bit and random word, the shapes the ``luq`` unit feeds it."""
    luq = parse_format("fp4_luq")
    for rounding, R in (("rne", None), ("sr", 3), ("rtz", None), ("rna", None)):
        look = {"rtz": 0, "rne": 1, "rna": 1, "sr": R}[rounding]
        W = luq.precision + look + 1
        exp_range = (luq.emin - W - 3, luq.emax + 3)
        rounder_exhaustive(luq, rounding, W, exp_range, R)


# -- the one rounder, radix 4 (docs/arithmetic.md section 2.3) ------------------------------------------

RADIX4_FORMATS = ["fp4_r4", "e3m0:r4:finite", "e3m0:r4:fn", "e2m0:r4:bias=1:nosub:fn", "e4m0:r4:bias=9:finite"]


def rounder_exhaustive(fmt, rounding, W, exp_range, R):
    """Every input the contract allows for a ``W``-bit significand: each ``sig`` (normalized, or any
    where the format takes unnormalized values), each ``exp`` in ``exp_range``, sticky 0 and 1 (where
    ``sig`` holds the examined bits), every random word; plus zeros, NaN and Inf of both signs.
    Checked against ``round_raw``."""
    lo, hi = exp_range
    look = {"rtz": 0, "rne": 1, "rna": 1, "sr": R}[rounding]
    need = (2 if fmt.radix == 4 else fmt.precision) + look
    below = 2 * fmt.emin if fmt.radix == 4 else fmt.emin + 1     # unnormalized allowed below this
    rows = []
    for e in range(lo, hi + 1):
        free = fmt.subnormals and e < below
        for sig in range(1 if free else 1 << (W - 1), 1 << W):
            for st in ((0, 1) if W >= need else (0,)):
                rows.append((0, sig, e, st, 0, 0, 0))
                rows.append((1, sig, e, st, 0, 0, 0))
    for sign in (0, 1):
        rows += [(sign, 0, lo, 0, 0, 0, 1), (sign, 0, hi, 0, 1, 0, 0), (sign, 0, lo, 0, 0, 1, 0)]
    words = range(1 << R) if rounding == "sr" else [None]
    cols = [list(c) for c in zip(*[r for r in rows for _ in words])]
    rand = [w for _ in rows for w in words] if rounding == "sr" else None
    check_rounder(fmt, rounding, W, exp_range, R, dict(zip(("sign", "sig", "exp", "sticky", "nan", "inf", "zero"),
                                                          cols)), rand)


def check_rounder(fmt, rounding, W, exp_range, R, v, rand):
    """The Rounder on the rows ``v`` (and words ``rand``) against ``round_raw``."""
    count = len(v["sig"])
    dut = Rounder(fmt, rounding, W, exp_range, rand_bits=R)
    layout = dut.i.shape()
    packed = pack_fields(layout, sig=np.array(v["sig"], dtype=object), exp=np.array(v["exp"], dtype=object),
                         sticky=v["sticky"], sign=v["sign"], is_nan=v["nan"], is_inf=v["inf"], is_zero=v["zero"])
    drive = [(dut.i.as_value(), packed)]
    if rand is not None:
        drive.append((dut.rand, rand))
    (got,) = run_comb(dut, drive, [dut.o.as_value()])
    special = np.array(v["nan"], bool) | np.array(v["inf"], bool)
    raw = Raw(np.array(v["sign"], np.int64),
              np.where(special, 0, np.array(v["sig"], dtype=object)).astype(np.uint64),
              np.array(v["exp"], np.int64) - (W - 1),
              np.array(v["sticky"], bool) & ~special,
              np.array(v["nan"], bool), np.array(v["inf"], bool))
    want = round_raw(fmt, raw, rounding, rbits=None if rand is None else np.array(rand, np.uint64),
                     rand_bits=R).astype(np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"{fmt.spec()} {rounding} W={W} exp_range={exp_range}: {bad.size}/{count} mismatches; first: "
        + ", ".join(f"{k}={v[k][bad[0]]:#x}" if k == "sig" else f"{k}={v[k][bad[0]]}" for k in v)
        + (f", rand={rand[bad[0]]}" if rand else "") + f": got {got[bad[0]]:#x} want {want[bad[0]]:#x}")
    return got, want


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("spec", RADIX4_FORMATS)
def test_rounder_radix4_exhaustive_short_significands(spec, rounding):
    """Every input of a significand one bit wider than the examined bits, over exponents from below
    the range (flush, or the subnormal step) to above it (saturation), both parities."""
    fmt = parse_format(spec)
    R = 3 if rounding == "sr" else None
    look = {"rtz": 0, "rne": 1, "rna": 1, "sr": R}[rounding]
    W = 3 + look
    exp_range = (2 * fmt.emin - 6, 2 * fmt.emax + 3)
    rounder_exhaustive(fmt, rounding, W, exp_range, R)


def radix4_vectors(fmt, W, exp_range, rng, n):
    """Random inputs for a wide significand: normalized values with trailing zeros (exact ties at
    the midpoint 2.5 * 4**k and its neighbours), unnormalized ones below ``4**emin`` where the format
    has subnormals, and the extremes of the exponent range."""
    lo, hi = exp_range
    rows = []
    top = 1 << (W - 1)
    for low, z, e, sgn, st in zip(rand_ints(rng, W - 1, n), rng.integers(0, W, n).tolist(),
                                  rng.integers(lo, hi + 1, n).tolist(), rng.integers(0, 2, n).tolist(),
                                  (rng.random(n) < 0.3).tolist()):
        rows.append((sgn, top | ((low >> z) << z), e, int(st), 0, 0, 0))
    tie = top | (top >> 2)                 # 1.01b: 2.5 * 4**k at an odd exponent
    for e in range(lo, hi + 1):
        for sig in (tie, tie - 1, tie + 1, top, top | (top - 1)):
            rows += [(0, sig, e, 0, 0, 0, 0), (1, sig, e, 1, 0, 0, 0)]
    if fmt.subnormals and lo < 2 * fmt.emin:
        for sig, k, e in zip(rand_ints(rng, W, n), rng.integers(0, W + 1, n).tolist(),
                             rng.integers(lo, 2 * fmt.emin, n).tolist()):
            sig >>= k
            rows.append((0, sig, e, 0, 0, 0, int(sig == 0)))
    return dict(zip(("sign", "sig", "exp", "sticky", "nan", "inf", "zero"), (list(c) for c in zip(*rows))))


@pytest.mark.parametrize("rounding", MODES)
@pytest.mark.parametrize("spec", ["fp4_r4", "e3m0:r4:fn"])
def test_rounder_radix4_wide_significands(spec, rounding):
    """24-bit significands with a sticky bit and R = 8 (the widths of an fp32 source): random
    values, every exponent's midpoint and neighbours."""
    fmt = parse_format(spec)
    R = 8 if rounding == "sr" else None
    W = 24
    exp_range = (2 * fmt.emin - 30, 2 * fmt.emax + 6)
    rng = rng_for("rounder-r4", spec, rounding)
    v = radix4_vectors(fmt, W, exp_range, rng, 600)
    rand = rng.integers(0, 1 << R, len(v["sig"])).tolist() if R else None
    got, _ = check_rounder(fmt, rounding, W, exp_range, R, v, rand)
    mags = set((got & ((1 << fmt.exp_bits) - 1)).tolist())
    assert {0, fmt.max_code} <= mags and len(mags) >= fmt.max_code   # zeros, saturation, every level


# -- unpack --------------------------------------------------------------------------------------------

UNPACK_8BIT = ["e5m2", "e4m3", "e4m3:fn", "e5m2:nosub", "e3m4", "e2m5:finite", "e4m3:finite",
               "e4m3:bias=3", "e7m0:fn", "e6m1:nosub:fn", "e1m6:finite"]


def unpack_compare(spec, codes, zero_specials=True):
    fmt = parse_format(spec)
    dut = Unpack(fmt, zero_specials=zero_specials)
    o = dut.o
    sign, sig, exp, sticky, nan, inf, zero = run_comb(
        dut, [(dut.i.as_value(), codes)], [o.sign, o.sig, o.exp, o.sticky, o.is_nan, o.is_inf, o.is_zero])
    ref = unpack(fmt, codes)
    special = ref.nan | ref.inf
    assert np.array_equal(sign, ref.sign)
    # Conventions: the hardware's exp weighs sig's top bit (bit M), golden's weighs bit 0. The
    # exponent of NaN and Inf is don't-care (its range is [emin, emax]).
    assert np.array_equal((exp - fmt.man_bits)[~special], ref.exp[~special])
    assert np.array_equal(nan.astype(bool), ref.nan)
    assert np.array_equal(inf.astype(bool), ref.inf)
    assert np.array_equal(zero.astype(bool), ref.zero)
    assert not sticky.any()
    if zero_specials:
        assert np.array_equal(sig.astype(np.uint64), ref.sig)
    else:
        assert np.array_equal(sig[~special].astype(np.uint64), ref.sig[~special])
        # Specials keep their fields: hidden bit (exponent field nonzero) and mantissa.
        c = np.asarray(codes, np.int64)[special]
        want = (1 << fmt.man_bits) | (c & ((1 << fmt.man_bits) - 1))
        assert np.array_equal(sig[special], want)
    assert dut.exp_range == (fmt.emin, max(fmt.emax, fmt.emin))
    return ref


@pytest.mark.parametrize("spec", UNPACK_8BIT)
def test_unpack_exhaustive_8bit(spec):
    ref = unpack_compare(spec, np.arange(256))
    assert ref.zero.sum() >= 2   # +0 and -0 at least


@pytest.mark.parametrize("spec", ["e5m2", "e4m3:fn"])
def test_unpack_keeps_special_fields_without_zero_specials(spec):
    unpack_compare(spec, np.arange(256), zero_specials=False)


@pytest.mark.parametrize("spec", ["fp16", "bf16", "fp16_e6m9", "fp32"])
def test_unpack_wide_formats_sampled(spec):
    fmt = parse_format(spec)
    rng = rng_for("unpack", spec)
    codes = rng.integers(0, 1 << fmt.width, 1500, dtype=np.int64)
    top = ((1 << fmt.exp_bits) - 1) << fmt.man_bits
    codes = np.concatenate([codes, [0, fmt.sign_mask, 1, top, top | 1, (1 << fmt.width) - 1,
                                    1 << fmt.man_bits, (1 << fmt.man_bits) - 1]])
    unpack_compare(spec, codes)


# -- LFSR ----------------------------------------------------------------------------------------------

def run_lfsr(dut, enables, reset_at=()):
    """Clock ``dut`` with ``en`` following ``enables``; reset (one cycle, en low) before the cycles in
    ``reset_at``. Returns the ``rand`` seen in each cycle (before its clock edge)."""
    m = Module()
    m.domains.sync = cd = ClockDomain()
    m.submodules.dut = dut
    seen = []

    async def bench(ctx):
        for k, en in enumerate(enables):
            if k in reset_at:
                ctx.set(dut.en, 0)
                ctx.set(cd.rst, 1)
                await ctx.tick()
                ctx.set(cd.rst, 0)
            ctx.set(dut.en, en)
            seen.append(ctx.get(dut.rand))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("width, taps, seed, rand_bits", [
    (16, None, 1, 8), (16, (16, 15, 13, 4), 0xACE1, 5), (7, None, 0x41, 7), (32, None, 0xDEADBEEF, 13),
    (5, None, 3, 1),
])
def test_lfsr_enabled_cycles_see_golden_words(width, taps, seed, rand_bits):
    rng = rng_for("lfsr", width, seed)
    enables = (rng.random(400) < 0.6).astype(int).tolist()
    seen = run_lfsr(LFSR(width, taps, seed, rand_bits), enables)
    words = lfsr_words(width, taps, seed, rand_bits, sum(enables) + 1).tolist()
    i = 0
    for en, r in zip(enables, seen):
        # Idle cycles show the word the next enabled cycle will use; enabled cycle i sees word i.
        assert r == words[i]
        i += en
    assert i == sum(enables) > 150


@pytest.mark.parametrize("width, seed, rand_bits, words", [(31, 0x1234567, 8, 8), (17, 1, 5, 3), (16, 0xACE1, 8, 2), (16, 0x1D, 5, 32),
                                                           (32, 0xDEADBEEF, 13, 2), (5, 3, 1, 9)])
def test_lfsr_words_per_cycle_are_consecutive_golden_words(width, seed, rand_bits, words):
    """An LFSR handing out several words per enabled cycle gives, in cycle i, words i*N ... i*N+N-1
    of the one-word sequence (golden.lfsr.lfsr_lane_words), word 0 in the low bits."""
    rng = rng_for("lfsr-words", width, words)
    enables = (rng.random(120) < 0.6).astype(int).tolist()
    seen = run_lfsr(LFSR(width, None, seed, rand_bits, words=words), enables)
    lanes = lfsr_lane_words(width, None, seed, rand_bits, words, sum(enables) + 1).tolist()
    flat = lfsr_words(width, None, seed, rand_bits, words * (sum(enables) + 1)).tolist()
    assert [w for row in lanes for w in row] == flat
    mask = (1 << rand_bits) - 1
    i = 0
    for en, r in zip(enables, seen):
        assert [(r >> (k * rand_bits)) & mask for k in range(words)] == lanes[i]
        i += en
    assert i > 40


def test_lfsr_reset_restarts_the_sequence():
    enables = [1] * 40 + [0, 1, 1, 0] + [1] * 20
    seen = run_lfsr(LFSR(16, None, 0xBEEF, 8), enables, reset_at={30})
    words = lfsr_words(16, None, 0xBEEF, 8, 40).tolist()
    assert seen[:30] == words[:30]
    assert [r for r, en in zip(seen[30:], enables[30:]) if en] == words[:sum(enables[30:])]


def test_lfsr_taps_property_is_normalized():
    assert LFSR(16, (4, 13, 16, 15)).taps == (16, 15, 13, 4)
    assert LFSR(9).taps == (9, 5)


# -- pipeline placement --------------------------------------------------------------------------------

@pytest.mark.parametrize("ncuts", range(1, 7))
def test_placement_properties(ncuts):
    cuts = [f"c{k}" for k in range(ncuts)]
    for stages in range(0, 20):
        counts = placement(stages, cuts)
        assert list(counts) == cuts
        assert sum(counts.values()) == stages
        assert all(c >= 0 for c in counts.values())
        if stages == 0:
            continue
        assert counts[cuts[-1]] >= 1                                # the output is always registered
        if stages <= ncuts:
            assert max(counts.values()) == 1
            # Spread evenly: the gaps between registered cuts (from just before the first) differ
            # by at most one and average ncuts / stages.
            idx = [-1] + [k for k, c in enumerate(cuts) if counts[c]]
            gaps = np.diff(idx)
            assert gaps.max() - gaps.min() <= 1
            assert set(gaps.tolist()) <= {math.floor(ncuts / stages), math.ceil(ncuts / stages)}
        else:
            # Every cut gets one; the extras go to the output.
            assert all(counts[c] == 1 for c in cuts[:-1])
            assert counts[cuts[-1]] == 1 + stages - ncuts


def test_pipeline_latency_and_valid():
    """Data and valid both arrive ``stages`` cycles later through the placed registers."""
    for stages in (0, 1, 3, 5):
        m = Module()
        m.domains.sync = ClockDomain()
        x, v = Signal(8), Signal()
        pipe = Pipeline(m, stages, ["a", "b", "c"], valid_in=v)
        y = pipe.cut("a", x + 1)
        y = pipe.cut("b", y)
        y = pipe.cut("c", y * 2)
        vo = pipe.valid_out if stages else v
        log = []

        async def bench(ctx):
            for k in range(12):
                ctx.set(x, k + 10)
                ctx.set(v, k % 3 != 0)
                log.append((ctx.get(y), ctx.get(vo)))
                await ctx.tick()

        sim = Simulator(m)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        for k in range(stages, 12):
            j = k - stages
            assert log[k] == ((((j + 10) + 1) * 2) & 0x1FF, int(j % 3 != 0)), (stages, k)
        assert pipe.counts == placement(stages, ["a", "b", "c"])


def test_pipeline_rejects_unknown_or_repeated_cut():
    pipe = Pipeline(Module(), 2, ["a", "b"])
    pipe.cut("a", Signal(4))
    with pytest.raises(ValueError, match="'a'"):
        pipe.cut("a", Signal(4))
    with pytest.raises(ValueError, match="'z'"):
        pipe.cut("z", Signal(4))


# -- parameter validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda: LeadingZeroCounter(0), ("width", "positive")),
    (lambda: LeadingZeroCounter(3.0), ("width",)),
    (lambda: Normalizer(8, signed(5), granule=3), ("granule", "power of two")),
    (lambda: Normalizer(8, signed(5), granule=0), ("granule",)),
    (lambda: Normalizer(8, signed(5), floor=-3, granule=2), ("granule", "floor")),
    (lambda: Rounder(E5M2, "rne", 3, (-20, 20)), ("sig_width", "4")),
    (lambda: Rounder(E5M2, "rne", 8, (5, -5)), ("exp_range",)),
    (lambda: Rounder(E5M2, "rnd", 8, (-20, 20)), ("rounding", "rne")),
    (lambda: Rounder(E5M2, "sr", 8, (-20, 20)), ("rand_bits",)),
    (lambda: Rounder(E5M2, "sr", 8, (-20, 20), rand_bits=0), ("rand_bits", "1 and 32")),
    (lambda: LFSR(16, seed=0), ("seed",)),
    (lambda: LFSR(16, rand_bits=17), ("rand_bits",)),
    (lambda: LFSR(2), ("lfsr_width",)),
    (lambda: LFSR(16, taps=(15, 3)), ("lfsr_taps",)),
    (lambda: LFSR(16, words=0), ("words", "between 1 and 512")),
    (lambda: check_stages(-1), ("stages", "0 and 16")),
    (lambda: check_stages(17), ("stages", "0 and 16")),
    (lambda: check_stages(True), ("stages", "integer")),
    (lambda: check_stages("2"), ("stages", "integer")),
])
def test_block_parameter_errors(make, words):
    with pytest.raises(ValueError) as info:
        make()
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


@pytest.mark.parametrize("make", [
    lambda: Unpack(parse_format("fix16.8")),
    lambda: Unpack("e5m2"),
])
def test_blocks_take_radix2_format_objects(make):
    """Formats are parsed once at the edge: the shared blocks take radix-2 FloatFormat objects only."""
    with pytest.raises(TypeError, match="radix-2 FloatFormat object"):
        make()


def test_rounder_takes_format_objects_of_either_radix():
    """The rounder alone rounds into radix-4 formats too; a spec string is still refused."""
    assert Rounder(parse_format("fp4_r4"), "rne", 8, (-20, 20)).format.radix == 4
    with pytest.raises(TypeError, match="FloatFormat object"):
        Rounder("fp4_r4", "rne", 8, (-20, 20))
