"""``tpr_quantize``: Sun et al. 2020's radix-4 FP4 gradient quantizer, both TPR phases, N lanes.

Semantics: ``docs/arithmetic.md`` section 8.5 (the quantizer), 2.3 (radix-4 rounding) and 10.7 (this
unit); golden model :func:`golden.quantize.tpr_quantize` with ``scale_exp = offset``. Each lane
rounds ``x * 2**-offset`` (phase 0) and ``x * 2**-(offset + 1)`` (phase 1) once each onto the grid of
``fp4_r4``: the codes ``g0`` and ``g1`` that :mod:`hw.mac4` consumes with ``phase`` 0 and 1 and the
same ``offset`` (its 8-bit GradScale exponent), whose products then weigh ``value(g, ph) * 2**offset``.

Datapath per lane::

    unpack x -> normalize (subnormals) -> keep the top 2 + look bits and a sticky bit
    -> exp - offset -> radix-4 rounder (phase 0)
    -> exp - offset - 1 -> radix-4 rounder (phase 1)

Both phases share the unpacked, normalized significand; the radix-4 rounding is the shared
:class:`hw.rounder.Rounder` (no division: ``sr``'s division of the gap by 3 is a comparison with
``3 * r``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_rand_bits, check_rounding
from golden.mac4 import FP4, OFFSET_MAX, OFFSET_MIN

from ..addalign import look_bits
from ..float import exp_shape_for
from ..mac4 import OFFSET_BITS
from ..pipeline import Pipeline, check_stages
from ..rounder import Rounder
from ..stochastic_round.lfsr import RandSource, RandUnit
from ..validate import rejects_quietly
from .common import SourceRaw, check_quant_lanes, check_source, pack_lanes, scaled_exponent

__all__ = ["TPRQuantize", "CUTS"]

#: Register positions, input to output: after the scaled exponents, after the rounders.
CUTS = ("scaled", "output")


class TPRQuantize(RandUnit, wiring.Component):
    """``lanes`` two-phase FP4 quantizers with one GradScale exponent per beat.

    Parameters
    ----------
    lanes : int
        ``N``, values per beat (1 to 64).
    source : str or FloatFormat
        Radix-2 float format of ``x`` (``fp16`` by default; bf16, fp32, FP8 formats, ...).
    rounding : str
        ``rne`` (default), ``rna``, ``rtz`` or ``sr``.
    rand_bits : int
        ``R``, random bits per code (``sr``): each phase of each lane takes its own word.
    rand_source : str
        ``"lfsr"`` (default): one internal :class:`hw.stochastic_round.LFSR` handing out ``2N``
        words per valid beat; ``"port"``: the ``rand`` input.
    lfsr_width, lfsr_taps, seed :
        LFSR parameters.
    stages : int
        0: combinational (unless an LFSR is used); k > 0: latency k, one beat per cycle.

    Members
    -------
    x : In(N * source.width)
        Codes, lane ``k`` in bits ``k*W ... k*W+W-1``.
    offset : In(8)
        Two's complement GradScale exponent ``-128 ... 127`` (mac4's ``offset``), for every lane.
    rand : In(2 * N * rand_bits)
        ``sr`` with ``rand_source="port"``: word ``k`` (bits ``k*R ... k*R+R-1``) is lane ``k``'s
        for phase 0, word ``N + k`` lane ``k``'s for phase 1.
    g0, g1 : Out(4 * N)
        ``fp4_r4`` codes of phase 0 and phase 1, lane ``k`` in bits ``4k ... 4k+3``.
    valid_in : In(1), valid_out : Out(1)
        With ``stages > 0`` or the LFSR (``sync`` domain: ``clk``, ``rst``); ``valid_out`` is
        ``valid_in`` delayed by ``stages`` cycles. The LFSR advances once per valid beat: the
        ``i``-th valid beat takes words ``2N*i ... 2N*i + 2N - 1`` of
        :func:`golden.lfsr.lfsr_words`, in the order of the ``rand`` port.
    """

    @rejects_quietly
    def __init__(self, lanes=8, source="fp16", rounding="rne", rand_bits=8, rand_source="lfsr",
                 lfsr_width=31, lfsr_taps=None, seed=1, stages=0):
        self._lanes = check_quant_lanes(lanes)
        self._source = check_source(source)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._rand = RandSource(rounding, self._rand_bits, rand_source, lfsr_width, lfsr_taps, seed,
                                words=2 * self._lanes)
        self._stages = check_stages(stages)
        members = {"x": In(self._lanes * self._source.width), "offset": In(OFFSET_BITS),
                   "g0": Out(4 * self._lanes), "g1": Out(4 * self._lanes)}
        members |= self._rand.unit_members(self._stages)
        super().__init__(members)

    @property
    def lanes(self):
        return self._lanes

    @property
    def lfsr_params(self):
        """``(width, taps, seed)`` of the internal LFSR, or None."""
        return self._rand.lfsr

    def elaborate(self, platform):
        m = Module()
        src, N, W, R = self._source, self._lanes, self._source.width, self._rand_bits
        look = look_bits(self._rounding, R)
        # The sources' biased exponents minus (offset + bias), the sum formed once per beat.
        offset_range = (OFFSET_MIN + src.bias, OFFSET_MAX + src.bias)
        offset = Signal(exp_shape_for(*offset_range), name="offset_biased")
        m.d.comb += offset.eq(self.offset.as_signed() + src.bias)

        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, CUTS, valid_in=valid_in)
        rand = self._rand.elaborate(m, self)

        lanes = []
        for k in range(N):
            # fp4_r4 has no subnormals: the rounder wants every nonzero significand normalized.
            m.submodules[f"src{k}"] = sr = SourceRaw(src, True, 2 + look)
            m.d.comb += sr.i.eq(self.x[k * W:(k + 1) * W])
            # Every exponent at or below -2*bias - 1 flushes (k + bias <= -1), every one from
            # 2*emax on saturates: outside [-2*bias - 1, 2*emax + 2] for phase 0, and so for phase
            # 1 (one less), the flags give a signed zero or the saturated code (as an Inf does).
            lo0, hi0 = -2 * FP4.bias - 1, 2 * FP4.emax + 2
            phase0, under, over = scaled_exponent(m, sr.o.exp, sr.exp_range, offset, offset_range,
                                                  (lo0, hi0), f"phase0_exp{k}")
            exp_range = (lo0 - 1, hi0)
            phase1 = Signal(exp_shape_for(lo0 - 1, hi0 - 1), name=f"phase1_exp{k}")
            m.d.comb += phase1.eq(phase0 - 1)
            flags = Cat(sr.o.sticky, sr.o.sign, sr.o.is_nan, sr.o.is_inf | (over & ~sr.o.is_zero),
                        sr.o.is_zero | under)
            lanes.append(((sr.o.sig, phase0, phase1, flags), exp_range))
        values = [v for lane, _ in lanes for v in lane]
        staged = pipe.cut("scaled", *values, *([rand] if rand is not None else []))

        codes = ([], [])
        for k, ((sig, _, _, _), exp_range) in enumerate(lanes):
            sig_s, exp0, exp1, flags_s = staged[4 * k:4 * k + 4]
            for ph, exp in ((0, exp0), (1, exp1)):
                m.submodules[f"round{k}_p{ph}"] = rnd = Rounder(FP4, self._rounding, len(sig), exp_range,
                                                                rand_bits=R)
                m.d.comb += [
                    rnd.i.sig.eq(sig_s), rnd.i.exp.eq(exp), rnd.i.sticky.eq(flags_s[0]),
                    rnd.i.sign.eq(flags_s[1]), rnd.i.is_nan.eq(flags_s[2]), rnd.i.is_inf.eq(flags_s[3]),
                    rnd.i.is_zero.eq(flags_s[4]),
                ]
                if rand is not None:
                    word = ph * N + k
                    m.d.comb += rnd.rand.eq(staged[4 * N][word * R:(word + 1) * R])
                codes[ph].append(rnd.o.as_value())
        g0, g1 = pipe.cut("output", pack_lanes(m, codes[0], "codes0"), pack_lanes(m, codes[1], "codes1"))
        m.d.comb += [self.g0.eq(g0), self.g1.eq(g1)]
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m
