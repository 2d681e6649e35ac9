"""``accumulator``: chunk-based accumulation, a streaming dot-product engine (Wang et al. 2018).

Semantics: ``docs/arithmetic.md`` section 7; golden model :func:`golden.accumulator.dot` (the block
front end: section 9.6, :func:`golden.block.block_gemm`). Each input beat carries ``N`` operand pairs
(with ``front="block"``: one block pair, ``N = k``, and its two scale codes) and a ``last`` flag; per beat ``inner <- round(inner + S)`` with
``S`` the (window-truncated) exact lane sum; every ``CL`` products ``outer <- round(outer + inner)``
and ``inner <- -0``; after the last beat the result is ``round(outer + inner)`` (``inner`` itself
without chunking).

Datapath::

    lane products -> align to the beat's largest exponent T in a w-bit window -> signed sum S
      -> [stages registers] -> inner: unpack, AddRound (one beat per cycle, a loop)
      -> chunk end or last: hold <- new inner -> next cycle: outer: the same AddRound
      -> outer <- result, or (last) the output register

Back-pressure: the whole datapath advances only while the output register is empty or being read
(``EnableInserter``), so a stall loses and duplicates nothing; ``i.ready`` is that enable.
"""

from __future__ import annotations


from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.block import BlockFormat, block_operand_param, is_block_spec
from golden.checks import check_bool, check_choice, check_int, check_rand_bits, check_rounding
from golden.formats import float_format_param
from golden.lfsr import check_lfsr, reciprocal_taps

from ..addalign import operand
from ..addround import AddRound
from ..align import shift_right_sticky
from ..block_dot import SCALE_BITS, BlockLaneSum
from ..float import FloatLayout, LaneSumLayout, Unpack, exp_shape_for
from ..lzc import Normalizer
from ..mac4 import OFFSET_BITS, Mac4LaneSum
from ..multiply import unsigned_product
from ..pipeline import Pipeline, check_stages
from ..rounder import Rounder
from ..stochastic_round.lfsr import LFSR
from ..validate import rejects_quietly

__all__ = ["Accumulator", "LaneSum", "exact_window", "MAX_LANES"]

#: Most lanes (products per beat).
MAX_LANES = 64
#: Lane-sum front ends: FP8 x FP8 floats, mac4's INT4 x FP4, block-scaled block pairs.
FRONTS = ("fp8", "mac4", "block")


def exact_window(a_fmt, b_fmt):
    """The window that never truncates: the span of every product relative to the largest."""
    wp = a_fmt.precision + b_fmt.precision
    p_lo = a_fmt.emin + b_fmt.emin
    p_hi = max(a_fmt.emax, a_fmt.emin) + max(b_fmt.emax, b_fmt.emin)
    return wp + (p_hi - p_lo)


