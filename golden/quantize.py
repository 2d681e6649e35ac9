"""Quantizers of the training recipes: FP4 with two-phase rounding and GradScale (Sun et al. 2020),
PACT, SAWB and max-abs INT4.

Pure, vectorized functions over NumPy arrays; stochastic rounding takes its random bits as an
argument. The codes they produce are the operands of :mod:`golden.mac4` (``docs/arithmetic.md``,
4-bit MAC section).

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
* INT4 quantizers return ``(codes, scale)`` with dequantized value ``int(code) * scale``; ``t = v/scale``
  is computed in float64 and rounded to an integer with :func:`golden.raw.round_to_int` (the same
  rounding core as ``round_raw``): :func:`quantize_int4_pact` (PACT, Choi et al. 2018: clip to
  ``[0, alpha]``, ``scale = alpha / (2**bits - 1)``, codes ``0 ... 2**bits - 1``; ``signed=True``
  clips to ``[-alpha, alpha]``, ``scale = alpha / (2**(bits-1) - 1)``), :func:`quantize_int4_maxabs`
  (``scale = max|w| / 7``, integers ``-7 ... 7``) and :func:`quantize_int4_sawb` (SAWB:
  ``alpha = c1 * sqrt(E[w**2]) - c2 * E[|w|]``, clip to ``[-alpha, alpha]``, ``scale = alpha / 7``).
"""

from __future__ import annotations

import numpy as np

from .checks import check_bool, check_int, check_rand_bits, check_rounding
from .mac4 import FP4, SCALE_EXP_LIMIT, check_phase, check_scale_exp
from .raw import from_float, round_raw, round_to_int

__all__ = [
    "SAWB_C1", "SAWB_C2", "quantize_fp4", "tpr_quantize", "gradscale_update", "gradscale_init",
    "quantize_int4_pact", "quantize_int4_maxabs", "quantize_int4_sawb",
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
