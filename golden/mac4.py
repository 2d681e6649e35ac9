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

Quantizers
----------
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

from .formats import FloatFormat, check_int, check_rand_bits, check_rounding, parse_format
from .raw import add_raw, from_float, from_int, round_raw, round_to_int, unpack

__all__ = [
    "FP4", "INT4", "UINT4", "LSB_EXP_SHIFT", "MAX_SHIFT", "MAX_LANES", "OFFSET_MIN", "OFFSET_MAX",
    "SCALE_EXP_LIMIT", "SAWB_C1", "SAWB_C2",
    "product_range", "sum_range", "sum_width", "int4_product_range", "int4_sum_width", "twos_width",
    "fp4_value", "mac4_products", "mac4_dot", "mac4_acc", "int4_dot",
    "quantize_fp4", "tpr_quantize", "gradscale_update", "gradscale_init",
    "quantize_int4_pact", "quantize_int4_maxabs", "quantize_int4_sawb",
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
#: Default SAWB coefficients for 4 bits (see :func:`quantize_int4_sawb`).
SAWB_C1, SAWB_C2 = 12.1, 12.2


# -- validation -------------------------------------------------------------------------------------

def _check_lanes(lanes):
    lanes = check_int("lanes", lanes)
    if not 1 <= lanes <= MAX_LANES:
        raise ValueError(f"lanes must be between 1 and {MAX_LANES}, not {lanes}")
    return lanes


def _int_array(name, value, lo=None, hi=None):
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, not {arr.dtype} values")
    arr = arr.astype(np.int64)
    if lo is not None and hi is not None and np.any((arr < lo) | (arr > hi)):
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return arr


def _check_phase(phase):
    return _int_array("phase", phase, 0, 1)


def _check_offset(offset):
    return _int_array("offset", offset, OFFSET_MIN, OFFSET_MAX)


def _check_scale_exp(scale_exp):
    return _int_array("scale_exp", scale_exp, -SCALE_EXP_LIMIT, SCALE_EXP_LIMIT)


def _lane_codes(name, codes, lanes):
    arr = _int_array(name, codes, 0, 15)
    if arr.ndim == 0 or arr.shape[-1] != lanes:
        raise ValueError(f"{name} must have shape (..., {lanes}), not {arr.shape}")
    return arr


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def _round(fmt, raw, rounding, rbits, rand_bits):
    """``round_raw`` with ``raw`` broadcast against ``rbits`` too (round_raw broadcasts one way)."""
    raw = raw.broadcast()
    if rounding == "sr" and rbits is not None:
        shape = np.broadcast_shapes(raw.sig.shape, np.shape(rbits))
        raw = type(raw)(*(np.array(np.broadcast_to(a, shape)) for a in raw))
    return round_raw(fmt, raw, rounding, rbits=rbits, rand_bits=rand_bits)


def _float_format(fmt):
    fmt = parse_format(fmt)
    if not isinstance(fmt, FloatFormat):
        raise ValueError(f"acc_fmt must be a float format, not {fmt}")
    return fmt


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
    x_signed = _check_bool("x_signed", x_signed)
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
    xs = (-8, 7) if _check_bool("x_signed", x_signed) else (0, 15)
    ws = (-8, 7) if _check_bool("w_signed", w_signed) else (0, 15)
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
    codes = _int_array("codes", codes, 0, 15)
    ph, se = _check_phase(phase), _check_scale_exp(scale_exp)
    return np.ldexp(FP4.decode(codes), ph + se)


def mac4_products(x_codes, g_codes, phase, lanes, x_signed=True):
    """Per-lane products ``p_i`` (int64, shape ``(..., lanes)``) in units of ``2**(offset-6)``."""
    lanes = _check_lanes(lanes)
    x_signed = _check_bool("x_signed", x_signed)
    x = (INT4 if x_signed else UINT4).to_int(_lane_codes("x_codes", x_codes, lanes))
    sign, e, _ = FP4.fields(_lane_codes("g_codes", g_codes, lanes))
    ph = _check_phase(phase)[..., None]
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
    off = _check_offset(offset)
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
    fmt = _float_format(acc_fmt)
    check_rounding(rounding)
    check_rand_bits(rand_bits, rounding)
    if lanes is None:
        lanes = np.shape(x_codes)[-1] if np.ndim(x_codes) else 0
    s, lsb_exp = mac4_dot(x_codes, g_codes, phase, offset, lanes, x_signed)
    sraw = from_int(s)._replace(exp=lsb_exp)
    total = add_raw(unpack(fmt, acc_codes), sraw)
    return _round(fmt, total, rounding, rbits, rand_bits)


def int4_dot(x, w, x_signed, w_signed):
    """Exact INT4 x INT4 dot product over the last axis (int64); ``x``, ``w`` are 4-bit codes."""
    x_signed, w_signed = _check_bool("x_signed", x_signed), _check_bool("w_signed", w_signed)
    x = _int_array("x", x, 0, 15)
    w = _int_array("w", w, 0, 15)
    if x.ndim == 0 or w.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ValueError(f"x and w must have the same last axis (lanes), not {x.shape} and {w.shape}")
    _check_lanes(x.shape[-1])
    xi = (INT4 if x_signed else UINT4).to_int(x)
    wi = (INT4 if w_signed else UINT4).to_int(w)
    return (xi * wi).sum(axis=-1, dtype=np.int64)


# -- FP4 quantizers and GradScale -------------------------------------------------------------------

def quantize_fp4(values, phase=0, rounding="rne", rbits=None, rand_bits=None, scale_exp=0):
    """Round float64 ``values`` to FP4 codes for ``phase``: ``encode(values * 2**-(scale_exp+phase))``.

    The scaling is exact (it moves the exponent of the exact value), then ``fp4_r4``'s rounding applies
    (see the module text). ``phase``, ``scale_exp`` and ``rbits`` broadcast against ``values``.
    """
    check_rounding(rounding)
    check_rand_bits(rand_bits, rounding)
    ph, se = _check_phase(phase), _check_scale_exp(scale_exp)
    raw = from_float(values)
    raw = raw._replace(exp=raw.exp - se - ph)
    return _round(FP4, raw, rounding, rbits, rand_bits)


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
    se = _check_scale_exp(scale_exp)
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
    signed = _check_bool("signed", signed)
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
