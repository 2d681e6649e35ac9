# amaranth: UnusedElaboratable=no
"""hw.quantize (luq, tpr_quantize, amax) in Amaranth's simulator against golden.quantize: small
formats exhaustively over every scale, wide ones sampled at the edges, multi-lane packing, the LFSR's
word assignment, the reducer's packets, and the parameter errors.

(The full verification, every fp16 code with a sweep of random words, runs on Verilator in
``tb/test_luq.py``, ``tb/test_tpr_quantize.py`` and ``tb/test_amax.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from golden.formats import parse_format
from golden.lfsr import lfsr_lane_words
from golden.mac4 import OFFSET_MAX, OFFSET_MIN
from golden.quantize import amax_codes, luq_quantize_codes, luq_scale_exp_range, tpr_quantize
from hw.quantize import LUQ, Amax, TPRQuantize
from hw.quantize.luq import MAX_SCALE_BITS, min_scale_bits
from simutil import run_comb


def pack(codes, width):
    """Rows of lane codes as one Python integer per row, lane 0 lowest."""
    return [sum(int(c) << (width * k) for k, c in enumerate(row)) for row in np.asarray(codes)]


def unpack(words, width, lanes):
    return np.array([[(int(w) >> (width * k)) & ((1 << width) - 1) for k in range(lanes)] for w in words])


def sample_codes(fmt, rng, n):
    """Every code of a format of at most 8 bits; else random codes, edges and codes near 1."""
    if fmt.width <= 8:
        return np.arange(1 << fmt.width)
    one = parse_format("fp32").encode(np.array([1.0]))[0] >> (23 - fmt.man_bits) if fmt.exp_bits == 8 \
        else fmt.encode(np.array([1.0]))[0]
    near = (int(one) + rng.integers(-3 << fmt.man_bits, 3 << fmt.man_bits, n // 4)) % (1 << fmt.width)
    return np.concatenate([fmt.edge_codes(), rng.integers(0, 1 << fmt.width, n), near,
                           rng.integers(0, 4 << fmt.man_bits, n // 4)])


def luq_run(dut, x, scale, rand, lanes, src):
    """Lane codes ``x`` (n, lanes) with one scale per row; returns (n, lanes) codes."""
    drive = [(dut.x, pack(x, src.width)), (dut.scale_exp, np.asarray(scale) & ((1 << len(dut.scale_exp)) - 1))]
    if rand is not None:
        drive.append((dut.rand, pack(rand, len(dut.rand) // lanes)))
    (q,) = run_comb(dut, drive, [dut.q])
    return unpack(q, 4, lanes)


# -- luq -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, rounding", [("e5m2", "rne"), ("e5m2", "sr"), ("e4m3:fn", "sr"),
                                              ("e5m2:nosub", "rne")])
def test_luq_small_sources_every_code_and_scale(source, rounding):
    """Every code with every scale_exp the port takes (the minimal width), in two lanes that see
    different codes; sr with random words."""
    src = parse_format(source)
    R = 5 if rounding == "sr" else None
    dut = LUQ(2, src, None, rounding, R or 8, "port")
    lo, hi = dut.scale_range
    codes, scales = np.meshgrid(np.arange(1 << src.width), np.arange(lo, hi + 1), indexing="ij")
    codes, scales = codes.ravel(), scales.ravel()
    x = np.stack([codes, (codes * 37 + 11) % (1 << src.width)], axis=1)
    rng = np.random.default_rng(len(source))
    rand = rng.integers(0, 1 << R, x.shape) if R else None
    q = luq_run(dut, x, scales, rand, 2, src)
    want = luq_quantize_codes(x, src, scales[:, None], rounding, rand, R)
    assert np.array_equal(q, want)
    assert {0, 7, 8, 15} <= set(q.ravel().tolist())     # zeros and saturation of both signs


@pytest.mark.parametrize("source", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize("rounding", ["rne", "sr"])
def test_luq_wide_sources_sampled(source, rounding):
    """Random and edge codes with the scale's extremes, the source's subnormal boundary and random
    scales; three lanes."""
    src = parse_format(source)
    rng = np.random.default_rng([len(source), len(rounding)])
    R = 8 if rounding == "sr" else None
    dut = LUQ(3, src, None, rounding, R or 8, "port")
    lo, hi = dut.scale_range
    codes = sample_codes(src, rng, 900)
    n = len(codes)
    x = np.stack([codes, rng.permutation(codes), rng.permutation(codes)], axis=1)
    special = np.array([lo, hi, 0, src.emin, src.emin - 1, src.emin - src.man_bits, *luq_scale_exp_range(src)])
    scales = np.where(rng.random(n) < 0.5, rng.choice(special, n), rng.integers(lo, hi + 1, n))
    rand = rng.integers(0, 1 << R, x.shape) if R else None
    q = luq_run(dut, x, scales, rand, 3, src)
    assert np.array_equal(q, luq_quantize_codes(x, src, scales[:, None], rounding, rand, R))


def test_luq_wider_scale_port():
    """A scale_exp wider than the minimum reaches far beyond the source's range: all zeros and
    saturations, no wrap-around."""
    src = parse_format("fp16")
    dut = LUQ(1, src, 12, "rne", rand_source="port")
    codes = sample_codes(src, np.random.default_rng(3), 300)
    for s in (-2048, -200, -31, 40, 2047):
        q = luq_run(dut, codes[:, None], np.full(len(codes), s), None, 1, src)
        assert np.array_equal(q, luq_quantize_codes(codes[:, None], src, s, "rne"))


def idle_pattern(rng, beats, idle=0.4):
    """``valid_in`` per cycle: ``beats`` ones with random idle cycles between them."""
    out = []
    while sum(out) < beats:
        out.append(int(rng.random() >= idle))
    return out


def clocked_run(dut, inputs, outputs, cycles_valid):
    """Drive ``inputs`` ([(signal, list)]) with ``valid_in`` following ``cycles_valid``; return the
    outputs of the cycles with ``valid_out`` high."""
    m = Module()
    m.domains.sync = ClockDomain()
    m.submodules.dut = dut
    got = []

    async def bench(ctx):
        k = 0
        for v in cycles_valid + [0] * (dut.stages + 2):
            ctx.set(dut.valid_in, v)
            if v:
                for sig, vals in inputs:
                    ctx.set(sig, vals[k])
                k += 1
            if ctx.get(dut.valid_out):                  # this cycle's outputs, before the edge
                got.append([ctx.get(o) for o in outputs])
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("stages", [0, 2])
def test_luq_lfsr_lanes_take_consecutive_words(stages):
    """With the internal LFSR the i-th valid beat's lane k uses word i*N + k (idle cycles in
    between advance nothing), pipelined or not."""
    src, N, R = parse_format("fp16"), 4, 6
    dut = LUQ(N, src, None, "sr", R, "lfsr", 17, None, 0x1ACE, stages)
    rng = np.random.default_rng(7)
    beats = 60
    x = rng.integers(0, 1 << 16, (beats, N))
    x[:, 0] = 0x3C00 + rng.integers(0, 1024, beats)        # 1.f: the rounding depends on every bit of r
    scales = rng.integers(-3, 3, beats)
    valid = idle_pattern(rng, beats)
    got = clocked_run(dut, [(dut.x, pack(x, 16)), (dut.scale_exp, (scales & 63).tolist())], [dut.q], valid)
    words = lfsr_lane_words(17, None, 0x1ACE, R, N, beats)
    want = luq_quantize_codes(x, src, scales[:, None], "sr", words, R)
    q = unpack([g[0] for g in got], 4, N)
    assert q.shape == want.shape and np.array_equal(q, want)


# -- tpr_quantize --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rounding", ["rne", "rna", "rtz", "sr"])
def test_tpr_every_e4m3_code_and_offset(rounding):
    """Every e4m3:fn code (subnormals, NaN) with every offset that leaves some code in FP4's range
    (flush and saturation on both sides of it) and the offset's extremes, both phases, two lanes."""
    src = parse_format("e4m3:fn")
    R = 4 if rounding == "sr" else None
    dut = TPRQuantize(2, src, rounding, R or 8, "port")
    offsets = [OFFSET_MIN, -60, *range(-20, 18), 60, OFFSET_MAX]
    codes, offs = np.meshgrid(np.arange(256), offsets, indexing="ij")
    codes, offs = codes.ravel(), offs.ravel()
    x = np.stack([codes, (codes * 91 + 5) % 256], axis=1)
    rng = np.random.default_rng(11)
    drive = [(dut.x, pack(x, 8)), (dut.offset, offs & 0xFF)]
    r0 = r1 = None
    if R:
        r0, r1 = rng.integers(0, 1 << R, x.shape), rng.integers(0, 1 << R, x.shape)
        drive.append((dut.rand, pack(np.concatenate([r0, r1], axis=1), R)))
    g0, g1 = run_comb(dut, drive, [dut.g0, dut.g1])
    w0, w1 = tpr_quantize(src.decode(x), rounding, (r0, r1) if R else None, R, scale_exp=offs[:, None])
    assert np.array_equal(unpack(g0, 4, 2), w0) and np.array_equal(unpack(g1, 4, 2), w1)


