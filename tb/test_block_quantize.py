"""cocotb testbench of ``hw.block_quantize`` against ``golden.block.quantize_blocks``, bit for bit.

- special blocks: a NaN or an Inf (either sign, FP32 and BF16 payloads) in every position, blocks of
  +0/-0, blocks of FP32 subnormals only, the largest FP32 values, every power of two as the maximum;
- every rounding case of the element: one block element pins the scale, the others sweep every
  exponent from below the element's subnormal range to its top, every pattern of the significand's
  top ``p + 2`` bits and three kinds of rest (zero, the last bit only, a bit just below the guard), both
  signs; with BF16 inputs every BF16 code appears as an element under a sweep of block maxima;
- the clamp: maxima whose elements round past the largest element magnitude (E5M2's Inf, HBFP's 1);
- random blocks of Gaussian data at random scales (subnormal blocks among them) and of raw codes;
- ``sr`` from the ``rand`` port (one word per element) or the internal LFSR
  (:func:`golden.lfsr.lfsr_lane_words`); pipelined configurations with random idle cycles.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import cocotb

from common import PipelineTB, drive_comb, log_seed, rng_for
from harness import long_enabled, run_cocotb, skip_when, unit_config

from golden.block import block_operand_param, quantize_blocks
from golden.formats import FixedFormat, parse_format
from golden.lfsr import lfsr_lane_words
from hw.units import get_unit


class TB:
    """The configuration under test, its drivers and its golden scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.fmt = block_operand_param("format", p["format"], p["block"])
        self.k = self.fmt.k
        self.src = parse_format(p["source"])
        self.bf16 = self.src == parse_format("bf16")
        self.ws, self.we = self.src.width, self.fmt.element.width
        self.rounding = p["rounding"]
        self.R = p["rand_bits"] if self.rounding == "sr" else None
        self.port_rand = self.rounding == "sr" and p["rand_source"] == "port"
        self.lfsr = self.rounding == "sr" and p["rand_source"] == "lfsr"
        self.clocked = self.lfsr or p["stages"] > 0
        self.pipe = PipelineTB(dut) if self.clocked else None
        assert len(dut.x) == self.k * self.ws and len(dut.y) == self.k * self.we

    def to_codes(self, values):
        """float64 values ``(n, k)`` as source codes (rounded to the source format, NaN and Inf kept)."""
        with np.errstate(all="ignore"):
            if self.bf16:
                return np.asarray(values, np.float64).astype(np.float32).astype(ml_dtypes.bfloat16).view(np.uint16)
            return np.asarray(values, np.float64).astype(np.float32).view(np.uint32)

    def as_values(self, codes):
        codes = np.asarray(codes)
        if self.bf16:
            return codes.astype(np.uint16).view(ml_dtypes.bfloat16)
        return codes.astype(np.uint32).view(np.float32)

    async def run(self, codes, rng, idle_prob=0.25):
        """Drive blocks of source codes ``(n, k)``; return ``(element codes (n, k), scales (n,), words)``."""
        codes = np.asarray(codes).astype(np.int64)
        n = len(codes)
        inputs = {"x": [sum(int(c) << (self.ws * i) for i, c in enumerate(row)) for row in codes]}
        words = None
        if self.port_rand:
            words = rng.integers(0, 1 << self.R, (n, self.k))
            inputs["rand"] = [sum(int(w) << (self.R * i) for i, w in enumerate(row)) for row in words]
        if self.clocked:
            await self.pipe.reset()
            out = await self.pipe.run(inputs, ["y", "scale"], idle_prob=idle_prob, rng=rng)
        else:
            out = await drive_comb(self.dut, inputs, ["y", "scale"])
        if self.lfsr:
            p = self.params
            words = lfsr_lane_words(p["lfsr_width"], p["lfsr_taps"], p["seed"], self.R, self.k, n).astype(np.int64)
        mask = (1 << self.we) - 1
        y = np.array([[(int(v) >> (self.we * i)) & mask for i in range(self.k)] for v in out["y"]], np.int64)
        return y.reshape(-1, self.k), np.asarray(out["scale"], np.int64), words

    def check(self, codes, y, scale, words, what):
        values = self.as_values(codes)
        want_y, want_s = quantize_blocks(values, self.fmt, self.rounding, rbits=words, rand_bits=self.R)
        want_y, want_s = want_y.astype(np.int64), want_s[:, 0].astype(np.int64)
        assert len(y) == len(want_y), f"{what}: {len(y)} results for {len(want_y)} blocks"
        bad = np.nonzero((y != want_y).any(axis=1) | (scale != want_s))[0]
        for b in bad[:4]:
            self.dut._log.error("%s: block %s (codes %s) words %s: got scale %d codes %s, golden scale %d codes %s",
                                what, values[b].tolist(), [hex(int(c)) for c in codes[b]],
                                None if words is None else words[b].tolist(), scale[b], y[b].tolist(), want_s[b],
                                want_y[b].tolist())
        assert len(bad) == 0, f"{what}: {len(bad)} of {len(y)} blocks differ from the golden model"
        return len(y)

    async def run_and_check(self, codes, rng, what, idle_prob=0.25):
        codes = np.asarray(codes).astype(np.int64)
        y, scale, words = await self.run(codes, rng, idle_prob)
        return self.check(codes, y, scale, words, what)

    # -- stimuli --------------------------------------------------------------------------------------

    def special_codes(self):
        """NaN (quiet, signalling, both signs) and Inf codes of the source format."""
        s = self.src
        top = ((1 << s.exp_bits) - 1) << s.man_bits
        return np.array([top, top | s.sign_mask, top | 1, top | (1 << (s.man_bits - 1)) | s.sign_mask,
                         top | ((1 << s.man_bits) - 1)])

    def element_range(self):
        """Exponents (of values relative to the scale) from below the element's smallest step to its top."""
        el = self.fmt.element
        if isinstance(el, FixedFormat):
            return -el.frac_bits - 3, el.bits - 1 - el.frac_bits
        return el.emin - el.man_bits - 3, int(np.frexp(el.max_value)[1])


