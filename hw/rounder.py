"""The one rounder: a raw value to a code of a radix-2 or radix-4 format (``docs/arithmetic.md``
sections 2, 4).

Every unit that produces a float result ends in this block; the golden counterpart is
:func:`golden.raw.round_raw`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_rand_bits, check_rounding

from .align import clamp_amount, shift_right_sticky
from .float import FloatLayout, RawLayout, exp_shape_for, float_format
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

    A radix-4 format (section 2.3) takes the same raw value (``exp`` is still the radix-2 exponent
    of ``sig``'s top bit); ``sig``'s top bit must be set unless the value is zero, or the format has
    subnormals and ``exp < 2 * emin`` (below ``4**emin``). When ``sticky`` can be set ``sig`` must
    hold ``3`` bits (``2 + rand_bits`` for ``sr``): an odd exponent puts two of them above the point.

    Parameters
    ----------
    fmt : FloatFormat
        Result format, radix 2 or 4.
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
        self._fmt = fmt = float_format(fmt)
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
        if self._fmt.radix == 4:
            self._elaborate_radix4(m)
            return m
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

    def _elaborate_radix4(self, m):
        """Rounding onto the grid ``4**k`` (``docs/arithmetic.md`` section 2.3).

        With ``k = floor(exp / 2)`` the magnitude is ``y * 4**k``, ``y = sig * 2**(exp mod 2)`` in
        ``[1, 4)`` (a point below ``sig``'s top bit, two integer bits), between the neighbours
        ``4**k`` (exponent field ``k + bias``) and ``4**(k+1)``, a gap of 3. Below ``4**emin`` with
        subnormals, ``y = |x| / 4**emin`` in ``[0, 1)`` between 0 (field 0) and ``4**emin``, a gap
        of 1. ``rne``/``rna`` compare with the linear midpoint (2.5, or 1/2); ``sr`` rounds up iff
        ``floor(floor((y - 1) * 2**R) / 3) + r >= 2**R``, which is ``floor((y - 1) * 2**R) + 3r >=
        3 * 2**R``: an adder and a carry, no division (below ``4**emin``: ``floor(y * 2**R) + r >=
        2**R``).
        """
        fmt, i = self._fmt, self.i
        E, R = fmt.exp_bits, self._rand_bits
        lo, hi = self._exp_range
        two_emin = 2 * fmt.emin                     # the radix-2 exponent of 4**emin
        look = {"rtz": 0, "rne": 1, "rna": 1, "sr": R}[self._rounding]
        width = max(self._sig_width, 2 + look)
        sig = Cat(Const(0, width - self._sig_width), i.sig)
        sticky = i.sticky
        exp = i.exp

        odd = exp[0]                               # the exponent's parity (two's complement)
        k = exp >> 1                               # floor(exp / 2), arithmetic shift
        # y * 2**(width - 1): bit width - 1 weighs 1, bit width weighs 2.
        y = Signal(width + 1, name="r4_y")
        m.d.comb += y.eq(Mux(odd, Cat(Const(0, 1), sig), sig))
        e_lo = Signal(exp_shape_for((lo >> 1) + fmt.bias, (hi >> 1) + fmt.bias), name="r4_e_lo")
        m.d.comb += e_lo.eq(k + fmt.bias)
        has_sub = fmt.subnormals and lo < two_emin
        if has_sub:
            # Below 4**emin: y = |x| / 4**emin in [0, 1), shifted right by 2*emin - exp >= 1
            # (capped where the top bit has passed every examined bit).
            sub = Signal(name="r4_sub")
            m.d.comb += sub.eq(exp < two_emin)
            deficit = Signal(exp_shape_for(0, two_emin - lo), name="r4_deficit")
            m.d.comb += deficit.eq(Mux(sub, two_emin - exp, 0))
            cap = min(two_emin - lo, 1 + look)
            amount = clamp_amount(m, deficit.as_unsigned(), cap, name="r4_denorm_amount")
            sig_sub, shifted_out = shift_right_sticky(m, sig, amount, cap, name="r4_denorm")
            y_sub = Signal(width + 1, name="r4_y_sub")
            m.d.comb += y_sub.eq(Mux(sub, sig_sub, y))
            sticky = sticky | shifted_out
            y, e_lo_eff = y_sub, Signal(e_lo.shape(), name="r4_e_lo_eff")
            m.d.comb += e_lo_eff.eq(Mux(sub, 0, e_lo))
            e_lo = e_lo_eff
        else:
            sub = Const(0)

        if self._rounding == "rtz":
            up = Const(0)
        elif self._rounding in ("rne", "rna"):
            # Normal: up above 2.5 (= 10.1b), i.e. y >= 3, or 2 <= y with the half bit and more.
            # Below 4**emin: up above 1/2 (y < 1, so only the half bit and what lies below).
            half = y[width - 2]
            rest = y[:width - 2].any() | sticky
            gate = y[width] | sub
            if self._rounding == "rne":
                up = gate & (y[width - 1] | (half & (rest | e_lo[0])))
            else:
                up = gate & (y[width - 1] | half)
        else:
            top = y[width - 1 - R:]                # floor(y * 2**R): R + 2 bits
            three_r = Signal(R + 3, name="r4_sr_sum")
            # floor((y - 1) * 2**R) + 3r >= 3 * 2**R  <=>  floor(y * 2**R) + 3r >= 2**(R + 2)
            m.d.comb += three_r.eq(top + self.rand + (self.rand << 1))
            up = three_r[R + 2]
            if has_sub:
                sub_sum = Signal(R + 1, name="r4_sr_sub_sum")
                m.d.comb += sub_sum.eq(top[:R] + self.rand)
                up = Mux(sub, sub_sum[R], up)
        round_up = Signal(name="round_up")
        m.d.comb += round_up.eq(up)

        code_lo = 0 if has_sub else (lo >> 1) + fmt.bias
        code_hi = (max(hi, two_emin) >> 1) + fmt.bias + 1
        code = Signal(exp_shape_for(code_lo, code_hi), name="code_mag")
        m.d.comb += code.eq(e_lo + round_up)
        overflow = Signal(name="overflow")
        m.d.comb += overflow.eq(code > fmt.max_code if code_hi > fmt.max_code else 0)
        underflow = Signal(name="flush")
        # Field 0 is zero (below 4**emin, rounded down); without subnormals the unbounded exponent
        # may go below it: a signed zero either way.
        m.d.comb += underflow.eq(code <= 0 if code_lo <= 0 else 0)

        nan_code = fmt.nan_code if fmt.has_nan else 0
        mag = Signal(E, name="result_mag")
        with m.If(i.is_inf):
            m.d.comb += mag.eq(fmt.max_code)
        with m.Elif(i.is_zero | underflow):
            m.d.comb += mag.eq(0)
        with m.Elif(overflow):
            m.d.comb += mag.eq(fmt.max_code)
        with m.Else():
            m.d.comb += mag.eq(code[:E])
        m.d.comb += self.o.as_value().eq(Mux(i.is_nan, nan_code, Cat(mag, i.sign)))
