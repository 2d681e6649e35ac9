"""Number formats: parameters, spec strings, presets, decode and encode.

The semantics are those of ``docs/arithmetic.md`` (sections 1-3). Every function here works on NumPy
arrays of integer *codes* (the bit patterns, as unsigned integers) and never draws random bits itself:
stochastic rounding takes them as an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .checks import check_int
from .raw import from_float, from_int, round_raw, round_to_int, unpack_float

__all__ = [
    "FloatFormat", "IntFormat", "FixedFormat", "Format", "FormatError", "parse_format", "PRESETS",
    "parse_format_param", "float_format_param",
]

SPECIALS = ("ieee", "fn", "finite")


class FormatError(ValueError):
    """A format parameter or spec string is invalid. The message is one line naming the parameter."""


def _index(name, value):
    return check_int(name, value, error=FormatError)


def parse_format_param(name, spec):
    """:func:`parse_format` with the parameter's name in front of any error (``--target: ...``)."""
    try:
        return parse_format(spec)
    except FormatError as e:
        raise FormatError(f"{name}: {e}") from None


def float_format_param(name, spec, radix2=True):
    """The float format parameter ``name``: a :class:`FloatFormat` from a spec, preset or object.

    The one check of a float-format parameter (generators and golden models alike): anything else
    (an integer or fixed-point format, a radix-4 format when ``radix2``) is a :class:`FormatError`
    naming the parameter.
    """
    fmt = parse_format_param(name, spec)
    if not isinstance(fmt, FloatFormat) or (radix2 and fmt.radix != 2):
        raise FormatError(f"{name} must be a {'radix-2 ' if radix2 else ''}float format, not {fmt}")
    return fmt


