"""cocotb testbench of ``hw.block_dot`` against ``golden.block.beat_dot``, bit for bit.

- every element pair in every lane: ``P`` beats (``P`` = all pairs of element codes) in which lane ``i``
  sees pair ``(j + stride * i) mod P`` at beat ``j``, each beat under one scale pair, with ``c`` = +0,
  -0 and random addends (specials among them) for element pairs of up to 16 bits (every preset);
- every element pair alone in every lane (the other lanes zero products of random signs) when the
  pairs are few (MXFP4, MXFP6: up to 12 bits);
- every pair of edge scale codes (0, 1, 126, 127, 128, 253, 254 and the NaN code 255), with random
  elements and addends: overflow to Inf or the largest value, underflow to subnormals and zero;
- cancellation: lanes in opposite pairs (exact zero sums and their signs, all products -0), addends
  near ``-S``; every edge addend (zeros, Inf, NaN, the extremes) against beats of special products;
- random beats (tens of thousands in CI, ``LOWBIT_LONG=1`` runs more); pipelined configurations with
  random idle cycles (inputs random while idle), ``sr`` from the ``rand`` port or the internal LFSR.
"""

from __future__ import annotations

import numpy as np
import pytest

import cocotb

from common import PipelineTB, drive_rounding_unit, log_seed, rng_for
from harness import long_enabled, run_cocotb, skip_when, unit_config

from golden.block import SCALE_NAN, beat_dot, block_operand_param
from golden.formats import FixedFormat, parse_format
from hw.units import get_unit

#: Edge scale codes: the smallest, around 2**0, the largest, NaN.
EDGE_SCALES = (0, 1, 126, 127, 128, 253, 254, SCALE_NAN)


def pack(codes, width):
    """Lane codes ``(n, N)`` as one Python integer per beat, lane 0 lowest."""
    return [sum(int(c) << (width * i) for i, c in enumerate(row)) for row in np.asarray(codes)]


def element_edges(fmt):
    """Edge codes of an element format (zeros, extremes, specials)."""
    el = fmt.element
    if isinstance(el, FixedFormat):
        W = el.bits
        return np.array([0, 1, (1 << (W - 1)) - 1, 1 << (W - 1), (1 << (W - 1)) + 1, (1 << W) - 1])
    return el.edge_codes()


