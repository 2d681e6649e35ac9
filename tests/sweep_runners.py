"""Training runners for the sweep tests (``tests/test_sweep.py``), imported by pool and Dask worker
processes through ``PYTHONPATH``. They stand in for the training emulation: quick, deterministic,
and one of them kills the process that runs it."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def score(point, workdir):
    """A made-up accuracy that grows with the operand width (so a frontier exists)."""
    width = point["params"]["width"]
    return {"accuracy": round(1 - 2.0 ** -width, 6), "recipe": point["training"]["recipe"]}


score.version = "1"


def die_once(point, workdir):
    """Kill this process the first time (leaving its pid in the flag file), score afterwards."""
    flag = Path(point["training"]["flag"])
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return score(point, workdir)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def always_die(point, workdir):
    """Kill this process every time."""
    os.kill(os.getpid(), signal.SIGKILL)


def broken(point, workdir):
    """Fail like a training run that diverged."""
    raise FloatingPointError("loss is nan at step 12\nsecond line not shown")
