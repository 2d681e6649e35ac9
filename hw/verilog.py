"""Verilog export: Yosys writes the Verilog, after a small pass over its JSON netlist.

Yosys lowers Amaranth's RTLIL to a word-level netlist (:data:`NETLIST_SCRIPT`: ``proc``,
``flatten``, ``opt``, ``wreduce``, ``write_json``). Its ``write_verilog`` alone leaves warnings under
``verilator --lint-only -Wall`` (operands narrower or wider than the result, unread bits, ``init``
values); :func:`lint_clean_netlist` rewrites the netlist so that it leaves none, then
:data:`WRITE_SCRIPT` (``read_json``, ``write_verilog -noattr``) prints it. The pass:

* pads (sign- or zero-extends, as the cell's ``*_SIGNED`` parameters say) or truncates every operand
  to the width the cell computes at, so no expression relies on Verilog's implicit width rules;
  right shifts, ``$div`` and ``$mod`` compute at the widest of their operands and result, so their
  result is widened to that; comparisons and reductions keep one result bit (the others are 0);
* rewrites ``$logic_not`` as ``$eq`` with 0 and gives ``$logic_and``/``$logic_or`` one-bit operands
  (``$reduce_bool``), as Verilator wants; ``$pmux`` becomes a chain of ``$mux`` (Yosys prints it as
  a ``casez`` function whose inputs shadow the ports);
* gives every net one name: a port, else one of Amaranth's names (``rounder.code_mag`` becomes
  ``rounder_code_mag``; a name keeps its bit numbers, e.g. ``wire [15:5]`` when only those bits are
  computed by one cell), else one after the cell computing it (``add_3``). Computed bits nothing
  reads go to wires named ``unused_*``, and input bits the design ignores are named once, in
  ``unused_inputs``: Verilator's default ``--unused-regexp`` (``*unused*``) accepts both without
  pragmas. An output port read inside, or holding constants or copies, is assigned from its own
  wire (``assign y = {...};``);
* drops ``init`` attributes (registers get their value from the reset) and names the cells in
  dependency order, the order ``write_verilog`` prints them in.

The names are chosen here (not by ``rename -unescape``) so that every wire can be paired with the
netlist bits it carries when proving the text equivalent (:func:`lint_clean_netlist`). Ports keep
their names (``rand``, a SystemVerilog keyword, is written ``\\rand ``) and come in the order
Amaranth numbers them (:func:`port_order`). The text depends only on the RTLIL: the Yosys banner
(version, build path) is dropped, and repeated bits are written ``{4{x[7]}}``.

Cell types outside :data:`SUPPORTED` (memories, latches, formal and debug cells, ``$bwmux``...),
signed flooring division and shifts by a signed amount raise :class:`VerilogExportError` naming the
cell.
"""

from __future__ import annotations

import graphlib
import itertools
import json
import re
import tempfile
from pathlib import Path

from .tools import run_yosys

__all__ = ["NETLIST_SCRIPT", "WRITE_SCRIPT", "SUPPORTED", "VerilogExportError", "rtlil_to_verilog",
           "netlist_to_verilog", "lint_clean_netlist", "yosys_netlist", "port_order"]


class VerilogExportError(ValueError):
    """The netlist holds a cell the export does not handle (one-line message)."""


#: Yosys script producing the word-level netlist (``{top}`` is the top module's name).
#: ``opt_clean`` without ``-purge`` keeps Amaranth's names as candidates for wire names.
NETLIST_SCRIPT = """\
read_rtlil design.il
hierarchy -check -top {top}
proc
flatten -noscopeinfo
opt -full
wreduce
opt -full
opt_clean
write_json -noscopeinfo design.json
"""

#: Yosys script printing the rewritten netlist.
WRITE_SCRIPT = """\
read_json clean.json
write_verilog -noattr design.v
"""