class TB:
    """The configuration under test, its drivers and its golden scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.fa = block_operand_param("a_format", p["a_format"], p["block"])
        self.fb = block_operand_param("b_format", p["b_format"] or self.fa, p["block"])
        self.fc = parse_format(p["acc_format"])
        self.N = p["lanes"] or self.fa.k
        self.wa, self.wb = self.fa.element.width, self.fb.element.width
        self.rounding = p["rounding"]
        self.R = p["rand_bits"] if self.rounding == "sr" else None
        self.port_rand = self.rounding == "sr" and p["rand_source"] == "port"
        self.lfsr = self.rounding == "sr" and p["rand_source"] == "lfsr"
        self.clocked = self.lfsr or p["stages"] > 0
        self.pipe = PipelineTB(dut) if self.clocked else None
        assert len(dut.a) == self.N * self.wa and len(dut.b) == self.N * self.wb

    def addends(self, rng, n, near=None):
        """Random ``c`` codes: 10% edge codes, 30% near ``-near`` (cancellation) when given."""
        f = self.fc
        c = rng.integers(0, 1 << f.width, n, dtype=np.uint64).astype(np.int64)
        c = np.where(rng.random(n) < 0.1, rng.choice(f.edge_codes(), n), c)
        if near is not None:
            with np.errstate(all="ignore"):
                close = f.encode(-near * (1 + rng.normal(0, 2.0 ** -f.man_bits, n))).astype(np.int64)
            c = np.where(rng.random(n) < 0.3, close, c)
        return c

    def values(self, a, xa, b, xb):
        """float64 value of each beat's scaled sum (for steering addends; NaN where special)."""
        with np.errstate(all="ignore"):
            va = self.fa.element.decode(a) * np.ldexp(1.0, xa.astype(np.int64) - 127)[:, None]
            vb = self.fb.element.decode(b) * np.ldexp(1.0, xb.astype(np.int64) - 127)[:, None]
            return (va * vb).sum(axis=1)

    async def run(self, a, xa, b, xb, c, rng, idle_prob=0.25):
        """Drive the beats; return ``(y, random words used or None)``."""
        inputs = {"a": pack(a, self.wa), "b": pack(b, self.wb), "xa": xa, "xb": xb, "c": c}
        return await drive_rounding_unit(self, inputs, len(c), rng, idle_prob)

    def check(self, a, xa, b, xb, c, y, rbits, what):
        want = beat_dot(a, xa, b, xb, c, self.fa, self.fb, self.fc, self.rounding, rbits=rbits,
                        rand_bits=self.R).astype(np.int64)
        assert len(y) == len(want), f"{what}: {len(y)} results for {len(want)} beats"
        bad = np.nonzero(y != want)[0]
        for k in bad[:5]:
            self.dut._log.error("%s: a=%s xa=%d b=%s xb=%d c=%#x r=%s: got %#x, golden %#x", what, a[k].tolist(),
                                xa[k], b[k].tolist(), xb[k], c[k], None if rbits is None else int(rbits[k]),
                                y[k], want[k])
        assert len(bad) == 0, f"{what}: {len(bad)} of {len(y)} results differ from the golden model"
        return len(y)

    async def run_and_check(self, a, xa, b, xb, c, rng, what, idle_prob=0.25):
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        xa, xb, c = (np.asarray(v, np.int64) for v in (xa, xb, c))
        y, rbits = await self.run(a, xa, b, xb, c, rng, idle_prob)
        return self.check(a, xa, b, xb, c, y, rbits, what)

    def scales(self, rng, n, spread=8):
        """Scale codes near 2**0 (results in the accumulator's range)."""
        return rng.integers(127 - spread, 128 + spread, n), rng.integers(127 - spread, 128 + spread, n)


def _pairs_wider_than(bits):
    return lambda p: sum(block_operand_param(name, p[name] or p["a_format"], p["block"]).element.width
                         for name in ("a_format", "b_format")) > bits


