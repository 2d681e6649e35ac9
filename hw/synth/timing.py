"""Critical-path delay of a liberty-mapped netlist.

Two sources, in order of preference:

* **OpenSTA** (``sta`` on ``PATH``): the netlist and a generated TCL script (ideal clock, inputs at
  time 0, outputs required at the end of a long period, the library's default wire load) give the
  slack of the worst path; the delay is the period minus that slack.
* **lowbit NLDM estimate** (always available): a small static timing analysis over the Yosys JSON
  netlist with the liberty's non-linear delay tables and default wire-load model, under the same
  assumptions (zero input slew, unloaded outputs, ideal clock). ABC's own delay report (``stime``)
  cannot be used: YoWASP Yosys 0.70 loses ABC's console output.

Both measure the longest path between startpoints (inputs, flip-flop clock-to-Q) and endpoints
(outputs, flip-flop data pins plus setup), so for a registered design the delay bounds the clock
period. Delays are in nanoseconds (the liberty's ``time_unit`` must be 1ns).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from ..tools import ToolError

__all__ = ["Table", "CellTiming", "WireLoad", "read_liberty_cells", "read_wire_load", "nldm_delay",
           "find_sta", "opensta_delay"]

_TOKEN = re.compile(r'\s+|/\*.*?\*/|\\\n|"(?P<str>[^"]*)"|(?P<punct>[{}();:,])|(?P<word>[^\s{}();:,"]+)', re.S)


@dataclass
class _Group:
    kind: str
    args: list
    attrs: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)

    def children(self, kind):
        return [g for g in self.groups if g.kind == kind]


def _tokens(text, pos):
    for m in _TOKEN.finditer(text, pos):
        if m.group("str") is not None:
            yield m.group("str")
        elif m.group("punct") is not None or m.group("word") is not None:
            yield m.group("punct") or m.group("word")


def _parse_group(tokens):
    """Parse one ``kind (args) { ... }`` group from a token iterator positioned at ``kind``."""
    kind = next(tokens)
    if next(tokens) != "(":
        raise ValueError(f"liberty: expected '(' after {kind}")
    args = _args(tokens)
    if next(tokens) != "{":
        raise ValueError(f"liberty: expected '{{' after {kind}")
    group = _Group(kind, args)
    _parse_body(tokens, group)
    return group


def _args(tokens):
    """Arguments up to the closing ``)`` (the opening one already consumed)."""
    args = []
    for tok in tokens:
        if tok == ")":
            return args
        if tok != ",":
            args.append(tok)
    raise ValueError("liberty: unterminated argument list")


def _parse_body(tokens, group):
    pending = None
    for tok in tokens:
        if tok == "}":
            return
        if tok == ";":
            continue
        if pending is None:
            pending = tok
            continue
        name, pending = pending, None
        if tok == ":":
            group.attrs[name] = next(tokens)
        elif tok == "(":
            args = _args(tokens)
            nxt = next(tokens)
            if nxt == "{":
                sub = _Group(name, args)
                _parse_body(tokens, sub)
                group.groups.append(sub)
            else:  # complex attribute such as index_1("...") or values("...", "...")
                group.attrs[name] = args
                if nxt not in (";", "}"):
                    pending = nxt
                elif nxt == "}":
                    return
        else:
            raise ValueError(f"liberty: unexpected {tok!r} after {name!r}")
    raise ValueError("liberty: unterminated group")


def _floats(text_list):
    return [float(v) for s in text_list for v in s.replace(",", " ").split()]


@dataclass(frozen=True)
class Table:
    """A liberty lookup table: ``variables`` name the axes of ``index``; ``values`` is row-major."""

    variables: tuple
    index: tuple
    values: tuple

    def lookup(self, **point):
        """Value at ``point`` (variable name -> value); linear inter-/extrapolation per axis."""
        coords = [point[v] for v in self.variables]
        if not coords:
            return self.values[0]
        if len(coords) == 1:
            return _interp(self.index[0], self.values, coords[0])
        cols = len(self.index[1])
        rows = [self.values[i * cols:(i + 1) * cols] for i in range(len(self.index[0]))]
        column = [_interp(self.index[1], row, coords[1]) for row in rows]
        return _interp(self.index[0], column, coords[0])


def _interp(xs, ys, x):
    if len(xs) == 1:
        return ys[0]
    i = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)
    x0, x1 = xs[i], xs[i + 1]
    return ys[i] + (ys[i + 1] - ys[i]) * (x - x0) / (x1 - x0)


@dataclass
class Arc:
    """One timing arc into an output pin (``kind`` comb/edge) or a data pin (``kind`` setup)."""

    related: str
    sense: str
    kind: str
    tables: dict


@dataclass
class CellTiming:
    """Pins (direction, capacitance) and timing arcs of one liberty cell."""

    name: str
    directions: dict
    caps: dict
    arcs: dict  # pin -> [Arc]

    @property
    def sequential(self):
        return any(a.kind == "edge" for arcs in self.arcs.values() for a in arcs)


_KINDS = {"combinational": "comb", "rising_edge": "edge", "setup_rising": "setup"}
_TABLES = {"cell_rise", "cell_fall", "rise_transition", "fall_transition", "rise_constraint", "fall_constraint"}


def _table(group, templates):
    variables, index = templates.get(group.args[0] if group.args else "scalar", ((), ()))
    own = tuple(tuple(_floats(group.attrs[f"index_{i + 1}"])) for i in range(len(variables))
                if f"index_{i + 1}" in group.attrs)
    return Table(variables, own if len(own) == len(variables) else index, tuple(_floats(group.attrs["values"])))


def _cell(group, templates):
    directions, caps, arcs = {}, {}, {}
    for pin in group.children("pin"):
        name = pin.args[0]
        directions[name] = pin.attrs.get("direction", "")
        caps[name] = float(pin.attrs.get("capacitance", 0.0))
        for timing in pin.children("timing"):
            kind = _KINDS.get(timing.attrs.get("timing_type", "combinational"))
            if kind is None:
                continue
            tables = {t.kind: _table(t, templates) for t in timing.groups if t.kind in _TABLES}
            arcs.setdefault(name, []).append(Arc(timing.attrs["related_pin"],
                                                 timing.attrs.get("timing_sense", "non_unate"), kind, tables))
    return CellTiming(group.args[0], directions, caps, arcs)


@dataclass(frozen=True)
class WireLoad:
    """A liberty wire-load model: per-length ``capacitance`` (pF) and ``resistance`` (kohm), the
    estimated length for each fanout, and ``slope`` beyond the table."""

    capacitance: float
    resistance: float
    slope: float
    lengths: tuple  # ((fanout, length), ...) ascending

    def length(self, fanout):
        table = dict(self.lengths)
        if fanout in table:
            return table[fanout]
        last, length = self.lengths[-1]
        return length + self.slope * (fanout - last)

    def cap(self, fanout):
        return self.capacitance * self.length(fanout)

    def delay(self, fanout, pin_cap):
        """Elmore delay (ns) of one branch of a balanced tree to a sink of ``pin_cap``."""
        r, c = self.resistance * self.length(fanout) / fanout, self.cap(fanout) / fanout
        return r * (c / 2 + pin_cap)


def read_wire_load(text):
    """The library's ``default_wire_load`` model, or ``None`` if it names none."""
    name = re.search(r'default_wire_load\s*:\s*"?([^";\s]+)', text)
    if name is None:
        return None
    body = re.search(r'wire_load\s*\(\s*"?' + re.escape(name.group(1)) + r'"?\s*\)\s*\{([^}]*)\}', text)
    if body is None:
        raise ValueError(f"liberty: default_wire_load {name.group(1)!r} is not defined")
    attr = {k: float(v) for k, v in re.findall(r"(capacitance|resistance|slope)\s*:\s*([-+0-9.eE]+)", body.group(1))}
    lengths = sorted((int(f), float(v)) for f, v in
                     re.findall(r"fanout_length\s*\(\s*(\d+)\s*,\s*([-+0-9.eE]+)\s*\)", body.group(1)))
    return WireLoad(attr["capacitance"], attr["resistance"], attr.get("slope", 0.0), tuple(lengths))


