"""The 4-bit training arithmetic of Sun et al. 2020: radix-4 FP4 gradients times INT4, exactly.

Golden model of the 4-bit multiply-accumulate of X. Sun et al., "Ultra-Low Precision 4-bit Training of
Deep Neural Networks", NeurIPS 2020 (IBM): INT4 activations and weights, radix-4 FP4 gradients with
two-phase rounding (TPR) and per-layer power-of-two gradient scaling (GradScale), products summed
exactly and added to a floating-point accumulator with one rounding. Everything is a pure, vectorized
function over NumPy arrays; stochastic rounding takes its random bits as an argument. The text below
is the specification (``docs/arithmetic.md``, 4-bit MAC section).

Operands
--------
* FP4 gradient code ``g`` (preset ``fp4_r4`` = ``e3m0:r4:bias=4:nosub:finite``): sign ``s`` = bit 3,
  exponent field ``e`` = bits 0-2. ``e = 0`` is zero (either sign); ``e > 0`` is ``(-1)**s * 4**(e-4)``,
  magnitudes ``4**-3 ... 4**3``.
* Two-phase rounding: a gradient tensor is quantized twice, phase 0 onto the grid ``±4**k`` and phase 1
  onto ``±2*4**k``. Both use the same codes; with phase ``ph`` a code is worth
  ``value(g, ph) = (-1)**s * 4**(e-4) * 2**ph`` (the multiplier shifts one bit further when
  ``ph = 1``). Sun et al. feed one phase to the input-gradient GEMM and the other to the
  weight-gradient GEMM; the model takes the phase as an argument (one phase per dot product).
* INT4 operand ``x``: the 4-bit code read as two's complement ``-8 ... 7`` (``x_signed=True``) or as
  unsigned ``0 ... 15`` (``x_signed=False``, PACT activations).

Exact dot product (``mac4_dot``)
--------------------------------
One beat of an ``N``-lane unit computes ``S = sum_i x_i * value(g_i, ph) * 2**offset`` where ``offset``
is a signed integer (one per dot product, ``OFFSET_MIN <= offset <= OFFSET_MAX``) carrying the
power-of-two scales (GradScale's ``scale_exp`` and any power-of-two operand scales). ``S`` is returned
exactly as a two's-complement integer ``sum`` with LSB weight ``2**lsb_exp``, ``lsb_exp = offset - 6``:
lane ``i`` contributes ``p_i = 0`` if ``e_i = 0`` and otherwise
``p_i = (-1)**s_i * x_i * 2**(2*(e_i-1) + ph)``, so ``S = 2**lsb_exp * sum_i p_i``. The shift
``2*(e-1) + ph`` is in ``0 ... 13``. Per lane ``|p_i| <= max|x| * 2**13`` with ``max|x| = 8`` (signed) or
``15`` (unsigned), and because the gradient carries its own sign both signs are reached:
``p_i`` ranges over ``[-2**16, 2**16]`` (signed ``x``: ``(-8) * (-2**13) = +2**16``) or
``[-15*2**13, 15*2**13]`` (unsigned ``x``). ``N`` lanes sum to ``[N*lo, N*hi]`` and
:func:`sum_width` is the minimal two's-complement width holding that whole range:
``17 + bit_length(N)`` bits for signed ``x`` (18, 21, 22 bits for 1, 8, 16 lanes) and
``1 + bit_length(N * 15 * 2**13)`` for unsigned ``x`` (18, 21, 22 bits for 1, 8, 16 lanes).

Accumulate (``mac4_acc``)
-------------------------
``acc' = round(acc + S)`` into the accumulator's float format with ONE rounding (any rounding mode of
``docs/arithmetic.md`` section 2, including ``sr`` with explicit random bits): the exact integer sum
becomes the exact value ``sum * 2**lsb_exp``, is added exactly (up to a sticky bit) to the decoded
accumulator and rounded by :func:`golden.raw.round_raw`. Special accumulator values propagate (NaN
stays NaN, ±Inf stays ±Inf since ``S`` is finite); an exact zero result is +0.
``|sum| <= MAX_LANES * 2**16 = 2**36`` keeps the integer within ``add_raw``'s 49-bit operand limit.

Forward mode (``int4_dot``)
---------------------------
INT4 x INT4 with an integer accumulator: ``sum_i x_i * w_i`` exactly (int64), each operand signed or
unsigned; :func:`int4_sum_width` is the minimal two's-complement width of the ``N``-lane sum range
(per-lane products ``[-56, 64]`` signed x signed, ``[-120, 105]`` mixed, ``[0, 225]`` unsigned).

The quantizers that produce these operands (FP4 with two-phase rounding, GradScale, PACT, SAWB,
max-abs INT4) are in :mod:`golden.quantize`.
"""

