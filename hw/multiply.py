"""Unsigned significand multiplier (``docs/arithmetic.md`` section 5.2), the sign-and-magnitude form
of signed products, and the one multi-operand sum the units build their compressor trees with.

Narrow operands use Yosys' own multiplier mapping (``*``). From 8 bits on, a radix-4 Booth recoding
halves the partial products; all of them, their negation bits and one constant for the folded sign
extensions are summed in a single expression, so synthesis builds one compressor tree (on sky130
with the project flow this is about 9% smaller at 11 x 11 bits and larger below 8 bits).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal

__all__ = ["unsigned_product", "magnitude", "signed_row", "sum_terms", "BOOTH_MIN_WIDTH"]

#: Narrowest multiplier operand for which the Booth form is used.
BOOTH_MIN_WIDTH = 8


def unsigned_product(m, a, b, name="prod"):
    """``a * b`` for unsigned ``a`` and ``b``, as a ``len(a) + len(b)``-bit signal."""
    wa, wb = len(a), len(b)
    out = Signal(wa + wb, name=name)
    if min(wa, wb) < BOOTH_MIN_WIDTH:
        m.d.comb += out.eq(a * b)
        return out
    width = wa + wb
    # Recode b in overlapping triplets (b[i+1], b[i], b[i-1]) with b[-1] = 0 and two zero bits on
    # top (b is unsigned): digit d_k in {-2, -1, 0, 1, 2}, product = sum(d_k * a * 4**k).
    bx = Cat(Const(0, 1), b, Const(0, 2))
    total = 0
    correction = 0
    for k, i in enumerate(range(0, wb + 1, 2)):
        lo, mid, hi = bx[i], bx[i + 1], bx[i + 2]
        neg = Signal(name=f"{name}_neg{k}")
        one = Signal(name=f"{name}_one{k}")
        two = Signal(name=f"{name}_two{k}")
        m.d.comb += [
            neg.eq(hi & ~(lo & mid)),
            one.eq(lo ^ mid),
            two.eq((hi & ~mid & ~lo) | (~hi & mid & lo)),
        ]
        mag = Signal(wa + 1, name=f"{name}_mag{k}")
        m.d.comb += mag.eq(Mux(one, a, 0) | Mux(two, a << 1, 0))
        # d_k * a = +-mag as a row, its carry and a constant (summed once below), at column i.
        pp, carry, constant = signed_row(m, mag, neg, f"{name}_pp{k}")
        total = total + (pp << i) + (carry << i)
        correction += constant << i
    m.d.comb += out.eq((total + Const(correction % (1 << width), width))[:width])
    return out


def sum_terms(m, terms, width, name):
    """``sum(value << shift for value, shift in terms) mod 2**width`` (unsigned values) as a signal.

    A balanced tree of additions, each truncated to ``width``: Yosys merges them into one
    multi-operand sum and builds one compressor tree (on sky130 smaller and faster than an explicit
    Dadda reduction, :func:`hw.mac4.carry_save`).
    """
    level = [value << shift for value, shift in terms]
    while len(level) > 1:
        pairs = [(level[k] + level[k + 1])[:width] for k in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2:]
    out = Signal(width, name=name)
    m.d.comb += out.eq(level[0])
    return out


def magnitude(m, value, negative, name):
    """``|n|`` of the two's-complement ``value`` whose sign bit is ``negative``, in ``len(value)`` bits
    (``-2**(len(value)-1)`` included)."""
    width = len(value)
    out = Signal(width, name=name)
    m.d.comb += out.eq((value ^ negative.replicate(width)) + negative)
    return out


def signed_row(m, value, negative, name):
    """``-value`` if ``negative`` else ``value`` as ``(row, carry, constant)`` for a multi-operand sum:
    ``row + carry + constant`` is the signed value.

    ``-x = ~x + 1`` over ``value``'s bits (``carry`` is the ``+1``); the sign extension above them is
    one inverted sign bit on top of ``row`` plus the ``constant`` ``-2**len(value)``, which callers
    sum once for all their rows.
    """
    width = len(value)
    row = Signal(width + 1, name=name)
    m.d.comb += row.eq(Cat(value ^ negative.replicate(width), ~negative))
    return row, negative, -(1 << width)
