"""The one rounder: a raw value to a code of a radix-2 format (``docs/arithmetic.md`` sections 2, 4).

Every unit that produces a float result ends in this block; the golden counterpart is
:func:`golden.raw.round_raw`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_rand_bits, check_rounding

from .align import clamp_amount, shift_right_sticky
from .float import FloatLayout, RawLayout, exp_shape_for, radix2_format
from .validate import rejects_quietly

__all__ = ["Rounder"]


class Rounder(wiring.Component):
    """Round a raw value into ``fmt`` with one rounding. Combinational.

    Input contract (``docs/arithmetic.md`` section 4): the value is
    ``(-1)**sign * (sig + sticky*eps) * 2**(exp - (sig_width - 1))`` with ``exp`` in ``exp_range``;
    ``sig``'s top bit is set, unless the value is zero (``is_zero``), or the format has subnormals and
    ``exp <= emin`` (values at or below the normal range need no normalization: their rounding
    position is fixed). When ``sticky`` can be set, ``sig`` must hold at least the rounding bits
    (``precision + 1``, or ``precision + rand_bits`` for ``sr``).

    Parameters
    ----------
    fmt : FloatFormat
        Radix-2 result format.
    rounding : str
        ``rne``, ``rna``, ``rtz`` or ``sr``.
    sig_width : int
        Width of ``sig`` (at least ``precision + 1``).
    exp_range : (int, int)
        Smallest and largest ``exp`` the producer can deliver; sizes the subnormal shifter and the
        overflow logic, so only reachable cases cost area.
    rand_bits : int
        ``R`` for ``sr``.

    Members
    -------
    i : In(RawLayout(sig_width, exp_shape))
    rand : In(rand_bits)
        Only with ``rounding="sr"``: ``r``, rounding up when ``r + (the R bits below the result's
        last place) >= 2**R``.
    o : Out(FloatLayout(fmt))
    """

    @rejects_quietly
    def __init__(self, fmt, rounding, sig_width, exp_range, rand_bits=None):
        self._fmt = fmt = radix2_format(fmt)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        if sig_width < fmt.precision + 1:
            raise ValueError(f"sig_width must be at least precision + 1 = {fmt.precision + 1}, "
                             f"not {sig_width}")
        lo, hi = exp_range
        if lo > hi:
            raise ValueError(f"exp_range must be (low, high) with low <= high, not {exp_range}")
        self._sig_width, self._exp_range = sig_width, (lo, hi)
        members = {
            "i": In(RawLayout(sig_width, exp_shape_for(lo, hi))),
            "o": Out(FloatLayout(fmt)),
        }
        if self._rounding == "sr":
            members["rand"] = In(self._rand_bits)
        super().__init__(members)

    @property
    def format(self):
        return self._fmt

    @property
    def rounding(self):
        return self._rounding

    def elaborate(self, platform):
        m = Module()
        fmt, i = self._fmt, self.i
        E, M, p = fmt.exp_bits, fmt.man_bits, fmt.precision
        lo, hi = self._exp_range
        emin = fmt.emin
        # Bits below the last place that the mode looks at: sr looks at R, rne/rna at the guard bit.
        look = {"rtz": 0, "rne": 1, "rna": 1, "sr": self._rand_bits}[self._rounding]
        width = max(self._sig_width, p + look)
        sig = Cat(Const(0, width - self._sig_width), i.sig)
        sticky = i.sticky
        exp = i.exp

        # Subnormal results: shift right onto the fixed subnormal grid (exp becomes emin).
        if fmt.subnormals and lo < emin:
            deficit = Signal(exp_shape_for(0, emin - lo), name="deficit")
            m.d.comb += deficit.eq(Mux(exp < emin, emin - exp, 0))
            # Shifting the top bit below the examined bits puts everything into sticky: cap there.
            amount = clamp_amount(m, deficit.as_unsigned(), min(emin - lo, p + look), name="denorm_amount")
            sig, shifted_out = shift_right_sticky(m, sig, amount, min(emin - lo, p + look), name="denorm")
            sticky = sticky | shifted_out
            exp_eff = Signal(exp_shape_for(emin, max(hi, emin)), name="exp_eff")
            m.d.comb += exp_eff.eq(Mux(exp < emin, emin, exp))
            exp = exp_eff

        kept = sig[width - p:]
        below = sig[:width - p]
        if self._rounding == "rtz":
            up = Const(0)
        elif self._rounding in ("rne", "rna"):
            guard = below[-1]
            rest = below[:-1].any() | sticky if len(below) > 1 else sticky
            up = guard & (rest | kept[0]) if self._rounding == "rne" else guard
        else:
            R = self._rand_bits
            frac = below[len(below) - R:]
            carry = Signal(R + 1, name="sr_sum")
            m.d.comb += carry.eq(frac + self.rand)
            up = carry[R]
        round_up = Signal(name="round_up")
        m.d.comb += round_up.eq(up)

        # One adder encodes and rounds: (exp + bias - 1) << M plus the p kept bits (hidden bit
        # included) gives the code of a normal value, and of a subnormal one when exp == emin with the
        # hidden bit clear; the increment's carry moves into the exponent field by itself.
        e_lo = (lo if not (fmt.subnormals and lo < emin) else emin) + fmt.bias - 1
        e_hi = max(hi, emin) + fmt.bias - 1
        code_lo = min(e_lo << M, 0)
        code_hi = (e_hi << M) + (1 << (M + 1))
        code = Signal(exp_shape_for(code_lo, code_hi), name="code_mag")
        m.d.comb += code.eq(((exp + (fmt.bias - 1)) << M) + kept + round_up)

        overflow = Signal(name="overflow")
        m.d.comb += overflow.eq(code > fmt.max_code if code_hi > fmt.max_code else 0)
        if not fmt.subnormals:
            flush = Signal(name="flush")
            # Rounded with an unbounded exponent; below the smallest normal it becomes a signed zero.
            m.d.comb += flush.eq(code < (1 << M) if code_lo < (1 << M) else 0)
        else:
            flush = Const(0)

        if fmt.has_inf:
            ovf_code = fmt.max_code if self._rounding == "rtz" else fmt.inf_code
            inf_code = fmt.inf_code
        else:
            ovf_code = inf_code = fmt.max_code
        nan_code = fmt.nan_code if fmt.has_nan else 0

        mag = Signal(E + M, name="result_mag")
        with m.If(i.is_inf):
            m.d.comb += mag.eq(inf_code)
        with m.Elif(i.is_zero | flush):
            m.d.comb += mag.eq(0)
        with m.Elif(overflow):
            m.d.comb += mag.eq(ovf_code)
        with m.Else():
            m.d.comb += mag.eq(code[:E + M])
        m.d.comb += self.o.as_value().eq(Mux(i.is_nan, nan_code, Cat(mag, i.sign)))
        return m
