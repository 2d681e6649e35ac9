"""Golden helper for ``mac4``'s integer accumulator, missing from :mod:`golden.mac4`.

Forward mode (``docs/arithmetic.md`` section 8.4) with an ``acc_bits``-bit two's-complement
accumulator: ``acc_out = acc_in + int4_dot(x, w)`` **wrapping around** modulo ``2**acc_bits`` (no
saturation), as in the int32 accumulators of integer GEMM libraries; the wrap can only occur after
many beats, since ``acc_bits`` is at least the width of one beat's sum. Codes are the unsigned
``acc_bits``-bit patterns. Meant to move to :mod:`golden.mac4`.
"""

from __future__ import annotations

import numpy as np

from golden.mac4 import int4_dot

__all__ = ["int4_acc", "to_signed"]


def int4_acc(acc_codes, x, w, x_signed, w_signed, acc_bits):
    """New accumulator codes ``(acc + sum_i x_i * w_i) mod 2**acc_bits`` (uint64).

    ``acc_codes`` are ``acc_bits``-bit two's-complement codes (``0 ... 2**acc_bits - 1``) broadcast
    against the leading shape of ``x`` and ``w`` (4-bit codes, lanes on the last axis).
    """
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer)) or not 1 <= acc_bits <= 64:
        raise ValueError(f"acc_bits must be an integer between 1 and 64, not {acc_bits!r}")
    acc = np.asarray(acc_codes)
    if acc.dtype.kind not in "iu":
        raise ValueError(f"acc_codes must be integers, not {acc.dtype} values")
    mask = np.uint64((1 << acc_bits) - 1) if acc_bits < 64 else np.uint64(0xFFFF_FFFF_FFFF_FFFF)
    if np.any(acc.astype(np.uint64) & ~mask) or np.any(acc < 0):
        raise ValueError(f"acc_codes must be between 0 and 2**{acc_bits} - 1")
    s = int4_dot(x, w, x_signed, w_signed).astype(np.uint64)      # two's complement mod 2**64
    return (acc.astype(np.uint64) + s) & mask


def to_signed(codes, bits):
    """Two's-complement ``bits``-bit codes (``0 ... 2**bits - 1``) as int64 values."""
    c = np.asarray(codes)
    if c.dtype == object:
        return np.array([int(v) - ((int(v) >> (bits - 1) & 1) << bits) for v in c.ravel()],
                        dtype=np.int64).reshape(c.shape)
    if c.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, not {c.dtype} values")
    c = c.astype(np.uint64).view(np.int64)            # integer casts wrap; exact for bits = 64
    if bits == 64:
        return c
    return np.where(c >> (bits - 1) & 1, c - (1 << bits), c)
