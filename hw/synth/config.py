"""What gets synthesized: configurations (unit + parameters), the default matrix, paths.

A :class:`Config` names a registered unit (``hw.units.UNITS``) or the flows' own reference design
(``ref_mac``) with its parameters. The default matrix and the smoke set are a sweep file,
``hw/synth/scripts/matrix.toml``, beside the script templates (package data, so an installed lowbit
has them; :mod:`hw.sweep.spec` reads it); configurations that do not build are listed as not
available instead of failing the run. :func:`find_liberty` chooses the sky130 liberty of the ASIC
flow; a copy ships in ``hw/synth/liberty/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from golden.block import BlockFormat
from golden.formats import Format

from ..units import UNITS, UnitError
from .reference import REF_MAC

__all__ = ["Config", "SynthError", "Liberty", "scripts_dir", "find_unit", "config_from_args", "find_liberty",
           "BUNDLED_LIBERTY", "PDK_LIBERTY", "json_value"]

_HERE = Path(__file__).resolve().parent
_LIBERTY_STEM = "sky130_fd_sc_hd__tt_025C_1v80"
#: The liberty shipped with lowbit (Apache-2.0; licence and provenance in the same folder).
BUNDLED_LIBERTY = _HERE / "liberty" / f"{_LIBERTY_STEM}.lib.gz"
#: Where an installed PDK keeps the same library, relative to ``$PDK_ROOT`` (ciel, volare, open_pdks).
PDK_LIBERTY = Path("sky130A", "libs.ref", "sky130_fd_sc_hd", "lib", f"{_LIBERTY_STEM}.lib")

#: Reference designs usable like units by ``lowbit synth`` (not part of the generator registry).
REFERENCE_UNITS = {REF_MAC.name: REF_MAC}

#: Multiply-accumulates per cycle, by unit; units not listed (the rounder) have none.
_MACS = {
    "fp8_fma": lambda p: 1,
    "mac4": lambda p: p["lanes"],
    "accumulator": lambda p: p["lanes"] or (_block_size(p) if p["front"] == "block" else 1),
    "block_dot": lambda p: p["lanes"] or _block_size(p),
    "ref_mac": lambda p: 1 if p["op"] == "mac" else None,
}


def _block_size(p, name="a_format"):
    """The block size ``k`` of a block unit's resolved parameters (its lanes when not given)."""
    from golden.block import block_operand_param
    return block_operand_param(name, p[name], p.get("block")).k


#: Lanes (values per cycle) of the quantizer and reducer units, whose area is also given per lane (a
#: block quantizer's lanes are the elements of its block).
_LANES = {
    "luq": lambda p: p["lanes"],
    "tpr_quantize": lambda p: p["lanes"],
    "amax": lambda p: p["lanes"],
    "block_quantize": lambda p: _block_size(p, "format"),
}


class SynthError(Exception):
    """A user-facing problem with the synthesis run (missing files, bad matrix); one line."""


def scripts_dir():
    """The package's ``scripts/`` folder: Yosys, ABC and OpenSTA script templates and the matrix."""
    path = _HERE / "scripts"
    if not (path / "matrix.toml").is_file():
        raise SynthError(f"synthesis scripts not found in {path} (an incomplete lowbit installation; "
                         "reinstall it)")
    return path


@dataclass(frozen=True)
class Liberty:
    """The liberty chosen for the ASIC flow and why: ``source`` is ``--liberty``,
    ``$LOWBIT_LIBERTY``, ``$PDK_ROOT`` or ``bundled``; ``note`` says what was passed over."""

    path: Path
    source: str
    note: str = ""

    @property
    def label(self):
        """The path as the report gives it: the bundled copy relative to the package (the same on
        every machine), any other file as chosen."""
        if self.source == "bundled":
            return f"hw/synth/liberty/{self.path.name}"
        return str(self.path)

    def describe(self):
        """One line for the console: path, where it came from, and any note."""
        origin = "bundled with lowbit" if self.source == "bundled" else f"from {self.source}"
        return f"{self.path} ({origin}{'; ' + self.note if self.note else ''})"


def find_liberty(option=None, environ=None):
    """The liberty to use, in this order: ``option`` (``--liberty``), ``$LOWBIT_LIBERTY``, the PDK
    under ``$PDK_ROOT`` if it has the library, else the copy bundled with lowbit.

    A file named by ``--liberty`` or ``$LOWBIT_LIBERTY`` is returned even if it does not exist (the
    caller reports that); ``$PDK_ROOT`` without this library falls through to the bundled copy.
    """
    environ = os.environ if environ is None else environ
    if option:
        return Liberty(Path(option), "--liberty")
    if environ.get("LOWBIT_LIBERTY"):
        return Liberty(Path(environ["LOWBIT_LIBERTY"]), "$LOWBIT_LIBERTY")
    note = ""
    if environ.get("PDK_ROOT"):
        pdk = Path(environ["PDK_ROOT"]) / PDK_LIBERTY
        if pdk.is_file():
            return Liberty(pdk, "$PDK_ROOT")
        note = f"$PDK_ROOT has no {PDK_LIBERTY}"
    return Liberty(BUNDLED_LIBERTY, "bundled", note)


def find_unit(name):
    """A registered unit or a reference design by name; ``UnitError`` if neither."""
    unit = UNITS.get(name) or REFERENCE_UNITS.get(name)
    if unit is None:
        known = ", ".join([*UNITS, *REFERENCE_UNITS])
        raise UnitError(f"unknown unit {name!r} (available: {known})")
    return unit


def json_value(value):
    """``value`` as JSON data (tuples become lists, formats their names or specs)."""
    if isinstance(value, tuple):
        return list(value)
    return str(value) if isinstance(value, (Format, BlockFormat)) else value


@dataclass(frozen=True)
class Config:
    """One configuration: ``unit`` built with ``params`` (parsed values; defaults fill the rest)."""

    id: str
    unit: object
    params: dict = field(default_factory=dict)
    label: str = ""

    @property
    def resolved(self):
        """All parameters, defaults included, as JSON data."""
        return {k: json_value(v) for k, v in self.unit.resolve(self.params).items()}

    @property
    def stages(self):
        return self.resolved.get("stages") or 0

    @property
    def macs(self):
        """Multiply-accumulates per cycle (``None`` where the notion does not apply)."""
        rule = _MACS.get(self.unit.name)
        return rule(self.resolved) if rule else None

    @property
    def lanes(self):
        """Values per cycle of a quantizer or reducer (``None`` for the other units)."""
        rule = _LANES.get(self.unit.name)
        return rule(self.resolved) if rule else None

    @property
    def tag(self):
        """Short name for progress lines: the unit and its non-default parameters."""
        defaults = {k: json_value(v) for k, v in self.unit.defaults().items()}
        changed = [f"{k}={_short(v)}" for k, v in self.resolved.items() if v != defaults[k]]
        return " ".join([self.unit.name, *changed])

    def build(self):
        """Construct the component (may raise whatever the unit raises)."""
        return self.unit.build(**self.params)


def _short(value):
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def config_from_args(unit, params):
    """The configuration for ``lowbit synth UNIT --param value ...``; its id hashes the parameters."""
    resolved = {k: json_value(v) for k, v in unit.resolve(params).items()}
    digest = hashlib.sha256(json.dumps([unit.name, resolved], sort_keys=True).encode()).hexdigest()[:10]
    label = " ".join(f"{unit.param(k).flag} {_short(json_value(v))}" for k, v in params.items())
    return Config(id=f"{unit.name}-{digest}", unit=unit, params=dict(params), label=label or "(defaults)")
