"""cocotb testbench of ``hw.mac4`` against ``golden.mac4``, bit for bit.

- every INT4 x FP4 x phase combination in every lane (512 beats, lane ``i`` rotated by ``37 i``),
  with random offsets; in ``int`` mode every INT4 x INT4 pair in every lane;
- extremes: all lanes at the largest positive and negative product (the ends of the range that sizes
  ``sum``), at the smallest and largest offsets; in ``int`` mode the ends of the product range with
  accumulators about to wrap;
- random streams with random offsets (a few ten thousand beats in CI, ``LOWBIT_LONG=1`` runs far
  more); in ``acc`` mode the accumulator is random, near ``-S`` (cancellation), or special;
- pipelined configurations with random idle cycles (inputs random while idle) and at full rate; the
  scoreboard checks every output in order and that there are exactly as many as beats sent.

``sum`` and ``lsb_exp`` are checked in every mode that has them, ``acc_out`` against ``mac4_acc`` (the
random bits of ``sr`` come in on the ``rand`` port) or against :func:`golden.mac4.int4_acc`.
"""

from __future__ import annotations

import numpy as np
import pytest

import cocotb

from common import PipelineTB, drive_comb, log_seed, rng_for
from harness import long_enabled, run_cocotb, unit_config

from golden.formats import parse_format
from golden.mac4 import (OFFSET_MAX, OFFSET_MIN, int4_dot, int4_product_range, int4_sum_width,
                         mac4_acc, mac4_dot, product_range, sum_width)
from golden.mac4 import int4_acc, to_signed
from hw.units import get_unit


