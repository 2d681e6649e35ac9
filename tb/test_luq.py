"""cocotb testbench of ``hw.quantize.luq`` against ``golden.quantize.luq_quantize_codes``, bit for bit.

- every code of a 16-bit source (fp16, bf16) in every lane (lane ``k`` runs through the codes from
  ``k * 8191`` on, so a beat carries different codes), with the scale cycling through every value of
  the port: one pass per word of a sweep, the same word in every lane (0 and ``2**R - 1``, the ends
  of the decision ``F + r >= 2**R``; with ``LOWBIT_LONG=1`` also ``2**(R-1)`` and four random words),
  and one pass with a random word per code; ``65,536 x lanes`` codes per pass (``rand`` port
  configurations, or ``rne``);
- random codes of any source (edges, codes near 1.0, subnormals) with random scales, the scale's
  extremes and the source's subnormal boundary, random words or the internal LFSR's
  (``golden.lfsr.lfsr_lane_words``);
- values whose result depends on the word, in every region (stochastic underflow, every level,
  saturation), so that a lane taking another lane's word fails;
- pipelined configurations with random idle cycles (garbage on the inputs while idle), then at full
  rate; the scoreboard checks every output in order and their number.
"""

from __future__ import annotations

import numpy as np
import pytest

import cocotb

from common import (PipelineTB, drive_comb, log_seed, pack_lanes as pack, rng_for, sample_codes,
                    unpack_lanes as unpack)
from harness import long_enabled, run_cocotb, skip_when, unit_config

from golden.formats import parse_format
from golden.lfsr import lfsr_lane_words
from golden.quantize import luq_quantize_codes, luq_scale_exp_range
from hw.units import get_unit


