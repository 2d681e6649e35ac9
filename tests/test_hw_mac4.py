# amaranth: UnusedElaboratable=no
"""hw.mac4 in Amaranth's simulator against golden.mac4: every lane product, the sum's extremes and
widths, the three modes, pipelining with bubbles, parameter errors, and no multiplier anywhere.

(The full verification runs on Verilator in tb/test_mac4.py.) ``simutil.run_comb`` takes int64
arrays, so packed lane ports stay below 64 bits here (at most 15 lanes).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from golden.formats import parse_format
from golden.mac4 import (OFFSET_MAX, OFFSET_MIN, int4_dot, int4_product_range, int4_sum_width,
                         mac4_acc, mac4_dot, product_range, sum_width)
from hw.mac4 import CUTS, MAC4
from golden.mac4 import int4_acc, to_signed
from hw.units import get_unit
from simutil import run_comb


def pack(codes):
    """Lane codes (..., N) packed into one integer per row, lane 0 lowest (int64: N <= 15)."""
    codes = np.asarray(codes, dtype=np.int64)
    return sum(codes[..., i] << (4 * i) for i in range(codes.shape[-1]))


def every_combination(lanes, stride=37):
    """(a, b, phase) for 512 beats: per phase, lane ``i`` sees all 256 code pairs (rotated by i)."""
    k = np.arange(256)
    pairs = (k[:, None] + stride * np.arange(lanes)[None, :]) % 256
    a = np.concatenate([pairs & 15, pairs & 15])
    b = np.concatenate([pairs >> 4, pairs >> 4])
    return a, b, np.repeat([0, 1], 256)


def run_dot(dut, x, g, phase, offset):
    s, lsb = run_comb(dut, [(dut.x, pack(x)), (dut.g, pack(g)), (dut.phase, phase),
                            (dut.offset, np.asarray(offset) & 0xFF)], [dut.sum, dut.lsb_exp])
    return to_signed(s, len(dut.sum)), to_signed(lsb, len(dut.lsb_exp))


# -- dot: every product, the extremes, the widths ----------------------------------------------------

@pytest.mark.parametrize("lanes", [1, 3, 15])
@pytest.mark.parametrize("x_signed", [True, False])
def test_dot_every_lane_product(lanes, x_signed):
    """All 16 x 16 x 2 (x, g, phase) combinations in every lane, with random offsets."""
    rng = np.random.default_rng(lanes)
    x, g, phase = every_combination(lanes)
    offset = rng.integers(OFFSET_MIN, OFFSET_MAX + 1, len(phase))
    dut = MAC4(lanes, "dot", x_signed=x_signed)
    s, lsb = run_dot(dut, x, g, phase, offset)
    es, el = mac4_dot(x, g, phase, offset, lanes, x_signed)
    assert np.array_equal(s, es) and np.array_equal(lsb, el)


@pytest.mark.parametrize("lanes", [1, 2, 7, 8, 15])
@pytest.mark.parametrize("x_signed", [True, False])
def test_dot_extremes(lanes, x_signed):
    """All lanes at the largest product of each sign (phase 1, e = 7), and one unit short of it."""
    big = 8 if x_signed else 15
    rows = [  # (x, g): g = 0x7 is +64, 0xF is -64
        (big, 0x7), (big, 0xF), (7, 0x7), (7, 0xF), (1, 0x1), (1, 0x9), (0, 0xF), (big, 0x0), (big, 0x8)]
    x = np.array([[r[0]] * lanes for r in rows])
    g = np.array([[r[1]] * lanes for r in rows])
    phase = np.ones(len(rows), np.int64)
    dut = MAC4(lanes, "dot", x_signed=x_signed)
    s, _ = run_dot(dut, x, g, phase, np.zeros(len(rows), np.int64))
    es, _ = mac4_dot(x, g, phase, 0, lanes, x_signed)
    assert np.array_equal(s, es)
    lo, hi = product_range(x_signed)
    assert {lanes * lo, lanes * hi} <= set(s.tolist())      # both ends of the range are reached


def test_dot_every_offset():
    offset = np.arange(OFFSET_MIN, OFFSET_MAX + 1)
    dut = MAC4(2, "dot")
    x, g = np.tile([[3, 12]], (len(offset), 1)), np.tile([[0x2, 0xB]], (len(offset), 1))
    s, lsb = run_dot(dut, x, g, offset & 1, offset)
    es, el = mac4_dot(x, g, offset & 1, offset, 2)
    assert np.array_equal(s, es) and np.array_equal(lsb, el)
    assert lsb.min() == OFFSET_MIN - 6 and lsb.max() == OFFSET_MAX - 6


@pytest.mark.parametrize("lanes", [1, 2, 8, 16, 31, 256])
@pytest.mark.parametrize("x_signed", [True, False])
def test_widths(lanes, x_signed):
    """Ports are exactly as wide as golden.mac4 says: the sum's width is the minimal one."""
    dot = MAC4(lanes, "dot", x_signed=x_signed)
    assert (len(dot.x), len(dot.g), len(dot.phase), len(dot.offset)) == (4 * lanes, 4 * lanes, 1, 8)
    assert len(dot.sum) == dot.sum_width == sum_width(lanes, x_signed) and len(dot.lsb_exp) == 9
    acc = MAC4(lanes, "acc", x_signed=x_signed, acc_format="e6m9")
    assert len(acc.sum) == sum_width(lanes, x_signed) and len(acc.acc_in.as_value()) == 16
    assert not hasattr(acc, "rand") and not hasattr(acc, "valid_in")
    sr = MAC4(lanes, "acc", rounding="sr", rand_bits=5, stages=2)
    assert len(sr.rand) == 5 and len(sr.valid_in) == len(sr.valid_out) == 1
    for w_signed in (True, False):
        fwd = MAC4(lanes, "int", x_signed=x_signed, w_signed=w_signed, acc_bits=40)
        assert len(fwd.sum) == int4_sum_width(lanes, x_signed, w_signed)
        assert len(fwd.w) == 4 * lanes and len(fwd.acc_in) == len(fwd.acc_out) == 40
        assert not hasattr(fwd, "g") and not hasattr(fwd, "lsb_exp")


