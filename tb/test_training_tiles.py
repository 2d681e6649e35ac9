"""Hardware in the loop: GEMM tiles of real training steps through the RTL, bit for bit.

Each pytest function captures one tile (:func:`train.tiles.capture`: the operand codes a recipe's
GEMM twin fed its golden model in a seeded training step, and the result codes that step used),
saves it beside the build, and streams it through ``hw.accumulator`` on Verilator: every dot
product of the tile is one packet of beats, and every result code must equal the emulation's.

- ``fp8-wang2018``, CNN ``conv2`` backward-weight (``X^T dY``): 8 x 8 outputs of K = 4,096
  (batch 64 x 64 positions) e5m2 products each, 8 lanes, window 10, CL = 64, into e6m9: the long
  accumulation where chunking matters.
- ``int4-sun2020``, CNN ``conv2`` backward-weight: unsigned PACT INT4 activations times FP4 gradients
  (TPR phase 1, the layer's GradScale exponent as the offset), same lengths, through the mac4 front.
- ``mxfp8``, CNN ``conv2`` backward-weight: MXFP8 E4M3 activations times MXFP8 E5M2 gradients, both
  blocked along K (k = 32, E8M0 scales), through the block front (one block pair and its two scale
  codes per beat: 128 beats per dot product), into FP32, no chunking.
- ``accuracy-booster``, CNN ``conv2`` backward-weight: the recipe's main format, HBFP4 x HBFP4 (the
  conversion rounds stochastically with the step's random words, which are in the captured codes;
  the GEMM itself rounds to nearest even), same front and lengths.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from common import (StreamSink, StreamSource, accumulator_beats, accumulator_block_beats, accumulator_mac4_beats,
                    log_seed, rng_for)
from harness import BUILD, run_cocotb, unit_config

from golden.block import block_operand_param
from golden.formats import parse_format
from hw.units import get_unit

TILE_ROWS = slice(0, 8)
TILE_COLS = slice(0, 8)


@cocotb.test()
async def tile_matches_emulation(dut):
    """Stream every dot product of the tile (random idle cycles and back-pressure); each result
    code equals the training step's."""
    name, params = unit_config()
    p = get_unit(name).resolve(params)
    t = np.load(os.environ["LOWBIT_TILE"])
    a, b, want = t["a"], t["b"], t["codes"]
    N = p["lanes"]
    rng = rng_for("tile")
    log_seed(dut, "tile_matches_emulation")
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i__valid.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    if p["front"] == "block":
        fa = block_operand_param("a_format", p["a_format"])
        fb = block_operand_param("b_format", p["b_format"] or p["a_format"])
    payloads = []
    for m in range(a.shape[0]):
        for n in range(b.shape[1]):
            if p["front"] == "mac4":
                payloads += accumulator_mac4_beats(a[m], b[:, n], int(t["phase"]), int(t["offset"]), N)
            elif p["front"] == "block":
                payloads += accumulator_block_beats(a[m], t["a_scales"][m], b[:, n], t["b_scales"][:, n], fa.k,
                                                    fa.element.width, fb.element.width)
            else:
                payloads += accumulator_beats(a[m], b[:, n], N, parse_format(p["a_format"]).width,
                                              parse_format(p["b_format"] or p["a_format"]).width)
    source = StreamSource(dut, "i")
    sink = StreamSink(dut, "o", stall_prob=0.2, rng=rng)
    sink.start()
    await source.send(payloads, idle_prob=0.1, rng=rng)
    expected = [int(c) for c in want.ravel()]
    for _ in range(400):
        if len(sink.received) >= len(expected):
            break
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 4 * (p["stages"] + 3) + 8)      # anything more would be a duplicate
    sink.stop()
    got = sink.received
    assert len(got) == len(expected), f"{len(got)} results for {len(expected)} dot products"
    bad = [k for k, (g, e) in enumerate(zip(got, expected)) if g != e]
    for k in bad[:5]:
        dut._log.error("dot product %d: RTL %#x, emulation %#x", k, got[k], expected[k])
    assert not bad, f"{len(bad)} of {len(got)} results differ from the training emulation"


TILES = {
    "fp8-wang2018-cnn-conv2-bwd_weight": ("fp8-wang2018", "cnn", "conv2", "bwd_weight"),
    "int4-sun2020-cnn-conv2-bwd_weight": ("int4-sun2020", "cnn", "conv2", "bwd_weight"),
    "mxfp8-cnn-conv2-bwd_weight": ("mxfp8", "cnn", "conv2", "bwd_weight"),
    "accuracy-booster-cnn-conv2-bwd_weight": ("accuracy-booster", "cnn", "conv2", "bwd_weight"),
}


@pytest.mark.parametrize("tile", list(TILES))
def test_training_tile(tile, record_property):
    from train.tiles import capture
    t = capture(*TILES[tile], seed=0, step=0).sub(TILE_ROWS, TILE_COLS)
    assert t.a.shape == (8, 4096) and t.b.shape == (4096, 8)
    if t.config.get("front") == "block":
        assert t.a_scales.shape == (8, 128) and t.b_scales.shape == (128, 8)      # blocks of 32 along K
    path = BUILD / "tiles" / f"{tile}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **t.arrays())
    run_cocotb(t.unit, t.config, module=__name__, extra_env={"LOWBIT_TILE": str(path)}, record=record_property)
