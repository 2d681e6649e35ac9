"""``fp8_fma``: fused multiply-add ``y = round(a*b + c)`` with one rounding.

Wang et al. 2018's FP8 x FP8 + FP16 (1-6-9) FMA, generated for any radix-2 formats (``a`` and ``b``
may differ; ``c`` and ``y`` share the accumulation format). Semantics: ``docs/arithmetic.md`` section
5; golden model :func:`golden.fp8_fma.fma`.

Datapath (``docs/arithmetic.md`` section 5.2 explains why each width suffices)::

    unpack a, b, c -> product (exact) -> normalize product -> pick the operand with the larger
    exponent (X) -> align the other (Y) to it in a short window, bits shifted out become sticky ->
    X - Y or X + Y (a negative difference is complemented) -> leading-zero normalize -> the one
    rounder (hw.rounder)

The window is only as wide as correct rounding needs (``precision + 2 + look`` bits, ``look`` being
the bits below the last place a rounding mode examines), not the ``3p + 4`` of a fixed-anchor FMA;
this is where the area goes down.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.formats import check_rand_bits, check_rounding
from golden.fp8_fma import check_fma_formats
from golden.lfsr import check_lfsr

from ..align import clamp_amount, shift_right_sticky
from ..float import FloatLayout, Unpack, exp_shape_for
from ..lzc import Normalizer
from ..multiply import unsigned_product
from ..pipeline import Pipeline, check_stages
from ..rounder import Rounder
from ..stochastic_round.lfsr import LFSR

__all__ = ["FMA", "build"]

#: Candidate register positions, input to output (see :class:`hw.pipeline.Pipeline`).
CUTS = ("product", "aligned", "sum", "normalized", "output")


class FMA(wiring.Component):
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

    def __init__(self, a_format="fp8_e5m2", b_format=None, acc_format="e6m9", rounding="rne",
                 rand_bits=8, rand_source="port", lfsr_width=16, lfsr_taps=None, seed=1, stages=0):
        b_format = a_format if b_format is None else b_format
        self._fa, self._fb, self._fc = check_fma_formats(a_format, b_format, acc_format)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        if rand_source not in ("port", "lfsr"):
            raise ValueError(f"rand_source must be port or lfsr, not {rand_source!r}")
        self._rand_source = rand_source if rounding == "sr" else None
        self._lfsr = check_lfsr(lfsr_width, lfsr_taps, seed, self._rand_bits) \
            if self._rand_source == "lfsr" else None
        self._stages = check_stages(stages)
        members = {
            "a": In(FloatLayout(self._fa)), "b": In(FloatLayout(self._fb)), "c": In(FloatLayout(self._fc)),
            "y": Out(FloatLayout(self._fc)),
        }
        if self._rand_source == "port":
            members["rand"] = In(self._rand_bits)
        if self.clocked:
            members["valid_in"] = In(1)
            members["valid_out"] = Out(1)
        super().__init__(members)

    @property
    def clocked(self):
        return self._stages > 0 or self._rand_source == "lfsr"

    @property
    def stages(self):
        """Latency in cycles."""
        return self._stages

    @property
    def formats(self):
        return self._fa, self._fb, self._fc

    @property
    def window(self):
        """Width of the addition window in bits (see the module docstring)."""
        fc = self._fc
        look = {"rtz": 0, "rne": 1, "rna": 1, "sr": self._rand_bits}[self._rounding]
        wp = self._fa.precision + self._fb.precision
        w_xy = max(wp, fc.precision)
        return max(fc.precision + 2 + look, w_xy + 2)

    @property
    def window_slack(self):
        """Leading zeros the product may keep when it is the larger operand.

        Correct rounding needs the window to reach ``look`` bits below the last place of a result
        whose leading one is at most 1 + k bits below X's top bit position (k leading zeros of X):
        ``window - 2 >= k + 1 + man_bits + max(look, 1)``.
        """
        fc = self._fc
        look = {"rtz": 0, "rne": 1, "rna": 1, "sr": self._rand_bits}[self._rounding]
        return max(0, self.window - 3 - fc.man_bits - max(look, 1))

    def elaborate(self, platform):
        m = Module()
        fa, fb, fc = self._fa, self._fb, self._fc
        pa, pb, pc = fa.precision, fb.precision, fc.precision
        wp = pa + pb

        # NaN and Inf are decided by the flags alone; their significands may pass unmasked.
        m.submodules.unpack_a = ua = Unpack(fa, zero_specials=False)
        m.submodules.unpack_b = ub = Unpack(fb, zero_specials=False)
        m.submodules.unpack_c = uc = Unpack(fc, zero_specials=False)
        m.d.comb += [ua.i.eq(self.a), ub.i.eq(self.b), uc.i.eq(self.c)]
        ra, rb, rc = ua.o, ub.o, uc.o

        # -- product: exact, then normalized so its top bit is set (value = sig * 2**(exp - wp + 1))
        prod_sig = unsigned_product(m, ra.sig, rb.sig, name="prod_sig")
        e_lo = ua.exp_range[0] + ub.exp_range[0] + 1
        e_hi = ua.exp_range[1] + ub.exp_range[1] + 1
        prod_exp_raw = Signal(exp_shape_for(e_lo, e_hi), name="prod_exp_raw")
        m.d.comb += prod_exp_raw.eq(ra.exp + rb.exp + 1)
        if fa.subnormals or fb.subnormals:
            # Subnormal multiplicands leave leading zeros anywhere in the product. The window has
            # room for `slack` of them (see `window_slack`), so only coarser shifts are needed.
            granule = 1 << (self.window_slack + 1).bit_length() - 1
            m.submodules.prod_norm = pn = Normalizer(wp, prod_exp_raw.shape(), granule=granule)
            m.d.comb += [pn.sig.eq(prod_sig), pn.exp.eq(prod_exp_raw)]
            prod_norm_sig, prod_norm_exp = pn.sig_out, pn.exp_out
            e_lo -= wp - 1
        else:
            # Normal multiplicands: the product lies in [1, 4), at most one leading zero.
            prod_norm_sig = Signal(wp, name="prod_norm_sig")
            prod_norm_exp = Signal(exp_shape_for(e_lo - 1, e_hi), name="prod_norm_exp")
            top = prod_sig[wp - 1]
            m.d.comb += [prod_norm_sig.eq(Mux(top, prod_sig, prod_sig << 1)),
                         prod_norm_exp.eq(prod_exp_raw - ~top)]
            e_lo -= 1

        prod_sign = Signal(name="prod_sign")
        prod_zero = Signal(name="prod_zero")
        prod_inf = Signal(name="prod_inf")
        nan = Signal(name="nan")
        m.d.comb += [
            prod_sign.eq(ra.sign ^ rb.sign),
            prod_zero.eq(ra.is_zero | rb.is_zero),
            prod_inf.eq(ra.is_inf | rb.is_inf),
            nan.eq(ra.is_nan | rb.is_nan | rc.is_nan | (ra.is_inf & rb.is_zero) | (rb.is_inf & ra.is_zero)
                   | (prod_inf & rc.is_inf & (prod_sign != rc.sign))),
        ]
        is_inf = Signal(name="is_inf")
        inf_sign = Signal(name="inf_sign")
        m.d.comb += [is_inf.eq((prod_inf | rc.is_inf) & ~nan), inf_sign.eq(Mux(prod_inf, prod_sign, rc.sign))]
        zero_sign = Signal(name="zero_sign")   # IEEE: x + (-x) = +0, (-0) + (-0) = -0
        m.d.comb += zero_sign.eq(prod_sign & rc.sign)

        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, CUTS, valid_in=valid_in)

        rand = None
        if self._rand_source == "port":
            rand = self.rand
        elif self._rand_source == "lfsr":
            width, taps, seed = self._lfsr
            m.submodules.lfsr = lfsr = LFSR(width, taps, seed, self._rand_bits)
            m.d.comb += lfsr.en.eq(self.valid_in)
            rand = lfsr.rand
        rand_list = [rand] if rand is not None else []

        flags = Cat(nan, is_inf, inf_sign, zero_sign, prod_zero, prod_sign)
        staged = pipe.cut("product", prod_norm_sig, prod_norm_exp, flags, rc.sig, rc.exp, rc.sign,
                          rc.is_zero, *rand_list)
        p_sig, p_exp, flags, c_sig, c_exp, c_sign, c_zero = staged[:7]
        rand_list = staged[7:]
        prod_zero_s, prod_sign_s = flags[4], flags[5]

        # -- swap: X has the larger exponent (a zero operand is always Y) --------------------------
        W = self.window
        wxy = max(wp, pc)
        cp_lo, cp_hi = min(e_lo, uc.exp_range[0]), max(e_hi, uc.exp_range[1])
        if fc.subnormals:
            # A zero addend counts as exponent emin - 1, so a product below the subnormal range
            # becomes Y and the aligner shifts it onto the subnormal grid: the window's top then
            # never lies below emin and the rounder needs no shifter of its own. (A nonzero addend
            # has exponent >= emin, so this changes nothing else.)
            c_exp_eff = Signal(exp_shape_for(min(fc.emin - 1, uc.exp_range[0]), uc.exp_range[1]),
                               name="c_exp_eff")
            m.d.comb += c_exp_eff.eq(Mux(c_zero, fc.emin - 1, c_exp))
            cp_lo = max(cp_lo, fc.emin - 1)
        else:
            c_exp_eff = c_exp
        diff = Signal(exp_shape_for(min(e_lo, fc.emin - 1) - cp_hi, cp_hi - min(e_lo, fc.emin - 1)),
                      name="exp_diff")
        m.d.comb += diff.eq(p_exp - c_exp_eff)
        x_is_prod = Signal(name="x_is_prod")
        y_zero = Signal(name="y_zero")
        if fc.subnormals:
            m.d.comb += x_is_prod.eq(~prod_zero_s & (diff >= 0))
        else:
            m.d.comb += x_is_prod.eq(~prod_zero_s & (c_zero | (diff >= 0)))
        m.d.comb += y_zero.eq(Mux(x_is_prod, c_zero, prod_zero_s))
        # Both significands left-aligned in wxy bits.
        p_field = Cat(Const(0, wxy - wp), p_sig)
        c_field = Cat(Const(0, wxy - pc), c_sig)
        x_sig = Signal(wxy, name="x_sig")
        y_sig = Signal(wxy, name="y_sig")
        x_exp = Signal(exp_shape_for(cp_lo, cp_hi), name="x_exp")
        x_sign = Signal(name="x_sign")
        y_sign = Signal(name="y_sign")
        shift = Signal(unsigned(diff.shape().width), name="align_amount")
        m.d.comb += [
            x_sig.eq(Mux(x_is_prod, p_field, c_field)),
            y_sig.eq(Mux(x_is_prod, Mux(c_zero, 0, c_field), Mux(prod_zero_s, 0, p_field))),
            x_exp.eq(Mux(x_is_prod, p_exp, c_exp_eff)),
            x_sign.eq(Mux(x_is_prod, prod_sign_s, c_sign)),
            y_sign.eq(Mux(x_is_prod, c_sign, prod_sign_s)),
            shift.eq(Mux(x_is_prod, diff, -diff)),
        ]
        # -- align Y in the window: bit W-1 is the carry, X's top bit sits at W-2 ------------------
        y_window = Cat(Const(0, W - 1 - wxy), y_sig, Const(0, 1))
        amount = clamp_amount(m, Mux(y_zero, 0, shift), W, name="align_clamped")
        y_aligned, lost = shift_right_sticky(m, y_window, amount, W, name="align")
        x_window = Cat(Const(0, W - 1 - wxy), x_sig, Const(0, 1))
        subtract = Signal(name="subtract")
        m.d.comb += subtract.eq(x_sign ^ y_sign)

        staged = pipe.cut("aligned", x_window, y_aligned, lost, subtract, x_exp, x_sign, flags, *rand_list)
        x_w, y_w, lost, subtract, x_exp, x_sign, flags = staged[:7]
        rand_list = staged[7:]

        # -- add: X + Y, or X - Y - lost (a borrow for the bits shifted out; they make the sticky) --
        # One adder: X + (Y ^ sub) + (sub & ~lost) is X + Y, or X - Y - lost in two's complement.
        y_eff = Signal(W + 1, name="y_eff")
        m.d.comb += y_eff.eq(Cat(y_w, Const(0, 1)) ^ subtract.replicate(W + 1))
        total = Signal(W + 1, name="sum_raw")   # two's complement, bit W the sign
        m.d.comb += total.eq(x_w + y_eff + (subtract & ~lost))
        negative = total[W]
        # A negative difference (only when X was not the larger in magnitude) is complemented:
        # -S when exact, ~S when a borrow was taken for lost bits (their sticky stays correct).
        magnitude = Signal(W, name="sum_mag")
        m.d.comb += magnitude.eq((total[:W] ^ negative.replicate(W)) + (negative & ~lost))
        sum_sign = Signal(name="sum_sign")
        m.d.comb += sum_sign.eq(x_sign ^ negative)

        staged = pipe.cut("sum", magnitude, lost, sum_sign, x_exp, flags, *rand_list)
        magnitude, lost, sum_sign, x_exp, flags = staged[:5]
        rand_list = staged[5:]

        # -- normalize: bit W-1 weighs 2**(x_exp + 1) ---------------------------------------------
        top_exp = Signal(exp_shape_for(cp_lo + 1, cp_hi + 1), name="top_exp")
        m.d.comb += top_exp.eq(x_exp + 1)
        floor = fc.emin if fc.subnormals else None
        m.submodules.sum_norm = sn = Normalizer(W, top_exp.shape(), floor=floor, exp_min=cp_lo + 1)
        m.d.comb += [sn.sig.eq(magnitude), sn.exp.eq(top_exp)]
        exact_zero = Signal(name="exact_zero")
        m.d.comb += exact_zero.eq(~magnitude.any() & ~lost)
        n_lo = cp_lo + 1 - (W - 1) if floor is None else min(cp_lo + 1, floor)

        staged = pipe.cut("normalized", sn.sig_out, sn.exp_out, lost, sum_sign, exact_zero, flags, *rand_list)
        n_sig, n_exp, lost, sum_sign, exact_zero, flags = staged[:6]
        rand_list = staged[6:]
        nan_s, inf_s, inf_sign_s, zero_sign_s = flags[0], flags[1], flags[2], flags[3]

        m.submodules.rounder = rounder = Rounder(fc, self._rounding, W, (n_lo, cp_hi + 1),
                                                 rand_bits=self._rand_bits)
        m.d.comb += [
            rounder.i.sig.eq(n_sig), rounder.i.exp.eq(n_exp), rounder.i.sticky.eq(lost),
            rounder.i.sign.eq(Mux(inf_s, inf_sign_s, Mux(exact_zero, zero_sign_s, sum_sign))),
            rounder.i.is_nan.eq(nan_s), rounder.i.is_inf.eq(inf_s),
            rounder.i.is_zero.eq(exact_zero & ~nan_s & ~inf_s),
        ]
        if rand_list:
            m.d.comb += rounder.rand.eq(rand_list[0])
        m.d.comb += self.y.eq(pipe.cut("output", rounder.o))
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m


def build(a_format="fp8_e5m2", b_format=None, acc_format="e6m9", rounding="rne", rand_bits=8,
          rand_source="port", lfsr_width=16, lfsr_taps=None, seed=1, stages=0):
    """Factory used by the unit registry (``lowbit export fp8_fma``)."""
    return FMA(a_format, b_format, acc_format, rounding, rand_bits, rand_source, lfsr_width, lfsr_taps,
               seed, stages)
