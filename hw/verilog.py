"""A lint-clean Verilog-2005 writer working from Yosys' JSON netlist.

Yosys' own ``write_verilog`` leans on Verilog's implicit width rules (operands silently extended or
truncated), leaves wires with unused bits and writes initial values, so its output is not clean under
``verilator --lint-only -Wall``. This module runs Yosys only up to a word-level netlist
(:data:`YOSYS_SCRIPT`: ``proc``, ``flatten``, ``opt``, ``wreduce``, ``write_json``) and prints that
netlist itself, following the Yosys cell library semantics (``techlibs/common/simlib.v``) exactly.

Shape of the output (:func:`rtlil_to_verilog`):

* One flat module; ports in the netlist's order (Amaranth's), each ``input wire`` or
  ``output wire``; every internal ``wire``/``reg`` declared with its range (registers always get
  an internal ``reg``; an output port reads it).
* Every cell becomes one ``assign`` whose operands are extended *explicitly* to the width the cell
  computes at: sign extension (``{{4{a[7]}}, a}``) where the cell's ``A_SIGNED``/``B_SIGNED`` say so
  (both must be signed for binary operators, as in Yosys), zero extension (``{4'h0, a}``) otherwise,
  and truncation by selecting bits. Comparisons are written on equal-width operands (``$signed()``
  on both when signed); right shifts (``$shr``, ``$sshr``, ``$shift``, ``$shiftx``), ``$div`` and
  ``$mod`` compute at ``max`` of their widths as Yosys does; ``$shiftx`` reads zeros out of range
  and ``$pmux`` lets the last active select win (both undefined in Yosys; these choices match
  Yosys' SAT model).
* Only bits that something reads are computed. Bitwise cells (``$and``, ``$mux``, ``$pmux``,
  flip-flops...) are written for their used bits only; arithmetic keeps the low bits it needs
  (``$add``, ``$sub``, ``$mul``, ``$neg``, ``$shl`` are exact on a truncated width). Bits that must
  still be computed but are never read (a carry out, the low bit of a sum) land in wires named
  ``unused_*``, e.g. ``assign {sum, unused_add_3} = {4'h0, a} + {4'h0, b};`` -- Verilator's
  default ``--unused-regexp`` (``*unused*``, the lowRISC idiom) accepts those without pragmas.
* Input-port bits the design ignores are genuinely unused; they are named once, in
  ``wire unused_inputs = ^{...};``, so the lint stays clean without waivers.
* Flip-flops (``$dff``, ``$dffe``, ``$sdff``, ``$sdffe``, ``$sdffce``, ``$adff``, ``$adffe``) are
  grouped by clock/reset/enable into ``always`` blocks with non-blocking assignments. No
  ``initial`` values: registers get their value from the design's reset.
* Names: Amaranth's public wire names (``rounder.code_mag`` becomes ``rounder_code_mag``) where a
  name covers bits that are computed (a wire keeps the name's bit numbers, e.g. ``wire [15:5]``
  when only those bits are computed), else ``<cell type>_<n>`` (``add_3``, ``mux_12``). All names
  are plain identifiers: SystemVerilog keywords get a ``_`` appended, collisions a ``_<n>``
  suffix, allocated in a fixed order, so the text is deterministic (ports keep their names).

Rejected cell types (:class:`VerilogWriterError` naming the cell): memories, latches, async-load or
set/reset flip-flops, ``$demux``, ``$lut``/``$sop``, ``$pow``, signed ``$divfloor``/``$modfloor``,
formal and debug cells (``$print``, ``$check``, ``$assert``...).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .tools import run_yosys

__all__ = ["YOSYS_SCRIPT", "VerilogWriterError", "rtlil_to_verilog", "netlist_to_verilog",
           "yosys_netlist"]


class VerilogWriterError(ValueError):
    """The netlist holds something this writer does not print (one-line message)."""


#: Yosys script producing the word-level netlist (``{top}`` is the top module's name).
#: ``opt_clean`` without ``-purge`` keeps Amaranth's public names as candidates for wire names.
YOSYS_SCRIPT = """\
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


def yosys_netlist(rtlil_text, top):
    """Yosys' JSON netlist (parsed) of ``top`` in ``rtlil_text`` after :data:`YOSYS_SCRIPT`."""
    with tempfile.TemporaryDirectory(prefix="lowbit-verilog-") as tmp:
        Path(tmp, "design.il").write_text(rtlil_text)
        Path(tmp, "export.ys").write_text(YOSYS_SCRIPT.format(top=top))
        run_yosys(["-q", "-s", "export.ys"], cwd=tmp, log="yosys.log", step="export (yosys)")
        return json.loads(Path(tmp, "design.json").read_text())


def rtlil_to_verilog(rtlil_text, top, header_lines=()):
    """Lint-clean Verilog of module ``top`` of ``rtlil_text``; ``header_lines`` become ``//`` lines."""
    return netlist_to_verilog(yosys_netlist(rtlil_text, top), top, header_lines)