from __future__ import annotations


from math import prod

import numpy as np

from . import kernels
from .accumulator import accumulate_sums, check_params, kernel_words, run_kernel
from .checks import check_bool, check_codes, check_int, check_int_array, check_rand_bits, check_rounding
from .formats import float_format_param, parse_format
from .raw import Raw, add_raw, from_int, round_raw, unpack

__all__ = [
    "FP4", "INT4", "UINT4", "LSB_EXP_SHIFT", "MAX_SHIFT", "MAX_LANES", "OFFSET_MIN", "OFFSET_MAX",
    "SCALE_EXP_LIMIT", "check_phase", "check_offset", "check_scale_exp",
    "product_range", "sum_range", "sum_width", "int4_product_range", "int4_sum_width", "twos_width",
    "fp4_value", "mac4_products", "mac4_dot", "mac4_acc", "int4_dot", "int4_acc", "to_signed", "dot_mac4",
    "gemm_mac4", "gemm_int4",
]

FP4 = parse_format("fp4_r4")
INT4 = parse_format("int4")
UINT4 = parse_format("uint4")

#: ``lsb_exp = offset + LSB_EXP_SHIFT``: the smallest product magnitude is ``4**-3 = 2**-6``.
LSB_EXP_SHIFT = -6
#: Largest product shift ``2*(e-1) + ph`` (``e = 7``, ``ph = 1``).
MAX_SHIFT = 13
#: Most lanes a dot product may have: keeps ``|sum| <= 2**36`` (``add_raw`` takes 49-bit operands).
MAX_LANES = 1 << 20
#: Range of the per-dot-product exponent offset (an 8-bit signed field).
OFFSET_MIN, OFFSET_MAX = -128, 127
#: Bound on ``|scale_exp|`` accepted by the quantizers and GradScale (keeps exponent arithmetic exact).
SCALE_EXP_LIMIT = 1 << 16


# -- validation -------------------------------------------------------------------------------------

def _check_lanes(lanes):
    lanes = check_int("lanes", lanes)
    if not 1 <= lanes <= MAX_LANES:
        raise ValueError(f"lanes must be between 1 and {MAX_LANES}, not {lanes}")
    return lanes


def check_phase(phase):
    """Two-phase-rounding phases: integer arrays of 0 and 1."""
    return check_int_array("phase", phase, 0, 1)


def check_offset(offset):
    """Exponent offsets: integer arrays within ``OFFSET_MIN ... OFFSET_MAX``."""
    return check_int_array("offset", offset, OFFSET_MIN, OFFSET_MAX)


def check_scale_exp(scale_exp):
    """GradScale exponents: integer arrays within ``+-SCALE_EXP_LIMIT``."""
    return check_int_array("scale_exp", scale_exp, -SCALE_EXP_LIMIT, SCALE_EXP_LIMIT)


def _lane_codes(name, codes, lanes):
    arr = check_int_array(name, codes, 0, 15)
    if arr.ndim == 0 or arr.shape[-1] != lanes:
        raise ValueError(f"{name} must have shape (..., {lanes}), not {arr.shape}")
    return arr


# -- widths -----------------------------------------------------------------------------------------

def twos_width(lo, hi):
    """Smallest ``w >= 1`` with ``-2**(w-1) <= lo`` and ``hi <= 2**(w-1) - 1`` (Python integers)."""
    lo, hi = check_int("lo", lo), check_int("hi", hi)
    if lo > hi:
        raise ValueError(f"empty range: lo={lo} > hi={hi}")
    w_hi = hi.bit_length() + 1 if hi > 0 else 1
    w_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(w_hi, w_lo)


