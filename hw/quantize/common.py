"""What the quantizer units share: parameter checks and the per-lane front end.

:class:`SourceRaw` turns one code of the source format into the raw value the one rounder
(:class:`hw.rounder.Rounder`) takes: unpack, normalize when a subnormal input could reach a rounding
position that depends on its leading one, and cut the significand to the bits rounding examines plus
a sticky bit. The quantizers then move the exponent by their power-of-two scale and round once.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_bool, check_int
from golden.formats import float_format_param

from ..align import shift_left
from ..float import FloatLayout, RawLayout, Unpack, exp_shape_for
from ..lzc import leading_zeros
from ..validate import rejects_quietly

__all__ = ["MAX_LANES", "check_source", "check_quant_lanes", "SourceRaw", "pack_lanes", "scaled_exponent"]

#: Most lanes a quantizer or reducer unit may have.
MAX_LANES = 64


def check_source(source):
    """The ``source`` format parameter: a radix-2 float format (fp16, bf16, fp32, FP8, ...)."""
    return float_format_param("source", source)


def check_quant_lanes(lanes):
    """The ``lanes`` parameter of the quantizers and the reducer (1 to :data:`MAX_LANES`)."""
    return check_int("lanes", lanes, 1, MAX_LANES)


def pack_lanes(m, values, name):
    """One signal holding ``values`` (equal widths), lane 0 in the low bits."""
    out = Signal(sum(len(v) for v in values), name=name)
    m.d.comb += out.eq(Cat(*values))
    return out


def scaled_exponent(m, exp, exp_range, scale, scale_range, window, name):
    """``exp - scale`` in the window ``(lo, hi)``, with flags for the two sides outside it.

    Returns ``(value, under, over)``: ``value`` is the difference when it lies in the window (its
    low bits otherwise: don't care), ``under`` and ``over`` say it is below or above. The caller
    chooses a window outside which every result is the same, a signed zero below and the largest
    magnitude above, and hands the flags to the rounder as a zero and an Inf (the rounder's zero
    keeps the sign; a format without Inf saturates an Inf), so the rounder sees a narrow exponent.
    ``exp_range`` and ``scale_range`` bound the operands (a side that cannot occur has a constant
    flag).
    """
    lo, hi = window
    d_lo, d_hi = exp_range[0] - scale_range[1], exp_range[1] - scale_range[0]
    diff = Signal(exp_shape_for(d_lo, d_hi), name=f"{name}_diff")
    m.d.comb += diff.eq(exp - scale)
    out = Signal(exp_shape_for(max(lo, d_lo), min(hi, d_hi)), name=name)
    under = Signal(name=f"{name}_under")
    over = Signal(name=f"{name}_over")
    m.d.comb += [
        out.eq(diff),
        under.eq(diff < lo if d_lo < lo else 0),
        over.eq(diff > hi if d_hi > hi else 0),
    ]
    return out, under, over


class SourceRaw(wiring.Component):
    """A code of ``fmt`` as a raw value for one rounding. Combinational.

    ``o`` has ``sig`` normalized (top bit set) unless the value is zero, or ``normalize`` is False
    and the code is subnormal (then ``exp`` is ``fmt.emin``), and holds the top ``keep`` bits of the
    significand with the OR of the bits below in ``sticky`` (``keep`` at least the precision: no
    cut). NaN and Inf leave ``sig`` don't-care; their flags decide.

    ``o.exp`` is biased: ``max(e, 1) - lzc``, the unbiased exponent plus ``fmt.bias`` (callers
    subtract the bias together with their scale, once per beat instead of once per lane).

    Parameters
    ----------
    fmt : FloatFormat
        Radix-2 source format.
    normalize : bool
        Shift subnormal significands up to their leading one (the exponent goes below ``emin``).
    keep : int
        Significand bits delivered (at least 1).

    Members
    -------
    i : In(FloatLayout(fmt))
    o : Out(RawLayout(min(keep, precision), exp_shape))
    """

    @rejects_quietly
    def __init__(self, fmt, normalize, keep):
        self._fmt = fmt
        self._normalize = check_bool("normalize", normalize) and fmt.subnormals
        self._keep = min(check_int("keep", keep, 1), fmt.precision)
        lo, hi = 1, max(fmt.exp_max_field, 1)             # biased: max(e, 1)
        if self._normalize:
            lo -= fmt.precision - 1
        self.exp_range = (lo, hi)
        super().__init__({
            "i": In(FloatLayout(fmt)),
            "o": Out(RawLayout(self._keep, exp_shape_for(lo, hi))),
        })

    @property
    def width(self):
        return self._keep

    def elaborate(self, platform):
        m = Module()
        fmt, o = self._fmt, self.o
        m.submodules.unpack = up = Unpack(fmt, zero_specials=False)
        m.d.comb += up.i.eq(self.i)
        p = fmt.precision
        sig = up.o.sig
        exp = Signal(range(1, (1 << fmt.exp_bits)), name="exp_field")
        m.d.comb += exp.eq(Mux(self.i.exp != 0, self.i.exp, 1))
        cut = p - self._keep
        if self._normalize:
            # hw.lzc.Normalizer's shift by the full leading-zero count, built from the same parts
            # because the count also gives the sticky bit: the bits below the kept ones after the
            # shift are the input bits i with i + lzc < cut, so the shifter delivers the kept bits
            # only (an input mask is much smaller than shifting the low bits along).
            lzc = leading_zeros(m, sig, name="norm_lzc")
            sticky = Cat(sig[i] & (lzc < cut - i) for i in range(cut)).any() if cut else 0
            sig_n = shift_left(m, sig, lzc, p - 1, name="norm")
            exp_n = Signal(exp_shape_for(*self.exp_range), name="norm_exp")
            m.d.comb += exp_n.eq(exp - lzc)
            sig, exp = sig_n, exp_n
        else:
            sticky = sig[:cut].any() if cut else 0
        m.d.comb += [
            o.sig.eq(sig[cut:]),
            o.sticky.eq(sticky),
            o.exp.eq(exp),
            o.sign.eq(up.o.sign), o.is_nan.eq(up.o.is_nan), o.is_inf.eq(up.o.is_inf),
            o.is_zero.eq(up.o.is_zero),
        ]
        return m