def read_liberty_cells(text, names):
    """Parse the cells ``names`` (and the table templates) out of liberty ``text``.

    Returns ``{name: CellTiming}``; raises ``ValueError`` for a cell the library does not have or a
    time unit other than nanoseconds (tables are used as they are).
    """
    unit = re.search(r'time_unit\s*:\s*"?([^";\s]+)', text)
    if unit and unit.group(1) != "1ns":
        raise ValueError(f"liberty time_unit {unit.group(1)!r}: only 1ns is supported")
    templates = {"scalar": ((), ())}
    for m in re.finditer(r"^\s*lu_table_template\s*\(", text, re.M):
        g = _parse_group(_tokens(text, m.start()))
        variables = tuple(g.attrs[k] for k in ("variable_1", "variable_2", "variable_3") if k in g.attrs)
        templates[g.args[0]] = (variables, tuple(tuple(_floats(g.attrs[f"index_{i + 1}"]))
                                                 for i in range(len(variables))))
    starts = {m.group(1): m.start() for m in re.finditer(r'^\s*cell\s*\(\s*"?([\w$]+)"?\s*\)', text, re.M)}
    cells = {}
    for name in sorted(names):
        if name not in starts:
            raise ValueError(f"cell {name} is not in the liberty file")
        cells[name] = _cell(_parse_group(_tokens(text, starts[name])), templates)
    return cells