def product_range(x_signed=True):
    """``(lo, hi)`` of one lane's product ``p`` in LSB units (``2**lsb_exp``)."""
    x_signed = check_bool("x_signed", x_signed)
    max_x = 8 if x_signed else 15           # |-8| for signed; the gradient sign reaches both signs
    return -max_x << MAX_SHIFT, max_x << MAX_SHIFT


def sum_range(lanes, x_signed=True):
    """``(lo, hi)`` of the ``lanes``-lane integer sum of :func:`mac4_dot`."""
    lanes = _check_lanes(lanes)
    lo, hi = product_range(x_signed)
    return lanes * lo, lanes * hi


def sum_width(lanes, x_signed=True):
    """Minimal two's-complement width of :func:`mac4_dot`'s ``sum`` for ``lanes`` lanes."""
    return twos_width(*sum_range(lanes, x_signed))


def int4_product_range(x_signed, w_signed):
    """``(lo, hi)`` of one INT4 x INT4 product."""
    xs = (-8, 7) if check_bool("x_signed", x_signed) else (0, 15)
    ws = (-8, 7) if check_bool("w_signed", w_signed) else (0, 15)
    prods = [a * b for a in xs for b in ws]
    return min(prods), max(prods)


def int4_sum_width(lanes, x_signed, w_signed):
    """Minimal two's-complement width of :func:`int4_dot`'s sum for ``lanes`` lanes."""
    lanes = _check_lanes(lanes)
    lo, hi = int4_product_range(x_signed, w_signed)
    return twos_width(lanes * lo, lanes * hi)


# -- the MAC ----------------------------------------------------------------------------------------

def fp4_value(codes, phase=0, scale_exp=0):
    """float64 value of FP4 codes read with ``phase``, times ``2**scale_exp`` (exact in range)."""
    codes = check_int_array("codes", codes, 0, 15)
    ph, se = check_phase(phase), check_scale_exp(scale_exp)
    return np.ldexp(FP4.decode(codes), ph + se)


def mac4_products(x_codes, g_codes, phase, lanes, x_signed=True):
    """Per-lane products ``p_i`` (int64, shape ``(..., lanes)``) in units of ``2**(offset-6)``."""
    lanes = _check_lanes(lanes)
    x_signed = check_bool("x_signed", x_signed)
    x = (INT4 if x_signed else UINT4).to_int(_lane_codes("x_codes", x_codes, lanes))
    sign, e, _ = FP4.fields(_lane_codes("g_codes", g_codes, lanes))
    ph = check_phase(phase)[..., None]
    shift = np.clip(2 * (e - 1) + ph, 0, MAX_SHIFT)
    mag = np.where(e > 0, x * (np.int64(1) << shift), np.int64(0))
    return np.where(sign != 0, -mag, mag)


def mac4_dot(x_codes, g_codes, phase, offset, lanes, x_signed=True):
    """Exact INT4 x FP4 dot product of one beat: ``(sum_int, lsb_exp)``.

    ``x_codes`` and ``g_codes`` (4-bit codes, shape ``(..., lanes)``) broadcast together; ``phase``
    (0 or 1) and ``offset`` (``OFFSET_MIN ... OFFSET_MAX``) broadcast over the leading dimensions. The
    value is ``sum_int * 2**lsb_exp`` with ``lsb_exp = offset - 6``; both are int64 arrays of the
    broadcast leading shape, and ``sum_int`` fits :func:`sum_width` bits.
    """
    off = check_offset(offset)
    s = mac4_products(x_codes, g_codes, phase, lanes, x_signed).sum(axis=-1, dtype=np.int64)
    shape = np.broadcast_shapes(s.shape, off.shape)
    return (np.array(np.broadcast_to(s, shape)),
            np.array(np.broadcast_to(off + LSB_EXP_SHIFT, shape)))


def mac4_acc(acc_codes, x_codes, g_codes, phase, offset, acc_fmt, rounding="rne", rbits=None,
             rand_bits=None, x_signed=True, lanes=None):
    """New accumulator codes ``round(acc + S)`` with one rounding into ``acc_fmt``.

    ``S`` is :func:`mac4_dot`'s exact sum (``lanes`` defaults to ``x_codes.shape[-1]``); ``acc_codes``
    broadcast against the leading shape. ``rbits`` (``0 <= r < 2**rand_bits``) are the random bits of
    ``rounding="sr"``, broadcast against the result.
    """
    fmt = float_format_param("acc_fmt", acc_fmt)
    check_rounding(rounding)
    check_rand_bits(rand_bits, rounding)
    if lanes is None:
        lanes = np.shape(x_codes)[-1] if np.ndim(x_codes) else 0
    s, lsb_exp = mac4_dot(x_codes, g_codes, phase, offset, lanes, x_signed)
    sraw = from_int(s)._replace(exp=lsb_exp)
    total = add_raw(unpack(fmt, acc_codes), sraw)
    return round_raw(fmt, total, rounding, rbits=rbits, rand_bits=rand_bits)


