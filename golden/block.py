"""Block-scaled arithmetic (HBFP and OCP MX): block formats, conversion, block dot products.

The golden model of ``docs/arithmetic.md`` section 9, the future ``hw/block_quantize`` and
``hw/block_dot`` and the block front end of ``hw/accumulator``. A *block format* is an element
format, a block size ``k`` and a scale kind; a block is ``k`` element codes ``P_i`` and one 8-bit scale
code for ``X = 2**s``, the value of element ``i`` being ``X * P_i``:

* ``e8m0`` (OCP MX v1.0, sections 5 and 6.3): ``s = floor(log2(amax)) - emax_elem``, ``amax`` the
  block's largest magnitude and ``emax_elem`` the exponent of the element format's largest value.
* ``hbfp`` (HBFP, Drumond et al. 2018; Accuracy Booster, Harma et al. 2022): elements are ``m``-bit
  two's-complement fractions ``n * 2**-(m-1)`` (``fix<m>.<m-1>``), ``s = ceil(log2(amax))``, the
  HBFP emulator's rule.

Both scales are encoded alike (bias 127, ``0xFF`` marks a NaN block, no zero). Elements are rounded
(``rne``, ``rna``, ``rtz``, ``sr`` with explicit random words) and clamped to the largest element
magnitude, keeping the sign. :func:`block_dot` is ``round(c + sum_j Xa_j Xb_j sum_i Pa_ji Pb_ji)``
with the sum exact and one rounding; :func:`block_gemm` streams block pairs through the chunked
accumulator (:func:`golden.accumulator.accumulate_sums`), one exact block sum and one rounding per
block. Everything is vectorized over NumPy arrays of codes; random bits are always an argument.
The conversion and :func:`block_gemm` have compiled fast paths (:mod:`golden.kernels`: the element
roundings, and the accumulator kernel fed one block pair per beat) that give the same codes;
``fast=False`` forces the general paths, the definitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from math import prod

import ml_dtypes
import numpy as np

from . import kernels
from .accumulator import accumulate_sums, kernel_words, run_kernel
from .checks import check_codes, check_int, check_lanes, check_rand_bits, check_rand_words, check_rounding
from .exactsum import BIG, exact_sum
from .formats import FixedFormat, FloatFormat, FormatError, float_format_param, parse_format
from .lanesum import window_sum
from .raw import Raw, bitlen, round_to_int

__all__ = [
    "BLOCK_MIN", "BLOCK_MAX", "BLOCK_DEFAULT", "SCALE_KINDS", "SCALE_BIAS", "SCALE_NAN", "SCALE_EXP_MIN",
    "SCALE_EXP_MAX", "BLOCK_PRESET_SPECS", "BLOCK_PRESETS", "BlockFormat", "parse_block_format",
    "block_format_param", "block_operand_param", "is_block_spec", "scale_exponents", "quantize_blocks",
    "dequantize", "block_sums", "block_dot", "beat_dot", "block_gemm",
]

#: Block sizes ``k`` (elements per block) the models and generators accept, and the default.
BLOCK_MIN, BLOCK_MAX, BLOCK_DEFAULT = 2, 64, 32
#: Scale kinds: how the shared exponent is chosen (both are encoded as E8M0).
SCALE_KINDS = ("e8m0", "hbfp")
#: Scale code ``c`` means ``2**(c - SCALE_BIAS)`` for ``c < 0xFF``; ``SCALE_NAN`` marks a NaN block.
SCALE_BIAS, SCALE_NAN = 127, 0xFF
SCALE_EXP_MIN, SCALE_EXP_MAX = -127, 127
#: Widest element formats: MX elements are at most 8-bit floats; fixed-point elements (MXINT, HBFP)
#: up to 16 bits. Keeps every element product exact in 32 bits (and in float64).
MAX_FLOAT_ELEMENT_BITS, MAX_FIXED_ELEMENT_BITS = 8, 16
_ADD_RAW_BITS = 49          # add_raw's operand limit (golden.raw)
_TILE_BEATS = 1 << 20       # block pairs of block_gemm's float64 path materialized at once
_EXACT_PRODUCTS = 1 << 18   # products of the exact path materialized at once

#: Named block formats: name -> (spec, source). ``docs/arithmetic.md`` section 9.3.
BLOCK_PRESET_SPECS = {
    "mxfp8_e4m3": ("mx:e4m3:fn/32", "OCP MX v1.0 MXFP8, E4M3 elements (ml_dtypes float8_e4m3fn)"),
    "mxfp8_e5m2": ("mx:e5m2/32", "OCP MX v1.0 MXFP8, E5M2 elements (ml_dtypes float8_e5m2)"),
    "mxfp6_e3m2": ("mx:e3m2:finite/32", "OCP MX v1.0 MXFP6, E3M2 elements (ml_dtypes float6_e3m2fn)"),
    "mxfp6_e2m3": ("mx:e2m3:finite/32", "OCP MX v1.0 MXFP6, E2M3 elements (ml_dtypes float6_e2m3fn)"),
    "mxfp4_e2m1": ("mx:e2m1:finite/32", "OCP MX v1.0 MXFP4, E2M1 elements (ml_dtypes float4_e2m1fn)"),
    "mxint8": ("mx:fix8.6/32", "OCP MX v1.0 MXINT8: 8-bit two's complement times 2^-6"),
    "hbfp4": ("hbfp4/32", "HBFP, 4-bit mantissas incl. sign (Accuracy Booster, Harma et al. 2022)"),
    "hbfp6": ("hbfp6/32", "HBFP, 6-bit mantissas incl. sign (Accuracy Booster, Harma et al. 2022)"),
    "hbfp8": ("hbfp8/32", "HBFP8, 8-bit mantissas incl. sign (Drumond et al. 2018)"),
}

_HBFP_RE = re.compile(r"^hbfp(\d+)$")


def _hbfp_element(m):
    m = check_int("HBFP mantissa bits m", m, 2, MAX_FIXED_ELEMENT_BITS, error=FormatError)
    return FixedFormat(m, m - 1)


@dataclass(frozen=True)
class BlockFormat:
    """A block-scaled format (``docs/arithmetic.md`` section 9.1).

    Parameters
    ----------
    element : FloatFormat or FixedFormat
        The element format: a radix-2 float format of at most 8 bits (MX), or a signed fixed-point
        format ``fix<W>.<F>`` of 2 to 16 bits (MXINT8 is ``fix8.6``; HBFP-m is ``fix<m>.<m-1>``).
    k : int
        Elements per block, 2 to 64 (default 32).
    scale : str
        ``"e8m0"`` (the OCP MX rule) or ``"hbfp"`` (the HBFP rule; needs a ``fix<m>.<m-1>`` element).
    """

    element: FloatFormat | FixedFormat
    k: int = BLOCK_DEFAULT
    scale: str = "e8m0"
    name: str = field(default=None, compare=False)

    def __post_init__(self):
        el = self.element
        k = check_int("block size k", self.k, BLOCK_MIN, BLOCK_MAX, error=FormatError)
        object.__setattr__(self, "k", k)
        if self.scale not in SCALE_KINDS:
            raise FormatError(f"block scale must be one of {', '.join(SCALE_KINDS)}, not {self.scale!r}")
        if isinstance(el, FloatFormat):
            if el.radix != 2:
                raise FormatError(f"block element {el} is a radix-4 format: the block scale rules are "
                                  f"defined for radix-2 float and signed fixed-point elements")
            if el.width > MAX_FLOAT_ELEMENT_BITS:
                raise FormatError(f"block element {el} is {el.width} bits wide: float elements have at most "
                                  f"{MAX_FLOAT_ELEMENT_BITS} bits")
        elif isinstance(el, FixedFormat):
            if not el.signed:
                raise FormatError(f"block element {el} is unsigned: fixed-point elements are signed fix<W>.<F>")
            if el.bits > MAX_FIXED_ELEMENT_BITS:
                raise FormatError(f"block element {el} is {el.bits} bits wide: fixed-point elements have at "
                                  f"most {MAX_FIXED_ELEMENT_BITS} bits")
        else:
            raise FormatError(f"block element must be a radix-2 float format or a signed fixed-point format "
                              f"fix<W>.<F> (MXINT8 is fix8.6), not {el}")
        if self.scale == "hbfp" and not (isinstance(el, FixedFormat) and el.frac_bits == el.bits - 1):
            raise FormatError(f"scale hbfp needs an HBFP element fix<m>.<m-1> (2 <= m <= "
                              f"{MAX_FIXED_ELEMENT_BITS}), not {el}")

    # -- derived constants ------------------------------------------------------------------------

    @property
    def is_fixed(self):
        """Whether the elements are fixed-point (MXINT, HBFP) rather than floats."""
        return isinstance(self.element, FixedFormat)

    @property
    def max_int(self):
        """Largest element integer of a fixed-point element, ``2**(W-1) - 1`` (the range is symmetric)."""
        return (1 << (self.element.bits - 1)) - 1

    @property
    def elem_max(self):
        """The largest element magnitude (float64, exact): elements are clamped to it."""
        if self.is_fixed:
            return float(np.ldexp(float(self.max_int), -self.element.frac_bits))
        return self.element.max_value

    @property
    def emax_elem(self):
        """``floor(log2(elem_max))``: the exponent of the largest element magnitude."""
        if self.is_fixed:
            return self.max_int.bit_length() - 1 - self.element.frac_bits
        return int(np.frexp(self.element.max_value)[1]) - 1

    @property
    def code_dtype(self):
        return self.element.code_dtype

    @property
    def bits_per_element(self):
        """Storage per element including the shared 8-bit scale: ``W + 8/k``."""
        return self.element.width + 8 / self.k

    def spec(self):
        """The canonical spec string (``mx:<element>/<k>`` or ``hbfp<m>/<k>``)."""
        if self.scale == "hbfp":
            return f"hbfp{self.element.bits}/{self.k}"
        return f"mx:{self.element.spec()}/{self.k}"

    def __str__(self):
        return self.name or self.spec()

    # -- the scale rule and the element rounding (section 9.4) ------------------------------------

    def shared_exponent(self, amax):
        """The shared exponent ``s`` of blocks whose largest magnitude is ``amax`` (finite float64
        array, exact), clamped to ``[-127, 127]``; ``-127`` for an all-zero block."""
        amax = np.asarray(amax, dtype=np.float64)
        m, e = np.frexp(amax)                       # amax = m * 2**e, 0.5 <= m < 1
        e = e.astype(np.int64)
        if self.scale == "e8m0":
            s = (e - 1) - self.emax_elem            # floor(log2(amax)) - emax_elem
        else:
            s = np.where(m == 0.5, e - 1, e) - self.emax_elem - 1     # ceil(log2(amax)) for HBFP
        s = np.where(amax > 0, s, SCALE_EXP_MIN)
        return np.clip(s, SCALE_EXP_MIN, SCALE_EXP_MAX).astype(np.int64)

    def round_elements(self, x, rounding="rne", rbits=None, rand_bits=None, fast=True):
        """Element codes of exact float64 values ``x`` (already divided by the scale): rounded into the
        element format with one rounding, then clamped to ``±elem_max`` (the sign is kept).

        ``fast`` allows the compiled roundings (:func:`golden.kernels.round_float`, and
        :func:`golden.raw.round_to_int`'s; identical codes); ``False`` forces the general paths
        (``FloatFormat.encode``, ``round_to_int(..., fast=False)``), the references."""
        el = self.element
        if self.is_fixed:
            n = round_to_int(np.ldexp(x, el.frac_bits), rounding, rbits=rbits, rand_bits=rand_bits, fast=fast)
            n = np.clip(n, -self.max_int, self.max_int)
            return (n & ((1 << el.bits) - 1)).astype(el.code_dtype)
        if fast:
            check_rounding(rounding)
            codes = kernels.round_float(x, el, rounding, rbits, check_rand_bits(rand_bits, rounding), clamp=True)
            if codes is not None:                   # ±Inf already clamped
                return codes
        codes = el.encode(x, rounding, rbits=rbits, rand_bits=rand_bits)
        if el.has_inf:                              # rne/rna/sr overflow to Inf: clamp instead
            codes = np.where(el.is_inf(codes), (codes & el.sign_mask) | el.max_code, codes)
        return codes.astype(el.code_dtype)

    def element_raw(self, codes):
        """Element codes to exact :class:`golden.raw.Raw` values (range-checked)."""
        return self.element.to_raw(codes)


def is_block_spec(spec):
    """Whether the string ``spec`` names a block format (a block preset, ``mx:...``, ``hbfp<m>``, or
    anything with a ``/k`` block size) rather than a scalar format."""
    if not isinstance(spec, str):
        return False
    key = spec.strip().lower()
    head = key.rpartition("/")[0] if "/" in key else key
    return "/" in key or head in BLOCK_PRESET_SPECS or head.startswith("mx:") or bool(_HBFP_RE.match(head))


def parse_block_format(spec):
    """A :class:`BlockFormat` from a preset or spec string (``docs/arithmetic.md`` section 9.3).

    Syntax (case-insensitive): ``<preset>[/k]`` (:data:`BLOCK_PRESET_SPECS`), ``mx:<element>[/k]``
    with any element spec or preset of :func:`golden.formats.parse_format` (e.g. ``mx:e4m3:fn/32``,
    ``mx:fix8.6``), ``hbfp<m>[/k]``; ``k`` defaults to 32. :class:`BlockFormat` objects pass through.
    Raises :class:`~golden.formats.FormatError` (a ``ValueError``) with a one-line message.
    """
    if isinstance(spec, BlockFormat):
        return spec
    if not isinstance(spec, str):
        raise FormatError(f"a block format must be a spec string or a BlockFormat, not {spec!r}")
    key = spec.strip().lower()
    head, k = key, BLOCK_DEFAULT
    if "/" in key:
        head, _, ktext = key.rpartition("/")
        try:
            k = int(ktext)
        except ValueError:
            raise FormatError(f"block size k must be an integer, not {ktext!r} (in {spec!r})") from None
    name = None
    if head in BLOCK_PRESET_SPECS:
        name = head if k == BLOCK_DEFAULT else f"{head}/{k}"
        head = BLOCK_PRESET_SPECS[head][0].rpartition("/")[0]
    if head.startswith("mx:"):
        element, scale = parse_format(head[3:]), "e8m0"
    elif _HBFP_RE.match(head):
        element, scale = _hbfp_element(int(_HBFP_RE.match(head).group(1))), "hbfp"
    else:
        raise FormatError(f"unknown block format {spec!r}: expected a preset ({', '.join(BLOCK_PRESET_SPECS)}), "
                          f"mx:<element>[/k] or hbfp<m>[/k], k from {BLOCK_MIN} to {BLOCK_MAX}")
    return BlockFormat(element, k, scale, name=name)


def block_format_param(name, spec):
    """The block-format parameter ``name``: :func:`parse_block_format` with the parameter's name in
    front of any error (``fmt_a: block size k must be ...``)."""
    try:
        return parse_block_format(spec)
    except FormatError as e:
        raise FormatError(f"{name}: {e}") from None


BLOCK_PRESETS = {name: parse_block_format(name) for name in BLOCK_PRESET_SPECS}


def block_operand_param(name, spec, k=None):
    """The block-format parameter ``name`` of a hardware unit: a :class:`BlockFormat` from a block spec
    or object, or from an element format (a spec such as ``e2m1:finite`` or ``fix8.6``, or a format
    object), which becomes ``mx:<element>/<k>`` (the MX rule).

    ``k`` (the unit's ``block`` parameter) is the block size of a format given without its own:
    an element, or a block format of the default size (a preset without ``/k``); a block format with
    another explicit size is an error naming both. Errors are one-line :class:`FormatError` naming
    the parameter.
    """
    if k is not None:
        k = check_int("block", k, BLOCK_MIN, BLOCK_MAX, error=FormatError)
    if isinstance(spec, BlockFormat) or is_block_spec(spec):
        fmt = block_format_param(name, spec)
        if k is None or k == fmt.k:
            return fmt
        if fmt.k != BLOCK_DEFAULT:
            raise FormatError(f"{name}: {fmt} has block size {fmt.k}, but block is {k}")
        named = None if fmt.name is None else f"{fmt.name.partition('/')[0]}/{k}"
        try:
            return BlockFormat(fmt.element, k, fmt.scale, name=named)
        except FormatError as e:
            raise FormatError(f"{name}: {e}") from None
    try:
        return BlockFormat(parse_format(spec), BLOCK_DEFAULT if k is None else k, "e8m0")
    except FormatError as e:
        raise FormatError(f"{name}: {e}") from None




# -- scales -----------------------------------------------------------------------------------------

def scale_exponents(scales):
    """Scale codes (0 ... 255) to ``(s, nan)``: int64 exponents (0 where NaN) and the NaN flags."""
    c = check_codes("scales", scales).astype(np.int64)
    if c.size and (c.min() < 0 or c.max() > 0xFF):
        raise ValueError("scales must be 8-bit codes (0 to 255)")
    nan = c == SCALE_NAN
    return np.where(nan, 0, c - SCALE_BIAS), nan


# -- conversion (section 9.4) -----------------------------------------------------------------------

_INPUT_DTYPES = (np.dtype(np.float32), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16))


def _input_values(values):
    v = np.asarray(values)
    if v.dtype not in _INPUT_DTYPES:
        raise ValueError(f"values must be a float32 (or bfloat16, float16) array, not {v.dtype}: "
                         f"convert explicitly, e.g. values.astype(np.float32)")
    with np.errstate(invalid="ignore"):             # signalling NaNs are NaNs
        return v.astype(np.float64)                 # exact


def _blocks_axis(shape, axis, k, what):
    if len(shape) == 0:
        raise ValueError(f"{what} need an axis of blocks")
    axis = check_int("axis", axis, -len(shape), len(shape) - 1)
    n = shape[axis]
    if n % k:
        raise ValueError(f"the blocked axis of {what} has length {n}, not a multiple of the block size k={k}")
    return axis % len(shape)


def quantize_blocks(values, fmt, rounding="rne", rbits=None, rand_bits=None, axis=-1, fast=True):
    """Convert FP32/BF16 values to blocks: ``(codes, scales)`` (``docs/arithmetic.md`` section 9.4).

    ``values`` (float32, bfloat16 or float16 array) is cut into blocks of ``fmt.k`` consecutive
    elements along ``axis`` (its length a multiple of ``k``). Returns the element codes (same shape,
    the element's code dtype) and the scale codes (uint8, ``axis`` shortened ``k`` times). Per block:
    the shared exponent ``s`` of the scale kind from the largest magnitude (clamped to
    ``[-127, 127]``; ``-127`` for an all-zero block), each element rounded from the exact ``v / 2**s``
    with ``rounding`` and clamped to ``±elem_max``; a block holding a NaN or ±Inf gets the NaN scale
    ``0xFF`` and element codes 0. ``rbits`` (one ``rand_bits``-bit word per element, broadcasting to
    ``values``) feed ``sr``. ``fast``: as :meth:`BlockFormat.round_elements` (identical codes).
    """
    fmt = block_format_param("fmt", fmt)
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    v = _input_values(values)
    axis = _blocks_axis(v.shape, axis, fmt.k, "values")
    rb = check_rand_words("rbits", rbits, v.shape, R) if rounding == "sr" else None
    v = np.moveaxis(v, axis, -1)
    shape = v.shape
    blocks = v.reshape(*shape[:-1], shape[-1] // fmt.k, fmt.k)
    finite = np.isfinite(blocks)
    special = ~finite.all(axis=-1)
    x = np.where(finite, blocks, 0.0)
    s = fmt.shared_exponent(np.abs(x).max(axis=-1, initial=0.0))
    scaled = np.ldexp(x, -s[..., None])             # exact: a power-of-two scaling within float64
    if rb is not None:
        rb = np.moveaxis(rb, axis, -1).reshape(blocks.shape)
    codes = fmt.round_elements(scaled, rounding, rb, R, fast=fast)
    codes = np.where(special[..., None], 0, codes).astype(fmt.code_dtype)
    scales = np.where(special, SCALE_NAN, s + SCALE_BIAS).astype(np.uint8)
    return np.moveaxis(codes.reshape(shape), -1, axis), np.moveaxis(scales, -1, axis)


def dequantize(codes, scales, fmt, axis=-1):
    """The exact values ``X * P_i`` of blocks as float64 (same shape as ``codes``).

    A NaN scale makes its whole block NaN; otherwise element specials (E5M2 Inf and NaN, E4M3 NaN)
    keep their meaning and zeros their sign. float64 holds every value exactly.
    """
    fmt = block_format_param("fmt", fmt)
    codes = check_codes("codes", codes)
    axis = _blocks_axis(codes.shape, axis, fmt.k, "codes")
    c = np.moveaxis(codes, axis, -1)
    s, nan = scale_exponents(np.moveaxis(np.asarray(scales), axis, -1))
    if s.shape != c.shape[:-1] + (c.shape[-1] // fmt.k,):
        raise ValueError(f"scales of shape {np.shape(scales)} do not match codes of shape {codes.shape} "
                         f"with k={fmt.k} along axis {axis}")
    vals = fmt.element.decode(c).reshape(*s.shape, fmt.k)
    out = np.where(nan[..., None], np.nan, np.ldexp(vals, s[..., None]))
    return np.moveaxis(out.reshape(c.shape), -1, axis)


# -- exact block sums (section 9.5) -----------------------------------------------------------------

def _block_products(fa, fb, a_codes, b_codes, s, nan_scale, group=None):
    """Exact products of element pairs, scaled: ``(sign, sig, exp, nan, inf)`` of shape ``(..., n)``.

    ``s`` and ``nan_scale`` (shape ``(..., n/group)``) are the summed scale exponents and the pair's
    NaN flag of each ``group`` consecutive elements (default ``k``: a block); products get IEEE
    specials (NaN for a NaN operand or ``0 * Inf``, Inf otherwise if an operand is infinite) and
    every product under a NaN scale is NaN.
    """
    ra, rb = fa.element_raw(a_codes), fb.element_raw(b_codes)
    k = fa.k if group is None else group
    rep = (lambda x: np.repeat(x, k, axis=-1))
    zero_a = (ra.sig == 0) & ~ra.nan & ~ra.inf
    zero_b = (rb.sig == 0) & ~rb.nan & ~rb.inf
    nan = ra.nan | rb.nan | (ra.inf & zero_b) | (rb.inf & zero_a) | rep(nan_scale)
    inf = (ra.inf | rb.inf) & ~nan
    sig = np.where(nan | inf, np.uint64(0), ra.sig * rb.sig)   # < 2**32: elements of <= 16 bits
    exp = ra.exp + rb.exp + rep(s)
    return np.broadcast_arrays(ra.sign ^ rb.sign, sig, exp, nan, inf)


def _chunks(n, size):
    return (slice(i, min(n, i + size)) for i in range(0, n, size))


def _parts(sign, sig, exp):
    """Split the exact sum of finite terms (last axis) into exact parts of at most 49 bits each.

    The terms are cut into groups of at most ``G`` and each group's terms into bands of ``w``
    consecutive exponents; with ``lb`` the widest term, a band's sum has at most
    ``w - 1 + lb + log2(G) <= 49`` bits, so ``exact_sum`` returns it exactly. Returns
    ``(sign, sig, exp)`` of shape ``(..., P)``: the parts :func:`golden.accumulator.accumulate_sums`
    re-sums exactly with ``inner`` for a beat wider than ``add_raw``'s domain.
    """
    K = sig.shape[-1]
    nz = sig != 0
    lb = int(bitlen(sig).max(initial=1))
    g = min((K - 1).bit_length(), _ADD_RAW_BITS - lb)   # G = 2**g terms per group (lb <= 32)
    G = 1 << g
    w = _ADD_RAW_BITS + 1 - lb - g
    base = np.where(nz, exp, BIG).min(axis=-1, keepdims=True)
    band = np.where(nz, (exp - base) // w, -1)
    nbands = int(band.max(initial=0)) + 1
    parts = []
    for c in _chunks(K, G):
        for b in range(nbands):
            sel = band[..., c] == b
            if sel.any():
                parts.append(exact_sum(sign[..., c], np.where(sel, sig[..., c], np.uint64(0)), exp[..., c]))
    if any(p[3].any() or (bitlen(p[1]) > _ADD_RAW_BITS).any() for p in parts):
        raise AssertionError("block sum parts must be exact in 49 bits (model precision bug)")
    return tuple(np.stack([p[i] for p in parts], axis=-1) for i in range(3))


def _exact_sums(prods):
    """Exact sums over the last axis of scaled products: ``(S, parts)``.

    ``S`` (a :class:`Raw`) follows the beat rules of ``docs/arithmetic.md`` section 7 item 2 (window
    ``exact``): specials, ``-0`` only when every product is ``-0``, an exact cancellation ``+0``.
    ``parts`` is ``None`` when every finite ``S`` is exact in 49 bits, else :func:`_parts` of all rows.
    """
    sign, sig, exp, nan, inf = prods
    S, _ = window_sum(sign, sig, exp, np.zeros(exp.shape, np.int64), nan, inf, "exact")
    wide = ~S.nan & ~S.inf & (S.sticky | (bitlen(S.sig) > _ADD_RAW_BITS))
    if not wide.any():
        return S, None
    clean = ~nan & ~inf
    return S, _parts(sign, np.where(clean, sig, np.uint64(0)), exp)


def _pair_scales(a_scales, b_scales):
    sa, na = scale_exponents(a_scales)
    sb, nb_ = scale_exponents(b_scales)
    return sa + sb, na | nb_


def _check_pair(fmt_a, fmt_b, lanes):
    fa, fb = block_format_param("fmt_a", fmt_a), block_format_param("fmt_b", fmt_b)
    if fa.k != fb.k:
        raise ValueError(f"fmt_a and fmt_b must have the same block size k (block pairs), not {fa.k} and {fb.k}")
    check_lanes(fa.k, lanes, BLOCK_MAX)             # a hardware parameter: results never depend on it
    return fa, fb


def _check_blocks(name, codes, scales, k):
    codes, scales = check_codes(f"{name}_codes", codes), check_codes(f"{name}_scales", scales)
    if codes.ndim == 0 or codes.shape[-1] % k or scales.shape[-1:] != (codes.shape[-1] // k,):
        raise ValueError(f"{name}_codes (..., n) and {name}_scales (..., n/k) need n a multiple of k={k}, "
                         f"got shapes {codes.shape} and {scales.shape}")
    return codes, scales


def block_sums(a_codes, a_scales, b_codes, b_scales, fmt_a, fmt_b):
    """The exact block sums ``S_j = Xa_j Xb_j sum_i Pa_ji Pb_ji`` of block pairs, as a :class:`Raw`.

    Codes have shape ``(..., n)`` and scales ``(..., n/k)`` (broadcasting); returns shape
    ``(..., n/k)``. Exact whenever the sum fits 62 bits (always for blocks without E5M2 elements);
    otherwise the leading 62 bits and a sticky bit (``golden.exactsum.exact_sum``). The sum's specials
    and zero signs are those of ``docs/arithmetic.md`` section 9.5.
    """
    fa, fb = _check_pair(fmt_a, fmt_b, None)
    a_codes, a_scales = _check_blocks("a", a_codes, a_scales, fa.k)
    b_codes, b_scales = _check_blocks("b", b_codes, b_scales, fa.k)
    s, nan = _pair_scales(a_scales, b_scales)
    prods = _block_products(fa, fb, a_codes, b_codes, s, nan)
    shape = prods[0].shape[:-1] + (prods[0].shape[-1] // fa.k, fa.k)
    S, _ = _exact_sums(tuple(p.reshape(shape) for p in prods))
    return S


def block_dot(a_codes, a_scales, b_codes, b_scales, c, fmt_a, fmt_b, acc_fmt="fp32", rounding="rne",
              rbits=None, rand_bits=None, lanes=None):
    """``y = round(c + sum_j Xa_j * Xb_j * sum_i Pa_ji * Pb_ji)``: one exact sum, one rounding.

    ``docs/arithmetic.md`` section 9.5. ``a_codes``/``b_codes`` ``(..., n)`` element codes of
    ``fmt_a``/``fmt_b`` (same ``k``; ``n = k`` is one block pair, the MX spec's Dot; more blocks give
    the exactly rounded DotGeneral), ``a_scales``/``b_scales`` ``(..., n/k)`` scale codes, all
    broadcasting together; ``c`` codes of ``acc_fmt`` broadcasting to the batch shape (``None``:
    ``-0``, so a single block equals :func:`block_gemm`'s). ``rbits`` (one word per dot product) feed
    ``sr``; ``lanes`` (products per cycle of the hardware) is checked but changes nothing. Returns
    codes of ``acc_fmt`` of the batch shape.
    """
    fa, fb = _check_pair(fmt_a, fmt_b, lanes)
    a_codes, a_scales = _check_blocks("a", a_codes, a_scales, fa.k)
    b_codes, b_scales = _check_blocks("b", b_codes, b_scales, fa.k)
    return _dot(fa, fb, a_codes, a_scales, b_codes, b_scales, c, acc_fmt, rounding, rbits, rand_bits, fa.k)


def beat_dot(a_codes, a_scales, b_codes, b_scales, c, fmt_a, fmt_b, acc_fmt="fp32", rounding="rne",
             rbits=None, rand_bits=None):
    """One beat of ``hw.block_dot``: ``y = round(c + Xa * Xb * sum_i Pa_i * Pb_i)`` over the beat's lanes.

    ``docs/arithmetic.md`` section 9.5 (hardware notes). ``a_codes``/``b_codes`` ``(..., N)``: the
    ``N`` element codes of one beat, ``N`` a divisor of the block size ``k`` (``N = k``: a whole
    block pair, exactly :func:`block_dot` of one block); ``a_scales``/``b_scales`` ``(...)``: the
    scale codes of the block the beat belongs to. A beat of a partial block is rounded as a block of
    its own: the exact sum of its ``N`` products times the block's scales, added to ``c`` with one
    rounding. ``c`` (``None``: ``-0``), ``rbits`` (one word per beat) and the result as in
    :func:`block_dot`.
    """
    fa, fb = _check_pair(fmt_a, fmt_b, None)
    a_codes, a_scales = check_codes("a_codes", a_codes), check_codes("a_scales", a_scales)
    b_codes, b_scales = check_codes("b_codes", b_codes), check_codes("b_scales", b_scales)
    if a_codes.ndim == 0 or b_codes.ndim == 0:
        raise ValueError("a_codes and b_codes need a last axis (the beat's lanes)")
    N = np.broadcast_shapes(a_codes.shape[-1:], b_codes.shape[-1:])[0]
    check_lanes(fa.k, N, BLOCK_MAX)
    return _dot(fa, fb, a_codes, np.asarray(a_scales)[..., None], b_codes, np.asarray(b_scales)[..., None], c,
                acc_fmt, rounding, rbits, rand_bits, N)


def _dot(fa, fb, a_codes, a_scales, b_codes, b_scales, c, acc_fmt, rounding, rbits, rand_bits, group):
    """``round(c + sum over groups of Xa Xb sum_i Pa_i Pb_i)`` with ``group`` elements per scale pair."""
    acc = float_format_param("acc_fmt", acc_fmt)
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    s, nan = _pair_scales(a_scales, b_scales)
    prods = _block_products(fa, fb, a_codes, b_codes, s, nan, group)
    batch = prods[0].shape[:-1]
    B = prod(batch)
    if B == 0:
        return np.zeros(batch, acc.code_dtype)
    S, parts = _exact_sums(tuple(p.reshape(B, -1) for p in prods))
    if rounding == "sr":
        rbits = check_rand_words("rbits", rbits, batch, R).reshape(B, 1)
    init = None
    if c is not None:
        c = check_codes("c", c)
        try:
            init = np.broadcast_to(c, batch).reshape(B)
        except ValueError:
            raise ValueError(f"c of shape {c.shape} does not broadcast to the batch shape {batch}") from None
    out = accumulate_sums(Raw(*(f[:, None] for f in S)), acc, 0, rounding, rbits_inner=rbits, rand_bits=R,
                          terms=None if parts is None else tuple(p[:, None, :] for p in parts), init=init)
    return out.reshape(batch)


# -- the streamed long dot product (section 9.6) ----------------------------------------------------

class _ElementTables:
    """Per-code tables of an element format for the float64 block sums: value, whether the code is a
    special, and for nonzero finite values the exponents bounding them, ``2**lo_exp`` dividing the
    value and ``|value| < 2**hi_exp``."""

    def __init__(self, fmt):
        codes = np.arange(1 << fmt.element.width, dtype=np.int64)
        raw = fmt.element_raw(codes)
        self.special = raw.nan | raw.inf
        self.value = np.where(self.special, 0.0, fmt.element.decode(codes))   # specials: exact path
        nz = (raw.sig != 0) & ~self.special
        tz = bitlen(raw.sig & (~raw.sig + np.uint64(1))) - 1          # trailing zeros of sig
        self.lo_exp = np.where(nz, raw.exp + tz, BIG)
        self.hi_exp = np.where(nz, raw.exp + bitlen(raw.sig), -BIG)

    def stats(self, codes3):
        """Per block (last axis): any special code, the lowest bit ``lo`` of its nonzero values
        (``BIG`` for a block of zeros) and their span ``hi - lo`` in bits (``-BIG`` for zeros)."""
        special = self.special[codes3].any(axis=-1)
        lo = self.lo_exp[codes3].min(axis=-1)
        span = np.maximum(self.hi_exp[codes3].max(axis=-1) - lo, -BIG)
        return special, lo, span


def _tile_sums(fa, fb, A3, Bt3, sA, nA, sB, nB, fast):
    """Exact block sums of a tile of output rows: ``(S, parts)``, ``S`` of shape ``(Mt * N, nb)``.

    ``A3`` ``(Mt, nb, k)`` and ``Bt3`` ``(nb, N, k)`` are element codes. With ``fast`` (a tuple of the
    element tables and the B side's precomputed values and statistics) the block sums are formed by
    one float64 matrix product per block: exact whenever the pair's nonzero values span
    ``span_a + span_b <= 49 - ceil(log2 k)`` bits, since every partial sum, in any order, is then a
    float64 multiple of ``2**(lo_a + lo_b)`` below ``2**(lo_a + lo_b + 49)``; that integer is the
    sum's significand, within ``add_raw``'s 49 bits. Zero sums get their sign from the products
    (``-0`` only if all are ``-0``); other pairs, and pairs with a special code or a NaN scale, take
    the exact integer path (``_exact_sums``), a bounded number of products at a time. The arrays are
    laid out beat-major (``(nb, Mt, N)``) so the accumulation reads each beat contiguously.
    """
    Mt, nb, k = A3.shape
    N = Bt3.shape[1]
    shape = (nb, Mt, N)
    s = sA.T[:, :, None] + sB[:, None, :]                       # (nb, Mt, N)
    nan_scale = nA.T[:, :, None] | nB[:, None, :]
    sign, sig, exp = np.zeros(shape, np.int64), np.zeros(shape, np.uint64), np.zeros(shape, np.int64)
    sticky, nan, inf = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
    step = max(1, _EXACT_PRODUCTS // k)             # block pairs per pass over their products
    if fast:
        ta, tb, vbT, specB, loB, spanB = fast
        specA, loA, spanA = (x.T[:, :, None] for x in ta.stats(A3))      # (nb, Mt, 1)
        va = ta.value[A3].transpose(1, 0, 2)                    # (nb, Mt, k)
        ok = ~(specA | specB[:, None, :] | nan_scale) & \
            (spanA + spanB[:, None, :] <= _ADD_RAW_BITS - (k - 1).bit_length())
        D = np.matmul(va, vbT)                                  # (nb, Mt, N): exact where ok
        nzs = ok & (D != 0)
        lo = np.where(nzs, loA + loB[:, None, :], 0)
        Dn = D[nzs]
        sign[nzs] = np.signbit(Dn)
        sig[nzs] = np.ldexp(np.abs(Dn), -lo[nzs]).astype(np.uint64)         # an integer < 2**49
        exp[nzs] = (lo + s)[nzs]
        j, m, n = np.nonzero(ok & (D == 0))
        for c in _chunks(m.size, step):                         # zero sums: the products' signs
            p = va[j[c], m[c]] * tb.value[Bt3[j[c], n[c]]]
            sign[j[c], m[c], n[c]] = ((p == 0) & np.signbit(p)).all(axis=-1)
        slow = ~ok
    else:
        slow = np.ones(shape, bool)
    j, m, n = np.nonzero(slow)
    found = []
    for c in _chunks(m.size, step):
        jc, mc, nc = j[c], m[c], n[c]
        prods = _block_products(fa, fb, A3[mc, jc], Bt3[jc, nc], s[jc, mc, nc, None], nan_scale[jc, mc, nc, None])
        Sc, pc = _exact_sums(prods)
        for f, g in zip((sign, sig, exp, sticky, nan, inf), Sc):
            f[jc, mc, nc] = g
        if pc is not None:
            found.append(((jc, mc, nc), pc))
    S = Raw(*(f.reshape(nb, Mt * N).T for f in (sign, sig, exp, sticky, nan, inf)))
    if not found:
        return S, None
    P = max(pc[0].shape[-1] for _, pc in found)
    parts = tuple(np.zeros(shape + (P,), dt) for dt in (np.int64, np.uint64, np.int64))
    for idx, pc in found:
        for f, g in zip(parts, pc):
            f[idx + (slice(0, g.shape[-1]),)] = g
    return S, tuple(f.reshape(nb, Mt * N, P).transpose(1, 0, 2) for f in parts)


@lru_cache(maxsize=32)
def _value_table(el):
    """The float64 value of every code of the element format ``el`` (NaN and ±Inf included), read-only."""
    t = el.decode(np.arange(1 << el.width, dtype=np.int64))
    t.flags.writeable = False
    return t


@lru_cache(maxsize=32)
def _exponent_range(el):
    """``(lo, hi)``: every nonzero finite value of ``el`` is a multiple of ``2**lo`` below ``2**hi``."""
    t = _ElementTables(BlockFormat(el, BLOCK_MIN))
    return int(t.lo_exp.min()), int(t.hi_exp.max())


def _checked_codes(el, codes):
    """``codes`` as int64 after the element format's range check (its one-line ``ValueError``)."""
    c = codes.astype(np.int64)
    if c.size and (c.min() < 0 or c.max() >= 1 << el.width):
        el.decode(c)                                # raises the format's own one-line error
        raise ValueError(f"codes out of range for {el.width}-bit element format {el}")
    return c


def _significant_bits(el):
    """A bound on the significant bits of an element magnitude: the precision of a float element,
    ``W - 1`` for a ``W``-bit fixed-point one (``|n| <= 2**(W-1)``, and ``2**(W-1)`` has one bit)."""
    return el.bits - 1 if isinstance(el, FixedFormat) else el.precision


def _kernel_range_ok(fa, fb):
    """Whether every nonzero product of two scaled elements (scales ``|s| <= 127``) and every sum of
    ``k <= 64`` of them lies inside the magnitudes ``2**-600 ... 2**520`` the kernel's exactness
    argument assumes (:mod:`golden.kernels`). True for every element :class:`BlockFormat` accepts
    (8-bit floats of any bias and 16-bit fixed point of any ``F`` have nonzero magnitudes within
    ``2**-128 ... 2**128``, so products of scaled elements lie within ``2**-510 ... 2**516``; the
    presets within ``2**-286 ... 2**297``): the check keeps a wider future element off the kernel."""
    (la, ha), (lb, hb) = _exponent_range(fa.element), _exponent_range(fb.element)
    return la + lb - 2 * SCALE_EXP_MAX >= -600 and ha + hb + 2 * SCALE_EXP_MAX + 6 <= 520


def _scaled_values(el, codes, s, nan):
    """The float64 values ``X * P`` of element codes ``codes`` (int64) whose block's scale exponent
    is ``s`` and NaN-scale flag ``nan`` (both broadcasting against ``codes``): exact under
    :func:`_kernel_range_ok`; a NaN scale makes its whole block NaN, elements keep their own
    specials and zero signs."""
    v = np.ldexp(_value_table(el)[codes], s)
    v[np.broadcast_to(nan, v.shape)] = np.nan
    return v


def _pair_gemm(fa, fb, acc, A3, Bt3, sA, nA, sB, nB, rows, cols, cb, rounding, ri, ro, R):
    """``C[rows[i], cols[i]]`` on the exact path: the exact block sums of those outputs
    (:func:`_exact_sums`, a bounded number of products at a time) streamed through
    :func:`golden.accumulator.accumulate_sums`. ``ri`` ``(P, nb)``, ``ro`` ``(P, n_outer)``: the
    outputs' words of ``sr`` (``None`` otherwise)."""
    P = rows.size
    nb, k = A3.shape[1:]
    out = np.empty(P, acc.code_dtype)
    for c in _chunks(P, max(1, _EXACT_PRODUCTS // (nb * k))):
        r, q = rows[c], cols[c]
        p = r.size
        s = (sA[r] + sB[:, q].T).reshape(p * nb, 1)
        nan = (nA[r] | nB[:, q].T).reshape(p * nb, 1)
        prods = _block_products(fa, fb, A3[r].reshape(p * nb, k), Bt3[:, q].transpose(1, 0, 2).reshape(p * nb, k),
                                s, nan)
        S, parts = _exact_sums(prods)
        out[c] = accumulate_sums(
            Raw(*(f.reshape(p, nb) for f in S)), acc, cb, rounding,
            rbits_inner=None if ri is None else ri[c], rbits_outer=None if ro is None else ro[c], rand_bits=R,
            terms=None if parts is None else tuple(t.reshape(p, nb, -1) for t in parts))
    return out


def block_gemm(A_codes, A_scales, B_codes, B_scales, fmt_a, fmt_b, acc_fmt="fp32", rounding="rne", chunk=0,
               rbits_inner=None, rbits_outer=None, rand_bits=None, lanes=None, fast=True):
    """``C = A @ B`` over block pairs, as the hardware's block front end of the accumulator computes it.

    ``docs/arithmetic.md`` section 9.6. ``A_codes`` ``(M, K)`` with ``A_scales`` ``(M, K/k)`` (blocks
    along ``K``, the rows of ``A``); ``B_codes`` ``(K, N)`` with ``B_scales`` ``(K/k, N)`` (blocks along
    ``K``, the columns of ``B``). ``C[m, n]`` is the chunk-based accumulation (section 7, item 3) of
    the beats ``S_j = Xa[m, j] * Xb[j, n] * sum_i A[m, jk+i] * B[jk+i, n]``, each the exact block sum
    (section 9.5): ``inner <- round(inner + S_j)``, one rounding per block into ``acc_fmt``, with
    ``chunk`` (``CL`` in products, a multiple of ``k``; 0, the default, no chunking) and the chunk
    flushes of section 7. ``sr`` takes ``rbits_inner`` ``(M, N, K/k)`` and ``rbits_outer``
    ``(M, N, ceil(K/chunk))``. ``lanes`` is checked (it divides ``k``) and changes nothing. Returns
    ``(M, N)`` codes of ``acc_fmt``.

    ``fast`` (default) allows the fast paths, which give identical results; ``False`` forces the
    exact integer path (the reference). Fast paths, in order:

    * the compiled accumulator kernel (:func:`golden.kernels.accumulate`, where
      :func:`golden.kernels.applies`): a block pair is the accumulator's beat of ``k`` lanes once
      each element carries its block's scale (``X * P``, exact in float64, NaN under a NaN scale;
      the beat's specials and zero signs are then those of section 9.5), so ``C`` is the kernel's
      exact-window accumulation with ``lanes = k``; outputs with a block sum the kernel cannot prove
      exact in float64 (spans beyond 53 bits: wide E5M2 blocks) are recomputed on the exact path;
    * otherwise (e.g. ``sr`` with ``M + R > 51``) the float64 block sums of :func:`_tile_sums` into
      :func:`golden.accumulator.accumulate_sums`.
    """
    fa, fb = _check_pair(fmt_a, fmt_b, lanes)
    acc = float_format_param("acc_fmt", acc_fmt)
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    k = fa.k
    A, Asc = check_codes("A_codes", A_codes), check_codes("A_scales", A_scales)
    Bc, Bsc = check_codes("B_codes", B_codes), check_codes("B_scales", B_scales)
    if A.ndim != 2 or Bc.ndim != 2 or A.shape[1] != Bc.shape[0]:
        raise ValueError(f"block_gemm needs A_codes (M, K) and B_codes (K, N), got shapes {A.shape} and {Bc.shape}")
    (M, K), N = A.shape, Bc.shape[1]
    if K % k or K == 0:
        raise ValueError(f"the reduction length K={K} must be a positive multiple of the block size k={k}")
    nb = K // k
    if Asc.shape != (M, nb) or Bsc.shape != (nb, N):
        raise ValueError(f"A_scales must have shape {(M, nb)} and B_scales {(nb, N)}, "
                         f"not {Asc.shape} and {Bsc.shape}")
    chunk = check_int("chunk", chunk, 0)
    if chunk % k:
        raise ValueError(f"chunk={chunk} must be 0 (no chunking) or a multiple of the block size k={k}")
    cb = chunk // k
    n_outer = -(-nb // cb) if cb else 0
    pbits = _significant_bits(fa.element) + _significant_bits(fb.element)       # of a product
    compiled = fast and kernels.applies(acc, rounding, R, pbits) and _kernel_range_ok(fa, fb)
    if compiled:
        rbi, rbo = kernel_words(rounding, rbits_inner, rbits_outer, (M, N), K, k, chunk, R)
    elif rounding == "sr":
        rbi = check_rand_words("rbits_inner", rbits_inner, (M, N, nb), R)
        rbo = check_rand_words("rbits_outer", rbits_outer, (M, N, n_outer), R) if cb else None
    else:
        rbi = rbo = None
    A64, B64 = _checked_codes(fa.element, A), _checked_codes(fb.element, Bc)
    sA, nA = scale_exponents(Asc)
    sB, nB = scale_exponents(Bsc)
    A3 = A64.reshape(M, nb, k)
    if compiled:
        Av = _scaled_values(fa.element, A3, sA[..., None], nA[..., None]).reshape(M, K)
        Bv = _scaled_values(fb.element, B64.reshape(nb, k, N), sB[:, None, :], nB[:, None, :]).reshape(K, N)
        Bt3 = None

        def general(rows, cols, ri, ro):
            nonlocal Bt3
            if Bt3 is None:
                Bt3 = np.ascontiguousarray(B64.reshape(nb, k, N).transpose(0, 2, 1))
            return _pair_gemm(fa, fb, acc, A3, Bt3, sA, nA, sB, nB, rows, cols, cb, rounding, ri, ro, R)

        return run_kernel(Av, Bv, None, None, None, acc, k, chunk, "exact", rounding, R, rbi, rbo, pbits, general)
    Bt3 = np.ascontiguousarray(B64.reshape(nb, k, N).transpose(0, 2, 1))   # (nb, N, k)
    tables = None
    if fast:
        ta, tb = _ElementTables(fa), _ElementTables(fb)
        specB, loB, spanB = tb.stats(Bt3)                                                # (nb, N)
        tables = (ta, tb, np.ascontiguousarray(tb.value[Bt3].transpose(0, 2, 1)), specB, loB, spanB)
    out = np.empty((M, N), acc.code_dtype)
    tile = max(1, _TILE_BEATS // max(1, N * nb))
    for m0 in range(0, M, tile):
        m1 = min(M, m0 + tile)
        S, parts = _tile_sums(fa, fb, A3[m0:m1], Bt3, sA[m0:m1], nA[m0:m1], sB, nB, tables)
        rows = (m1 - m0) * N
        out[m0:m1] = accumulate_sums(
            S, acc, cb, rounding,
            rbits_inner=None if rbi is None else rbi[m0:m1].reshape(rows, nb),
            rbits_outer=None if rbo is None else rbo[m0:m1].reshape(rows, n_outer),
            rand_bits=R, terms=parts).reshape(m1 - m0, N)
    return out
