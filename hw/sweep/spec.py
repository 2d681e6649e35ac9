"""Sweep files: units, parameter grids, flows and training, expanded into points.

A sweep file is TOML (or JSON with the same structure; ``docs/synthesis.md`` is the reference).
Its main list is ``configs``; every entry names a unit and its parameters, and a parameter given
as a list is a grid axis: the entry expands to the cartesian product of its lists, less the
points an ``exclude`` rule matches. Other top-level lists of the same shape are named sets
(``smoke`` in the default matrix), chosen with ``set=``.

Everything that can be checked without building a design is checked here, for the whole file:
unknown units, parameters and keys, values a parameter cannot take, empty grids, exclude rules
that match nothing, duplicate point ids. Each problem raises :class:`SweepError` with one line,
so a command stops before any work starts. A configuration the generator itself rejects (a range
or a combination) is found only when it is built; that point fails and the sweep goes on.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..synth.config import Config, config_from_args, find_unit, json_value
from ..synth.flows import FLOWS
from ..units import UnitError
from . import runners

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pyproject: tomli on 3.10 only)
    import tomli as tomllib

__all__ = ["SweepError", "Training", "Point", "Sweep", "load_sweep", "MAIN_SET"]

#: The list a sweep runs unless another set is named.
MAIN_SET = "configs"

_TOP_KEYS = {"name", "flows", "baseline", "train"}
_ENTRY_KEYS = {"id", "unit", "label", "params", "exclude", "flows", "train"}
_TRAIN_KEYS = {"recipe", "model", "runner", "name"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class SweepError(Exception):
    """A sweep file that cannot be run as written; the message is one line naming the file."""


@dataclass(frozen=True)
class Training:
    """One training of a point: ``runner`` (a registry name, see :mod:`hw.sweep.runners`)
    resolved to ``target`` (``module:function``), with ``options`` (recipe, model and any other
    keys of the sweep file, JSON data). ``name`` names its result folder ``train-<name>``."""

    name: str
    runner: str
    target: str
    options: dict

    @property
    def folder(self):
        return f"train-{self.name}"


@dataclass(frozen=True)
class Point:
    """One point of a sweep: a configuration, the flows it is synthesized with and the trainings
    it is trained with (either may be empty, not both)."""

    config: Config
    flows: tuple
    trainings: tuple = ()

    @property
    def id(self):
        return self.config.id


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep file: the points of one set, in file order, and the file's ``baseline``
    (a point id of the main set, or ``None``)."""

    path: Path
    name: str
    set: str
    points: tuple
    baseline: str | None = None
    sets: tuple = field(default=(MAIN_SET,))