@pytest.mark.parametrize("source", ["fp16", "bf16", "fp32"])
def test_tpr_wide_sources_sampled(source):
    src = parse_format(source)
    rng = np.random.default_rng(len(source))
    dut = TPRQuantize(2, src, "sr", 8, "port")
    codes = sample_codes(src, rng, 900)
    x = np.stack([codes, rng.permutation(codes)], axis=1)
    n = len(codes)
    offs = np.where(rng.random(n) < 0.3, rng.choice([OFFSET_MIN, OFFSET_MAX, 0, -1, -20], n),
                    rng.integers(-40, 20, n))
    r0, r1 = rng.integers(0, 256, x.shape), rng.integers(0, 256, x.shape)
    g0, g1 = run_comb(dut, [(dut.x, pack(x, src.width)), (dut.offset, offs & 0xFF),
                            (dut.rand, pack(np.concatenate([r0, r1], axis=1), 8))], [dut.g0, dut.g1])
    w0, w1 = tpr_quantize(src.decode(x), "sr", (r0, r1), 8, scale_exp=offs[:, None])
    assert np.array_equal(unpack(g0, 4, 2), w0) and np.array_equal(unpack(g1, 4, 2), w1)


# -- amax ----------------------------------------------------------------------------------------------

def amax_run(dut, beats, lasts):
    """Send the beats (rows of lane codes) with ``last`` flags; collect the results."""
    m = Module()
    m.domains.sync = ClockDomain()
    m.submodules.dut = dut
    results = []
    width = len(dut.o.payload.as_value())

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for row, last in zip(beats, lasts):
            ctx.set(dut.i.payload.as_value(), pack([row], width)[0] | (last << width * len(row)))
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                results.append(ctx.get(dut.o.payload.as_value()))
        ctx.set(dut.i.valid, 0)
        for _ in range(dut.latency + 2):
            await ctx.tick()
            if ctx.get(dut.o.valid):
                results.append(ctx.get(dut.o.payload.as_value()))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


