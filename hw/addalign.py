"""Add an exact operand to a float in a short window, ready for the one rounder.

``docs/arithmetic.md`` section 4.3. Used by the FMA (the product plus the addend), the accumulator (a
beat's lane sum plus the running sum) and mac4's accumulate mode (the integer lane sum plus the
accumulator input).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_rand_bits, check_rounding

from .align import clamp_amount, shift_right_sticky
from .float import RawLayout, exp_shape_for, radix2_format
from .lzc import Normalizer
from .pipeline import Pipeline
from .validate import rejects_quietly

__all__ = ["AlignAdd", "ADD_CUTS", "look_bits", "window_geometry", "OperandLayout", "operand"]

#: Register positions inside :class:`AlignAdd`, in order.
ADD_CUTS = ("aligned", "sum", "normalized")


def look_bits(rounding, rand_bits):
    """Bits below a result's last place that a rounding mode examines."""
    return {"rtz": 0, "rne": 1, "rna": 1, "sr": rand_bits}[rounding]


def window_geometry(fmt, look, p_width):
    """``(window, slack)`` of :class:`AlignAdd` for result format ``fmt``.

    ``window`` keeps ``precision + 2 + look`` bits (rounding needs ``look`` bits below the last place
    of a result whose leading one lies at most one bit below X's top bit) and room for both operands
    plus a carry; ``slack`` is how many leading zeros ``p`` may keep: the window must reach
    ``max(look, 1)`` bits below the last place of a result whose leading one lies up to ``1 + k``
    bits below X's top bit.
    """
    pc = fmt.precision
    window = max(pc + 2 + look, max(p_width, pc) + 2)
    return window, max(0, window - 3 - fmt.man_bits - max(look, 1))


def OperandLayout(sig_width, exp_shape):
    """An exact operand ``(-1)**sign * sig * 2**(exp - (sig_width - 1))`` with its IEEE flags:
    ``zero``, ``nan``, and ``inf`` (an Inf of sign ``sign``; ``sig`` is then meaningless)."""
    return data.StructLayout({"sig": sig_width, "exp": exp_shape, "sign": 1, "zero": 1, "nan": 1, "inf": 1})


def operand(raw):
    """A decoded code (:class:`hw.float.Unpack`'s output, which has no sticky bit) as an operand."""
    layout = OperandLayout(len(raw.sig), raw.exp.shape())
    return layout(Cat(raw.sig, raw.exp, raw.sign, raw.is_zero, raw.is_nan, raw.is_inf))


