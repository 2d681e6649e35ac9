"""Quantizers of the training recipes: FP4 with two-phase rounding and GradScale (Sun et al. 2020),
LUQ (Chmiel et al. 2023), the per-sample and block Householder gradient quantizers (Chen et al. 2020),
PACT, SAWB and max-abs INT4.

Pure, vectorized functions over NumPy arrays; stochastic rounding takes its random bits as an
argument. The codes they produce are the operands of :mod:`golden.mac4` (``docs/arithmetic.md``,
4-bit MAC section) or, for LUQ and the Chen et al. quantizers, of the recipes (``docs/arithmetic.md``,
gradient quantizers section).

* :func:`quantize_fp4`: ``y = v * 2**-(scale_exp + ph)`` exactly (no float rounding), then rounded onto
  the radix-4 grid by ``fp4_r4``'s rounding (``round_raw``): between ``4**(n-1)`` and ``4**n`` the
  nearest-rounding midpoint is the linear one, ``2.5 * 4**(n-1)`` (ties to the even exponent field
  for ``rne``); ``sr`` rounds up with probability ``floor(frac * 2**R) / 2**R``,
  ``frac = (|y| - 4**(n-1)) / (3 * 4**(n-1))``; magnitudes above 64 saturate to 64 (no Inf), values
  below ``4**-3`` round with the unbounded-exponent rule (the grid continues as ``4**-4``, ...) and a
  result below ``4**-3`` flushes to a signed zero; NaN gives +0. The dequantized value is
  ``value(code, ph) * 2**scale_exp``. :func:`tpr_quantize` returns both phases.
* GradScale (:func:`gradscale_update`): per layer, with ``m = max_abs * 2**-scale_exp`` the scaled
  maximum and ``F = fmt_max`` (64 for FP4): ``m > F`` (or ``max_abs`` NaN/Inf) -> ``scale_exp + 1``
  (shrink); ``m <= F/2`` -> ``scale_exp - 1`` (grow: the gradient is multiplied by 2 more); else keep.
  Comparisons are exact. :func:`gradscale_init` gives the fixed point directly: the ``scale_exp`` with
  ``F/2 < m <= F`` (0 for ``max_abs = 0``).
* LUQ (:func:`luq_quantize`, :func:`luq_quantize_codes`, :func:`luq_decode`, :func:`luq_smp`): the
  exact quotient ``x / alpha`` rounded once into ``fp4_luq`` (sign, 3-bit exponent; levels
  ``alpha * 2**0 ... alpha * 2**6`` and zero) by ``round_raw``: stochastic underflow below ``alpha``,
  log-domain stochastic rounding between levels, saturation at the top; ``alpha`` from the maximum
  magnitude per tensor or block (:func:`amax`, :func:`luq_alpha`) or a power of two
  (:func:`luq_scale_exp`). :func:`amax_codes` is the max-magnitude reducer on float codes.
* Chen et al. 2020 (:func:`ptq_quantize`, :func:`psq_quantize`, :func:`bhq_quantize`,
  :func:`grad_dequantize`): ``b``-bit integer codes of a (for BHQ Householder-transformed) ``N x D``
  gradient on per-tensor or per-row grids, ``sr`` on the integer grid of a float64 ``t``.
* INT4 quantizers return ``(codes, scale)`` with dequantized value ``int(code) * scale``; ``t = v/scale``
  is computed in float64 and rounded to an integer with :func:`golden.raw.round_to_int` (the same
  rounding core as ``round_raw``): :func:`quantize_int4_pact` (PACT, Choi et al. 2018: clip to
  ``[0, alpha]``, ``scale = alpha / (2**bits - 1)``, codes ``0 ... 2**bits - 1``; ``signed=True``
  clips to ``[-alpha, alpha]``, ``scale = alpha / (2**(bits-1) - 1)``), :func:`quantize_int4_maxabs`
  (``scale = max|w| / 7``, integers ``-7 ... 7``) and :func:`quantize_int4_sawb` (SAWB:
  ``alpha = c1 * sqrt(E[w**2]) - c2 * E[|w|]``, clip to ``[-alpha, alpha]``, ``scale = alpha / 7``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import kernels
from .checks import (check_bool, check_choice, check_codes, check_int, check_rand_bits, check_rand_words,
                     check_rounding)
from .formats import float_format_param, parse_format
from .mac4 import FP4, SCALE_EXP_LIMIT, check_phase, check_scale_exp
from .raw import div_raw, from_float, round_raw, round_to_int

__all__ = [
    "SAWB_C1", "SAWB_C2", "quantize_fp4", "tpr_quantize", "gradscale_update", "gradscale_init",
    "quantize_int4_pact", "quantize_int4_maxabs", "quantize_int4_sawb",
    "amax", "amax_codes", "LUQ_FP4", "LUQ_TOP", "luq_scale_exp", "luq_scale_exp_range", "luq_alpha", "luq_quantize",
    "luq_quantize_codes", "luq_decode", "luq_smp",
    "GradQuant", "ptq_quantize", "psq_quantize", "bhq_plan", "bhq_quantize", "grad_dequantize",
]

#: Default SAWB coefficients for 4 bits (see :func:`quantize_int4_sawb`).
SAWB_C1, SAWB_C2 = 12.1, 12.2


# -- FP4 quantizers and GradScale -------------------------------------------------------------------

def quantize_fp4(values, phase=0, rounding="rne", rbits=None, rand_bits=None, scale_exp=0):
    """Round float64 ``values`` to FP4 codes for ``phase``: ``encode(values * 2**-(scale_exp+phase))``.

    The scaling is exact (it moves the exponent of the exact value), then ``fp4_r4``'s rounding applies
    (see the module text). ``phase``, ``scale_exp`` and ``rbits`` broadcast against ``values``.
    """
    check_rounding(rounding)
    check_rand_bits(rand_bits, rounding)
    ph, se = check_phase(phase), check_scale_exp(scale_exp)
    raw = from_float(values)
    raw = raw._replace(exp=raw.exp - se - ph)
    return round_raw(FP4, raw, rounding, rbits=rbits, rand_bits=rand_bits)


def tpr_quantize(values, rounding="rne", rbits=None, rand_bits=None, scale_exp=0):
    """Two-phase rounding: ``(codes_phase0, codes_phase1)`` of the same values.

    For ``rounding="sr"`` ``rbits`` must be a pair ``(rbits0, rbits1)``: each phase draws its own bits.
    """
    check_rounding(rounding)
    if rounding == "sr":
        if not isinstance(rbits, (tuple, list)) or len(rbits) != 2:
            raise ValueError("tpr_quantize with rounding 'sr' needs rbits=(rbits_phase0, rbits_phase1)")
        r0, r1 = rbits
    else:
        r0 = r1 = None
    return (quantize_fp4(values, 0, rounding, r0, rand_bits, scale_exp),
            quantize_fp4(values, 1, rounding, r1, rand_bits, scale_exp))


def _check_fmt_max(fmt_max):
    try:
        f = float(fmt_max)
    except (TypeError, ValueError):
        raise ValueError(f"fmt_max must be a positive finite number, not {fmt_max!r}") from None
    if not (np.isfinite(f) and f > 0):
        raise ValueError(f"fmt_max must be a positive finite number, not {fmt_max!r}")
    return f


def _check_max_abs(max_abs, allow_nonfinite):
    m = np.asarray(max_abs, dtype=np.float64)
    if np.any(m < 0):
        raise ValueError("max_abs must be nonnegative")
    if not allow_nonfinite and not np.all(np.isfinite(m)):
        raise ValueError("max_abs must be finite")
    return m


def _cmp_scaled(m, f, s):
    """Exact sign of ``m - f * 2**s`` for float64 ``m >= 0`` (finite), ``f > 0`` and int64 ``s``."""
    mm, me = np.frexp(m)
    fm, fe = np.frexp(f)
    te = fe + s
    c = np.where(me > te, 1, np.where(me < te, -1, np.sign(mm - fm).astype(np.int64)))
    return np.where(m == 0, -1, c)


def gradscale_update(scale_exp, max_abs, fmt_max=64.0):
    """GradScale step per layer: ``scale_exp + 1`` if ``max_abs * 2**-scale_exp > fmt_max`` (or
    ``max_abs`` is NaN/Inf), ``scale_exp - 1`` if it is ``<= fmt_max / 2``, else ``scale_exp``.

    Vectorized over layers (``scale_exp`` and ``max_abs`` broadcast); the comparisons are exact.
    """
    se = check_scale_exp(scale_exp)
    m = _check_max_abs(max_abs, allow_nonfinite=True)
    f = _check_fmt_max(fmt_max)
    bad = ~np.isfinite(m)
    mf = np.where(bad, 0.0, m)
    shrink = bad | (_cmp_scaled(mf, f, se) > 0)
    grow = ~shrink & (_cmp_scaled(mf, f, se - 1) <= 0)
    out = se + shrink.astype(np.int64) - grow.astype(np.int64)
    return np.clip(out, -SCALE_EXP_LIMIT, SCALE_EXP_LIMIT)


def gradscale_init(max_abs, fmt_max=64.0):
    """The ``scale_exp`` with ``fmt_max/2 < max_abs * 2**-scale_exp <= fmt_max`` (0 where
    ``max_abs`` is 0): the fixed point of :func:`gradscale_update`. ``max_abs`` must be finite."""
    m = _check_max_abs(max_abs, allow_nonfinite=False)
    f = _check_fmt_max(fmt_max)
    mm, me = np.frexp(m)
    fm, fe = np.frexp(f)
    s = (me - fe + (mm > fm)).astype(np.int64)
    return np.where(m == 0, 0, s)


# -- INT4 quantizers --------------------------------------------------------------------------------

def _int_codes(ints, bits):
    return (ints & ((1 << bits) - 1)).astype(np.uint8)


def _round_ints(t, rounding, rbits, rand_bits, lo, hi):
    check_rounding(rounding)
    check_rand_bits(rand_bits, rounding)
    return np.clip(round_to_int(t, rounding, rbits=rbits, rand_bits=rand_bits), lo, hi)


def _safe_div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), 0.0)


def quantize_int4_pact(values, alpha, bits=4, rounding="rne", rbits=None, rand_bits=None, signed=False):
    """PACT quantizer (Choi et al. 2018): ``(codes, scale)``, value ``int(code) * scale``.

    Unsigned: ``clip(v, 0, alpha)``, ``scale = alpha / (2**bits - 1)``, integers ``0 ... 2**bits - 1``.
    Signed: ``clip(v, -alpha, alpha)``, ``scale = alpha / (2**(bits-1) - 1)``, integers
    ``-(2**(bits-1) - 1) ... 2**(bits-1) - 1`` as two's-complement codes. ``t = clip(v) / scale``
    (float64) is rounded with ``rounding`` and clipped to the range. ``alpha`` (positive, finite)
    broadcasts against ``values``; NaN values give integer 0.
    """
    bits = check_int("bits", bits)
    signed = check_bool("signed", signed)
    if not (2 if signed else 1) <= bits <= 8:
        raise ValueError(f"bits must be between {2 if signed else 1} and 8, not {bits}")
    a = np.asarray(alpha, dtype=np.float64)
    if not np.all(np.isfinite(a) & (a > 0)):
        raise ValueError("alpha must be positive and finite")
    v = np.asarray(values, dtype=np.float64)
    qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    scale = a / qmax
    vc = np.clip(v, -a if signed else 0.0, a)
    ints = _round_ints(vc / scale, rounding, rbits, rand_bits, -qmax if signed else 0, qmax)
    return _int_codes(ints, bits), scale


def _reduce(x, axis, fn):
    return fn(x, axis=axis, keepdims=axis is not None)


def _symmetric4(v, alpha, rounding, rbits, rand_bits):
    scale = alpha / 7.0
    vc = np.clip(v, -alpha, alpha)
    ints = _round_ints(_safe_div(vc, scale), rounding, rbits, rand_bits, -7, 7)
    return _int_codes(ints, 4), scale


def quantize_int4_maxabs(values, rounding="rne", rbits=None, rand_bits=None, axis=None):
    """Symmetric max-abs INT4 weights: ``scale = max|w| / 7``, integers ``-7 ... 7`` (two's-complement
    codes), ``t = w / scale`` rounded with ``rounding``. ``axis`` (None: whole tensor) selects the axes
    reduced for the maximum; the scale keeps reduced axes as size 1. An all-zero slice has scale 0 and
    codes 0. ``values`` must be finite."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    alpha = _reduce(np.abs(v), axis, np.max)
    return _symmetric4(v, alpha, rounding, rbits, rand_bits)


