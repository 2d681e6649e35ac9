"""The registry of generator units: names, parameters with defaults, and how to build each.

The CLI (``lowbit list``, ``lowbit export``, ``lowbit synth``) and the test harnesses go through this
table, so a unit's parameters are described once. Unit modules are imported only when built.

This is where parameters enter from text: :meth:`Param.parse` turns a command-line string into the
value the component takes (a format spec into a format object, once), and :meth:`Unit.resolve`
does the same for defaults and values given from Python. Components validate the values (ranges,
combinations) and pass the objects inward; nothing parses a format again.
"""

from __future__ import annotations

import importlib
import operator
from dataclasses import dataclass, field

from golden.checks import ROUNDING_MODES
from golden.formats import FormatError, parse_format_param

__all__ = ["Param", "Unit", "UNITS", "get_unit", "UnitError"]


class UnitError(ValueError):
    """Unknown unit or parameter; one-line message."""


def _parse_bool(text):
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


def _parse_int(text):
    try:
        return operator.index(text) if not isinstance(text, str) else int(text, 0)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, not {text!r}") from None


def _parse_int_list(text):
    if isinstance(text, (list, tuple)):
        return tuple(_parse_int(t) for t in text)
    return tuple(_parse_int(t) for t in str(text).replace(" ", "").split(",") if t)


def _parse_format(kind, name, spec):
    """A format parameter's object: ``kind`` ``"format"`` takes scalar formats, ``"block"`` block
    formats (:func:`golden.block.block_format_param`) or element formats."""
    if kind == "block":
        from golden.block import BlockFormat, block_format_param, is_block_spec
        if isinstance(spec, BlockFormat) or is_block_spec(spec):
            return block_format_param(name, spec)
    return parse_format_param(name, spec)


@dataclass(frozen=True)
class Param:
    """One generator parameter.

    ``kind`` is ``"format"`` (a spec string or preset, see ``docs/arithmetic.md`` section 3; parsed
    into a format object), ``"block"`` (a block format, section 9.3, or an element format for the
    unit to put under the MX rule; parsed into a :class:`golden.block.BlockFormat` or an element
    format object), ``"int"``, ``"ints"`` (comma-separated integers), ``"bool"``,
    ``"choice"`` (one of ``choices``) or ``"window"`` (``exact`` or an integer). A default of
    ``None`` means "derived" (explained in ``help``).
    """

    name: str
    kind: str
    default: object
    help: str
    choices: tuple = ()

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")

    def parse(self, text):
        """Convert a command-line string to the Python value (range checks are the unit's job)."""
        if self.kind in ("format", "block"):
            try:
                return _parse_format(self.kind, self.flag, text)
            except FormatError as e:
                raise UnitError(str(e)) from None
        try:
            if self.kind == "int":
                return _parse_int(text)
            if self.kind == "ints":
                return _parse_int_list(text)
            if self.kind == "bool":
                return _parse_bool(text)
            if self.kind == "choice":
                if text not in self.choices:
                    raise ValueError(f"expected one of {', '.join(self.choices)}, not {text!r}")
                return text
            if self.kind == "window":
                return text if text == "exact" else _parse_int(text)
            return text
        except ValueError as e:
            raise UnitError(f"{self.flag}: {e}") from None

    def describe_default(self):
        if self.default is None:
            return "derived"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if isinstance(self.default, tuple):
            return ",".join(map(str, self.default))
        return str(self.default)

    def value(self, value):
        """A value given from Python (or a default) in the form :meth:`parse` gives: format specs
        become format objects, other text is parsed as on the command line; ``None`` (derived)
        stays. Errors name the Python parameter (``a_format``), not the flag."""
        if self.kind in ("format", "block") and value is not None:
            try:
                return _parse_format(self.kind, self.name, value)
            except FormatError as e:
                raise UnitError(str(e)) from None
        if isinstance(value, str) and self.kind in ("int", "ints", "bool", "window"):
            return self.parse(value)
        return value


@dataclass(frozen=True)
class Unit:
    name: str
    summary: str
    module: str
    factory: str
    params: tuple = field(default_factory=tuple)

    def param(self, name):
        for p in self.params:
            if p.name == name:
                return p
        raise UnitError(f"unknown parameter {('--' + name.replace('_', '-'))!r} for unit {self.name} "
                        f"(allowed: {', '.join(p.flag for p in self.params)})")

    def defaults(self):
        return {p.name: p.default for p in self.params}

    def resolve(self, params=None):
        """Defaults overridden by ``params`` (names checked), formats as objects."""
        values = self.defaults()
        for k, v in (params or {}).items():
            self.param(k)
            values[k] = v
        return {p.name: p.value(values[p.name]) for p in self.params}

    def build(self, **params):
        """Construct the component; raises ``ValueError`` with a one-line message on bad parameters."""
        factory = getattr(importlib.import_module(self.module), self.factory)
        return factory(**self.resolve(params))

    def describe(self, params=None):
        """``--flag value`` list of the (resolved) parameters, for headers and reports."""
        values = self.resolve(params)
        out = []
        for p in self.params:
            v = values[p.name]
            if v is None:
                continue
            if isinstance(v, bool):
                v = "true" if v else "false"
            elif isinstance(v, (tuple, list)):
                v = ",".join(map(str, v))
            out.append(f"{p.flag} {v}")
        return " ".join(out)