@skip_when(_pairs_wider_than(16), "every element pair in every lane only for element pairs of up to 16 bits")
@cocotb.test()
async def every_pair_every_lane(dut):
    """All element pairs in every lane (rotated), with c = +0, -0 and random addends."""
    tb = TB(dut)
    log_seed(dut, "every_pair_every_lane")
    rng = rng_for("every_pair_every_lane")
    P = 1 << (tb.wa + tb.wb)
    stride = 2 * (P // tb.N // 2) + 1 if P > tb.N else 1    # odd: every lane a different rotation
    pairs = (np.arange(P)[:, None] + stride * np.arange(tb.N)[None, :]) % P
    a, b = pairs & ((1 << tb.wa) - 1), pairs >> tb.wa
    xa, xb = tb.scales(rng, P, spread=4)
    near = tb.values(a, xa, b, xb)
    sets = [np.zeros(P, np.int64), np.full(P, tb.fc.sign_mask), tb.addends(rng, P, near)]
    total = 0
    for k, c in enumerate(sets):
        total += await tb.run_and_check(a, xa, b, xb, c, rng, f"every_pair_every_lane addend set {k}")
    dut._log.info("every_pair_every_lane: %d beats, %d element pairs per lane", total, P)


@skip_when(_pairs_wider_than(12), "every element pair alone in every lane only for element pairs of up to 12 bits")
@cocotb.test()
async def every_pair_alone(dut):
    """Each element pair alone in each lane: the other lanes hold zero products of random signs."""
    tb = TB(dut)
    log_seed(dut, "every_pair_alone")
    rng = rng_for("every_pair_alone")
    P = 1 << (tb.wa + tb.wb)
    n = P * tb.N
    lane = np.repeat(np.arange(tb.N), P)
    pair = np.tile(np.arange(P), tb.N)
    za = 0 if isinstance(tb.fa.element, FixedFormat) else tb.fa.element.sign_mask
    # Zero products in the other lanes, all -0 or all +0 per beat (fixed zeros are +0), so the pair's
    # own zero products decide the sign of a zero sum.
    a = np.repeat(np.where(rng.random((n, 1)) < 0.5, za, 0), tb.N, axis=1)
    b = np.zeros((n, tb.N), np.int64)
    a[np.arange(n), lane] = pair & ((1 << tb.wa) - 1)
    b[np.arange(n), lane] = pair >> tb.wa
    xa, xb = tb.scales(rng, n, spread=2)
    c = np.where(rng.random(n) < 0.5, np.where(rng.random(n) < 0.5, 0, tb.fc.sign_mask),
                 tb.addends(rng, n, tb.values(a, xa, b, xb)))
    total = await tb.run_and_check(a, xa, b, xb, c, rng, "every_pair_alone")
    dut._log.info("every_pair_alone: %d beats", total)


@cocotb.test()
async def scale_edges(dut):
    """Every pair of edge scale codes (NaN included) with random and extreme elements and addends."""
    tb = TB(dut)
    log_seed(dut, "scale_edges")
    rng = rng_for("scale_edges")
    grid = np.array([(sa, sb) for sa in EDGE_SCALES for sb in EDGE_SCALES])
    reps = 24
    xa, xb = np.repeat(grid[:, 0], reps), np.repeat(grid[:, 1], reps)
    n = len(xa)
    a = rng.integers(0, 1 << tb.wa, (n, tb.N))
    b = rng.integers(0, 1 << tb.wb, (n, tb.N))
    # A third of the beats with every lane at the largest magnitude (overflow) or the smallest (underflow).
    ea, eb = element_edges(tb.fa), element_edges(tb.fb)
    pick = rng.random(n)
    big = pick < 0.33
    a[big] = rng.choice(ea, (big.sum(), 1))
    b[big] = rng.choice(eb, (big.sum(), 1))
    c = tb.addends(rng, n, tb.values(a, xa, b, xb))
    await tb.run_and_check(a, xa, b, xb, c, rng, "scale_edges")


@cocotb.test()
async def cancellation_and_specials(dut):
    """Exact cancellation in the lanes and against c, zero signs, special products and addends."""
    tb = TB(dut)
    log_seed(dut, "cancellation_and_specials")
    rng = rng_for("cancellation_and_specials")
    N, n = tb.N, 3000
    a = rng.integers(0, 1 << tb.wa, (n, N))
    b = rng.integers(0, 1 << tb.wb, (n, N))
    if N > 1:
        # Lane pairs (2i, 2i+1) with a negated: the products cancel exactly (where they are finite).
        half = N // 2
        neg_a = a[:, :half] ^ (1 << (tb.wa - 1))
        if isinstance(tb.fa.element, FixedFormat):
            neg_a = (-a[:, :half]) & ((1 << tb.wa) - 1)
        a[:, 1:2 * half:2] = neg_a
        b[:, 1:2 * half:2] = b[:, 0:2 * half:2]
    # A quarter of the beats: every product a zero of the same random sign.
    zero = rng.random(n) < 0.25
    if not isinstance(tb.fa.element, FixedFormat):
        a[zero] = rng.integers(0, 2, (zero.sum(), 1)) * tb.fa.element.sign_mask
    else:
        a[zero] = 0
    b[zero] = 0
    xa, xb = tb.scales(rng, n)
    f = tb.fc
    c = np.where(rng.random(n) < 0.5, rng.choice(f.edge_codes(), n), tb.addends(rng, n, tb.values(a, xa, b, xb)))
    await tb.run_and_check(a, xa, b, xb, c, rng, "cancellation")
    # Every edge addend against beats of edge elements (Inf, NaN, 0 * Inf, the extremes).
    ea, eb, ec = element_edges(tb.fa), element_edges(tb.fb), f.edge_codes()
    rows = [(x, y, z) for x in ea for y in eb for z in ec]
    m = len(rows)
    a = rng.integers(0, 1 << tb.wa, (m, N))
    b = rng.integers(0, 1 << tb.wb, (m, N))
    lane = rng.integers(0, N, m)
    a[np.arange(m), lane] = [r[0] for r in rows]
    b[np.arange(m), lane] = [r[1] for r in rows]
    xa, xb = tb.scales(rng, m)
    await tb.run_and_check(a, xa, b, xb, np.array([r[2] for r in rows]), rng, "edge products x edge addends")


@cocotb.test()
async def random_beats(dut):
    """Random element codes, scales near 2**0 (10% anywhere), addends often near -S."""
    tb = TB(dut)
    log_seed(dut, "random_beats")
    rng = rng_for("random_beats")
    n = (300_000 if long_enabled() else 30_000) // max(1, tb.N // 8)
    a = rng.integers(0, 1 << tb.wa, (n, tb.N))
    b = rng.integers(0, 1 << tb.wb, (n, tb.N))
    xa, xb = tb.scales(rng, n, spread=20)
    anywhere = rng.random(n) < 0.1
    xa[anywhere] = rng.integers(0, 256, anywhere.sum())
    xb[anywhere] = rng.integers(0, 256, anywhere.sum())
    c = tb.addends(rng, n, tb.values(a, xa, b, xb))
    half = n // 2
    await tb.run_and_check(a[:half], xa[:half], b[:half], xb[:half], c[:half], rng, "random (idle cycles)")
    await tb.run_and_check(a[half:], xa[half:], b[half:], xb[half:], c[half:], rng, "random (full rate)",
                           idle_prob=0.0)


CONFIGS = {
    "mxfp4-l16-fp32": {"a_format": "mxfp4_e2m1", "block": 32, "lanes": 16},
    "mxfp8_e4m3-l8-fp32": {"a_format": "mxfp8_e4m3", "lanes": 8},
    "mxfp6_e3m2xe2m3-l8-bf16-rtz-s2": {"a_format": "mxfp6_e3m2", "b_format": "mxfp6_e2m3", "lanes": 8,
                                       "acc_format": "bf16", "rounding": "rtz", "stages": 2},
    "mxfp8_e5m2-l4-sr-lfsr-s1": {"a_format": "mxfp8_e5m2", "lanes": 4, "rounding": "sr", "rand_bits": 6,
                                 "rand_source": "lfsr", "stages": 1, "seed": 0x2B},
    "hbfp6xmxint8-k16-l16-e6m9-sr-port": {"a_format": "hbfp6/16", "b_format": "mx:fix8.6/16",
                                          "acc_format": "e6m9", "rounding": "sr", "rand_bits": 8},
}

LONG_CONFIGS = {
    "mxfp4-l32-e6m9-rna-s3": {"a_format": "mxfp4_e2m1", "acc_format": "e6m9", "rounding": "rna", "stages": 3},
    "mxfp4-l2-fp16": {"a_format": "mxfp4_e2m1", "lanes": 2, "acc_format": "fp16"},
    "mxfp6_e2m3-l16-fp32-s5": {"a_format": "mxfp6_e2m3", "lanes": 16, "stages": 5},
    "mxfp6_e3m2-l1-fp32": {"a_format": "e3m2:finite", "block": 8, "lanes": 1},
    "e4m3xe5m2-l8-fp32-rtz": {"a_format": "mxfp8_e4m3", "b_format": "mxfp8_e5m2", "lanes": 8, "rounding": "rtz"},
    "mxint8-l8-fp32": {"a_format": "mxint8", "lanes": 8},
    "mxint8xe4m3-l4-bf16-sr": {"a_format": "mxint8", "b_format": "mxfp8_e4m3", "lanes": 4, "acc_format": "bf16",
                               "rounding": "sr", "rand_bits": 12},
    "hbfp4-l32-fp32": {"a_format": "hbfp4"},
    "hbfp8-l8-fp32-s2": {"a_format": "hbfp8", "lanes": 8, "stages": 2},
    "e4m3nosub-k4-l4-fp16_e6m9": {"a_format": "e4m3:nosub:fn", "block": 4, "acc_format": "fp16_e6m9"},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_block_dot(config, record_property):
    run_cocotb("block_dot", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
