"""cocotb testbench of ``hw.accumulator`` against ``golden.accumulator.dot``, bit for bit (the mac4
front end against ``golden.mac4.dot_mac4``, the block front end against ``golden.block.block_gemm``).

Random streams of dot products (lengths below, at and above the chunk length, not multiples of it,
single beats) with random idle cycles on the input and random back-pressure on the output; the
scoreboard checks every result in order and that there are exactly as many as dot products sent
(nothing dropped, nothing duplicated). A reset in the middle of a dot product must leave the unit
clean for the next one.
"""

from __future__ import annotations

import numpy as np
import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from common import (StreamSink, StreamSource, accumulator_beats, accumulator_block_beats, accumulator_mac4_beats,
                    log_seed, rng_for)
from harness import long_enabled, run_cocotb, unit_config

from golden.accumulator import dot
from golden.block import block_gemm, block_operand_param, quantize_blocks
from golden.mac4 import dot_mac4
from golden.formats import parse_format
from golden.lfsr import lfsr_words, reciprocal_taps
from hw.units import get_unit


class TB:
    def __init__(self, dut, stall_prob=0.3):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.mac4 = p["front"] == "mac4"
        self.block = p["front"] == "block"
        if self.block:
            self.fa = block_operand_param("a_format", p["a_format"])
            self.fb = block_operand_param("b_format", p["b_format"] or p["a_format"])
            self.N = self.fa.k
        else:
            self.fa = parse_format(p["a_format"])
            self.fb = parse_format(p["b_format"] or p["a_format"])
            self.N = p["lanes"] or 1
        self.fc = parse_format(p["acc_format"])
        self.chunk = p["chunk"]
        self.window = p["window"] if p["window"] == "exact" else int(p["window"])
        self.rounding = p["rounding"]
        self.R = p["rand_bits"] if self.rounding == "sr" else None
        self.rng = rng_for("tb")
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = StreamSource(dut, "i")
        self.sink = StreamSink(dut, "o", stall_prob, self.rng)
        self.words_inner = 0      # random words consumed so far (sr), since reset
        self.words_outer = 0

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.i__valid.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.words_inner = self.words_outer = 0

    def beats(self, a, b):
        """Payload integers of one dot product: lane k in bits k*width; then b; then last.

        With the mac4 front ``a`` is ``(x, phase)`` and ``b`` is ``(g, offset)``: the payload is
        ``{last, offset, phase, g lanes, x lanes}``.
        """
        if self.mac4:
            (x, ph), (g, off) = a, b
            return accumulator_mac4_beats(x, g, ph, off, self.N)
        if self.block:
            (a, xa), (b, xb) = a, b
            return accumulator_block_beats(a, xa, b, xb, self.N, self.fa.element.width, self.fb.element.width)
        return accumulator_beats(a, b, self.N, self.fa.width, self.fb.width)

    def golden(self, a, b):
        """Expected result of one dot product, consuming the LFSR words it uses (sr)."""
        kw = {}
        L = len(a[0]) if self.mac4 or self.block else len(a)
        if self.rounding == "sr":
            p = self.params
            nb = L // self.N
            n_outer = -(-nb // (self.chunk // self.N)) if self.chunk else 0
            inner = lfsr_words(p["lfsr_width"], None, p["seed"], self.R, self.words_inner + nb)
            outer = lfsr_words(p["lfsr_width"], reciprocal_taps(p["lfsr_width"]), p["seed_outer"], self.R,
                               self.words_outer + n_outer)
            kw = dict(rbits_inner=inner[self.words_inner:], rbits_outer=outer[self.words_outer:] if n_outer else None,
                      rand_bits=self.R)
            self.words_inner += nb
            self.words_outer += n_outer
        if self.mac4:
            (x, ph), (g, off) = a, b
            return int(dot_mac4(x, g, ph, off, self.fc, self.N, self.chunk, self.rounding,
                                self.params["x_signed"], **kw))
        if self.block:
            (a, xa), (b, xb) = a, b
            if kw:
                kw["rbits_inner"] = kw["rbits_inner"][None, None, :]
                kw["rbits_outer"] = None if kw["rbits_outer"] is None else kw["rbits_outer"][None, None, :]
            return int(block_gemm(a[None, :], xa[None, :], b[:, None], xb[:, None], self.fa, self.fb, self.fc,
                                  self.rounding, self.chunk, **kw)[0, 0])
        return int(dot(a, b, self.fa, self.fb, self.fc, self.N, self.chunk, self.window, self.rounding, **kw))

    def operands(self, L, kind):
        """Operand codes for one dot product of length L."""
        rng, fa, fb = self.rng, self.fa, self.fb
        if self.mac4:
            # INT4 and FP4 codes: all of them are values (no specials); "gauss" runs one offset,
            # the others sweep the exponent range with small and large offsets.
            x, g = rng.integers(0, 16, L), rng.integers(0, 16, L)
            off = int(rng.integers(-20, 20) if kind == "gauss" else rng.choice([-128, -60, 0, 60, 127]))
            return (x, rng.integers(0, 2, L // self.N)), (g, off)
        if self.block:
            return self.block_operands(L, kind)
        if kind == "gauss":
            scale = 2.0 ** rng.integers(-8, 4)
            a = fa.encode(rng.normal(1.0, 1.0, L) * scale)
            b = fb.encode(rng.normal(1.0, 1.0, L))
        elif kind == "cancel":
            x = rng.normal(0, 1, L)
            a = fa.encode(np.concatenate([x[: L // 2], -x[: L - L // 2]]))
            b = fb.encode(np.ones(L))
        elif kind == "tiny":
            a = rng.integers(0, 3 << fa.man_bits, L) | (rng.integers(0, 2, L) << (fa.width - 1))
            b = rng.integers(0, 3 << fb.man_bits, L)
        else:   # raw codes: specials, huge and tiny values
            a = rng.integers(0, 1 << fa.width, L)
            b = rng.integers(0, 1 << fb.width, L)
        return np.asarray(a, np.int64), np.asarray(b, np.int64)

    def block_operands(self, L, kind):
        """``((a codes, a scales), (b codes, b scales))`` of one dot product of ``L`` elements: blocks
        converted from float32 data (``gauss``, ``cancel``: the second half negates the first), raw
        codes under small scales (``tiny``), or raw codes under any scale codes, NaN included (``codes``)."""
        rng, fa, fb, nb = self.rng, self.fa, self.fb, L // self.N
        if kind in ("gauss", "cancel"):
            x = rng.normal(1.0, 1.0, L) * 2.0 ** rng.integers(-8, 8)
            if kind == "cancel":
                x[L // 2:] = -x[: L - L // 2] if nb % 2 == 0 else x[L // 2:]
            a, xa = quantize_blocks(x.astype(np.float32), fa)
            b, xb = quantize_blocks((rng.normal(0.5, 1.0, L) if kind == "gauss" else np.ones(L)).astype(np.float32), fb)
        else:
            a = rng.integers(0, 1 << fa.element.width, L)
            b = rng.integers(0, 1 << fb.element.width, L)
            if kind == "tiny":
                xa, xb = rng.integers(0, 20, nb), rng.integers(0, 20, nb)
            else:
                xa = np.where(rng.random(nb) < 0.05, 255, rng.integers(100, 160, nb))
                xb = np.where(rng.random(nb) < 0.1, rng.integers(0, 256, nb), rng.integers(100, 160, nb))
        return ((np.asarray(a, np.int64), np.asarray(xa, np.int64)), (np.asarray(b, np.int64), np.asarray(xb, np.int64)))

    def lengths(self, count):
        N, CL = self.N, self.chunk or 64
        pick = [N, CL, CL - N if CL > N else N, CL + N, 3 * CL + N, 2 * CL, 5 * N]
        out = [int(self.rng.choice(pick)) for _ in range(count // 2)]
        out += [N * int(self.rng.integers(1, 3 * CL // N + 2)) for _ in range(count - len(out))]
        self.rng.shuffle(out)
        return out

    async def run(self, dot_products, idle_prob):
        """Stream the dot products; return (received, expected)."""
        payloads = [p for a, b in dot_products for p in self.beats(a, b)]
        expected = [self.golden(a, b) for a, b in dot_products]
        self.sink.start()
        await self.source.send(payloads, idle_prob, self.rng)
        latency = self.dut_latency()
        for _ in range(200):
            if len(self.sink.received) >= len(expected):
                break
            await RisingEdge(self.dut.clk)
        await ClockCycles(self.dut.clk, 4 * latency + 8)   # anything extra would be a duplicate
        self.sink.stop()
        got, self.sink.received = self.sink.received, []
        return got, expected

    def dut_latency(self):
        return self.params["stages"] + 3

    def check(self, got, expected, what):
        assert len(got) == len(expected), (
            f"{what}: {len(got)} results for {len(expected)} dot products (dropped or duplicated)")
        bad = [k for k, (g, e) in enumerate(zip(got, expected)) if g != e]
        for k in bad[:5]:
            self.dut._log.error("%s: dot product %d: got %#x, golden %#x", what, k, got[k], expected[k])
        assert not bad, f"{what}: {len(bad)} of {len(got)} results differ from the golden model"


@cocotb.test()
async def streams_with_stalls(dut):
    """Random dot products, idle input cycles and output back-pressure."""
    tb = TB(dut, stall_prob=0.35)
    log_seed(dut, "streams_with_stalls")
    await tb.reset()
    count = 2000 if long_enabled() else 300
    kinds = tb.rng.choice(["gauss", "gauss", "gauss", "cancel", "tiny", "codes"], count)
    dps = [tb.operands(L, k) for L, k in zip(tb.lengths(count), kinds)]
    got, expected = await tb.run(dps, idle_prob=0.3)
    tb.check(got, expected, "streams_with_stalls")


@cocotb.test()
async def full_rate(dut):
    """Back-to-back beats with the output always ready: one beat per cycle, no idle cycle."""
    tb = TB(dut, stall_prob=0.0)
    log_seed(dut, "full_rate")
    await tb.reset()
    dps = [tb.operands(L, "gauss") for L in tb.lengths(20)]
    payloads = sum(len(tb.beats(a, b)) for a, b in dps)
    tb.sink.start()
    cycles = await tb.source.send([p for a, b in dps for p in tb.beats(a, b)], 0.0, tb.rng)
    assert cycles == payloads, f"{payloads} beats took {cycles} cycles: the input stalled"
    expected = [tb.golden(a, b) for a, b in dps]
    await ClockCycles(dut.clk, 4 * tb.dut_latency() + 8)
    tb.sink.stop()
    tb.check(tb.sink.received, expected, "full_rate")


@cocotb.test()
async def reset_mid_stream(dut):
    """A reset inside a dot product (and with a result waiting) leaves the unit clean."""
    tb = TB(dut, stall_prob=0.0)
    log_seed(dut, "reset_mid_stream")
    await tb.reset()
    a, b = tb.operands(3 * (tb.chunk or 8 * tb.N) + tb.N, "gauss")
    beats = tb.beats(a, b)
    half = beats[: len(beats) // 2]
    await tb.source.send(half, 0.0, tb.rng)
    await tb.reset()
    dps = [tb.operands(L, "gauss") for L in tb.lengths(6)]
    got, expected = await tb.run(dps, idle_prob=0.2)
    tb.check(got, expected, "after reset")


CONFIGS = {
    "n1-cl4-rne": {"lanes": 1, "chunk": 4, "rounding": "rne"},
    "n4-cl16-w10-rtz-stages1": {"lanes": 4, "chunk": 16, "window": "10", "rounding": "rtz", "stages": 1},
    "n8-cl64-w10-rne-stages2": {"lanes": 8, "chunk": 64, "window": "10", "rounding": "rne", "stages": 2},
    "n8-nochunk-exact-rne": {"lanes": 8, "chunk": 0, "rounding": "rne"},
    "n4-cl8-w12-sr": {"lanes": 4, "chunk": 8, "window": "12", "rounding": "sr", "rand_bits": 6},
    "n2-cl4-fp16_e6m9-rna-hfp8": {"lanes": 2, "chunk": 4, "a_format": "fp8_e4m3", "b_format": "e5m2",
                                  "acc_format": "fp16_e6m9", "rounding": "rna"},
    "mac4-n8-cl64-rne-stages1": {"lanes": 8, "chunk": 64, "front": "mac4", "stages": 1},
    "mac4-n4-cl8-sr-unsigned": {"lanes": 4, "chunk": 8, "front": "mac4", "rounding": "sr", "x_signed": False},
    "block-mxfp8_e4m3-k8-cl32-fp32-stages1": {"front": "block", "a_format": "mxfp8_e4m3/8", "chunk": 32,
                                              "acc_format": "fp32", "stages": 1},
    "block-mxfp4xhbfp4-k4-cl8-bf16-sr": {"front": "block", "a_format": "mxfp4_e2m1/4", "b_format": "hbfp4/4",
                                         "chunk": 8, "acc_format": "bf16", "rounding": "sr", "rand_bits": 7},
}

LONG_CONFIGS = {
    "block-mxfp4-k32-nochunk-fp32": {"front": "block", "a_format": "mxfp4_e2m1", "chunk": 0, "acc_format": "fp32"},
    "block-mxfp8_e5m2-k16-cl64-e6m9-rna-stages2": {"front": "block", "a_format": "mxfp8_e5m2/16", "chunk": 64,
                                                   "rounding": "rna", "stages": 2},
    "block-mxint8-k16-cl32-fp32-rtz": {"front": "block", "a_format": "mxint8/16", "chunk": 32,
                                       "acc_format": "fp32", "rounding": "rtz"},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_accumulator(config, record_property):
    run_cocotb("accumulator", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