# --------------------------------------------------------------------------------------------------
# Netlist model

_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before
begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class
clocking cmos config const constraint context continue cover covergroup coverpoint cross deassign
default defparam design disable dist do edge else end endcase endchecker endclass endclocking
endconfig endfunction endgenerate endgroup endinterface endmodule endpackage endprimitive endprogram
endproperty endspecify endsequence endtable endtask enum event eventually expect export extends extern
final first_match for force foreach forever fork forkjoin function generate genvar global highz0
highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir include initial inout
input inside instance int integer interconnect interface intersect join join_any join_none large let
liblist library local localparam logic longint macromodule matches medium modport module nand negedge
nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or output package packed
parameter pmos posedge primitive priority program property protected pull0 pull1 pulldown pullup
pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence rcmos real realtime ref
reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0 rtranif1 s_always s_eventually
s_nexttime s_until s_until_with scalared sequence shortint shortreal showcancelled signed small soft
solve specify specparam static string strong strong0 strong1 struct super supply0 supply1
sync_accept_on sync_reject_on table tagged task this throughout time timeprecision timeunit tran
tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef union unique unique0 unsigned until
until_with untyped use uwire var vectored virtual void wait wait_order wand weak weak0 weak1 while
wildcard wire with within wor xnor xor
""".split())

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_FF_TYPES = {"$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe"}
_ALIAS_TYPES = {"$pos", "$buf", "$slice", "$concat"}
_IGNORED_TYPES = {"$scopeinfo"}
_BITWISE_TYPES = {"$and", "$or", "$xor", "$xnor", "$not", "$bweqx", "$mux", "$pmux", "$bwmux", "$bmux"}
_COMPARE_TYPES = {"$lt", "$le", "$gt", "$ge", "$eq", "$ne", "$eqx", "$nex"}
_BOOL_TYPES = {"$reduce_and", "$reduce_or", "$reduce_xor", "$reduce_xnor", "$reduce_bool", "$logic_not",
               "$logic_and", "$logic_or"}
_ARITH_TYPES = {"$add", "$sub", "$mul", "$neg", "$shl", "$sshl", "$shr", "$sshr", "$shift", "$shiftx",
                "$div", "$mod", "$divfloor", "$modfloor"}
_SUPPORTED = _FF_TYPES | _ALIAS_TYPES | _IGNORED_TYPES | _BITWISE_TYPES | _COMPARE_TYPES | _BOOL_TYPES \
    | _ARITH_TYPES


def _param(value):
    """A JSON parameter as an int (binary strings; ``x``/``z`` bits read as 0)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text and set(text) <= set("01xz"):
        return int(text.replace("x", "0").replace("z", "0"), 2)
    raise VerilogWriterError(f"unexpected parameter value {value!r}")


def _param_bits(value, width):
    """A constant parameter as a list of ``'0'``/``'1'`` bits, LSB first, of ``width`` bits."""
    if isinstance(value, int):
        return ["1" if (value >> i) & 1 else "0" for i in range(width)]
    text = value.strip()
    bits = ["1" if c == "1" else "0" for c in reversed(text)]
    return (bits + ["0"] * width)[:width]


def _ext(bits, width, signed):
    """``bits`` truncated or extended (sign when ``signed``, else zero) to ``width``."""
    bits = list(bits)
    if len(bits) >= width:
        return bits[:width]
    fill = bits[-1] if signed and bits else "0"
    return bits + [fill] * (width - len(bits))


@dataclass
class _Cell:
    index: int
    name: str
    type: str
    params: dict
    conns: dict
    dirs: dict

    def p(self, key, default=None):
        if key not in self.params:
            if default is None:
                raise VerilogWriterError(f"cell {self.name} ({self.type}) lacks parameter {key}")
            return default
        return _param(self.params[key])


@dataclass
class _Plan:
    """How one cell is printed, for the output bits in use.

    ``out[i]`` is the net computed at result position ``i`` (``None`` for a position computed but
    not connected). ``operands`` maps names to bit lists; ``expr`` formats the expression from the
    operands' Verilog text (comb cells). Flip-flops carry ``ff`` (control info) instead.
    """

    cell: _Cell
    out: list
    operands: dict
    expr: object = None
    ff: dict = None
    order: int = 0                               # statement position
    unused: dict = field(default_factory=dict)   # position -> (unused_* wire, index)

    def refs(self):
        for bits in self.operands.values():
            yield from bits


@dataclass
class _Wire:
    name: str          # Verilog token
    msb: int
    lsb: int
    is_reg: bool = False

    def decl_range(self):
        if self.msb == self.lsb == 0:
            return ""
        return f"[{self.msb}:{self.lsb}] "