_SAME_WIDTH = {"$add", "$sub", "$mul", "$neg", "$pos", "$not", "$and", "$or", "$xor", "$xnor"}
_COMPARE = {"$lt", "$le", "$gt", "$ge", "$eq", "$ne", "$eqx", "$nex"}
_REDUCE = {"$reduce_and", "$reduce_or", "$reduce_xor", "$reduce_xnor", "$reduce_bool"}
_FF = {"$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe"}
#: Cell types the export handles.
SUPPORTED = _SAME_WIDTH | _COMPARE | _REDUCE | _FF | {
    "$shl", "$sshl", "$shr", "$sshr", "$div", "$mod", "$divfloor", "$modfloor", "$logic_not",
    "$logic_and", "$logic_or", "$mux", "$pmux", "$shift", "$shiftx", "$bmux"}


def yosys_netlist(rtlil_text, top):
    """Yosys' JSON netlist (parsed) of ``top`` in ``rtlil_text`` after :data:`NETLIST_SCRIPT`."""
    with tempfile.TemporaryDirectory(prefix="lowbit-verilog-") as tmp:
        Path(tmp, "design.il").write_text(rtlil_text)
        Path(tmp, "netlist.ys").write_text(NETLIST_SCRIPT.format(top=top))
        run_yosys(["-q", "-s", "netlist.ys"], cwd=tmp, log="yosys.log", step="export (yosys)")
        return json.loads(Path(tmp, "design.json").read_text())


def port_order(rtlil_text, top):
    """Port names of module ``top`` in the order of their RTLIL numbers (Amaranth numbers them from
    0, which Yosys reads as "unnumbered", moving that port last)."""
    body = re.search(rf"^module \\{re.escape(top)}\n(.*?)^end$", rtlil_text, re.M | re.S)
    decls = re.findall(r"^\s*wire\b[^\n]*?\b(?:input|output|inout) (\d+)\b[^\n]*?\\(\S+)\s*$",
                       body.group(1) if body else "", re.M)
    return [name for _, name in sorted(decls, key=lambda d: int(d[0]))]


def rtlil_to_verilog(rtlil_text, top, header_lines=()):
    """Lint-clean Verilog of module ``top`` of ``rtlil_text``; ``header_lines`` become ``//`` lines."""
    return netlist_to_verilog(yosys_netlist(rtlil_text, top), top, header_lines,
                              port_order(rtlil_text, top))


def netlist_to_verilog(netlist, top, header_lines=(), ports=None, wire_bits=None):
    """Verilog of module ``top`` of a Yosys JSON netlist, ports in the order ``ports`` (names).

    ``wire_bits``, if a dict, receives :func:`lint_clean_netlist`'s map of wire names to bits.
    """
    module, names = lint_clean_netlist(netlist, top, ports)
    if wire_bits is not None:
        wire_bits.update(names)
    with tempfile.TemporaryDirectory(prefix="lowbit-verilog-") as tmp:
        Path(tmp, "clean.json").write_text(json.dumps({"modules": {top: module}}))
        Path(tmp, "write.ys").write_text(WRITE_SCRIPT)
        run_yosys(["-q", "-s", "write.ys"], cwd=tmp, log="yosys.log", step="export (write_verilog)")
        text = Path(tmp, "design.v").read_text()
    # Yosys' banner names its version and build path: the header replaces it.
    text = re.sub(r"\A/\* Generated by Yosys .*?\*/\n+", "", text)
    # write_verilog spells out repeated bits (sign extensions): { x[7], x[7], x[7] } -> { {3{x[7]}} }.
    text = _REPEAT.sub(lambda m: f"{{{m[0].count(',') + 1}{{{m[1]}}}}}", text)
    text = re.sub(r"\{ (\{\d+\{[^{}]*\}\}) \}", r"\1", text)
    head = "".join(f"// {line}\n" if line else "//\n" for line in header_lines)
    return head + text


