"""Parameter checks shared by the golden models (``golden/``) and the generators (``hw/``).

One home for every ``check_*`` helper: each validates one parameter and either returns it
normalized or raises a :class:`ValueError` whose one-line message names the parameter and what it
allows (``lanes must be between 1 and 64, not 0``). The CLI prints that line as it is. Format
parameters are checked in :mod:`golden.formats` (:func:`golden.formats.float_format_param`), which
builds on these.

This module imports nothing else from ``golden``, so every other module may import it.
"""

from __future__ import annotations

import operator

import numpy as np

__all__ = ["ROUNDING_MODES", "MAX_RAND_BITS", "check_int", "check_int_array", "check_bool", "check_choice",
           "check_rounding", "check_rand_bits", "check_codes", "check_rand_words", "check_lanes"]

#: Rounding modes of ``docs/arithmetic.md`` section 2.
ROUNDING_MODES = ("rne", "rna", "rtz", "sr")

#: Widest random-bit input the models and generators accept for stochastic rounding.
MAX_RAND_BITS = 32


def check_int(name, value, lo=None, hi=None, error=ValueError):
    """``value`` as an ``int`` within ``[lo, hi]`` (either bound optional); ``error`` otherwise.

    Booleans and non-integers are rejected. The one-line message names the parameter, e.g.
    ``lanes must be between 1 and 64, not 0``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be an integer, not {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise error(f"{name} must be an integer, not {value!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise error(f"{name} must be at least {lo}, not {value}")
        if lo is None:
            raise error(f"{name} must be at most {hi}, not {value}")
        raise error(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def check_int_array(name, value, lo=None, hi=None):
    """``value`` as an int64 array of integers (NumPy integer dtype) within ``[lo, hi]`` when both
    bounds are given."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, not {arr.dtype} values")
    arr = arr.astype(np.int64)
    if lo is not None and hi is not None and np.any((arr < lo) | (arr > hi)):
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return arr


def check_bool(name, value):
    """``value`` as a ``bool`` (Python or NumPy booleans only; ``1`` is not ``True`` here)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def check_rounding(rounding, allowed=ROUNDING_MODES):
    """Return ``rounding`` if it is one of ``allowed``; raise :class:`ValueError` otherwise."""
    return check_choice("rounding", rounding, allowed)


def check_rand_bits(rand_bits, rounding="sr"):
    """The random-bit width ``R`` of stochastic rounding (``1 <= R <= 32``); 0 for other modes."""
    if rounding != "sr":
        return 0
    if rand_bits is None:
        raise ValueError(f"rand_bits is required for rounding 'sr' (1 to {MAX_RAND_BITS})")
    return check_int("rand_bits", rand_bits, 1, MAX_RAND_BITS)


def check_lanes(k, lanes, hi=64):
    """The lanes of a block unit (products per cycle, at most ``hi``): a divisor of the block size
    ``k``; ``None`` means ``k`` (one block per cycle)."""
    if lanes is None:
        return k
    lanes = check_int("lanes", lanes, 1, hi)
    if k % lanes:
        raise ValueError(f"block size k={k} must be a multiple of lanes={lanes}")
    return lanes


def check_codes(name, codes):
    """``codes`` as an array of integer codes (any NumPy integer dtype; ranges are the format's)."""
    codes = np.asarray(codes)
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"{name} must be an array of integer codes, not dtype {codes.dtype}")
    return codes


def check_rand_words(name, words, shape, rand_bits, compact=False, dtype=None):
    """Random words of ``sr`` (``0 <= r < 2**rand_bits``) broadcast to ``shape``, as uint64.

    With ``compact`` the result is a read-only broadcast view instead, with no copy when ``words`` is
    ``uint16`` or ``uint32`` (word arrays can be as large as a GEMM's products); other dtypes are
    converted to ``dtype``, by default ``uint16`` for ``rand_bits <= 16`` and ``uint32`` otherwise.
    """
    if words is None:
        raise ValueError(f"{name} is required for rounding 'sr' (one {rand_bits}-bit word per rounding)")
    words = np.asarray(words)
    if not np.issubdtype(words.dtype, np.integer):
        raise ValueError(f"{name} must be an array of integers, not dtype {words.dtype}")
    try:
        full = np.broadcast_to(words, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {words.shape} does not broadcast to {shape}") from None
    if full.size and (words.min() < 0 or words.max() >= (1 << rand_bits)):
        raise ValueError(f"{name} values must be in [0, 2**{rand_bits})")
    if compact:
        if dtype is None:
            dtype = words.dtype if words.dtype in (np.uint16, np.uint32) else (
                np.uint16 if rand_bits <= 16 else np.uint32)
        return np.broadcast_to(words.astype(dtype, copy=False), shape)
    return full.astype(np.uint64)
