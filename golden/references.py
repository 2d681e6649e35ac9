"""Independent reference implementations used to check the golden models (not used by them).

:func:`binary16_fma` is IEEE 754 binary16 fused multiply-add built from NumPy's float64 arithmetic
and its float64 -> float16 conversion alone, sharing nothing with :mod:`golden.raw`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binary16_fma"]


def binary16_fma(a, b, c):
    """``round_rne(a*b + c)`` on binary16 codes (uint16 arrays), per IEEE 754.

    ``a*b`` is exact in float64 (22 bits); TwoSum gives ``hi + lo == a*b + c`` exactly; rounding
    ``hi`` to odd (nudging it toward the exact sum when ``lo != 0`` and ``hi`` is even) keeps enough
    information for NumPy's float64 -> float16 conversion (round to nearest even) to round once
    correctly (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
    using rounding to odd", IEEE Trans. Computers, 2008). NaN results come back as NumPy's NaN code.
    """
    fa, fb, fc = (np.asarray(x).astype(np.uint16).view(np.float16).astype(np.float64) for x in (a, b, c))
    with np.errstate(invalid="ignore", over="ignore"):
        p = fa * fb
        hi = p + fc
        bb = hi - p
        lo = (p - (hi - bb)) + (fc - bb)
        finite = np.isfinite(hi) & np.isfinite(lo)
        even = (hi.view(np.int64) & 1) == 0
        nudge = finite & (lo != 0) & even
        odd = np.where(nudge, np.nextafter(hi, np.where(lo > 0, np.inf, -np.inf)), hi)
        return odd.astype(np.float16).view(np.uint16).astype(np.int64)