def test_amax_packets():
    """Packets of random codes, NaN, Inf and -0 among them, one result per packet."""
    src = parse_format("fp16")
    rng = np.random.default_rng(5)
    N = 3
    dut = Amax(N, src)
    packets = []
    for length in (1, 4, 2, 7, 1, 3):
        codes = rng.integers(0, 1 << 16, (length, N))
        codes[codes & 0x7C00 == 0x7C00] &= 0x83FF             # mostly finite ...
        packets.append(codes)
    packets[2][1, 2] = 0xFC00                                    # -Inf
    packets[3][4, 0] = 0x7D01                                    # a NaN
    packets[4][:] = 0x8000                                       # -0 everywhere
    beats = np.concatenate(packets)
    lasts = np.concatenate([[0] * (len(p) - 1) + [1] for p in packets]).tolist()
    got = amax_run(dut, beats, lasts)
    want = [int(amax_codes(p, src)) for p in packets]
    assert got == want and want[4] == 0 and want[2] >= 0x7C00


# -- parameters ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, words", [
    (lambda: LUQ(0), ("lanes", "between 1 and 64", "0")),
    (lambda: LUQ(65), ("lanes", "65")),
    (lambda: LUQ(source="int8"), ("source", "radix-2 float", "int8")),
    (lambda: LUQ(source="fp4_r4"), ("source", "radix-2 float")),
    (lambda: LUQ(source="fix16.8"), ("source", "radix-2 float")),
    (lambda: LUQ(scale_bits=5), ("scale_bits", "between 6", "-30 ... 10", "fp16", "17", "5")),
    (lambda: LUQ(source="fp32", scale_bits=8), ("scale_bits", "between 9", "-155 ... 122", "8")),
    (lambda: LUQ(scale_bits=18), ("scale_bits", "18")),
    (lambda: LUQ(rounding="rtz"), ("rounding", "sr, rne", "rtz")),
    (lambda: LUQ(rand_bits=0), ("rand_bits", "between 1 and 32")),
    (lambda: LUQ(rand_bits=20, lfsr_width=17), ("rand_bits", "lfsr_width=17")),
    (lambda: LUQ(stages=17), ("stages", "between 0 and 16")),
    (lambda: LUQ(rand_source="dice"), ("rand_source", "port", "lfsr")),
    (lambda: TPRQuantize(0), ("lanes", "between 1 and 64")),
    (lambda: TPRQuantize(source="fp4_luq:r4"), ("source",)),
    (lambda: TPRQuantize(source="uint4"), ("source", "radix-2 float")),
    (lambda: TPRQuantize(rounding="up"), ("rounding", "rne, rna, rtz, sr")),
    (lambda: TPRQuantize(rounding="sr", seed=0), ("seed", "nonzero")),
    (lambda: Amax(0), ("lanes", "between 1 and 64")),
    (lambda: Amax(source="int4"), ("source", "radix-2 float")),
    (lambda: Amax(stages=5), ("stages", "between 0 and 4")),
])
def test_parameter_errors(make, words):
    with pytest.raises(ValueError) as info:
        make()
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_min_scale_bits():
    assert [min_scale_bits(parse_format(f)) for f in ("fp16", "bf16", "fp32", "e5m2", "e4m3:fn")] == [6, 9, 9, 6, 5]
    assert MAX_SCALE_BITS == 17
    assert LUQ(source="bf16").scale_range == (-256, 255)
