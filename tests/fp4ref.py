"""Independent references for the radix-4 FP4 gradient format (``fp4_r4``), shared by the golden
tests of :mod:`golden.mac4` and :mod:`golden.quantize`."""

from fractions import Fraction

import numpy as np

from golden.formats import parse_format

FP4 = parse_format("fp4_r4")
FP4_VALUES = [Fraction(float(v)) for v in FP4.decode(np.arange(16))]   # the format's own decode


def fp4_frac(code, phase=0, scale_exp=0):
    """Exact value of an FP4 code read with ``phase``: decode(code) * 2**phase * 2**scale_exp."""
    return FP4_VALUES[int(code)] * Fraction(2) ** int(phase + scale_exp)


def grid(phase, scale_exp=0):
    """Every FP4 value for a phase: 0 and ±4**k * 2**phase * 2**scale_exp, k = -3 ... 3."""
    mags = [Fraction(4) ** k * Fraction(2) ** (phase + scale_exp) for k in range(-3, 4)]
    return [Fraction(0)] + mags + [-m for m in mags]
