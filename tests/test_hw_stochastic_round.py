"""hw.stochastic_round in Amaranth's simulator: exhaustive conversions whose corners once broke.

(The full verification runs on Verilator in tb/test_stochastic_round.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from golden.formats import parse_format
from golden.stochastic_round import round_codes
from hw.stochastic_round import StochasticRound
from simutil import run_comb


@pytest.mark.parametrize("source, target, rounding", [
    ("fp16", "fp32", "rne"),        # widening: the source significand is padded below
    ("fp16", "bf16", "rne"),        # subnormal sources normalized against a far lower emin
    ("fp16", "bf16", "rtz"),
    ("ufix4.0", "e5m2", "rna"),     # a fixed-point source narrower than the target's precision
])
def test_conversion_exhaustive(source, target, rounding):
    dut = StochasticRound(source, target, rounding)
    codes = parse_format(source).all_codes()
    (y,) = run_comb(dut, [(dut.x, codes)], [dut.y.as_value()])
    expected = round_codes(codes, source, target, rounding).astype(np.int64)
    assert np.array_equal(y, expected)