def quantize_int4_sawb(values, c1=SAWB_C1, c2=SAWB_C2, rounding="rne", rbits=None, rand_bits=None,
                       axis=None):
    """SAWB INT4 weights (statistics-aware weight binning, Choi et al. 2018).

    ``alpha = c1 * sqrt(mean(w**2)) - c2 * mean(|w|)`` over the tensor (or ``axis``); if that is not
    positive (possible since ``c1 < c2`` when ``|w|`` is nearly constant) ``alpha = max|w|``, the
    safeguard IBM's fms-model-optimizer uses. Then ``clip(w, -alpha, alpha)``, ``scale = alpha / 7``,
    integers ``-7 ... 7`` as two's-complement codes. Returns ``(codes, scale)``.

    Coefficients: Choi et al., "Bridging the Accuracy Gap for 2-bit Quantized Neural Networks (QNN)",
    arXiv:1807.06964 (2018), fit ``c1, c2`` per bit width by linear regression over weight
    distributions. The defaults ``c1 = 12.1, c2 = 12.2`` are the 4-bit values given in lowbit's design
    brief; they could not be checked against the paper's table here. For comparison, IBM's
    fms-model-optimizer (``fms_mo/quant_refactor/sawb_utils.py``) uses ``(12.035, 12.03)`` for the
    15-level symmetric 4-bit grid (code 403) and ``(12.68, 12.80)`` for 16 levels.
    """
    c1, c2 = float(c1), float(c2)
    if not (np.isfinite(c1) and np.isfinite(c2)):
        raise ValueError("c1 and c2 must be finite")
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("values must be finite and nonempty")
    ew2 = _reduce(v * v, axis, np.mean)
    ew1 = _reduce(np.abs(v), axis, np.mean)
    alpha = c1 * np.sqrt(ew2) - c2 * ew1
    alpha = np.where(alpha > 0, alpha, _reduce(np.abs(v), axis, np.max))
    return _symmetric4(v, alpha, rounding, rbits, rand_bits)


