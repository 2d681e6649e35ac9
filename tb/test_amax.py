"""cocotb testbench of ``hw.quantize.amax`` against ``golden.quantize.amax_codes``, bit for bit.

- every code of the source (up to 16 bits) in every lane: one-beat packets whose lanes hold codes
  next to each other (magnitudes one code apart, both signs), and two-beat packets that put a code
  against its neighbours in the running maximum;
- random packets (one beat to a few dozen) of random codes, with NaN, ±Inf, ±0 and the largest
  finite codes mixed in, random idle cycles on the input and random back-pressure on the output:
  the scoreboard checks every result in order and that there is exactly one per packet;
- back-to-back beats at full rate (one beat per cycle, no stall), and a reset in the middle of a
  packet leaving the unit clean for the next.
"""

from __future__ import annotations

import numpy as np
import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from common import StreamSink, StreamSource, log_seed, rng_for, sample_codes
from harness import long_enabled, run_cocotb, skip_when, unit_config

from golden.formats import parse_format
from golden.quantize import amax_codes
from hw.units import get_unit


class TB:
    def __init__(self, dut, stall_prob=0.3):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.src = parse_format(p["source"])
        self.N = p["lanes"]
        self.latency = p["stages"] + 1
        self.rng = rng_for("tb")
        assert len(dut.o__payload) == self.src.width
        assert len(dut.i__payload) == self.N * self.src.width + 1
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.source = StreamSource(dut, "i")
        self.sink = StreamSink(dut, "o", stall_prob, self.rng)

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.i__valid.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def beats(self, packet):
        """Payloads of one packet (beats x lanes codes): lane k in bits k*W, ``last`` on top."""
        W, N = self.src.width, self.N
        out = []
        for j, row in enumerate(packet):
            word = sum(int(c) << (W * k) for k, c in enumerate(row))
            out.append(word | (int(j == len(packet) - 1) << (W * N)))
        return out

    async def run(self, packets, idle_prob):
        payloads = [b for p in packets for b in self.beats(p)]
        expected = [int(amax_codes(p, self.src)) for p in packets]
        self.sink.start()
        await self.source.send(payloads, idle_prob, self.rng)
        for _ in range(400):
            if len(self.sink.received) >= len(expected):
                break
            await RisingEdge(self.dut.clk)
        await ClockCycles(self.dut.clk, 4 * self.latency + 8)     # anything more would be a duplicate
        self.sink.stop()
        got, self.sink.received = self.sink.received, []
        return got, expected

    def check(self, got, expected, packets, what):
        assert len(got) == len(expected), f"{what}: {len(got)} results for {len(expected)} packets"
        bad = [k for k, (g, e) in enumerate(zip(got, expected)) if g != e]
        for k in bad[:5]:
            self.dut._log.error("%s: packet %d (%d beats): got %#x, golden %#x", what, k, len(packets[k]),
                                got[k], expected[k])
        assert not bad, f"{what}: {len(bad)} of {len(got)} results differ from the golden model"

    def random_packets(self, count, max_beats=24):
        rng, f = self.rng, self.src
        specials = f.edge_codes()
        out = []
        for _ in range(count):
            n = int(rng.choice([1, 1, 2, 3, int(rng.integers(1, max_beats + 1))]))
            codes = sample_codes(f, rng, 4 * n * self.N)[:n * self.N].reshape(n, self.N)
            sprinkle = rng.random(codes.shape) < 0.03
            codes = np.where(sprinkle, rng.choice(specials, codes.shape), codes)
            if rng.random() < 0.1:          # all zeros of either sign: the maximum is +0's code
                codes = rng.choice([0, f.sign_mask], codes.shape)
            out.append(codes)
        return out


