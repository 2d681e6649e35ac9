"""The ``lowbit`` command line.

    lowbit list                                   units, their parameters and defaults
    lowbit formats                                format presets and the spec syntax
    lowbit export UNIT [--param value ...] [-o FILE.v] [--name MODULE]
    lowbit synth  UNIT [--param value ...] [synth options]   (see ``lowbit synth --help``)

User errors (unknown unit, parameter or format, bad values, missing tools) print one line
``lowbit: error: ...`` and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import __version__
from .units import UNITS, UnitError, get_unit

EXIT_USAGE = 2

_USAGE = """\
usage: lowbit [--version] COMMAND ...

commands:
  list                       units with their parameters and defaults
  formats                    format presets and the spec syntax
  export UNIT [--param value ...] [-o FILE.v] [--name MODULE]
                             write the unit's Verilog (stdout without -o)
  synth UNIT [--param value ...] [options]
                             area/timing of one configuration (lowbit synth --help)
"""


class UsageError(Exception):
    pass


def _fail(msg):
    print(f"lowbit: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def split_unit_args(unit, argv, extra_flags=(), extra_switches=()):
    """Parse ``--param value`` pairs for ``unit``; return ``(params, extras)``.

    ``extra_flags`` take a value, ``extra_switches`` do not; both land in ``extras`` keyed by their
    name without dashes (``-o`` becomes ``o``).
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
            if i + 1 >= len(argv):
                raise UsageError(f"{key} needs a value")
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


def cmd_list(argv):
    if argv:
        raise UsageError(f"list takes no arguments, got {' '.join(argv)!r}")
    for unit in UNITS.values():
        print(f"{unit.name}: {unit.summary}")
        width = max(len(p.flag) for p in unit.params)
        for p in unit.params:
            extra = f" ({'|'.join(p.choices)})" if p.choices else ""
            print(f"  {p.flag:<{width}}  default {p.describe_default():<10} {p.help}{extra}")
    return 0


def cmd_formats(argv):
    from golden.formats import PRESET_SPECS
    if argv:
        raise UsageError(f"formats takes no arguments, got {' '.join(argv)!r}")
    print("presets:")
    for name, (spec, source) in PRESET_SPECS.items():
        print(f"  {name:<10} = {spec:<28} {source}")
    print("spec syntax: e<E>m<M>[:bias=N][:nosub][:fn|:finite][:r4], int<N>, uint<N>, "
          "fix<W>.<F>, ufix<W>.<F> (see docs/arithmetic.md)")
    return 0


def export_text(unit, params, module_name):
    component = unit.build(**params)
    from .export import to_verilog
    header = [f"unit {unit.name}: lowbit export {unit.name} {unit.describe(params)}".rstrip()]
    return to_verilog(component, module_name, header_lines=header)


def cmd_export(argv):
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print("usage: lowbit export UNIT [--param value ...] [-o FILE.v] [--name MODULE]\n"
                  "parameters per unit: lowbit list")
            return 0
        raise UsageError("export needs a unit name (lowbit list shows them)")
    unit = get_unit(argv[0])
    params, extras = split_unit_args(unit, argv[1:], extra_flags=("-o", "--output", "--name"))
    out = extras.get("o") or extras.get("output")
    name = extras.get("name")
    if name is None:
        stem = Path(out).stem if out else unit.name
        from .export import valid_module_name
        name = stem if valid_module_name(stem) else unit.name
    if out and not Path(out).parent.exists():
        raise UsageError(f"output folder {str(Path(out).parent)!r} does not exist")
    text = export_text(unit, params, name)
    if out:
        from .export import write_atomic
        write_atomic(out, text)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"list": cmd_list, "formats": cmd_formats, "export": cmd_export}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(f"lowbit {__version__}")
        return 0
    cmd = argv[0]
    if cmd == "synth":
        try:
            from .synth import cli_main
        except ImportError:
            return _fail("the synthesis flow is not installed in this checkout")
        return cli_main(argv[1:])
    if cmd not in COMMANDS:
        return _fail(f"unknown command {cmd!r} (commands: {', '.join([*COMMANDS, 'synth'])})")
    try:
        return COMMANDS[cmd](argv[1:])
    except (UsageError, ValueError) as e:
        return _fail(str(e))
    except RuntimeError as e:  # ToolError and friends: a missing or failing external tool
        from .tools import ToolError
        if isinstance(e, ToolError):
            return _fail(str(e))
        raise
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
