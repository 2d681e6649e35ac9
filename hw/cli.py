"""The ``lowbit`` command line.

    lowbit list                                   units, their parameters and defaults
    lowbit formats [SPEC ...]                     format presets and the spec syntax (or check SPECs)
    lowbit export UNIT [--param value ...] [-o FILE.v] [--name MODULE]
    lowbit synth  UNIT [--param value ...] [synth options]   (see ``lowbit synth --help``)
    lowbit train  [options]                        training emulation (``lowbit train --help``)
    lowbit sweep  FILE [-j N | --scheduler ADDR] [-o DIR]      (see ``lowbit sweep --help``)

User errors (a missing or unknown command, unknown unit, parameter or format, bad or missing values,
an unusable output path, missing tools) print one line ``lowbit: error: ...`` naming the parameter
and what it allows, and exit with status 2; no traceback, and nothing is half-written (``-o`` writes a
temporary file in the output folder and renames it into place). The module name defaults to the
output file's stem (the unit name on stdout or when the stem is not a Verilog identifier).
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from pathlib import Path

from . import __version__
from .cliargs import UsageError, split_unit_args, unit_help
from .units import UNITS, get_unit

EXIT_USAGE = 2

_USAGE = """\
usage: lowbit [--version] COMMAND ...

commands:
  list                       units with their parameters and defaults
  formats [SPEC ...]         format presets and the spec syntax; with SPECs, their
                             canonical spelling (or a one-line error)
  export UNIT [--param value ...] [-o FILE.v] [--name MODULE]
                             write the unit's Verilog (stdout without -o)
  synth UNIT [--param value ...] [options]
                             area/timing of one configuration (lowbit synth --help)
  train [--recipe NAME ...] [--model mlp|cnn] [--epochs N] [--seeds K] [--data ...] [-o DIR]
                             train through the recipes' golden arithmetic (lowbit train --help)
  sweep FILE [-j N | --scheduler tcp://HOST:PORT] [-o DIR]
                             run a sweep file's points locally or on Dask (lowbit sweep --help)
"""


def _fail(msg):
    print(f"lowbit: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def wants_help(argv):
    return any(a in ("-h", "--help") for a in argv)


def cmd_list(argv):
    if argv:
        raise UsageError(f"list takes no arguments, got {' '.join(argv)!r}")
    for unit in UNITS.values():
        print(unit_help(unit), end="")
    return 0


def cmd_formats(argv):
    from golden.block import BLOCK_PRESET_SPECS, is_block_spec, parse_block_format
    from golden.formats import PRESET_SPECS, parse_format
    if argv:                                # check all the given specs, then spell them out
        fmts = []
        for spec in argv:
            try:
                fmts.append(parse_block_format(spec) if is_block_spec(spec) else parse_format(spec))
            except ValueError as e:
                raise UsageError(f"{spec}: {e}") from None
        for spec, fmt in zip(argv, fmts):
            print(f"{spec} = {fmt.spec()}")
        return 0
    print("presets:")
    for name, (spec, source) in PRESET_SPECS.items():
        print(f"  {name:<10} = {spec:<28} {source}")
    print("spec syntax: e<E>m<M>[:bias=N][:nosub][:fn|:finite][:r4], int<N>, uint<N>, "
          "fix<W>.<F>, ufix<W>.<F> (see docs/arithmetic.md)")
    print("block presets (k elements share one 8-bit scale):")
    for name, (spec, source) in BLOCK_PRESET_SPECS.items():
        print(f"  {name:<10} = {spec:<28} {source}")
    print("block spec syntax: <block preset>[/k], mx:<element spec>[/k], hbfp<m>[/k]; k from 2 to 64, "
          "default 32 (see docs/arithmetic.md section 9)")
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
    if wants_help(argv[1:]):
        print(f"usage: lowbit export {unit.name} [--param value ...] [-o FILE.v] [--name MODULE]")
        print(unit_help(unit), end="")
        return 0
    params, extras = split_unit_args(unit, argv[1:], extra_flags=("-o", "--output", "--name"))
    if "o" in extras and "output" in extras:
        raise UsageError("give -o or --output, not both")
    out = extras.get("o", extras.get("output"))
    if out is not None:
        if not out or out.endswith(("/", os.sep)):
            raise UsageError(f"-o/--output needs a file name, not {out!r}")
        if Path(out).is_dir():
            raise UsageError(f"-o/--output: {out!r} is a folder; give a file name such as {out}/unit.v")
        if not Path(out).parent.is_dir():
            raise UsageError(f"-o/--output: output folder {str(Path(out).parent)!r} does not exist "
                             "(create it first)")
    name = extras.get("name")
    if name is None:
        stem = Path(out).stem if out else unit.name
        from .export import valid_module_name
        name = stem if valid_module_name(stem) else unit.name
    text = export_text(unit, params, name)
    if out is not None:
        from .export import write_atomic
        try:
            write_atomic(out, text)
        except OSError as e:
            raise UsageError(f"-o/--output: cannot write {out!r}: {e.strerror or e}") from None
    else:
        sys.stdout.write(text)
    return 0


def cmd_synth(argv):
    """``lowbit synth``: parses its own options and prints its own one-line errors."""
    from .synth.cli import cli_main
    return cli_main(argv)


def cmd_train(argv):
    """``lowbit train``: parses its own options (``train.cli``)."""
    from train.cli import cli_main
    return cli_main(argv)


def cmd_sweep(argv):
    """``lowbit sweep``: parses its own options and prints its own one-line errors."""
    from .sweep.cli import cli_main
    return cli_main(argv)


COMMANDS = {"list": cmd_list, "formats": cmd_formats, "export": cmd_export, "synth": cmd_synth,
            "train": cmd_train, "sweep": cmd_sweep}


def _silence_unused():
    from amaranth.hdl import UnusedElaboratable
    warnings.simplefilter("ignore", UnusedElaboratable)


def _run_command(cmd, args):
    """Run one command; a user error returns its one-line message instead of raising.

    A generator that fails half-way leaves components that were never elaborated; Amaranth would
    warn about each of them (``UnusedElaboratable``) on stderr when they are collected, so they are
    collected here with that warning silenced: the error stays one line.
    """
    with warnings.catch_warnings():
        try:
            return COMMANDS[cmd](args), None
        except (UsageError, ValueError) as e:
            _silence_unused()
            error = str(e)
        except RuntimeError as e:  # ToolError and friends: a missing or failing external tool
            from .tools import ToolError
            if not isinstance(e, ToolError):
                raise
            _silence_unused()
            error = str(e)
        gc.collect()
    return EXIT_USAGE, " ".join(error.split()) or "invalid arguments"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _fail(f"missing command (commands: {', '.join(COMMANDS)}; lowbit --help)")
    if argv[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0
    if argv[0] == "--version":
        print(f"lowbit {__version__}")
        return 0
    cmd = argv[0]
    if cmd not in COMMANDS:
        return _fail(f"unknown command {cmd!r} (commands: {', '.join(COMMANDS)})")
    try:
        status, error = _run_command(cmd, argv[1:])
    except BrokenPipeError:
        # The reader went away (``lowbit list | head -1``): not an error; keep Python from
        # complaining about the unflushed stdout at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    return _fail(error) if error is not None else status


if __name__ == "__main__":
    sys.exit(main())
