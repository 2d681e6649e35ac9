"""Running configurations through the flows from Python: :func:`run_configs`.

A thin front of the sweep engine (:func:`hw.sweep.execute.run_sweep`), the one way lowbit runs
flows: each configuration is a point, run by a local pool of worker processes. A flow whose
``result.json`` carries the same cache key (see :func:`hw.synth.flows.flow_key`) is not run again;
a failed flow leaves no ``result.json`` and is run again next time.
"""

from __future__ import annotations

__all__ = ["run_configs"]


def run_configs(configs, flows, out, env, jobs=2, force=False, progress=True):
    """Run ``flows`` for every configuration on ``jobs`` worker processes.

    Returns ``(results, unavailable)``: one dict per configuration that built (in the order of
    ``configs``; the fields of ``report.json``'s ``configs``) and ``{"id", "unit", "reason"}`` for
    those that did not.
    """
    from ..sweep.execute import legacy_record, run_sweep
    from ..sweep.pool import LocalPool
    from ..sweep.spec import Point

    points = [Point(config, tuple(flows)) for config in configs]
    run = run_sweep(points, out, LocalPool(jobs), env=env, force=force, progress=progress)
    results = [legacy_record(o) for o in run.outcomes if o.status != "unbuildable"]
    unavailable = [{"id": o.point.id, "unit": o.point.config.unit.name, "reason": o.reason}
                   for o in run.outcomes if o.status == "unbuildable"]
    return results, unavailable