# -- acc: one rounding into the accumulator format -----------------------------------------------

ACC_CASES = [
    (3, True, "e6m9", "rne"), (3, False, "e6m9", "rna"), (3, True, "fp16_e6m9", "rtz"),
    (2, True, "e6m9", "sr"), (5, True, "fp16", "rne"), (4, True, "e5m2", "rne"),
    (1, False, "e4m3:fn", "rtz"), (15, True, "e6m9", "rne"),
]


@pytest.mark.parametrize("lanes, x_signed, fmt, rounding", ACC_CASES)
def test_acc(lanes, x_signed, fmt, rounding):
    rng = np.random.default_rng(lanes * 7 + len(fmt))
    f = parse_format(fmt)
    n = 500
    x = rng.integers(0, 16, (n, lanes))
    g = rng.integers(0, 16, (n, lanes))
    phase = rng.integers(0, 2, n)
    offset = np.where(rng.random(n) < 0.2, rng.integers(OFFSET_MIN, OFFSET_MAX + 1, n),
                      rng.integers(-30, 10, n))
    s, lsb = mac4_dot(x, g, phase, offset, lanes, x_signed)
    with np.errstate(all="ignore"):
        near = f.encode(-np.ldexp(s.astype(np.float64), lsb))          # cancellations
    acc = rng.integers(0, 1 << f.width, n)
    pick = rng.random(n)
    acc = np.where(pick < 0.3, near, np.where(pick < 0.4, rng.choice(f.edge_codes(), n), acc))
    R = 6 if rounding == "sr" else None
    rbits = rng.integers(0, 1 << 6, n) if R else None
    dut = MAC4(lanes, "acc", x_signed=x_signed, acc_format=fmt, rounding=rounding, rand_bits=R or 8)
    drive = [(dut.x, pack(x)), (dut.g, pack(g)), (dut.phase, phase), (dut.offset, offset & 0xFF),
             (dut.acc_in.as_value(), acc)]
    if R:
        drive.append((dut.rand, rbits))
    y, total, el = run_comb(dut, drive, [dut.acc_out.as_value(), dut.sum, dut.lsb_exp])
    expected = mac4_acc(acc, x, g, phase, offset, f, rounding, rbits=rbits, rand_bits=R, x_signed=x_signed,
                        lanes=lanes).astype(np.int64)
    assert np.array_equal(y, expected)
    assert np.array_equal(to_signed(total, len(dut.sum)), s) and np.array_equal(to_signed(el, 9), lsb)


# -- int: INT4 x INT4 with a wrapping integer accumulator ------------------------------------------

