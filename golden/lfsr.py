"""Golden model of the LFSR random source (``docs/arithmetic.md`` section 6).

A Fibonacci LFSR of ``width`` bits shifting left: each step computes the XOR of the state bits at
positions ``t - 1`` for every tap ``t`` and shifts it in at bit 0. One random word of ``R`` bits per
rounding: the state advances ``R`` steps and the word is the ``R`` newest bits (the low ``R`` bits of
the new state), so consecutive words are disjoint pieces of one maximal-length sequence.
Word ``i`` (counting from 0 after reset) is ``low_R(S**(R*(i+1))(seed))``.
"""

from __future__ import annotations

import operator

import numpy as np

from .checks import check_int

__all__ = ["DEFAULT_TAPS", "check_lfsr", "lfsr_step", "lfsr_words", "lfsr_word_rows", "is_primitive",
           "reciprocal_taps"]

#: Maximal-length tap sets (exponents of the feedback polynomial; Xilinx XAPP052's table).
#: ``tests/test_golden_lfsr.py`` proves each polynomial primitive.
DEFAULT_TAPS = {
    3: (3, 2), 4: (4, 3), 5: (5, 3), 6: (6, 5), 7: (7, 6), 8: (8, 6, 5, 4), 9: (9, 5), 10: (10, 7),
    11: (11, 9), 12: (12, 6, 4, 1), 13: (13, 4, 3, 1), 14: (14, 5, 3, 1), 15: (15, 14),
    16: (16, 15, 13, 4), 17: (17, 14), 18: (18, 11), 19: (19, 6, 2, 1), 20: (20, 17), 21: (21, 19),
    22: (22, 21), 23: (23, 18), 24: (24, 23, 22, 17), 25: (25, 22), 26: (26, 6, 2, 1),
    27: (27, 5, 2, 1), 28: (28, 25), 29: (29, 27), 30: (30, 6, 4, 1), 31: (31, 28),
    32: (32, 22, 2, 1),
}


def check_lfsr(width, taps=None, seed=1, rand_bits=None):
    """Validate LFSR parameters; return ``(width, taps, seed)`` with default taps filled in."""
    width = check_int("lfsr_width", width, 3, 32)
    if taps is None or taps == ():
        taps = DEFAULT_TAPS[width]
    try:
        taps = tuple(sorted({operator.index(t) for t in taps}, reverse=True))
    except TypeError:
        raise ValueError(f"lfsr_taps must be integers, not {taps!r}") from None
    if taps[0] != width or any(not 1 <= t <= width for t in taps):
        raise ValueError(f"lfsr_taps must be distinct integers in 1..{width} including {width}, "
                         f"not {','.join(map(str, taps))}")
    if len(taps) < 2:
        raise ValueError(f"lfsr_taps needs at least two taps, not {','.join(map(str, taps))}")
    if not is_primitive(width, taps):
        default = ",".join(map(str, DEFAULT_TAPS[width]))
        raise ValueError(f"lfsr_taps {','.join(map(str, taps))} are not maximal-length for width {width} "
                         f"(period below 2**{width} - 1); e.g. {default} are")
    seed = check_int("seed", seed)
    if not 0 < seed < (1 << width):
        raise ValueError(f"seed must be nonzero and below 2**{width} (a zero state never leaves zero), "
                         f"not {seed}")
    if rand_bits is not None:
        rand_bits = check_int("rand_bits", rand_bits)
        if not 1 <= rand_bits <= width:
            raise ValueError(f"rand_bits must be between 1 and lfsr_width={width}, not {rand_bits}")
    return width, taps, seed


def reciprocal_taps(width, taps=None):
    """Taps of the reciprocal polynomial (also primitive when ``taps``' is): a second, different
    m-sequence of the same width, used where two random streams must not be shifted copies."""
    taps = DEFAULT_TAPS[width] if taps is None else taps
    return tuple(sorted({width} | {width - t for t in taps if t != width}, reverse=True))


def lfsr_step(state, width, taps):
    """One step of the LFSR (Python ints)."""
    fb = 0
    for t in taps:
        fb ^= (state >> (t - 1)) & 1
    return ((state << 1) | fb) & ((1 << width) - 1)


def lfsr_words(width, taps, seed, rand_bits, count):
    """The first ``count`` random words (uint64 array) after reset to ``seed``."""
    width, taps, seed = check_lfsr(width, taps, seed, rand_bits)
    out = np.empty(count, dtype=np.uint64)
    state = seed
    mask = (1 << rand_bits) - 1
    for i in range(count):
        for _ in range(rand_bits):
            state = lfsr_step(state, width, taps)
        out[i] = state & mask
    return out


def lfsr_word_rows(width, taps, seed, rand_bits, words, count):
    """The words of ``count`` operations that take ``words`` words each (a unit rounding ``words``
    values per operation, e.g. ``hw.block_quantize``): ``(count, words)``, operation ``i``'s word
    ``j`` being word ``words*i + j`` of :func:`lfsr_words` (the LFSR advances ``words * rand_bits``
    steps per operation)."""
    words = check_int("words", words, 1)
    return lfsr_words(width, taps, seed, rand_bits, words * count).reshape(count, words)


def _polymulmod(a, b, mod, deg):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a >> deg & 1:
            a ^= mod
    return r


def _polypowmod(base, e, mod, deg):
    r = 1
    while e:
        if e & 1:
            r = _polymulmod(r, base, mod, deg)
        base = _polymulmod(base, base, mod, deg)
        e >>= 1
    return r


def _prime_factors(n):
    out, d = set(), 2
    while d * d <= n:
        while n % d == 0:
            out.add(d)
            n //= d
        d += 1
    if n > 1:
        out.add(n)
    return out


def is_primitive(width, taps):
    """Whether the feedback polynomial ``x**w + sum(x**(w-t))`` (t in taps, t < w) ... + 1 is primitive.

    The recurrence ``s[k] = XOR s[k-t]`` has characteristic polynomial ``x**w + sum_{t} x**(w-t)``;
    the LFSR has period ``2**w - 1`` exactly when it is primitive over GF(2).
    """
    mod = 1 << width
    for t in taps:
        mod |= 1 << (width - t)
    order = (1 << width) - 1
    x = 0b10
    if _polypowmod(x, order, mod, width) != 1:
        return False
    return all(_polypowmod(x, order // q, mod, width) != 1 for q in _prime_factors(order))