def _read(path):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SweepError(f"cannot read sweep file {path}: {e.strerror or e}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:  # JSONDecodeError is a ValueError
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise SweepError(f"sweep file {path}: not valid {kind}: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise SweepError(f"sweep file {path}: expected a table at the top level")
    return data


def load_sweep(path, set=MAIN_SET, flows=None):
    """Load the sweep file at ``path`` and expand the points of list ``set``.

    ``flows`` (a tuple of flow names) replaces the file's flows everywhere (``--flows``). The whole
    file is checked, every set, so an error does not depend on which set is run. Raises
    :class:`SweepError` (one line) for anything that would stop the sweep.
    """
    path = Path(path)
    data = _read(path)
    where = f"sweep file {path}"
    sets = {k: v for k, v in data.items() if k not in _TOP_KEYS}
    for key, value in sets.items():
        if not (isinstance(value, list) and all(isinstance(e, dict) for e in value)):
            raise SweepError(f"{where}: unknown key {key!r} (top-level keys: {', '.join(sorted(_TOP_KEYS))}, "
                             f"and lists of configurations such as [[{MAIN_SET}]])")
    if MAIN_SET not in sets:
        raise SweepError(f"{where}: no [[{MAIN_SET}]] entries")
    if set not in sets:
        raise SweepError(f"{where}: no set {set!r} (sets: {', '.join(sets)})")
    default_flows = _flows(data.get("flows", list(FLOWS)), f"{where}: flows")
    default_train = _trainings(data.get("train", []), f"{where}: train")
    expanded = {}
    for name, entries in sets.items():
        if not entries:
            raise SweepError(f"{where}: [[{name}]] is empty")
        points, origin = [], {}
        for k, entry in enumerate(entries, 1):
            context = f"{where}: [[{name}]] entry {k}"
            for point in _expand(entry, context, default_flows, default_train):
                if flows is not None:
                    point = Point(point.config, flows, point.trainings)
                if not point.flows and not point.trainings:
                    raise SweepError(f"{context}: point {point.id} has no flows and no training: nothing to run")
                if point.id in origin:
                    raise SweepError(f"{context}: point {point.id} is also entry {origin[point.id]}'s "
                                     "(give each point once, or distinct ids)")
                origin[point.id] = k
                points.append(point)
        expanded[name] = tuple(points)
    baseline = data.get("baseline")
    if baseline is not None and baseline not in {p.id for p in expanded[MAIN_SET]}:
        raise SweepError(f"{where}: baseline {baseline!r} is not a point id of [[{MAIN_SET}]]")
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        raise SweepError(f"{where}: name must be a string")
    return Sweep(path=path, name=name, set=set, points=expanded[set], baseline=baseline, sets=tuple(sets))


def _flows(value, context):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise SweepError(f"{context}: expected a list of flow names from {', '.join(FLOWS)}")
    bad = [f for f in value if f not in FLOWS]
    if bad:
        raise SweepError(f"{context}: unknown flow {bad[0]!r} (flows: {', '.join(FLOWS)})")
    return tuple(f for f in FLOWS if f in value)


def _trainings(value, context):
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise SweepError(f"{context}: expected a table (recipe, model) or a list of them")
    out, names = [], set()
    for k, spec in enumerate(value, 1):
        here = f"{context} {k}" if len(value) > 1 else context
        for key in ("recipe", "model"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise SweepError(f"{here}: needs {key} = \"...\" (one name; another recipe or model is another "
                                 "entry)")
        for key, item in spec.items():
            if key not in _TRAIN_KEYS and not isinstance(item, (str, int, float, bool)):
                raise SweepError(f"{here}: option {key!r} must be a string, number or boolean")
        runner = spec.get("runner", runners.DEFAULT)
        try:
            target = runners.target(runner)
        except runners.RunnerError as e:
            raise SweepError(f"{here}: {e}") from None
        name = spec.get("name") or f"{spec['recipe']}-{spec['model']}"
        name = re.sub(r"[^A-Za-z0-9._+-]", "_", str(name))
        if name in names:
            raise SweepError(f"{here}: training {name!r} given twice (add name = \"...\" to tell them apart)")
        names.add(name)
        options = {k: v for k, v in spec.items() if k not in ("runner", "name")}
        out.append(Training(name=name, runner=runner, target=target, options=options))
    return tuple(out)


def _axis(param, value, context):
    """The values of one parameter: a list is a grid axis, anything else one value. For an
    ``ints`` parameter a flat list of integers is one value; a list of lists (or strings) is an axis."""
    if param.kind == "ints" and isinstance(value, list) and all(isinstance(v, int) for v in value):
        return [value]
    if isinstance(value, list):
        if not value:
            raise SweepError(f"{context}: {param.name} = [] is an empty grid")
        return value
    return [value]


def _parse(param, value, context):
    if isinstance(value, (dict, list)) and param.kind != "ints":
        raise SweepError(f"{context}: {param.name}: expected a value, not {json.dumps(value)}")
    try:
        return param.parse(value)
    except UnitError as e:  # Param.parse raises UnitError for every bad value
        raise SweepError(f"{context}: {e}") from None


def _canonical(value):
    """A comparable form of a parsed value: a format by its spec (``e5m2`` = ``fp8_e5m2``)."""
    spec = getattr(value, "spec", None)
    if callable(spec):
        return spec()
    value = json_value(value)
    return tuple(value) if isinstance(value, list) else value


def _expand(entry, context, default_flows, default_train):
    bad = sorted(set(entry) - _ENTRY_KEYS)
    if bad:
        raise SweepError(f"{context}: unknown key {bad[0]!r} (keys: {', '.join(sorted(_ENTRY_KEYS))})")
    name = entry.get("unit")
    if not isinstance(name, str):
        raise SweepError(f"{context}: needs unit = \"...\"")
    try:
        unit = find_unit(name)
    except UnitError as e:
        raise SweepError(f"{context}: {e}") from None
    raw = entry.get("params", {})
    if not isinstance(raw, dict):
        raise SweepError(f"{context}: params must be a table of parameter = value")
    axes = {}
    for key, value in raw.items():
        try:
            param = unit.param(key)
        except UnitError as e:
            raise SweepError(f"{context}: {e}") from None
        axes[key] = [_parse(param, v, context) for v in _axis(param, value, context)]
    rules = _exclude_rules(unit, entry.get("exclude", []), context)
    flows = _flows(entry["flows"], f"{context}: flows") if "flows" in entry else default_flows
    trainings = _trainings(entry["train"], f"{context}: train") if "train" in entry else default_train
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    used = [False] * len(rules)
    kept = []
    for params in combos:
        hits = [k for k, rule in enumerate(rules) if _matches(rule, params)]
        for k in hits:
            used[k] = True
        if not hits:
            kept.append(params)
    for k, hit in enumerate(used):
        if not hit:
            raise SweepError(f"{context}: exclude rule {k + 1} matches no point of the grid")
    if not kept:
        raise SweepError(f"{context}: every point of the grid is excluded")
    id_template, label_template = entry.get("id"), entry.get("label")
    for key, template in (("id", id_template), ("label", label_template)):
        if template is not None and not isinstance(template, str):
            raise SweepError(f"{context}: {key} must be a string")
    if id_template is not None and len(kept) > 1 and "{" not in id_template:
        raise SweepError(f"{context}: id {id_template!r} names {len(kept)} points: use {{parameter}} fields, "
                         "e.g. id = \"fma_{stages}\", or leave id out")
    points = []
    for params in kept:
        config = config_from_args(unit, params)
        values = {**{k: _short(v) for k, v in config.resolved.items()}, "unit": unit.name}
        cid, label = config.id, config.label
        if id_template is not None:
            cid = _fill(id_template, values, context, "id")
            if len(kept) > 1 or "{" in id_template:
                cid = re.sub(r"[^A-Za-z0-9._+-]", "_", cid)
            if not _ID.match(cid):
                raise SweepError(f"{context}: id {cid!r}: use letters, digits and . _ + - (a folder name)")
        if label_template is not None:
            label = _fill(label_template, values, context, "label")
        points.append(Point(Config(id=cid, unit=unit, params=params, label=label), flows, trainings))
    return points


def _short(value):
    return ",".join(map(str, value)) if isinstance(value, list) else value


def _fill(template, values, context, key):
    try:
        return template.format_map(values)
    except (KeyError, IndexError, ValueError) as e:
        raise SweepError(f"{context}: {key} {template!r}: no parameter {e}") from None


def _exclude_rules(unit, rules, context):
    if isinstance(rules, dict):
        rules = [rules]
    if not isinstance(rules, list) or not all(isinstance(r, dict) and r for r in rules):
        raise SweepError(f"{context}: exclude must be a list of tables such as {{ stages = 2 }}")
    out = []
    for k, rule in enumerate(rules, 1):
        parsed = {}
        for key, value in rule.items():
            try:
                param = unit.param(key)
            except UnitError as e:
                raise SweepError(f"{context}: exclude rule {k}: {e}") from None
            parsed[key] = {_canonical(_parse(param, v, f"{context}: exclude rule {k}"))
                           for v in _axis(param, value, f"{context}: exclude rule {k}")}
        out.append(parsed)
    return out


def _matches(rule, params):
    """A rule matches a point when each of its parameters has one of the rule's values; a parameter
    the entry leaves at its default never matches (exclude rules name grid parameters)."""
    return all(key in params and _canonical(params[key]) in values for key, values in rule.items())
