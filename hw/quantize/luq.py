"""``luq``: LUQ's 4-bit gradient quantizer (Chmiel et al. 2023) in hardware, N lanes per beat.

Semantics: ``docs/arithmetic.md`` section 10 (10.1 the code ``fp4_luq``, 10.3 the rounding, 10.7 this
unit); golden model :func:`golden.quantize.luq_quantize_codes`. Each lane computes the 4-bit code of
``|x| / 2**scale_exp`` rounded once into ``fp4_luq`` (sign, 3-bit exponent: levels ``alpha * 2**0
... alpha * 2**6`` and zero), which is LUQ: stochastic underflow below ``alpha``, log-domain
stochastic rounding between levels, saturation at the top (or round to nearest with ``rne``).

Datapath per lane::

    unpack x -> normalize (subnormals, when the scale can lift them into the log range)
    -> keep the top 1 + look bits and a sticky bit -> exp - scale_exp -> the one rounder (fp4_luq)

No division and no multiplier: the power-of-two scale is an exponent subtraction, and the rounder's
subnormal shifter is the stochastic underflow.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_int, check_rand_bits, check_rounding
from golden.mac4 import twos_width
from golden.quantize import LUQ_FP4, luq_scale_exp_range

from ..addalign import look_bits
from ..float import exp_shape_for
from ..pipeline import Pipeline, check_stages
from ..rounder import Rounder
from ..stochastic_round.lfsr import RandSource, RandUnit
from ..validate import rejects_quietly
from .common import SourceRaw, check_quant_lanes, check_source, pack_lanes, scaled_exponent

__all__ = ["LUQ", "MAX_SCALE_BITS", "min_scale_bits", "CUTS"]

#: Widest ``scale_exp`` port: ``|scale_exp| <= 2**16`` (:data:`golden.mac4.SCALE_EXP_LIMIT`).
MAX_SCALE_BITS = 17
#: Register positions, input to output: after the scaled exponent, after the rounder.
CUTS = ("scaled", "output")


def min_scale_bits(source):
    """Two's-complement width holding the power-of-two scale of every maximum of ``source`` codes
    (:func:`golden.quantize.luq_scale_exp_range`): 6 bits for fp16, 9 for bf16 and fp32."""
    return twos_width(*luq_scale_exp_range(source))


class LUQ(RandUnit, wiring.Component):
    """``lanes`` LUQ quantizers with one power-of-two scale per beat.

    Parameters
    ----------
    lanes : int
        ``N``, codes per beat (1 to 64).
    source : str or FloatFormat
        Radix-2 float format of ``x`` (``fp16`` by default; bf16, fp32, FP8 formats, ...).
    scale_bits : int or None
        Width of ``scale_exp`` (two's complement), from :func:`min_scale_bits` of the source (the
        default) to :data:`MAX_SCALE_BITS`.
    rounding : str
        ``sr`` (LUQ, default) or ``rne``.
    rand_bits : int
        ``R``, random bits per code (``sr``).
    rand_source : str
        ``"lfsr"`` (default): one internal :class:`hw.stochastic_round.LFSR` handing out ``N`` words
        per valid beat, lane ``k`` taking word ``k``; ``"port"``: the ``rand`` input.
    lfsr_width, lfsr_taps, seed :
        LFSR parameters.
    stages : int
        0: combinational (with a port source); k > 0: latency k, one beat per cycle.

    Members
    -------
    x : In(N * source.width)
        Codes, lane ``k`` in bits ``k*W ... k*W+W-1``.
    scale_exp : In(scale_bits)
        Two's complement ``s``: ``alpha = 2**s`` for every lane of the beat.
    rand : In(N * rand_bits)
        ``sr`` with ``rand_source="port"``: lane ``k``'s word in bits ``k*R ... k*R+R-1``.
    q : Out(4 * N)
        ``fp4_luq`` codes (sign bit 3), lane ``k`` in bits ``4k ... 4k+3``.
    valid_in : In(1), valid_out : Out(1)
        With ``stages > 0`` or the LFSR (``sync`` domain: ``clk``, ``rst``); ``valid_out`` is
        ``valid_in`` delayed by ``stages`` cycles and qualifies ``q``. The LFSR advances once per
        cycle with ``valid_in`` high: the ``i``-th valid beat's lane ``k`` takes word ``i*N + k`` of
        :func:`golden.lfsr.lfsr_words` (:func:`golden.lfsr.lfsr_lane_words`).
    """

    @rejects_quietly
    def __init__(self, lanes=8, source="fp16", scale_bits=None, rounding="sr", rand_bits=8,
                 rand_source="lfsr", lfsr_width=31, lfsr_taps=None, seed=1, stages=0):
        self._lanes = check_quant_lanes(lanes)
        self._source = check_source(source)
        need = min_scale_bits(self._source)
        if scale_bits is None:
            scale_bits = need
        scale_bits = check_int("scale_bits", scale_bits)
        if not need <= scale_bits <= MAX_SCALE_BITS:
            lo, hi = luq_scale_exp_range(self._source)
            raise ValueError(f"scale_bits must be between {need} (the scale exponents {lo} ... {hi} of "
                             f"{self._source} maxima) and {MAX_SCALE_BITS}, not {scale_bits}")
        self._scale_bits = scale_bits
        self._rounding = check_rounding(rounding, ("sr", "rne"))
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._rand = RandSource(rounding, self._rand_bits, rand_source, lfsr_width, lfsr_taps, seed,
                                words=self._lanes)
        self._stages = check_stages(stages)
        members = {"x": In(self._lanes * self._source.width), "scale_exp": In(scale_bits),
                   "q": Out(4 * self._lanes)}
        members |= self._rand.unit_members(self._stages)
        super().__init__(members)

    @property
    def lanes(self):
        return self._lanes

    @property
    def scale_range(self):
        """``(lo, hi)`` of the ``scale_exp`` port."""
        return -(1 << (self._scale_bits - 1)), (1 << (self._scale_bits - 1)) - 1

    @property
    def lfsr_params(self):
        """``(width, taps, seed)`` of the internal LFSR, or None."""
        return self._rand.lfsr

    def elaborate(self, platform):
        m = Module()
        src, N, W = self._source, self._lanes, self._source.width
        s_lo, s_hi = self.scale_range
        look = look_bits(self._rounding, self._rand_bits)
        # A subnormal x at exp = emin - s needs its leading one only above the code's emin (0),
        # i.e. when some scale s < emin of the source is allowed.
        normalize = src.subnormals and s_lo < src.emin
        # The sources' biased exponents minus (s + bias), the sum formed once per beat.
        scale = Signal(exp_shape_for(s_lo + src.bias, s_hi + src.bias), name="scale_biased")
        m.d.comb += scale.eq(self.scale_exp.as_signed() + src.bias)
        scale_range = (s_lo + src.bias, s_hi + src.bias)

        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, CUTS, valid_in=valid_in)
        rand = self._rand.elaborate(m, self)

        lanes = []
        for k in range(N):
            m.submodules[f"src{k}"] = sr = SourceRaw(src, normalize, LUQ_FP4.precision + look)
            m.d.comb += sr.i.eq(self.x[k * W:(k + 1) * W])
            # Below the window (|x| < 2**-(1 + look) * alpha) every examined bit is zero: a signed
            # zero; above it (|x| >= 2**8 * alpha) the code saturates, as an Inf does.
            window = (LUQ_FP4.emin - 1 - look, LUQ_FP4.emax + 1)
            scaled, under, over = scaled_exponent(m, sr.o.exp, sr.exp_range, scale, scale_range,
                                                  window, f"scaled_exp{k}")
            exp_range = (max(window[0], sr.exp_range[0] - scale_range[1]),
                         min(window[1], sr.exp_range[1] - scale_range[0]))
            flags = Cat(sr.o.sticky, sr.o.sign, sr.o.is_nan, sr.o.is_inf | (over & ~sr.o.is_zero),
                        sr.o.is_zero | under)
            lanes.append(((sr.o.sig, scaled, flags), exp_range))
        values = [v for lane, _ in lanes for v in lane]
        staged = pipe.cut("scaled", *values, *([rand] if rand is not None else []))

        codes = []
        R = self._rand_bits
        for k, ((sig, _, _), exp_range) in enumerate(lanes):
            sig_s, exp_s, flags_s = staged[3 * k:3 * k + 3]
            m.submodules[f"round{k}"] = rnd = Rounder(LUQ_FP4, self._rounding, len(sig), exp_range, rand_bits=R)
            m.d.comb += [
                rnd.i.sig.eq(sig_s), rnd.i.exp.eq(exp_s), rnd.i.sticky.eq(flags_s[0]),
                rnd.i.sign.eq(flags_s[1]), rnd.i.is_nan.eq(flags_s[2]), rnd.i.is_inf.eq(flags_s[3]),
                rnd.i.is_zero.eq(flags_s[4]),
            ]
            if rand is not None:
                m.d.comb += rnd.rand.eq(staged[3 * N][k * R:(k + 1) * R])
            codes.append(rnd.o.as_value())
        m.d.comb += self.q.eq(pipe.cut("output", pack_lanes(m, codes, "codes")))
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m