# -- maximum magnitude (amax) -----------------------------------------------------------------------

def _check_block(block, shape, name="block"):
    """``None`` (the whole tensor) or a block length dividing the last axis of ``shape``."""
    if block is None:
        return None
    block = check_int(name, block, 1)
    if len(shape) == 0 or shape[-1] % block:
        n = shape[-1] if len(shape) else "none"
        raise ValueError(f"{name} must divide the length of the last axis ({n}), not {block}")
    return block


def _blocks(arr, block):
    """``arr`` viewed as ``arr.shape[:-1] + (n // block, block)``."""
    return arr.reshape(arr.shape[:-1] + (arr.shape[-1] // block, block))


def _expand(per_block, block):
    """A per-block array (last axis: blocks) repeated over each block's elements."""
    return np.repeat(per_block, block, axis=-1)


def amax(values, block=None):
    """The maximum magnitude ``max |x|`` per tensor or per block (float64).

    ``block=None``: over the whole tensor, a 0-d array. ``block=B``: over each run of ``B``
    consecutive elements of the last axis (``B`` must divide its length), shape
    ``values.shape[:-1] + (n // B,)``. A slice holding a NaN gives NaN (NaN wins over Inf), else one
    holding ±Inf gives +Inf; ``max |x|`` of an all-zero slice is 0. Empty tensors are refused.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("values must be nonempty")
    block = _check_block(block, v.shape)
    a = np.abs(v)
    if block is None:
        return np.max(a)          # np.max propagates NaN
    return np.max(_blocks(a, block), axis=-1)


def amax_codes(codes, x_format, block=None):
    """The streaming max-magnitude reducer on codes: the largest magnitude code per tensor or block.

    ``codes`` of the radix-2 float format ``x_format``; blocks as in :func:`amax`. The result is a
    magnitude code (sign bit clear) of ``x_format``: an unsigned integer maximum of
    ``code & ~sign_bit``, since magnitude codes order like the magnitudes they encode. NaN codes
    (``ieee``: exponent all ones with a nonzero mantissa; ``fn``: the all-ones magnitude) lie above
    every other code, so a slice holding a NaN returns a NaN code (the one with the largest magnitude
    bits, not necessarily the canonical NaN), else one holding ±Inf returns +Inf's code.
    """
    fmt = float_format_param("x_format", x_format)
    codes = check_codes("codes", codes)
    if codes.size == 0:
        raise ValueError("codes must be nonempty")
    fmt.fields(codes)                                   # range check
    block = _check_block(block, codes.shape)
    mag = codes.astype(np.int64) & (fmt.sign_mask - 1)
    out = np.max(mag) if block is None else np.max(_blocks(mag, block), axis=-1)
    return np.asarray(out).astype(fmt.code_dtype)


# -- LUQ: logarithmic unbiased quantization (Chmiel et al. 2023) -----------------------------------

#: LUQ's 4-bit code (preset ``fp4_luq`` = ``e3m0:bias=1:finite``): sign and a 3-bit exponent ``e``;
#: ``e = 0`` is zero, ``e = 1 ... 7`` is ``2**(e-1)`` in units of the scale ``alpha``. Rounding into
#: it (``round_raw``) is LUQ: subnormal spacing 1 below 1 (stochastic underflow), spacing ``2**n``
#: in ``[2**n, 2**(n+1))`` (log-domain stochastic rounding), saturation at 64 (``finite``).
LUQ_FP4 = parse_format("fp4_luq")
#: Exponent of the top level: ``alpha * 2**LUQ_TOP`` is the largest magnitude.
LUQ_TOP = 6
#: Smallest nonzero maximum magnitude with an exact float64 ``alpha`` (``amax / 2**6`` is normal).
ALPHA_MIN_AMAX = 2.0 ** -1016


def luq_scale_exp(max_abs):
    """The power-of-two scale of LUQ: the smallest integer ``s`` with ``max_abs <= 2**(s + 6)``
    (``2**s`` is ``alpha``, so the top level ``alpha * 2**6`` covers the maximum and nothing
    saturates), exactly; 0 where ``max_abs`` is 0. ``max_abs`` must be finite and nonnegative."""
    m = _check_max_abs(max_abs, allow_nonfinite=False)
    mant, e = np.frexp(m)                     # m = mant * 2**e, 0.5 <= mant < 1
    ceil_log2 = np.where(mant == 0.5, e - 1, e).astype(np.int64)
    return np.where(m == 0, 0, ceil_log2 - LUQ_TOP)


def luq_scale_exp_range(x_format):
    """``(lo, hi)``: the :func:`luq_scale_exp` of the smallest and the largest finite positive
    magnitude of the radix-2 float format ``x_format``, so every maximum of a tensor of its codes has
    its power-of-two scale in ``lo ... hi`` (0, of an all-zero tensor, included). For fp16
    ``(-30, 10)``, for bf16 ``(-139, 122)``, for fp32 ``(-155, 122)``."""
    fmt = float_format_param("x_format", x_format)
    smallest = fmt.decode(np.array([1 if fmt.subnormals and fmt.man_bits else 1 << fmt.man_bits]))
    largest = fmt.decode(np.array([fmt.max_code]))
    lo, hi = luq_scale_exp(np.concatenate([smallest, largest])).tolist()
    return min(lo, 0), max(hi, 0)


def _luq_round(raw, rounding, rbits, rand_bits):
    check_rounding(rounding, ("sr", "rne"))
    check_rand_bits(rand_bits, rounding)
    return round_raw(LUQ_FP4, raw, rounding, rbits=rbits, rand_bits=rand_bits)


def luq_quantize_codes(codes, x_format, scale_exp, rounding="sr", rbits=None, rand_bits=None):
    """LUQ of float codes with a power-of-two scale: the 4-bit ``fp4_luq`` codes of ``x / 2**scale_exp``.

    The hardware form (unit ``luq``): ``codes`` of the radix-2 float format ``x_format`` (e.g. fp16,
    bf16, fp32), ``scale_exp`` a signed integer (``alpha = 2**scale_exp``, ``|scale_exp| <= 2**16``)
    broadcast against ``codes``; ``rbits`` one ``rand_bits``-bit word per element for ``sr``. The
    scaling is an exact exponent shift, then one rounding into ``fp4_luq`` (``docs/arithmetic.md``,
    gradient quantizers): with ``y = |x| / alpha`` and ``n = max(0, floor(log2 y))``,
    ``F = floor((y / 2**n - (1 if y >= 1 else 0)) * 2**R)`` (the ``R`` bits of ``y`` below its last
    place ``2**n``), the magnitude rounds up iff ``F + r >= 2**R``: below ``alpha`` to ``alpha``
    (else 0), in ``[2**n, 2**(n+1)) * alpha`` to ``2**(n+1) * alpha`` (else ``2**n * alpha``).
    ``rne`` is round to nearest (linear midpoints; a tie at ``1.5 * 2**n * alpha`` goes up, one at
    ``alpha / 2`` to 0). Magnitudes from ``2**7 * alpha`` on, and any that round above
    ``2**6 * alpha``, saturate to ``±2**6 * alpha``; ±Inf gives ±top, NaN gives +0, a zero result keeps
    the sign of ``x`` (code 8 is -0).
    """
    fmt = float_format_param("x_format", x_format)
    codes = check_codes("codes", codes)
    se = check_scale_exp(scale_exp)
    raw = fmt.to_raw(codes)
    return _luq_round(raw._replace(exp=raw.exp - se), rounding, rbits, rand_bits)


def _check_alpha(alpha, name="alpha"):
    a = np.asarray(alpha, dtype=np.float64)
    if not np.all(np.isfinite(a) & (a > 0)):
        raise ValueError(f"{name} must be positive and finite")
    return a


def luq_alpha(values, scale="max", block=None):
    """LUQ's scale ``alpha`` per tensor (0-d) or per block (see :func:`amax` for blocks).

    ``scale="max"``: ``alpha = amax / 2**6`` (exact), so the maximum magnitude is exactly the top
    level ``alpha * 2**6``, LUQ's choice of mapping the maximum to the top of the format.
    ``scale="pow2"``: ``alpha = 2**luq_scale_exp(amax)``, the smallest power of two whose top level
    covers the maximum (what hardware uses). An all-zero slice has ``alpha = 0`` (``"max"``) or 1
    (``"pow2"``). The maximum must be finite (a NaN or Inf in a slice is a ValueError) and, when
    nonzero, at least ``2**-1016`` (so that ``alpha`` is a normal float64, exactly).
    """
    check_choice("scale", scale, ("max", "pow2"))
    m = amax(values, block)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"values must be finite for scale {scale!r} (the maximum magnitude is NaN or Inf)")
    if np.any((m > 0) & (m < ALPHA_MIN_AMAX)):
        # below this, amax / 2**6 (or the power of two) is a float64 subnormal and no longer exact
        raise ValueError("values: a nonzero maximum magnitude below 2**-1016 has no exact alpha")
    if scale == "max":
        return np.ldexp(m, -LUQ_TOP)
    return np.ldexp(1.0, luq_scale_exp(m))


def _luq_scaled(v, alpha, block):
    """The exact ``Raw`` of ``v / alpha`` for float64 ``v`` and per-tensor/per-block ``alpha >= 0``
    (elements with ``alpha = 0``, all zeros by construction, are divided by 1)."""
    a = np.where(alpha > 0, alpha, 1.0)
    if block is not None:
        a = _expand(a, block)
    x = from_float(v)
    mant, e = np.frexp(a)
    if np.all(mant == 0.5):       # powers of two: an exact exponent shift
        return x._replace(exp=x.exp - (e.astype(np.int64) - 1))
    return div_raw(x, from_float(a))


def _luq_scale(v, scale, block):
    if isinstance(scale, str):
        return luq_alpha(v, scale, block)
    return _check_alpha(scale, "scale")


def luq_quantize(values, scale="max", rounding="sr", rbits=None, rand_bits=None, block=None):
    """LUQ (Chmiel et al. 2023) of float64 ``values``: ``(codes, alpha)``.

    ``codes`` are ``fp4_luq`` codes (value ``decode(code) * alpha``, :func:`luq_decode`), ``alpha``
    the scale per tensor (0-d) or per block (last axis: the blocks of ``block`` elements of the last
    axis). ``scale``: ``"max"`` or ``"pow2"`` (:func:`luq_alpha`), or explicit positive finite
    alphas (shaped like the result of :func:`luq_alpha` for ``block``, or broadcasting against
    ``values`` when ``block`` is None). The quantization is :func:`luq_quantize_codes`'s rounding
    applied to the exact quotient ``|x| / alpha`` (computed to 62 bits plus a sticky bit, which
    decides every rounding exactly), so ``E[Q(x)]`` obeys the same bound for any ``alpha``. Elements
    of an all-zero slice (``alpha = 0``) give signed zeros. ``rbits``: one ``rand_bits``-bit word per
    element (``sr``).
    """
    v = np.asarray(values, dtype=np.float64)
    block = _check_block(block, v.shape)
    alpha = _luq_scale(v, scale, block)
    return _luq_round(_luq_scaled(v, alpha, block), rounding, rbits, rand_bits), alpha


def luq_decode(codes, alpha=1.0, block=None):
    """Values of ``fp4_luq`` codes: ``(-1)**s * 2**(e-1) * alpha`` (0 for ``e = 0``), float64.

    ``alpha`` broadcasts against ``codes`` or, with ``block``, holds one scale per block as returned
    by :func:`luq_quantize`. Exact unless the product leaves float64's range.
    """
    codes = check_codes("codes", codes)
    a = np.asarray(alpha, dtype=np.float64)
    if block is not None:
        block = _check_block(block, codes.shape)
        a = _expand(a, block)
    return LUQ_FP4.decode(codes) * a


def luq_smp(values, rbits, rand_bits, scale="max", block=None):
    """SMP (LUQ's averaging of ``s`` independent samples): ``(mean, codes, alpha)``.

    ``rbits`` has shape ``(s,) + values.shape``: sample ``i`` is ``luq_quantize`` with ``sr`` and
    ``rbits[i]``, all samples with the same ``alpha`` (from ``values``). ``codes`` has the same
    leading axis. ``mean = alpha * (n / s)`` in float64, ``n`` the exact integer sum of the samples'
    signed levels ``±2**(e-1)`` (two float64 roundings; exact when ``s`` and ``alpha`` are powers
    of two). Its expectation is ``E[Q(x)]``; its variance is ``Var[Q(x)] / s``.
    """
    v = np.asarray(values, dtype=np.float64)
    r = np.asarray(rbits)
    if r.ndim != v.ndim + 1 or r.shape[1:] != v.shape or r.shape[0] < 1:
        raise ValueError(f"rbits must have shape (samples,) + {v.shape}, not {r.shape}")
    block = _check_block(block, v.shape)
    alpha = _luq_scale(v, scale, block)
    codes = _luq_round(_luq_scaled(v, alpha, block), "sr", r, rand_bits)     # broadcasts over samples
    levels = LUQ_FP4.decode(codes).astype(np.int64)          # exact small integers
    n = levels.sum(axis=0)
    a = alpha if block is None else _expand(alpha, block)
    return a * (n / r.shape[0]), codes, alpha


# -- Chen et al. 2020: per-tensor, per-sample and block Householder gradient quantizers ---------------

class GradQuant(NamedTuple):
    """A gradient quantized by :func:`ptq_quantize`, :func:`psq_quantize` or :func:`bhq_quantize`.

    The value is ``T^-1 (zero + codes * step)`` (:func:`grad_dequantize`): ``codes`` are integers
    ``0 ... 2**bits - 1`` (uint8, uint16 above 8 bits) of the transformed gradient ``Y = T grad``, row
    ``j`` of ``Y`` on the grid ``zero[j] + k * step[j]``. ``T`` is block diagonal after a row
    permutation: slot ``j`` of ``Y`` is built from input row ``order[j]``; the slots form consecutive
    groups of ``sizes[g]`` rows, each led by its first slot, whose input row is divided by
    ``shrink[g]`` before the group's Householder reflection (``docs/arithmetic.md``). PTQ and PSQ have
    ``T = I`` (``order = 0 ... N-1``, groups of one, ``shrink = 1``).
    """

    codes: np.ndarray
    zero: np.ndarray
    step: np.ndarray
    order: np.ndarray
    sizes: np.ndarray
    shrink: np.ndarray


def _check_grad(grad):
    g = np.asarray(grad, dtype=np.float64)
    if g.ndim != 2 or g.size == 0:
        raise ValueError(f"grad must be a nonempty 2-D array (samples x features), not shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("grad must be finite")
    return g


def _grid_round(y, lo, hi, bits, rounding, rbits, rand_bits):
    """Codes of ``y`` on the grid ``lo + k * step``, ``step = (hi - lo) / (2**bits - 1)``: the float64
    ``t = (y - lo) / step`` (0 where ``step = 0``) rounded to an integer by ``round_to_int`` (``sr``:
    up iff ``floor(frac(t) * 2**R) + r >= 2**R``) and clipped to ``0 ... 2**bits - 1``."""
    check_rounding(rounding, ("sr", "rne"))
    rand_bits = check_rand_bits(rand_bits, rounding)
    if rounding == "sr":
        rbits = check_rand_words("rbits", rbits, y.shape, rand_bits)
    B = (1 << bits) - 1
    with np.errstate(over="ignore"):
        step = (hi - lo) / B
    if not np.all(np.isfinite(step)):
        raise ValueError("grad: a range (max - min) overflows float64")
    t = _safe_div(y - lo, step)
    ints = np.clip(round_to_int(t, rounding, rbits=rbits, rand_bits=rand_bits), 0, B)
    return ints.astype(np.uint8 if bits <= 8 else np.uint16), lo, step


def _identity_plan(n):
    return np.arange(n, dtype=np.int64), np.ones(n, np.int64), np.ones(n)


def ptq_quantize(grad, bits=4, rounding="sr", rbits=None, rand_bits=None):
    """Per-tensor quantizer (PTQ, the baseline of Chen et al. 2020): one grid for the whole ``N x D``
    gradient, ``zero = min``, ``step = (max - min) / (2**bits - 1)``. See :class:`GradQuant`."""
    g = _check_grad(grad)
    bits = check_int("bits", bits, 1, 16)
    lo, hi = np.min(g, keepdims=True), np.max(g, keepdims=True)
    codes, zero, step = _grid_round(g, lo, hi, bits, rounding, rbits, rand_bits)
    return GradQuant(codes, zero, step, *_identity_plan(g.shape[0]))


def psq_quantize(grad, bits=4, rounding="sr", rbits=None, rand_bits=None):
    """Per-sample quantizer (PSQ, Chen et al. 2020): one grid per row (sample) of the ``N x D``
    gradient, ``zero[i] = min_j grad[i, j]``, ``step[i] = range_i / (2**bits - 1)``. Its variance is
    at most ``D / (4 B**2) * sum_i range_i**2`` (``B = 2**bits - 1``), never above PTQ's bound
    ``N D range**2 / (4 B**2)``. See :class:`GradQuant`."""
    g = _check_grad(grad)
    bits = check_int("bits", bits, 1, 16)
    lo, hi = np.min(g, axis=1, keepdims=True), np.max(g, axis=1, keepdims=True)
    codes, zero, step = _grid_round(g, lo, hi, bits, rounding, rbits, rand_bits)
    return GradQuant(codes, zero, step, *_identity_plan(g.shape[0]))


def _apportion(total, weights):
    """Split the integer ``total`` in proportion to ``weights`` (largest remainders, ties to the
    lower index; equal weights if all are zero)."""
    w = np.where(np.sum(weights) > 0, weights, 1.0)
    quota = total * w / np.sum(w)
    n = np.floor(quota).astype(np.int64)
    rest = total - int(n.sum())
    if rest:
        frac = quota - n
        n[np.lexsort((np.arange(len(w)), -frac))[:rest]] += 1
    return n


def _bhq_shrink(lam1, lam2, k):
    """The leader's divisor ``a = cbrt((k - 1) * lam1 / (sqrt(k) * lam2))`` clipped to ``[1, k]``
    (``k`` where ``lam2 = 0``, 1 for groups of one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.cbrt((k - 1) * lam1 / (np.sqrt(k) * lam2))
    a = np.where(lam2 > 0, np.clip(a, 1.0, k), k.astype(np.float64))
    return np.where(k > 1, a, 1.0)


def _bhq_cost(lam1, lam2, k, a):
    """The variance model minimized by the plan (in units of ``D / (4 B**2)``)."""
    return np.sum(np.where(k > 1, (lam1 / (a * np.sqrt(k)) + lam2) ** 2 * (a * a + k - 1), lam1 ** 2))


def _plan_for(ms, G):
    """bhq_plan's groups for ``G`` leaders of the sorted ranges ``ms``: ``(cost, nf, first, a)``."""
    n = len(ms)
    nf = _apportion(n - G, ms[:G])
    k = nf + 1
    first = G + np.concatenate([[0], np.cumsum(nf)[:-1]]).astype(np.int64)
    lam1 = ms[:G]
    lam2 = np.where(nf > 0, ms[np.minimum(first, n - 1)], 0.0)
    a = _bhq_shrink(lam1, lam2, k)
    return _bhq_cost(lam1, lam2, k, a), nf, first, a


def bhq_plan(ranges, groups=None, fast=True):
    """BHQ's grouping for rows with the given ranges: ``(order, sizes, shrink)`` of :class:`GradQuant`.

    Rows sorted by decreasing range (ties: lower index first); the first ``G`` are the leaders, the
    other ``N - G`` followers are split among the leaders in proportion to the leaders' ranges
    (largest remainders), in sorted order: the first leader takes the first followers. Group ``g``
    (leader range ``l1``, largest follower range ``l2``, size ``k``) shrinks its leader by
    ``a = cbrt((k-1) l1 / (sqrt(k) l2))`` clipped to ``[1, k]``. ``groups=None`` picks the ``G`` in
    ``1 ... N`` minimizing ``sum_g (l1/(a sqrt(k)) + l2)**2 (a**2 + k - 1)`` (``l1**2`` for a group of
    one), the smallest such ``G`` on ties. All arithmetic is float64 (NumPy, ``docs/arithmetic.md``
    section 10.6). ``fast`` lets the compiled search (:func:`golden.kernels.bhq_costs`, the same
    costs bit for bit) find that ``G``; ``False`` evaluates every ``G`` here (the reference).
    """
    m = np.asarray(ranges, dtype=np.float64)
    n = len(m)
    rank = np.lexsort((np.arange(n), -m))
    ms = m[rank]
    if groups is not None:
        G = check_int("groups", groups, 1, n)
    else:
        costs = kernels.bhq_costs(ms) if fast else None
        if costs is not None:           # the first G whose cost is below all earlier ones (NaN never is)
            G = 1 if np.isnan(costs[0]) else 1 + int(np.argmin(np.where(np.isnan(costs), np.inf, costs)))
        else:
            best = None
            for g in range(1, n + 1):
                cost = _plan_for(ms, g)[0]
                if best is None or cost < best[0]:
                    best = (cost, g)
            G = best[1]
    _, nf, first, a = _plan_for(ms, G)
    # Slot order: each leader rank[g] followed by its followers rank[first[g]:first[g] + nf[g]];
    # the followers are rank[G:] in order, so they fill the slots that are not leaders' slots.
    order = np.empty(n, np.int64)
    lead = np.cumsum(nf + 1) - (nf + 1)
    follower = np.ones(n, bool)
    follower[lead] = False
    order[lead] = rank[:G]
    order[follower] = rank[G:]
    return order, nf + 1, a


def _householder(y, k):
    """``H y`` for the ``k x k`` reflection ``H = I - 2 v v^T / (v^T v)``, ``v = e1 - 1/sqrt(k)``
    (``H e1 = 1/sqrt(k)``; ``H`` is symmetric and its own inverse), applied to the rows of ``y``
    (``(k, D)``, or a stack ``(..., k, D)`` of groups, each transformed alike) in float64 in a fixed
    order: ``proj = sum_i v_i y_i`` (one NumPy sum over the ``k`` rows, per column) times
    ``2 / (v^T v)``, then ``y - v proj``."""
    u = 1.0 / np.sqrt(k)
    v = np.full(k, -u)
    v[0] = 1.0 - u
    proj = np.sum(v[:, None] * y, axis=-2) * (2.0 / np.sum(v * v))
    return y - v[:, None] * proj[..., None, :]


def _bhq_apply(x, sizes, shrink, inverse):
    """The group transforms on ``x`` (rows already in slot order). Groups of one size are
    transformed together, as one stack: the same float64 operations, in the same order, as one
    group at a time."""
    y = x.copy()
    sizes = np.asarray(sizes, dtype=np.int64)
    shrink = np.asarray(shrink, dtype=np.float64)
    starts = np.cumsum(sizes) - sizes
    for k in np.unique(sizes[sizes > 1]):
        k = int(k)
        sel = np.flatnonzero(sizes == k)
        rows = starts[sel][:, None] + np.arange(k)             # (groups, k)
        blk = y[rows]                                           # (groups, k, D), a copy
        a = shrink[sel][:, None]
        if inverse:
            blk = _householder(blk, k)
            blk[:, 0] = blk[:, 0] * a
        else:
            blk[:, 0] = blk[:, 0] / a
            blk = _householder(blk, k)
        y[rows] = blk
    return y


def bhq_quantize(grad, bits=4, rounding="sr", rbits=None, rand_bits=None, groups=None):
    """Block Householder quantizer (BHQ, Chen et al. 2020) of the ``N x D`` gradient.

    ``Y = T grad`` with the plan of :func:`bhq_plan` on the row ranges (each group: leader divided by
    ``a``, then the Householder reflection that spreads it evenly over the group's rows), then a
    per-row grid on ``Y`` as :func:`psq_quantize`. ``rbits`` (shape ``N x D``) feed the roundings of
    ``Y``'s elements. See :class:`GradQuant` and :func:`grad_dequantize`.
    """
    g = _check_grad(grad)
    bits = check_int("bits", bits, 1, 16)
    order, sizes, shrink = bhq_plan(np.max(g, axis=1) - np.min(g, axis=1), groups)
    y = _bhq_apply(g[order], sizes, shrink, inverse=False)
    lo, hi = np.min(y, axis=1, keepdims=True), np.max(y, axis=1, keepdims=True)
    codes, zero, step = _grid_round(y, lo, hi, bits, rounding, rbits, rand_bits)
    return GradQuant(codes, zero, step, order, sizes, shrink)


def grad_dequantize(q):
    """The float64 gradient of a :class:`GradQuant`: ``T^-1 (zero + codes * step)``, rows back in
    input order."""
    y = q.zero + q.codes.astype(np.float64) * q.step
    x = _bhq_apply(y, q.sizes, q.shrink, inverse=True)
    out = np.empty_like(x)
    out[q.order] = x
    return out