@skip_when(lambda p: p["source"].width > 16, "every code only for sources of at most 16 bits")
@cocotb.test()
async def every_code_in_every_lane(dut):
    """Every code in every lane against its neighbours, in the lane maximum and the running one."""
    tb = TB(dut, stall_prob=0.0)
    log_seed(dut, "every_code_in_every_lane")
    await tb.reset()
    n = 1 << tb.src.width
    k = np.arange(tb.N)
    # One-beat packets: beat j has code j + k in lane k, the odd lanes with the sign flipped, so
    # neighbouring magnitudes of both signs meet in a beat and every lane sees every code.
    half = 1 << (tb.src.width - 1)
    singles = [((j + k + (k % 2) * half) % n)[None, :] for j in range(n)]
    # Two-beat packets: a code in the first beat, its neighbours (and the other sign) in the second.
    rng = tb.rng
    firsts = rng.permutation(n)[: (n // 8 if not long_enabled() else n)]
    pairs = [np.stack([np.full(tb.N, c), (c + rng.integers(-2, 3, tb.N) + rng.integers(0, 2, tb.N) * (n // 2)) % n])
             for c in firsts]
    for what, packets in (("one-beat packets", singles), ("two-beat packets", pairs)):
        got, expected = await tb.run(packets, idle_prob=0.0)
        tb.check(got, expected, packets, f"every_code_in_every_lane {what}")
    dut._log.info("every_code_in_every_lane: %d one-beat and %d two-beat packets", len(singles), len(pairs))


@cocotb.test()
async def packets_with_stalls(dut):
    """Random packets, idle input cycles and output back-pressure."""
    tb = TB(dut, stall_prob=0.4)
    log_seed(dut, "packets_with_stalls")
    await tb.reset()
    packets = tb.random_packets(3000 if long_enabled() else 600)
    got, expected = await tb.run(packets, idle_prob=0.3)
    tb.check(got, expected, packets, "packets_with_stalls")
    nan = tb.src.is_nan(np.array(expected)) if tb.src.has_nan else np.zeros(len(expected), bool)
    assert nan.any() and (np.array(expected) == 0).any(), "NaN and all-zero packets should occur"


@cocotb.test()
async def full_rate(dut):
    """Back-to-back beats with the output always ready: no input stall."""
    tb = TB(dut, stall_prob=0.0)
    log_seed(dut, "full_rate")
    await tb.reset()
    packets = tb.random_packets(200)
    payloads = [b for p in packets for b in tb.beats(p)]
    tb.sink.start()
    cycles = await tb.source.send(payloads, 0.0, tb.rng)
    assert cycles == len(payloads), f"{len(payloads)} beats took {cycles} cycles: the input stalled"
    await ClockCycles(dut.clk, 4 * tb.latency + 8)
    tb.sink.stop()
    tb.check(tb.sink.received, [int(amax_codes(p, tb.src)) for p in packets], packets, "full_rate")


@cocotb.test()
async def reset_mid_packet(dut):
    """A reset inside a packet (and with a result waiting) leaves the unit clean."""
    tb = TB(dut, stall_prob=0.0)
    log_seed(dut, "reset_mid_packet")
    await tb.reset()
    big = np.full((6, tb.N), tb.src.max_code)
    await tb.source.send(tb.beats(big)[:3], 0.0, tb.rng)
    await tb.reset()
    packets = tb.random_packets(20)
    got, expected = await tb.run(packets, idle_prob=0.2)
    tb.check(got, expected, packets, "after reset")


CONFIGS = {
    "fp16-l8": {"lanes": 8, "source": "fp16"},
    "fp16-l3-s2": {"lanes": 3, "source": "fp16", "stages": 2},
    "fp32-l4-s1": {"lanes": 4, "source": "fp32", "stages": 1},
}

LONG_CONFIGS = {
    "e4m3-l1": {"lanes": 1, "source": "fp8_e4m3"},
    "bf16-l16-s4": {"lanes": 16, "source": "bf16", "stages": 4},
    "e5m2-l64": {"lanes": 64, "source": "e5m2"},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_amax(config, record_property):
    run_cocotb("amax", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
