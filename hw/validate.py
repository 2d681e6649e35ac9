"""Parameter validation helpers shared by the generators."""

from __future__ import annotations

import functools

__all__ = ["rejects_quietly"]


def rejects_quietly(init):
    """Decorate a component's ``__init__`` that may reject its parameters.

    Amaranth warns (``UnusedElaboratable``, at garbage collection) about every elaboratable never
    elaborated, including one whose constructor raised; a rejected parameter is the caller's error,
    already reported by the exception, so the half-built object is silenced.
    """
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            self._MustUse__silence = True
            raise
    return wrapper
