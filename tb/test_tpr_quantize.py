"""cocotb testbench of ``hw.quantize.tpr`` against ``golden.quantize.tpr_quantize``, bit for bit.

- every code of a 16-bit source in every lane (lane ``k`` runs through the codes from ``k * 8191`` on)
  with the offset cycling through all 256 values (a third of the beats near the codes' exponents):
  one pass per word of a sweep, the same word in both phases of every lane (0 and ``2**R - 1``;
  with ``LOWBIT_LONG=1`` also ``2**(R-1)`` and four random words), and one pass with a random word
  per code and phase; ``65,536 x lanes`` codes, both phases, per pass (``rand`` port configurations,
  or no ``sr``);
- random codes of any source with offsets around the codes' exponents and at the 8-bit field's ends,
  random words or the internal LFSR's (``golden.lfsr.lfsr_lane_words``, ``2N`` words per beat: the
  phase-0 words of the lanes, then the phase-1 words);
- the dequantized codes, ``golden.mac4.fp4_value(g, phase, offset)`` (what mac4 multiplies), lie
  on the radix-4 neighbours of ``x``;
- pipelined configurations with random idle cycles, then at full rate; every output in order, and
  their number, are checked.
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
from golden.mac4 import OFFSET_MAX, OFFSET_MIN, fp4_value
from golden.quantize import tpr_quantize
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
        self.clocked = self.lfsr or p["stages"] > 0
        self.pipe = PipelineTB(dut, combinational=p["stages"] == 0) if self.clocked else None
        assert len(dut.g0) == len(dut.g1) == 4 * self.N and len(dut.offset) == 8

    async def run(self, x, offset, rand, rng, idle_prob=0.3):
        """Beats ``x`` (n, N), offsets (n,), words (n, 2N) (port) or the LFSR's; returns
        (g0, g1, words) with g0, g1 of shape (n', N)."""
        inputs = {"x": pack(x, self.src.width), "offset": [int(o) & 0xFF for o in offset]}
        if self.port_rand:
            inputs["rand"] = pack(rand, self.R)
        if self.clocked:
            await self.pipe.reset()
            out = await self.pipe.run(inputs, ["g0", "g1"], idle_prob=idle_prob, rng=rng)
        else:
            out = await drive_comb(self.dut, inputs, ["g0", "g1"])
        if self.lfsr:
            p = self.params
            rand = lfsr_lane_words(p["lfsr_width"], p["lfsr_taps"], p["seed"], self.R, 2 * self.N, len(x))
        return unpack(out["g0"], 4, self.N), unpack(out["g1"], 4, self.N), rand

    def expected(self, x, offset, rand):
        words = None if rand is None else (rand[:, :self.N], rand[:, self.N:])
        with np.errstate(over="ignore"):
            values = self.src.decode(x)
        return tpr_quantize(values, self.rounding, words, self.R, scale_exp=np.asarray(offset)[:, None])

    def check(self, x, offset, rand, g0, g1, what):
        w0, w1 = self.expected(x, offset, rand)
        for ph, got, want in ((0, g0, w0), (1, g1, w1)):
            assert got.shape == want.shape, f"{what}: {len(got)} beats out for {len(want)} in"
            bad = np.argwhere(got != want)
            for j, k in bad[:5]:
                self.dut._log.error("%s: phase %d beat %d lane %d: x=%#x offset=%d r=%s: got %#x, golden %#x",
                                    what, ph, j, k, x[j, k], offset[j],
                                    None if rand is None else int(rand[j, ph * self.N + k]), got[j, k], want[j, k])
            assert len(bad) == 0, f"{what}: {len(bad)} of {got.size} phase-{ph} codes differ from the golden model"

    async def run_and_check(self, x, offset, rand, rng, what, idle_prob=0.3):
        x, offset = np.asarray(x, np.int64), np.asarray(offset, np.int64)
        g0, g1, rand = await self.run(x, offset, rand, rng, idle_prob)
        self.check(x, offset, rand, g0, g1, what)
        return g0, g1


def _not_exhaustive(p):
    return p["source"].width > 16 or (p["rounding"] == "sr" and p["rand_source"] != "port")


@skip_when(_not_exhaustive, "exhaustive only for sources of at most 16 bits, with the rand port under sr")
@cocotb.test()
async def every_code(dut):
    """Every code in every lane, per word of the sweep, the offset cycling through all 256 values."""
    tb = TB(dut)
    log_seed(dut, "every_code")
    rng = rng_for("every_code")
    n = 1 << tb.src.width
    beats = np.arange(n)
    x = (beats[:, None] + 8191 * np.arange(tb.N)[None, :]) % n
    if tb.R is None:
        words = [None]
    else:
        top = (1 << tb.R) - 1
        more = [1 << (tb.R - 1), *rng.integers(0, top + 1, 4).tolist()] if long_enabled() else []
        words = [0, top, *more, "random"]
    for i, w in enumerate(words):
        # Offsets cycle through the field; a third of the beats sit near the codes' own exponents
        # (where the results are not all flushed or saturated).
        offset = OFFSET_MIN + (beats * 5 + 17 * i) % 256
        near = rng.integers(-30, 20, n)
        offset = np.where(rng.random(n) < 0.35, near, offset)
        if w is None:
            rand = None
        elif w == "random":
            rand = rng.integers(0, 1 << tb.R, (n, 2 * tb.N))
        else:
            rand = np.full((n, 2 * tb.N), w)
        await tb.run_and_check(x, offset, rand, rng, f"every_code word {w}", idle_prob=0.1)
    dut._log.info("every_code: %d passes of %d codes x %d lanes, both phases", len(words), n, tb.N)


@cocotb.test()
async def random_codes(dut):
    """Random codes (edges, near 1.0, subnormals), offsets near the exponents and at the ends."""
    tb = TB(dut)
    log_seed(dut, "random_codes")
    rng = rng_for("random_codes")
    n = (300_000 if long_enabled() else 40_000) // tb.N
    x = sample_codes(tb.src, rng, n * tb.N).reshape(-1, tb.N)[:n]
    ends = np.array([OFFSET_MIN, OFFSET_MAX, OFFSET_MIN + 1, OFFSET_MAX - 1, 0, -1])
    offset = np.where(rng.random(n) < 0.2, rng.choice(ends, n), rng.integers(-14, 8, n))
    rand = rng.integers(0, 1 << tb.R, (n, 2 * tb.N)) if tb.port_rand else None
    half = n // 2
    g0, g1 = await tb.run_and_check(x[:half], offset[:half], None if rand is None else rand[:half], rng,
                                    "random_codes (idle cycles)", idle_prob=0.3)
    await tb.run_and_check(x[half:], offset[half:], None if rand is None else rand[half:], rng,
                           "random_codes (full rate)", idle_prob=0.0)
    # What mac4 computes from these codes: value(g, phase) * 2**offset, the dequantized gradient,
    # within a factor 4 of x (the radix-4 grid) wherever neither phase flushed or saturated.
    v = tb.src.decode(x[:half])
    for ph, g in ((0, g0), (1, g1)):
        deq = fp4_value(g, ph, offset[:half, None])
        mag = np.abs(g & 7)
        inner = (mag > 1) & (mag < 7) & np.isfinite(v)
        ratio = deq[inner] / v[inner]
        assert np.all((ratio > 0) & (ratio <= 4) & (ratio >= 0.25)), "a code off the radix-4 neighbours"
        assert inner.sum() > 100


CONFIGS = {
    "fp16-l8-sr-port": {"lanes": 8, "source": "fp16", "rounding": "sr", "rand_source": "port"},
    "fp16-l8-rne": {"lanes": 8, "source": "fp16", "rounding": "rne"},
    "fp16-l4-sr-lfsr": {"lanes": 4, "source": "fp16", "rounding": "sr", "seed": 0x5EED},
    "bf16-l4-rna-s1": {"lanes": 4, "source": "bf16", "rounding": "rna", "stages": 1},
    "fp32-l2-sr-port-r10": {"lanes": 2, "source": "fp32", "rounding": "sr", "rand_source": "port", "rand_bits": 10},
}

LONG_CONFIGS = {
    "fp16-l1-rtz": {"lanes": 1, "source": "fp16", "rounding": "rtz"},
    "fp16-l4-sr-lfsr-s2": {"lanes": 4, "source": "fp16", "rounding": "sr", "stages": 2, "seed": 0x5EED},
    "fp16-l16-sr-port-r4-s3": {"lanes": 16, "source": "fp16", "rounding": "sr", "rand_source": "port",
                               "rand_bits": 4, "stages": 3},
    "e4m3-l8-sr-lfsr17": {"lanes": 8, "source": "fp8_e4m3", "rounding": "sr", "lfsr_width": 17},
    "fp32-l8-rne-s1": {"lanes": 8, "source": "fp32", "rounding": "rne", "stages": 1},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_tpr_quantize(config, record_property):
    run_cocotb("tpr_quantize", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