_REPEAT = re.compile(r"(?<=[{,] )([A-Za-z_]\w*(?:\[\d+\])?)(?:, \1(?=,| }))(?:, \1(?=,| }))+")


def _int(value):
    return value if isinstance(value, int) else int(value.replace("x", "0").replace("z", "0"), 2)


def _ext(bits, width, signed):
    """``bits`` (LSB first) truncated, or extended with their sign (``signed``) or zeros."""
    fill = bits[-1] if signed and bits else "0"
    return list(bits[:width]) + [fill] * (width - len(bits))


def lint_clean_netlist(netlist, top, ports=None):
    """Rewrite module ``top`` of a Yosys JSON netlist so that ``write_verilog`` prints it lint-clean.

    ``ports`` lists port names in the order wanted (others follow). Returns ``(module, names)``:
    the new JSON module, and ``{name: [netlist bit, ...]}`` for every wire declared and every
    output port, LSB first: the net of ``netlist`` each bit carries, or None for a net the pass
    added (a widened result, a port's copy). Wire names are final: plain Verilog identifiers.
    """
    try:
        src = netlist["modules"][top]
    except KeyError:
        raise VerilogExportError(f"module {top!r} is not in the netlist") from None
    rank = {name: k for k, name in enumerate(ports or ())}
    port_list = sorted(src["ports"].items(), key=lambda p: rank.get(p[0], len(rank)))
    for name, pt in port_list:
        if pt["direction"] not in ("input", "output"):
            raise VerilogExportError(f"port {name}: direction {pt['direction']} is not supported")
    ids = [b for n in [*src["netnames"].values(), *src["ports"].values()] for b in n["bits"]]
    first_new = 1 + max([b for b in ids if isinstance(b, int)], default=0)
    fresh = itertools.count(first_new)
    cells, const = _rewrite_cells(src["cells"], fresh)

    def subst(bits):        # x/z and result bits known to be 0 become constants
        return [const.get(b, b) if isinstance(b, int) else b if b in "01" else "0" for b in bits]

    for t, p, c in cells:
        c.update((port, subst(bits)) for port, bits in c.items() if port not in ("Y", "Q"))
    reads = {b for t, p, c in cells for port, bits in c.items() if port not in ("Y", "Q") for b in bits}

    # An output bit that is a constant, an input or another output bit gets a net of its own,
    # driven by one $buf per port (read_json would connect such bits one by one); so does a whole
    # port read inside (bits of one port computed from others are circular logic to Verilator).
    inputs = [b for _, pt in port_list if pt["direction"] == "input" for b in pt["bits"]]
    seen, port_bits = set(inputs) | reads, {}
    for name, pt in port_list:
        bits = port_bits[name] = list(pt["bits"]) if pt["direction"] == "input" else subst(pt["bits"])
        if pt["direction"] == "output":
            inside = any(b in reads for b in bits)
            copy = [i for i, b in enumerate(bits) if not isinstance(b, int) or b in seen or inside
                    or b in bits[:i]]
            seen.update(bits)
            if copy:
                a = [bits[i] for i in copy]
                for i in copy:
                    bits[i] = next(fresh)
                cells.append(("$buf", {"WIDTH": len(copy)}, {"A": a, "Y": [bits[i] for i in copy]}))
                reads.update(a)
            reads.update(bits)
    labels = {}
    idle = [b for b in inputs if b not in reads]
    if idle:    # input bits nothing reads are named once
        labels[len(cells)] = "unused_inputs"
        cells.append(("$reduce_xor", {"A_SIGNED": 0, "A_WIDTH": len(idle), "Y_WIDTH": 1},
                      {"A": idle, "Y": [next(fresh)]}))

    # Combinational cells in dependency order, then flip-flops (write_verilog sorts cells by name).
    driver = {b: k for k, (t, p, c) in enumerate(cells) for b in c.get("Q", c.get("Y", ()))}
    comb = {k: {driver[b] for port, bits in c.items() if port != "Y" for b in bits
                if b in driver and cells[driver[b]][0] not in _FF}
            for k, (t, p, c) in enumerate(cells) if t not in _FF}
    try:
        order = list(graphlib.TopologicalSorter(comb).static_order())
    except graphlib.CycleError:
        raise VerilogExportError("combinational loop in the netlist") from None
    order += [k for k, cell in enumerate(cells) if cell[0] in _FF]

    netnames, names = _name_nets(src["netnames"], cells, order, port_bits, driver, reads, labels,
                                 first_new)
    module = {
        "ports": {name: {"direction": pt["direction"], "bits": port_bits[name]} for name, pt in port_list},
        "cells": {f"$c{n:06d}": {"type": cells[k][0], "parameters": cells[k][1], "attributes": {},
                                 "connections": cells[k][2]} for n, k in enumerate(order)},
        "netnames": netnames,
    }
    names.update((name, [b if b < first_new else None for b in port_bits[name]])
                 for name, pt in port_list if pt["direction"] == "output")
    return module, names