@dataclass
class _Names:
    """Deterministic allocator of plain identifiers."""

    taken: set = field(default_factory=set)

    def reserve(self, token):
        self.taken.add(token)

    def fresh(self, hint):
        base = re.sub(r"[^A-Za-z0-9_]+", "_", hint).strip("_") or "n"
        base = re.sub(r"_+", "_", base)
        if base[0].isdigit():
            base = "n" + base
        if base in _KEYWORDS:
            base += "_"
        cand, k = base, 0
        while cand in self.taken or cand in _KEYWORDS:
            k += 1
            cand = f"{base}_{k}"
        self.taken.add(cand)
        return cand


def _port_token(name):
    if _PLAIN.match(name) and name not in _KEYWORDS:
        return name
    return "\\" + name + " "


# --------------------------------------------------------------------------------------------------
# Cell semantics: one planner per cell type, given which result positions are read.


def _positions(mask):
    return [i for i, u in enumerate(mask) if u]


def _pick(bits, pos):
    return [bits[i] for i in pos]


def _plan_cell(cell, ybits, mask):
    """The :class:`_Plan` of ``cell`` whose result bits ``ybits`` are read where ``mask`` is true."""
    t, c = cell.type, cell.conns
    pos = _positions(mask)
    if not pos:
        return None
    if t in _FF_TYPES:
        return _plan_ff(cell, ybits, pos)
    A, B = c.get("A", []), c.get("B", [])
    if t in _BITWISE_TYPES:
        return _plan_bitwise(cell, ybits, pos)
    if t in ("$add", "$sub", "$mul", "$neg", "$shl", "$sshl"):
        # Exact on the low bits: compute at the width the highest read bit needs.
        w = pos[-1] + 1
        ops = {}
        if t == "$neg":
            ops["A"] = _ext(A, w, cell.p("A_SIGNED"))
            expr = lambda r: f"-{r['A']}"
        elif t in ("$shl", "$sshl"):
            ops["A"] = _ext(A, w, cell.p("A_SIGNED"))
            ops["B"] = list(B)
            expr = lambda r: f"{r['A']} << {r['B']}"
        else:
            sgn = cell.p("A_SIGNED") and cell.p("B_SIGNED")
            ops["A"], ops["B"] = _ext(A, w, sgn), _ext(B, w, sgn)
            op = {"$add": "+", "$sub": "-", "$mul": "*"}[t]
            expr = lambda r, op=op: f"{r['A']} {op} {r['B']}"
        return _Plan(cell, list(ybits[:w]), ops, expr)
    if t in _COMPARE_TYPES:
        sgn = cell.p("A_SIGNED") and cell.p("B_SIGNED")
        w = max(len(A), len(B))
        ops = {"A": _ext(A, w, sgn), "B": _ext(B, w, sgn)}
        op = {"$lt": "<", "$le": "<=", "$gt": ">", "$ge": ">=", "$eq": "==", "$ne": "!=",
              "$eqx": "==", "$nex": "!="}[t]
        if sgn and op not in ("==", "!="):
            expr = lambda r, op=op: f"$signed({r['A']}) {op} $signed({r['B']})"
        else:
            expr = lambda r, op=op: f"{r['A']} {op} {r['B']}"
        return _Plan(cell, ybits[:1], ops, expr)
    if t in ("$reduce_and", "$reduce_or", "$reduce_xor", "$reduce_xnor", "$reduce_bool", "$logic_not"):
        _nonempty(cell, A)
        op = {"$reduce_and": "&", "$reduce_or": "|", "$reduce_xor": "^", "$reduce_xnor": "~^",
              "$reduce_bool": "|", "$logic_not": "~|"}[t]
        return _Plan(cell, ybits[:1], {"A": list(A)}, lambda r, op=op: f"{op}{r['A']}")
    if t in ("$logic_and", "$logic_or"):
        _nonempty(cell, A)
        _nonempty(cell, B)
        op = "&" if t == "$logic_and" else "|"
        return _Plan(cell, ybits[:1], {"A": list(A), "B": list(B)},
                     lambda r, op=op: f"(|{r['A']}) {op} (|{r['B']})")
    if t in ("$shr", "$sshr", "$shift", "$shiftx"):
        w = max(len(A), len(ybits))
        a_signed = cell.p("A_SIGNED") and t != "$shiftx"
        ops = {"A": _ext(A, w, a_signed), "B": list(B)}
        if t == "$sshr" and a_signed:
            right = lambda r: f"$signed({r['A']}) >>> {r['B']}"
        else:
            right = lambda r: f"{r['A']} >> {r['B']}"
        expr = right
        if t in ("$shift", "$shiftx") and cell.p("B_SIGNED"):
            # A negative amount shifts left (``$shiftx``: reads below bit 0, undefined: zeros).
            _nonempty(cell, B)
            ops["N"] = [B[-1]]
            expr = lambda r: f"{r['N']} ? {r['A']} << -{r['B']} : {right(r)}"
        return _Plan(cell, list(ybits) + [None] * (w - len(ybits)), ops, expr)
    if t in ("$div", "$mod", "$divfloor", "$modfloor"):
        sgn = cell.p("A_SIGNED") and cell.p("B_SIGNED")
        if sgn and t in ("$divfloor", "$modfloor"):
            raise VerilogWriterError(f"cell {cell.name}: signed {t} (flooring division) is not supported")
        w = max(len(A), len(B), len(ybits))
        ops = {"A": _ext(A, w, sgn), "B": _ext(B, w, sgn)}
        op = "/" if t in ("$div", "$divfloor") else "%"
        if sgn:
            expr = lambda r, op=op: f"$signed({r['A']}) {op} $signed({r['B']})"
        else:
            expr = lambda r, op=op: f"{r['A']} {op} {r['B']}"
        return _Plan(cell, list(ybits) + [None] * (w - len(ybits)), ops, expr)
    raise VerilogWriterError(f"cell {cell.name}: type {t} is not supported by the Verilog writer")


