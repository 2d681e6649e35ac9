"""A tiny reference design for the synthesis flows' own checks (not a lowbit unit).

``ref_mac`` computes ``y = a * b + c`` (``op="mac"``) or ``y = a + b + c`` (``op="add"``) on
unsigned ``width``-bit operands with a ``2 * width``-bit result, optionally registered. It gives the
smoke run and the tests a design whose size and multiplier content are known without depending on
the units under development.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..units import Param, Unit

__all__ = ["RefMac", "REF_MAC", "build"]


def _check(width, op, stages):
    """Validated ``(width, op, stages)``; ``ValueError`` with one line otherwise."""
    width, stages = operator.index(width), operator.index(stages)
    if width < 1:
        raise ValueError(f"width must be positive, not {width}")
    if op not in ("mac", "add"):
        raise ValueError(f"op must be mac or add, not {op!r}")
    if stages not in (0, 1):
        raise ValueError(f"stages must be 0 or 1, not {stages}")
    return width, op, stages


def build(width=8, op="mac", stages=0):
    """A :class:`RefMac`, with the parameters checked before the component exists (a component
    whose constructor raises is reported by Amaranth as created but never used)."""
    return RefMac(*_check(width, op, stages))


class RefMac(wiring.Component):
    """Unsigned multiply-add (or three-operand add), combinational or with one output register.

    Parameters
    ----------
    width : int
        Operand width of ``a`` and ``b`` (``c`` and ``y`` are twice as wide).
    op : str
        ``"mac"`` for ``a * b + c``, ``"add"`` for ``a + b + c`` (no multiplier).
    stages : int
        0 (combinational) or 1 (``y`` registered in the ``sync`` domain).

    Members
    -------
    a, b : In(width)
    c : In(2 * width)
    y : Out(2 * width)
    """

    def __init__(self, width=8, op="mac", stages=0):
        self._width, self._op, self._stages = _check(width, op, stages)
        super().__init__({"a": In(self._width), "b": In(self._width),
                          "c": In(2 * self._width), "y": Out(2 * self._width)})

    @property
    def stages(self):
        return self._stages

    def elaborate(self, platform):
        m = Module()
        product = self.a * self.b if self._op == "mac" else self.a + self.b
        result = (product + self.c)[:len(self.y)]
        domain = m.d.sync if self._stages else m.d.comb
        domain += self.y.eq(result)
        return m


REF_MAC = Unit(
    name="ref_mac",
    summary="synthesis-flow reference: unsigned a*b+c (or a+b+c), optionally registered",
    module=__name__, factory="build",
    params=(
        Param("width", "int", 8, "operand width (c and y are twice as wide)"),
        Param("op", "choice", "mac", "mac: a*b+c, add: a+b+c", ("mac", "add")),
        Param("stages", "int", 0, "0 = combinational, 1 = registered output"),
    ),
)
