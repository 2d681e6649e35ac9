"""The task a worker runs: one point (or some of its jobs), results returned as data.

:func:`run_task` is what the local process pool and Dask workers call. It needs nothing from
the client but its :class:`Task` (and, on a cluster, the bytes of the liberty): the design is
elaborated where the task runs, each flow runs in its own work folder, and the results come back
as a dict. The client writes them into ``<out>/<point>/<job>/result.json`` (with the same cache
key as ``lowbit synth``), so no worker ever writes into the client's output folder and a worker
that dies mid-point leaves nothing there that looks finished.

A task is told the cache keys the client already has (``known``): a job whose key matches is
reported ``cached`` without running. The key depends on the worker's tools (see
:func:`hw.synth.flows.flow_key`), so a worker with other tool versions runs the job again rather
than pass off its result as the cached one.

On the client's own machine (the local pool) a task works directly in the client's folders
(``inplace``), which keeps the netlists and logs of every flow where ``lowbit synth`` always kept
them. On a cluster it works in a temporary folder of the worker and sends back the logs of the
jobs that failed; messages then name the client's folders, not the worker's.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..synth.config import Config, find_unit, scripts_dir
from ..synth.flows import FlowEnv, flow_key, prepare, run_flow, tool_versions, unpack_liberty
from ..synth import timing
from . import runners

__all__ = ["Task", "run_task", "training_key", "reason_of", "STATUS"]

#: What a job can come back as: ``ok`` (ran, result stored by the client), ``cached`` (the client's
#: stored result has the same key), ``failed`` (ran and failed; not cached), ``unbuildable`` (the
#: generator rejected the configuration, so no flow could run).
STATUS = ("ok", "cached", "failed", "unbuildable")

#: Logs sent back from a cluster worker are cut to their last this many bytes.
LOG_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for some jobs of one point.

    ``params`` are the configuration's parsed parameter values (as :class:`hw.synth.Config` holds
    them); ``flows`` and ``trainings`` (:class:`hw.sweep.spec.Training`) the jobs; ``known`` maps a
    job's folder (``asic``, ``train-<name>``) to the key of the result the client has stored;
    ``dest`` is the client's folder of the point. ``env`` is the client's
    :class:`~hw.synth.flows.FlowEnv` when the task runs on the client's machine (``inplace``);
    otherwise ``None`` and the worker builds its own, with the liberty ``(file name, sha256)``
    whose bytes come with the call.
    """

    id: str
    point: str
    unit: str
    params: dict
    label: str
    flows: tuple = ()
    trainings: tuple = ()
    known: dict = field(default_factory=dict)
    force: bool = False
    dest: str = "."
    inplace: bool = True
    env: FlowEnv | None = None
    liberty: tuple | None = None


def reason_of(error):
    """One line for an exception: its type and the first line of its message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_task(task, liberty_data=None):
    """Run the jobs of ``task``; returns ``{"task", "point", "jobs": {folder: job}, "versions",
    "host", "seconds"}``. A job is ``{"status", "key", "result", "errors", "seconds"}`` (and
    ``"files"``: log name -> text, for failed jobs of a task not run in place). Failures of the
    design or the tools are results, not exceptions."""
    start = time.monotonic()
    out = {"task": task.id, "point": task.point, "jobs": {}, "versions": None,
           "host": f"{socket.gethostname()}:{os.getpid()}"}
    unit = find_unit(task.unit)
    config = Config(id=task.point, unit=unit, params=task.params, label=task.label)
    scratch = None if task.inplace else Path(tempfile.mkdtemp(prefix="lowbit-point-"))
    try:
        if task.flows:
            env = task.env or _worker_env(task.liberty, liberty_data)
            out["versions"] = env.versions
            prepared, reason = _prepare(config)
            for flow in task.flows:
                if prepared is None:
                    out["jobs"][flow] = {"status": "unbuildable", "errors": [reason], "seconds": 0.0}
                else:
                    out["jobs"][flow] = _flow_job(task, prepared, flow, env, scratch)
        for training in task.trainings:
            out["jobs"][training.folder] = _train_job(task, config, training, scratch)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    out["seconds"] = time.monotonic() - start
    return out


def _prepare(config):
    """``(prepared, None)`` or ``(None, reason)`` when the generator rejects the configuration.

    Any exception from a generator counts as "does not build" (units are developed elsewhere; a
    bad one must not end the sweep). A generator that fails half-way leaves components that were
    never elaborated; they are collected here with Amaranth's warning about them silenced.
    """
    from amaranth.hdl import UnusedElaboratable
    try:
        return prepare(config), None
    except Exception as e:  # noqa: BLE001 - see docstring
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnusedElaboratable)
            gc.collect()
        first = str(e).splitlines()[0] if str(e) else ""
        return None, f"does not build: {type(e).__name__}: {first}".rstrip(": ")


_ENVS = {}


def _worker_env(liberty, data):
    """The flow environment of a worker (cached per process): its own scripts and OpenSTA, and the
    client's liberty written to a folder of its own from ``data``."""
    cached = _ENVS.get(liberty)
    if cached is not None:
        return cached
    root = Path(tempfile.gettempdir(), f"lowbit-sweep-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    source, unpacked, sta = None, None, None
    if liberty is not None:
        name, digest = liberty
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(f"the liberty {name} did not arrive intact (sha256 {digest[:16]})")
        folder = root / "liberty" / digest[:16]
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / name
        if not source.is_file() or hashlib.sha256(source.read_bytes()).hexdigest() != digest:
            fd, tmp = tempfile.mkstemp(dir=folder)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, source)
        unpacked = unpack_liberty(source, folder).resolve()
        sta = timing.find_sta()
    env = FlowEnv(scripts=scripts_dir(), liberty=unpacked, sta=sta, versions=tool_versions(source, sta))
    _ENVS[liberty] = env
    return env


