"""``fp8_fma``: fused multiply-add ``y = round(a*b + c)`` with one rounding.

Wang et al. 2018's FP8 x FP8 + FP16 (1-6-9) FMA, generated for any radix-2 formats (``a`` and ``b``
may differ; ``c`` and ``y`` share the accumulation format). Semantics: ``docs/arithmetic.md`` section
5; golden model :func:`golden.fp8_fma.fma`.

Datapath (``docs/arithmetic.md`` section 5.2 explains why each width suffices)::

    unpack a, b, c -> product (exact) -> normalize product -> pick the operand with the larger
    exponent (X) -> align the other (Y) to it in a short window, bits shifted out become sticky ->
    X - Y or X + Y (a negative difference is complemented) -> leading-zero normalize -> the one
    rounder (the last four steps: hw.addround.AddRound, shared with mac4 and the accumulator)

The window is only as wide as correct rounding needs (``max(precision + 2 + look, max(wp, pc) + 2)``
bits, ``look`` being the bits below the last place a rounding mode examines, ``wp`` the product width),
not the ``3p + 4`` of a fixed-anchor FMA; this is where the area goes down.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_rand_bits, check_rounding
from golden.fp8_fma import check_fma_formats

from ..addalign import look_bits, operand, window_geometry
from ..addround import AddRound, pipeline_registers
from ..float import FloatLayout, Unpack, exp_shape_for
from ..lzc import Normalizer
from ..multiply import unsigned_product
from ..pipeline import Pipeline, check_stages
from ..stochastic_round.lfsr import RandSource, RandUnit
from ..validate import rejects_quietly

__all__ = ["FMA"]

#: Candidate register positions, input to output (see :class:`hw.pipeline.Pipeline`), and the
#: relative delay of the logic before each (sky130 estimates for the FP8 FMA: unpack + product +
#: normalization, exponent compare + swap + aligner, adder + complement, LZC + shift, rounder).
CUTS = ("product", "aligned", "sum", "normalized", "output")
CUT_WEIGHTS = (4, 5, 4, 4, 3)


class FMA(RandUnit, wiring.Component):
    """``y = round(a*b + c)``, fused (one rounding).

    Parameters
    ----------
    a_format, b_format : str or FloatFormat
        Multiplicand formats (radix 2; ``fp8_e5m2`` by default).
    acc_format : str or FloatFormat
        Format of the addend ``c`` and the result ``y`` (``e6m9``, the IEEE-style 1-6-9, by default).
    rounding : str
        ``rne``, ``rna``, ``rtz`` or ``sr``.
    rand_bits : int
        ``R`` for ``sr``.
    rand_source : str
        ``"port"`` (input ``rand``) or ``"lfsr"`` (internal :class:`hw.stochastic_round.LFSR`,
        advancing once per valid operation).
    lfsr_width, lfsr_taps, seed :
        LFSR parameters.
    stages : int
        0: combinational; k > 0: k register stages, one operation accepted per cycle.

    Members
    -------
    a, b, c : In(FloatLayout(...))
    rand : In(rand_bits)
        ``sr`` with ``rand_source="port"`` only; belongs to the operands of the same cycle.
    y : Out(FloatLayout(acc_format))
    valid_in : In(1), valid_out : Out(1)
        With ``stages > 0`` or an internal LFSR (``sync`` domain: ``clk``, ``rst``). ``valid_out``
        is ``valid_in`` delayed by ``stages`` cycles and qualifies ``y``.
    """

    @rejects_quietly
    def __init__(self, a_format="fp8_e5m2", b_format=None, acc_format="e6m9", rounding="rne",
                 rand_bits=8, rand_source="port", lfsr_width=16, lfsr_taps=None, seed=1, stages=0):
        b_format = a_format if b_format is None else b_format
        self._fa, self._fb, self._fc = check_fma_formats(a_format, b_format, acc_format)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._rand = RandSource(rounding, self._rand_bits, rand_source, lfsr_width, lfsr_taps, seed)
        self._stages = check_stages(stages)
        members = {
            "a": In(FloatLayout(self._fa)), "b": In(FloatLayout(self._fb)), "c": In(FloatLayout(self._fc)),
            "y": Out(FloatLayout(self._fc)),
        }
        members |= self._rand.unit_members(self._stages)
        super().__init__(members)

    @property
    def formats(self):
        return self._fa, self._fb, self._fc

    def _adder(self, registers=None):
        """The add-and-round block for this configuration (its window sizes the product normalizer)."""
        wp = self._fa.precision + self._fb.precision
        return AddRound(self._fc, self._rounding, wp, self._product_exp_range(), rand_bits=self._rand_bits,
                        registers=registers)

    def _product_exp_range(self):
        """Range of the normalized product's exponent (weight of its top bit)."""
        fa, fb = self._fa, self._fb
        e_lo = fa.emin + fb.emin + 1
        e_hi = max(fa.emax, fa.emin) + max(fb.emax, fb.emin) + 1
        wp = fa.precision + fb.precision
        return (e_lo - (wp - 1) if fa.subnormals or fb.subnormals else e_lo - 1), e_hi

    @property
    def window(self):
        """Width of the addition window in bits (:func:`hw.addalign.window_geometry`)."""
        return self._geometry()[0]

    def _geometry(self):
        wp = self._fa.precision + self._fb.precision
        return window_geometry(self._fc, look_bits(self._rounding, self._rand_bits), wp)

    def elaborate(self, platform):
        m = Module()
        fa, fb, fc = self._fa, self._fb, self._fc
        pa, pb = fa.precision, fb.precision
        wp = pa + pb

        # NaN and Inf are decided by the flags alone; their significands may pass unmasked.
        m.submodules.unpack_a = ua = Unpack(fa, zero_specials=False)
        m.submodules.unpack_b = ub = Unpack(fb, zero_specials=False)
        m.submodules.unpack_c = uc = Unpack(fc, zero_specials=False)
        m.d.comb += [ua.i.eq(self.a), ub.i.eq(self.b), uc.i.eq(self.c)]
        ra, rb, rc = ua.o, ub.o, uc.o

        # -- product: exact, then normalized to within the adder's slack of leading zeros ---------
        prod_sig = unsigned_product(m, ra.sig, rb.sig, name="prod_sig")
        raw_lo = ua.exp_range[0] + ub.exp_range[0] + 1
        raw_hi = ua.exp_range[1] + ub.exp_range[1] + 1
        prod_exp_raw = Signal(exp_shape_for(raw_lo, raw_hi), name="prod_exp_raw")
        m.d.comb += prod_exp_raw.eq(ra.exp + rb.exp + 1)
        if fa.subnormals or fb.subnormals:
            # Subnormal multiplicands leave leading zeros anywhere in the product; the window has
            # room for `slack` of them, so only the coarser shifter stages are needed.
            granule = 1 << (self._geometry()[1] + 1).bit_length() - 1
            m.submodules.prod_norm = pn = Normalizer(wp, prod_exp_raw.shape(), granule=granule)
            m.d.comb += [pn.sig.eq(prod_sig), pn.exp.eq(prod_exp_raw)]
            prod_norm_sig, prod_norm_exp = pn.sig_out, pn.exp_out
        else:
            # Normal multiplicands: the product lies in [1, 4), at most one leading zero.
            prod_norm_sig = Signal(wp, name="prod_norm_sig")
            prod_norm_exp = Signal(exp_shape_for(raw_lo - 1, raw_hi), name="prod_norm_exp")
            top = prod_sig[wp - 1]
            m.d.comb += [prod_norm_sig.eq(Mux(top, prod_sig, prod_sig << 1)),
                         prod_norm_exp.eq(prod_exp_raw - ~top)]

        prod_sign = Signal(name="prod_sign")
        prod_zero = Signal(name="prod_zero")
        prod_nan = Signal(name="prod_nan")
        prod_inf = Signal(name="prod_inf")
        m.d.comb += [
            prod_sign.eq(ra.sign ^ rb.sign),
            prod_zero.eq(ra.is_zero | rb.is_zero),
            prod_nan.eq(ra.is_nan | rb.is_nan | (ra.is_inf & rb.is_zero) | (rb.is_inf & ra.is_zero)),
            prod_inf.eq(ra.is_inf | rb.is_inf),
        ]

        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, CUTS, valid_in=valid_in, weights=CUT_WEIGHTS)

        rand = self._rand.elaborate(m, self)
        staged = pipe.cut("product", prod_norm_sig, prod_norm_exp, prod_sign, prod_zero, prod_nan, prod_inf,
                          operand(rc), *([rand] if rand is not None else []))
        m.submodules.add = add = self._adder(pipeline_registers(pipe))
        add.feed(m, pipe, staged[:6], staged[6], rand=staged[7] if rand is not None else None)
        m.d.comb += self.y.eq(pipe.cut("output", add.o))
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m