def _rewrite_cells(src_cells, fresh):
    """The cells as ``(type, parameters, connections)`` with operands at the width each computes
    at; and ``{net: "0"}`` for the result bits that became constants."""
    const, out = {}, []
    for name, cell in src_cells.items():
        t, p, c = cell["type"], dict(cell["parameters"]), dict(cell["connections"])
        if t == "$scopeinfo":
            continue
        if t not in SUPPORTED:
            what = f"instance of {t} (not flattened)" if not t.startswith("$") else f"type {t}"
            raise VerilogExportError(f"cell {name}: {what} is not supported by the Verilog export")
        a_signed = _int(p.get("A_SIGNED", 0))
        signed = a_signed and _int(p.get("B_SIGNED", a_signed))   # binary operators: both signed
        if t in ("$divfloor", "$modfloor"):
            if signed:
                raise VerilogExportError(f"cell {name}: signed {t} (flooring division) is not supported")
            t = "$div" if t == "$divfloor" else "$mod"     # the same for unsigned operands
        if t in ("$shift", "$shiftx"):
            if _int(p["B_SIGNED"]):
                raise VerilogExportError(f"cell {name}: {t} by a signed amount is not supported")
            t = "$shr"          # out of range, $shiftx reads x: zeros here
        if t == "$logic_not":
            t, c["B"], p["B_WIDTH"], p["B_SIGNED"] = "$eq", ["0"] * len(c["A"]), len(c["A"]), 0
        if t == "$pmux":    # a chain of $mux: the last active select wins, as in Yosys' SAT model
            w, y = len(c["A"]), c["A"]
            for k, s in enumerate(c["S"]):
                a, y = y, (c["Y"] if k == len(c["S"]) - 1 else [next(fresh) for _ in range(w)])
                out.append(("$mux", {"WIDTH": w}, {"A": a, "B": c["B"][k * w:(k + 1) * w], "S": [s], "Y": y}))
            continue
        if t in ("$logic_and", "$logic_or"):    # one-bit operands
            for port in "AB":
                if len(c[port]) != 1:
                    y = [next(fresh)]
                    out.append(("$reduce_bool", {"A_SIGNED": 0, "A_WIDTH": len(c[port]), "Y_WIDTH": 1},
                                {"A": c[port], "Y": y}))
                    c[port] = y
                p[port + "_WIDTH"], p[port + "_SIGNED"] = 1, 0
        if t in _SAME_WIDTH or t in ("$shl", "$sshl"):
            # Exact on the result's width: the low bits of a sum or product need only low bits.
            w = len(c["Y"])
            for port in ("AB" if t in _SAME_WIDTH and "B" in c else "A"):
                c[port] = _ext(c[port], w, signed if t in _SAME_WIDTH else a_signed)
                p[port + "_WIDTH"], p[port + "_SIGNED"] = w, 0
        elif t in ("$shr", "$sshr", "$div", "$mod"):
            # Computed at the widest of operands and result: the result widens to that.
            div = t in ("$div", "$mod")
            w = max(len(c["A"]), len(c["Y"]), len(c["B"]) if div else 0)
            for port in ("AB" if div else "A"):
                c[port] = _ext(c[port], w, signed if div else a_signed)
                p[port + "_WIDTH"] = w
            if div:
                p["A_SIGNED"] = p["B_SIGNED"] = int(bool(signed))
            elif t == "$shr":
                p["A_SIGNED"] = 0
            c["Y"] = c["Y"] + [next(fresh) for _ in range(w - len(c["Y"]))]
            p["Y_WIDTH"] = w
        elif t in _COMPARE:
            w = max(len(c["A"]), len(c["B"]))
            c["A"], c["B"] = _ext(c["A"], w, signed), _ext(c["B"], w, signed)
            relational = int(bool(signed) and t in ("$lt", "$le", "$gt", "$ge"))
            p.update(A_WIDTH=w, B_WIDTH=w, A_SIGNED=relational, B_SIGNED=relational)
        if t in _COMPARE or t in _REDUCE or t in ("$logic_and", "$logic_or"):
            const.update((b, "0") for b in c["Y"][1:] if isinstance(b, int))
            c["Y"], p["Y_WIDTH"] = c["Y"][:1], 1
        out.append((t, p, c))
    return out, const


