"""``mac4``: the 4-bit multiply-accumulate of Sun et al. 2020, exactly.

``N`` lanes of INT4 activations times radix-4 FP4 gradient codes (``fp4_r4``), with two-phase
rounding (``phase``) and a per-dot-product power-of-two ``offset`` (GradScale), summed exactly as an
integer; optionally added to a float accumulator with one rounding, or, for the forward pass,
INT4 x INT4 with an integer accumulator. Semantics: ``docs/arithmetic.md`` section 8; golden model
:mod:`golden.mac4` (``mac4_dot``, ``mac4_acc``, ``int4_dot``) and :func:`golden.mac4.int4_acc`
for the integer accumulator (wrap-around).

Datapath (``dot`` and ``acc``)::

    per lane: x, or its ones' complement for a negative gradient -> shifted by 2e in three mux
    stages (ones fill in below a complemented x, the sign extends above) -> a row of 12 + |x| bits
    with its top bit inverted, and the gradient's sign as a +1 bit
    -> every row, every +1 bit and one constant summed at once (one compressor tree)
    -> dot: sum = tree << phase, lsb_exp = offset - 6
    -> acc: |tree| coarsely normalized, exponent offset - 6 + phase + width - 1 -> hw.addround.AddRound
       with the decoded accumulator (the one add-and-round path; specials from the accumulator)

``int`` mode sums every lane's product (sign and magnitudes, the magnitudes' product complemented
for a negative sign) in one compressor tree, then adds the accumulator.

No multiplier: a lane's product ``x * 4**(e-1)`` is a shifted copy of ``x``. The shift by
``2(e-1)`` is a shift by ``2e`` with the two bottom bits dropped (no decrement of ``e``; ``e = 0``
zeroes the lane), and ``phase``, common to the beat, shifts the sum once instead of every lane (in
``acc`` mode it only moves the exponent). Negation is the ones' complement plus a carry bit into the
tree, and each row's sign extension is folded into the one constant, so a lane costs ``12 + |x|``
bits of the tree (plus the carry), as few as a row whose four significant bits may sit at any even
position can have. The tree is written as one sum, which Yosys maps to a single compressor tree
(on sky130 about 3% smaller and 25% faster than a balanced tree of two-operand adders, and smaller
than a hand-written Dadda tree); with a register at the ``carry_save`` cut, a Dadda tree reduces the
rows to two that the register holds, and the carry-propagate adder follows it.
"""

from __future__ import annotations


from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_bool, check_choice, check_int, check_rand_bits, check_rounding
from golden.formats import float_format_param
from golden.mac4 import (LSB_EXP_SHIFT, OFFSET_MAX, OFFSET_MIN, int4_sum_width, product_range, sum_width,
                         twos_width)

from ..addalign import look_bits, operand, window_geometry
from ..addround import ADD_CUTS, AddRound, pipeline_registers
from ..float import FloatLayout, LaneSumLayout, Unpack, exp_shape_for
from ..lzc import Normalizer
from ..multiply import magnitude, signed_row, sum_terms
from ..pipeline import Pipeline, check_stages
from ..validate import rejects_quietly

__all__ = ["MAC4", "Mac4LaneSum", "MODES", "MAX_LANES", "CUTS", "CUT_WEIGHTS"]

MODES = ("dot", "acc", "int")
#: Most lanes a generated unit may have.
MAX_LANES = 256
#: Width of the ``offset`` port (two's complement, ``OFFSET_MIN ... OFFSET_MAX``).
OFFSET_BITS = 8
#: Width of the ``lsb_exp`` port (two's complement ``offset - 6``).
LSB_EXP_BITS = 9
#: Widest integer accumulator of ``mode="int"``.
MAX_ACC_BITS = 64
#: Candidate register positions per mode, input to output (see :class:`hw.pipeline.Pipeline`):
#: ``carry_save`` after the lane products are compressed to two rows, ``tree`` after their
#: carry-propagate sum, ``operand`` after the sum's magnitude is normalized for the adder, then
#: :data:`hw.addalign.ADD_CUTS`.
CUTS = {
    "dot": ("carry_save", "output"),
    "acc": ("carry_save", "tree", "operand", *ADD_CUTS, "output"),
    "int": ("carry_save", "tree", "output"),
}
#: Relative delay of the logic before each cut (sky130, 16 lanes: lanes + compressor, the
#: carry-propagate add (+ phase shift), magnitude + coarse normalization, then the align-add and
#: the rounder on the wide window).
CUT_WEIGHTS = {
    "dot": (4, 3),
    "acc": (4, 3, 5, 7, 7, 5, 5),
    "int": (3, 3, 5),
}

