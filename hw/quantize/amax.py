"""``amax``: the streaming max-magnitude reducer, N codes per beat, one result per packet.

Semantics: ``docs/arithmetic.md`` section 10.2 (``amax_codes``) and 10.7 (this unit); golden model
:func:`golden.quantize.amax_codes`. The result is the largest *magnitude code* (``code`` with the sign
bit cleared) of a packet: magnitude codes order like their magnitudes, so this is an unsigned maximum
and needs no decoding. NaN codes lie above the Inf code, so a packet holding a NaN gives a NaN code
(its largest NaN magnitude, not necessarily the canonical NaN), else one holding ±Inf gives +Inf's
code; ``-0`` counts as ``+0``.

Datapath::

    per lane: drop the sign bit -> unsigned maximum over the lanes, most significant bit first
       (with stages >= 2 a register in the middle of its bit chain) -> [registers]
    -> running maximum (cleared after each packet's last beat); a packet's last beat writes the
       maximum with it into the output register (o.payload)

Back-pressure: everything advances only while the output register is empty or being read
(``EnableInserter``), as in :mod:`hw.accumulator`; ``i.ready`` is that enable.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, EnableInserter, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..float import FloatLayout
from ..pipeline import Pipeline, check_stages
from ..validate import rejects_quietly
from .common import check_quant_lanes, check_source

__all__ = ["Amax", "MAX_STAGES", "CUTS", "unsigned_maximum"]

#: Most registers in the reducer's pipeline.
MAX_STAGES = 4
#: Register positions, input to output (see :class:`hw.pipeline.Pipeline`): in the middle of the
#: lanes' maximum (the candidates, the top half of its bits and the lanes' low halves), after it.
#: One register goes after the maximum; from two on, one splits the maximum's chain.
CUTS = ("lane_max_top", "lane_max")


def unsigned_maximum(m, values, name, split=None):
    """The unsigned maximum of ``values`` (equal widths), most significant bit first.

    Every value starts as a candidate; at each bit, if some candidate has it set, the candidates
    without it drop out, and that bit of the maximum is the OR over the candidates. That is
    ``3 * len(values)`` gates per bit and no comparator or result multiplexer: on sky130 about
    half the area of a tree of compare-and-select (9 x 15 bits: 1,728 against 3,581 µm²), at
    a depth linear in the width.

    ``split = (bit, stage)`` cuts the chain above ``bit``: ``stage(*signals)`` receives the
    candidates, the maximum's bits so far and the values' bits ``bit ... 0`` and returns them
    (registered, for a pipeline register in the middle of the chain).
    """
    width = len(values[0])
    candidates = [None] * len(values)              # None: still a candidate (before the first bit)
    bits = []
    for b in reversed(range(width)):
        if split is not None and b == split[0] and b < width - 1:
            low = [v[:b + 1] for v in values]
            staged = split[1](Cat(*candidates), Cat(*bits), *low)
            candidates = list(staged[0])
            bits = list(staged[1])
            values = [Cat(v, Const(0, width - b - 1)) for v in staged[2:]]
        hits = [v[b] if c is None else c & v[b] for c, v in zip(candidates, values)]
        bit = Signal(name=f"{name}_bit{b}")
        m.d.comb += bit.eq(Cat(*hits).any())
        bits.append(bit)
        if b == 0:
            break
        nxt = []
        for j, (c, v) in enumerate(zip(candidates, values)):
            keep = Signal(name=f"{name}_cand{b}_{j}")
            m.d.comb += keep.eq((v[b] | ~bit) if c is None else c & (v[b] | ~bit))
            nxt.append(keep)
        candidates = nxt
    out = Signal(width, name=name)
    m.d.comb += out.eq(Cat(*reversed(bits)))
    return out


class _Core(wiring.Component):
    """The reducer without back-pressure (run under an enable)."""

    def __init__(self, parent):
        self._p = parent
        super().__init__({
            "beat_valid": In(1), "beat": In(parent.beat_layout),
            "result": Out(parent.result_layout), "result_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        par = self._p
        mag_bits = par._source.width - 1
        mags = [self.beat.x[k].as_value()[:mag_bits] for k in range(par._lanes)]
        pipe = Pipeline(m, par._stages, CUTS, valid_in=self.beat_valid)
        last = [self.beat.last]

        def stage(*signals):
            *out, last[0] = pipe.cut("lane_max_top", *signals, last[0])
            return out

        # The chain is split only where a register goes (two stages or more).
        split = mag_bits // 2 if pipe.counts["lane_max_top"] and mag_bits > 1 else None
        beat_max = unsigned_maximum(m, mags, "lane_max", split=None if split is None else (split, stage))
        if split is None:
            last[0] = pipe.cut("lane_max_top", last[0])
        staged_max, last = pipe.cut("lane_max", beat_max, last[0])
        beat = pipe.valid_out if par._stages else self.beat_valid

        running = Signal(mag_bits, name="running_max")          # 0: the identity of the maximum
        new_max = Signal(mag_bits, name="new_max")
        # running - staged borrows iff staged > running (a subtractor maps smaller than `>`).
        borrow = Signal(mag_bits + 1, name="running_minus_beat")
        m.d.comb += [borrow.eq(running - staged_max), new_max.eq(Mux(borrow[-1], staged_max, running))]
        with m.If(beat):
            m.d.sync += running.eq(Mux(last, 0, new_max))
        # The packet's maximum leaves with its last beat (the parent registers it).
        m.d.comb += [self.result.as_value().eq(new_max), self.result_valid.eq(beat & last)]
        return m


class Amax(wiring.Component):
    """Maximum magnitude code of each packet of ``lanes``-code beats.

    Parameters
    ----------
    lanes : int
        ``N`` codes per beat (1 to 64).
    source : str or FloatFormat
        Radix-2 float format of the codes (``fp16`` by default).
    stages : int
        Registers before the running maximum (0 to :data:`MAX_STAGES`): the first after the lanes'
        maximum, the second in the middle of its bit chain, more after it (:data:`CUTS`).

    Members
    -------
    i : In(stream.Signature(StructLayout({"x": ArrayLayout(FloatLayout(source), N), "last": 1})))
        One beat per transfer: ``x[k]`` lane ``k``'s code (lane 0 in the low bits), ``last`` ends
        the packet (a tensor or a block).
    o : Out(stream.Signature(FloatLayout(source)))
        One result per packet, the magnitude code (sign bit 0) of ``golden.quantize.amax_codes``,
        :attr:`latency` cycles after the packet's last beat when not stalled.
    """

    @rejects_quietly
    def __init__(self, lanes=8, source="fp16", stages=0):
        self._lanes = check_quant_lanes(lanes)
        self._source = check_source(source)
        self._stages = check_stages(stages, limit=MAX_STAGES)
        self.beat_layout = data.StructLayout({
            "x": data.ArrayLayout(FloatLayout(self._source), self._lanes), "last": 1,
        })
        self.result_layout = FloatLayout(self._source)
        super().__init__({
            "i": In(stream.Signature(self.beat_layout)),
            "o": Out(stream.Signature(self.result_layout)),
        })

    @property
    def lanes(self):
        return self._lanes

    @property
    def latency(self):
        """Cycles from accepting a packet's last beat to its result on ``o``."""
        return self._stages + 1

    def elaborate(self, platform):
        m = Module()
        en = Signal(name="advance")          # the datapath moves only when the output can take a result
        out_valid = Signal(name="out_valid")
        out_code = Signal(self.result_layout, name="out_code", reset_less=True)
        m.d.comb += en.eq(~out_valid | self.o.ready)
        m.submodules.core = core = EnableInserter(en)(_Core(self))
        m.d.comb += [
            core.beat_valid.eq(self.i.valid & en), core.beat.eq(self.i.payload),
            self.i.ready.eq(en),
            self.o.valid.eq(out_valid), self.o.payload.eq(out_code),
        ]
        with m.If(en & core.result_valid):
            m.d.sync += [out_code.eq(core.result), out_valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += out_valid.eq(0)
        return m
