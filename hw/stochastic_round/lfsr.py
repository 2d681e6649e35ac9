"""LFSR random source (``docs/arithmetic.md`` section 6; golden model :mod:`golden.lfsr`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.checks import check_int
from golden.lfsr import check_lfsr
from ..validate import rejects_quietly

__all__ = ["LFSR", "RandSource", "RandUnit", "MAX_WORDS"]

#: Most words an :class:`LFSR` hands out per cycle.
MAX_WORDS = 512


class LFSR(wiring.Component):
    """A Fibonacci LFSR that advances ``words * rand_bits`` steps per enabled cycle.

    ``rand`` is available combinationally: word ``k`` (bits ``k*R ... k*R+R-1``) is the low
    ``rand_bits`` bits of the state after ``(k+1) * rand_bits`` steps, and the state takes the value
    after all ``words * rand_bits`` steps at the clock edge when ``en`` is high. So word ``k`` of
    the ``i``-th enabled cycle after reset is word ``i * words + k`` of
    :func:`golden.lfsr.lfsr_words` (:func:`golden.lfsr.lfsr_lane_words` gives them by cycle): the
    words a one-word LFSR would hand out over ``words`` cycles, in one cycle (``docs/arithmetic.md``
    section 6.1).

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
        Words per enabled cycle (1 to :data:`MAX_WORDS`), e.g. one per lane of a multi-lane unit.

    Members
    -------
    en : In(1)
    rand : Out(words * rand_bits)
    """

    @rejects_quietly
    def __init__(self, width=16, taps=None, seed=1, rand_bits=8, words=1):
        self._width, self._taps, self._seed = check_lfsr(width, taps, seed, rand_bits)
        self._rand_bits = rand_bits
        self._words = check_int("words", words, 1, MAX_WORDS)
        super().__init__({"en": In(1), "rand": Out(self._words * rand_bits)})

    @property
    def taps(self):
        return self._taps

    def elaborate(self, platform):
        m = Module()
        w, R = self._width, self._rand_bits
        state = Signal(w, init=self._seed)

        def xor_of(terms):
            expr = 0
            for j in sorted(terms):
                expr = expr ^ state[j]
            return expr

        # Unroll the steps symbolically: each bit of an advanced state is an XOR of state bits.
        bits = [frozenset([k]) for k in range(w)]
        earlier = []                 # the words before the last, each as R XOR expressions
        for word in range(self._words):
            for _ in range(R):
                fb = frozenset()
                for t in self._taps:
                    fb = fb ^ bits[t - 1]
                bits = [fb] + bits[:-1]
            if word < self._words - 1:
                earlier.append(bits[:R])
        advanced = Signal(w)
        for k, terms in enumerate(bits):
            m.d.comb += advanced[k].eq(xor_of(terms))
        with m.If(self.en):
            m.d.sync += state.eq(advanced)
        if not earlier:
            m.d.comb += self.rand.eq(advanced[:R])
            return m
        for word, terms in enumerate(earlier):
            value = Signal(R, name=f"word{word}")
            for k, t in enumerate(terms):
                m.d.comb += value[k].eq(xor_of(t))
            m.d.comb += self.rand[word * R:(word + 1) * R].eq(value)
        m.d.comb += self.rand[-R:].eq(advanced[:R])
        return m


class RandSource:
    """Where a unit's ``sr`` random bits come from: its ``rand`` port or an internal :class:`LFSR`.

    Validates the unit's random-source parameters once for every unit that rounds stochastically.
    ``kind`` is ``"port"``, ``"lfsr"`` or None (the rounding mode takes no random bits). ``words``
    is the number of ``rand_bits``-bit words one operation takes (a multi-lane unit's lanes).
    """

    def __init__(self, rounding, rand_bits, source, lfsr_width, lfsr_taps, seed, words=1):
        if source not in ("port", "lfsr"):
            raise ValueError(f"rand_source must be port or lfsr, not {source!r}")
        self.rand_bits = rand_bits
        self.words = words
        self.kind = source if rounding == "sr" else None
        self.lfsr = check_lfsr(lfsr_width, lfsr_taps, seed, rand_bits) if self.kind == "lfsr" else None

    def clocked(self, stages):
        """Whether a unit with ``stages`` registers and this source has a clock (registers or the
        LFSR's state)."""
        return stages > 0 or self.kind == "lfsr"

    def unit_members(self, stages):
        """The control ports every unit with a random source shares, in this order: ``rand`` (a port
        source) and, when :meth:`clocked`, ``valid_in`` and ``valid_out`` (``clk`` and ``rst`` come
        from the ``sync`` domain)."""
        members = self.members()
        if self.clocked(stages):
            members |= {"valid_in": In(1), "valid_out": Out(1)}
        return members

    def members(self):
        """The signature members it adds: ``rand`` (``words`` words, word 0 lowest) for a port
        source."""
        return {"rand": In(self.words * self.rand_bits)} if self.kind == "port" else {}

    def elaborate(self, m, unit):
        """The random words for the operation entering ``unit`` this cycle (None without ``sr``).

        An LFSR steps once per cycle with ``unit.valid_in`` high, handing out ``words`` words.
        """
        if self.kind == "port":
            return unit.rand
        if self.kind == "lfsr":
            m.submodules.lfsr = lfsr = LFSR(*self.lfsr, self.rand_bits, words=self.words)
            m.d.comb += lfsr.en.eq(unit.valid_in)
            return lfsr.rand
        return None


class RandUnit:
    """The properties a unit with a :class:`RandSource` ``_rand`` and ``_stages`` register stages
    shares with the others (mixed into its ``wiring.Component``)."""

    @property
    def clocked(self):
        """Whether the unit has ``clk``, ``rst``, ``valid_in`` and ``valid_out``."""
        return self._rand.clocked(self._stages)

    @property
    def stages(self):
        """Latency in cycles."""
        return self._stages
