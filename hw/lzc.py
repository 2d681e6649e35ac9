"""Leading-zero count and normalization (``docs/arithmetic.md`` section 4)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .align import shift_left
from .float import exp_shape_for
from .validate import rejects_quietly

__all__ = ["leading_zeros", "LeadingZeroCounter", "Normalizer"]


def _lzc_tree(value):
    """(count, all_zero) of ``value`` by halving: a log-depth tree of small muxes."""
    width = len(value)
    if width == 1:
        return ~value[0], ~value[0]
    half = 1 << ((width - 1).bit_length() - 1)   # largest power of two below width
    lo, hi = value[:width - half], value[width - half:]   # hi has `half` bits (a power of two)
    c_hi, z_hi = _lzc_tree(hi)
    c_lo, z_lo = _lzc_tree(lo)
    # When hi is all zero its count is exactly `half`, so only the low half's count is added.
    count = Mux(z_hi, half + c_lo, c_hi)
    return count, z_hi & z_lo


def leading_zeros(m, value, name="lzc"):
    """Number of leading zeros of ``value`` (``len(value)`` when zero), as a signal."""
    count, _ = _lzc_tree(value)
    out = Signal(range(len(value) + 1), name=name)
    m.d.comb += out.eq(count)
    return out


class LeadingZeroCounter(wiring.Component):
    """Leading-zero count of a ``width``-bit value. Combinational.

    Members
    -------
    i : In(width)
    count : Out(range(width + 1))
        Leading zeros of ``i``; ``width`` when ``i`` is zero.
    """

    @rejects_quietly
    def __init__(self, width):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        self._width = width
        super().__init__({"i": In(width), "count": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.count.eq(leading_zeros(m, self.i))
        return m


class Normalizer(wiring.Component):
    """Shift a significand left until its top bit is set, or until the exponent reaches ``floor``.

    Combinational. With ``floor`` (the target's ``emin`` when it has subnormals) the shift is
    ``min(lzc(sig), exp - floor)`` (none when ``exp <= floor``), so results that would fall below the
    normal range stay aligned to ``floor`` for the rounder's subnormal handling; without it the
    shift is the full leading-zero count.

    Parameters
    ----------
    width : int
        Significand width.
    exp_shape : signed shape
        Shape of the exponent (``exp`` weighs ``sig``'s top bit).
    floor : int or None
    exp_min : int or None
        Smallest ``exp`` the producer delivers; at or above ``floor`` it saves a comparison.
    granule : int
        A power of two: shift only by multiples of it, leaving fewer than ``granule`` leading zeros
        (for callers whose precision has that much slack: fewer shifter stages). Not with ``floor``.

    Members
    -------
    sig, exp : In
    sig_out, exp_out : Out
        ``exp_out`` has one more bit than ``exp_shape`` to hold ``exp - width``.
    """

    @rejects_quietly
    def __init__(self, width, exp_shape, floor=None, granule=1, exp_min=None):
        if granule < 1 or granule & (granule - 1):
            raise ValueError(f"granule must be a power of two, not {granule}")
        if granule > 1 and floor is not None:
            raise ValueError("a granule normalizer takes no floor")
        self._width, self._floor, self._granule = width, floor, granule
        self._exp_min = exp_min
        exp_shape = Shape.cast(exp_shape)
        # The exponent's bounds follow from its shape; exp_out reaches exp - width, room exp - floor.
        lo, hi = (-(1 << exp_shape.width - 1), (1 << exp_shape.width - 1) - 1) if exp_shape.signed \
            else (0, (1 << exp_shape.width) - 1)
        out_shape = exp_shape_for(lo - width, hi)
        self._room_shape = exp_shape_for(lo - floor, hi - floor) if floor is not None else None
        super().__init__({
            "sig": In(width), "exp": In(exp_shape),
            "sig_out": Out(width), "exp_out": Out(out_shape),
        })

    def elaborate(self, platform):
        m = Module()
        width = self._width
        lzc = leading_zeros(m, self.sig)
        if self._floor is None:
            skip = self._granule.bit_length() - 1
            amount = Cat(Const(0, skip), lzc[skip:]) if skip else lzc
        else:
            room = Signal(self._room_shape, name="room")
            m.d.comb += room.eq(self.exp - self._floor)
            amount = Signal(unsigned(lzc.shape().width), name="norm_amount")
            clamped = Mux(room < lzc, room, lzc)
            if self._exp_min is None or self._exp_min < self._floor:
                clamped = Mux(room < 0, 0, clamped)
            m.d.comb += amount.eq(clamped)
        m.d.comb += [
            self.sig_out.eq(shift_left(m, self.sig, amount, width, name="norm")),
            self.exp_out.eq(self.exp - amount),
        ]
        return m
