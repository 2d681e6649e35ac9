"""cocotb testbench of ``hw.fp8_fma`` against ``golden.fp8_fma``, bit for bit.

- every FP8 x FP8 pair (65,536) with c = +0, -0 and random addends (specials among them);
- random triples (a few hundred thousand in CI; ``LOWBIT_LONG=1`` runs a million and more);
- directed corners: exact cancellation and its sign, products far above and below the addend,
  carries across binades, overflow to the largest value or Inf, subnormal results, Inf - Inf, 0 * Inf;
- the IEEE binary16 configuration also against an IEEE 754 reference (``golden.references``).
"""

from __future__ import annotations

import numpy as np
import pytest

import cocotb

from common import PipelineTB, drive_rounding_unit, log_seed, rng_for
from harness import long_enabled, run_cocotb, skip_when, unit_config

from golden.formats import parse_format
from golden.fp8_fma import fma
from golden.references import binary16_fma
from hw.units import get_unit


class TB:
    """The configuration under test, its drivers and its golden scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.fa = parse_format(p["a_format"])
        self.fb = parse_format(p["b_format"] or p["a_format"])
        self.fc = parse_format(p["acc_format"])
        self.rounding = p["rounding"]
        self.R = p["rand_bits"] if self.rounding == "sr" else None
        self.port_rand = self.rounding == "sr" and p["rand_source"] == "port"
        self.lfsr = self.rounding == "sr" and p["rand_source"] == "lfsr"
        self.clocked = self.lfsr or p["stages"] > 0
        self.pipe = PipelineTB(dut) if self.clocked else None

    async def run(self, a, b, c, rng, idle_prob=0.25):
        """Drive the triples; return (y, random words used or None)."""
        return await drive_rounding_unit(self, {"a": a, "b": b, "c": c}, len(a), rng, idle_prob)

    def check(self, a, b, c, y, rbits, what):
        expected = fma(a, b, c, self.fa, self.fb, self.fc, self.rounding, rbits=rbits,
                       rand_bits=self.R).astype(np.int64)
        assert len(y) == len(expected), f"{what}: {len(y)} results for {len(expected)} operations"
        bad = np.nonzero(y != expected)[0]
        for k in bad[:5]:
            self.dut._log.error("%s: a=%#x b=%#x c=%#x r=%s: got %#x, golden %#x", what, a[k], b[k], c[k],
                                None if rbits is None else int(rbits[k]), y[k], expected[k])
        assert len(bad) == 0, f"{what}: {len(bad)} of {len(y)} results differ from the golden model"

    async def run_and_check(self, a, b, c, rng, what, idle_prob=0.25):
        a, b, c = (np.asarray(x, dtype=np.int64) for x in (a, b, c))
        y, rbits = await self.run(a, b, c, rng, idle_prob)
        self.check(a, b, c, y, rbits, what)
        return y


def random_triples(tb, rng, n):
    """Random codes, with addends steered near -a*b for cancellations half of the time."""
    fa, fb, fc = tb.fa, tb.fb, tb.fc
    a = rng.integers(0, 1 << fa.width, n)
    b = rng.integers(0, 1 << fb.width, n)
    c = rng.integers(0, 1 << fc.width, n)
    # A quarter of the operands from the bottom binades (subnormals, products far below the
    # addend or below the subnormal range): uniform codes rarely land there in wide formats.
    a = np.where(rng.random(n) < 0.25, rng.integers(0, 4 << fa.man_bits, n) | (a & fa.sign_mask), a)
    b = np.where(rng.random(n) < 0.25, rng.integers(0, 4 << fb.man_bits, n) | (b & fb.sign_mask), b)
    with np.errstate(invalid="ignore", over="ignore"):
        prod = fa.decode(a) * fb.decode(b)
        near = fc.encode(-prod * (1 + rng.normal(0, 2.0 ** -fc.man_bits, n)))
    return a, b, np.where(rng.random(n) < 0.5, near, c)


def directed_triples(tb, rng):
    """Corner cases, each built from the formats' own values (not from the model under test)."""
    fa, fb, fc = tb.fa, tb.fb, tb.fc
    n = 4000
    a = rng.integers(0, 1 << fa.width, n)
    b = rng.integers(0, 1 << fb.width, n)
    with np.errstate(invalid="ignore", over="ignore"):
        prod = fa.decode(a) * fb.decode(b)
    finite = np.isfinite(prod)
    a, b, prod = a[finite], b[finite], prod[finite]
    cases = []
    # Exact cancellation (result +0 whatever the signs) and its neighbours one code away.
    exact = fc.encode(-prod, "rtz")
    cases += [(a, b, exact), (a, b, exact + 1), (a, b, np.maximum(exact, 1) - 1)]
    # Products far below and far above the addend.
    big = rng.integers(fc.max_code - (8 << fc.man_bits), fc.max_code, len(a))
    tiny = rng.integers(1, 4 << fc.man_bits, len(a))
    sgn = rng.integers(0, 2, len(a)) * fc.sign_mask
    cases += [(a, b, big | sgn), (a, b, tiny | sgn)]
    # Carries across binades: addends one unit below a power of two minus the product.
    with np.errstate(invalid="ignore", over="ignore"):
        pow2 = np.exp2(np.floor(np.log2(np.abs(prod) + 1e-300)) + 1)
    cases.append((a, b, fc.encode(pow2 - prod, "rtz")))
    # Overflow: the largest operands with the largest addends of both signs.
    amax, bmax = np.array([fa.max_code, fa.max_code | fa.sign_mask]), np.array([fb.max_code])
    for ca in amax:
        for cc in (fc.max_code, fc.max_code | fc.sign_mask, 0):
            cases.append((np.array([ca]), bmax, np.array([cc])))
    # Subnormal (or flushed) results: the smallest products, alone and against small addends.
    small_a = rng.integers(0, 3 << fa.man_bits, 2000) | (rng.integers(0, 2, 2000) * fa.sign_mask)
    small_b = rng.integers(0, 3 << fb.man_bits, 2000)
    cases.append((small_a, small_b, rng.integers(0, 2 << fc.man_bits, 2000)))
    # Every pair of special and extreme codes with every special and extreme addend: Inf - Inf,
    # 0 * Inf, NaN propagation, signed zeros.
    sa, sb, sc = fa.edge_codes(), fb.edge_codes(), fc.edge_codes()
    grid = np.meshgrid(sa, sb, sc, indexing="ij")
    cases.append(tuple(g.ravel() for g in grid))
    a = np.concatenate([np.broadcast_to(x, np.broadcast_shapes(x.shape, y.shape, z.shape))
                        for x, y, z in cases])
    b = np.concatenate([np.broadcast_to(y, np.broadcast_shapes(x.shape, y.shape, z.shape))
                        for x, y, z in cases])
    c = np.concatenate([np.broadcast_to(z, np.broadcast_shapes(x.shape, y.shape, z.shape))
                        for x, y, z in cases])
    return a, b, c & ((1 << fc.width) - 1)


