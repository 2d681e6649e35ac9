"""LFSR random source (``docs/arithmetic.md`` section 6; golden model :mod:`golden.lfsr`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.lfsr import check_lfsr
from ..validate import rejects_quietly

__all__ = ["LFSR", "RandSource"]


class LFSR(wiring.Component):
    """A Fibonacci LFSR that advances ``rand_bits`` steps per enabled cycle.

    ``rand`` is available combinationally: it is the low ``rand_bits`` bits of the state after the
    next advance, which happens at the clock edge when ``en`` is high. So the ``i``-th enabled cycle
    after reset sees word ``i`` of :func:`golden.lfsr.lfsr_words`.

    Parameters
    ----------
    width : int
        State width, 3 to 32.
    taps : tuple of int or None
        Feedback taps (``width`` included); default a maximal-length set.
    seed : int
        Reset state, nonzero.
    rand_bits : int
        Bits per word, ``1 <= rand_bits <= width``.

    Members
    -------
    en : In(1)
    rand : Out(rand_bits)
    """

    @rejects_quietly
    def __init__(self, width=16, taps=None, seed=1, rand_bits=8):
        self._width, self._taps, self._seed = check_lfsr(width, taps, seed, rand_bits)
        self._rand_bits = rand_bits
        super().__init__({"en": In(1), "rand": Out(rand_bits)})

    @property
    def taps(self):
        return self._taps

    def elaborate(self, platform):
        m = Module()
        w = self._width
        state = Signal(w, init=self._seed)
        # Unroll rand_bits steps symbolically: each bit of the advanced state is an XOR of state bits.
        bits = [frozenset([k]) for k in range(w)]
        for _ in range(self._rand_bits):
            fb = frozenset()
            for t in self._taps:
                fb = fb ^ bits[t - 1]
            bits = [fb] + bits[:-1]
        advanced = Signal(w)
        for k, terms in enumerate(bits):
            expr = 0
            for j in sorted(terms):
                expr = expr ^ state[j]
            m.d.comb += advanced[k].eq(expr)
        with m.If(self.en):
            m.d.sync += state.eq(advanced)
        m.d.comb += self.rand.eq(advanced[:self._rand_bits])
        return m


class RandSource:
    """Where a unit's ``sr`` random bits come from: its ``rand`` port or an internal :class:`LFSR`.

    Validates the unit's random-source parameters once for every unit that rounds stochastically.
    ``kind`` is ``"port"``, ``"lfsr"`` or None (the rounding mode takes no random bits).
    """

    def __init__(self, rounding, rand_bits, source, lfsr_width, lfsr_taps, seed):
        if source not in ("port", "lfsr"):
            raise ValueError(f"rand_source must be port or lfsr, not {source!r}")
        self.rand_bits = rand_bits
        self.kind = source if rounding == "sr" else None
        self.lfsr = check_lfsr(lfsr_width, lfsr_taps, seed, rand_bits) if self.kind == "lfsr" else None

    def members(self):
        """The signature members it adds: ``rand`` for a port source."""
        return {"rand": In(self.rand_bits)} if self.kind == "port" else {}

    def elaborate(self, m, unit):
        """The random word for the operation entering ``unit`` this cycle (None without ``sr``).

        An LFSR steps once per cycle with ``unit.valid_in`` high.
        """
        if self.kind == "port":
            return unit.rand
        if self.kind == "lfsr":
            m.submodules.lfsr = lfsr = LFSR(*self.lfsr, self.rand_bits)
            m.d.comb += lfsr.en.eq(unit.valid_in)
            return lfsr.rand
        return None