@dataclass(frozen=True)
class FloatFormat:
    """A sign/exponent/mantissa format (``docs/arithmetic.md`` section 1).

    Parameters
    ----------
    exp_bits : int
        Width ``E`` of the exponent field, 1 to 8.
    man_bits : int
        Width ``M`` of the mantissa (fraction) field, 0 to 23; 0 for radix 4.
    bias : int
        Exponent bias, ``0 <= bias < 2**E``; default ``2**(E-1) - 1``.
    radix : int
        2, or 4 for mantissa-less formats whose exponent steps by factors of 4.
    subnormals : bool
        Whether exponent field 0 encodes subnormals (radix 2) or, for rounding, whether the spacing
        below the smallest normal is the subnormal spacing; ``False`` flushes to zero.
    specials : str
        ``"ieee"`` (Inf and NaN in the top exponent), ``"fn"`` (the all-ones magnitude is the only NaN,
        no Inf) or ``"finite"`` (no special codes).
    """

    exp_bits: int
    man_bits: int
    bias: int = None
    radix: int = 2
    subnormals: bool = True
    specials: str = "ieee"
    name: str = field(default=None, compare=False)

    def __post_init__(self):
        e = _index("exp_bits", self.exp_bits)
        m = _index("man_bits", self.man_bits)
        if not 1 <= e <= 8:
            raise FormatError(f"exp_bits must be between 1 and 8, not {e}")
        if not 0 <= m <= 23:
            raise FormatError(f"man_bits must be between 0 and 23, not {m}")
        bias = (1 << (e - 1)) - 1 if self.bias is None else _index("bias", self.bias)
        if not 0 <= bias < (1 << e):
            raise FormatError(f"bias must be between 0 and {(1 << e) - 1} for {e} exponent bits, not {bias}")
        if self.radix not in (2, 4) or isinstance(self.radix, bool):
            raise FormatError(f"radix must be 2 or 4, not {self.radix!r}")
        if self.radix == 4 and m != 0:
            raise FormatError(f"radix-4 formats have no mantissa: man_bits must be 0, not {m}")
        if not isinstance(self.subnormals, bool):
            raise FormatError(f"subnormals must be True or False, not {self.subnormals!r}")
        if self.specials not in SPECIALS:
            raise FormatError(f"specials must be one of {', '.join(SPECIALS)}, not {self.specials!r}")
        if self.specials == "ieee" and m == 0:
            raise FormatError("specials 'ieee' needs at least 1 mantissa bit (NaN codes); use 'fn' or 'finite'")
        if self.specials == "ieee" and e < 2:
            raise FormatError("specials 'ieee' needs at least 2 exponent bits; use 'fn' or 'finite'")
        object.__setattr__(self, "exp_bits", e)
        object.__setattr__(self, "man_bits", m)
        object.__setattr__(self, "bias", bias)

    # -- derived constants ------------------------------------------------------------------------

    @property
    def width(self):
        """Total code width ``1 + E + M``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self):
        """Significand precision ``p = M + 1`` (radix 2)."""
        return self.man_bits + 1

    @property
    def has_inf(self):
        return self.specials == "ieee"

    @property
    def has_nan(self):
        return self.specials != "finite"

    @property
    def exp_max_field(self):
        """Largest exponent field value that encodes finite numbers."""
        top = (1 << self.exp_bits) - 1
        # ieee: the top exponent is Inf/NaN; fn without mantissa: the top exponent is the NaN.
        return top - 1 if self.specials == "ieee" or (self.specials == "fn" and not self.man_bits) else top

    @property
    def emin(self):
        """Exponent of the smallest normal, in the format's radix: ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self):
        """Exponent of the largest binade, in the format's radix."""
        return self.exp_max_field - self.bias

    @property
    def max_code(self):
        """Magnitude code (sign bit clear) of the largest finite value."""
        all_ones = (1 << (self.exp_bits + self.man_bits)) - 1
        if self.specials == "ieee":
            return (self.exp_max_field << self.man_bits) | ((1 << self.man_bits) - 1)
        if self.specials == "fn":
            return all_ones - 1
        return all_ones

    @property
    def nan_code(self):
        """The canonical NaN code (``None`` for finite formats)."""
        if self.specials == "ieee":
            return (((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))
        if self.specials == "fn":
            return (1 << self.width) - 1
        return None

    @property
    def inf_code(self):
        """Code of +Inf (``None`` without Inf)."""
        return ((1 << self.exp_bits) - 1) << self.man_bits if self.has_inf else None

    @property
    def sign_mask(self):
        return 1 << (self.width - 1)

    @property
    def code_dtype(self):
        return np.uint8 if self.width <= 8 else np.uint16 if self.width <= 16 else np.uint32

    @property
    def max_value(self):
        return float(self.decode(np.array([self.max_code]))[0])

    @property
    def min_normal(self):
        return float(self.decode(np.array([1 << self.man_bits]))[0])

    def spec(self):
        """The canonical spec string (see :func:`parse_format`)."""
        s = f"e{self.exp_bits}m{self.man_bits}"
        if self.bias != (1 << (self.exp_bits - 1)) - 1:
            s += f":bias={self.bias}"
        if self.radix == 4:
            s += ":r4"
        if not self.subnormals:
            s += ":nosub"
        if self.specials != "ieee":
            s += f":{self.specials}"
        return s

    def __str__(self):
        return self.name or self.spec()

    # -- classification ---------------------------------------------------------------------------

    def fields(self, codes):
        """Split codes into ``(sign, exp_field, man_field)`` int64 arrays."""
        codes = np.asarray(codes).astype(np.int64)
        if np.any((codes < 0) | (codes >= (1 << self.width))):
            raise ValueError(f"codes out of range for {self.width}-bit format {self}")
        man = codes & ((1 << self.man_bits) - 1)
        exp = (codes >> self.man_bits) & ((1 << self.exp_bits) - 1)
        sign = codes >> (self.width - 1)
        return sign, exp, man

    def is_nan(self, codes):
        sign, exp, man = self.fields(codes)
        top = (1 << self.exp_bits) - 1
        if self.specials == "ieee":
            return (exp == top) & (man != 0)
        if self.specials == "fn":
            return (exp == top) & (man == (1 << self.man_bits) - 1)
        return np.zeros(np.shape(exp), dtype=bool)

    def is_inf(self, codes):
        sign, exp, man = self.fields(codes)
        if self.specials == "ieee":
            return (exp == (1 << self.exp_bits) - 1) & (man == 0)
        return np.zeros(np.shape(exp), dtype=bool)

    def all_codes(self):
        """Every code of the format, ascending."""
        return np.arange(1 << self.width, dtype=np.int64)

    def edge_codes(self):
        """The codes at the format's edges, both signs, ascending: zero, the smallest magnitude
        code, the smallest normal, the largest finite value, Inf and the canonical NaN (where the
        format has them). Test stimuli for every unit."""
        mags = {0, 1, 1 << self.man_bits, self.max_code}
        if self.has_inf:
            mags.add(self.inf_code)
        if self.has_nan:
            mags.add(self.nan_code & (self.sign_mask - 1))
        return np.array(sorted(m | s for m in mags for s in (0, self.sign_mask)), dtype=np.int64)

    # -- decode / encode --------------------------------------------------------------------------

    def to_raw(self, codes):
        """Codes to exact :class:`golden.raw.Raw` values."""
        return unpack_float(self, codes)

    def decode(self, codes):
        """Codes to float64 values (exact for every format this class accepts)."""
        raw = self.to_raw(codes)
        mag = np.ldexp(raw.sig.astype(np.float64), raw.exp.astype(np.int64))
        mag = np.where(raw.inf, np.inf, mag)
        val = np.where(raw.sign != 0, -mag, mag)
        return np.where(raw.nan, np.nan, val)

    def encode(self, values, rounding="rne", rbits=None, rand_bits=None):
        """Round float64 ``values`` into codes of this format (``docs/arithmetic.md`` section 2).

        ``rbits`` (integers ``0 <= r < 2**rand_bits``, broadcast against ``values``) is required for
        ``rounding="sr"`` and ignored otherwise.
        """
        return round_raw(self, from_float(values), rounding, rbits=rbits, rand_bits=rand_bits)


class _IntegerCodes:
    """Code handling shared by the integer-coded formats: ``bits`` wide, two's complement if
    ``signed``."""

    @property
    def width(self):
        return self.bits

    @property
    def code_dtype(self):
        return np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else (
            np.uint32 if self.bits <= 32 else np.uint64)

    def __str__(self):
        return self.name or self.spec()

    def all_codes(self):
        """Every code, ascending."""
        return np.arange(1 << self.bits, dtype=np.int64)

    #: Weight of the least significant bit is ``2**-frac_bits`` (0 for integers).
    frac_bits = 0

    def to_raw(self, codes):
        """Codes to exact :class:`golden.raw.Raw` values."""
        raw = from_int(self.to_int(codes))
        return raw._replace(exp=raw.exp - self.frac_bits)

    def to_int(self, codes):
        """Codes to integer values (int64)."""
        codes = np.asarray(codes).astype(np.int64)
        if np.any((codes < 0) | (codes >= (1 << self.bits))):
            raise ValueError(f"codes out of range for {self}")
        if self.signed:
            return np.where(codes >= (1 << (self.bits - 1)), codes - (1 << self.bits), codes)
        return codes


@dataclass(frozen=True)
class IntFormat(_IntegerCodes):
    """A two's-complement (``signed``) or unsigned integer format of ``bits`` bits.

    Encoding rounds to an integer with the given mode and saturates to the range.
    """

    bits: int
    signed: bool = True
    name: str = field(default=None, compare=False)

    def __post_init__(self):
        b = _index("bits", self.bits)
        if not 1 <= b <= 32:
            raise FormatError(f"bits must be between 1 and 32, not {b}")
        if self.signed and b < 2:
            raise FormatError("a signed integer format needs at least 2 bits")
        object.__setattr__(self, "bits", b)

    @property
    def min_int(self):
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self):
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def spec(self):
        return f"{'int' if self.signed else 'uint'}{self.bits}"

    def from_int(self, ints):
        """Integer values (in range) to codes."""
        ints = np.asarray(ints).astype(np.int64)
        if np.any((ints < self.min_int) | (ints > self.max_int)):
            raise ValueError(f"integers out of range for {self}")
        return ints & ((1 << self.bits) - 1)

    def decode(self, codes):
        return self.to_int(codes).astype(np.float64)

    def encode(self, values, rounding="rne", rbits=None, rand_bits=None):
        """Round float64 values to integers (saturating; NaN gives 0)."""
        ints = round_to_int(values, rounding, rbits=rbits, rand_bits=rand_bits)
        return self.from_int(np.clip(ints, self.min_int, self.max_int))


