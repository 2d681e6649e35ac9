"""The one add-and-round path: ``round(p + c)`` with IEEE specials, for every unit that accumulates.

HardFloat's FMA hands its raw sum to one rounder (``MulAddRecFN`` -> ``RoundAnyRawFNToRecFN``); in
lowbit every unit that adds into a float ends in :class:`AddRound`: the FMA (``a*b + c``), mac4's
``acc`` mode (lane sum + accumulator) and the accumulator's inner and outer loops. Semantics:
``docs/arithmetic.md`` section 4 (the exact sum, rounded once) and section 2 (the rounding).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .addalign import ADD_CUTS, AlignAdd, OperandLayout, look_bits, window_geometry
from .float import FloatLayout, exp_shape_for, radix2_format
from .pipeline import Pipeline
from .rounder import Rounder
from .validate import rejects_quietly

__all__ = ["AddRound", "ADD_CUTS", "pipeline_registers"]


def pipeline_registers(pipe):
    """The register counts a caller's :class:`~hw.pipeline.Pipeline` places at :class:`AddRound`'s
    cut points (its ``registers`` parameter)."""
    return {cut: pipe.counts[cut] for cut in ADD_CUTS}


class AddRound(wiring.Component):
    """``o = round(p + c)``: one exact addition, one rounding, the IEEE special cases.

    ``p`` is an exact operand (a product, a lane sum, a finished chunk) and ``c`` a decoded code of
    ``fmt`` (:func:`hw.addalign.operand` of :class:`hw.float.Unpack`'s output), each with its IEEE
    flags (:func:`hw.addalign.OperandLayout`). The result is
    NaN if either is NaN or for ``Inf - Inf``, else an Inf if either is infinite (with that Inf's
    sign), else the rounded sum (an exact zero sum as :class:`hw.addalign.AlignAdd` signs it).

    Parameters
    ----------
    fmt : FloatFormat
        Radix-2 format of ``c`` and the result.
    rounding : str
        ``rne``, ``rna``, ``rtz`` or ``sr`` (checked by the caller).
    rand_bits : int
        ``R`` for ``sr`` (0 otherwise).
    p_width, p_exp_range :
        Width of ``p.sig`` and range of ``p.exp`` (see :class:`hw.addalign.AlignAdd`: ``p`` has at
        most :attr:`slack` leading zeros, or is zero).
    registers : dict
        Registers at each of :data:`hw.addalign.ADD_CUTS` (from the caller's
        :class:`hw.pipeline.Pipeline`); 0 everywhere gives a combinational block.
    side_width : int
        Width of a payload the caller wants delayed like the sum (``side_in`` -> ``side_out``).

    Members
    -------
    p : In(OperandLayout(p_width, ...))
    c : In(OperandLayout(fmt.precision, ...))
        ``nan`` set means NaN (``inf`` is then ignored); ``inf`` an Inf of sign ``sign``.
    rand : In(rand_bits)
        ``sr`` only: the random word of this operation, taken with ``p`` and ``c``.
    side_in : In(side_width), side_out : Out(side_width)
        Present when ``side_width > 0``.
    o : Out(FloatLayout(fmt))
        :attr:`latency` cycles after its operands.
    """

    @rejects_quietly
    def __init__(self, fmt, rounding, p_width, p_exp_range, rand_bits=0, registers=None, side_width=0):
        self._fmt = fmt = radix2_format(fmt)
        self._rounding, self._rand_bits = rounding, rand_bits
        self._registers = dict.fromkeys(ADD_CUTS, 0) | dict(registers or {})
        self._side_width = side_width
        self._p_width, self._p_exp_range = p_width, tuple(p_exp_range)
        members = {
            "p": In(OperandLayout(p_width, exp_shape_for(*p_exp_range))),
            "c": In(OperandLayout(fmt.precision, exp_shape_for(fmt.emin, max(fmt.emax, fmt.emin)))),
            "o": Out(FloatLayout(fmt)),
        }
        if rounding == "sr":
            members["rand"] = In(rand_bits)
        if side_width:
            members["side_in"] = In(side_width)
            members["side_out"] = Out(side_width)
        super().__init__(members)

    def feed(self, m, pipe, p, c, rand=None, side=None):
        """Drive the inputs from a caller's :class:`~hw.pipeline.Pipeline`-staged values and let
        ``pipe``'s valid bit follow this block's internal registers (its :data:`ADD_CUTS`; build the
        block with ``registers=pipeline_registers(pipe)``). ``p`` is ``(sig, exp, sign, zero, nan,
        inf)``, ``c`` the addend operand, ``rand`` the ``sr`` word and ``side`` the payload."""
        sig, exp, sign, zero, nan, inf = p
        m.d.comb += [self.p.sig.eq(sig), self.p.exp.eq(exp), self.p.sign.eq(sign), self.p.zero.eq(zero),
                     self.p.nan.eq(nan), self.p.inf.eq(inf), self.c.eq(c)]
        if side is not None:
            m.d.comb += self.side_in.eq(side)
        if rand is not None:
            m.d.comb += self.rand.eq(rand)
        for cut in ADD_CUTS:
            pipe.cut(cut)

    @property
    def window(self):
        """Width of the addition window (:func:`hw.addalign.window_geometry`)."""
        return self._geometry()[0]

    @property
    def slack(self):
        """Leading zeros ``p`` may keep."""
        return self._geometry()[1]

    def _geometry(self):
        return window_geometry(self._fmt, look_bits(self._rounding, self._rand_bits), self._p_width)

    @property
    def latency(self):
        return sum(self._registers.values())

    def elaborate(self, platform):
        m = Module()
        p, c = self.p, self.c
        m.submodules.add = add = AlignAdd(self._fmt, self._rounding, self._p_width, self._p_exp_range,
                                          rand_bits=self._rand_bits, registers=self._registers)
        m.d.comb += [add.p.eq(p), add.c.eq(c)]
        nan = Signal(name="nan")
        inf = Signal(name="inf")
        inf_sign = Signal(name="inf_sign")
        m.d.comb += [
            nan.eq(p.nan | c.nan | (p.inf & c.inf & (p.sign != c.sign))),
            inf.eq((p.inf | c.inf) & ~nan),
            inf_sign.eq(Mux(p.inf, p.sign, c.sign)),
        ]
        # The specials, the random word and the caller's payload ride beside the adder's registers.
        riders = [Cat(nan, inf, inf_sign)]
        if self._rounding == "sr":
            riders.append(self.rand)
        if self._side_width:
            riders.append(self.side_in)
        pipe = Pipeline.from_counts(m, self._registers)
        for cut in ADD_CUTS:
            riders = pipe.cut(cut, *riders)
            riders = riders if isinstance(riders, list) else [riders]
        flags = riders[0]

        m.submodules.rounder = rounder = Rounder(self._fmt, self._rounding, add.window, add.exp_range,
                                                 rand_bits=self._rand_bits)
        m.d.comb += [
            rounder.i.sig.eq(add.o.sig), rounder.i.exp.eq(add.o.exp), rounder.i.sticky.eq(add.o.sticky),
            rounder.i.sign.eq(Mux(flags[1], flags[2], add.o.sign)),
            rounder.i.is_nan.eq(flags[0]), rounder.i.is_inf.eq(flags[1]),
            rounder.i.is_zero.eq(add.o.is_zero & ~flags[0] & ~flags[1]),
            self.o.eq(rounder.o),
        ]
        if self._rounding == "sr":
            m.d.comb += rounder.rand.eq(riders[1])
        if self._side_width:
            m.d.comb += self.side_out.eq(riders[-1])
        return m