def _rand_source_params(default_source, lfsr_width=16):
    """The parameters of :class:`hw.stochastic_round.lfsr.RandSource` (units with a ``rand`` port
    or an internal LFSR)."""
    return (
        Param("rand_bits", "int", 8, "random bits R per rounding (sr only)"),
        Param("rand_source", "choice", default_source, "where sr's random bits come from", ("port", "lfsr")),
        Param("lfsr_width", "int", lfsr_width, "LFSR state width (lfsr source)"),
        Param("lfsr_taps", "ints", None, "LFSR feedback taps, e.g. 16,15,13,4 (default: a maximal-length "
              "polynomial for the width)"),
        Param("seed", "int", 1, "LFSR reset state (nonzero)"),
    )

UNITS = {}


def register(unit):
    UNITS[unit.name] = unit
    return unit


register(Unit(
    name="stochastic_round",
    summary="LFSR stochastic rounder: a wide float or fixed-point value to a float format",
    module="hw.stochastic_round", factory="StochasticRound",
    params=(
        Param("source", "format", "fp32", "input format: a float spec/preset or fix<W>.<F> / ufix<W>.<F>"),
        Param("target", "format", "fp8_e5m2", "output float format (radix 2)"),
        Param("rounding", "choice", "sr", "rounding mode", ROUNDING_MODES),
        *_rand_source_params("lfsr"),
        Param("stages", "int", 0, "register stages (0 = combinational datapath)"),
    ),
))


register(Unit(
    name="fp8_fma",
    summary="fused multiply-add y = round(a*b + c), one rounding (Wang et al. 2018 FP8 x FP8 + FP16)",
    module="hw.fp8_fma", factory="FMA",
    params=(
        Param("a_format", "format", "fp8_e5m2", "format of a (radix-2 float spec or preset)"),
        Param("b_format", "format", None, "format of b (default: a's)"),
        Param("acc_format", "format", "e6m9", "format of c and y (e6m9: IEEE-style 1-6-9; fp16_e6m9: IBM's)"),
        Param("rounding", "choice", "rne", "rounding mode", ROUNDING_MODES),
        *_rand_source_params("port"),
        Param("stages", "int", 0, "register stages (0 = combinational)"),
    ),
))


register(Unit(
    name="accumulator",
    summary="chunk-based dot-product engine (Wang et al. 2018): N lanes per beat, stream in/out",
    module="hw.accumulator", factory="Accumulator",
    params=(
        Param("lanes", "int", None, "products per beat N (1 to 64; default 1, the block size k with --front block)"),
        Param("a_format", "block", "fp8_e5m2", "format of the a operands (radix-2 float; a block format with "
              "--front block)"),
        Param("b_format", "block", None, "format of the b operands (default: a's)"),
        Param("acc_format", "format", "e6m9", "accumulation and result format"),
        Param("rounding", "choice", "rne", "rounding of every accumulation", ROUNDING_MODES),
        Param("chunk", "int", 64, "chunk length CL in products (a multiple of lanes; 0: no chunking)"),
        Param("window", "window", "exact", "lane-sum window in bits below the beat's largest product, or exact"),
        Param("stages", "int", 0, "registers between the lane sum and the accumulation loop (0 to 4)"),
        Param("rand_bits", "int", 8, "random bits R per rounding (sr only)"),
        Param("lfsr_width", "int", 16, "width of the two LFSRs (sr only)"),
        Param("seed", "int", 1, "reset state of the inner LFSR (sr only)"),
        Param("seed_outer", "int", 1, "reset state of the outer LFSR (reciprocal polynomial; sr only)"),
        Param("front", "choice", "fp8", "lane products: FP8 x FP8 floats, hw.mac4's INT4 x FP4, or one block "
              "pair of block formats (OCP MX, HBFP) with its two scales per beat", ("fp8", "mac4", "block")),
        Param("x_signed", "bool", True, "mac4 front: INT4 x is two's complement (else unsigned 0..15)"),
    ),
))