def _name_nets(src_names, cells, order, port_bits, driver, reads, labels, first_new):
    """One name per net: ports, then Amaranth's names, then names after the cells (``unused_*``
    for bits nothing reads). Returns the JSON netnames and ``{name: [netlist bit or None]}``."""
    taken, home = set(port_bits), {b for bits in port_bits.values() for b in bits}
    netnames, names = {}, {}

    def add(hint, bits, lo):
        base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", hint)).strip("_") or "n"
        base = name = "n" + base if base[0].isdigit() else base
        n = 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        netnames[name] = {"bits": bits, "attributes": {}, **({"offset": lo} if lo else {})}
        home.update(bits)
        names[name] = [b if b < first_new else None for b in bits]

    # Amaranth's names, narrowest (the most specific: a field before its struct) and shallowest
    # first, each on its longest run of bits computed by one cell (bits of several cells could
    # depend on each other, which Verilator reports as circular logic, UNOPTFLAT).
    public = [(n, v["bits"]) for n, v in src_names.items() if not v.get("hide_name")]
    for name, bits in sorted(public, key=lambda nb: (len(nb[1]), nb[0].count("."), nb[0])):
        ok = [isinstance(b, int) and b in driver and b in reads and b not in home and bits.count(b) == 1
              for b in bits]
        best, i = (0, 0), 0
        while i < len(bits):
            j = i
            while j < len(bits) and ok[j] and driver[bits[j]] == driver[bits[i]]:
                j += 1
            best = max(best, (i, j), key=lambda r: r[1] - r[0])
            i = max(j, i + 1)
        if best[1] > best[0]:
            add(name, bits[best[0]:best[1]], best[0])
    counter = {}
    for k in order:
        t, p, c = cells[k]
        short = t.lstrip("$")
        counter[short] = counter.get(short, 0) + 1
        label = labels.get(k, f"{short}_{counter[short]}")
        y, runs = c.get("Q", c.get("Y")), []
        for i, b in enumerate(y):
            kind = None if b in home else ("" if b in reads or label.startswith("unused") else "unused_")
            if kind is not None and runs and runs[-1][0] == kind and runs[-1][2] == i:
                runs[-1][2] = i + 1
            elif kind is not None:
                runs.append([kind, i, i + 1])
        for kind, lo, hi in runs:
            several = sum(r[0] == kind for r in runs) > 1
            add(f"{kind}{label}_{lo}" if several else f"{kind}{label}", y[lo:hi], lo)
    return netnames, names
