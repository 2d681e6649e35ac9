"""The Verilog export (hw/verilog.py): lint-clean, formally equivalent, deterministic.

Every design of the corpus below (small Amaranth components, and hand-written RTLIL for cells
Amaranth does not emit directly) and every unit of the registry (defaults, two register stages,
another rounding mode, and :data:`EXTRA_UNIT_CASES`: every mode and port set) is exported and then

* linted with ``verilator --lint-only -Wall --quiet-stats`` (the option only drops Verilator's
  statistics banner): it must print nothing and exit 0;
* proven equivalent with Yosys (:func:`prove_equivalent`), the Verilog read back by Yosys:
  completely against the netlist it was written from (every wire and register paired with the
  netlist bits it carries, one small SAT problem per cut point), and for the corpus also directly
  against Amaranth's RTLIL with a miter (exhaustive for combinational designs, bounded from the
  all-zero state for clocked ones); the units' direct miters take seconds each and run with
  ``--long`` / ``LOWBIT_LONG=1``. Breaking the pass on purpose (zero- instead of sign-extension,
  the priority of a ``$pmux`` chain, ``$logic_not`` as ``$ne``, a right shift or a division at the
  result's width, unsigned division of signed operands) makes these checks fail;
* checked for determinism: same text twice, also from another process with another hash seed
  and from a copy of the package at another path; no path, no Yosys banner, no attribute, no
  ``initial``, no lint pragma.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import (Cat, ClockDomain, Const, EnableInserter, Module, Mux, ResetInserter, Signal, signed,
                          unsigned)
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.export import to_rtlil, to_verilog
from hw.tools import run_yosys, verilator_env
from hw.units import UNITS
from hw.verilog import VerilogExportError, netlist_to_verilog, port_order, rtlil_to_verilog, yosys_netlist

ROOT = Path(__file__).resolve().parents[1]
SEQ_DEPTH = 3


# -- corpus: Amaranth components --------------------------------------------------------------------

class Arith(wiring.Component):
    """Signed/unsigned mixes in add, sub, mul, neg, compare; negative constants; odd result widths."""

    a: In(signed(5))
    b: In(unsigned(3))
    c: In(signed(8))
    d: In(unsigned(7))
    add_su: Out(signed(7))
    sub_us: Out(signed(9))
    sub_uu: Out(8)
    add_trunc: Out(4)
    add_wide: Out(signed(16))
    mul_su: Out(signed(12))
    mul_uu: Out(6)
    neg_a: Out(signed(6))
    neg_d: Out(signed(8))
    not_a: Out(signed(7))
    add_negconst: Out(signed(8))
    sub_negconst: Out(9)
    carry: Out(1)
    mid: Out(3)
    cmp: Out(12)

    def elaborate(self, platform):
        m = Module()
        a, b, c, d = self.a, self.b, self.c, self.d
        s = Signal(8)
        m.d.comb += [
            self.add_su.eq(a + b),
            self.sub_us.eq(b - c),
            self.sub_uu.eq(b - d),
            self.add_trunc.eq(c + d),
            self.add_wide.eq(a + c - d),
            self.mul_su.eq(a * b),
            self.mul_uu.eq(b * d),
            self.neg_a.eq(-a),
            self.neg_d.eq(-d),
            self.not_a.eq(~a),
            self.add_negconst.eq(a + Const(-7, signed(4))),
            self.sub_negconst.eq(d - (-100)),
            s.eq(d + b),
            self.carry.eq((d + c)[7]),            # only the MSB of a sum
            self.mid.eq((c + d)[2:5]),            # neither LSBs nor MSBs
            self.cmp.eq(Cat(a < b, a >= c, b > c, a == -3, c != d, d <= a, c < -100, b > 5,
                            a.as_unsigned() < b, d == 0x55, s < 200, (a + c) > d)),
        ]
        return m


class Shifts(wiring.Component):
    """Variable shifts both ways, signed and unsigned, plus bit/word selects and rotates."""

    a: In(signed(8))
    u: In(unsigned(6))
    s: In(3)
    t: In(2)
    shl_s: Out(12)
    shl_u: Out(signed(7))
    shr_s: Out(8)
    shr_u: Out(6)
    shr_wide: Out(signed(10))
    bits: Out(3)
    word: Out(2)
    rot: Out(6)
    const_sh: Out(12)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.shl_s.eq(self.a << self.s),
            self.shl_u.eq(self.u << self.t),
            self.shr_s.eq(self.a >> self.s),
            self.shr_u.eq(self.u >> self.s),
            self.shr_wide.eq(self.a.shift_right(2) >> self.t),
            self.bits.eq(self.u.bit_select(self.s, 3)),
            self.word.eq(self.a.word_select(self.t, 2)),
            self.rot.eq(self.u.rotate_left(1) ^ self.u.rotate_right(2)),
            self.const_sh.eq(Cat(self.a.shift_left(3), self.u.shift_right(5))),
        ]
        return m


class Muxes(wiring.Component):
    """Mux, Switch with patterns and overlapping cases, If/Elif chains (pmux after proc)."""

    op: In(3)
    sel: In(1)
    a: In(signed(6))
    b: In(unsigned(4))
    y: Out(8)
    z: Out(signed(7))
    w: Out(5)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.z.eq(Mux(self.sel, self.a, self.b))
        with m.Switch(self.op):
            with m.Case(0):
                m.d.comb += self.y.eq(self.a)
            with m.Case(1, 2):
                m.d.comb += self.y.eq(self.b + 3)
            with m.Case("1-1"):
                m.d.comb += self.y.eq(-self.a)
            with m.Case("11-"):   # overlaps 7 with the previous case: first match wins
                m.d.comb += self.y.eq(0x81)
            with m.Default():
                m.d.comb += self.y.eq(self.a ^ self.b)
        with m.If(self.a < 0):
            m.d.comb += self.w.eq(1)
        with m.Elif(self.b[0]):
            m.d.comb += self.w.eq(self.b)
        with m.Elif(self.op == 3):
            m.d.comb += self.w.eq(self.a[1:])
        return m


class Reductions(wiring.Component):
    """any/all/xor/bool, logic operators and a wide one-hot compare."""

    a: In(9)
    b: In(signed(4))
    y: Out(10)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(Cat(self.a.any(), self.a.all(), self.a.xor(), self.b.bool(), ~self.a.any(),
                                  self.a.bool() & self.b.bool(), self.a.bool() | self.b.bool(),
                                  ~self.a[2:6].xor(), self.b.all() ^ self.a[0], self.a == (1 << 8)))
        return m


class Registers(wiring.Component):
    """Sync registers with reset and init values, reset-less ones, EnableInserter/ResetInserter."""

    en: In(1)
    clr: In(1)
    d: In(signed(6))
    count: Out(5)
    acc: Out(signed(9))
    delayed: Out(6)
    flag: Out(1)
    gated: Out(4)

    def elaborate(self, platform):
        m = Module()
        count = Signal(5, init=3)
        acc = Signal(signed(9), init=-2)
        pipe = Signal(6, reset_less=True)
        flag = Signal(init=1)
        m.d.sync += [count.eq(count + 1), pipe.eq(self.d), flag.eq(~flag ^ self.d[0])]
        with m.If(count == 17):
            m.d.sync += acc.eq(acc - self.d)
        with m.Else():
            m.d.sync += acc.eq(acc + self.d)
        sub = Module()
        gated = Signal(4, init=9)
        sub.d.sync += gated.eq(gated + self.d[:3])
        m.submodules.sub = ResetInserter(self.clr)(EnableInserter(self.en)(sub))
        m.d.comb += [self.count.eq(count), self.acc.eq(acc), self.delayed.eq(pipe), self.flag.eq(flag),
                     self.gated.eq(gated)]
        return m


class AsyncDomains(wiring.Component):
    """Asynchronous reset and a negative-edge domain, with clock enables."""

    clk_in: In(1)
    arst: In(1)
    en: In(1)
    d: In(4)
    q: Out(4)
    qn: Out(3)

    def elaborate(self, platform):
        m = Module()
        m.domains.a = cd_a = ClockDomain("a", async_reset=True)
        m.domains.n = cd_n = ClockDomain("n", clk_edge="neg")
        m.d.comb += [cd_a.clk.eq(self.clk_in), cd_a.rst.eq(self.arst), cd_n.clk.eq(self.clk_in),
                     cd_n.rst.eq(self.en & self.d[3])]
        q = Signal(4, init=0b1010)
        with m.If(self.en):
            m.d.a += q.eq(q ^ self.d)
        qn = Signal(3)
        m.d.n += qn.eq(qn + self.d[:3])
        m.d.comb += [self.q.eq(q), self.qn.eq(qn)]
        return m


PixLayout = data.StructLayout({"r": 5, "g": 6, "b": 5})
Fields = data.StructLayout({"tag": 2, "val": signed(6), "flag": 1})


class Views(wiring.Component):
    """lib.data views, Cat with constants, slices, replicate, as_signed."""

    pix: In(PixLayout)
    f: In(Fields)
    out: Out(PixLayout)
    g: Out(Fields)
    cat: Out(16)
    wide: Out(signed(12))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.out.r.eq(self.pix.b),
            self.out.g.eq(self.pix.g[1:] + self.pix.r),
            self.out.b.eq(self.pix.r),
            self.g.tag.eq(self.f.tag),
            self.g.val.eq(self.f.val + Mux(self.f.flag, -1, 1)),
            self.g.flag.eq(self.f.val < 0),
            self.cat.eq(Cat(Const(0b101, 3), self.pix.g[2:4], self.f.tag.replicate(2), self.pix.r[::2],
                            self.f.as_value()[3:8])),
            self.wide.eq(self.f.val.as_unsigned().as_signed() * 3),
        ]
        return m


class Passthrough(wiring.Component):
    """No cells at all: outputs from inputs and constants; an input partly unused."""

    a: In(8)
    unused_in: In(3)
    y: Out(6)
    k: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.y.eq(Cat(self.a[4:6], self.a[0], self.a[0], Const(1, 2))), self.k.eq(9)]
        return m


class Division(wiring.Component):
    """Unsigned division and remainder ($divfloor/$modfloor with unsigned operands)."""

    a: In(6)
    b: In(3)
    q: Out(6)
    r: Out(3)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.q.eq(self.a // self.b), self.r.eq(self.a % self.b)]
        return m


class SignedDivision(wiring.Component):
    a: In(signed(6))
    b: In(signed(3))
    q: Out(signed(6))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.q.eq(self.a // self.b)
        return m


AMARANTH_CORPUS = {
    "arith": Arith, "shifts": Shifts, "muxes": Muxes, "reductions": Reductions, "registers": Registers,
    "async_domains": AsyncDomains, "views": Views, "passthrough": Passthrough, "division": Division,
}


# -- corpus: hand-written RTLIL for cells Amaranth does not produce directly ------------------------

def _rtlil_module(name, ports, cells, wires=()):
    """RTLIL text of module ``name``: ``ports`` is [(dir, name, width)], ``cells`` RTLIL cell text,
    ``wires`` internal [(name, width)]."""
    lines = ["module \\" + name]
    for k, (d, port, width) in enumerate(ports):
        lines.append(f"  wire width {width} {d} {k + 1} \\{port}")
    lines += [f"  wire width {width} \\{wire}" for wire, width in wires]
    lines += cells
    lines.append("end")
    return "\n".join(lines) + "\n"


def _cell(kind, name, params, conns):
    out = [f"  cell ${kind} ${name}"]
    out += [f"    parameter \\{k} {v}" for k, v in params.items()]
    out += [f"    connect \\{k} {v}" for k, v in conns.items()]
    out.append("  end")
    return out


def _binop(kind, name, a, b, y, aw, bw, yw, asg, bsg):
    return _cell(kind, name, {"A_SIGNED": int(asg), "B_SIGNED": int(bsg), "A_WIDTH": aw, "B_WIDTH": bw,
                              "Y_WIDTH": yw}, {"A": a, "B": b, "Y": y})


def _rtlil_cells():
    cells = []
    cells += _binop("shift", "sh1", "\\a", "\\sb", "\\y1", 8, 3, 10, True, False)
    cells += _binop("shift", "sh2", "\\a", "\\s", "\\y2", 8, 3, 6, False, False)
    cells += _binop("shiftx", "sx1", "\\a", "\\sb", "\\y3", 8, 3, 3, False, False)
    cells += _binop("shiftx", "sx2", "\\a", "\\s", "\\y4", 8, 3, 4, False, False)
    cells += _binop("sshr", "ss1", "\\a", "\\s", "\\y5", 8, 3, 11, True, False)
    cells += _binop("shr", "sr1", "\\a", "\\s", "\\y6", 8, 3, 11, True, False)
    cells += _binop("sshl", "sl1", "\\a", "\\s", "\\y7", 8, 3, 9, True, False)
    cells += _binop("shl", "sl2", "\\a", "\\sb", "\\y8", 8, 3, 5, False, False)
    cells += _binop("div", "dv1", "\\a", "\\sb", "\\y9", 8, 3, 8, True, True)
    cells += _binop("mod", "md1", "\\a", "\\sb", "\\y10", 8, 3, 3, True, True)
    cells += _binop("eqx", "eq1", "\\a", "\\sb", "\\y11 [0]", 8, 3, 1, True, True)
    cells += _binop("nex", "ne1", "\\a", "\\s", "\\y11 [1]", 8, 3, 1, False, False)
    cells += _binop("logic_and", "la1", "\\a", "\\s", "\\y11 [2]", 8, 3, 1, False, False)
    cells += _binop("logic_or", "lo1", "\\a [3:0]", "\\s", "\\y11 [3]", 4, 3, 1, False, False)
    cells += _binop("le", "le1", "\\a", "\\sb", "\\y11 [5:4]", 8, 3, 2, True, True)
    cells += _binop("gt", "gt1", "\\a", "\\sb", "\\y11 [6]", 8, 3, 1, False, False)
    cells += _binop("xnor", "xn1", "\\a", "\\sb", "\\y12", 8, 3, 9, True, True)
    cells += _binop("or", "or1", "\\a", "\\sb", "\\y13", 8, 3, 10, False, False)
    cells += _cell("reduce_xnor", "rx1", {"A_SIGNED": 0, "A_WIDTH": 8, "Y_WIDTH": 1},
                   {"A": "\\a", "Y": "\\y11 [7]"})
    cells += _cell("bmux", "bm1", {"WIDTH": 2, "S_WIDTH": 2}, {"A": "\\a", "S": "\\s [1:0]", "Y": "\\y14"})
    cells += _cell("pmux", "pm1", {"WIDTH": 3, "S_WIDTH": 3},
                   {"A": "\\a [2:0]", "B": "{ \\a [7:5] \\sb \\a [5:3] }", "S": "\\s", "Y": "\\y15"})
    ports = [("input", "a", 8), ("input", "s", 3), ("input", "sb", 3)]
    ports += [("output", f"y{k}", w) for k, w in enumerate(
        [10, 6, 3, 4, 11, 11, 9, 5, 8, 3, 8, 9, 10, 2, 3], start=1)]
    return _rtlil_module("cells", ports, cells)


def _rtlil_ffs():
    cells = []
    cells += _cell("sdffce", "f1", {"WIDTH": 4, "CLK_POLARITY": 1, "EN_POLARITY": 0, "SRST_POLARITY": 1,
                                    "SRST_VALUE": "4'1001"},
                   {"CLK": "\\clk", "EN": "\\en", "SRST": "\\rst", "D": "\\d", "Q": "\\q1"})
    cells += _cell("sdffe", "f2", {"WIDTH": 4, "CLK_POLARITY": 1, "EN_POLARITY": 1, "SRST_POLARITY": 0,
                                   "SRST_VALUE": "4'0110"},
                   {"CLK": "\\clk", "EN": "\\en", "SRST": "\\rst", "D": "\\q1", "Q": "\\q2"})
    cells += _cell("adffe", "f3", {"WIDTH": 3, "CLK_POLARITY": 0, "EN_POLARITY": 1, "ARST_POLARITY": 0,
                                   "ARST_VALUE": "3'101"},
                   {"CLK": "\\clk", "EN": "\\en", "ARST": "\\arst", "D": "\\d [3:1]", "Q": "\\q3"})
    cells += _cell("dffe", "f4", {"WIDTH": 4, "CLK_POLARITY": 1, "EN_POLARITY": 1},
                   {"CLK": "\\clk", "EN": "\\d [0]", "D": "\\q2", "Q": "\\q4"})
    cells += _cell("dff", "f5", {"WIDTH": 4, "CLK_POLARITY": 1},
                   {"CLK": "\\clk", "D": "{ \\q4 [2:0] \\q3 [2] }", "Q": "\\q5"})
    ports = [("input", "clk", 1), ("input", "rst", 1), ("input", "arst", 1), ("input", "en", 1),
             ("input", "d", 4), ("output", "q2", 4), ("output", "q3", 3), ("output", "q5", 4)]
    return _rtlil_module("ffs", ports, cells, wires=[("q1", 4), ("q4", 4)])


RTLIL_CORPUS = {"cells": _rtlil_cells, "ffs": _rtlil_ffs}


# -- checks -----------------------------------------------------------------------------------------

def lint(path):
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "--quiet-stats", path.name], cwd=path.parent,
                          env=verilator_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), \
        f"verilator -Wall on {path}:\n{proc.stdout}{proc.stderr}"


_SEQ = re.compile(r"cell \$\w*dff")
_FF_TYPES = ("$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe")


def _param(value):
    return value if isinstance(value, int) else int(value.replace("x", "0").replace("z", "0"), 2)


def _cut_module(module, names, free):
    """``module`` (Yosys JSON) cut at the nets of ``names`` ({name: bits}) for a one-step check.

    Every reader of a named net reads the new input ``cut_<name>`` instead; the output
    ``next_<name>`` is what the design drives onto it: a combinational result, or a register's
    next state (clock enable and synchronous reset as multiplexers over its current value, the
    cut input). ``clk_<name>`` / ``arst_<name>`` expose the clock (inverted for negative edges)
    and asynchronous reset of register bits. Register bits outside ``names`` read ``free`` inputs
    ({name: bits}), so nothing loops. The result has no flip-flops: a SAT problem made of one
    small cone per named net.
    """
    ids = [b for c in module["cells"].values() for bits in c["connections"].values() for b in bits]
    ids += [b for p in module["ports"].values() for b in p["bits"]]
    counter = iter(range(max([b for b in ids if isinstance(b, int)] + [1]) + 1, 1 << 30))
    fresh = lambda n: [next(counter) for _ in range(n)]
    ports = {}
    cut = {}
    for prefix, group in (("cut_", names), ("free_", free)):
        for name, bits in group.items():
            new = fresh(len(bits))
            ports[prefix + name] = {"direction": "input", "bits": new}
            cut.update((b, n) for b, n in zip(bits, new) if isinstance(b, int))
    remap = lambda bits: [cut.get(b, b) for b in bits]
    cells, nxt, ctl = {}, {}, {}

    def add(kind, params, conns, dirs):
        cells[f"$cut{len(cells)}"] = {"type": kind, "parameters": params, "attributes": {},
                                      "port_directions": dirs, "connections": conns}

    def mux(a, b, s, pol=1):
        y = fresh(len(a))
        if not pol:
            a, b = b, a
        add("$mux", {"WIDTH": len(a)}, {"A": a, "B": b, "S": s, "Y": y},
            {"A": "input", "B": "input", "S": "input", "Y": "output"})
        return y

    def polar(bit, pol):
        if pol:
            return bit
        y = fresh(1)
        add("$not", {"A_SIGNED": 0, "A_WIDTH": 1, "Y_WIDTH": 1}, {"A": [bit], "Y": y},
            {"A": "input", "Y": "output"})
        return y[0]

    for name, cell in module["cells"].items():
        conns = {p: (remap(b) if cell["port_directions"][p] == "input" else b)
                 for p, b in cell["connections"].items()}
        kind, prm = cell["type"], {k: _param(v) for k, v in cell["parameters"].items()}
        if kind not in _FF_TYPES:
            cells[name] = dict(cell, connections=conns)
            continue
        q = cell["connections"]["Q"]
        cur, d = remap(q), conns["D"]
        value = [("1" if (prm.get("SRST_VALUE", prm.get("ARST_VALUE", 0)) >> i) & 1 else "0")
                 for i in range(len(q))]
        if kind in ("$dffe", "$sdffe", "$adffe"):
            d = mux(cur, d, conns["EN"], prm["EN_POLARITY"])
        if kind in ("$sdff", "$sdffe", "$sdffce"):
            d = mux(d, value, conns["SRST"], prm["SRST_POLARITY"])
        if kind == "$sdffce":
            d = mux(cur, d, conns["EN"], prm["EN_POLARITY"])
        if kind in ("$adff", "$adffe"):
            d = mux(d, value, conns["ARST"], prm["ARST_POLARITY"])
        clk = polar(conns["CLK"][0], prm["CLK_POLARITY"])
        arst = polar(conns["ARST"][0], prm["ARST_POLARITY"]) if "ARST" in conns else "0"
        for b, n in zip(q, d):
            nxt[b] = n
            ctl[b] = (clk, arst)
    for name, p in module["ports"].items():
        ports[name] = dict(p, bits=p["bits"] if p["direction"] == "input" else remap(p["bits"]))
    for name, bits in names.items():
        ports["next_" + name] = {"direction": "output", "bits": [nxt.get(b, b) for b in bits]}
        if any(b in ctl for b in bits):
            ports["clk_" + name] = {"direction": "output", "bits": [ctl.get(b, ("0",))[0] for b in bits]}
            ports["arst_" + name] = {"direction": "output",
                                     "bits": [ctl.get(b, (0, "0"))[1] for b in bits]}
    return {"ports": ports, "cells": cells, "netnames": {}}


def _ff_bits(module):
    return [b for c in module["cells"].values() if c["type"] in _FF_TYPES for b in c["connections"]["Q"]]


def prove_equivalent(rtlil_text, netlist, wire_bits, verilog_text, top, workdir, direct=True, cut=True):
    """Prove the Verilog (gate) equivalent with Yosys; raise ToolError if it is not.

    1. With ``cut``, against the netlist it was written from, completely: every wire of the
       Verilog is paired with the netlist bits it carries (``wire_bits``), both sides are cut at
       those wires and their registers become next-state functions (:func:`_cut_module`), and
       ``equiv_simple`` proves every cut point, register next state and output equal, each from
       its own small cone (an undefined netlist result, e.g. division by zero, matches anything);
       ``equiv_status -assert`` fails unless all are proven. By induction over the cut points and
       over time, the two are equivalent from any common state.
    2. With ``direct``, against the original RTLIL (Amaranth's, before any Yosys optimization) as a
       plain miter: exhaustive for combinational designs, from the all-zero state over
       ``SEQ_DEPTH`` cycles (inputs and reset free) for clocked ones. This is SAT work on two
       differently optimized netlists: seconds for a real unit, hence opt-in for those.
    """
    workdir = Path(workdir)
    (workdir / "gate.v").write_text(verilog_text)
    script = _cut_script(netlist, wire_bits, top, workdir) if cut else []
    if direct:
        (workdir / "gold.il").write_text(rtlil_text)
        script += ["read_rtlil gold.il", f"hierarchy -check -top {top}", "proc", "flatten",
                   "attrmap -remove init", f"rename {top} rtlil", "read_verilog gate.v", "proc",
                   f"rename {top} verilog", "async2sync rtlil verilog",
                   "miter -equiv -flatten -make_assert rtlil verilog miter"]
        if _SEQ.search(rtlil_text):
            script.append(f"sat -verify -prove-asserts -set-init-zero -seq {SEQ_DEPTH} miter")
        else:
            script.append("sat -verify -prove-asserts miter")
    (workdir / "equiv.ys").write_text("\n".join(script) + "\n")
    run_yosys(["-q", "-s", "equiv.ys"], cwd=workdir, log="equiv.log", step=f"equivalence of {top}")


def _cut_script(netlist, wire_bits, top, workdir):
    """Write the cut netlist and the cut Verilog (read back by Yosys); the Yosys commands to
    prove them equal."""
    (workdir / "gate.ys").write_text("read_verilog gate.v\nproc -noopt\nwrite_json gate.json\n")
    run_yosys(["-q", "-s", "gate.ys"], cwd=workdir, log="gate.log", step=f"reading back {top}")
    gate = json.loads((workdir / "gate.json").read_text())["modules"][top]
    gold = netlist["modules"][top]
    names, gate_names = {}, {}
    for name, bits in wire_bits.items():        # the bits the netlist has a net for
        keep = [i for i, b in enumerate(bits) if b is not None]
        if keep:
            names[name] = [bits[i] for i in keep]
            gate_names[name] = [gate["netnames"][name]["bits"][i] for i in keep]
    paired = {b for bits in names.values() for b in bits}
    unpaired = [b for b in _ff_bits(gold) if isinstance(b, int) and b not in paired]
    free_gold = {"gold": unpaired} if unpaired else {}   # register bits the Verilog left out
    paired = {b for bits in gate_names.values() for b in bits}
    assert all(b in paired for b in _ff_bits(gate)), "a register of the Verilog has no paired name"
    gold_cut = _cut_module(gold, names, free_gold)
    gate_cut = _cut_module(gate, gate_names, {})
    for name, p in gold_cut["ports"].items():
        if name.startswith("free_"):
            gate_cut["ports"][name] = {"direction": "input",
                                       "bits": list(range(1 << 29, (1 << 29) + len(p["bits"])))}
    (workdir / "gold_cut.json").write_text(json.dumps({"modules": {"gold": gold_cut}}))
    (workdir / "gate_cut.json").write_text(json.dumps({"modules": {"gate": gate_cut}}))
    # equiv_make pairs the ports by name; equiv_simple then proves each pair with its own small
    # SAT problem (one big miter over the same cones is far slower). Two-valued first; what is
    # left is retried with undefined values modelled, where an undefined netlist result (division
    # by zero) matches anything.
    return ["read_json gold_cut.json", "read_json gate_cut.json", "equiv_make gold gate cut_equiv",
            "equiv_simple cut_equiv", "equiv_simple -undef cut_equiv", "equiv_status -assert cut_equiv"]


def check_text(text):
    assert "Yosys" not in text and "/*" not in text and "(*" not in text
    assert "initial" not in text and "lint_off" not in text
    assert not re.search(r"(/work|/tmp|/home|/usr|[A-Za-z]:\\)", text)
    assert text.endswith("endmodule\n")


def check_design(rtlil_text, top, tmp_path, direct=True):
    netlist = yosys_netlist(rtlil_text, top)
    wire_bits = {}
    text = netlist_to_verilog(netlist, top, ["test"], port_order(rtlil_text, top), wire_bits=wire_bits)
    assert rtlil_to_verilog(rtlil_text, top, ["test"]) == text
    check_text(text)
    path = tmp_path / f"{top}.v"
    path.write_text(text)
    lint(path)
    prove_equivalent(rtlil_text, netlist, wire_bits, text, top, tmp_path, direct)
    return text


# -- tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(AMARANTH_CORPUS))
def test_amaranth_corpus(name, tmp_path):
    check_design(to_rtlil(AMARANTH_CORPUS[name](), name), name, tmp_path)


@pytest.mark.parametrize("name", sorted(RTLIL_CORPUS))
def test_rtlil_corpus(name, tmp_path):
    check_design(RTLIL_CORPUS[name](), name, tmp_path)


#: Configurations beyond :func:`_unit_cases`' variations: every mode and port set of the units.
EXTRA_UNIT_CASES = [
    ("stochastic_round", {"rand_source": "port"}),
    ("fp8_fma", {"rounding": "sr", "rand_source": "lfsr"}),
    ("accumulator", {"lanes": 4, "chunk": 8, "front": "mac4", "rounding": "sr", "x_signed": False}),
    ("mac4", {"mode": "acc"}),
    ("mac4", {"mode": "acc", "rounding": "sr", "stages": 2}),
    ("mac4", {"mode": "int"}),
    ("block_dot", {"a_format": "mxfp4_e2m1", "block": 32, "lanes": 16}),
    ("accumulator", {"front": "block", "a_format": "mxfp4_e2m1/8", "acc_format": "fp32", "chunk": 16}),
]


def _unit_cases():
    """Each registered unit with its defaults, two register stages and another rounding mode, and
    :data:`EXTRA_UNIT_CASES`."""
    cases = []
    for unit_name, unit in sorted(UNITS.items()):
        variations = [{}]
        names = {p.name: p for p in unit.params}
        if "stages" in names:
            variations.append({"stages": 2})
        rounding = names.get("rounding")
        if rounding is not None and rounding.choices:
            other = "sr" if rounding.default != "sr" else "rne"
            if other in rounding.choices:
                variations.append({"rounding": other})
        cases += [(unit_name, params) for params in variations]
    cases += EXTRA_UNIT_CASES
    return [pytest.param(name, params, id=f"{name}-" + ("-".join(f"{k}={v}" for k, v in params.items())
                                                        or "defaults")) for name, params in cases]


def _build_unit(unit_name, params):
    try:
        return to_rtlil(UNITS[unit_name].build(**params), unit_name)
    except ValueError as e:  # a case list that generates invalid parameters is a test bug
        pytest.fail(f"parameters not valid for {unit_name}: {e}")


@pytest.mark.parametrize("unit_name,params", _unit_cases())
def test_units(unit_name, params, tmp_path):
    """Lint and complete equivalence with the netlist (not the direct RTLIL miter: see below)."""
    check_design(_build_unit(unit_name, params), unit_name, tmp_path, direct=False)


@pytest.mark.long
@pytest.mark.parametrize("unit_name,params", _unit_cases())
def test_units_against_rtlil(unit_name, params, tmp_path):
    """The direct miter against Amaranth's RTLIL for the units: seconds of SAT each, so opt-in."""
    rtlil_text = _build_unit(unit_name, params)
    text = rtlil_to_verilog(rtlil_text, unit_name)
    prove_equivalent(rtlil_text, None, {}, text, unit_name, tmp_path, direct=True, cut=False)


_EXPORT_ALL = """\
import sys
from pathlib import Path
from hw.units import UNITS
from hw.export import to_verilog
assert Path(to_verilog.__code__.co_filename).resolve().is_relative_to(Path(sys.argv[1]).resolve())
for name in sorted(UNITS):
    sys.stdout.write(to_verilog(UNITS[name].build(), name, ["unit " + name]))
"""


def test_export_deterministic(tmp_path):
    """Exports of every unit are identical in-process, from a fresh process (other hash seed) and
    from a copy of the package at another path."""
    texts = []
    for name in sorted(UNITS):
        text = to_verilog(UNITS[name].build(), name, ["unit " + name])
        assert text.startswith("// Generated by lowbit ") and f"\n// unit {name}\nmodule {name}(" in text
        check_text(text)
        texts.append(text)
    assert to_verilog(UNITS["mac4"].build(), "mac4", ["unit mac4"]) == texts[sorted(UNITS).index("mac4")]
    checkout = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(ROOT / "hw", checkout / "hw", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "golden", checkout / "golden", ignore=shutil.ignore_patterns("__pycache__"))
    for path, seed in ((ROOT, "12345"), (checkout, "54321")):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(path))
        other = subprocess.run([sys.executable, "-c", _EXPORT_ALL, str(path)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, check=True).stdout
        assert other == "".join(texts), path


def test_ports_in_declaration_order():
    """Ports come in Amaranth's order (its first port is numbered 0, which Yosys would move last),
    and keep their names: ``rand``, a SystemVerilog keyword, is escaped."""
    text = to_verilog(UNITS["fp8_fma"].build(rounding="sr"), "fp8_fma")
    assert "\nmodule fp8_fma(a, b, c, \\rand , y);\n" in text
    assert "  input [7:0] \\rand ;\n" in text
    arith = Arith()
    assert port_order(to_rtlil(arith, "arith"), "arith") == list(arith.signature.members)


def test_unused_inputs_named(tmp_path):
    """Input bits the design never reads are named once, in a wire Verilator's -Wall accepts."""
    text = rtlil_to_verilog(to_rtlil(Passthrough(), "pt"), "pt")
    assert "  assign unused_inputs = ^ { unused_in, a[7:6], a[3:1] };\n" in text
    assert "  assign y = { 2'h1, a[0], a[0], a[5:4] };\n" in text and "  assign k = 4'h9;\n" in text
    path = tmp_path / "pt.v"
    path.write_text(text.replace("unused_inputs", "ignored_inputs"))
    with pytest.raises(AssertionError, match="UNUSEDSIGNAL"):   # the name is what keeps lint quiet
        lint(path)


def test_unread_results_named():
    """Computed bits nothing reads land in ``unused_*`` wires: the unread bits of a shared sum, the
    high bits of a right shift computed at its operand's width."""
    text = rtlil_to_verilog(to_rtlil(Arith(), "arith"), "arith")
    assert re.search(r"\n  assign \{ carry, unused_\w+, [^}]*\} = ", text), text
    text = rtlil_to_verilog(_rtlil_cells(), "cells")
    assert re.search(r"\n  assign \{ unused_shr_\w+, y2 \} = a >> s;\n", text), text


_UNSUPPORTED = {
    "signed $divfloor": lambda: to_rtlil(SignedDivision(), "sdiv"),
    "$shift by a signed amount": lambda: _rtlil_module(
        "sh", [("input", "a", 8), ("input", "b", 3), ("output", "y", 8)],
        _binop("shift", "sh", "\\a", "\\b", "\\y", 8, 3, 8, False, True)),
    "type $bwmux": lambda: _rtlil_module(
        "bw", [("input", "a", 3), ("input", "b", 3), ("input", "s", 3), ("output", "y", 3)],
        _cell("bwmux", "bw", {"WIDTH": 3}, {"A": "\\a", "B": "\\b", "S": "\\s", "Y": "\\y"})),
}


@pytest.mark.parametrize("what", sorted(_UNSUPPORTED))
def test_rejects_unsupported(what):
    rtlil_text = _UNSUPPORTED[what]()
    top = re.search(r"^module \\(\S+)", rtlil_text, re.M)[1]
    with pytest.raises(VerilogExportError) as info:
        rtlil_to_verilog(rtlil_text, top)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    assert re.match(r"cell \S+: ", message) and what in message and "not supported" in message


def test_rejects_bad_module_name():
    with pytest.raises(ValueError, match="module name"):
        to_verilog(None, "bad name")   # the name is checked before anything is built
    with pytest.raises(VerilogExportError, match="not in the netlist"):
        netlist_to_verilog({"modules": {}}, "missing")
