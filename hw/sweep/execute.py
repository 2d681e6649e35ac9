"""Running a sweep: tasks planned from points, sent to a pool, results written by the client.

:func:`run_sweep` is the one way lowbit runs synthesis (and training) points: ``lowbit sweep``,
``lowbit synth`` (one configuration, the matrix, the smoke set) and :func:`hw.synth.run_configs`
all come here. The client alone writes into the output folder: ``<out>/<point>/<job>/result.json``
holds ``{"key", "result"}`` exactly as ``lowbit synth`` always stored it, written atomically when a
job's result arrives, so an interrupted sweep keeps every finished job and the next run reports
it ``cached``. Failed jobs are not stored (they run again next time). Each task's result is taken
once, whatever a backend does (a rescheduled task that finishes twice counts once).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..export import write_atomic
from .task import Task

__all__ = ["PointOutcome", "SweepRun", "run_sweep", "plan_tasks", "legacy_record", "Progress"]


@dataclass
class PointOutcome:
    """What became of one point: its jobs' results by folder (``generic``, ``train-<name>``), and
    ``status``: ``done``, ``cached`` (every job), ``failed`` (any job) or ``unbuildable`` (the
    generator rejected it); ``reason`` is the first failure's line."""

    point: object
    jobs: dict = field(default_factory=dict)
    status: str = ""
    reason: str = ""
    seconds: float = 0.0


@dataclass
class SweepRun:
    """The outcomes in point order, the tool versions the workers reported (distinct), the wall
    time and the pool's description."""

    outcomes: list
    versions: list
    seconds: float
    pool: str
    lost_workers: int | None = None

    def count(self, status):
        return sum(1 for o in self.outcomes if o.status == status)


