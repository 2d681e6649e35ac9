"""Reusable cocotb drivers and monitors for lowbit's units (imported by every ``tb/test_*.py``).

Two shapes of datapath exist: combinational (inputs to outputs, no clock) and pipelined (a ``clk``,
``rst``, ``valid_in`` and ``valid_out``, one operation accepted per cycle, no back-pressure). Both
take NumPy arrays of codes and return NumPy arrays, so tests compare against the golden model with
whole-array operations.
"""

from __future__ import annotations

import numpy as np
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, Timer

__all__ = ["rng_for", "drive_comb", "drive_rounding_unit", "PipelineTB", "log_seed", "StreamSource", "StreamSink",
           "accumulator_beats", "accumulator_mac4_beats", "accumulator_block_beats", "pack_lanes", "unpack_lanes", "sample_codes"]


def rng_for(tag=""):
    """A NumPy generator seeded from cocotb's seed (cocotb seeds only Python's ``random``)."""
    seed = cocotb.RANDOM_SEED
    return np.random.default_rng([seed, sum(map(ord, tag))])


def log_seed(dut, what):
    dut._log.info("%s: seed %d (rerun with LOWBIT_SEED=%d)", what, cocotb.RANDOM_SEED, cocotb.RANDOM_SEED)


def pack_lanes(rows, width):
    """Rows of lane values (n, N) as one Python integer per beat, lane 0 in the low bits."""
    return [sum(int(v) << (width * k) for k, v in enumerate(row)) for row in np.asarray(rows)]


def unpack_lanes(words, width, lanes):
    """Beats of packed lanes back to an int64 array (n, lanes)."""
    mask = (1 << width) - 1
    return np.array([[(int(w) >> (width * k)) & mask for k in range(lanes)] for w in words], dtype=np.int64)