def int4_dot(x, w, x_signed, w_signed):
    """Exact INT4 x INT4 dot product over the last axis (int64); ``x``, ``w`` are 4-bit codes."""
    x_signed, w_signed = check_bool("x_signed", x_signed), check_bool("w_signed", w_signed)
    x = check_int_array("x", x, 0, 15)
    w = check_int_array("w", w, 0, 15)
    if x.ndim == 0 or w.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ValueError(f"x and w must have the same last axis (lanes), not {x.shape} and {w.shape}")
    _check_lanes(x.shape[-1])
    xi = (INT4 if x_signed else UINT4).to_int(x)
    wi = (INT4 if w_signed else UINT4).to_int(w)
    return (xi * wi).sum(axis=-1, dtype=np.int64)


# -- the forward pass's integer accumulator ----------------------------------------------------------
#
# acc_out = acc_in + int4_dot(x, w), wrapping around modulo 2**acc_bits (two's complement, no
# saturation, as the int32 accumulators of integer GEMM libraries); acc_bits is at least the width of
# one beat's sum, so a wrap needs many beats. Codes are the unsigned acc_bits-bit patterns.

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


# -- the INT4 x FP4 front end of the chunk-based accumulator (hw.accumulator --front mac4) ----------

def dot_mac4(x_codes, g_codes, phase, offset, acc_fmt="e6m9", lanes=8, chunk=64, rounding="rne",
             x_signed=True, rbits_inner=None, rbits_outer=None, rand_bits=None):
    """Dot products of INT4 ``x`` and radix-4 FP4 ``g`` through the chunk-based accumulator.

    Each beat's ``S`` is :func:`mac4_dot` of its ``lanes`` pairs (exact: no window);
    ``phase`` is per beat (broadcasting to ``(..., L/N)``), ``offset`` per dot product (``(...)``).
    ``x_codes``, ``g_codes``: ``(..., L)`` 4-bit codes. Otherwise as :func:`golden.accumulator.dot` (item 3 and 4).
    """
    x, g = check_codes("x_codes", x_codes), check_codes("g_codes", g_codes)
    shape = np.broadcast_shapes(x.shape, g.shape)
    if len(shape) < 1:
        raise ValueError("x_codes and g_codes need a last axis (the dot-product length L)")
    batch, L = shape[:-1], shape[-1]
    lanes, chunk, _ = check_params(L, lanes, chunk)
    nb = L // lanes
    x = np.broadcast_to(x, shape).reshape(*batch, nb, lanes)
    g = np.broadcast_to(g, shape).reshape(*batch, nb, lanes)
    ph = np.broadcast_to(np.asarray(phase), (*batch, nb))
    off = np.broadcast_to(np.asarray(offset)[..., None], (*batch, nb))
    s, lsb = mac4_dot(x, g, ph, off, lanes, x_signed)
    B = prod(batch)
    sign = (s < 0).astype(np.int64).reshape(B, nb)
    sig = np.abs(s).astype(np.uint64).reshape(B, nb)
    z = np.zeros((B, nb), bool)
    S = Raw(sign, sig, lsb.reshape(B, nb).astype(np.int64), z, z, z)
    out = accumulate_sums(S, acc_fmt, chunk // lanes, rounding,
                          None if rbits_inner is None else np.broadcast_to(rbits_inner, (*batch, nb)).reshape(B, nb),
                          None if rbits_outer is None else np.reshape(
                              np.broadcast_to(rbits_outer, (*batch, np.shape(rbits_outer)[-1])), (B, -1)),
                          rand_bits)
    return out.reshape(batch)


# -- GEMMs of the two modes (the training emulation's INT4 paths) -----------------------------------