@pytest.mark.parametrize("x_signed, w_signed", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("lanes", [2, 15])
def test_int(lanes, x_signed, w_signed):
    """Every x * w pair in every lane, the extremes, and the accumulator's wrap at its minimal width."""
    rng = np.random.default_rng(lanes)
    x, w, _ = every_combination(lanes)
    x, w = x[:256], w[:256]
    lo, hi = int4_product_range(x_signed, w_signed)
    # Rows of all-largest and all-smallest products.
    ext = [(a, b) for a in range(16) for b in range(16)
           if int4_dot([a], [b], x_signed, w_signed) in (lo, hi)]
    x = np.concatenate([x, [[a] * lanes for a, _ in ext]])
    w = np.concatenate([w, [[b] * lanes for _, b in ext]])
    for acc_bits in (int4_sum_width(lanes, x_signed, w_signed), 32, 63):
        dut = MAC4(lanes, "int", x_signed=x_signed, w_signed=w_signed, acc_bits=acc_bits)
        top = (1 << acc_bits) - 1
        acc = rng.integers(0, top, len(x), dtype=np.int64, endpoint=True)
        acc[:8] = [0, 1, top >> 1, (top >> 1) + 1, top >> 2, 3 << (acc_bits - 2), 5, top]
        total, acc_out = run_comb(dut, [(dut.x, pack(x)), (dut.w, pack(w)), (dut.acc_in, acc)],
                                  [dut.sum, dut.acc_out])
        assert np.array_equal(to_signed(total, len(dut.sum)), int4_dot(x, w, x_signed, w_signed))
        expected = int4_acc(acc, x, w, x_signed, w_signed, acc_bits)
        assert np.array_equal(acc_out.astype(np.uint64), expected)


# -- pipelining: latency, valid, bubbles -------------------------------------------------------------

def run_pipelined(dut, drive, read, rng, idle=0.3, drain=20):
    """Drive rows with random idle cycles (inputs random while idle); return the outputs of every
    cycle with ``valid_out``, in order, until ``drain`` cycles after the last row."""
    arrays = [np.asarray(a).astype(np.int64) for _, a in drive]
    n = len(arrays[0])
    got = [[] for _ in read]

    async def testbench(ctx):
        k, tail = 0, 0
        while tail < drain:
            if ctx.get(dut.valid_out):
                for j, value in enumerate(read):
                    got[j].append(ctx.get(value))
            if k < n and rng.random() >= idle:
                for (value, _), arr in zip(drive, arrays):
                    ctx.set(value, int(arr[k]))
                ctx.set(dut.valid_in, 1)
                k += 1
            else:
                for value, _ in drive:
                    ctx.set(value, int(rng.integers(0, 1 << min(len(value), 62))))
                ctx.set(dut.valid_in, 0)
                tail += k == n
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return [np.array(v, dtype=np.int64) for v in got]


@pytest.mark.parametrize("mode, stages", [
    ("dot", 1), ("dot", 2), ("dot", 3), ("int", 1), ("int", 2), ("int", 4),
    *[("acc", k) for k in range(1, len(CUTS["acc"]) + 2)]])
def test_pipelined(mode, stages):
    rng = np.random.default_rng(stages)
    lanes, n = 5, 300
    x = rng.integers(0, 16, (n, lanes))
    b = rng.integers(0, 16, (n, lanes))
    if mode == "int":
        dut = MAC4(lanes, "int", stages=stages, acc_bits=20)
        acc = rng.integers(0, 1 << 20, n)
        total, acc_out = run_pipelined(dut, [(dut.x, pack(x)), (dut.w, pack(b)), (dut.acc_in, acc)],
                                       [dut.sum, dut.acc_out], rng)
        assert np.array_equal(to_signed(total, len(dut.sum)), int4_dot(x, b, True, True))
        assert np.array_equal(acc_out.astype(np.uint64), int4_acc(acc, x, b, True, True, 20))
        return
    phase = rng.integers(0, 2, n)
    offset = rng.integers(-20, 5, n)
    drive = [(None, pack(x)), (None, pack(b)), (None, phase), (None, offset & 0xFF)]
    dut = MAC4(lanes, mode, stages=stages, rounding="sr", rand_bits=4)
    drive = [(port, arr) for port, (_, arr) in zip([dut.x, dut.g, dut.phase, dut.offset], drive)]
    read = [dut.sum, dut.lsb_exp]
    if mode == "acc":
        acc = rng.integers(0, 1 << 16, n)
        rbits = rng.integers(0, 16, n)
        drive += [(dut.acc_in.as_value(), acc), (dut.rand, rbits)]
        read.append(dut.acc_out.as_value())
    outs = run_pipelined(dut, drive, read, rng)
    s, lsb = mac4_dot(x, b, phase, offset, lanes)
    assert np.array_equal(to_signed(outs[0], len(dut.sum)), s)
    assert np.array_equal(to_signed(outs[1], 9), lsb)
    if mode == "acc":
        expected = mac4_acc(acc, x, b, phase, offset, "e6m9", "sr", rbits=rbits, rand_bits=4)
        assert np.array_equal(outs[2], expected.astype(np.int64))


def test_latency_is_stages():
    """One beat in an otherwise idle pipeline comes out exactly ``stages`` cycles later."""
    for stages in (1, 4, 7):
        dut = MAC4(2, "acc", stages=stages)
        seen = []

        async def testbench(ctx):
            ctx.set(dut.valid_in, 1)
            for cycle in range(stages + 4):
                seen.append(ctx.get(dut.valid_out))
                await ctx.tick()
                ctx.set(dut.valid_in, 0)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(testbench)
        sim.run()
        assert seen == [int(c == stages) for c in range(stages + 4)]


# -- parameters, registry, netlist -------------------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"lanes": 0}, "lanes must be between 1 and 256, not 0"),
    ({"lanes": 257}, "lanes must be between 1 and 256"),
    ({"lanes": 2.0}, "lanes must be an integer"),
    ({"lanes": True}, "lanes must be an integer"),
    ({"mode": "fma"}, "mode must be one of dot, acc, int, not 'fma'"),
    ({"x_signed": 1}, "x_signed must be True or False"),
    ({"mode": "int", "w_signed": "yes"}, "w_signed must be True or False"),
    ({"stages": -1}, "stages must be between 0 and 16"),
    ({"stages": 17}, "stages must be between 0 and 16"),
    ({"mode": "acc", "acc_format": "int4"}, "acc_format must be a radix-2 float format, not int4"),
    ({"mode": "acc", "acc_format": "fp4_r4"}, "acc_format must be a radix-2 float format, not fp4_r4"),
    ({"mode": "acc", "acc_format": "e9m99"}, "acc_format"),
    ({"mode": "acc", "rounding": "up"}, "rounding must be one of"),
    ({"mode": "acc", "rounding": "sr", "rand_bits": 0}, "rand_bits must be between 1 and 32"),
    ({"mode": "acc", "rounding": "sr", "rand_bits": 33}, "rand_bits must be between 1 and 32"),
    ({"mode": "int", "acc_bits": 10}, r"acc_bits must be between 11 \(the sum's width\) and 64, not 10"),
    ({"mode": "int", "acc_bits": 65}, "acc_bits must be between"),
])
def test_parameter_errors(params, message):
    with pytest.raises(ValueError, match=message) as info:
        MAC4(**params)
    assert "\n" not in str(info.value)


