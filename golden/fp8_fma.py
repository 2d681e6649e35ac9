"""Golden model of the fused multiply-add ``y = round(a*b + c)`` (``docs/arithmetic.md`` section 5).

``a`` and ``b`` may have different formats; ``c`` and ``y`` share the accumulation format. The product
and the sum are exact (:func:`golden.raw.mul_raw`, :func:`golden.raw.add_raw`) and rounded once
(:func:`golden.raw.round_raw`): a fused operation.
"""

from __future__ import annotations

import numpy as np

from .checks import check_rand_bits, check_rounding
from .formats import float_format_param
from .raw import add_raw, mul_raw, round_raw, unpack

__all__ = ["fma", "check_fma_formats"]

_BLOCK = 1 << 16


def check_fma_formats(a_format, b_format, acc_format):
    """Parse and validate the three formats (radix 2 floats); return them."""
    return (float_format_param("a_format", a_format), float_format_param("b_format", b_format),
            float_format_param("acc_format", acc_format))


def fma(a, b, c, a_format="fp8_e5m2", b_format=None, acc_format="e6m9", rounding="rne",
        rbits=None, rand_bits=None):
    """``round(a*b + c)`` on code arrays (broadcast together); returns codes of ``acc_format``.

    ``rbits`` are the random bits of ``rounding="sr"`` (``0 <= r < 2**rand_bits``), one per result.
    """
    fa, fb, fc = check_fma_formats(a_format, a_format if b_format is None else b_format, acc_format)
    check_rounding(rounding)
    rand_bits = check_rand_bits(rand_bits, rounding)
    a, b, c = np.broadcast_arrays(np.asarray(a), np.asarray(b), np.asarray(c))
    if rbits is not None:
        rbits = np.broadcast_to(np.asarray(rbits), a.shape)
    out = np.empty(a.shape, fc.code_dtype)
    flat = [x.reshape(-1) for x in (a, b, c, out)] + ([rbits.reshape(-1)] if rbits is not None else [])
    # Blocks small enough for the CPU caches: the same result, about twice as fast on large arrays.
    for k in range(0, flat[0].size, _BLOCK):
        part = [x[k:k + _BLOCK] for x in flat]
        prod = mul_raw(unpack(fa, part[0]), unpack(fb, part[1]))
        total = add_raw(prod, unpack(fc, part[2]))
        part[3][...] = round_raw(fc, total, rounding, rbits=part[4] if rbits is not None else None,
                                 rand_bits=rand_bits)
    return out
