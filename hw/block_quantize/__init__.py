"""``block_quantize``: ``k`` FP32 (or BF16) values to one block of a block format (OCP MX, HBFP).

Each beat takes the ``k`` values of one block and gives the ``k`` element codes and the 8-bit scale
code (E8M0, also for HBFP). Semantics: ``docs/arithmetic.md`` section 9.4; golden model
:func:`golden.block.quantize_blocks` (``rbits`` per element for ``sr``).

Datapath::

    exponent fields -> their maximum (a comparator tree on 8 bits: the largest magnitude's binade;
    the mantissas enter only where the rule needs them: whether the HBFP maximum is a power of two,
    the binade of an all-subnormal block) -> the shared exponent s, clamped to [-127, 127]; a NaN or
    Inf anywhere gives the NaN scale 0xFF and zero elements
    -> per element: the value's exponent minus s (no significand shift), the top p + look bits of its
    significand and a sticky bit of the rest, normalized only as far as an FP32 subnormal input can
    reach the element's normal range -> the one rounder (hw.rounder.Rounder) into the element format
    -> clamped to the largest element magnitude

Fixed-point elements (MXINT8, HBFP) are rounded by the same rounder into a float format with one
normal binade whose grid is the fixed-point grid (``fix<W>.<F>`` is ``e2m<W-2>`` with the exponent
offset by ``W - 2 - F``: its subnormals and first binade are the integers ``0 ... 2**(W-1) - 1``);
results beyond ``2**(W-1) - 1`` clamp, and the sign makes the two's complement.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.block import SCALE_BIAS, SCALE_EXP_MAX, SCALE_EXP_MIN, SCALE_NAN, block_operand_param
from golden.checks import check_rand_bits, check_rounding
from golden.formats import FixedFormat, FloatFormat, float_format_param, parse_format

from ..addalign import look_bits
from ..float import FloatLayout, exp_shape_for
from ..align import shift_right_sticky
from ..lzc import Normalizer, leading_zeros
from ..pipeline import Pipeline, check_stages
from ..rounder import Rounder
from ..stochastic_round.lfsr import RandSource, RandUnit
from ..validate import rejects_quietly

__all__ = ["BlockQuantize", "SOURCES", "CUTS", "CUT_WEIGHTS", "rounding_format"]

#: Input formats (the float32 and bfloat16 inputs of :func:`golden.block.quantize_blocks`).
SOURCES = ("fp32", "bf16")
#: Candidate register positions (see :class:`hw.pipeline.Pipeline`): after the shared exponent, after
#: each element's normalization, at the output.
CUTS = ("scale", "normalized", "output")
#: Relative delay of the logic before each cut (the maximum tree and the scale rule; the exponent
#: difference and the normalizer; the rounder).
CUT_WEIGHTS = (5, 3, 4)


def rounding_format(fmt):
    """``(rounding format, exponent offset)`` of a block format's elements.

    Float elements round into their own format. A fixed-point element ``fix<W>.<F>`` rounds into
    ``e2m<W-2>`` (bias 1, subnormals, no specials) with exponents lowered by ``W - 2 - F``: its
    subnormals and its first binade are exactly the integers ``0 ... 2**(W-1) - 1`` on the grid
    ``2**-F``, so the one rounder gives ``round_to_int``; anything above clamps.
    """
    el = fmt.element
    if isinstance(el, FixedFormat):
        return FloatFormat(2, el.bits - 2, bias=1, subnormals=True, specials="finite"), el.bits - 2 - el.frac_bits
    return el, 0


class BlockQuantize(RandUnit, wiring.Component):
    """One block of ``k`` FP32 or BF16 values to ``k`` element codes and the scale code.

    Parameters
    ----------
    format : str, BlockFormat or element format
        The block format (a preset such as ``mxfp8_e4m3``, ``mx:<element>/<k>``, ``hbfp<m>``), or an
        element format under the MX rule.
    block : int or None
        The block size ``k`` (2 to 64) of a format given without one (default 32).
    source : str or FloatFormat
        ``fp32`` (default) or ``bf16``.
    rounding : str
        ``rne`` (the MX spec's), ``rna``, ``rtz`` or ``sr``.
    rand_bits, rand_source, lfsr_width, lfsr_taps, seed :
        ``sr``: one ``R``-bit word per element from the ``rand`` port or an internal LFSR that
        advances ``k * R`` steps per valid beat (element ``j`` of beat ``i`` takes LFSR word
        ``k*i + j``: :func:`golden.lfsr.lfsr_lane_words`).
    stages : int
        0: combinational; n > 0: n register stages at :data:`CUTS`, one block accepted per cycle.

    Members
    -------
    x : In(k * source width)
        The block's values, value ``j`` in bits ``j*W ... j*W+W-1`` (value 0 lowest).
    y : Out(k * element width)
        Element codes, same packing.
    scale : Out(8)
        The scale code: ``s + 127``, or ``0xFF`` (NaN) for a block holding a NaN or an Inf (its
        elements are then 0).
    rand : In(k * rand_bits)
        ``sr`` with ``rand_source="port"``: element ``j``'s word in bits ``j*R ... j*R+R-1``.
    valid_in : In(1), valid_out : Out(1)
        With ``stages > 0`` or an internal LFSR (``sync`` domain: ``clk``, ``rst``). ``valid_out`` is
        ``valid_in`` delayed by ``stages`` cycles and qualifies ``y`` and ``scale``.
    """

    @rejects_quietly
    def __init__(self, format="mxfp8_e4m3", block=None, source="fp32", rounding="rne", rand_bits=8,
                 rand_source="port", lfsr_width=16, lfsr_taps=None, seed=1, stages=0):
        self._fmt = block_operand_param("format", format, block)
        src = float_format_param("source", source)
        if src not in [parse_format(s) for s in SOURCES]:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (the inputs of "
                             f"golden.block.quantize_blocks), not {src}")
        self._src = src
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        self._rand = RandSource(rounding, self._rand_bits, rand_source, lfsr_width, lfsr_taps, seed,
                                words=self._fmt.k)
        self._stages = check_stages(stages)
        k = self._fmt.k
        members = {"x": In(k * src.width), "y": Out(k * self._fmt.element.width), "scale": Out(8)}
        members |= self._rand.unit_members(self._stages)
        super().__init__(members)

    @property
    def format(self):
        return self._fmt

    @property
    def source(self):
        return self._src

    # -- the shared exponent ---------------------------------------------------------------------------

    def _shared_exponent(self, m, fields):
        """``(s, special)``: the clamped shared exponent (signed) and whether the block holds a NaN
        or an Inf. ``fields`` are the views of the ``k`` source codes."""
        fmt, src = self._fmt, self._src
        E, M = src.exp_bits, src.man_bits
        top = (1 << E) - 1
        special = Signal(name="special")
        m.d.comb += special.eq(Cat(*[f.exp == top for f in fields]).any())
        # The maximum bit by bit from the top: bit b of the maximum is set if a field still in the
        # running has it set; fields without it then drop out. (Smaller than a comparator tree: per
        # field and bit one AND and one OR-tree input.)
        emax = Signal(E, name="exp_field_max")
        running = [Const(1)] * len(fields)
        for b in reversed(range(E)):
            top_bit = Signal(name=f"exp_max_bit{b}")
            m.d.comb += top_bit.eq(Cat(*[r & f.exp[b] for r, f in zip(running, fields)]).any())
            m.d.comb += emax[b].eq(top_bit)
            if b:
                nxt = []
                for j, (r, f) in enumerate(zip(running, fields)):
                    alive = Signal(name=f"exp_max_alive{b}_{j}")
                    m.d.comb += alive.eq(r & (f.exp[b] | ~top_bit))
                    nxt.append(alive)
                running = nxt

        # The rule's exponent of a block whose maximum is normal: floor(log2(amax)) is the field minus
        # the bias (MX); HBFP's ceil adds one unless every value of the top binade is its power of two.
        emax_elem, bias = fmt.emax_elem, src.bias
        hbfp = fmt.scale == "hbfp"
        if hbfp:
            not_pow2 = Signal(name="amax_not_pow2")
            m.d.comb += not_pow2.eq(Cat(*[(f.exp == emax) & f.man.any() for f in fields]).any())
            normal = emax - bias + not_pow2 - emax_elem - 1
            normal_range = (-bias - emax_elem - 1, top - bias - emax_elem)
        else:
            normal = emax - bias - emax_elem
            normal_range = (-bias - emax_elem, top - bias - emax_elem)
        # An all-subnormal (or all-zero) block: below 2**emin, so the rule gives at most sub_hi; only
        # where that lies above the clamp at -127 does the largest mantissa matter.
        sub_hi = src.emin - 1 - emax_elem           # floor (MX) or ceil - 1 (HBFP) of a subnormal, at most
        if sub_hi <= SCALE_EXP_MIN:
            subnormal, sub_range = SCALE_EXP_MIN, (SCALE_EXP_MIN, SCALE_EXP_MIN)
        elif hbfp:
            # HBFP elements are fix<m>.<m-1> (emax_elem = -1): ceil(log2(amax)) is emin exactly when
            # amax > 2**(emin-1), i.e. some mantissa above 2**(M-1); otherwise the clamp gives -127.
            assert emax_elem == -1 and sub_hi == SCALE_EXP_MIN + 1
            over_half = Signal(name="subnormal_over_half")
            m.d.comb += over_half.eq(Cat(*[f.man[M - 1] & f.man[:M - 1].any() for f in fields]).any())
            subnormal, sub_range = Mux(over_half, sub_hi, SCALE_EXP_MIN), (SCALE_EXP_MIN, sub_hi)
        else:
            # floor(log2(amax)) = emin - M + bit_length(largest mantissa) - 1 = emin - 1 - lzc(OR of the
            # mantissas); an all-zero block has s = -127.
            ored = 0
            for f in fields:
                ored = ored | f.man
            any_man = Signal(M, name="subnormal_or")
            m.d.comb += any_man.eq(ored)
            lz = leading_zeros(m, any_man, name="subnormal_lzc")
            subnormal = Mux(any_man.any(), src.emin - 1 - emax_elem - lz, SCALE_EXP_MIN)
            sub_range = (min(src.emin - 1 - emax_elem - M, SCALE_EXP_MIN), sub_hi)
        raw = Signal(exp_shape_for(min(normal_range[0], sub_range[0]), max(normal_range[1], sub_range[1])),
                     name="scale_unclamped")
        m.d.comb += raw.eq(Mux(emax != 0, normal, subnormal))
        s = Signal(exp_shape_for(SCALE_EXP_MIN, SCALE_EXP_MAX), name="shared_exp")
        m.d.comb += s.eq(Mux(raw < SCALE_EXP_MIN, SCALE_EXP_MIN, Mux(raw > SCALE_EXP_MAX, SCALE_EXP_MAX, raw)))
        return s, special

    # -- elements --------------------------------------------------------------------------------------

    def _exp_bounds(self):
        """``(lo, hi, sub_hi, norm_max)``: the range of an element's hidden-bit exponent relative to the
        scale (in the rounding format's units: ``max(e, 1) - bias - s - offset``), the largest one of a
        subnormal input, and how far the normalizer may have to shift (0: no normalizer).

        The scale follows the block's maximum (floor or ceil rule) unless clamped, so a value lies below
        ``2**(emax_elem + 1)`` (``+1`` more with the ceil rule) or, with ``s`` clamped at 127, below
        ``2**1``: ``hi``. A subnormal input arrives unnormalized at ``emin - s`` (up to ``emin + 127``);
        the rounder takes leading zeros only at or below the rounding format's ``emin``, so the
        normalizer shifts it at most down to there (or fully, without subnormals).
        """
        fmt, src = self._fmt, self._src
        rf, off = rounding_format(fmt)
        lo = src.emin - SCALE_EXP_MAX - off
        hi = max(fmt.emax_elem + (1 if fmt.scale == "hbfp" else 0), 0) - off
        sub_hi = src.emin - SCALE_EXP_MIN - off
        if not rf.subnormals:
            norm_max = src.man_bits
        else:
            norm_max = min(max(0, sub_hi - rf.emin), src.man_bits)
        return lo, hi, sub_hi, norm_max

    def elaborate(self, platform):
        m = Module()
        fmt, src, k = self._fmt, self._src, self._fmt.k
        rf, off = rounding_format(fmt)
        Ws, We = src.width, fmt.element.width
        fields = [FloatLayout(src)(self.x[j * Ws:(j + 1) * Ws]) for j in range(k)]
        valid_in = self.valid_in if self.clocked else None
        pipe = Pipeline(m, self._stages, CUTS, valid_in=valid_in, weights=CUT_WEIGHTS)

        s, special = self._shared_exponent(m, fields)
        rand = self._rand.elaborate(m, self)
        staged = pipe.cut("scale", s, special, self.x, *([rand] if rand is not None else []))
        s, special, x = staged[:3]
        rand = staged[3] if rand is not None else None
        fields = [FloatLayout(src)(x[j * Ws:(j + 1) * Ws]) for j in range(k)]

        R = self._rand_bits
        look = max(look_bits(self._rounding, R), 1)
        lo, hi, sub_hi, norm_max = self._exp_bounds()
        p = rf.precision
        cap = p + look                              # bits the rounder examines below the leading one
        floor = rf.emin if rf.subnormals else None
        # Exponents below lo_c round alike (from p + look places below emin on every bit is sticky;
        # without subnormals anything below emin - 1 flushes), so an element's exponent is clamped
        # there and every per-element exponent is a few bits wide.
        lo_c = max(lo, floor - cap if floor is not None else rf.emin - 2)
        exp_hi = max(hi, sub_hi) if norm_max else hi
        # The significand bits that can matter: the examined ones below a leading one that an FP32
        # subnormal brings up by at most norm_max places (zeros below a narrow source).
        K = cap + norm_max
        keep = min(K, src.precision)
        # The block's exponent base: an element's hidden-bit exponent relative to the scale (and the
        # rounding format's emin, when it has subnormals) is max(e, 1) - base.
        ref = floor if floor is not None else 0
        base_lo, base_hi = src.bias + SCALE_EXP_MIN + off + ref, src.bias + SCALE_EXP_MAX + off + ref
        base = Signal(exp_shape_for(base_lo, base_hi), name="exp_base")
        m.d.comb += base.eq(s + (src.bias + off + ref))
        # Fields below base + lo_c - ref clamp; the others give an exponent in [lo_c, exp_hi], whose
        # low bits the element's narrow subtraction computes (mod 2**n). The threshold, clamped to the
        # fields' range, is computed once per block.
        field_max = (1 << src.exp_bits) - 1
        thr_value = base + (lo_c - ref)
        threshold = Signal(range(field_max + 1), name="clamp_threshold")
        m.d.comb += threshold.eq(Mux(thr_value < 1, 1, Mux(thr_value > field_max, field_max, thr_value)))
        clamp_all = Signal(name="clamp_all")        # base + lo_c above the largest field: every exponent clamps
        m.d.comb += clamp_all.eq(thr_value > field_max)
        norm = []
        for j, f in enumerate(fields):
            nonzero_exp = Signal(name=f"nonzero_exp{j}")
            m.d.comb += nonzero_exp.eq(f.exp != 0)
            sig = Cat(f.man, nonzero_exp)                  # the hidden bit on top (0: subnormal, zero)
            window = Signal(K, name=f"sig_top{j}")
            m.d.comb += window.eq(Cat(Const(0, K - keep), sig[src.precision - keep:]))
            sticky = Signal(name=f"sticky{j}")
            m.d.comb += sticky.eq(sig[:src.precision - keep].any() if keep < src.precision else 0)
            field = Mux(nonzero_exp, f.exp, 1)
            # rel = the exponent minus ref, clamped below at lo_c - ref.
            rel = Signal(exp_shape_for(lo_c - ref, exp_hi - ref), name=f"exp_rel{j}")
            n = len(rel)
            clamp = Signal(name=f"exp_clamp{j}")
            # A NaN or Inf block gives zero elements: its values are sent below the smallest step
            # (every bit sticky: all modes round to zero) with the sign cleared.
            m.d.comb += clamp.eq(special | clamp_all | (field < threshold))
            sign = Signal(name=f"sign{j}")
            m.d.comb += sign.eq(f.sign & ~special)
            m.d.comb += rel.eq(Mux(clamp, lo_c - ref, (field - base[:n])[:n]))
            if floor is None:
                # No subnormals in the rounding format: normalize fully (the rounder flushes).
                m.submodules[f"normalize{j}"] = nz = Normalizer(K, rel.shape(), exp_min=lo_c)
                m.d.comb += [nz.sig.eq(window), nz.exp.eq(rel)]
                norm.append((nz.sig_out, nz.exp_out, sticky, sign))
                continue
            # One shift onto the rounding format's grid: left by L = min(lzc, exp - emin) (an FP32
            # subnormal brought up to its leading one, or to emin), right by -L below emin (a
            # subnormal result; beyond cap places only the sticky bit remains). As a right shift of
            # the window zero-extended by cap bits: by norm_max - L, keeping the low cap bits; the
            # exponent becomes emin + (exp - emin - L).
            amount = Signal(range(norm_max + cap + 1), name=f"shift{j}")
            above = Signal(range(max(hi, floor) - floor + 1), name=f"above_emin{j}")
            if norm_max:
                lz = leading_zeros(m, window[K - (norm_max + 1):], name=f"lzc{j}")
                to_lead = Signal(name=f"to_leading_one{j}")     # the leading one lies above emin
                # (A zero has no leading one: it stays at emin, whatever the shift of its zero bits.)
                m.d.comb += [
                    to_lead.eq((lz < rel) & (lz != norm_max + 1)),
                    amount.eq(Mux(to_lead, norm_max - lz, norm_max - rel)),
                    above.eq(Mux(to_lead, rel - lz, 0)),
                ]
            else:
                m.d.comb += [amount.eq(Mux(rel > 0, 0, -rel)), above.eq(Mux(rel > 0, rel, 0))]
            shifted, lost = shift_right_sticky(m, Cat(window, Const(0, cap)), amount, norm_max + cap,
                                               name=f"grid{j}")
            norm.append((shifted[:cap], above, sticky | lost, sign))
        width = len(norm[0][0])
        # The rounder's exponent: emin + above (with subnormals), else the normalized exponent.
        norm_lo = floor if floor is not None else lo_c - K

        staged = pipe.cut("normalized", s, special, *[Cat(*v) for v in norm], *([rand] if rand is not None else []))
        s, special = staged[0], staged[1]
        rows = staged[2:2 + k]
        rand = staged[2 + k] if rand is not None else None

        codes = []
        exp_width = len(norm[0][1])
        for j, row in enumerate(rows):
            top, exp = row[:width], row[width:width + exp_width]
            exp = exp + floor if floor is not None else exp.as_signed()
            sticky, sign = row[width + exp_width], row[width + exp_width + 1]
            m.submodules[f"round{j}"] = rd = Rounder(rf, self._rounding, width, (norm_lo, hi), rand_bits=R)
            m.d.comb += [
                rd.i.sig.eq(top), rd.i.exp.eq(exp), rd.i.sticky.eq(sticky), rd.i.sign.eq(sign),
                rd.i.is_zero.eq(0), rd.i.is_nan.eq(0), rd.i.is_inf.eq(0),
            ]
            if rand is not None:
                m.d.comb += rd.rand.eq(rand[j * R:(j + 1) * R])
            code = Signal(We, name=f"code{j}")
            mag = rd.o.as_value()[:rf.width - 1]
            el = fmt.element
            if isinstance(el, FixedFormat):
                # Clamp to 2**(W-1) - 1, then the sign makes the two's complement (zeros are +0).
                max_int = (1 << (el.bits - 1)) - 1
                n = Signal(el.bits, name=f"int{j}")
                m.d.comb += n.eq(Mux(mag > max_int, max_int, mag))
                m.d.comb += code.eq(Mux(rd.o.sign, -n, n))
            elif el.has_inf:
                # rne/rna/sr overflow to Inf: clamp to the largest finite magnitude, keeping the sign.
                m.d.comb += code.eq(Mux(mag == el.inf_code, Cat(Const(el.max_code, We - 1), rd.o.sign),
                                        rd.o.as_value()))
            else:
                m.d.comb += code.eq(rd.o.as_value())
            codes.append(code)

        y = Signal(k * We, name="codes")
        m.d.comb += y.eq(Cat(*codes))
        scale = Signal(8, name="scale_code")
        m.d.comb += scale.eq(Mux(special, SCALE_NAN, s + SCALE_BIAS))
        y, scale = pipe.cut("output", y, scale)
        m.d.comb += [self.y.eq(y), self.scale.eq(scale)]
        if self.clocked:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m