@dataclass(frozen=True)
class FixedFormat(_IntegerCodes):
    """A fixed-point format: ``bits``-bit two's complement (``signed``) or unsigned integer ``n``
    meaning ``n * 2**-frac_bits``. Spec ``fix<W>.<F>`` / ``ufix<W>.<F>`` (``F`` may be negative)."""

    bits: int
    frac_bits: int
    signed: bool = True
    name: str = field(default=None, compare=False)

    def __post_init__(self):
        b = _index("bits", self.bits)
        f = _index("frac_bits", self.frac_bits)
        if not (2 if self.signed else 1) <= b <= 48:
            raise FormatError(f"fixed-point bits must be between {2 if self.signed else 1} and 48, not {b}")
        if not -64 <= f <= 128:
            raise FormatError(f"fixed-point frac_bits must be between -64 and 128, not {f}")
        object.__setattr__(self, "bits", b)
        object.__setattr__(self, "frac_bits", f)

    def spec(self):
        return f"{'' if self.signed else 'u'}fix{self.bits}.{self.frac_bits}"

    def decode(self, codes):
        return np.ldexp(self.to_int(codes).astype(np.float64), -self.frac_bits)


Format = FloatFormat | IntFormat | FixedFormat

#: Named presets: name -> (spec, source). ``docs/arithmetic.md`` section 3 documents each.
PRESET_SPECS = {
    "fp8_e5m2": ("e5m2", "Wang et al. 2018 FP8 (1-5-2); HFP8 backward format; ml_dtypes float8_e5m2"),
    "fp8_e4m3": ("e4m3:fn", "HFP8 forward width (Sun et al. 2019); ml_dtypes float8_e4m3fn (OCP E4M3)"),
    "fp16_e6m9": ("e6m9:nosub:fn", "Wang et al. 2018 1-6-9 accumulation format as IBM describes it"),
    "fp16": ("e5m10", "IEEE 754 binary16"),
    "bf16": ("e8m7", "bfloat16"),
    "fp32": ("e8m23", "IEEE 754 binary32"),
    "fp4_r4": ("e3m0:r4:bias=4:nosub:finite", "Sun et al. 2020 radix-4 FP4 (1-3-0): 4^-3 ... 4^3 and zero"),
    "fp4_luq": ("e3m0:bias=1:finite", "Chmiel et al. 2023 LUQ FP4 (1-3-0), units of alpha: 2^0 ... 2^6 and zero"),
    "int4": ("int4", "Sun et al. 2020 INT4 weights/activations (two's complement)"),
}