def _stored(path):
    """``(key, result)`` of a stored ``result.json``, or ``(None, None)``."""
    try:
        data = json.loads(Path(path).read_text())
        return data["key"], data["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def _folders(point):
    return [*point.flows, *(t.folder for t in point.trainings)]


def plan_tasks(points, out, workers, *, force=False, inplace=True, env=None, liberty=None):
    """The tasks for ``points``: one per point, or one per job of a point when there are fewer
    points than ``workers`` (so that a single configuration still uses every worker; each such
    task elaborates the design itself, about a second against the minutes of a flow)."""
    split = len(points) < workers
    tasks = []
    for point in points:
        dest = Path(out, point.id)
        known = {}
        if not force:
            for folder in _folders(point):
                key, _ = _stored(dest / folder / "result.json")
                if key is not None:
                    known[folder] = key
        common = dict(point=point.id, unit=point.config.unit.name, params=dict(point.config.params),
                      label=point.config.label, known=known, force=force, dest=str(dest), inplace=inplace,
                      env=env if inplace else None, liberty=None if inplace else liberty)
        if split and len(_folders(point)) > 1:
            for flow in point.flows:
                tasks.append(Task(id=f"{point.id}:{flow}", flows=(flow,), **common))
            for training in point.trainings:
                tasks.append(Task(id=f"{point.id}:{training.folder}", trainings=(training,), **common))
        else:
            tasks.append(Task(id=point.id, flows=point.flows, trainings=point.trainings, **common))
    return tasks


class Progress:
    """Progress of a sweep: one line redrawn in place on a terminal, plain lines otherwise.

    Counts points: done, failed (including those that do not build), cached. The ETA is the time
    per task so far (up to the last task that actually ran; cached ones take no time) times the
    tasks left, less the time since that last task, so it counts down between points.
    """

    def __init__(self, total, tasks, stream=None, tty=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.total, self.tasks = total, tasks
        self.counts = {"done": 0, "failed": 0, "cached": 0}
        self.ran = self.finished_tasks = 0
        self.start = self.last = time.monotonic()
        self._drawn = False

    def task_finished(self, ran):
        self.finished_tasks += 1
        if ran:
            self.ran += 1
            self.last = time.monotonic()

    def eta(self):
        left = self.tasks - self.finished_tasks
        if left == 0:
            return "0s"
        if not self.ran:
            return "?"
        now = time.monotonic()
        return _duration(max(0.0, (self.last - self.start) / self.ran * left - (now - self.last)))

    def status(self):
        finished = sum(self.counts.values())
        width = 20
        filled = round(width * finished / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} points: "
                f"{self.counts['done']} done, {self.counts['failed']} failed, {self.counts['cached']} cached, "
                f"ETA {self.eta()}")

    def point_finished(self, outcome):
        kind = "failed" if outcome.status in ("failed", "unbuildable") else outcome.status
        self.counts[kind] += 1
        finished = sum(self.counts.values())
        if kind == "failed":
            line = f"[{finished}/{self.total}] {outcome.point.id}: failed: {outcome.reason}"
        elif kind == "cached":
            line = f"[{finished}/{self.total}] {outcome.point.id}: cached"
        else:
            line = f"[{finished}/{self.total}] {outcome.point.id}: done in {outcome.seconds:.1f} s"
        if self.tty:
            if kind == "failed":
                self._write(f"\r\033[K{line}\n")
            self._write(f"\r\033[K{self.status()}")
            self._drawn = True
        else:
            self._write(f"{line} (ETA {self.eta()})\n")

    def tick(self):
        """Redraw the status line (on a terminal) so that its ETA keeps time between points."""
        if self.tty:
            self._write(f"\r\033[K{self.status()}")
            self._drawn = True

    def close(self):
        if self.tty and self._drawn:
            self._write("\n")
            self._drawn = False

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _liberty_payload(liberty_file):
    """``((name, sha256), bytes)`` of the liberty a cluster's workers are sent."""
    data = Path(liberty_file).read_bytes()
    return (Path(liberty_file).name, hashlib.sha256(data).hexdigest()), data


def run_sweep(points, out, pool, *, env=None, liberty_file=None, force=False, progress=True, stream=None):
    """Run ``points`` on ``pool`` (:class:`~hw.sweep.pool.LocalPool` or
    :class:`~hw.sweep.pool.DaskPool`) with results under ``out``; returns a :class:`SweepRun`.

    ``env`` is the client's :class:`~hw.synth.flows.FlowEnv` (a local pool's tasks use it as it
    is); ``liberty_file`` the liberty chosen for the ASIC flow (a cluster's workers are sent its
    bytes and build their own environment). ``progress``: print progress to ``stream`` (stdout).
    """
    out = Path(out)
    start = time.monotonic()
    liberty, data = (None, None)
    if not pool.inplace and liberty_file is not None:
        liberty, data = _liberty_payload(liberty_file)
    tasks = plan_tasks(points, out, pool.workers, force=force, inplace=pool.inplace, env=env, liberty=liberty)
    by_point = {p.id: PointOutcome(point=p) for p in points}
    waiting = {p.id: 0 for p in points}
    for task in tasks:
        waiting[task.point] += 1
    versions = []
    meter = Progress(len(points), len(tasks), stream) if progress else None
    taken = set()
    try:
        for task, result, reason in pool.run(tasks, data):
            if task is None:  # nothing finished for a while: let the clock move
                if meter:
                    meter.tick()
                continue
            if task.id in taken:  # a backend that delivers a task twice: the first result stands
                continue
            taken.add(task.id)
            outcome = by_point[task.point]
            if result is None:
                for folder in [*task.flows, *(t.folder for t in task.trainings)]:
                    outcome.jobs[folder] = {"status": "failed", "errors": [reason], "result": {"error": reason}}
                ran = True
            else:
                if result.get("versions") and result["versions"] not in versions:
                    versions.append(result["versions"])
                outcome.seconds += result.get("seconds", 0.0)
                ran = False
                for folder, job in result["jobs"].items():
                    outcome.jobs[folder] = _take(job, out / task.point / folder, task.inplace)
                    ran |= job["status"] != "cached"
            if meter:
                meter.task_finished(ran)
            waiting[task.point] -= 1
            if waiting[task.point] == 0:
                _settle(outcome)
                if meter:
                    meter.point_finished(outcome)
    finally:
        if meter:
            meter.close()
    return SweepRun(outcomes=[by_point[p.id] for p in points], versions=versions,
                    seconds=time.monotonic() - start, pool=pool.describe(), lost_workers=pool.deaths)


def _take(job, dest, inplace):
    """Store one job's result where the client keeps it; returns the job with its ``result``
    (read back from the store when the worker found it cached)."""
    job = dict(job)
    status = job["status"]
    if status == "cached":
        _, job["result"] = _stored(dest / "result.json")
        job["errors"] = []
        return job
    if not inplace and status != "unbuildable":
        # The worker ran the job in a folder of its own: whatever the client had here is stale.
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name, text in (job.pop("files", None) or {}).items():
            (dest / Path(name).name).write_text(text)
    if status == "ok":
        dest.mkdir(parents=True, exist_ok=True)
        write_atomic(dest / "result.json", json.dumps({"key": job["key"], "result": job["result"]},
                                                      sort_keys=True, indent=1) + "\n")
    return job


def _settle(outcome):
    jobs = outcome.jobs
    ordered = [jobs[f] for f in _folders(outcome.point) if f in jobs]
    statuses = [j["status"] for j in ordered]
    if statuses and all(s == "unbuildable" for s in statuses[:len(outcome.point.flows)]) and outcome.point.flows:
        outcome.status = "unbuildable"
    elif any(s in ("failed", "unbuildable") for s in statuses):
        outcome.status = "failed"
    elif statuses and all(s == "cached" for s in statuses):
        outcome.status = "cached"
    else:
        outcome.status = "done"
    errors = [e for j in ordered for e in j.get("errors", [])]
    outcome.reason = errors[0] if errors else ""


def legacy_record(outcome):
    """The per-configuration dict of ``lowbit synth``'s report (``report.json`` ``configs``):
    ``id``, ``unit``, ``label``, ``params``, ``macs``, ``lanes``, ``stages``, ``flows``, ``errors``."""
    config, point = outcome.point.config, outcome.point
    flows = {f: outcome.jobs[f].get("result") for f in point.flows if f in outcome.jobs}
    errors = [e for f in point.flows if f in outcome.jobs for e in outcome.jobs[f].get("errors", [])]
    return {"id": config.id, "unit": config.unit.name, "label": config.label, "params": config.resolved,
            "macs": config.macs, "lanes": config.lanes, "stages": config.stages, "flows": flows, "errors": errors}