class AlignAdd(wiring.Component):
    """``P + C`` exactly up to a sticky bit, normalized for :class:`hw.rounder.Rounder`.

    The operand with the larger exponent (X) keeps its place; the other (Y) is shifted right in a
    window of :attr:`window` bits (bit ``window-1`` for the carry, X's top bit at ``window-2``);
    bits shifted out are the sticky bit, and a difference borrows one unit for them, so every
    floor-based rounding of the window value plus sticky equals the rounding of the exact sum. A
    negative difference is complemented. The leading-zero normalizer stops at ``emin`` when the
    format has subnormals. Specials are the caller's: ``o.is_nan``/``o.is_inf`` are zero.

    Parameters
    ----------
    fmt : FloatFormat
        Radix-2 format of ``c`` and of the result (the rounder's).
    rounding, rand_bits :
        The rounder's mode; they set how many bits the window keeps below the last place.
    p_width : int
        Width of ``p.sig``. ``p`` must be exact and have at most :attr:`slack` leading zeros
        (or be zero).
    p_exp_range : (int, int)
        Range of ``p.exp`` (the weight of ``p.sig``'s top bit).
    registers : dict
        Register stages at the cut points ``ADD_CUTS`` (from the caller's :class:`Pipeline`).

    Members
    -------
    p : In(OperandLayout(p_width, ...))
    c : In(OperandLayout(fmt.precision, ...))
        As :class:`hw.float.Unpack` gives it: top bit set, or a subnormal at ``emin``. The
        ``nan`` and ``inf`` flags of both operands are ignored here (specials are the caller's).
    o : Out(RawLayout(window, ...))
        ``o.exp`` lies in :attr:`exp_range`.
    """

    @rejects_quietly
    def __init__(self, fmt, rounding, p_width, p_exp_range, rand_bits=None, registers=None):
        self._fmt = fmt = radix2_format(fmt)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._look = look_bits(rounding, self._rand_bits)
        self._pw = p_width
        self._p_range = tuple(p_exp_range)
        self._c_range = (fmt.emin, max(fmt.emax, fmt.emin))
        self._registers = dict.fromkeys(ADD_CUTS, 0) | dict(registers or {})
        pc = fmt.precision
        W = self.window
        lo = min(self._p_range[0], self._c_range[0])
        hi = max(self._p_range[1], self._c_range[1])
        if fmt.subnormals:
            lo = max(lo, fmt.emin - 1)
        self._x_range = (lo, hi)
        if fmt.subnormals:
            self._o_range = (fmt.emin, hi + 1)
        else:
            self._o_range = (lo + 1 - (W - 1), hi + 1)
        super().__init__({
            "p": In(OperandLayout(p_width, exp_shape_for(*self._p_range))),
            "c": In(OperandLayout(pc, exp_shape_for(*self._c_range))),
            "o": Out(RawLayout(W, exp_shape_for(self._o_range[0] - W, self._o_range[1]))),
        })

    @property
    def window(self):
        """Window width (see :func:`window_geometry`)."""
        return window_geometry(self._fmt, self._look, self._pw)[0]

    @property
    def slack(self):
        """Leading zeros ``p`` may keep (see :func:`window_geometry`)."""
        return window_geometry(self._fmt, self._look, self._pw)[1]

    @property
    def exp_range(self):
        """Range of ``o.exp`` for the rounder."""
        return self._o_range

    def elaborate(self, platform):
        m = Module()
        fmt, p, c = self._fmt, self.p, self.c
        pc, pw, W = fmt.precision, self._pw, self.window
        pipe = Pipeline.from_counts(m, self._registers)
        wxy = max(pw, pc)
        x_lo, x_hi = self._x_range
        p_lo, p_hi = self._p_range

        # -- swap: X has the larger exponent; a zero operand is Y ----------------------------------
        if fmt.subnormals:
            # A zero addend counts as exponent emin - 1, so an operand below the subnormal range
            # becomes Y and the aligner shifts it onto the subnormal grid: the window's top never
            # lies below emin and the rounder needs no shifter of its own. (A nonzero c has
            # exponent >= emin, so this changes nothing else.)
            c_exp = Signal(exp_shape_for(fmt.emin - 1, self._c_range[1]), name="c_exp_eff")
            m.d.comb += c_exp.eq(Mux(c.zero, fmt.emin - 1, c.exp))
            c_lo = fmt.emin - 1
        else:
            c_exp, c_lo = c.exp, self._c_range[0]
        diff = Signal(exp_shape_for(p_lo - self._c_range[1], p_hi - c_lo), name="exp_diff")
        m.d.comb += diff.eq(p.exp - c_exp)
        x_is_p = Signal(name="x_is_p")
        if fmt.subnormals:
            m.d.comb += x_is_p.eq(~p.zero & (diff >= 0))
        else:
            m.d.comb += x_is_p.eq(~p.zero & (c.zero | (diff >= 0)))
        y_zero = Signal(name="y_zero")
        m.d.comb += y_zero.eq(Mux(x_is_p, c.zero, p.zero))
        # Both significands left-aligned in wxy bits.
        p_field = Cat(Const(0, wxy - pw), p.sig)
        c_field = Cat(Const(0, wxy - pc), c.sig)
        x_sig = Signal(wxy, name="x_sig")
        y_sig = Signal(wxy, name="y_sig")
        x_exp = Signal(exp_shape_for(x_lo, x_hi), name="x_exp")
        x_sign = Signal(name="x_sign")
        y_sign = Signal(name="y_sign")
        shift = Signal(unsigned(diff.shape().width), name="align_amount")
        m.d.comb += [
            x_sig.eq(Mux(x_is_p, p_field, c_field)),
            y_sig.eq(Mux(y_zero, 0, Mux(x_is_p, c_field, p_field))),
            x_exp.eq(Mux(x_is_p, p.exp, c_exp)),
            x_sign.eq(Mux(x_is_p, p.sign, c.sign)),
            y_sign.eq(Mux(x_is_p, c.sign, p.sign)),
            shift.eq(Mux(x_is_p, diff, -diff)),
        ]
        zero_sign = Signal(name="zero_sign")   # IEEE: x + (-x) = +0, (-0) + (-0) = -0
        m.d.comb += zero_sign.eq(p.sign & c.sign)
        # -- align Y: bit W-1 is the carry, X's top bit sits at W-2 --------------------------------
        y_window = Cat(Const(0, W - 1 - wxy), y_sig, Const(0, 1))
        amount = clamp_amount(m, Mux(y_zero, 0, shift), W, name="align_clamped")
        y_aligned, lost = shift_right_sticky(m, y_window, amount, W, name="align")
        x_window = Cat(Const(0, W - 1 - wxy), x_sig, Const(0, 1))
        subtract = Signal(name="subtract")
        m.d.comb += subtract.eq(x_sign ^ y_sign)

        x_w, y_w, lost, subtract, x_exp, x_sign, zero_sign = pipe.cut(
            "aligned", x_window, y_aligned, lost, subtract, x_exp, x_sign, zero_sign)

        # -- add: one adder, X + (Y ^ sub) + (sub & ~lost) = X + Y, or X - Y - lost ----------------
        y_eff = Signal(W + 1, name="y_eff")
        m.d.comb += y_eff.eq(Cat(y_w, Const(0, 1)) ^ subtract.replicate(W + 1))
        total = Signal(W + 1, name="sum_raw")   # two's complement, bit W the sign
        m.d.comb += total.eq(x_w + y_eff + (subtract & ~lost))
        negative = total[W]
        # A negative difference (X not the larger in magnitude) is complemented: -S when exact,
        # ~S when a borrow was taken for lost bits (the sticky then still lies above the value).
        magnitude = Signal(W, name="sum_mag")
        m.d.comb += magnitude.eq((total[:W] ^ negative.replicate(W)) + (negative & ~lost))
        sum_sign = Signal(name="sum_sign")
        m.d.comb += sum_sign.eq(x_sign ^ negative)

        magnitude, lost, sum_sign, x_exp, zero_sign = pipe.cut(
            "sum", magnitude, lost, sum_sign, x_exp, zero_sign)

        # -- normalize: bit W-1 weighs 2**(x_exp + 1) ---------------------------------------------
        top_exp = Signal(exp_shape_for(x_lo + 1, x_hi + 1), name="top_exp")
        m.d.comb += top_exp.eq(x_exp + 1)
        floor = fmt.emin if fmt.subnormals else None
        m.submodules.normalize = sn = Normalizer(W, top_exp.shape(), floor=floor, exp_min=x_lo + 1)
        m.d.comb += [sn.sig.eq(magnitude), sn.exp.eq(top_exp)]
        exact_zero = Signal(name="exact_zero")
        m.d.comb += exact_zero.eq(~magnitude.any() & ~lost)

        n_sig, n_exp, lost, sign, exact_zero = pipe.cut(
            "normalized", sn.sig_out, sn.exp_out, lost, Mux(exact_zero, zero_sign, sum_sign), exact_zero)
        m.d.comb += [
            self.o.sig.eq(n_sig), self.o.exp.eq(n_exp), self.o.sticky.eq(lost),
            self.o.sign.eq(sign), self.o.is_zero.eq(exact_zero),
            self.o.is_nan.eq(0), self.o.is_inf.eq(0),
        ]
        return m