class LaneSum(wiring.Component):
    """The exact (or window-truncated) sum of ``lanes`` products of one beat. Combinational.

    ``docs/arithmetic.md`` section 7, item 2: ``T`` is the largest ``ea + eb`` over the nonzero
    finite products; each product's magnitude is truncated to a multiple of ``2**(T + 2 - w)``
    and the signed terms are summed exactly.

    Parameters
    ----------
    a_format, b_format : FloatFormat
    lanes : int
    window : int
        ``w``, the bits kept below the beat's largest product.

    Members
    -------
    a, b : In(ArrayLayout(FloatLayout(fmt), lanes))
    o : Out(LaneSumLayout(...))
        ``o.sum * 2**o.lsb_exp`` is the beat's sum; ``zero_sign`` is the sign of a zero sum (``-0``
        only when every product is ``-0``).
    """

    @rejects_quietly
    def __init__(self, a_format, b_format, lanes, window):
        self._fa, self._fb = a_format, b_format
        self._lanes = lanes
        self._w = window
        fa, fb = self._fa, self._fb
        self._p_range = (fa.emin + fb.emin, max(fa.emax, fa.emin) + max(fb.emax, fb.emin))
        super().__init__({
            "a": In(data.ArrayLayout(FloatLayout(fa), lanes)),
            "b": In(data.ArrayLayout(FloatLayout(fb), lanes)),
            "o": Out(LaneSumLayout(self.sum_width, exp_shape_for(*self.lsb_exp_range))),
        })

    @property
    def sum_width(self):
        """Two's-complement width holding ``lanes * (2**w - 1)`` in magnitude."""
        return (self._lanes * ((1 << self._w) - 1)).bit_length() + 1

    @property
    def lsb_exp_range(self):
        return (self._p_range[0] + 2 - self._w, self._p_range[1] + 2 - self._w)

    def elaborate(self, platform):
        m = Module()
        fa, fb, N, w = self._fa, self._fb, self._lanes, self._w
        wp = fa.precision + fb.precision
        # Exponents stay biased here (e = max(field, 1)): the biases cancel in T - P and are
        # subtracted once, from lsb_exp.
        bias = fa.bias + fb.bias
        p_lo, p_hi = self._p_range[0] + bias, self._p_range[1] + bias
        exp_shape = unsigned(Shape.cast(range(p_hi + 1)).width)
        lanes = []
        for k in range(N):
            a, b = self.a[k], self.b[k]
            hidden_a = a.exp != 0 if fa.subnormals else Const(1)
            hidden_b = b.exp != 0 if fb.subnormals else Const(1)
            sig_a, sig_b = Cat(a.man, hidden_a), Cat(b.man, hidden_b)
            zero = Signal(name=f"prod_zero{k}")
            nan = Signal(name=f"prod_nan{k}")
            inf = Signal(name=f"prod_inf{k}")
            m.d.comb += [
                zero.eq(a.is_zero() | b.is_zero()),
                nan.eq(a.is_nan() | b.is_nan() | (a.is_inf() & b.is_zero()) | (b.is_inf() & a.is_zero())),
                inf.eq((a.is_inf() | b.is_inf()) & ~a.is_nan() & ~b.is_nan()),
            ]
            # Without subnormals an exponent field of 0 is a zero: its significand must be too.
            if not fa.subnormals:
                sig_a = Mux(a.exp != 0, sig_a, 0)
            if not fb.subnormals:
                sig_b = Mux(b.exp != 0, sig_b, 0)
            prod = unsigned_product(m, sig_a, sig_b, name=f"prod{k}")
            p_exp = Signal(exp_shape, name=f"prod_exp{k}")      # |p| < 2**(p_exp - bias + 2)
            m.d.comb += p_exp.eq(Mux(a.exp != 0, a.exp, 1) + Mux(b.exp != 0, b.exp, 1))
            lanes.append((prod, p_exp, a.sign ^ b.sign, zero, nan, inf))

        # T: the largest exponent over the nonzero finite products (zero, Inf and NaN lanes drop out).
        # (An Inf or NaN lane may count: the result is then Inf or NaN whatever T is.)
        counted = []
        for k, (prod, p_exp, sign, zero, nan, inf) in enumerate(lanes):
            e = Signal(exp_shape, name=f"counted_exp{k}")
            m.d.comb += e.eq(Mux(zero, p_lo, p_exp))
            counted.append(e)
        level = counted
        while len(level) > 1:
            nxt = []
            for j in range(0, len(level) - 1, 2):
                mx = Signal(exp_shape, name=f"exp_max{len(level)}_{j}")
                m.d.comb += mx.eq(Mux(level[j] > level[j + 1], level[j], level[j + 1]))
                nxt.append(mx)
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        top = level[0]

        width = self.sum_width
        terms = 0
        correction = 0
        for k, (prod, p_exp, sign, zero, nan, inf) in enumerate(lanes):
            # The product's top w bits (its MSB weighs 2**(p_exp + 1)), then shifted down to T:
            # nested floors, so the magnitude is truncated to a multiple of 2**(T + 2 - w).
            head = prod[wp - w:] if w < wp else Cat(Const(0, w - wp), prod)
            dist = Signal(unsigned(Shape.cast(range(p_hi - p_lo + 1)).width), name=f"align_dist{k}")
            m.d.comb += dist.eq(top - counted[k])
            # Shifts of w or more leave nothing: shift by the low bits, clear on any high bit.
            low = min(len(dist), Shape.cast(range(w)).width)
            shifted, _ = shift_right_sticky(m, head, dist[:low], (1 << low) - 1, name=f"align{k}")
            # A zero product has a zero significand, so it needs no masking (and -0 is 0); Inf and
            # NaN lanes decide the result through the flags.
            mag = Signal(w, name=f"lane_mag{k}")
            m.d.comb += mag.eq(Mux(dist[low:].any(), 0, shifted) if low < len(dist) else shifted)
            # Signed term: -mag = ~mag + 1. The sign extension of (mag ^ sign) is a leading ~sign bit
            # plus the constant -2**w, summed once, so the compressor tree spans only w + 1 columns.
            term = Signal(w + 1, name=f"lane_term{k}")
            m.d.comb += term.eq(Cat(mag ^ sign.replicate(w), ~sign))
            terms = terms + term + sign
            correction -= 1 << w
        total = Signal(signed(width), name="lane_total")
        m.d.comb += total.eq((terms + Const(correction % (1 << width), width))[:width])

        any_nan = Cat(*[ln[4] for ln in lanes]).any()
        pos_inf = Cat(*[ln[5] & ~ln[2] for ln in lanes]).any()
        neg_inf = Cat(*[ln[5] & ln[2] for ln in lanes]).any()
        all_zero = Cat(*[ln[3] for ln in lanes]).all()
        all_neg = Cat(*[ln[2] for ln in lanes]).all()
        m.d.comb += [
            self.o.sum.eq(total),
            self.o.lsb_exp.eq(top - bias + 2 - w),
            self.o.nan.eq(any_nan | (pos_inf & neg_inf)),
            self.o.inf.eq((pos_inf | neg_inf) & ~any_nan & ~(pos_inf & neg_inf)),
            self.o.inf_sign.eq(neg_inf),
            self.o.zero_sign.eq(all_zero & all_neg),
        ]
        return m


