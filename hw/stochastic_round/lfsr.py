"""LFSR random source (``docs/arithmetic.md`` section 6; golden model :mod:`golden.lfsr`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_int
from golden.lfsr import check_lfsr
from ..validate import rejects_quietly

__all__ = ["LFSR", "RandSource"]


class LFSR(wiring.Component):
    """A Fibonacci LFSR that advances ``words * rand_bits`` steps per enabled cycle.

    ``rand`` is available combinationally: with one word it is the low ``rand_bits`` bits of the
    state after the next advance, which happens at the clock edge when ``en`` is high. So the
    ``i``-th enabled cycle after reset sees word ``i`` of :func:`golden.lfsr.lfsr_words`. With
    ``words = n`` it delivers ``n`` consecutive words at once (word ``j`` in bits
    ``j*rand_bits ...``): the ``i``-th enabled cycle sees words ``n*i ... n*i + n - 1``.

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
    words : int
        Words per enabled cycle (1 to 256).

    Members
    -------
    en : In(1)
    rand : Out(words * rand_bits)
    """

    @rejects_quietly
    def __init__(self, width=16, taps=None, seed=1, rand_bits=8, words=1):
        self._width, self._taps, self._seed = check_lfsr(width, taps, seed, rand_bits)
        self._rand_bits = rand_bits
        self._words = check_int("words", words, 1, 256)
        super().__init__({"en": In(1), "rand": Out(words * rand_bits)})

    @property
    def taps(self):
        return self._taps

    def elaborate(self, platform):
        m = Module()
        w = self._width
        state = Signal(w, init=self._seed)
        # Unroll rand_bits steps symbolically: each bit of the advanced state is an XOR of state bits.
        bits = [frozenset([k]) for k in range(w)]
        stream = []                     # the bit shifted in at each step, oldest first
        for _ in range(self._rand_bits * self._words):
            fb = frozenset()
            for t in self._taps:
                fb = fb ^ bits[t - 1]
            bits = [fb] + bits[:-1]
            stream.append(fb)

        def xor_of(terms):
            expr = 0
            for j in sorted(terms):
                expr = expr ^ state[j]
            return expr

        advanced = Signal(w)
        for k, terms in enumerate(bits):
            m.d.comb += advanced[k].eq(xor_of(terms))
        with m.If(self.en):
            m.d.sync += state.eq(advanced)
        if self._words == 1:
            m.d.comb += self.rand.eq(advanced[:self._rand_bits])
            return m
        # Word j is the state's low R bits after (j + 1) * R steps: bit 0 the newest of its steps.
        R = self._rand_bits
        for j in range(self._words):
            word = Signal(R, name=f"word{j}")
            m.d.comb += [word[t].eq(xor_of(stream[(j + 1) * R - 1 - t])) for t in range(R)]
            m.d.comb += self.rand[j * R:(j + 1) * R].eq(word)
        return m


class RandSource:
    """Where a unit's ``sr`` random bits come from: its ``rand`` port or an internal :class:`LFSR`;
    ``words`` random words per operation (one per rounding).

    Validates the unit's random-source parameters once for every unit that rounds stochastically.
    ``kind`` is ``"port"``, ``"lfsr"`` or None (the rounding mode takes no random bits).
    """

    def __init__(self, rounding, rand_bits, source, lfsr_width, lfsr_taps, seed, words=1):
        if source not in ("port", "lfsr"):
            raise ValueError(f"rand_source must be port or lfsr, not {source!r}")
        self.rand_bits = rand_bits
        self.words = words
        self.kind = source if rounding == "sr" else None
        self.lfsr = check_lfsr(lfsr_width, lfsr_taps, seed, rand_bits) if self.kind == "lfsr" else None

    def members(self):
        """The signature members it adds: ``rand`` (``words`` words) for a port source."""
        return {"rand": In(self.rand_bits * self.words)} if self.kind == "port" else {}

    def elaborate(self, m, unit):
        """The random word(s) for the operation entering ``unit`` this cycle (None without ``sr``).

        An LFSR steps once per cycle with ``unit.valid_in`` high (``words`` words per step).
        """
        if self.kind == "port":
            return unit.rand
        if self.kind == "lfsr":
            m.submodules.lfsr = lfsr = LFSR(*self.lfsr, self.rand_bits, words=self.words)
            m.d.comb += lfsr.en.eq(unit.valid_in)
            return lfsr.rand
        return None