def _flow_job(task, prepared, flow, env, scratch):
    key = flow_key(prepared, flow, env)
    if not task.force and task.known.get(flow) == key:
        return {"status": "cached", "key": key, "seconds": 0.0}
    dest = Path(task.dest, flow)
    workdir = dest if scratch is None else scratch / flow
    if workdir.exists():
        shutil.rmtree(workdir)
    start = time.monotonic()
    try:
        result = run_flow(prepared, flow, workdir, env, lambda step, seconds: None)
        errors = [v["error"] for v in result.get("variants", {}).values() if "error" in v]
    except Exception as e:  # noqa: BLE001 - a tool error (or any other) fails this job, not the sweep
        message = str(e) if isinstance(e, (RuntimeError, ValueError)) and str(e) else f"{flow}: {reason_of(e)}"
        result, errors = {"error": message}, [message]
    job = {"status": "failed" if errors else "ok", "key": key, "result": result, "errors": errors,
           "seconds": time.monotonic() - start}
    if scratch is not None:
        job = _relocate(job, str(workdir), str(dest))
        if errors:
            job["files"] = _logs(workdir)
    return job


def training_key(unit, resolved, training, version):
    """Cache key of one training: the point, the options, the runner's target and ``version``."""
    blob = {"job": "train", "unit": unit, "params": resolved, "options": training.options,
            "target": training.target, "runner_version": version, "lowbit": __version__}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def _train_job(task, config, training, scratch):
    start = time.monotonic()

    def failed(message, key=None):
        return {"status": "failed", "key": key, "result": {"error": message}, "errors": [message],
                "seconds": time.monotonic() - start}

    try:
        run = runners.load(training.target)
    except runners.RunnerError as e:
        return failed(f"train {training.name}: {e}")
    except Exception as e:  # noqa: BLE001 - a runner that fails to import fails its points only
        return failed(f"train {training.name}: cannot load {training.target}: {reason_of(e)}")
    resolved = config.resolved
    key = training_key(config.unit.name, resolved, training, getattr(run, "version", None))
    if not task.force and task.known.get(training.folder) == key:
        return {"status": "cached", "key": key, "seconds": 0.0}
    dest = Path(task.dest, training.folder)
    workdir = dest if scratch is None else scratch / training.folder
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    point = {"id": task.point, "unit": config.unit.name, "params": resolved, "training": dict(training.options)}
    try:
        result = run(point, workdir)
        if not isinstance(result, dict):
            raise TypeError(f"the runner returned {type(result).__name__}, not a dict")
        result = json.loads(json.dumps(result))  # JSON data only, as stored
    except Exception as e:  # noqa: BLE001 - the runner's failure is this point's, not the sweep's
        return failed(f"train {training.name}: {reason_of(e)}", key)
    return {"status": "ok", "key": key, "result": result, "errors": [], "seconds": time.monotonic() - start}


def _relocate(value, old, new):
    """``value`` with the worker's folder ``old`` replaced by the client's ``new`` in every string."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {k: _relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, old, new) for v in value]
    return value


def _logs(workdir):
    """The logs of a failed job (``*.log``, ``*.out``), each cut to its last :data:`LOG_LIMIT` bytes."""
    files = {}
    for path in sorted(Path(workdir).glob("*")):
        if path.suffix in (".log", ".out") and path.is_file():
            data = path.read_bytes()
            files[path.name] = data[-LOG_LIMIT:].decode(errors="replace")
    return files