def _operands_wider_than_8_bits(p):
    return p["a_format"].width + (p["b_format"] or p["a_format"]).width > 16


@skip_when(_operands_wider_than_8_bits, "exhaustive over (a, b) only when both are 8 bits or less")
@cocotb.test()
async def all_pairs(dut):
    """Every (a, b) pair when both are 8 bits or less, each with c = +0, -0 and random addends."""
    tb = TB(dut)
    log_seed(dut, "all_pairs")
    rng = rng_for("all_pairs")
    a, b = (x.ravel() for x in np.meshgrid(tb.fa.all_codes(), tb.fb.all_codes(), indexing="ij"))
    addends = [np.zeros_like(a), np.full_like(a, tb.fc.sign_mask)]
    specials = tb.fc.edge_codes()
    for _ in range(4 if long_enabled() else 2):
        c = rng.integers(0, 1 << tb.fc.width, a.size)
        c = np.where(rng.random(a.size) < 0.1, rng.choice(specials, a.size), c)
        addends.append(c)
    for k, c in enumerate(addends):
        await tb.run_and_check(a, b, c, rng, f"all_pairs addend set {k}")


@cocotb.test()
async def random_operands(dut):
    """Random triples, addends often near -a*b."""
    tb = TB(dut)
    log_seed(dut, "random_operands")
    rng = rng_for("random_operands")
    n = 1_200_000 if long_enabled() else 150_000
    a, b, c = random_triples(tb, rng, n)
    y = await tb.run_and_check(a, b, c, rng, "random_operands")
    if (tb.fa, tb.fb, tb.fc) == (parse_format("fp16"),) * 3 and tb.rounding == "rne":
        ref = binary16_fma(a, b, c)
        nan = tb.fc.is_nan(ref)
        assert np.array_equal(y[~nan], ref[~nan]), "differs from IEEE 754 binary16 FMA"
        assert np.all(tb.fc.is_nan(y[nan]))


@cocotb.test()
async def directed_corners(dut):
    tb = TB(dut)
    log_seed(dut, "directed_corners")
    rng = rng_for("directed_corners")
    a, b, c = directed_triples(tb, rng)
    await tb.run_and_check(a, b, c, rng, "directed_corners")


CONFIGS = {
    "e5m2-e6m9-rne": {"a_format": "e5m2", "acc_format": "e6m9", "rounding": "rne"},
    "e5m2-e6m9-rtz": {"a_format": "e5m2", "acc_format": "e6m9", "rounding": "rtz"},
    "e5m2-e6m9-rna-stages2": {"a_format": "e5m2", "acc_format": "e6m9", "rounding": "rna", "stages": 2},
    "e5m2-e6m9-sr-port": {"a_format": "e5m2", "acc_format": "e6m9", "rounding": "sr", "rand_bits": 8},
    "e5m2-e6m9-sr-lfsr-stages3": {"a_format": "e5m2", "acc_format": "e6m9", "rounding": "sr",
                                  "rand_bits": 6, "rand_source": "lfsr", "stages": 3, "seed": 0x1D},
    "hfp8-e4m3xe5m2-fp16_e6m9-rne-stages2": {"a_format": "fp8_e4m3", "b_format": "e5m2",
                                             "acc_format": "fp16_e6m9", "rounding": "rne", "stages": 2},
    "nosub-e5m2-e6m9-rne": {"a_format": "e5m2:nosub", "acc_format": "e6m9:nosub", "rounding": "rne"},
    "fp16-ieee-rne": {"a_format": "fp16", "acc_format": "fp16", "rounding": "rne"},
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_fp8_fma(config, record_property):
    run_cocotb("fp8_fma", CONFIGS[config], module=__name__, record=record_property)
