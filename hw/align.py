"""Shifters used for alignment and normalization: logarithmic, with sticky collection.

Plain functions that add combinational logic to a module and return values; the amount is clamped
to the range the caller states, so no shifter is wider than the shifts that can happen.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Shape, Signal, unsigned

__all__ = ["shift_right_sticky", "shift_left", "clamp_amount"]


def clamp_amount(m, amount, max_shift, name="amount"):
    """``min(amount, max_shift)`` as an unsigned signal just wide enough for ``max_shift``.

    ``amount`` must be non-negative (an unsigned value, or a signed one known to be >= 0).
    """
    width = Shape.cast(range(max_shift + 1)).width
    out = Signal(unsigned(width), name=name)
    if Shape.cast(amount.shape()).width <= width and max_shift >= (1 << width) - 1:
        m.d.comb += out.eq(amount)
    else:
        m.d.comb += out.eq(Mux(amount > max_shift, max_shift, amount))
    return out


def shift_right_sticky(m, value, amount, max_shift, name="shr"):
    """``(value >> amount, OR of the bits shifted out)``; ``amount`` at most ``max_shift``.

    The result has ``value``'s width. Shifts of ``len(value)`` or more leave zero and put every bit
    into the sticky output, so ``max_shift`` beyond the width costs nothing.
    """
    width = len(value)
    bits = Shape.cast(range(max_shift + 1)).width
    cur = value
    sticky = Const(0, 1)
    for k in range(bits):
        step = 1 << k
        if step >= width:
            lost, moved = cur.any(), Const(0, width)
        else:
            lost, moved = cur[:step].any(), cur[step:]
        nxt = Signal(width, name=f"{name}_s{k}")
        m.d.comb += nxt.eq(Mux(amount[k], moved, cur))
        sticky = sticky | (amount[k] & lost)
        cur = nxt
    st = Signal(name=f"{name}_sticky")
    m.d.comb += st.eq(sticky)
    return cur, st


def shift_left(m, value, amount, max_shift, name="shl"):
    """``value << amount`` truncated to ``value``'s width; ``amount`` at most ``max_shift``."""
    width = len(value)
    bits = Shape.cast(range(max_shift + 1)).width
    cur = value
    for k in range(bits):
        step = 1 << k
        moved = Const(0, width) if step >= width else Cat(Const(0, step), cur[:width - step])
        nxt = Signal(width, name=f"{name}_s{k}")
        m.d.comb += nxt.eq(Mux(amount[k], moved, cur))
        cur = nxt
    return cur