class _Core(wiring.Component):
    """The accumulator's state machine without back-pressure (run under an enable)."""

    @rejects_quietly
    def __init__(self, parent):
        self._p = parent
        super().__init__({
            "beat_valid": In(1),
            "beat": In(parent.beat_layout),
            "result": Out(FloatLayout(parent._fc)),
            "result_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        par = self._p
        fc, rounding, R = par._fc, par._rounding, par._rand_bits

        if par._front == "mac4":
            m.submodules.lanes = ls = Mac4LaneSum(par._lanes, par._x_signed)
            m.d.comb += [ls.x.eq(self.beat.x), ls.g.eq(self.beat.g), ls.phase.eq(self.beat.phase),
                         ls.offset.eq(self.beat.offset)]
        elif par._front == "block":
            m.submodules.lanes = ls = BlockLaneSum(par._fa, par._fb, par._lanes)
            m.d.comb += [ls.a.eq(self.beat.a), ls.b.eq(self.beat.b), ls.xa.eq(self.beat.xa),
                         ls.xb.eq(self.beat.xb)]
        else:
            m.submodules.lanes = ls = LaneSum(par._fa, par._fb, par._lanes, par.window)
            m.d.comb += [ls.a.eq(self.beat.a), ls.b.eq(self.beat.b)]
        pipe = Pipeline(m, par._stages, ["lane_sum"], valid_in=self.beat_valid)
        s, last = pipe.cut("lane_sum", ls.o, self.beat.last)
        beat = pipe.valid_out if par._stages else self.beat_valid

        # S as sign and magnitude, normalized (stopping at emin when the format has subnormals:
        # a value left at emin with leading zeros is a subnormal, which AlignAdd and the rounder take).
        width = ls.sum_width
        mw = width - 1                            # |S| < 2**(width - 1)
        pw = max(mw, fc.precision + 1)            # the rounder looks at least at a guard bit
        negative = s.sum[width - 1]
        magnitude = Signal(pw, name="sum_mag")
        m.d.comb += magnitude[pw - mw:].eq((s.sum.as_unsigned()[:mw] ^ negative.replicate(mw)) + negative)
        lsb_lo, lsb_hi = ls.lsb_exp_range
        top_exp = Signal(exp_shape_for(lsb_lo + mw - 1, lsb_hi + mw - 1), name="sum_top_exp")
        m.d.comb += top_exp.eq(s.lsb_exp + (mw - 1))
        floor = fc.emin if fc.subnormals else None
        m.submodules.sum_norm = sn = Normalizer(pw, top_exp.shape(), floor=floor)
        m.d.comb += [sn.sig.eq(magnitude), sn.exp.eq(top_exp)]
        s_lo = lsb_lo + mw - 1 - (pw - 1) if floor is None else min(lsb_lo + mw - 1, floor)
        s_range = (s_lo, lsb_hi + mw - 1)
        sum_zero = Signal(name="sum_zero")
        m.d.comb += sum_zero.eq(s.sum == 0)
        s_sign = Signal(name="sum_sign")
        m.d.comb += s_sign.eq(Mux(s.inf, s.inf_sign, Mux(sum_zero, s.zero_sign, negative)))

        # -- state --------------------------------------------------------------------------------
        inner = Signal(FloatLayout(fc), init={"sign": 1}, name="inner")   # -0
        chunk_beats = par._chunk // par._lanes
        flush = Signal(name="flush")
        if chunk_beats:
            count = Signal(range(chunk_beats), name="chunk_count")
            m.d.comb += flush.eq(last | (count == chunk_beats - 1))
            with m.If(beat):
                m.d.sync += count.eq(Mux(flush, 0, count + 1))
        else:
            m.d.comb += flush.eq(last)

        rand_inner = rand_outer = None
        if rounding == "sr":
            m.submodules.lfsr_inner = li = LFSR(*par._lfsr_inner, R)
            m.d.comb += li.en.eq(beat)
            rand_inner = li.rand

        # The addend c of the one add-and-round path is a code (inner, or outer for a flush).
        c_code = Signal(FloatLayout(fc), name="addend")
        m.submodules.unpack_addend = uc = Unpack(fc, zero_specials=False)
        m.d.comb += uc.i.eq(c_code)

        if not chunk_beats:
            # One loop: inner <- round(inner + S); the last beat's value is the result.
            m.submodules.add = add = AddRound(fc, rounding, pw, s_range, rand_bits=R)
            self._feed_sum(m, add, sn, s_sign, sum_zero, s)
            m.d.comb += [c_code.eq(inner), add.c.eq(operand(uc.o))]
            if rand_inner is not None:
                m.d.comb += add.rand.eq(rand_inner)
            with m.If(beat):
                m.d.sync += inner.eq(Mux(last, fc.sign_mask, add.o))
            result = Signal(FloatLayout(fc), name="result_reg", reset_less=True)
            result_valid = Signal(name="result_valid_reg")
            m.d.sync += result_valid.eq(beat & last)
            with m.If(beat & last):
                m.d.sync += result.eq(add.o)
            m.d.comb += [self.result.eq(result), self.result_valid.eq(result_valid)]
            return m

        # With chunks, one adder serves both roundings. At a chunk's end the new inner value stays
        # in `inner` and `pend` is set; the next cycle the adder computes round(outer + inner),
        # while a beat arriving then starts the new chunk from -0: round(-0 + S) = round(S), which
        # the bypass rounder does alone.
        outer = Signal(FloatLayout(fc), init={"sign": 1}, name="outer")   # -0
        pend = Signal(name="pending")            # inner holds a finished chunk for the outer rounding
        pend_last = Signal(name="pending_last")  # ... the dot product's last
        if rounding == "sr":
            m.submodules.lfsr_outer = lo = LFSR(*par._lfsr_outer, R)
            m.d.comb += lo.en.eq(pend)
            rand_outer = lo.rand

        m.submodules.unpack_inner = ui = Unpack(fc, zero_specials=False)
        m.d.comb += ui.i.eq(inner)
        p_lo = min(s_range[0], ui.exp_range[0])
        p_hi = max(s_range[1], ui.exp_range[1])
        m.submodules.add = add = AddRound(fc, rounding, pw, (p_lo, p_hi), rand_bits=R)
        m.d.comb += add.c.eq(operand(uc.o))
        with m.If(pend):
            m.d.comb += [
                c_code.eq(outer),
                add.p.sig.eq(Cat(Const(0, pw - fc.precision), ui.o.sig)), add.p.exp.eq(ui.o.exp),
                add.p.sign.eq(ui.o.sign), add.p.zero.eq(ui.o.is_zero),
                add.p.nan.eq(ui.o.is_nan), add.p.inf.eq(ui.o.is_inf),
            ]
            if rand_outer is not None:
                m.d.comb += add.rand.eq(rand_outer)
        with m.Else():
            m.d.comb += c_code.eq(inner)
            self._feed_sum(m, add, sn, s_sign, sum_zero, s)
            if rand_inner is not None:
                m.d.comb += add.rand.eq(rand_inner)

        m.submodules.bypass = bypass = Rounder(fc, rounding, pw, s_range, rand_bits=R)
        m.d.comb += [
            bypass.i.sig.eq(sn.sig_out), bypass.i.exp.eq(sn.exp_out), bypass.i.sticky.eq(0),
            bypass.i.sign.eq(s_sign), bypass.i.is_nan.eq(s.nan), bypass.i.is_inf.eq(s.inf),
            bypass.i.is_zero.eq(sum_zero & ~s.nan & ~s.inf),
        ]
        if rand_inner is not None:
            m.d.comb += bypass.rand.eq(rand_inner)

        with m.If(beat):
            m.d.sync += inner.eq(Mux(pend, bypass.o, add.o))
        with m.Elif(pend):
            m.d.sync += inner.eq(fc.sign_mask)
        m.d.sync += [pend.eq(beat & flush), pend_last.eq(beat & last)]
        with m.If(pend):
            m.d.sync += outer.eq(Mux(pend_last, fc.sign_mask, add.o))
        m.d.comb += [self.result.eq(add.o), self.result_valid.eq(pend_last)]
        return m

    @staticmethod
    def _feed_sum(m, add, sn, s_sign, sum_zero, s):
        m.d.comb += [
            add.p.sig.eq(sn.sig_out), add.p.exp.eq(sn.exp_out), add.p.sign.eq(s_sign),
            add.p.zero.eq(sum_zero), add.p.nan.eq(s.nan), add.p.inf.eq(s.inf),
        ]


class Accumulator(wiring.Component):
    """Streaming chunk-based dot-product engine.

    Parameters
    ----------
    lanes : int or None
        ``N`` products per beat (1 to 64); default 1, or the block size ``k`` with ``front="block"``
        (which takes no other value).
    a_format, b_format : str, FloatFormat or BlockFormat
        Operand formats (radix 2; block formats, section 9, with ``front="block"``); ``b_format``
        defaults to ``a_format``.
    acc_format : str or FloatFormat
        Accumulation and result format (default ``e6m9``, the IEEE-style 1-6-9).
    rounding : str
        ``rne`` (default), ``rna``, ``rtz`` or ``sr`` (random words from two internal LFSRs: one
        advancing per beat for the inner roundings on the default polynomial, one per outer
        rounding on its reciprocal, :func:`golden.lfsr.reciprocal_taps`).
    chunk : int
        ``CL`` products per chunk, a multiple of ``lanes``; 0 for no chunking. Default 64.
    window : ``"exact"`` or int
        Bits kept below the beat's largest product (section 7); ``exact`` never truncates.
    stages : int
        Registers between the lane sum and the accumulation loop.
    front : str
        ``"fp8"``: float products of ``a_format`` x ``b_format`` lanes; ``"mac4"``: the exact
        INT4 x radix-4 FP4 lane sum of :mod:`hw.mac4` (``x_signed`` as there; the formats and the
        window do not apply: the sum is exact); ``"block"``: one block pair of the block formats
        ``a_format`` x ``b_format`` per beat with its two scale codes, the exact scaled block sum of
        :class:`hw.block_dot.BlockLaneSum` (``lanes`` is the block size ``k``; the window does not
        apply).
    rand_bits, lfsr_width, seed, seed_outer :
        ``sr`` only: word width and the two LFSRs' width and reset states.

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ..., "b": ..., "last": 1})))
        One beat per transfer: ``a[k]``, ``b[k]`` are lane ``k``'s operand codes; ``last`` ends
        the dot product. With ``front="mac4"`` the beat is ``{"x", "g", "phase", "offset", "last"}``:
        ``lanes`` INT4 and FP4 codes (4 bits each, lane 0 lowest), the TPR phase and the exponent
        offset (keep it constant over a dot product to match :func:`golden.accumulator.dot_mac4`).
        With ``front="block"`` it is ``{"a", "b", "xa", "xb", "last"}``: ``k`` element codes each (lane
        0 lowest) and the two 8-bit scale codes of the block pair (:func:`golden.block.block_gemm`).
    o : Out(stream.Signature(FloatLayout(acc_format)))
        One result per dot product, ``latency`` cycles after its last beat when not stalled.
    """

    @rejects_quietly
    def __init__(self, lanes=None, a_format="fp8_e5m2", b_format=None, acc_format="e6m9", rounding="rne",
                 chunk=64, window="exact", stages=0, rand_bits=8, lfsr_width=16, seed=1, seed_outer=1,
                 front="fp8", x_signed=True):
        self._front = check_choice("front", front, FRONTS)
        self._x_signed = check_bool("x_signed", x_signed)
        b_format = a_format if b_format is None else b_format
        if front == "block":
            self._fa, self._fb = (self._block_format(name, fmt) for name, fmt in
                                  (("a_format", a_format), ("b_format", b_format)))
            if self._fa.k != self._fb.k:
                raise ValueError(f"a_format and b_format must have the same block size, not {self._fa.k} "
                                 f"({self._fa}) and {self._fb.k} ({self._fb})")
            k = self._fa.k
            if lanes is not None and check_int("lanes", lanes) != k:
                raise ValueError(f"lanes must be the block size k={k} with front block (one block pair per "
                                 f"beat), not {lanes}")
            self._lanes = k
        else:
            for name, fmt in (("a_format", a_format), ("b_format", b_format)):
                if isinstance(fmt, BlockFormat) or is_block_spec(fmt):
                    raise ValueError(f"{name} {fmt} is a block format: it needs front block")
            self._fa = float_format_param("a_format", a_format)
            self._fb = float_format_param("b_format", b_format)
            self._lanes = check_int("lanes", 1 if lanes is None else lanes, 1, MAX_LANES)
        self._fc = float_format_param("acc_format", acc_format)
        self._rounding = check_rounding(rounding)
        self._rand_bits = check_rand_bits(rand_bits, rounding)
        chunk = check_int("chunk", chunk)
        if chunk < 0 or chunk % self._lanes:
            raise ValueError(f"chunk must be 0 or a positive multiple of lanes={self._lanes}, not {chunk}")
        self._chunk = chunk
        exact = exact_window(self._fa, self._fb) if front != "block" else None
        if window == "exact" or front == "block":
            self._window = exact
        else:
            w = check_int("window", window)
            if not 1 <= w <= 64:
                raise ValueError(f"window must be 'exact' or between 1 and 64, not {w}")
            self._window = min(w, exact)   # beyond the exact span nothing is ever truncated
        self._window_param = window
        self._stages = check_stages(stages, limit=4)
        if self._rounding == "sr":
            self._lfsr_inner = check_lfsr(lfsr_width, None, seed, self._rand_bits)
            # The outer stream runs on the reciprocal polynomial: with the same polynomial two
            # seeds give one sequence shifted (seeds 1 and 2 differ by a single step).
            self._lfsr_outer = check_lfsr(lfsr_width, reciprocal_taps(lfsr_width), seed_outer,
                                          self._rand_bits)
        if front == "mac4":
            self.beat_layout = data.StructLayout({
                "x": 4 * self._lanes, "g": 4 * self._lanes, "phase": 1, "offset": signed(OFFSET_BITS),
                "last": 1,
            })
        elif front == "block":
            self.beat_layout = data.StructLayout({
                "a": self._lanes * self._fa.element.width, "b": self._lanes * self._fb.element.width,
                "xa": SCALE_BITS, "xb": SCALE_BITS, "last": 1,
            })
        else:
            self.beat_layout = data.StructLayout({
                "a": data.ArrayLayout(FloatLayout(self._fa), self._lanes),
                "b": data.ArrayLayout(FloatLayout(self._fb), self._lanes),
                "last": 1,
            })
        super().__init__({
            "i": In(stream.Signature(self.beat_layout)),
            "o": Out(stream.Signature(FloatLayout(self._fc))),
        })

    @staticmethod
    def _block_format(name, fmt):
        """A block operand format: a block spec or object (an element alone has no block size here)."""
        if not (isinstance(fmt, BlockFormat) or is_block_spec(fmt)):
            raise ValueError(f"{name} must be a block format with front block (e.g. mxfp8_e4m3, "
                             f"mx:e2m1:finite/16, hbfp8), not {fmt}")
        return block_operand_param(name, fmt)

    @property
    def window(self):
        """The window width in bits (``exact`` resolved; ``None`` for the block front, always exact)."""
        return self._window

    @property
    def latency(self):
        """Cycles from accepting the last beat to the result appearing on ``o``."""
        return self._stages + (3 if self._chunk else 2)

    def elaborate(self, platform):
        m = Module()
        en = Signal(name="advance")          # the datapath moves only when the output can take a result
        out_valid = Signal(name="out_valid")
        out_y = Signal(FloatLayout(self._fc), name="out_y")
        m.d.comb += en.eq(~out_valid | self.o.ready)
        core = _Core(self)
        m.submodules.core = EnableInserter(en)(core)
        m.d.comb += [
            core.beat_valid.eq(self.i.valid & en), core.beat.eq(self.i.payload),
            self.i.ready.eq(en),
            self.o.valid.eq(out_valid), self.o.payload.eq(out_y),
        ]
        with m.If(en & core.result_valid):
            m.d.sync += [out_y.eq(core.result), out_valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += out_valid.eq(0)
        return m