_RISE, _FALL = 0, 1


def _arc_out(arc, in_arr, in_slew, load):
    """(arrival, slew) per output edge through ``arc`` given the related pin's timing."""
    sources = {"positive_unate": ((_RISE,), (_FALL,)), "negative_unate": ((_FALL,), (_RISE,))}
    per_edge = sources.get(arc.sense, ((_RISE, _FALL), (_RISE, _FALL)))
    out_arr, out_slew = [None, None], [0.0, 0.0]
    for edge, (delay_t, slew_t) in enumerate((("cell_rise", "rise_transition"), ("cell_fall", "fall_transition"))):
        if delay_t not in arc.tables:
            continue
        for src in per_edge[edge]:
            if in_arr[src] is None:
                continue
            point = {"input_net_transition": in_slew[src], "total_output_net_capacitance": load}
            arr = in_arr[src] + arc.tables[delay_t].lookup(**point)
            slew = arc.tables[slew_t].lookup(**point) if slew_t in arc.tables else 0.0
            out_arr[edge] = arr if out_arr[edge] is None else max(out_arr[edge], arr)
            out_slew[edge] = max(out_slew[edge], slew)
    return out_arr, out_slew


def _setup(arc, data_slew):
    point = {"related_pin_transition": 0.0, "constrained_pin_transition": 0.0}
    out = []
    for edge, name in enumerate(("rise_constraint", "fall_constraint")):
        point["constrained_pin_transition"] = data_slew[edge]
        out.append(arc.tables[name].lookup(**point) if name in arc.tables else 0.0)
    return out