def gemm_mac4(X, G, phase, offset, acc_fmt="e6m9", lanes=8, chunk=64, rounding="rne", x_signed=True,
              rbits_inner=None, rbits_outer=None, rand_bits=None, fast=True):
    """``C = X @ G`` through the INT4 x FP4 chunk-based accumulator: every ``C[m, n]`` is exactly
    :func:`dot_mac4` of ``X[m, :]`` and ``G[:, n]``.

    ``X``: ``(M, K)`` INT4 codes; ``G``: ``(K, N)`` ``fp4_r4`` codes; ``phase`` (0 or 1) is one TPR
    phase for the whole GEMM; ``offset`` broadcasts to ``(M, N)``. For ``sr`` the random words
    broadcast to ``(M, N, K/lanes)`` and ``(M, N, ceil(K/chunk))``. Returns ``(M, N)`` codes of
    ``acc_fmt``. The hardware twin is ``hw.accumulator`` with ``--front mac4``. ``fast`` allows the
    compiled kernel (:mod:`golden.kernels`; a scalar ``phase`` only); ``False`` forces the general
    path (:func:`dot_mac4`). Results are identical.
    """
    X, G = check_codes("X", X), check_codes("G", G)
    if X.ndim != 2 or G.ndim != 2 or X.shape[1] != G.shape[0]:
        raise ValueError(f"gemm_mac4 needs X (M, K) and G (K, N), got shapes {X.shape} and {G.shape}")
    M, N = X.shape[0], G.shape[1]
    off = np.broadcast_to(np.asarray(offset), (M, N))
    acc = float_format_param("acc_fmt", acc_fmt)
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    GT = np.ascontiguousarray(G.T)

    def general(rows, cols, ri, ro):
        return dot_mac4(X[rows], GT[cols], phase, off[rows, cols], acc, lanes, chunk, rounding, x_signed,
                        ri, ro, rand_bits)

    # Products x * value(g, ph) have at most 4 significant bits (|x| <= 15).
    if not (fast and np.ndim(phase) == 0 and kernels.applies(acc, rounding, R, 4)):
        return dot_mac4(X[:, None, :], GT[None, :, :], phase, off, acc, lanes, chunk, rounding, x_signed,
                        rbits_inner, rbits_outer, rand_bits)
    K = X.shape[1]
    lanes, chunk, _ = check_params(K, lanes, chunk)
    _check_lanes(lanes)
    xv = (INT4 if check_bool("x_signed", x_signed) else UINT4).to_int(check_int_array("x_codes", X, 0, 15))
    sign, e, _ = FP4.fields(check_int_array("g_codes", G, 0, 15))
    ph = int(check_phase(phase))
    gv = np.where(e > 0, np.ldexp(1.0, np.maximum(2 * (e - 1) + ph, 0)), 0.0)
    gv = np.where(sign != 0, -gv, gv)                     # value(g, ph) * 2**6
    scale = np.ldexp(1.0, check_offset(off) + LSB_EXP_SHIFT)
    rbi, rbo = kernel_words(rounding, rbits_inner, rbits_outer, (M, N), K, lanes, chunk, R)
    return run_kernel(xv.astype(np.float64), gv, None, None, scale, acc, lanes, chunk, "exact", rounding, R,
                      rbi, rbo, 4, general)


def gemm_int4(X, W, x_signed=True, w_signed=True):
    """``X @ W`` of INT4 codes, exactly (int64): mac4's ``int`` mode summed over ``K``.

    ``X``: ``(M, K)``, ``W``: ``(K, N)`` 4-bit codes. The hardware's integer accumulator wraps modulo
    ``2**acc_bits``; with 32 bits that never happens for ``K < 2**25`` (``|x * w| <= 225``), so the
    exact sum is its result.
    """
    X = check_int_array("X", X, 0, 15)
    W = check_int_array("W", W, 0, 15)
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"gemm_int4 needs X (M, K) and W (K, N), got shapes {X.shape} and {W.shape}")
    xi = (INT4 if check_bool("x_signed", x_signed) else UINT4).to_int(X)
    wi = (INT4 if check_bool("w_signed", w_signed) else UINT4).to_int(W)
    # float64 is exact here (|sum| <= 225 * K < 2**53) and takes the BLAS path.
    return (xi.astype(np.float64) @ wi.astype(np.float64)).astype(np.int64)