_SPEC_RE = re.compile(r"^e(\d+)m(\d+)$")
_INT_RE = re.compile(r"^(u?)int(\d+)$")
_FIX_RE = re.compile(r"^(u?)fix(\d+)\.(-?\d+)$")


def _parse_spec(spec):
    head, *mods = spec.split(":")
    m = _INT_RE.match(head)
    if m:
        if mods:
            raise FormatError(f"integer format {head!r} takes no modifiers, got {':'.join(mods)!r}")
        return IntFormat(int(m.group(2)), signed=not m.group(1))
    m = _FIX_RE.match(head)
    if m:
        if mods:
            raise FormatError(f"fixed-point format {head!r} takes no modifiers, got {':'.join(mods)!r}")
        return FixedFormat(int(m.group(2)), int(m.group(3)), signed=not m.group(1))
    m = _SPEC_RE.match(head)
    if not m:
        raise FormatError(
            f"unknown format {spec!r}: expected a preset ({', '.join(PRESET_SPECS)}), "
            f"e<E>m<M>[:bias=N][:nosub][:fn|:finite][:r4], int<N>/uint<N> or fix<W>.<F>/ufix<W>.<F>")
    kwargs = dict(exp_bits=int(m.group(1)), man_bits=int(m.group(2)))
    for mod in mods:
        if mod.startswith("bias="):
            try:
                kwargs["bias"] = int(mod[5:])
            except ValueError:
                raise FormatError(f"bias must be an integer, not {mod[5:]!r} (in {spec!r})") from None
        elif mod == "nosub":
            kwargs["subnormals"] = False
        elif mod in ("fn", "finite", "ieee"):
            if "specials" in kwargs:
                raise FormatError(f"more than one specials modifier in {spec!r}")
            kwargs["specials"] = mod
        elif mod == "r4":
            kwargs["radix"] = 4
        else:
            raise FormatError(f"unknown format modifier {mod!r} in {spec!r}: "
                              f"allowed are bias=N, nosub, fn, finite, ieee, r4")
    return FloatFormat(**kwargs)


def parse_format(spec):
    """A :class:`FloatFormat`, :class:`IntFormat` or :class:`FixedFormat` from a preset or spec string.

    ``e<E>m<M>`` is IEEE-style (bias ``2**(E-1)-1``, subnormals, Inf/NaN) with modifiers ``:bias=N``,
    ``:nosub``, ``:fn``, ``:finite``, ``:r4``; ``int<N>``/``uint<N>`` are integers. Format objects
    pass through unchanged. Raises :class:`FormatError` (a ``ValueError``) with a one-line message.
    """
    if isinstance(spec, (FloatFormat, IntFormat, FixedFormat)):
        return spec
    if not isinstance(spec, str):
        raise FormatError(f"a format must be a spec string or a format object, not {spec!r}")
    key = spec.strip().lower()
    if key in PRESET_SPECS:
        fmt = _parse_spec(PRESET_SPECS[key][0])
        object.__setattr__(fmt, "name", key)
        return fmt
    return _parse_spec(key)


PRESETS = {name: parse_format(name) for name in PRESET_SPECS}