def sample_codes(fmt, rng, n):
    """Codes of a radix-2 float format: random ones, the edges (four times), codes near ±1.0 and the
    bottom binades (subnormals), shuffled."""
    one = int(fmt.encode(np.array([1.0]))[0])
    near = (one + rng.integers(-(8 << fmt.man_bits), 8 << fmt.man_bits, n // 4)) & ((1 << (fmt.width - 1)) - 1)
    near |= rng.integers(0, 2, n // 4) << (fmt.width - 1)
    low = rng.integers(0, 4 << fmt.man_bits, n // 4) | (rng.integers(0, 2, n // 4) << (fmt.width - 1))
    codes = np.concatenate([np.tile(fmt.edge_codes(), 4), rng.integers(0, 1 << fmt.width, n), near, low])
    return rng.permutation(codes)


def _values(arr):
    """Python integers (ports may be wider than 64 bits; a list is never routed through NumPy,
    which would turn integers beyond int64 and uint64 into floats)."""
    if isinstance(arr, np.ndarray):
        return [int(v) for v in arr.ravel()]
    return [int(v) for v in arr]


def _result_array(handle, values):
    """int64 when the port fits, else an object array of Python integers."""
    return np.array(values, dtype=np.int64 if len(handle) <= 63 else object)


async def drive_rounding_unit(tb, inputs, n, rng, idle_prob=0.25):
    """Drive ``n`` operations ``inputs`` ({port: array}) through a unit with a random source
    (``hw.stochastic_round.lfsr.RandSource``) and sample ``y``: a random ``rand`` word per operation
    when ``tb.port_rand``, through ``tb.pipe`` with idle cycles when ``tb.clocked``, else
    combinationally. Returns ``(y, the random words used or None)``: with the internal LFSR (one word
    per operation) its first ``n`` words. ``tb`` has ``dut``, ``params``, ``R``, ``port_rand``,
    ``lfsr``, ``clocked`` and ``pipe``."""
    from golden.lfsr import lfsr_words
    rbits = None
    if tb.port_rand:
        rbits = rng.integers(0, 1 << tb.R, n)
        inputs = {**inputs, "rand": rbits}
    if tb.clocked:
        await tb.pipe.reset()
        y = (await tb.pipe.run(inputs, ["y"], idle_prob=idle_prob, rng=rng))["y"]
    else:
        y = (await drive_comb(tb.dut, inputs, ["y"]))["y"]
    if tb.lfsr:
        p = tb.params
        rbits = lfsr_words(p["lfsr_width"], p["lfsr_taps"], p["seed"], tb.R, n).astype(np.int64)
    return y, rbits


async def drive_comb(dut, inputs, outputs):
    """Apply each row of ``inputs`` ({port: array}) and sample ``outputs`` (port names).

    Returns {port: array}: int64, or Python integers for ports wider than 63 bits.
    """
    ports_in = [(getattr(dut, name), _values(arr)) for name, arr in inputs.items()]
    ports_out = [(name, getattr(dut, name)) for name in outputs]
    n = len(ports_in[0][1])
    result = {name: [0] * n for name in outputs}
    for k in range(n):
        for handle, arr in ports_in:
            handle.value = arr[k]
        await Timer(1, unit="ns")
        for name, handle in ports_out:
            result[name][k] = int(handle.value)
    return {name: _result_array(handle, result[name]) for name, handle in ports_out}


class PipelineTB:
    """Clock, reset, a driver with random idle cycles and a ``valid_out`` monitor.

    The monitor samples in ``ReadOnly`` after each rising edge and never writes. A clocked unit with
    combinational outputs (zero stages, clocked only for an internal LFSR) is sampled at the falling
    edge instead (``combinational=True``): after the rising edge its outputs already belong to the
    next inputs.
    """

    def __init__(self, dut, period_ns=10, combinational=False):
        self.dut = dut
        self.period_ns = period_ns
        self.combinational = combinational
        cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())

    async def reset(self, cycles=2):
        self.dut.rst.value = 1
        self.dut.valid_in.value = 0
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def run(self, inputs, outputs, idle_prob=0.0, rng=None, drain=32):
        """Stream the rows of ``inputs`` ({port: array}) with random idle cycles; collect outputs.

        Returns {port: int64 array} of the outputs of every cycle with ``valid_out`` high, in order,
        including any beyond the expected count (so duplicates show), until ``drain`` cycles after
        the last input.
        """
        dut = self.dut
        ports_in = [(getattr(dut, name), _values(arr)) for name, arr in inputs.items()]
        ports_out = [(name, getattr(dut, name)) for name in outputs]
        n = len(ports_in[0][1])
        collected = {name: [] for name in outputs}

        async def monitor():
            while True:
                await (FallingEdge(dut.clk) if self.combinational else RisingEdge(dut.clk))
                await ReadOnly()
                if int(dut.valid_out.value):
                    for name, handle in ports_out:
                        collected[name].append(int(handle.value))

        mon = cocotb.start_soon(monitor())
        k = 0
        while k < n:
            idle = idle_prob > 0 and rng.random() < idle_prob
            if idle:
                # Garbage on the inputs of an idle cycle must not matter.
                dut.valid_in.value = 0
                for handle, _ in ports_in:
                    handle.value = int(rng.integers(0, 1 << min(len(handle), 62)))
            else:
                for handle, arr in ports_in:
                    handle.value = arr[k]
                dut.valid_in.value = 1
                k += 1
            await RisingEdge(dut.clk)
        dut.valid_in.value = 0
        await ClockCycles(dut.clk, drain)
        mon.cancel()
        return {name: _result_array(handle, collected[name]) for name, handle in ports_out}


def _pack(codes, width):
    """One Python integer per row of ``codes`` (rows, lanes): lane ``k`` in bits ``k*width``."""
    return [sum(int(c) << (width * k) for k, c in enumerate(row)) for row in np.asarray(codes)]


def accumulator_beats(a, b, lanes, wa, wb):
    """``hw.accumulator`` (fp8 front) payloads of one dot product of codes ``a``, ``b`` (length a
    multiple of ``lanes``): ``{last, b lanes, a lanes}``, lane 0 lowest, ``last`` on the final beat."""
    pa = _pack(np.reshape(a, (-1, lanes)), wa)
    pb = _pack(np.reshape(b, (-1, lanes)), wb)
    nb = len(pa)
    return [x | (y << (wa * lanes)) | (int(j == nb - 1) << ((wa + wb) * lanes))
            for j, (x, y) in enumerate(zip(pa, pb))]


def accumulator_mac4_beats(x, g, phase, offset, lanes):
    """``hw.accumulator --front mac4`` payloads of one dot product: ``{last, offset[7:0], phase,
    g lanes, x lanes}``; ``phase`` is one bit per beat, ``offset`` one per dot product."""
    px = _pack(np.reshape(x, (-1, lanes)), 4)
    pg = _pack(np.reshape(g, (-1, lanes)), 4)
    nb = len(px)
    ph = np.broadcast_to(np.asarray(phase), (nb,))
    return [u | (v << (4 * lanes)) | (int(ph[j]) << (8 * lanes)) | ((int(offset) & 0xFF) << (8 * lanes + 1))
            | (int(j == nb - 1) << (8 * lanes + 9)) for j, (u, v) in enumerate(zip(px, pg))]


def accumulator_block_beats(a, a_scales, b, b_scales, k, wa, wb):
    """``hw.accumulator --front block`` payloads of one dot product: one block pair per beat,
    ``{last, b scale, a scale, b elements, a elements}`` (element ``i`` of a block in bits
    ``i*width``; 8-bit scale codes). ``a``, ``b``: element codes (length a multiple of ``k``);
    ``a_scales``, ``b_scales``: one scale code per block (``docs/arithmetic.md`` section 9.6)."""
    pa = _pack(np.reshape(a, (-1, k)), wa)
    pb = _pack(np.reshape(b, (-1, k)), wb)
    nb, top = len(pa), (wa + wb) * k
    return [x | (y << (wa * k)) | (int(a_scales[j]) << top) | (int(b_scales[j]) << (top + 8))
            | (int(j == nb - 1) << (top + 16)) for j, (x, y) in enumerate(zip(pa, pb))]


class StreamSource:
    """Drives an Amaranth ``lib.stream`` input (``<name>__payload/valid/ready``) with idle cycles.

    A payload stays on the port until a transfer (``valid`` and ``ready`` sampled high in
    ``ReadOnly`` before a rising edge); ``valid`` never waits for ``ready``.
    """

    def __init__(self, dut, name="i"):
        self.clk = dut.clk
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.valid.value = 0

    async def send(self, payloads, idle_prob=0.0, rng=None):
        """Transfer every payload in order; returns the number of cycles taken."""
        k, presenting, cycles = 0, False, 0
        while k < len(payloads):
            if not presenting and not (idle_prob > 0 and rng.random() < idle_prob):
                self.payload.value = int(payloads[k])
                self.valid.value = 1
                presenting = True
            elif not presenting:
                self.valid.value = 0
            await ReadOnly()
            accepted = presenting and int(self.ready.value)
            await RisingEdge(self.clk)
            cycles += 1
            if accepted:
                k += 1
                presenting = False
                self.valid.value = 0
        return cycles


class StreamSink:
    """Accepts an Amaranth ``lib.stream`` output with random back-pressure and records transfers."""

    def __init__(self, dut, name="o", stall_prob=0.0, rng=None):
        self.clk = dut.clk
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.stall_prob, self.rng = stall_prob, rng
        self.received = []
        self.ready.value = 0
        self._task = None

    def start(self):
        self._task = cocotb.start_soon(self._run())

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        while True:
            stall = self.stall_prob > 0 and self.rng.random() < self.stall_prob
            self.ready.value = 0 if stall else 1
            await ReadOnly()
            if int(self.valid.value) and int(self.ready.value):
                self.received.append(int(self.payload.value))
            await RisingEdge(self.clk)
