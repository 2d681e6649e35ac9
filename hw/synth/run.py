"""Running configurations through the flows: parallel jobs, caching, progress lines.

Each (configuration, flow) pair is one job. A job whose ``result.json`` carries the same cache key
(see :func:`hw.synth.flows.flow_key`) is skipped; a failed job leaves no ``result.json`` and is
run again next time.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..export import write_atomic
from ..tools import ToolError
from .flows import flow_key, prepare, run_flow

__all__ = ["run_configs"]

_print_lock = threading.Lock()


def _say(line, stream=None):
    with _print_lock:
        print(line, file=stream or sys.stdout, flush=True)


def _prepare(config):
    """``(prepared, None)`` or ``(None, reason)`` when the unit does not build.

    Units are under development elsewhere, so any exception from building one is reported as the
    configuration being unavailable rather than ending the whole run.
    """
    try:
        return prepare(config), None
    except Exception as e:  # noqa: BLE001 - see docstring
        first = str(e).splitlines()[0] if str(e) else ""
        return None, f"does not build: {type(e).__name__}: {first}".rstrip(": ")


def _job(prepared, flow, out, env, force):
    config = prepared.config
    workdir = Path(out, config.id, flow)
    key = flow_key(prepared, flow, env)
    stored = workdir / "result.json"
    if not force and stored.is_file():
        data = json.loads(stored.read_text())
        if data.get("key") == key:
            _say(f"[{config.tag}] {flow}: cached ({stored})")
            return data["result"], []
    if workdir.exists():
        shutil.rmtree(workdir)

    def progress(step, seconds):
        _say(f"[{config.tag}] {flow}: {step} ... {seconds:.1f} s")

    try:
        result = run_flow(prepared, flow, workdir, env, progress)
    except (ToolError, ValueError) as e:
        _say(f"[{config.tag}] {e}", sys.stderr)
        return {"error": str(e)}, [str(e)]
    errors = [v["error"] for v in result.get("variants", {}).values() if "error" in v]
    for e in errors:
        _say(f"[{config.tag}] {e}", sys.stderr)
    if not errors:
        write_atomic(stored, json.dumps({"key": key, "result": result}, sort_keys=True, indent=1) + "\n")
    return result, errors


def run_configs(configs, flows, out, env, jobs=2, force=False):
    """Run ``flows`` for every configuration in ``jobs`` parallel jobs.

    Returns ``(results, unavailable)``: one dict per configuration that built (in the order of
    ``configs``) and ``{"id", "unit", "reason"}`` for those that did not.
    """
    results, unavailable = {}, []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        prepared = [(c, pool.submit(_prepare, c)) for c in configs]
        pending = []
        for config, future in prepared:
            ready, reason = future.result()
            if ready is None:
                unavailable.append({"id": config.id, "unit": config.unit.name, "reason": reason})
                continue
            results[config.id] = {"id": config.id, "unit": config.unit.name, "label": config.label,
                                  "params": config.resolved, "macs": config.macs, "lanes": config.lanes,
                                  "stages": config.stages,
                                  "flows": {}, "errors": []}
            pending += [(config.id, flow, pool.submit(_job, ready, flow, out, env, force)) for flow in flows]
        for cid, flow, future in pending:
            result, errors = future.result()
            results[cid]["flows"][flow] = result
            results[cid]["errors"] += errors
    return [results[c.id] for c in configs if c.id in results], unavailable