assert twos_width(OFFSET_MIN, OFFSET_MAX) == OFFSET_BITS
assert twos_width(OFFSET_MIN + LSB_EXP_SHIFT, OFFSET_MAX + LSB_EXP_SHIFT) == LSB_EXP_BITS


def carry_save(m, terms, width, name="cs"):
    """Dadda reduction of ``sum(value << shift for value, shift in terms) mod 2**width`` to two rows.

    Returns two ``width``-bit signals whose sum (mod ``2**width``) is the total: the form a
    register can hold in the middle of the tree.
    """
    columns = [[] for _ in range(width)]
    for value, shift in terms:
        for k in range(len(value)):
            if shift + k < width:
                columns[shift + k].append(value[k])
    heights = [2]
    while heights[-1] < max(map(len, columns)):
        heights.append(heights[-1] * 3 // 2)
    n = 0
    for target in reversed(heights[:-1]):
        carries = [[] for _ in range(width + 1)]
        for j in range(width):
            bits, out = columns[j], []
            height = len(bits) + len(carries[j])
            while height > target and len(bits) >= 2:
                take = 3 if height - target >= 2 and len(bits) >= 3 else 2
                ins, bits = bits[:take], bits[take:]
                total, carry = Signal(name=f"{name}_s{n}"), Signal(name=f"{name}_c{n}")
                n += 1
                if take == 3:
                    a, b, c = ins
                    m.d.comb += [total.eq(a ^ b ^ c), carry.eq((a & b) | (a & c) | (b & c))]
                else:
                    m.d.comb += [total.eq(ins[0] ^ ins[1]), carry.eq(ins[0] & ins[1])]
                out.append(total)
                carries[j + 1].append(carry)
                height -= take - 1
            columns[j] = out + bits + carries[j]
    assert max(map(len, columns)) <= 2
    rows = []
    for r in range(2):
        row = Signal(width, name=f"{name}_row{r}")
        m.d.comb += row.eq(Cat(*(c[r] if len(c) > r else Const(0, 1) for c in columns)))
        rows.append(row)
    return rows


def _tree(m, pipe, terms, width, side, name):
    """The sum of ``terms`` (mod ``2**width``) through the ``carry_save`` cut, and the ``side``
    values (a list) after it.

    With no register at ``carry_save`` the sum is one expression (one compressor tree of Yosys'
    making); with registers, the carry-save rows are registered and added after them.
    """
    if not pipe.counts["carry_save"]:
        pipe.cut("carry_save")
        return sum_terms(m, terms, width, name), side
    rows = carry_save(m, terms, width, name=f"{name}_cs")
    staged = pipe.cut("carry_save", *rows, *side)
    return sum_terms(m, [(staged[0], 0), (staged[1], 0)], width, name), staged[2:]


def fp4_lane(m, x, g, x_signed, name="lane"):
    """One lane's product ``x * value(g, 0) * 2**6`` (``golden.mac4.mac4_products`` at phase 0).

    Returns ``(row, carry)``: the product is ``row - 2**(len(row)-1) + carry``, ``row`` unsigned
    (the two's-complement field with its top bit inverted) and ``carry`` one bit.
    """
    tw = 4 if x_signed else 5                      # bits of x (signed) or of +-x's ones' complement
    sign, e = g[3], g[:3]
    nonzero = Signal(name=f"{name}_nz")
    negate = Signal(name=f"{name}_neg")
    m.d.comb += [nonzero.eq(e.any()), negate.eq(sign & nonzero)]
    # x, or its ones' complement for a negative gradient: -x = ~x + 1, the +1 becomes `carry`.
    value = Signal(tw, name=f"{name}_x")
    x_ext = x if x_signed else Cat(x, Const(0, 1))
    m.d.comb += value.eq(Mux(nonzero, x_ext ^ negate.replicate(tw), 0))
    # Shift by 2e (stages of 2, 4, 8): ones come in below for a negated x (~(x << k) = (~x << k) +
    # 2**k - 1), the sign is extended above. Dropping the two bottom bits makes it 4**(e-1).
    cur = value
    for bit, step in enumerate((2, 4, 8)):
        nxt = Signal(len(cur) + step, name=f"{name}_shl{step}")
        m.d.comb += nxt.eq(Mux(e[bit], Cat(negate.replicate(step), cur), Cat(cur, cur[-1].replicate(step))))
        cur = nxt
    width = 12 + tw
    row = Signal(width, name=f"{name}_row")
    m.d.comb += row.eq(Cat(cur[2:width + 1], ~cur[width + 1]))
    return row, negate


def int4_lane(m, x, w, x_signed, w_signed, name="int_lane"):
    """One INT4 x INT4 lane's product as ``(row, carry, constant)``: ``row + carry + constant`` is the
    product (``row`` unsigned: ``|x| * |w|``, complemented when the product is negative, under a top
    bit ``~negative``; ``carry`` the ``+1`` of the complement).

    Sign and magnitudes, as ``block_dot``'s fixed-point lanes: the Baugh-Wooley partial products of
    16 signed lanes, straight into the tree, are a tree on which ABC's ``&fraig -x`` does not finish
    (``docs/synthesis.md``); this form finishes at every lane count, and at 8 lanes costs 3.4 % more
    area and 25 % more delay (sky130: 6,259 against 6,055 µm², 10.7 against 8.5 ns; with Yosys' ``*``
    for the magnitudes' product 6,331 µm² and 11.5 ns; a signed product per lane as the row 6,850
    µm² and 9.6 ns).
    """
    sx = x[3] if x_signed else Const(0)
    sw = w[3] if w_signed else Const(0)
    mag_x = magnitude(m, x, sx, f"{name}_x_mag")
    mag_w = magnitude(m, w, sw, f"{name}_w_mag")
    width = ((8 if x_signed else 15) * (8 if w_signed else 15)).bit_length()   # of |x| * |w|
    # The magnitudes' product from its four partial products (no multiplier: mac4 stays shifts
    # and adds).
    prod = sum_terms(m, [(mag_x & mag_w[j].replicate(4), j) for j in range(4)], width, f"{name}_prod")
    negative = Signal(name=f"{name}_neg")
    m.d.comb += negative.eq(sx ^ sw)
    return signed_row(m, prod, negative, f"{name}_row")


class MAC4(wiring.Component):
    """``N``-lane INT4 x FP4 exact dot product (``dot``), with a float accumulator (``acc``), or
    INT4 x INT4 with an integer accumulator (``int``).

    Parameters
    ----------
    lanes : int
        ``N``, 1 to :data:`MAX_LANES`.
    mode : str
        ``"dot"``: the exact sum only. ``"acc"``: also ``acc_out = round(acc_in + S)`` with one
        rounding (``golden.mac4.mac4_acc``). ``"int"``: INT4 x INT4 (``golden.mac4.int4_dot``) and
        ``acc_out = acc_in + sum`` wrapping modulo ``2**acc_bits`` (:func:`golden.mac4.int4_acc`).
    x_signed : bool
        ``x`` codes are two's complement ``-8 ... 7`` (True) or unsigned ``0 ... 15``.
    w_signed : bool
        Same for ``w`` (``int`` mode only).
    acc_format : str or FloatFormat
        Radix-2 accumulator format (``acc`` mode; ``e6m9``, the IEEE-style 1-6-9, by default).
    rounding : str
        ``rne``, ``rna``, ``rtz`` or ``sr`` (``acc`` mode).
    rand_bits : int
        ``R`` for ``sr``: the ``rand`` port's width.
    acc_bits : int
        Integer accumulator width (``int`` mode), from the sum's width to :data:`MAX_ACC_BITS`.
    stages : int
        0: combinational; k > 0: latency of k cycles, one beat accepted per cycle; the registers sit
        at the mode's :data:`CUTS`, placed by :data:`CUT_WEIGHTS` (extras at the output).

    Parameters that do not apply to ``mode`` are ignored.

    Members
    -------
    x : In(4 * lanes)
        INT4 codes, lane ``i`` in bits ``4i ... 4i+3``.
    g : In(4 * lanes)
        ``fp4_r4`` codes (sign bit 3, exponent field bits 0-2), same packing (``dot``, ``acc``).
    phase : In(1)
        Two-phase rounding: codes are worth twice as much when set (``dot``, ``acc``).
    offset : In(8)
        Two's complement exponent offset ``-128 ... 127`` (``dot``, ``acc``).
    sum : Out(sum_width)
        Two's complement. ``dot``/``acc``: the exact lane sum in units of ``2**lsb_exp``
        (:func:`golden.mac4.sum_width` bits). ``int``: the INT4 dot product
        (:func:`golden.mac4.int4_sum_width` bits).
    lsb_exp : Out(9)
        Two's complement ``offset - 6``, the weight of ``sum``'s LSB (``dot``, ``acc``).
    w : In(4 * lanes)
        INT4 weight codes (``int``).
    acc_in, acc_out : In/Out(FloatLayout(acc_format)) in ``acc`` mode, In/Out(acc_bits) in ``int``
        mode (two's complement).
    rand : In(rand_bits)
        ``acc`` mode with ``sr``; belongs to the operands of the same beat.
    valid_in : In(1), valid_out : Out(1)
        With ``stages > 0`` (``sync`` domain: ``clk``, ``rst``). ``valid_out`` is ``valid_in``
        delayed by ``stages`` cycles and qualifies every output; all inputs of a beat are applied
        in the same cycle.

    Ports are plain bit vectors; the signed ones are documented as two's complement.
    """

    @rejects_quietly
    def __init__(self, lanes=8, mode="dot", x_signed=True, w_signed=True, acc_format="e6m9",
                 rounding="rne", rand_bits=8, acc_bits=32, stages=0):
        self._lanes = check_int("lanes", lanes, 1, MAX_LANES)
        self._mode = check_choice("mode", mode, MODES)
        self._x_signed = check_bool("x_signed", x_signed)
        self._stages = check_stages(stages)
        self._fmt = self._rounding = None
        self._rand_bits = 0
        members = {"x": In(4 * lanes)}
        if mode == "int":
            self._w_signed = check_bool("w_signed", w_signed)
            self._sum_width = int4_sum_width(lanes, self._x_signed, self._w_signed)
            acc_bits = check_int("acc_bits", acc_bits)
            if not self._sum_width <= acc_bits <= MAX_ACC_BITS:
                raise ValueError(f"acc_bits must be between {self._sum_width} (the sum's width) and "
                                 f"{MAX_ACC_BITS}, not {acc_bits}")
            self._acc_bits = acc_bits
            members |= {"w": In(4 * lanes), "acc_in": In(acc_bits),
                        "sum": Out(self._sum_width), "acc_out": Out(acc_bits)}
        else:
            self._sum_width = sum_width(lanes, self._x_signed)
            members |= {"g": In(4 * lanes), "phase": In(1), "offset": In(OFFSET_BITS),
                        "sum": Out(self._sum_width), "lsb_exp": Out(LSB_EXP_BITS)}
            if mode == "acc":
                self._fmt = float_format_param("acc_format", acc_format)
                self._rounding = check_rounding(rounding)
                self._rand_bits = check_rand_bits(rand_bits, rounding)
                members |= {"acc_in": In(FloatLayout(self._fmt)), "acc_out": Out(FloatLayout(self._fmt))}
                if self._rounding == "sr":
                    members["rand"] = In(self._rand_bits)
        if self._stages:
            members |= {"valid_in": In(1), "valid_out": Out(1)}
        super().__init__(members)

    @property
    def lanes(self):
        return self._lanes

    @property
    def mode(self):
        return self._mode

    @property
    def stages(self):
        """Latency in cycles."""
        return self._stages

    @property
    def sum_width(self):
        """Width of ``sum``."""
        return self._sum_width

    @property
    def tree_width(self):
        """Width of the lane sum before the phase shift (``dot``/``acc``)."""
        lo, hi = product_range(self._x_signed)          # phase 1 included: halve for phase 0
        return twos_width(self._lanes * (lo // 2), self._lanes * (hi // 2))

    @property
    def magnitude_width(self):
        """Width of ``|tree|``, the adder's exact operand (``acc``)."""
        return self.tree_width - 1

    @property
    def window(self):
        """Width of the addition window (``acc``; :func:`hw.addalign.window_geometry`)."""
        return self._geometry()[0]

    def _geometry(self):
        return window_geometry(self._fmt, look_bits(self._rounding, self._rand_bits), self.magnitude_width)

    def elaborate(self, platform):
        m = Module()
        pipe = Pipeline(m, self._stages, CUTS[self._mode], valid_in=self.valid_in if self._stages else None,
                        weights=CUT_WEIGHTS[self._mode])
        if self._mode == "int":
            self._elaborate_int(m, pipe)
        else:
            self._elaborate_fp4(m, pipe)
        if self._stages:
            m.d.comb += self.valid_out.eq(pipe.valid_out)
        return m

    def _elaborate_fp4(self, m, pipe):
        N, Wt = self._lanes, self.tree_width
        terms = []
        for i in range(N):
            row, carry = fp4_lane(m, self.x[4 * i:4 * i + 4], self.g[4 * i:4 * i + 4], self._x_signed,
                                  name=f"lane{i}")
            terms += [(row, 0), (carry, 0)]
        # Each row stands for its product plus 2**(len(row)-1): take them all back at once.
        terms.append((Const((-N << (len(row) - 1)) % (1 << Wt), Wt), 0))

        acc = self._mode == "acc"
        side = [self.phase, self.offset]
        if acc:
            side.append(self.acc_in.as_value())
            if self._rounding == "sr":
                side.append(self.rand)
        tree, (side,) = _tree(m, pipe, terms, Wt, [Cat(*side)], "tree")

        if not acc:
            phase, offset = side[0], side[1:1 + OFFSET_BITS]
            self._drive_sum(m, pipe, tree, phase, offset)
            return

        tree, side = pipe.cut("tree", tree, side)
        phase, offset = side[0], side[1:1 + OFFSET_BITS]
        fmt = self._fmt
        acc_in = side[1 + OFFSET_BITS:1 + OFFSET_BITS + fmt.width]
        rand = side[1 + OFFSET_BITS + fmt.width:]

        # -- the exact operand: |tree| * 2**(offset - 6 + phase), coarsely normalized -------------
        pw = self.magnitude_width
        negative = tree[Wt - 1]
        magnitude = Signal(pw, name="sum_mag")
        m.d.comb += magnitude.eq((tree ^ negative.replicate(Wt)) + negative)
        sum_zero = Signal(name="sum_zero")
        m.d.comb += sum_zero.eq(~tree.any())
        top_lo = OFFSET_MIN + LSB_EXP_SHIFT + pw - 1
        top_hi = OFFSET_MAX + LSB_EXP_SHIFT + pw - 1 + 1
        top_exp = Signal(exp_shape_for(top_lo, top_hi), name="sum_top_exp")
        m.d.comb += top_exp.eq(offset.as_signed() + (LSB_EXP_SHIFT + pw - 1) + phase)
        # The adder's window has room for `slack` leading zeros: shift by multiples of a granule.
        granule = 1 << (self._geometry()[1] + 1).bit_length() - 1
        m.submodules.sum_norm = norm = Normalizer(pw, top_exp.shape(), granule=granule)
        m.d.comb += [norm.sig.eq(magnitude), norm.exp.eq(top_exp)]
        p_range = (top_lo - ((pw - 1) & ~(granule - 1)), top_hi)

        m.submodules.unpack_acc = uc = Unpack(fmt, zero_specials=False)
        m.d.comb += uc.i.eq(acc_in)
        out_side = Cat(tree, phase, offset)
        sr = self._rounding == "sr"
        staged = pipe.cut("operand", norm.sig_out, norm.exp_out, negative, sum_zero, operand(uc.o), out_side,
                          *([rand] if sr else []))
        p_sig, p_exp, p_sign, p_zero, c, out_side = staged[:6]

        # S is finite: NaN and Inf come from the accumulator alone. The sum's outputs ride along.
        m.submodules.add = add = AddRound(fmt, self._rounding, pw, p_range, rand_bits=self._rand_bits,
                                          registers=pipeline_registers(pipe), side_width=len(out_side))
        add.feed(m, pipe, (p_sig, p_exp, p_sign, p_zero, 0, 0), c, rand=staged[6] if sr else None, side=out_side)
        out_side = add.side_out
        tree, phase, offset = out_side[:Wt], out_side[Wt], out_side[Wt + 1:]
        self._drive_sum(m, pipe, tree, phase, offset, add.o.as_value())

    def _drive_sum(self, m, pipe, tree, phase, offset, acc_out=None):
        """``sum = tree << phase``, ``lsb_exp = offset - 6`` (and ``acc_out``) through "output"."""
        Wt = self.tree_width
        total = Signal(self._sum_width, name="sum_shifted")
        m.d.comb += total.eq(Mux(phase, Cat(Const(0, 1), tree), tree.as_signed()))
        lsb_exp = Signal(LSB_EXP_BITS, name="lsb_exp_value")
        m.d.comb += lsb_exp.eq(offset.as_signed() + LSB_EXP_SHIFT)
        assert Wt + 1 == self._sum_width
        if acc_out is None:
            total, lsb_exp = pipe.cut("output", total, lsb_exp)
        else:
            total, lsb_exp, acc_out = pipe.cut("output", total, lsb_exp, acc_out)
            m.d.comb += self.acc_out.eq(acc_out)
        m.d.comb += [self.sum.eq(total), self.lsb_exp.eq(lsb_exp)]

    def _elaborate_int(self, m, pipe):
        N, W = self._lanes, self._sum_width
        terms, constant = [], 0
        for i in range(N):
            row, carry, c = int4_lane(m, self.x[4 * i:4 * i + 4], self.w[4 * i:4 * i + 4], self._x_signed,
                                      self._w_signed, name=f"int_lane{i}")
            terms += [(row, 0), (carry, 0)]
            constant += c
        if constant % (1 << W):
            terms.append((Const(constant % (1 << W), W), 0))
        total, (acc_in,) = _tree(m, pipe, terms, W, [self.acc_in], "int_sum")
        total, acc_in = pipe.cut("tree", total, acc_in)
        acc_out = Signal(self._acc_bits, name="acc_sum")
        m.d.comb += acc_out.eq(acc_in + total.as_signed())
        total, acc_out = pipe.cut("output", total, acc_out)
        m.d.comb += [self.sum.eq(total), self.acc_out.eq(acc_out)]


class Mac4LaneSum(wiring.Component):
    """The exact INT4 x FP4 lane sum of one beat, the accumulator's ``--front mac4``. Combinational.

    ``o.sum * 2**o.lsb_exp`` equals :func:`golden.mac4.mac4_dot`'s ``S``: the phase, common to the
    beat, moves the exponent (``lsb_exp = offset - 6 + phase``) instead of shifting the sum.

    Members
    -------
    x, g : In(4 * lanes)
        INT4 codes and FP4 (``fp4_r4``) codes, lane ``k`` in bits ``4k ... 4k+3``.
    phase : In(1)
    offset : In(signed(8))
    o : Out(LaneSumLayout(...))
    """

    @rejects_quietly
    def __init__(self, lanes, x_signed=True):
        self._lanes = check_int("lanes", lanes, 1, MAX_LANES)
        self._x_signed = check_bool("x_signed", x_signed)
        super().__init__({
            "x": In(4 * lanes), "g": In(4 * lanes), "phase": In(1), "offset": In(signed(OFFSET_BITS)),
            "o": Out(LaneSumLayout(self.sum_width, exp_shape_for(*self.lsb_exp_range))),
        })

    @property
    def sum_width(self):
        lo, hi = product_range(self._x_signed)      # includes phase 1: halve for the phase-0 sum
        return twos_width(self._lanes * (lo // 2), self._lanes * (hi // 2))

    @property
    def lsb_exp_range(self):
        return (OFFSET_MIN + LSB_EXP_SHIFT, OFFSET_MAX + LSB_EXP_SHIFT + 1)

    def elaborate(self, platform):
        m = Module()
        width, total, correction = self.sum_width, 0, 0
        for k in range(self._lanes):
            row, carry = fp4_lane(m, self.x[4 * k:4 * k + 4], self.g[4 * k:4 * k + 4], self._x_signed,
                                  name=f"lane{k}")
            total = total + row + carry
            correction -= 1 << (len(row) - 1)      # each row stands for its product + 2**(len-1)
        m.d.comb += [
            self.o.sum.eq((total + Const(correction % (1 << width), width))[:width]),
            self.o.lsb_exp.eq(self.offset + LSB_EXP_SHIFT + self.phase),
            self.o.nan.eq(0), self.o.inf.eq(0), self.o.inf_sign.eq(0), self.o.zero_sign.eq(0),
        ]
        return m