@cocotb.test()
async def special_blocks(dut):
    """NaN and Inf in every position, zero blocks, subnormal-only blocks, the largest values."""
    tb = TB(dut)
    log_seed(dut, "special_blocks")
    rng = rng_for("special_blocks")
    k, s = tb.k, tb.src
    rows = []
    for code in tb.special_codes():
        for pos in range(k):
            row = tb.to_codes(rng.normal(0, 1, k) * 2.0 ** rng.integers(-30, 30))
            row[pos] = code
            rows.append(row)
    rows += [np.zeros(k, np.int64), np.full(k, s.sign_mask), rng.integers(0, 2, k) * s.sign_mask]
    # Subnormal-only blocks (with zeros), tiny normal maxima, and the largest finite values.
    for _ in range(200):
        man = rng.integers(0, 1 << s.man_bits, k) >> rng.integers(0, s.man_bits, k)
        rows.append(man | (rng.integers(0, 2, k) * s.sign_mask))
    top = ((1 << s.exp_bits) - 2) << s.man_bits
    for e in range(1, 12):
        man = rng.integers(0, 1 << s.man_bits, k)
        exps = np.where(rng.random(k) < 0.5, 0, rng.integers(1, e + 1, k))
        rows.append((exps << s.man_bits) | man | (rng.integers(0, 2, k) * s.sign_mask))
    for _ in range(40):
        rows.append(top | rng.integers(0, 1 << s.man_bits, k) | (rng.integers(0, 2, k) * s.sign_mask))
    rows.append(np.full(k, top | ((1 << s.man_bits) - 1)))
    # Every power of two as the block maximum (and one above it), the other elements random below.
    for e in range(1, (1 << s.exp_bits) - 1):
        row = tb.to_codes(rng.uniform(-1, 1, k) * 2.0 ** (e - s.bias))
        row[rng.integers(0, k)] = e << s.man_bits
        rows.append(row)
        row = row.copy()
        row[rng.integers(0, k)] = (e << s.man_bits) | 1
        rows.append(row)
    await tb.run_and_check(np.array(rows), rng, "special_blocks")


