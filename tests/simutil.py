"""Helpers to run generated components in Amaranth's own simulator from NumPy arrays."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator


def run_comb(dut, drive, read):
    """Apply ``drive`` (a list of ``(value, array)``) element by element and sample ``read``.

    Returns one int64 array per entry of ``read``. For combinational components.
    """
    arrays = [np.asarray(a).astype(np.int64).ravel() for _, a in drive]
    n = len(arrays[0]) if arrays else 0
    outs = [np.zeros(n, np.int64) for _ in read]

    async def testbench(ctx):
        for k in range(n):
            for (value, _), arr in zip(drive, arrays):
                ctx.set(value, int(arr[k]))
            for j, value in enumerate(read):
                outs[j][k] = ctx.get(value)

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return outs


def pack_fields(layout, **fields):
    """Pack NumPy arrays of field values into integers of ``layout`` (a StructLayout)."""
    total = None
    for name, value in fields.items():
        f = layout[name]
        v = np.asarray(value).astype(object) & ((1 << f.width) - 1)
        v = v << f.offset
        total = v if total is None else total | v
    return total