def nldm_delay(module, cells, wire=None):
    """Longest path (ns) of a Yosys JSON ``module`` mapped to ``cells`` (from :func:`read_liberty_cells`).

    Returns ``(delay, endpoint)``. Inputs arrive at 0 with zero slew, outputs are unloaded, the
    clock is ideal; flip-flop outputs start at their clock-to-Q delay and flip-flop data pins end
    with their setup time. With a :class:`WireLoad` ``wire``, each net adds its wire capacitance
    by fanout (output ports count as sinks) and the balanced-tree wire delay to its largest sink.
    Raises ``ValueError`` for a combinational loop or an unknown cell.
    """
    insts = module["cells"]
    for name, cell in insts.items():
        if cell["type"] not in cells:
            raise ValueError(f"cell {name} has type {cell['type']}, which is not a liberty cell")

    def pins(name, output):
        timing = cells[insts[name]["type"]]
        for pin, bits in insts[name]["connections"].items():
            if (timing.directions.get(pin) == "output") == output:
                yield pin, [b for b in bits if not isinstance(b, str)]

    sink_caps, comb_driven = {}, {}
    for name, cell in insts.items():
        timing = cells[cell["type"]]
        for pin, bits in pins(name, output=False):
            for bit in bits:
                sink_caps.setdefault(bit, []).append(timing.caps.get(pin, 0.0))
        if not timing.sequential:
            for _, bits in pins(name, output=True):
                comb_driven.update(dict.fromkeys(bits, name))
    for port in module["ports"].values():
        if port["direction"] == "output":
            for bit in port["bits"]:
                if not isinstance(bit, str):
                    sink_caps.setdefault(bit, []).append(0.0)
    load = {bit: sum(caps) + (wire.cap(len(caps)) if wire else 0.0) for bit, caps in sink_caps.items()}
    wire_delay = {bit: wire.delay(len(caps), max(caps)) if wire else 0.0 for bit, caps in sink_caps.items()}

    arrival, slew = {}, {}
    for port in module["ports"].values():
        if port["direction"] == "input":
            for bit in port["bits"]:
                if not isinstance(bit, str):
                    arrival[bit] = [wire_delay.get(bit, 0.0)] * 2
                    slew[bit] = [0.0, 0.0]

    def evaluate(name):
        cell = insts[name]
        timing = cells[cell["type"]]
        for pin, bits in pins(name, output=True):
            if not bits:
                continue
            out_arr, out_slew = [None, None], [0.0, 0.0]
            for arc in timing.arcs.get(pin, ()):
                if arc.kind == "edge":
                    in_arr, in_slew = [0.0, 0.0], [0.0, 0.0]
                else:
                    src = cell["connections"].get(arc.related, ["x"])[0]
                    if isinstance(src, str) or src not in arrival:
                        continue
                    in_arr, in_slew = arrival[src], slew[src]
                a, s = _arc_out(arc, in_arr, in_slew, load.get(bits[0], 0.0))
                out_arr = [x if y is None else y if x is None else max(x, y) for x, y in zip(a, out_arr)]
                out_slew = [max(x, y) for x, y in zip(s, out_slew)]
            if out_arr != [None, None]:
                extra = wire_delay.get(bits[0], 0.0)
                arrival[bits[0]] = [extra + (0.0 if x is None else x) for x in out_arr]
                slew[bits[0]] = out_slew

    comb = sorted(n for n, c in insts.items() if not cells[c["type"]].sequential)
    for name in sorted(set(insts) - set(comb)):
        evaluate(name)
    waiting, users = {}, {}
    for name in comb:
        waiting[name] = {b for _, bits in pins(name, output=False) for b in bits if b in comb_driven}
        for bit in waiting[name]:
            users.setdefault(bit, []).append(name)
    ready = [n for n in comb if not waiting[n]]
    done = 0
    while ready:
        name = ready.pop()
        done += 1
        evaluate(name)
        for _, bits in pins(name, output=True):
            for bit in bits:
                for user in users.get(bit, ()):
                    waiting[user].discard(bit)
                    if not waiting[user]:
                        ready.append(user)
    if done != len(comb):
        raise ValueError("combinational loop in the mapped netlist")
    return _worst_endpoint(module, cells, arrival, slew)


def _worst_endpoint(module, cells, arrival, slew):
    worst, where = 0.0, ""
    for name, port in sorted(module["ports"].items()):
        if port["direction"] != "output":
            continue
        for i, bit in enumerate(port["bits"]):
            if not isinstance(bit, str) and bit in arrival and max(arrival[bit]) > worst:
                worst, where = max(arrival[bit]), f"{name}[{i}]"
    for name, cell in sorted(module["cells"].items()):
        for pin, arcs in cells[cell["type"]].arcs.items():
            bit = cell["connections"].get(pin, ["x"])[0]
            if isinstance(bit, str) or bit not in arrival:
                continue
            for arc in arcs:
                if arc.kind == "setup":
                    setup = _setup(arc, slew[bit])
                    end = max(arrival[bit][e] + setup[e] for e in (_RISE, _FALL))
                    if end > worst:
                        worst, where = end, f"{name}/{pin}"
    return worst, where


def find_sta():
    """Path of OpenSTA's ``sta`` on ``PATH``, or ``None``."""
    return shutil.which("sta")


_SLACK = re.compile(r"^\s*(-?[0-9.]+)\s+slack \((?:MET|VIOLATED)\)", re.M)


def opensta_delay(sta, workdir, script, period, log):
    """Run OpenSTA on TCL ``script`` (relative to ``workdir``), whose ``report_checks`` prints the
    worst path; delay = ``period`` - its slack (ns)."""
    proc = subprocess.run([sta, "-no_init", "-no_splash", "-exit", script], cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    Path(workdir, log).write_text(proc.stdout)
    m = _SLACK.search(proc.stdout)
    if proc.returncode != 0 or m is None:
        raise ToolError(f"asic: opensta failed (exit {proc.returncode}); see {Path(workdir, log)}")
    return period - float(m.group(1))
