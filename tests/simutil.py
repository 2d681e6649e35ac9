"""Helpers to run generated components in Amaranth's own simulator from NumPy arrays."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator


def run_comb(dut, drive, read):
    """Apply ``drive`` (a list of ``(value, array)``) element by element and sample ``read``.

    Returns one array per entry of ``read``: int64, or Python integers where a value is wider than
    63 bits. For combinational components.
    """
    arrays = [[int(v) for v in np.asarray(a).ravel()] for _, a in drive]
    n = len(arrays[0]) if arrays else 0
    outs = [[0] * n for _ in read]

    async def testbench(ctx):
        for k in range(n):
            for (value, _), arr in zip(drive, arrays):
                ctx.set(value, arr[k])
            for j, value in enumerate(read):
                outs[j][k] = ctx.get(value)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return [np.array(o, dtype=np.int64 if len(v) <= 63 else object) for o, v in zip(outs, read)]


def pack_fields(layout, **fields):
    """Pack NumPy arrays of field values into integers of ``layout`` (a StructLayout)."""
    total = None
    for name, value in fields.items():
        f = layout[name]
        v = np.asarray(value).astype(object) & ((1 << f.width) - 1)
        v = v << f.offset
        total = v if total is None else total | v
    return total