@cocotb.test()
async def every_rounding_case(dut):
    """One element pins the scale; the others sweep exponents, top significand bits, rests, signs."""
    tb = TB(dut)
    log_seed(dut, "every_rounding_case")
    rng = rng_for("every_rounding_case")
    k, s, fmt = tb.k, tb.src, tb.fmt
    lo, hi = tb.element_range()
    top_bits = min(s.man_bits, (fmt.element.precision if not isinstance(fmt.element, FixedFormat)
                                else fmt.element.bits) + 2)
    rests = [0, 1, 1 << max(0, s.man_bits - top_bits - 1)] if s.man_bits > top_bits else [0]
    mags = [(e, t, r) for e in range(lo, hi + 1) for t in range(1 << top_bits) for r in rests]
    total = 0
    # Scales: one whose block maximum is the element's largest binade, and blocks pinned lower.
    for shift in (0, 40, -60, -120):
        n_elem = k - 1
        count = -(-len(mags) // n_elem)
        rows = np.zeros((count, k), np.int64)
        pin_exp = fmt.emax_elem + s.bias + shift + 16        # a normal source exponent field
        pin_exp = int(np.clip(pin_exp, 1, (1 << s.exp_bits) - 2))
        for idx, (e, t, r) in enumerate(mags):
            field = pin_exp - fmt.emax_elem + e                 # the value's exponent relative to the pin
            sign = rng.integers(0, 2) * s.sign_mask
            if field >= 1:
                code = (min(field, (1 << s.exp_bits) - 2) << s.man_bits) | (t << (s.man_bits - top_bits)) | r
            else:                                               # below the normal range: a subnormal
                code = ((((1 << top_bits) | t) << (s.man_bits - top_bits)) >> (1 - field)) if field > -s.man_bits else r
            rows[idx // n_elem, idx % n_elem] = code | sign
        rows[:, k - 1] = (pin_exp << s.man_bits) | rng.integers(0, 1 << s.man_bits, count)
        perm = np.argsort(rng.random((count, k)), axis=1)
        rows = np.take_along_axis(rows, perm, axis=1)
        total += await tb.run_and_check(rows, rng, f"every_rounding_case (pin shift {shift})")
    dut._log.info("every_rounding_case: %d blocks, %d element values per pin", total, len(mags))


@skip_when(lambda p: parse_format(p["source"]) != parse_format("bf16"), "every BF16 code only with BF16 inputs")
@cocotb.test()
async def every_bf16_code(dut):
    """Every BF16 code as an element, each block maximum drawn from a sweep of binades."""
    tb = TB(dut)
    log_seed(dut, "every_bf16_code")
    rng = rng_for("every_bf16_code")
    k = tb.k
    codes = rng.permutation(1 << 16)
    n_elem = k - 1
    count = -(-len(codes) // n_elem)
    rows = np.zeros((count, k), np.int64)
    rows.flat[np.arange(len(codes)) // n_elem * k + np.arange(len(codes)) % n_elem] = codes
    rows[:, k - 1] = (rng.integers(1, 255, count) << 7) | rng.integers(0, 128, count)
    await tb.run_and_check(rows, rng, "every_bf16_code")


@cocotb.test()
async def random_blocks(dut):
    """Gaussian blocks at random scales (subnormal ones among them), raw codes, outliers."""
    tb = TB(dut)
    log_seed(dut, "random_blocks")
    rng = rng_for("random_blocks")
    k, s = tb.k, tb.src
    n = (60_000 if long_enabled() else 6_000) // max(1, k // 8)
    v = rng.normal(0, 1, (n, k)) * 2.0 ** rng.integers(-150, 128, (n, 1))
    outlier = rng.random(n) < 0.2
    v[outlier, 0] *= 2.0 ** rng.integers(1, 30, outlier.sum())
    codes = tb.to_codes(v).astype(np.int64)
    raw = rng.random(n) < 0.3
    codes[raw] = rng.integers(0, 1 << s.width, (raw.sum(), k))
    half = n // 2
    await tb.run_and_check(codes[:half], rng, "random (idle cycles)")
    await tb.run_and_check(codes[half:], rng, "random (full rate)", idle_prob=0.0)


CONFIGS = {
    "mxfp8_e4m3-k32-rne": {"format": "mxfp8_e4m3"},
    "mxfp4-k32-rne": {"format": "mxfp4_e2m1"},
    "mxfp8_e5m2-k8-bf16-sr-lfsr-s2": {"format": "mxfp8_e5m2/8", "source": "bf16", "rounding": "sr", "rand_bits": 6,
                                      "rand_source": "lfsr", "stages": 2, "seed": 0x5A5},
    "hbfp8-k16-sr-port-s1": {"format": "hbfp8/16", "rounding": "sr", "rand_bits": 8, "stages": 1},
}

LONG_CONFIGS = {
    "mxint8-k32-rne": {"format": "mxint8"},
    "mxfp6_e3m2-k32-rna": {"format": "mxfp6_e3m2", "rounding": "rna"},
    "mxfp6_e2m3-k16-bf16-rtz": {"format": "mxfp6_e2m3/16", "source": "bf16", "rounding": "rtz"},
    "hbfp4-k8-rne-s3": {"format": "hbfp4/8", "stages": 3},
    "hbfp6-k32-bf16-sr": {"format": "hbfp6", "source": "bf16", "rounding": "sr", "rand_bits": 4},
    "mxfix8_7-k4-rne": {"format": "fix8.7", "block": 4},
    "e4m3nosub-k4-rne": {"format": "e4m3:nosub:fn", "block": 4},
    "mxfp4-k64-sr-lfsr": {"format": "mxfp4_e2m1/64", "rounding": "sr", "rand_source": "lfsr", "rand_bits": 5},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_block_quantize(config, record_property):
    run_cocotb("block_quantize", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