def test_unused_parameters_are_ignored():
    """Parameters of other modes are not validated and change nothing in the design (the registry
    passes every default)."""
    from amaranth.back import rtlil
    for mode, junk in (("dot", dict(acc_format="int4", rounding="up", rand_bits=0, acc_bits=0, w_signed=None)),
                       ("int", dict(acc_format="int4", rounding="up", rand_bits=0))):
        plain = rtlil.convert(MAC4(4, mode), name="m", emit_src=False)
        assert rtlil.convert(MAC4(4, mode, **junk), name="m", emit_src=False) == plain, mode


def test_registry():
    unit = get_unit("mac4")
    assert unit.defaults() == {"lanes": 8, "mode": "dot", "x_signed": True, "w_signed": True,
                               "acc_format": "e6m9", "rounding": "rne", "rand_bits": 8, "acc_bits": 32,
                               "stages": 0}
    dut = unit.build(lanes=unit.param("lanes").parse("16"), x_signed=unit.param("x_signed").parse("false"))
    assert (dut.lanes, dut.mode, dut.stages, len(dut.sum)) == (16, "dot", 0, sum_width(16, False))
    Fragment.get(dut, None)     # elaborates (and marks the component used)


@pytest.mark.synth
@pytest.mark.parametrize("params", [
    {"lanes": 8}, {"lanes": 3, "x_signed": False, "stages": 2},
    {"lanes": 4, "mode": "acc", "rounding": "sr", "stages": 3},
    {"lanes": 4, "mode": "int", "w_signed": False}])
def test_no_multiplier(params, tmp_path):
    """The netlist before any rewriting has no $mul (nor $macc/$div): products are shifts."""
    from hw.synth.flows import premap_cells
    cells = premap_cells(get_unit("mac4").build(**params), tmp_path)
    assert not {"$mul", "$macc", "$macc_v2", "$div", "$mod", "$pow"} & set(cells), cells
    assert "$add" in cells
