"""Sweeps: many configurations (and trainings) run on a local pool or a Dask cluster.

``lowbit sweep FILE`` (:mod:`hw.sweep.cli`) reads a sweep file (:mod:`hw.sweep.spec`), plans
tasks, runs them with :func:`hw.sweep.execute.run_sweep` on a :class:`hw.sweep.pool.LocalPool` or a
:class:`hw.sweep.pool.DaskPool` (workers run :func:`hw.sweep.task.run_task`), and writes
``sweep.json``, ``sweep.csv``, ``sweep.md`` and the Pareto plots (:mod:`hw.sweep.report`).
Training points call a runner from :mod:`hw.sweep.runners`. ``lowbit synth`` runs through the same
engine; see ``docs/synthesis.md`` for the sweep file format.
"""
