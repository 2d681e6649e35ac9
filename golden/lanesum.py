"""Products and the beat lane sum of the chunk-based accumulator (``docs/arithmetic.md`` section 7,
items 1 and 2): exact products with their specials, the alignment window, the exact sum ``S``."""

from __future__ import annotations

import numpy as np

from .checks import check_codes, check_int
from .exactsum import BIG, exact_sum, shr
from .formats import float_format_param
from .raw import Raw, unpack

__all__ = ["lane_sum", "products", "window_sum", "check_window", "MAX_WINDOW"]

U64 = np.uint64
#: Wider than any product span (< 1200 bits): such windows cut nothing.
MAX_WINDOW = 1 << 12


def check_window(window):
    """The lane-sum window: ``"exact"`` or an integer ``w >= 1``."""
    if isinstance(window, str):
        if window == "exact":
            return window
        raise ValueError(f"window must be 'exact' or an integer >= 1, not {window!r}")
    window = check_int("window", window)
    if window < 1:
        raise ValueError(f"window must be 'exact' or an integer >= 1, not {window}")
    return window


def products(a_fmt, b_fmt, a_codes, b_codes):
    """Exact products and their ``P = ea + eb`` (Raw fields broadcast to a common shape)."""
    ra, rb = unpack(a_fmt, a_codes), unpack(b_fmt, b_codes)
    sign = ra.sign ^ rb.sign
    nan = ra.nan | rb.nan | (ra.inf & (rb.sig == 0) & ~rb.nan & ~rb.inf) | \
        (rb.inf & (ra.sig == 0) & ~ra.nan & ~ra.inf)
    inf = (ra.inf | rb.inf) & ~nan
    sig = np.where(nan | inf, U64(0), ra.sig * rb.sig)     # <= 48 bits for formats of <= 24 bits
    exp = ra.exp + rb.exp
    P = exp + (a_fmt.man_bits + b_fmt.man_bits)
    sign, sig, exp, P, nan, inf = np.broadcast_arrays(sign, sig, exp, P, nan, inf)
    return sign, sig, exp, P, nan, inf


def window_sum(sign, sig, exp, P, nan, inf, window):
    """Truncate a beat's products (last axis = lanes) and sum them: ``(S, terms)``.

    ``S`` is a :class:`Raw` over the leading axes; ``terms`` are the truncated products
    ``(sign, sig, exp)`` (for the exact ``inner + S`` fallback).
    """
    valid = (sig != 0) & ~nan & ~inf
    if window != "exact":
        T = np.where(valid, P, -BIG).max(axis=-1)
        g = (T + 2 - min(window, MAX_WINDOW))[..., None]
        sh = g - exp
        cut = valid & (sh > 0)
        sig = np.where(cut, shr(sig, sh), sig)
        exp = np.where(cut, g, exp)
    s_sign, s_sig, s_exp, s_sticky = exact_sum(sign, sig, exp)
    # Specials.
    any_nan = nan.any(axis=-1)
    pos_inf = (inf & (sign == 0)).any(axis=-1)
    neg_inf = (inf & (sign == 1)).any(axis=-1)
    s_nan = any_nan | (pos_inf & neg_inf)
    s_inf = (pos_inf | neg_inf) & ~s_nan
    # Zeros: all products zero -> -0 iff all are -0; otherwise an exact zero sum is +0.
    all_zero = ((~valid & ~nan & ~inf)).all(axis=-1)
    all_neg_zero = all_zero & (sign == 1).all(axis=-1)
    s_sign = np.where(s_nan, 0, np.where(s_inf, neg_inf.astype(np.int64),
                                         np.where(all_zero, all_neg_zero.astype(np.int64), s_sign)))
    special = s_nan | s_inf
    S = Raw(s_sign.astype(np.int64), np.where(special, U64(0), s_sig), np.where(special, 0, s_exp),
            s_sticky & ~special, s_nan, s_inf)
    return S, (sign, sig, exp)


def lane_sum(a_codes, b_codes, a_fmt, b_fmt, window="exact"):
    """The beat lane sum ``S`` (semantics step 2) as a :class:`golden.raw.Raw`.

    ``a_codes`` and ``b_codes`` have shape ``(..., N)``: the last axis holds one beat's ``N`` lanes;
    the result has shape ``(...)``. ``S`` is exact (``sticky`` False, ``sig`` odd or zero) whenever it
    fits in 62 bits -- always for a window ``w`` with ``w + ceil(log2 N) <= 62`` -- and otherwise is its
    leading 62 bits plus a sticky bit (see :func:`exact_sum`). Specials and signed zeros as specified.
    """
    a_fmt, b_fmt = float_format_param("a_fmt", a_fmt), float_format_param("b_fmt", b_fmt)
    a_codes, b_codes = check_codes("a_codes", a_codes), check_codes("b_codes", b_codes)
    shape = np.broadcast_shapes(a_codes.shape, b_codes.shape)
    if len(shape) < 1 or shape[-1] < 1:
        raise ValueError("lane_sum needs at least one lane (last axis)")
    window = check_window(window)
    S, _ = window_sum(*products(a_fmt, b_fmt, a_codes, b_codes), window)
    return S
