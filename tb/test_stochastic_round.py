"""cocotb testbench of ``hw.stochastic_round`` against ``golden.stochastic_round``, bit for bit.

The pytest functions at the bottom build one Verilator model per configuration (``tb/harness.py``)
and run the cocotb tests above them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import cocotb

from common import PipelineTB, drive_comb, log_seed, rng_for
from harness import long_enabled, run_cocotb, skip_when, unit_config

from golden.formats import FixedFormat, parse_format
from golden.lfsr import lfsr_words
from golden.stochastic_round import round_codes
from hw.units import get_unit


class TB:
    """One configuration of the unit: its parameters, input format and golden model."""

    def __init__(self, dut):
        self.dut = dut
        name, params = unit_config()
        self.params = get_unit(name).resolve(params)
        self.source = parse_format(self.params["source"])
        self.target = parse_format(self.params["target"])
        self.rounding = self.params["rounding"]
        self.R = self.params["rand_bits"] if self.rounding == "sr" else None
        self.port_rand = self.rounding == "sr" and self.params["rand_source"] == "port"
        self.lfsr = self.rounding == "sr" and self.params["rand_source"] == "lfsr"
        self.clocked = self.lfsr or self.params["stages"] > 0
        self.pipe = PipelineTB(dut) if self.clocked else None

    def golden(self, x, rbits):
        return round_codes(x, self.source, self.target, self.rounding, rbits, self.R).astype(np.int64)

    def lfsr_words(self, count):
        p = self.params
        return lfsr_words(p["lfsr_width"], p["lfsr_taps"], p["seed"], self.R, count).astype(np.int64)

    async def run(self, x, rng, idle_prob=0.3):
        """Round every code in ``x``; return (outputs, the random words used or None)."""
        x = np.asarray(x, dtype=np.int64)
        inputs = {"x": x}
        rbits = None
        if self.port_rand:
            rbits = rng.integers(0, 1 << self.R, len(x))
            inputs["rand"] = rbits
        if self.clocked:
            await self.pipe.reset()
            out = await self.pipe.run(inputs, ["y"], idle_prob=idle_prob, rng=rng)
        else:
            out = await drive_comb(self.dut, inputs, ["y"])
        if self.lfsr:
            rbits = self.lfsr_words(len(x))
        return out["y"], rbits

    def check(self, x, y, rbits, what):
        expected = self.golden(x, rbits)
        assert len(y) == len(expected), f"{what}: {len(y)} results for {len(expected)} inputs"
        bad = np.nonzero(y != expected)[0]
        for k in bad[:5]:
            self.dut._log.error("%s: x=%#x r=%s got %#x expected %#x", what, x[k],
                                None if rbits is None else int(rbits[k]), y[k], expected[k])
        assert len(bad) == 0, f"{what}: {len(bad)} of {len(x)} results differ from the golden model"


def sample_inputs(fmt, rng, count):
    """Codes of ``fmt``: every code when there are at most 2**16, else random plus corner codes."""
    if fmt.width <= 16:
        return np.arange(1 << fmt.width, dtype=np.int64)
    codes = rng.integers(0, 1 << fmt.width, count, dtype=np.int64)
    if not isinstance(fmt, FixedFormat):
        # Exponents spread uniformly hit every region (overflow, normal, subnormal, flush) evenly.
        top = 1 << (fmt.width - 1)
        corners = np.array([0, top, 1, top | 1, fmt.max_code, top | fmt.max_code], dtype=np.int64)
        codes = np.concatenate([corners, codes])
    return codes


@cocotb.test()
async def bit_exact(dut):
    """Every code (small formats) or random codes (large ones) against the golden model."""
    tb = TB(dut)
    log_seed(dut, "bit_exact")
    rng = rng_for("bit_exact")
    count = 400_000 if long_enabled() else 40_000
    x = sample_inputs(tb.source, rng, count)
    y, rbits = await tb.run(x, rng)
    tb.check(x, y, rbits, "bit_exact")


def _no_full_sr_sweep(p):
    """Not stochastic rounding, or an LFSR whose full period is too long to run here."""
    return p["rounding"] != "sr" or (p["rand_source"] == "lfsr" and p["lfsr_width"] > 16)


@skip_when(_no_full_sr_sweep, "needs sr with the rand port or an LFSR of at most 16 bits (a full period)")
@cocotb.test()
async def sr_statistics(dut):
    """SR is unbiased: exact round-up counts and a sample-size bound on the mean.

    With the ``rand`` port every ``r`` in ``0 .. 2**R - 1`` is applied once per value, so the number
    of round-ups must be exactly ``floor(frac * 2**R)``. With the LFSR a full period of ``2**n - 1``
    words is used: each nonzero R-bit word occurs ``2**(n-R)`` times and zero one time fewer, so
    round-ups number exactly ``floor(frac * 2**R) * 2**(n-R)``.
    """
    tb = TB(dut)
    log_seed(dut, "sr_statistics")
    rng = rng_for("sr_statistics")
    src, dst, R = tb.source, tb.target, tb.R
    # Positive source values strictly between two finite neighbours in the target's normal range.
    candidates = rng.integers(1, 1 << (src.width - 1), 4096, dtype=np.int64)
    exact_all = src.decode(candidates)
    lo_all = round_codes(candidates, src, dst, "rtz").astype(np.int64)
    ok = ((lo_all >= 1 << dst.man_bits) & (lo_all < dst.max_code) & np.isfinite(exact_all)
          & (dst.decode(lo_all) != exact_all))
    picks = rng.choice(np.nonzero(ok)[0], 3, replace=False)
    for k in picks:
        code, exact, lo_code = int(candidates[k]), float(exact_all[k]), int(lo_all[k])
        lo, hi = dst.decode(np.array([lo_code, lo_code + 1]))
        ulp = hi - lo
        F = math.floor((exact - lo) / ulp * 2 ** R)
        if tb.port_rand:
            x = np.full(1 << R, code, dtype=np.int64)
            y = (await drive_comb(dut, {"x": x, "rand": np.arange(1 << R)}, ["y"]))["y"]
            ups = int(np.sum(y == lo_code + 1))
            expected_ups = F
        else:
            n_bits = tb.params["lfsr_width"]
            period = (1 << n_bits) - 1
            x = np.full(period, code, dtype=np.int64)
            y, _ = await tb.run(x, rng, idle_prob=0.0)
            ups = int(np.sum(y == lo_code + 1))
            expected_ups = F * (1 << (n_bits - R))
        assert np.all((y == lo_code) | (y == lo_code + 1)), "SR returned a non-neighbour"
        assert ups == expected_ups, f"value {exact!r}: {ups} round-ups, expected {expected_ups}"
        # Mean within 6 standard deviations of E[y] = exact (to within the R-bit truncation).
        samples = len(y)
        mean = lo + ups / samples * ulp
        p_up = (exact - lo) / ulp
        bound = 6 * ulp * math.sqrt(max(p_up * (1 - p_up), 1e-12) / samples) + ulp * 2.0 ** -R
        assert abs(mean - exact) <= bound, f"mean {mean!r} vs {exact!r}: off by more than {bound!r}"


CONFIGS = {
    "sr-port-fp32-e5m2": {"source": "fp32", "target": "e5m2", "rounding": "sr", "rand_source": "port"},
    "sr-lfsr-fp16-e4m3-stages2": {"source": "fp16", "target": "fp8_e4m3", "rounding": "sr",
                                  "rand_source": "lfsr", "stages": 2, "seed": 0xACE1},
    "sr-port-fix16-e5m2": {"source": "fix16.8", "target": "e5m2", "rounding": "sr", "rand_source": "port",
                           "rand_bits": 6},
    "rne-fp16-e6m9": {"source": "fp16", "target": "fp16_e6m9", "rounding": "rne"},
    "rna-bf16-e5m2-nosub": {"source": "bf16", "target": "e5m2:nosub", "rounding": "rna", "stages": 1},
    "rtz-fp16-e5m2": {"source": "fp16", "target": "e5m2", "rounding": "rtz"},
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_stochastic_round(config, record_property):
    run_cocotb("stochastic_round", CONFIGS[config], module=__name__, record=record_property)