def _nonempty(cell, bits):
    if not bits:
        raise VerilogWriterError(f"cell {cell.name} ({cell.type}) has a zero-width operand")


def _plan_bitwise(cell, ybits, pos):
    t, c = cell.type, cell.conns
    n = len(ybits)
    out = _pick(ybits, pos)
    if t in ("$and", "$or", "$xor", "$xnor", "$bweqx"):
        sgn = t != "$bweqx" and cell.p("A_SIGNED") and cell.p("B_SIGNED")
        ops = {"A": _pick(_ext(c["A"], n, sgn), pos), "B": _pick(_ext(c["B"], n, sgn), pos)}
        fmt = {"$and": "{A} & {B}", "$or": "{A} | {B}", "$xor": "{A} ^ {B}",
               "$xnor": "~({A} ^ {B})", "$bweqx": "~({A} ^ {B})"}[t]
        return _Plan(cell, out, ops, lambda r, fmt=fmt: fmt.format(**r))
    if t == "$not":
        ops = {"A": _pick(_ext(c["A"], n, cell.p("A_SIGNED")), pos)}
        return _Plan(cell, out, ops, lambda r: f"~{r['A']}")
    if t == "$mux":
        ops = {"S": list(c["S"]), "B": _pick(c["B"], pos), "A": _pick(c["A"], pos)}
        return _Plan(cell, out, ops, lambda r: f"{r['S']} ? {r['B']} : {r['A']}")
    if t == "$bwmux":
        ops = {"S": _pick(c["S"], pos), "B": _pick(c["B"], pos), "A": _pick(c["A"], pos)}
        return _Plan(cell, out, ops, lambda r: f"({r['S']} & {r['B']}) | (~{r['S']} & {r['A']})")
    if t == "$pmux":
        # Yosys leaves several active selects undefined; the last one wins here, as in Yosys' SAT
        # model, so formal equivalence holds exactly.
        S, Bw = c["S"], c["B"]
        ops = {"A": _pick(c["A"], pos)}
        for k in range(len(S)):
            ops[f"S{k}"] = [S[k]]
            ops[f"B{k}"] = _pick(Bw[k * n:(k + 1) * n], pos)

        def expr(r, ns=len(S)):
            arms = [f"{r[f'S{k}']} ? {r[f'B{k}']} :" for k in reversed(range(ns))]
            return "\n      ".join(arms + [r["A"]])
        return _Plan(cell, out, ops, expr)
    if t == "$bmux":
        S, Aw = c["S"], c["A"]
        ops = {f"S{k}": [S[k]] for k in range(len(S))}
        for j in range(1 << len(S)):
            ops[f"A{j}"] = _pick(Aw[j * n:(j + 1) * n], pos)

        def expr(r, ns=len(S)):
            def tree(level, base):
                if level < 0:
                    return r[f"A{base}"]
                return (f"({r[f'S{level}']} ? {tree(level - 1, base + (1 << level))} : "
                        f"{tree(level - 1, base)})")
            return tree(ns - 1, 0)
        return _Plan(cell, out, ops, expr)
    raise AssertionError(t)


def _plan_ff(cell, qbits, pos):
    t, c = cell.type, cell.conns
    width = len(qbits)
    ops = {"D": _pick(c["D"], pos), "CLK": list(c["CLK"])}
    ff = {"clk_pol": cell.p("CLK_POLARITY"), "en": None, "srst": None, "arst": None, "ce_over_srst": False}
    if t in ("$dffe", "$sdffe", "$sdffce", "$adffe"):
        ops["EN"] = list(c["EN"])
        ff["en"] = cell.p("EN_POLARITY")
    if t in ("$sdff", "$sdffe", "$sdffce"):
        ops["SRST"] = list(c["SRST"])
        ff["srst"] = cell.p("SRST_POLARITY")
        ff["value"] = _pick(_param_bits(cell.params["SRST_VALUE"], width), pos)
        ff["ce_over_srst"] = t == "$sdffce"
    if t in ("$adff", "$adffe"):
        ops["ARST"] = list(c["ARST"])
        ff["arst"] = cell.p("ARST_POLARITY")
        ff["value"] = _pick(_param_bits(cell.params["ARST_VALUE"], width), pos)
    if ops["CLK"][0] in ("0", "1", "x", "z"):
        raise VerilogWriterError(f"cell {cell.name}: flip-flop with a constant clock")
    return _Plan(cell, _pick(qbits, pos), ops, ff=ff)