def random_ints(rng, bits, n):
    """``n`` uniform ``bits``-bit integers (Python ints in an object array: up to 64 bits and more)."""
    words = rng.integers(0, 1 << 32, (n, (bits + 31) // 32))
    mask = (1 << bits) - 1
    ints = [sum(int(w) << (32 * j) for j, w in enumerate(row)) & mask for row in words]
    return np.array(ints, dtype=object)


def pack(codes):
    """Lane codes (n, N) as one Python integer per beat, lane 0 lowest."""
    codes = np.asarray(codes, dtype=np.int64)
    return [sum(int(c) << (4 * i) for i, c in enumerate(row)) for row in codes]


# -- the configuration under test --------------------------------------------------------------------

class TB:
    """The configuration under test, its drivers and its golden scoreboard."""

    def __init__(self, dut):
        self.dut = dut
        name, params = unit_config()
        self.params = p = get_unit(name).resolve(params)
        self.N, self.mode, self.stages = p["lanes"], p["mode"], p["stages"]
        self.x_signed, self.w_signed = p["x_signed"], p["w_signed"]
        self.fmt = parse_format(p["acc_format"]) if self.mode == "acc" else None
        self.rounding = p["rounding"] if self.mode == "acc" else None
        self.R = p["rand_bits"] if self.rounding == "sr" else None
        self.acc_bits = p["acc_bits"]
        if self.mode == "int":
            self.sum_width = int4_sum_width(self.N, self.x_signed, self.w_signed)
        else:
            self.sum_width = sum_width(self.N, self.x_signed)
        assert len(dut.sum) == self.sum_width
        self.pipe = PipelineTB(dut) if self.stages else None

    def outputs(self):
        if self.mode == "int":
            return ["sum", "acc_out"]
        return ["sum", "lsb_exp"] + (["acc_out"] if self.mode == "acc" else [])

    def complete(self, beats, rng):
        """Fill in the per-beat inputs a test left out (random)."""
        n = len(beats["x"])
        if self.mode == "int":
            beats.setdefault("acc", random_ints(rng, self.acc_bits, n))
            return beats
        beats.setdefault("phase", rng.integers(0, 2, n))
        beats.setdefault("offset", rng.integers(OFFSET_MIN, OFFSET_MAX + 1, n))
        if self.mode == "acc":
            beats.setdefault("acc", self.accumulators(beats, rng))
            if self.R:
                beats.setdefault("rand", rng.integers(0, 1 << self.R, n))
        return beats

    def accumulators(self, beats, rng):
        """Random codes, 30% near -S (cancellation), 10% special or extreme."""
        f, n = self.fmt, len(beats["x"])
        s, lsb = mac4_dot(beats["x"], beats["g"], beats["phase"], beats["offset"], self.N, self.x_signed)
        with np.errstate(all="ignore"):
            near = f.encode(-np.ldexp(s.astype(np.float64), lsb))
        mags = [0, 1, 1 << f.man_bits, f.max_code]
        mags += [f.inf_code] if f.has_inf else []
        mags += [f.nan_code & (f.sign_mask - 1)] if f.has_nan else []
        specials = np.array([m | sg for m in mags for sg in (0, f.sign_mask)])
        pick = rng.random(n)
        acc = rng.integers(0, 1 << f.width, n)
        return np.where(pick < 0.3, near, np.where(pick < 0.4, rng.choice(specials, n), acc)).astype(np.int64)

    async def run(self, beats, rng, idle_prob=0.3):
        if self.mode == "int":
            inputs = {"x": pack(beats["x"]), "w": pack(beats["w"]), "acc_in": beats["acc"]}
        else:
            inputs = {"x": pack(beats["x"]), "g": pack(beats["g"]), "phase": beats["phase"],
                      "offset": [int(o) & 0xFF for o in beats["offset"]]}
            if self.mode == "acc":
                inputs["acc_in"] = beats["acc"]
                if self.R:
                    inputs["rand"] = beats["rand"]
        if self.pipe is not None:
            await self.pipe.reset()
            return await self.pipe.run(inputs, self.outputs(), idle_prob, rng)
        return await drive_comb(self.dut, inputs, self.outputs())

    def expected(self, beats):
        if self.mode == "int":
            total = int4_dot(beats["x"], beats["w"], self.x_signed, self.w_signed)
            acc = np.asarray([int(a) for a in beats["acc"]], dtype=np.uint64)
            return {"sum": total, "acc_out": int4_acc(acc, beats["x"], beats["w"], self.x_signed,
                                                      self.w_signed, self.acc_bits)}
        s, lsb = mac4_dot(beats["x"], beats["g"], beats["phase"], beats["offset"], self.N, self.x_signed)
        out = {"sum": s, "lsb_exp": lsb}
        if self.mode == "acc":
            out["acc_out"] = mac4_acc(beats["acc"], beats["x"], beats["g"], beats["phase"], beats["offset"],
                                      self.fmt, self.rounding, rbits=beats.get("rand"), rand_bits=self.R,
                                      x_signed=self.x_signed, lanes=self.N)
        return out

    def check(self, beats, got, what):
        expected = self.expected(beats)
        n = len(beats["x"])
        for name, want in expected.items():
            have = got[name]
            assert len(have) == n, f"{what}: {len(have)} {name} outputs for {n} beats"
            if name in ("sum", "lsb_exp"):
                have = to_signed(have, len(getattr(self.dut, name)))
            else:
                have = np.array([int(v) for v in have], dtype=np.uint64)
            want = np.asarray(want).astype(have.dtype)
            bad = np.nonzero(have != want)[0]
            for k in bad[:5]:
                ins = {key: (v[k].tolist() if hasattr(v[k], "tolist") else v[k]) for key, v in beats.items()}
                self.dut._log.error("%s: %s: got %s, golden %s for %s", what, name, have[k], want[k], ins)
            assert len(bad) == 0, f"{what}: {len(bad)} of {n} {name} outputs differ from the golden model"

    async def run_and_check(self, beats, rng, what, idle_prob=0.3):
        beats = self.complete(beats, rng)
        got = await self.run(beats, rng, idle_prob)
        self.check(beats, got, what)


def every_pair(lanes, stride=37):
    """(a, b) of 256 beats in which lane ``i`` sees every pair of 4-bit codes (rotated by i)."""
    pairs = (np.arange(256)[:, None] + stride * np.arange(lanes)[None, :]) % 256
    return pairs & 15, pairs >> 4


# -- tests -------------------------------------------------------------------------------------------

@cocotb.test()
async def every_combination(dut):
    """Every code pair in every lane, both phases (dot, acc) or with random accumulators (int)."""
    tb = TB(dut)
    log_seed(dut, "every_combination")
    rng = rng_for("every_combination")
    a, b = every_pair(tb.N)
    if tb.mode == "int":
        await tb.run_and_check({"x": a, "w": b}, rng, "every_combination")
        return
    beats = {"x": np.concatenate([a, a]), "g": np.concatenate([b, b]), "phase": np.repeat([0, 1], 256)}
    await tb.run_and_check(beats, rng, "every_combination")


@cocotb.test()
async def extremes(dut):
    """All lanes at the largest products of both signs, the offsets' ends, accumulators at the edges."""
    tb = TB(dut)
    log_seed(dut, "extremes")
    rng = rng_for("extremes")
    N = tb.N
    if tb.mode == "int":
        lo, hi = int4_product_range(tb.x_signed, tb.w_signed)
        ends = [(a, b) for a in range(16) for b in range(16)
                if int4_dot([a], [b], tb.x_signed, tb.w_signed) in (lo, hi, 0)]
        top = (1 << tb.acc_bits) - 1
        accs = [0, 1, top, top >> 1, (top >> 1) + 1, top - 200, 200]
        rows = [(a, b, acc) for a, b in ends for acc in accs]
        beats = {"x": np.array([[a] * N for a, _, _ in rows]), "w": np.array([[b] * N for _, b, _ in rows]),
                 "acc": [acc for _, _, acc in rows]}
        await tb.run_and_check(beats, rng, "extremes")
        return
    big = 8 if tb.x_signed else 15
    pairs = [(big, 0x7), (big, 0xF), (7, 0x7), (7, 0xF), (1, 0x1), (1, 0x9), (big, 0x0), (0, 0x7)]
    rows = [(x, g, ph, off) for x, g in pairs for ph in (0, 1) for off in (OFFSET_MIN, -6, 0, OFFSET_MAX)]
    beats = {"x": np.array([[r[0]] * N for r in rows]), "g": np.array([[r[1]] * N for r in rows]),
             "phase": np.array([r[2] for r in rows]), "offset": np.array([r[3] for r in rows])}
    lo, hi = product_range(tb.x_signed)
    s, _ = mac4_dot(beats["x"], beats["g"], beats["phase"], beats["offset"], N, tb.x_signed)
    assert {N * lo, N * hi} <= set(s.tolist())       # the test reaches both ends of the range
    if tb.mode == "acc":
        # Every row against every edge accumulator: zeros, smallest and largest, Inf, NaN.
        f = tb.fmt
        mags = [0, 1, 1 << f.man_bits, f.max_code] + ([f.inf_code] if f.has_inf else []) \
            + ([f.nan_code & (f.sign_mask - 1)] if f.has_nan else [])
        edges = np.array([m | sg for m in mags for sg in (0, f.sign_mask)])
        k = len(rows)
        beats = {key: np.repeat(v, len(edges), axis=0) for key, v in beats.items()}
        beats["acc"] = np.tile(edges, k)
    await tb.run_and_check(beats, rng, "extremes")


@cocotb.test()
async def random_stream(dut):
    """Random beats with random offsets; pipelined units with idle cycles, then at full rate."""
    tb = TB(dut)
    log_seed(dut, "random_stream")
    rng = rng_for("random_stream")
    n = (400_000 if long_enabled() else 40_000) // (2 if tb.N > 8 else 1)
    x = rng.integers(0, 16, (n, tb.N))
    b = rng.integers(0, 16, (n, tb.N))
    # A tenth of the beats with all lanes alike (sums near the ends of the range).
    same = rng.random(n) < 0.1
    x[same] = x[same][:, :1]
    b[same] = b[same][:, :1]
    key = "w" if tb.mode == "int" else "g"
    beats = {"x": x, key: b}
    if tb.mode == "acc":
        # Offsets that keep S near the accumulator's range most of the time.
        beats["offset"] = np.where(rng.random(n) < 0.8, rng.integers(-40, 12, n),
                                   rng.integers(OFFSET_MIN, OFFSET_MAX + 1, n))
    half = n // 2
    first = {k: v[:half] for k, v in beats.items()}
    second = {k: v[half:] for k, v in beats.items()}
    await tb.run_and_check(first, rng, "random_stream (idle cycles)", idle_prob=0.3)
    await tb.run_and_check(second, rng, "random_stream (full rate)", idle_prob=0.0)


CONFIGS = {
    "dot-l8": {"lanes": 8},
    "dot-l16-xunsigned-s2": {"lanes": 16, "x_signed": False, "stages": 2},
    "acc-l8-rne": {"lanes": 8, "mode": "acc"},
    "acc-l4-sr-s3": {"lanes": 4, "mode": "acc", "rounding": "sr", "rand_bits": 8, "stages": 3},
    "acc-l8-rtz-fp16_e6m9": {"lanes": 8, "mode": "acc", "rounding": "rtz", "acc_format": "fp16_e6m9"},
    "acc-l16-xunsigned-rna-s7": {"lanes": 16, "mode": "acc", "x_signed": False, "rounding": "rna",
                                 "stages": 7},
    "int-l8-xunsigned-acc64": {"lanes": 8, "mode": "int", "x_signed": False, "acc_bits": 64},
}

LONG_CONFIGS = {
    "dot-l1": {"lanes": 1},
    "dot-l64-s1": {"lanes": 64, "stages": 1},
    "acc-l1-e5m2-rne-s2": {"lanes": 1, "mode": "acc", "acc_format": "e5m2", "stages": 2},
    "acc-l16-fp16-rne": {"lanes": 16, "mode": "acc", "acc_format": "fp16"},
    "acc-l16-sr16-s4": {"lanes": 16, "mode": "acc", "rounding": "sr", "rand_bits": 16, "stages": 4},
    "acc-l8-e6m9nosub-rna": {"lanes": 8, "mode": "acc", "acc_format": "e6m9:nosub", "rounding": "rna"},
    "int-l16-s3": {"lanes": 16, "mode": "int", "stages": 3},
    "int-l3-mixed-minacc": {"lanes": 3, "mode": "int", "w_signed": False, "acc_bits": 10},
}


@pytest.mark.parametrize("config", list(CONFIGS) + (list(LONG_CONFIGS) if long_enabled() else []))
def test_mac4(config, record_property):
    run_cocotb("mac4", (CONFIGS | LONG_CONFIGS)[config], module=__name__, record=record_property)
