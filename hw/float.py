"""Float formats as Amaranth layouts, the raw (unpacked) value, and the unpacker.

``docs/arithmetic.md`` section 1 defines the formats; section 4 the raw value the datapaths carry
between the unpacker and the one rounder (:mod:`hw.rounder`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.formats import FloatFormat
from .validate import rejects_quietly

__all__ = ["FloatLayout", "FloatView", "RawLayout", "LaneSumLayout", "Unpack", "radix2_format", "float_format",
           "exp_shape_for"]


def float_format(fmt):
    """``fmt`` itself if it is a :class:`FloatFormat` object of radix 2 or 4 (see
    :func:`radix2_format`; only the rounder takes radix-4 formats)."""
    if not isinstance(fmt, FloatFormat):
        raise TypeError(f"expected a FloatFormat object, not {fmt!r}")
    return fmt


def radix2_format(fmt):
    """``fmt`` itself if it is a radix-2 :class:`FloatFormat` object.

    The shared blocks take format *objects*, parsed and validated once where the parameter enters
    (the CLI, or a unit's constructor through :func:`golden.formats.float_format_param`); passing
    anything else is a programming error.
    """
    if not isinstance(fmt, FloatFormat) or fmt.radix != 2:
        raise TypeError(f"expected a radix-2 FloatFormat object, not {fmt!r}")
    return fmt


def exp_shape_for(lo, hi):
    """The smallest signed shape holding every integer in ``[lo, hi]``."""
    return Shape.cast(range(min(lo, -1), max(hi, 0) + 1))


class FloatView(data.View):
    """A view of a float code with classification helpers (all combinational)."""

    @property
    def number_format(self):
        return self.shape().number_format

    def exp_all_ones(self):
        return self.exp == (1 << self.number_format.exp_bits) - 1

    def is_nan(self):
        fmt = self.number_format
        if fmt.specials == "ieee":
            return self.exp_all_ones() & self.man.any()
        if fmt.specials == "fn":
            return self.exp_all_ones() & (self.man.all() if fmt.man_bits else Const(1))
        return Const(0)

    def is_inf(self):
        if self.number_format.specials == "ieee":
            return self.exp_all_ones() & ~self.man.any()
        return Const(0)

    def is_zero(self):
        fmt = self.number_format
        if fmt.man_bits and fmt.subnormals and fmt.radix == 2:
            return (self.exp == 0) & ~self.man.any()
        return self.exp == 0


class FloatLayout(data.StructLayout):
    """Layout of a code of ``fmt``: fields ``man``, ``exp``, ``sign`` (least significant first)."""

    def __init__(self, fmt):
        if not isinstance(fmt, FloatFormat):
            raise TypeError(f"expected a FloatFormat object, not {fmt!r}")
        self.number_format = fmt
        super().__init__({"man": fmt.man_bits, "exp": fmt.exp_bits, "sign": 1})

    def __call__(self, target):
        return FloatView(self, target)

    def __repr__(self):
        return f"FloatLayout({self.number_format.spec()})"


def RawLayout(sig_width, exp_shape):
    """A raw value ``(-1)**sign * (sig + sticky*eps) * 2**(exp - (sig_width - 1))``.

    ``exp`` is the (unbiased) exponent of ``sig``'s most significant bit; ``sticky`` stands for
    nonzero bits below ``sig``'s least significant bit. Flags mark NaN, Inf and exact zero.
    """
    return data.StructLayout({
        "sig": sig_width, "exp": exp_shape, "sticky": 1, "sign": 1,
        "is_nan": 1, "is_inf": 1, "is_zero": 1,
    })


def LaneSumLayout(sum_width, exp_shape):
    """A beat's exact lane sum as the accumulator takes it: ``sum * 2**lsb_exp`` (two's complement
    ``sum``), with the beat's specials (NaN; an Inf and its sign; the sign of a zero sum)."""
    return data.StructLayout({
        "sum": signed(sum_width), "lsb_exp": exp_shape,
        "nan": 1, "inf": 1, "inf_sign": 1, "zero_sign": 1,
    })


class Unpack(wiring.Component):
    """Classify a code and expose its raw value. Combinational.

    Parameters
    ----------
    fmt : FloatFormat
        Radix-2 format of the input.

    zero_specials : bool
        Whether NaN and Inf codes give ``sig = 0`` (callers that override the datapath by the
        flags can save the gates).

    Members
    -------
    i : In(FloatLayout(fmt))
    o : Out(RawLayout(fmt.precision, exp_shape))
        ``sig`` has the hidden bit on top (0 for subnormals, whose ``exp`` is ``emin``); ``exp`` ranges
        over ``[emin, emax]``. Zeros give ``sig = 0``.
    """

    @rejects_quietly
    def __init__(self, fmt, zero_specials=True):
        self._fmt = fmt = radix2_format(fmt)
        self._zero_specials = zero_specials
        self.exp_range = (fmt.emin, max(fmt.emax, fmt.emin))
        super().__init__({
            "i": In(FloatLayout(fmt)),
            "o": Out(RawLayout(fmt.precision, exp_shape_for(*self.exp_range))),
        })

    @property
    def format(self):
        return self._fmt

    def elaborate(self, platform):
        m = Module()
        fmt, i, o = self._fmt, self.i, self.o
        nonzero_exp = i.exp != 0
        is_nan, is_inf = i.is_nan(), i.is_inf()
        special = is_nan | is_inf
        hidden = nonzero_exp if fmt.subnormals else Const(1)
        man = i.man if fmt.man_bits else Const(0, 0)
        m.d.comb += [
            o.sign.eq(i.sign),
            o.exp.eq(Mux(nonzero_exp, i.exp, 1) - fmt.bias),
            # Without subnormals an exponent field of 0 is a zero whatever the mantissa.
            o.sig.eq(Mux((special if self._zero_specials else 0) | (~nonzero_exp if not fmt.subnormals else 0),
                         0, Cat(man, hidden))),
            o.sticky.eq(0),
            o.is_nan.eq(is_nan),
            o.is_inf.eq(is_inf),
            o.is_zero.eq(i.is_zero()),
        ]
        return m