class TB:
    """The configuration under test, its drivers and its golden scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.src = parse_format(p["source"])
        self.N = p["lanes"]
        self.rounding = p["rounding"]
        self.R = p["rand_bits"] if self.rounding == "sr" else None
        self.port_rand = self.rounding == "sr" and p["rand_source"] == "port"
        self.lfsr = self.rounding == "sr" and p["rand_source"] == "lfsr"
        self.S = len(dut.scale_exp)
        self.s_lo, self.s_hi = -(1 << (self.S - 1)), (1 << (self.S - 1)) - 1
        self.clocked = self.lfsr or p["stages"] > 0
        self.pipe = PipelineTB(dut, combinational=p["stages"] == 0) if self.clocked else None
        assert len(dut.q) == 4 * self.N and len(dut.x) == self.src.width * self.N

    async def run(self, x, scale, rand, rng, idle_prob=0.3):
        """Quantize beats ``x`` (n, N) with scales (n,) and words (n, N) (port) or the LFSR's;
        returns (codes (n', N), the words used)."""
        inputs = {"x": pack(x, self.src.width), "scale_exp": [int(s) & ((1 << self.S) - 1) for s in scale]}
        if self.port_rand:
            inputs["rand"] = pack(rand, self.R)
        if self.clocked:
            await self.pipe.reset()
            out = await self.pipe.run(inputs, ["q"], idle_prob=idle_prob, rng=rng)
        else:
            out = await drive_comb(self.dut, inputs, ["q"])
        if self.lfsr:
            p = self.params
            rand = lfsr_lane_words(p["lfsr_width"], p["lfsr_taps"], p["seed"], self.R, self.N, len(x))
        return unpack(out["q"], 4, self.N), rand

    def check(self, x, scale, rand, q, what):
        expected = luq_quantize_codes(x, self.src, np.asarray(scale)[:, None], self.rounding, rand,
                                      self.R).astype(np.int64)
        assert q.shape == expected.shape, f"{what}: {len(q)} beats out for {len(expected)} in"
        bad = np.argwhere(q != expected)
        for j, k in bad[:5]:
            self.dut._log.error("%s: beat %d lane %d: x=%#x scale_exp=%d r=%s: got %#x, golden %#x", what, j, k,
                                x[j, k], scale[j], None if rand is None else int(rand[j, k]), q[j, k],
                                expected[j, k])
        assert len(bad) == 0, f"{what}: {len(bad)} of {q.size} codes differ from the golden model"

    async def run_and_check(self, x, scale, rand, rng, what, idle_prob=0.3):
        x, scale = np.asarray(x, np.int64), np.asarray(scale, np.int64)
        q, rand = await self.run(x, scale, rand, rng, idle_prob)
        self.check(x, scale, rand, q, what)
        return q


def _not_exhaustive(p):
    return p["source"].width > 16 or (p["rounding"] == "sr" and p["rand_source"] != "port")


@skip_when(_not_exhaustive, "exhaustive only for sources of at most 16 bits, with the rand port under sr")
@cocotb.test()
async def every_code(dut):
    """Every code in every lane, per word of the sweep, the scale cycling through the port's values."""
    tb = TB(dut)
    log_seed(dut, "every_code")
    rng = rng_for("every_code")
    n = 1 << tb.src.width
    beats = np.arange(n)
    x = (beats[:, None] + 8191 * np.arange(tb.N)[None, :]) % n
    span = tb.s_hi - tb.s_lo + 1
    if tb.R is None:
        words = [None]
    else:
        top = (1 << tb.R) - 1
        more = [1 << (tb.R - 1), *rng.integers(0, top + 1, 4).tolist()] if long_enabled() else []
        words = [0, top, *more, "random"]
    summary = []
    for i, w in enumerate(words):
        scale = tb.s_lo + (beats * 7 + 13 * i) % span
        if w is None:
            rand = None
        elif w == "random":
            rand = rng.integers(0, 1 << tb.R, x.shape)
        else:
            rand = np.full(x.shape, w)
        q = await tb.run_and_check(x, scale, rand, rng, f"every_code word {w}", idle_prob=0.1)
        summary.append(len(np.unique(q)))
    dut._log.info("every_code: %d passes of %d codes x %d lanes; distinct codes per pass %s", len(words), n,
                  tb.N, summary)


@cocotb.test()
async def random_codes(dut):
    """Random codes with the scale near 1.0's exponent (levels 2**0 ... 2**6 and stochastic
    underflow), at the port's extremes and at the source's subnormal boundary; then at full rate."""
    tb = TB(dut)
    log_seed(dut, "random_codes")
    rng = rng_for("random_codes")
    n = (300_000 if long_enabled() else 40_000) // tb.N
    codes = sample_codes(tb.src, rng, n * tb.N).reshape(-1, tb.N)[:n]
    lo, hi = luq_scale_exp_range(tb.src)
    special = np.array([tb.s_lo, tb.s_hi, lo, hi, 0, -6, tb.src.emin, tb.src.emin - 1,
                        tb.src.emin - tb.src.man_bits])
    special = special[(special >= tb.s_lo) & (special <= tb.s_hi)]
    scale = np.where(rng.random(n) < 0.3, rng.choice(special, n), rng.integers(-10, 4, n))
    rand = rng.integers(0, 1 << tb.R, codes.shape) if tb.port_rand else None
    half = n // 2
    await tb.run_and_check(codes[:half], scale[:half], None if rand is None else rand[:half], rng,
                           "random_codes (idle cycles)", idle_prob=0.3)
    await tb.run_and_check(codes[half:], scale[half:], None if rand is None else rand[half:], rng,
                           "random_codes (full rate)", idle_prob=0.0)


@skip_when(lambda p: p["rounding"] != "sr", "needs sr: the rounding depends on the random words")
@cocotb.test()
async def stochastic_paths(dut):
    """Values whose result depends on the word (log range and stochastic underflow) and the words
    at the decision's edge: each lane's word is its own (a lane taking another lane's word fails)."""
    tb = TB(dut)
    log_seed(dut, "stochastic_paths")
    rng = rng_for("stochastic_paths")
    n = 4000
    src = tb.src
    # 1.f * 2**e with e - s in -R-1 ... 6: every region of the rounding, with s in the port's range.
    s = rng.integers(max(tb.s_lo, src.emin + 8), min(tb.s_hi, src.emax - 8) + 1, n)
    e = s[:, None] + rng.integers(-(tb.R or 1) - 1, 7, (n, tb.N))
    field = np.clip(e + src.bias, 1, (1 << src.exp_bits) - 2)
    mant = rng.integers(1, 1 << src.man_bits, (n, tb.N))
    x = (rng.integers(0, 2, (n, tb.N)) << (src.width - 1)) | (field << src.man_bits) | mant
    rand = rng.integers(0, 1 << tb.R, x.shape) if tb.port_rand else None
    q = await tb.run_and_check(x, s, rand, rng, "stochastic_paths", idle_prob=0.2)
    assert len(np.unique(q & 7)) == 8, "every level and zero should occur"


CONFIGS = {
    "fp16-l8-sr-port": {"lanes": 8, "source": "fp16", "rounding": "sr", "rand_source": "port"},
    "fp16-l4-rne-s1": {"lanes": 4, "source": "fp16", "rounding": "rne", "stages": 1},
    "defaults": {},
    "bf16-l4-sr-lfsr-r12-s2": {"lanes": 4, "source": "bf16", "rounding": "sr", "rand_bits": 12, "stages": 2,
                               "seed": 0x2C0FFEE},
    "fp32-l2-rne-scale12": {"lanes": 2, "source": "fp32", "rounding": "rne", "scale_bits": 12},
}

LONG_CONFIGS = {
    "fp16-l1-sr-port-r3": {"lanes": 1, "source": "fp16", "rounding": "sr", "rand_source": "port", "rand_bits": 3},
    "bf16-l4-sr-port-r12": {"lanes": 4, "source": "bf16", "rounding": "sr", "rand_source": "port", "rand_bits": 12},
    "fp16-l8-sr-lfsr-s2": {"lanes": 8, "source": "fp16", "rounding": "sr", "stages": 2, "seed": 0x2C0FFEE},
    "fp16-l16-sr-port-r16": {"lanes": 16, "source": "fp16", "rounding": "sr", "rand_source": "port",
                             "rand_bits": 16, "stages": 3},
    "e5m2-l8-sr-lfsr17": {"lanes": 8, "source": "e5m2", "rounding": "sr", "lfsr_width": 17},
    "fp32-l4-sr-lfsr-s1": {"lanes": 4, "source": "fp32", "rounding": "sr", "stages": 1},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_luq(config, record_property):
    run_cocotb("luq", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