register(Unit(
    name="mac4",
    summary="N-lane INT4 x FP4 (radix 4) exact dot product, float or integer accumulate (Sun et al. 2020)",
    module="hw.mac4", factory="MAC4",
    params=(
        Param("lanes", "int", 8, "lanes N (1 to 256)"),
        Param("mode", "choice", "dot", "dot: exact sum; acc: + float accumulator, one rounding; "
              "int: INT4 x INT4 + integer accumulator", ("dot", "acc", "int")),
        Param("x_signed", "bool", True, "x codes are signed -8..7 (false: unsigned 0..15)"),
        Param("w_signed", "bool", True, "w codes are signed -8..7 (int mode)"),
        Param("acc_format", "format", "e6m9", "accumulator format, radix 2 (acc mode; fp16_e6m9: IBM's 1-6-9)"),
        Param("rounding", "choice", "rne", "rounding mode (acc mode)", ROUNDING_MODES),
        Param("rand_bits", "int", 8, "random bits R per rounding (acc mode, sr only)"),
        Param("acc_bits", "int", 32, "integer accumulator width, wraps around (int mode)"),
        Param("stages", "int", 0, "register stages (0 = combinational)"),
    ),
))


register(Unit(
    name="luq",
    summary="LUQ 4-bit gradient quantizer (Chmiel et al. 2023): N lanes, alpha = 2**scale_exp, fp4_luq codes",
    module="hw.quantize.luq", factory="LUQ",
    params=(
        Param("lanes", "int", 8, "codes per beat N (1 to 64)"),
        Param("source", "format", "fp16", "format of x (radix-2 float: fp16, bf16, fp32, ...)"),
        Param("scale_bits", "int", None, "width of the signed scale_exp port (default: the smallest "
              "holding the scale of every maximum of the source, 6 for fp16, 9 for bf16/fp32; up to 17)"),
        Param("rounding", "choice", "sr", "sr (LUQ) or rne", ("sr", "rne")),
        *_rand_source_params("lfsr", lfsr_width=31),
        Param("stages", "int", 0, "register stages (0 = combinational datapath)"),
    ),
))


register(Unit(
    name="tpr_quantize",
    summary="two-phase radix-4 FP4 gradient quantizer (Sun et al. 2020): N lanes, codes g0, g1 for mac4",
    module="hw.quantize.tpr", factory="TPRQuantize",
    params=(
        Param("lanes", "int", 8, "values per beat N (1 to 64)"),
        Param("source", "format", "fp16", "format of x (radix-2 float: fp16, bf16, fp32, ...)"),
        Param("rounding", "choice", "rne", "rounding mode onto the radix-4 grid", ROUNDING_MODES),
        *_rand_source_params("lfsr", lfsr_width=31),
        Param("stages", "int", 0, "register stages (0 = combinational datapath)"),
    ),
))


register(Unit(
    name="amax",
    summary="streaming max-magnitude reducer: N float codes per beat, one magnitude code per packet",
    module="hw.quantize.amax", factory="Amax",
    params=(
        Param("lanes", "int", 8, "codes per beat N (1 to 64)"),
        Param("source", "format", "fp16", "format of the codes (radix-2 float)"),
        Param("stages", "int", 0, "registers before the running maximum (0 to 4): after the lanes' maximum, "
              "from 2 on one splitting its bit chain"),
    ),
))


register(Unit(
    name="block_dot",
    summary="block-scaled (OCP MX, HBFP) dot product y = round(c + Xa*Xb*sum of N products), exact sum, "
            "one rounding",
    module="hw.block_dot", factory="BlockDot",
    params=(
        Param("a_format", "block", "mxfp8_e4m3", "block format of a (a block preset or spec, lowbit formats; or "
              "an element spec under the MX rule, with --block)"),
        Param("b_format", "block", None, "block format of b (default: a's); same block size"),
        Param("block", "int", None, "block size k, 2 to 64, of formats given without /k (default: 32)"),
        Param("lanes", "int", None, "element pairs N per beat, a divisor of k (default: k, one block pair "
              "per beat)"),
        Param("acc_format", "format", "fp32", "format of c and y (radix-2 float)"),
        Param("rounding", "choice", "rne", "rounding mode", ROUNDING_MODES),
        *_rand_source_params("port"),
        Param("stages", "int", 0, "register stages (0 = combinational)"),
    ),
))


register(Unit(
    name="block_quantize",
    summary="k FP32/BF16 values to one block (OCP MX, HBFP): the shared scale and k element codes, one "
            "rounding each",
    module="hw.block_quantize", factory="BlockQuantize",
    params=(
        Param("format", "block", "mxfp8_e4m3", "block format (a block preset or spec, lowbit formats; or an "
              "element spec under the MX rule, with --block)"),
        Param("block", "int", None, "block size k, 2 to 64, of a format given without /k (default: 32)"),
        Param("source", "format", "fp32", "input format: fp32 or bf16"),
        Param("rounding", "choice", "rne", "rounding of the elements", ROUNDING_MODES),
        *_rand_source_params("port"),
        Param("stages", "int", 0, "register stages (0 = combinational)"),
    ),
))


def get_unit(name):
    try:
        return UNITS[name]
    except KeyError:
        raise UnitError(f"unknown unit {name!r} (available: {', '.join(UNITS)})") from None
