"""Training runners: how a sweep point with a training entry is trained.

lowbit's sweep does not train anything itself. A training entry of a sweep file names a runner
(``runner = "train"`` by default); this registry turns the name into a ``module:function`` target,
and the target is imported where the point runs (a process of the local pool or a Dask worker).
The client never imports training code, and a worker without it fails that point with the one
line ``training emulation not installed: ...`` while the sweep goes on.

Where names come from, first match wins: :func:`register_runner` in the client process; entry
points of the group ``lowbit.runners`` (``name = "module:function"`` in the providing package's
``[project.entry-points."lowbit.runners"]``); the built-in ``train`` = ``train.sweep:run_point``,
the place the training emulation (package ``train``) is expected to provide.

Contract of a runner function ``run(point, workdir)``:

* ``point`` is a dict: ``id``, ``unit``, ``params`` (all parameters, resolved, as JSON data) and
  ``training`` (the entry's options: ``recipe``, ``model`` and any further keys);
* ``workdir`` is an empty folder of its own (:class:`pathlib.Path`), on the machine it runs on;
  files left there are not sent back;
* it returns a dict of JSON data; ``accuracy`` (a number, higher is better) is what the sweep's
  Pareto plot puts against area per MAC;
* an exception fails the point with its first line;
* an optional attribute ``version`` (a string) enters the cache key with the point and the
  options: change it whenever the same point would train to a different result.
"""

from __future__ import annotations

import importlib
import re
from importlib import metadata

__all__ = ["RunnerError", "DEFAULT", "GROUP", "register_runner", "target", "load"]

#: The runner a training entry uses unless it names another.
DEFAULT = "train"
#: Entry-point group in which packages offer runners.
GROUP = "lowbit.runners"

_BUILTIN = {"train": "train.sweep:run_point"}
_REGISTERED = {}
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class RunnerError(Exception):
    """An unknown runner, or one that cannot be loaded; one line."""


def register_runner(name, target_):
    """Make ``name`` run ``target_`` (``"module:function"``) in this process's sweeps.

    The target is imported by the process that runs the point, so its module must be importable
    there (on a cluster: installed on every worker).
    """
    if not _TARGET.match(target_):
        raise RunnerError(f"runner {name!r}: target must be \"module:function\", not {target_!r}")
    _REGISTERED[name] = target_


def _entry_points():
    try:
        return {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}
    except Exception:  # noqa: BLE001 - a broken distribution elsewhere must not stop a sweep
        return {}


def target(name):
    """The ``module:function`` target of runner ``name``; :class:`RunnerError` if none is known."""
    if not isinstance(name, str):
        raise RunnerError(f"runner must be a name, not {name!r}")
    for table in (_REGISTERED, _entry_points(), _BUILTIN):
        if name in table:
            return table[name]
    known = sorted({*_REGISTERED, *_entry_points(), *_BUILTIN})
    raise RunnerError(f"unknown training runner {name!r} (known: {', '.join(known)})")


def load(target_):
    """Import ``target_`` and return the function; :class:`RunnerError` with one line if the module
    is not installed (``training emulation not installed: ...``) or has no such function."""
    module, _, attr = target_.partition(":")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise RunnerError(f"training emulation not installed: {target_} cannot be imported "
                              f"(no module named {e.name!r})") from None
        raise
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise RunnerError(f"training runner {target_}: {module} has no {attr}")
    if not callable(obj):
        raise RunnerError(f"training runner {target_} is not a function")
    return obj
