"""Command-line arguments shared by the ``lowbit`` commands (``hw.cli``) and ``lowbit synth``
(``hw.synth.cli``): ``--param value`` parsing against a unit's parameters, and per-unit help.

Both command modules import this one; neither imports the other, so there is no import cycle.
"""

from __future__ import annotations

__all__ = ["UsageError", "split_unit_args", "split_options", "unit_help"]


class UsageError(Exception):
    """A user error on the command line; its message is the line after ``lowbit: error:``."""


def split_options(command, argv, flags, switches, stray):
    """A command's options when it takes no unit parameters: ``{name: value or True}``.

    ``flags`` take a value, ``switches`` do not; an unknown option or an argument that is no option
    is a :class:`UsageError` (``stray`` says what the command expected instead).
    """
    i = 0
    while i < len(argv):
        key, eq, _ = argv[i].partition("=")
        if not key.startswith("-"):
            raise UsageError(f"unexpected argument {key!r} ({stray})")
        if key not in flags + switches:
            raise UsageError(f"unknown option {key!r} (lowbit {command} --help lists them)")
        i += 1 if key in switches or eq else 2
    return split_unit_args(_NoParameters(command), argv, flags, switches)[1]


class _NoParameters:
    """A command's stand-in for a unit: no parameter is known (only its extra flags are)."""

    def __init__(self, name):
        self.name, self.params = name, ()

    def param(self, name):
        raise UsageError(f"unknown option {'--' + name.replace('_', '-')!r}")


def split_unit_args(unit, argv, extra_flags=(), extra_switches=()):
    """Parse ``--param value`` pairs for ``unit``; return ``(params, extras)``.

    ``extra_flags`` take a value, ``extra_switches`` do not; both land in ``extras`` keyed by their
    name without dashes (``-o`` becomes ``o``). A value may not start with ``--`` (``--seed --stages 2``
    is a missing value, not the value ``--stages``).
    """
    params, extras = {}, {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, val = arg.partition("=")
        if key in extra_switches:
            if eq:
                raise UsageError(f"{key} takes no value")
            extras[key.lstrip("-").replace("-", "_")] = True
            i += 1
            continue
        if not key.startswith("-"):
            raise UsageError(f"unexpected argument {arg!r} (parameters are --name value)")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UsageError(f"{key} needs a value{_value_hint(unit, key, extra_flags)}")
            val = argv[i + 1]
            i += 2
        else:
            i += 1
        if key in extra_flags:
            extras[key.lstrip("-").replace("-", "_")] = val
            continue
        name = key.lstrip("-").replace("-", "_")
        param = unit.param(name)
        if name in params:
            raise UsageError(f"{key} given twice")
        params[name] = param.parse(val)
    return params, extras


def _value_hint(unit, key, extra_flags):
    """`` (...)`` saying what a flag takes, for the missing-value message."""
    if key in extra_flags:
        return ""
    name = key.lstrip("-").replace("-", "_")
    for p in unit.params:
        if p.name == name:
            what = {"int": "an integer", "ints": "comma-separated integers", "bool": "true or false",
                    "format": "a format spec or preset (lowbit formats)",
                    "block": "a block format or element spec (lowbit formats)",
                    "window": "exact or an integer"}.get(p.kind)
            if p.kind == "choice":
                what = "one of " + ", ".join(p.choices)
            return f" ({what}; default {p.describe_default()})"
    return ""


def unit_help(unit):
    """The unit's summary line and one line per parameter (flag, default, meaning)."""
    lines = [f"{unit.name}: {unit.summary}"]
    width = max(len(p.flag) for p in unit.params)
    for p in unit.params:
        extra = f" ({'|'.join(p.choices)})" if p.choices else ""
        lines.append(f"  {p.flag:<{width}}  default {p.describe_default():<10} {p.help}{extra}")
    return "\n".join(lines) + "\n"
