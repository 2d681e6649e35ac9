"""``stochastic_round``: reduce a wide float or fixed-point value to a float format.

Unpack (or two's complement to magnitude) → normalize (only when the formats need it) → the one
rounder (:class:`hw.rounder.Rounder`) with random bits from an LFSR (:class:`.lfsr.LFSR`) or a port.
Semantics: ``docs/arithmetic.md`` sections 2 and 6; golden model :mod:`golden.stochastic_round`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_rand_bits, check_rounding
from golden.formats import FixedFormat
from golden.stochastic_round import check_sr_formats

from ..float import FloatLayout, RawLayout, Unpack, exp_shape_for
from ..lzc import Normalizer
from ..pipeline import Pipeline, check_stages
from ..rounder import Rounder
from .lfsr import LFSR, RandSource, RandUnit
from ..validate import rejects_quietly

__all__ = ["StochasticRound", "LFSR"]


class StochasticRound(RandUnit, wiring.Component):
    """Round ``x`` (a code of ``source``) into ``target`` with one rounding.

    Parameters
    ----------
    source : str or format
        A radix-2 float format, or fixed point ``fix<W>.<F>`` / ``ufix<W>.<F>``.
    target : str or FloatFormat
        Radix-2 result format.
    rounding : str
        ``sr`` (default), ``rne``, ``rna`` or ``rtz`` (the deterministic rounder).
    rand_bits : int
        ``R``, random bits per rounding (``sr``).
    rand_source : str
        ``"lfsr"``: an internal :class:`LFSR` advancing once per valid input; ``"port"``: the
        ``rand`` input.
    lfsr_width, lfsr_taps, seed :
        LFSR parameters (see :class:`LFSR`).
    stages : int
        Register stages; 0 is a combinational datapath.

    Members
    -------
    x : In(source.width)
    y : Out(FloatLayout(target))
    rand : In(rand_bits)
        Only for ``sr`` with ``rand_source="port"``; used with the ``x`` of the same cycle.
    valid_in : In(1), valid_out : Out(1)
        Present when ``stages > 0`` or with an internal LFSR (clocked by the ``sync`` domain:
        ``clk``, ``rst``). The LFSR steps once per cycle with ``valid_in`` high, so the ``i``-th
        valid input is rounded with word ``i`` of :func:`golden.lfsr.lfsr_words`.
        ``valid_out`` is ``valid_in`` delayed by ``stages`` cycles; ``y`` belongs to it.
    """

    @rejects_quietly
    def __init__(self, source="fp32", target="fp8_e5m2", rounding="sr", rand_bits=8, rand_source="lfsr",
                 lfsr_width=16, lfsr_taps=None, seed=1, stages=0):
        self._source, self._target = check_sr_formats(source, target)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._rand = RandSource(rounding, self._rand_bits, rand_source, lfsr_width, lfsr_taps, seed)
        self._stages = check_stages(stages)
        members = {"x": In(self._source.width), "y": Out(FloatLayout(self._target))}
        members |= self._rand.unit_members(self._stages)
        super().__init__(members)

    @property
    def stages(self):
        """Latency in cycles from ``x`` to ``y``."""
        return self._stages

    @property
    def lfsr_params(self):
        """``(width, taps, seed)`` of the internal LFSR, or None."""
        return self._rand.lfsr

    def _raw_source(self, m):
        """(raw value, exp range) of ``x``; the value is exact (no sticky)."""
        src, dst = self._source, self._target
        if isinstance(src, FixedFormat):
            W = src.bits
            mag = Signal(W, name="fixed_mag")
            negative = self.x[W - 1] if src.signed else Const(0)
            m.d.comb += mag.eq(Mux(negative, -self.x, self.x))
            top = W - 1 - src.frac_bits
            raw = Signal(RawLayout(W, exp_shape_for(top - W + 1, top)), name="fixed_raw")
            m.d.comb += [raw.sig.eq(mag), raw.exp.eq(top), raw.sign.eq(negative),
                         raw.is_zero.eq(mag == 0)]
            return raw, (top, top), True
        m.submodules.unpack = unpack = Unpack(src)
        m.d.comb += unpack.i.eq(self.x)
        lo, hi = unpack.exp_range
        # Subnormal inputs carry leading zeros; the rounder accepts them only at or below the
        # target's emin (with target subnormals), so normalize when that does not hold.
        needs_norm = src.subnormals and (not dst.subnormals or src.emin > dst.emin)
        return unpack.o, (lo, hi), needs_norm

    def elaborate(self, platform):
        m = Module()
        dst = self._target
        raw, (lo, hi), needs_norm = self._raw_source(m)
        # The rounder looks at least one bit below the target's last place: a source with fewer
        # significand bits gets exact zeros appended below (exp weighs the top bit, unchanged).
        W = max(len(raw.sig), dst.precision + 1)
        src_sig = Cat(Const(0, W - len(raw.sig)), raw.sig)
        if needs_norm:
            m.submodules.normalize = norm = Normalizer(W, raw.exp.shape(),
                                                       floor=dst.emin if dst.subnormals else None)
            m.d.comb += [norm.sig.eq(src_sig), norm.exp.eq(raw.exp)]
            sig, exp = norm.sig_out, norm.exp_out
            lo = lo - (W - 1) if not dst.subnormals else min(lo, dst.emin)
        else:
            sig, exp = src_sig, raw.exp

        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, ["normalized", "output"], valid_in=valid_in)
        m.submodules.rounder = rounder = Rounder(dst, self._rounding, W, (lo, hi), rand_bits=self._rand_bits)
        flags = Cat(raw.sign, raw.is_nan, raw.is_inf, raw.is_zero)
        rand = self._rand.elaborate(m, self)
        staged = pipe.cut("normalized", sig, exp, flags, *([rand] if rand is not None else []))
        sig_s, exp_s, flags_s = staged[:3]
        m.d.comb += [
            rounder.i.sig.eq(sig_s), rounder.i.exp.eq(exp_s), rounder.i.sticky.eq(0),
            rounder.i.sign.eq(flags_s[0]), rounder.i.is_nan.eq(flags_s[1]),
            rounder.i.is_inf.eq(flags_s[2]), rounder.i.is_zero.eq(flags_s[3]),
        ]
        if rand is not None:
            m.d.comb += rounder.rand.eq(staged[3])
        m.d.comb += self.y.eq(pipe.cut("output", rounder.o))
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m