def _ff_key(plan):
    f, o = plan.ff, plan.operands
    return (f["clk_pol"], o["CLK"][0], f["arst"], tuple(o.get("ARST", ())), f["srst"],
            tuple(o.get("SRST", ())), f["en"], tuple(o.get("EN", ())), f["ce_over_srst"])


# --------------------------------------------------------------------------------------------------
# Writer


def _literal(bits):
    """Verilog literal of constant ``bits`` (LSB first)."""
    n = len(bits)
    value = int("".join(reversed(bits)), 2)
    if n <= 4:
        return f"{n}'b{''.join(reversed(bits))}"
    return f"{n}'h{value:x}"


class _Writer:
    def __init__(self, module, top):
        self.top = top
        self.names = _Names()
        self._parse(module)

    # -- netlist ---------------------------------------------------------------------------------

    def _parse(self, module):
        self.ports = []
        for name, p in module["ports"].items():
            if p["direction"] not in ("input", "output"):
                raise VerilogWriterError(f"port {name}: direction {p['direction']} is not supported")
            self.ports.append((name, p["direction"], list(p["bits"])))
        self.cells = []
        for k, (name, c) in enumerate(module["cells"].items()):
            if c["type"] in _IGNORED_TYPES:
                continue
            if not c["type"].startswith("$"):
                raise VerilogWriterError(f"cell {name}: instance of module {c['type']} (not flattened)")
            if c["type"] not in _SUPPORTED:
                raise VerilogWriterError(f"cell {name}: type {c['type']} is not supported by the "
                                         "Verilog writer")
            self.cells.append(_Cell(k, name, c["type"], dict(c.get("parameters", {})),
                                    {p: list(b) for p, b in c["connections"].items()},
                                    dict(c.get("port_directions", {}))))
        self.netnames = [(name, n["bits"]) for name, n in module["netnames"].items()
                         if not n.get("hide_name")]

    def _resolve_aliases(self):
        """Pure wiring cells become bit aliases; compare/reduce results above bit 0 are zero."""
        alias = {}
        kept = []
        for cell in self.cells:
            t, c = cell.type, cell.conns
            y = c.get("Y", [])
            if t in ("$pos", "$buf"):
                src = _ext(c["A"], len(y), t == "$pos" and cell.p("A_SIGNED"))
            elif t == "$slice":
                off = cell.p("OFFSET")
                src = c["A"][off:off + len(y)]
            elif t == "$concat":
                src = c["A"] + c["B"]
            else:
                if t in _COMPARE_TYPES | _BOOL_TYPES:
                    for b in y[1:]:
                        if isinstance(b, int):
                            alias[b] = "0"
                    c["Y"] = y[:1]
                kept.append(cell)
                continue
            for b, s in zip(y, src):
                if isinstance(b, int):
                    alias[b] = s

        def resolve(b):
            seen = 0
            while isinstance(b, int) and b in alias:
                b = alias[b]
                seen += 1
                if seen > len(alias):
                    raise VerilogWriterError("combinational loop through wiring cells")
            if b in ("x", "z"):
                return "0"
            return b

        self.cells = kept
        for cell in self.cells:
            for p, bits in cell.conns.items():
                if cell.dirs.get(p) == "input":
                    cell.conns[p] = [resolve(b) for b in bits]
        self.ports = [(n, d, [resolve(b) for b in bits] if d == "output" else bits)
                      for n, d, bits in self.ports]
        self.netnames = [(n, [resolve(b) for b in bits]) for n, bits in self.netnames]

    def _outputs(self, cell):
        return [p for p, d in cell.dirs.items() if d == "output"]

    def _plan(self):
        """Which bits are read, found backwards from the outputs; one plan per live cell."""
        self.driver = {}
        for cell in self.cells:
            outs = self._outputs(cell)
            if len(outs) != 1 and cell.type not in _FF_TYPES:
                raise VerilogWriterError(f"cell {cell.name}: type {cell.type} is not supported")
            for p in outs:
                for i, b in enumerate(cell.conns[p]):
                    if isinstance(b, int):
                        if b in self.driver:
                            raise VerilogWriterError(f"net {b} has several drivers")
                        self.driver[b] = cell
        self.in_bits = {}
        for name, d, bits in self.ports:
            if d == "input":
                for i, b in enumerate(bits):
                    if b in self.driver or b in self.in_bits:
                        raise VerilogWriterError(f"input port {name} bit {i} is driven inside")
                    self.in_bits[b] = (name, i)
        self.used = set()
        self.plans = {}
        work = []

        def use(bits):
            for b in bits:
                if isinstance(b, int) and b not in self.used:
                    self.used.add(b)
                    cell = self.driver.get(b)
                    if cell is not None:
                        work.append(cell)
                    elif b not in self.in_bits:
                        raise VerilogWriterError(f"net {b} is read but not driven")

        for _, d, bits in self.ports:
            if d == "output":
                use(bits)
        while work:
            cell = work.pop()
            ybits = cell.conns["Q" if cell.type in _FF_TYPES else "Y"]
            mask = [isinstance(b, int) and b in self.used for b in ybits]
            plan = _plan_cell(cell, ybits, mask)
            old = self.plans.get(cell.index)
            if old is not None and old.out == plan.out and old.operands == plan.operands:
                continue
            self.plans[cell.index] = plan
            use(plan.refs())
        for cell in self.cells:
            if cell.index not in self.plans and cell.type not in _FF_TYPES:
                # Dead cells are dropped, but unsupported variants are still reported.
                ybits = cell.conns["Y"]
                _plan_cell(cell, ybits, [True] * len(ybits))

    def _order(self):
        """Combinational plans in dependency order (inputs first), then flip-flops."""
        comb = {i: p for i, p in self.plans.items() if p.ff is None}
        roots = []
        for _, d, bits in self.ports:
            if d == "output":
                roots += [self.driver[b].index for b in bits if isinstance(b, int) and b in self.driver]
        ffs = sorted(i for i, p in self.plans.items() if p.ff is not None)
        for i in ffs:
            roots += [self.driver[b].index for b in self.plans[i].refs()
                      if isinstance(b, int) and b in self.driver]
        roots += sorted(comb)
        order, state = [], {}
        for root in roots:
            if root not in comb or root in state:
                continue
            stack = [(root, iter(self._deps(comb[root], comb)))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    order.append(node)
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(self._deps(comb[nxt], comb))))
        self.comb_order = [comb[i] for i in order]
        self.ff_order = [self.plans[i] for i in ffs]
        for k, p in enumerate(self.comb_order + self.ff_order):
            p.order = k

    def _deps(self, plan, comb):
        seen = []
        for b in plan.refs():
            if isinstance(b, int) and b in self.driver:
                i = self.driver[b].index
                if i in comb and i not in seen:
                    seen.append(i)
        return seen

    # -- homes: the wire each computed bit is written to -----------------------------------------

    def _homes(self):
        self.home = {}          # net bit -> (_Wire, index)
        self.wires = []
        self.defined = {}       # net bit -> plan defining it
        for p in self.plans.values():
            for b in p.out:
                if isinstance(b, int) and b in self.used:
                    self.defined[b] = p
        self.groups = {}
        for p in self.ff_order:
            self.groups.setdefault(_ff_key(p), len(self.groups))

        self.port_wires = {}
        for name, d, bits in self.ports:
            tok = _port_token(name)
            self.names.reserve(tok)
            if not bits:
                raise VerilogWriterError(f"port {name} has no bits")
            wire = _Wire(tok, len(bits) - 1, 0)
            self.port_wires[name] = wire
            if d == "input":
                for i, b in enumerate(bits):
                    self.home[b] = (wire, i)
        if any(b not in self.used for b in self.in_bits):
            self.unused_inputs = self.names.fresh("unused_inputs")
        else:
            self.unused_inputs = None
        # Output ports: combinational results are written straight into them (registers always
        # live in internal ``reg``s, the port then reads them).
        for name, d, bits in self.ports:
            if d != "output":
                continue
            wire = self.port_wires[name]
            for i, b in enumerate(bits):
                if (isinstance(b, int) and b in self.defined and b not in self.home
                        and bits.index(b) == i and self.defined[b].ff is None):
                    self.home[b] = (wire, i)
        # Amaranth's public names, shallow names first.
        for name, bits in sorted(self.netnames, key=lambda nb: (nb[0].count("."), nb[0])):
            if name in self.port_wires:
                continue
            idx = [i for i, b in enumerate(bits) if isinstance(b, int) and b in self.defined]
            if not idx or idx != list(range(idx[0], idx[-1] + 1)):
                continue
            sel = [bits[i] for i in idx]
            if len(set(sel)) != len(sel) or any(b in self.home for b in sel):
                continue
            kinds = {self._kind(self.defined[b]) for b in sel}
            if len(kinds) != 1:
                continue
            kind = next(iter(kinds))
            wire = _Wire(self.names.fresh(name), idx[-1], idx[0], is_reg=kind != "wire")
            self.wires.append(wire)
            for i in idx:
                self.home[bits[i]] = (wire, i)
        # Everything else: wires named after the cell; unread results go to unused_* wires.
        counter = {}
        for p in self.comb_order + self.ff_order:
            runs, unused = self._runs(p)
            if not runs and not unused:
                continue
            short = p.cell.type.lstrip("$")
            counter[short] = counter.get(short, 0) + 1
            base = f"{short}_{counter[short]}"
            for lo, hi in runs:
                nm = self.names.fresh(base if len(runs) == 1 else f"{base}_{lo}")
                wire = _Wire(nm, hi, lo, is_reg=p.ff is not None)
                self.wires.append(wire)
                for i in range(lo, hi + 1):
                    self.home[p.out[i]] = (wire, i)
            for lo, hi in unused:
                nm = self.names.fresh(f"unused_{base}" if len(unused) == 1 else f"unused_{base}_{lo}")
                wire = _Wire(nm, hi, lo)
                self.wires.append(wire)
                for i in range(lo, hi + 1):
                    p.unused[i] = (wire, i)
        # Declaration order: by the first statement writing the wire.
        first = {}
        for p in self.comb_order + self.ff_order:
            for i, b in enumerate(p.out):
                w = p.unused.get(i, (None,))[0] or self.home.get(b, (None,))[0]
                if w is not None and id(w) not in first:
                    first[id(w)] = p.order
        self.wires.sort(key=lambda w: first.get(id(w), 1 << 30))

    def wire_bits(self):
        bits = {w.name: [None] * (w.msb - w.lsb + 1) for w in self.wires}
        for net, (w, i) in self.home.items():
            if w.name in bits:
                bits[w.name][i - w.lsb] = net
        for p in self.comb_order:
            for pos, (w, i) in p.unused.items():
                bits[w.name][i - w.lsb] = p.out[pos]
        return bits

    def _kind(self, plan):
        return "wire" if plan.ff is None else ("reg", self.groups[_ff_key(plan)])

    def _runs(self, plan):
        """(unhomed read runs, unread runs) of result positions, as (lo, hi) pairs."""
        runs, unused = [], []
        prev = None
        for i, b in enumerate(plan.out):
            read = isinstance(b, int) and b in self.used
            cls = None if read and b in self.home else ("run" if read else "unused")
            if cls is not None:
                target = runs if cls == "run" else unused
                if prev == cls:
                    target[-1] = (target[-1][0], i)
                else:
                    target.append((i, i))
            prev = cls
        return runs, unused

    # -- text ------------------------------------------------------------------------------------

    def ref(self, bits, slot=None):
        """Verilog text of ``bits`` (LSB first)."""
        if not bits:
            raise VerilogWriterError("zero-width value")
        segs = []   # [kind, ...]: ["c", bits] / ["s", wire, lo, hi] / ["r", wire, idx, count]
        for b in bits:
            if isinstance(b, str):
                if segs and segs[-1][0] == "c":
                    segs[-1][1].append(b)
                else:
                    segs.append(["c", [b]])
                continue
            if slot is not None:
                wire, i = slot(b)
            elif b in self.home:
                wire, i = self.home[b]
            else:
                raise VerilogWriterError(f"net {b} is read but not driven")
            last = segs[-1] if segs else None
            if last and last[0] == "s" and last[1] is wire and last[3] + 1 == i:
                last[3] = i
            elif last and last[0] == "s" and last[1] is wire and last[2] == last[3] == i:
                segs[-1] = ["r", wire, i, 2]
            elif last and last[0] == "r" and last[1] is wire and last[2] == i:
                last[3] += 1
            else:
                segs.append(["s", wire, i, i])
        parts = []
        for seg in reversed(segs):
            if seg[0] == "c":
                parts.append(_literal(seg[1]))
            elif seg[0] == "s":
                _, w, lo, hi = seg
                if lo == w.lsb and hi == w.msb:
                    parts.append(w.name)
                elif lo == hi:
                    parts.append(f"{w.name}[{lo}]")
                else:
                    parts.append(f"{w.name}[{hi}:{lo}]")
            else:
                _, w, i, n = seg
                one = w.name if w.msb == w.lsb else f"{w.name}[{i}]"
                parts.append(f"{{{n}{{{one}}}}}")
        return parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"

    def lhs(self, plan):
        slots = {("u", i): home for i, home in plan.unused.items()}
        keys = [("u", i) if ("u", i) in slots else plan.out[i] for i in range(len(plan.out))]
        return self.ref(keys, slot=lambda k: slots[k] if k in slots else self.home[k])

    def write(self, header_lines):
        self._resolve_aliases()
        self._plan()
        self._order()
        self._homes()
        out = [f"// {line}" if line else "//" for line in header_lines]
        out.append(f"module {self.top} (")
        decls = []
        for name, d, bits in self.ports:
            w = self.port_wires[name]
            kind = "reg" if w.is_reg else "wire"
            decls.append(f"  {d} {kind} {w.decl_range()}{w.name}")
        out.append(",\n".join(decls))
        out.append(");")
        body = []
        for w in self.wires:
            body.append(f"  {'reg' if w.is_reg else 'wire'} {w.decl_range()}{w.name};")
        if body:
            body.append("")
        for p in self.comb_order:
            body.append(f"  assign {self.lhs(p)} = {p.expr(self._operand_text(p))};")
        for name, d, bits in self.ports:
            if d != "output":
                continue
            wire = self.port_wires[name]
            i = 0
            while i < len(bits):
                if isinstance(bits[i], int) and self.home.get(bits[i]) == (wire, i):
                    i += 1
                    continue
                j = i
                while j + 1 < len(bits) and not (isinstance(bits[j + 1], int)
                                                 and self.home.get(bits[j + 1]) == (wire, j + 1)):
                    j += 1
                if i == 0 and j == len(bits) - 1:
                    target = wire.name
                elif i == j:
                    target = f"{wire.name}[{i}]"
                else:
                    target = f"{wire.name}[{j}:{i}]"
                body.append(f"  assign {target} = {self.ref(bits[i:j + 1])};")
                i = j + 1
        body += self._always_blocks()
        if self.unused_inputs:
            # Listed in port order, left to right (a concatenation reads MSB first).
            idle = [b for name, d, bits in reversed(self.ports) if d == "input"
                    for b in bits if b not in self.used]
            body.append("")
            body.append("  // Input bits this configuration does not read (named so lint sees them used).")
            body.append(f"  wire {self.unused_inputs} = ^{self._reduce_operand(idle)};")
        out += body
        out.append("endmodule")
        return "\n".join(out) + "\n"

    def _reduce_operand(self, bits):
        text = self.ref(bits)
        return text if text.startswith("{") or len(bits) == 1 else "{" + text + "}"

    def _operand_text(self, plan):
        return {k: self.ref(v) for k, v in plan.operands.items()}

    def _always_blocks(self):
        groups = {}
        for p in self.ff_order:
            groups.setdefault(_ff_key(p), []).append(p)
        lines = []
        for plans in groups.values():
            p0 = plans[0]
            f, o = p0.ff, p0.operands
            edge = "posedge" if f["clk_pol"] else "negedge"
            sens = f"{edge} {self.ref(o['CLK'])}"
            if f["arst"] is not None:
                sens += f" or {'posedge' if f['arst'] else 'negedge'} {self.ref(o['ARST'])}"
            lines.append("")
            lines.append(f"  always @({sens}) begin")
            stmts_d = [f"{self.lhs(p)} <= {self.ref(p.operands['D'])};" for p in plans]
            stmts_r = [f"{self.lhs(p)} <= {_literal(p.ff['value'])};" for p in plans] \
                if "value" in f else []

            def cond(port, pol):
                s = self.ref(o[port])
                return s if pol else f"!{s}"

            def block(indent, head, stmts, tail="end"):
                pad = "  " * indent
                res = [pad + head + " begin"] + [pad + "  " + s for s in stmts]
                return res, pad + tail

            body = []
            if f["arst"] is not None or (f["srst"] is not None and not f["ce_over_srst"]):
                rport, rpol = ("ARST", f["arst"]) if f["arst"] is not None else ("SRST", f["srst"])
                body.append(f"    if ({cond(rport, rpol)}) begin")
                body += ["      " + s for s in stmts_r]
                if f["en"] is not None:
                    body.append(f"    end else if ({cond('EN', f['en'])}) begin")
                else:
                    body.append("    end else begin")
                body += ["      " + s for s in stmts_d]
                body.append("    end")
            elif f["srst"] is not None:      # $sdffce: reset only when enabled
                body.append(f"    if ({cond('EN', f['en'])}) begin")
                body.append(f"      if ({cond('SRST', f['srst'])}) begin")
                body += ["        " + s for s in stmts_r]
                body.append("      end else begin")
                body += ["        " + s for s in stmts_d]
                body.append("      end")
                body.append("    end")
            elif f["en"] is not None:
                body.append(f"    if ({cond('EN', f['en'])}) begin")
                body += ["      " + s for s in stmts_d]
                body.append("    end")
            else:
                body += ["    " + s for s in stmts_d]
            lines += body
            lines.append("  end")
        return lines


def netlist_to_verilog(netlist, top, header_lines=(), wire_bits=None):
    """Verilog text of module ``top`` of a Yosys JSON netlist (as parsed by :func:`json.loads`).

    ``wire_bits``, if a dict, receives ``{Verilog name: [netlist bit, ...]}`` for every internal
    wire declared, LSB first: the JSON net id each bit carries, or None for a computed bit no net
    of the netlist holds (ports keep their names and bits). Used to pair every wire with the
    netlist when proving the text equivalent to it, and for debugging.
    """
    try:
        module = netlist["modules"][top]
    except KeyError:
        raise VerilogWriterError(f"module {top!r} is not in the netlist") from None
    writer = _Writer(module, top)
    text = writer.write(header_lines)
    if wire_bits is not None:
        wire_bits.update(writer.wire_bits())
    return text
