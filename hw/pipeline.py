"""Pipelining as a parameter apart from the arithmetic.

A datapath names its candidate cut points in order (input to output; the last is the output).
:class:`Pipeline` decides where ``stages`` registers go and registers the values handed to
:meth:`Pipeline.cut` there, with a valid bit travelling alongside. Data registers have no reset
(only the valid bits do), so pipelining costs flip-flops and nothing else.
"""

from __future__ import annotations

import itertools

from golden.checks import check_int

from amaranth.hdl import Signal

__all__ = ["Pipeline", "check_stages"]


def check_stages(stages, limit=16):
    """Validate a ``stages`` parameter (``0 <= stages <= limit``)."""
    return check_int("stages", stages, 0, limit)


def placement(stages, cuts, weights=None):
    """Registers per cut point: the last at the output, the others where they best balance the
    logic between registers, extras at the output.

    ``weights[i]`` estimates the delay of the logic just before ``cuts[i]`` (all equal by default).
    With ``s`` registers and ``n`` cuts, ``min(s, n) - 1`` inner cuts are chosen to minimize the
    largest summed weight between consecutive registers (ties: the earliest cuts).
    """
    n = len(cuts)
    weights = [1] * n if weights is None else list(weights)
    counts = dict.fromkeys(cuts, 0)
    if stages == 0:
        return counts
    inner = min(stages, n) - 1
    best = None
    for chosen in itertools.combinations(range(n - 1), inner):
        bounds = [-1, *chosen, n - 1]
        worst = max(sum(weights[bounds[k] + 1:bounds[k + 1] + 1]) for k in range(len(bounds) - 1))
        if best is None or worst < best[0]:
            best = (worst, chosen)
    for i in best[1]:
        counts[cuts[i]] += 1
    counts[cuts[-1]] += 1 + max(0, stages - n)
    return counts


class Pipeline:
    """Register placement for one datapath inside ``m`` (domain ``sync``).

    ``valid_in`` enters at the first cut; :attr:`valid_out` leaves after :attr:`stages` cycles.
    """

    def __init__(self, m, stages, cuts, valid_in=None, weights=None):
        self._m = m
        self.stages = stages
        self.counts = placement(stages, list(cuts), weights)
        self._valid = valid_in
        self._seen = []

    @classmethod
    def from_counts(cls, m, counts, valid_in=None):
        """A pipeline with ``counts[name]`` registers at each cut (placement decided elsewhere)."""
        pipe = cls(m, 0, list(counts), valid_in)
        pipe.counts = dict(counts)
        pipe.stages = sum(counts.values())
        return pipe

    def cut(self, name, *values):
        """Pass ``values`` through the registers placed at cut ``name`` (in cut order)."""
        if name not in self.counts or name in self._seen:
            raise ValueError(f"unknown or repeated cut point {name!r}")
        self._seen.append(name)
        out = list(values)
        for k in range(self.counts[name]):
            regs = []
            for j, v in enumerate(out):
                shape = v.shape()
                r = Signal(shape, name=f"{name}_r{k}_{j}", reset_less=True)
                self._m.d.sync += r.eq(v)
                regs.append(r)
            out = regs
            if self._valid is not None:
                vr = Signal(name=f"{name}_valid_r{k}")
                self._m.d.sync += vr.eq(self._valid)
                self._valid = vr
        if not out:
            return None
        return out[0] if len(out) == 1 else out

    @property
    def valid_out(self):
        return self._valid
