"""``block_dot``: a block-scaled (OCP MX, HBFP) dot product, ``y = round(c + Xa * Xb * sum of N products)``.

Each beat carries ``N`` element pairs of one block pair (``N`` = ``lanes``, a divisor of the block size
``k``; by default the whole block), the two 8-bit scale codes ``xa`` and ``xb`` (E8M0 for MX and
HBFP alike) and an addend ``c`` of the accumulation format; the result is rounded once. Semantics:
``docs/arithmetic.md`` section 9.5 (a beat of a partial block is a block of its own); golden model
:func:`golden.block.beat_dot` (with ``N = k``, :func:`golden.block.block_dot` of one block pair).

Datapath::

    per lane: decode both elements (float: sign, significand, exponent field; fixed point: the
    two's-complement integer) -> float lanes: the significand product, shifted left by the two
    exponents into a fixed-point field of the beat's whole span (the products of small elements
    are tiny: E2M1 x E2M1 is a 2-bit x 2-bit product in an 8-bit field), ones' complement for a
    negative product; fixed-point elements: their magnitudes, as the significands of floats
    -> every lane's row and carry bit summed at once (one exact fixed-point compressor tree)
    -> |sum| coarsely normalized, exponent xa + xb - 254 + the field's LSB weight
    -> hw.addround.AddRound with the decoded c (the one add-and-round path; NaN scales, element
       NaN/Inf, 0 * Inf and the zero signs as flags beside it)

No alignment to a running maximum: the field is anchored at the smallest product's last place,
so a lane's shift is the plain sum of its two exponent fields and the sum is exact by
construction. :class:`BlockLaneSum` is the part up to the exact sum; the accumulator's block front
end (``hw.accumulator``, ``front="block"``) uses it as its lane sum.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.block import BLOCK_MAX, SCALE_BIAS, SCALE_NAN, block_operand_param
from golden.checks import check_lanes, check_rand_bits, check_rounding
from golden.formats import FixedFormat, float_format_param

from ..addalign import look_bits, operand, window_geometry
from ..addround import ADD_CUTS, AddRound, pipeline_registers
from ..float import FloatLayout, LaneSumLayout, Unpack, exp_shape_for
from ..lzc import Normalizer
from ..multiply import magnitude, signed_row, sum_terms, unsigned_product
from ..pipeline import Pipeline, check_stages
from ..stochastic_round.lfsr import RandSource, RandUnit
from ..validate import rejects_quietly

__all__ = ["BlockDot", "BlockLaneSum", "MAX_LANES", "CUTS", "CUT_WEIGHTS", "SCALE_BITS"]

#: Most products per beat.
MAX_LANES = BLOCK_MAX
#: Width of a scale code (E8M0).
SCALE_BITS = 8
#: Candidate register positions, input to output (see :class:`hw.pipeline.Pipeline`): ``lane_sum``
#: after the exact sum, ``operand`` after its magnitude is normalized for the adder, then
#: :data:`hw.addalign.ADD_CUTS` and the output.
CUTS = ("lane_sum", "operand", *ADD_CUTS, "output")
#: Relative delay of the logic before each cut (decode + products + compressor tree; magnitude +
#: coarse normalization; the align-add and the rounder on the wide window).
CUT_WEIGHTS = (8, 5, 7, 7, 5, 5)


def _element(m, code, fmt, name):
    """One element code as ``sign``, magnitude ``sig``, exponent offset ``ex`` (the lane's value is
    ``(-1)**sign * sig * 2**(ex - ex_bias + lsb)``) and the flags ``zero``, ``nan``, ``inf``.

    Float elements: ``sig`` = hidden bit and mantissa, ``ex - ex_bias = max(field, 1) - 1`` (``ex_bias``
    0 or 1, see below), ``lsb = 1 - bias - M``. NaN and Inf codes keep whatever ``sig`` and ``ex`` they
    decode to (their flags decide the result). Fixed point: the two's-complement integer itself
    (``fixed=True``: the caller takes its magnitude), ``ex = ex_bias = 0``, ``lsb = -F``.
    """
    if isinstance(fmt, FixedFormat):
        W = fmt.bits
        zero = Signal(name=f"{name}_zero")
        m.d.comb += zero.eq(code == 0)
        return SimpleNamespace(fixed=True, code=code, sign=code[W - 1], zero=zero, nan=Const(0), inf=Const(0),
                               ex=Const(0, 1), ex_bias=0, ex_max=0, lsb=-fmt.frac_bits, sig_max=1 << (W - 1))
    view = FloatLayout(fmt)(code)
    E, M = fmt.exp_bits, fmt.man_bits
    nonzero_exp = Signal(name=f"{name}_nonzero_exp")
    m.d.comb += nonzero_exp.eq(view.exp != 0)
    hidden = nonzero_exp if fmt.subnormals else Const(1)
    sig = Signal(M + 1, name=f"{name}_sig")
    value = Cat(view.man, hidden) if M else hidden
    # Without subnormals an exponent field of 0 is a zero whatever the mantissa.
    m.d.comb += sig.eq(value if fmt.subnormals else Mux(nonzero_exp, value, 0))
    # From 4 exponent bits on, ex is max(field, 1) (ex_bias = 1): the decrement costs more than the
    # lane's shifter growing by a bit to absorb it (see BlockLaneSum). Measured on sky130: E4M3 smaller
    # and faster; E3M2 smaller but slower, E2M1 larger (docs/arithmetic.md 9.5), so they keep it.
    ex_bias = int(E >= 4)
    ex = Signal(E, name=f"{name}_ex")
    if ex_bias:
        m.d.comb += ex.eq(Cat(view.exp[0] | ~nonzero_exp, view.exp[1:]))
    else:
        m.d.comb += ex.eq(Mux(nonzero_exp, view.exp - 1, 0))
    flags = [Signal(name=f"{name}_{flag}") for flag in ("zero", "nan", "inf")]
    m.d.comb += [flags[0].eq(view.is_zero()), flags[1].eq(view.is_nan()), flags[2].eq(view.is_inf())]
    # The largest exponent field of a finite value: ieee keeps the top field for Inf and NaN.
    top_field = (1 << E) - (2 if fmt.specials == "ieee" else 1)
    return SimpleNamespace(fixed=False, sign=view.sign, sig=sig, ex=ex, ex_bias=ex_bias,
                           ex_max=max(top_field, 1) - 1, zero=flags[0], nan=flags[1], inf=flags[2],
                           lsb=1 - fmt.bias - M, sig_max=(1 << (M + 1)) - 1)


def _shift_left(m, value, amount, max_shift, name):
    """``value << amount`` (``amount <= max_shift``) into ``len(value) + max_shift`` bits, growing stage
    by stage (the bits below and above the moving value are constant zeros, not muxes)."""
    width = len(value) + max_shift
    cur = value
    for k in range(max(max_shift, 0).bit_length()):
        step = 1 << k
        nxt = Signal(min(len(cur) + step, width), name=f"{name}_shl{step}")
        m.d.comb += nxt.eq(Mux(amount[k], Cat(Const(0, step), cur), cur))
        cur = nxt
    out = Signal(width, name=f"{name}_field")
    m.d.comb += out.eq(cur)
    return out


class BlockLaneSum(wiring.Component):
    """The exact scaled sum ``Xa * Xb * sum_i Pa_i * Pb_i`` of one beat of ``lanes`` element pairs.
    Combinational.

    Parameters
    ----------
    a_format, b_format : BlockFormat
        The two block formats (parsed by the caller; element formats and the scale rule matter, the
        block size does not).
    lanes : int
        ``N``, element pairs per beat.

    Members
    -------
    a, b : In(lanes * element width)
        Element codes, lane ``i`` in bits ``i*W ... i*W+W-1``.
    xa, xb : In(8)
        Scale codes: ``2**(x - 127)``, ``0xFF`` a NaN block.
    o : Out(LaneSumLayout(...))
        ``o.sum * 2**o.lsb_exp`` is the beat's exact sum (two's complement ``sum``); ``nan`` for a NaN
        scale, a NaN element, ``0 * Inf`` or Infs of both signs; ``inf`` (sign ``inf_sign``) for an
        infinite product otherwise; ``zero_sign`` is set when every product is ``-0``. ``lsb_exp`` is
        meaningless when ``nan`` is set.
    """

    @rejects_quietly
    def __init__(self, a_format, b_format, lanes):
        self._fa, self._fb, self._lanes = a_format, b_format, lanes
        super().__init__({
            "a": In(lanes * a_format.element.width), "b": In(lanes * b_format.element.width),
            "xa": In(SCALE_BITS), "xb": In(SCALE_BITS),
            "o": Out(LaneSumLayout(self.sum_width, exp_shape_for(*self.lsb_exp_range))),
        })

    @property
    def lanes(self):
        return self._lanes

    def _element_params(self, fmt):
        """``(ex_max, lsb, sig_max)`` of an element format (as :func:`_element` decodes it)."""
        el = fmt.element
        if isinstance(el, FixedFormat):
            return 0, -el.frac_bits, 1 << (el.bits - 1)
        top_field = (1 << el.exp_bits) - (2 if el.specials == "ieee" else 1)
        return max(top_field, 1) - 1, 1 - el.bias - el.man_bits, (1 << (el.man_bits + 1)) - 1

    @property
    def span(self):
        """Bits of one lane's product field: every product is a whole multiple of its LSB."""
        (xa, _, ma), (xb, _, mb) = self._element_params(self._fa), self._element_params(self._fb)
        return (ma * mb).bit_length() + xa + xb

    @property
    def sum_width(self):
        """Two's-complement width of the sum: ``lanes`` times the largest product in magnitude."""
        (xa, _, ma), (xb, _, mb) = self._element_params(self._fa), self._element_params(self._fb)
        return (self._lanes * ma * mb << (xa + xb)).bit_length() + 1

    @property
    def lsb_weight(self):
        """Exponent of the field's LSB with both scales at ``2**0``."""
        return self._element_params(self._fa)[1] + self._element_params(self._fb)[1]

    @property
    def lsb_exp_range(self):
        """Range of ``o.lsb_exp`` over the non-NaN scale codes."""
        lo = self.lsb_weight - 2 * SCALE_BIAS
        return lo, lo + 2 * (SCALE_NAN - 1)

    def elaborate(self, platform):
        m = Module()
        fa, fb, N = self._fa.element, self._fb.element, self._lanes
        wa, wb = fa.width, fb.width
        width, span = self.sum_width, self.span
        terms, correction = [], 0
        lanes = []
        for i in range(N):
            a = _element(m, self.a[i * wa:(i + 1) * wa], fa, f"a{i}")
            b = _element(m, self.b[i * wb:(i + 1) * wb], fb, f"b{i}")
            sign = Signal(name=f"prod_sign{i}")
            zero = Signal(name=f"prod_zero{i}")
            nan = Signal(name=f"prod_nan{i}")
            inf = Signal(name=f"prod_inf{i}")
            m.d.comb += [
                sign.eq(a.sign ^ b.sign),
                zero.eq(a.zero | b.zero),
                nan.eq(a.nan | b.nan | (a.inf & b.zero) | (b.inf & a.zero)),
                inf.eq((a.inf | b.inf) & ~a.nan & ~b.nan),
            ]
            lanes.append((sign, zero, nan, inf))
            # Fixed-point elements enter through their magnitudes, like the floats' significands:
            # Baugh-Wooley partial-product bits of two two's-complement elements, straight into the
            # tree, were smaller for MXINT8 (-17 % with a lighter ABC script) but ABC's `&fraig -x`
            # never finishes on that tree (docs/arithmetic.md 9.5).
            sig_a = magnitude(m, a.code, a.sign, f"a{i}_mag") if a.fixed else a.sig
            sig_b = magnitude(m, b.code, b.sign, f"b{i}_mag") if b.fixed else b.sig
            prod = unsigned_product(m, sig_a, sig_b, name=f"prod{i}")
            head = (a.sig_max * b.sig_max).bit_length()      # the product's significant bits
            max_shift = a.ex_max + b.ex_max
            if max_shift:
                # a.ex + b.ex is the shift plus the operands' ex_bias: the field is shifted that much
                # further and its always-zero low bits are dropped.
                bias = a.ex_bias + b.ex_bias
                amount = Signal(range(max_shift + bias + 1), name=f"prod_shift{i}")
                m.d.comb += amount.eq(a.ex + b.ex)
                field = _shift_left(m, prod[:head], amount, max_shift + bias, name=f"prod{i}")[bias:]
            else:
                field = prod[:head]
            # Signed term: a row of span + 1 columns, its carry, and a constant summed once.
            assert len(field) == span
            row, carry, constant = signed_row(m, field, sign, f"prod_row{i}")
            terms += [(row, 0), (carry, 0)]
            correction += constant
        if correction % (1 << width):
            terms.append((Const(correction % (1 << width), width), 0))
        total = sum_terms(m, terms, width, "lane_total")

        scale_nan = Signal(name="scale_nan")
        m.d.comb += scale_nan.eq((self.xa == SCALE_NAN) | (self.xb == SCALE_NAN))
        any_nan = Cat(*[ln[2] for ln in lanes]).any()
        pos_inf = Cat(*[ln[3] & ~ln[0] for ln in lanes]).any()
        neg_inf = Cat(*[ln[3] & ln[0] for ln in lanes]).any()
        nan = Signal(name="beat_nan")
        m.d.comb += nan.eq(scale_nan | any_nan | (pos_inf & neg_inf))
        m.d.comb += [
            self.o.sum.eq(total),
            self.o.lsb_exp.eq(self.xa + self.xb + (self.lsb_weight - 2 * SCALE_BIAS)),
            self.o.nan.eq(nan),
            self.o.inf.eq((pos_inf | neg_inf) & ~nan),
            self.o.inf_sign.eq(neg_inf),
            self.o.zero_sign.eq(Cat(*[ln[1] for ln in lanes]).all() & Cat(*[ln[0] for ln in lanes]).all()),
        ]
        return m


class BlockDot(RandUnit, wiring.Component):
    """``y = round(c + Xa * Xb * sum_{i<N} Pa_i * Pb_i)``: one beat of block-scaled elements, exact
    sum, one rounding.

    Parameters
    ----------
    a_format, b_format : str, BlockFormat or element format
        Block formats (presets such as ``mxfp4_e2m1``, specs ``mx:<element>/<k>``, ``hbfp<m>``), or
        element formats (``e2m1:finite``, ``fix8.6``) under the MX scale rule; ``b_format``
        defaults to ``a_format``. Both must have the same block size.
    block : int or None
        The block size ``k`` (2 to 64) of formats given without one (default 32).
    lanes : int or None
        ``N``, element pairs per beat: a divisor of ``k`` (default ``k``).
    acc_format : str or FloatFormat
        Radix-2 format of ``c`` and ``y`` (default ``fp32``).
    rounding : str
        ``rne``, ``rna``, ``rtz`` or ``sr``.
    rand_bits, rand_source, lfsr_width, lfsr_taps, seed :
        ``sr``: ``R`` random bits per beat from the ``rand`` port or an internal LFSR advancing once
        per valid beat (:class:`hw.stochastic_round.lfsr.RandSource`).
    stages : int
        0: combinational; k > 0: k register stages at :data:`CUTS` (placed by
        :data:`CUT_WEIGHTS`, extras at the output), one beat accepted per cycle.

    Members
    -------
    a, b : In(lanes * element width)
        Element codes, lane ``i`` in bits ``i*W ... i*W+W-1`` (lane 0 lowest).
    xa, xb : In(8)
        The scale codes of the block pair the beat belongs to (E8M0; ``0xFF`` a NaN block).
    c : In(FloatLayout(acc_format)), y : Out(FloatLayout(acc_format))
    rand : In(rand_bits)
        ``sr`` with ``rand_source="port"``; belongs to the beat of the same cycle.
    valid_in : In(1), valid_out : Out(1)
        With ``stages > 0`` or an internal LFSR (``sync`` domain: ``clk``, ``rst``). ``valid_out`` is
        ``valid_in`` delayed by ``stages`` cycles and qualifies ``y``.
    """

    @rejects_quietly
    def __init__(self, a_format="mxfp8_e4m3", b_format=None, block=None, lanes=None, acc_format="fp32",
                 rounding="rne", rand_bits=8, rand_source="port", lfsr_width=16, lfsr_taps=None, seed=1,
                 stages=0):
        self._fa = block_operand_param("a_format", a_format, block)
        self._fb = block_operand_param("b_format", self._fa if b_format is None else b_format, block)
        if self._fa.k != self._fb.k:
            raise ValueError(f"a_format and b_format must have the same block size, not {self._fa.k} "
                             f"({self._fa}) and {self._fb.k} ({self._fb})")
        self._lanes = check_lanes(self._fa.k, lanes, MAX_LANES)
        self._fc = float_format_param("acc_format", acc_format)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._rand = RandSource(rounding, self._rand_bits, rand_source, lfsr_width, lfsr_taps, seed)
        self._stages = check_stages(stages)
        N = self._lanes
        members = {
            "a": In(N * self._fa.element.width), "b": In(N * self._fb.element.width),
            "xa": In(SCALE_BITS), "xb": In(SCALE_BITS),
            "c": In(FloatLayout(self._fc)), "y": Out(FloatLayout(self._fc)),
        }
        members |= self._rand.unit_members(self._stages)
        super().__init__(members)

    @property
    def lanes(self):
        return self._lanes

    @property
    def formats(self):
        """``(a_format, b_format, acc_format)`` as objects."""
        return self._fa, self._fb, self._fc

    def elaborate(self, platform):
        m = Module()
        fc = self._fc
        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, CUTS, valid_in=valid_in, weights=CUT_WEIGHTS)

        m.submodules.lane_sum = ls = BlockLaneSum(self._fa, self._fb, self._lanes)
        m.d.comb += [ls.a.eq(self.a), ls.b.eq(self.b), ls.xa.eq(self.xa), ls.xb.eq(self.xb)]
        rand = self._rand.elaborate(m, self)
        staged = pipe.cut("lane_sum", ls.o, self.c, *([rand] if rand is not None else []))
        s, c_code = staged[0], staged[1]
        rand = staged[2] if rand is not None else None

        # -- the exact operand: |sum| * 2**lsb_exp, coarsely normalized -----------------------------
        width = ls.sum_width
        mw = width - 1                                   # |sum| < 2**(width - 1)
        negative = s.sum[width - 1]
        magnitude = Signal(mw, name="sum_mag")
        m.d.comb += magnitude.eq((s.sum.as_unsigned()[:mw] ^ negative.replicate(mw)) + negative)
        sum_zero = Signal(name="sum_zero")
        m.d.comb += sum_zero.eq(s.sum == 0)
        sign = Signal(name="sum_sign")
        m.d.comb += sign.eq(Mux(s.inf, s.inf_sign, Mux(sum_zero, s.zero_sign, negative)))
        lsb_lo, lsb_hi = ls.lsb_exp_range
        top_exp = Signal(exp_shape_for(lsb_lo + mw - 1, lsb_hi + mw - 1), name="sum_top_exp")
        m.d.comb += top_exp.eq(s.lsb_exp + (mw - 1))
        # The adder's window has room for `slack` leading zeros: shift by multiples of a granule.
        slack = window_geometry(fc, look_bits(self._rounding, self._rand_bits), mw)[1]
        granule = 1 << (slack + 1).bit_length() - 1
        m.submodules.sum_norm = norm = Normalizer(mw, top_exp.shape(), granule=granule)
        m.d.comb += [norm.sig.eq(magnitude), norm.exp.eq(top_exp)]
        p_range = (lsb_lo + mw - 1 - ((mw - 1) & ~(granule - 1)), lsb_hi + mw - 1)

        m.submodules.unpack_c = uc = Unpack(fc, zero_specials=False)
        m.d.comb += uc.i.eq(c_code)
        staged = pipe.cut("operand", norm.sig_out, norm.exp_out, sign, sum_zero, s.nan, s.inf, operand(uc.o),
                          *([rand] if rand is not None else []))
        m.submodules.add = add = AddRound(fc, self._rounding, mw, p_range, rand_bits=self._rand_bits,
                                          registers=pipeline_registers(pipe))
        add.feed(m, pipe, staged[:6], staged[6], rand=staged[7] if rand is not None else None)
        m.d.comb += self.y.eq(pipe.cut("output", add.o))
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m
