"""Chunk-based dot-product accumulator (Wang et al. 2018): the golden model.

Wang et al., "Training Deep Neural Networks with 8-bit Floating Point Numbers" (NeurIPS 2018), keep
FP8 products and a 16-bit (1-6-9) accumulator accurate on long dot products by *chunk-based
accumulation*: the products of each chunk of ``CL`` terms are summed into an inner accumulator, and
the chunk sums into an outer one, so the running sum never swamps the small addends for long. This
module defines that unit bit for bit, vectorized with NumPy; the hardware implements exactly this.

Semantics
---------
A dot product of length ``L`` of operand codes ``a_i`` (format ``a_fmt``) and ``b_i`` (``b_fmt``),
both radix-2 float formats, is streamed as ``L/N`` *beats* of ``N`` lanes (``lanes``; ``L`` must be a
multiple of ``N``). The accumulator format ``acc_fmt`` (default ``e6m9``, the IEEE-style 1-6-9), the
rounding ``rne | rna | rtz | sr`` (default ``rne``), the chunk length ``CL`` (``chunk``, default 64;
``CL = 0`` means no chunking; ``CL`` must be a multiple of ``N``) and the alignment window
(``window``: ``"exact"`` or an integer ``w >= 1``) are parameters.

1. *Products.* ``p_i = a_i * b_i`` exactly, with the IEEE specials: NaN if either operand is NaN or
   for ``0 * Inf``; ``±Inf`` if an operand is infinite; the product of zeros is a zero signed by the
   XOR of the signs.
2. *Beat lane sum.* For an operand let ``e = max(e_field, 1) - bias`` (the weight of its hidden-bit
   position; subnormals use ``emin``), and for each nonzero finite product ``P_i = ea_i + eb_i``, so
   ``|p_i| < 2**(P_i + 2)``. Let ``T = max P_i`` over the beat's nonzero finite products. With window
   ``w`` every product's *magnitude* is truncated toward zero to a multiple of ``2**(T + 2 - w)``
   (the largest product keeps ``w`` bits); with ``"exact"`` nothing is truncated. ``S`` is the exact
   sum of the (truncated) products. Specials: a NaN product, or ``+Inf`` and ``-Inf`` together, give
   NaN; otherwise any ``±Inf`` gives that Inf. Zeros: if every product is zero, ``S = -0`` when all
   of them are ``-0`` and ``+0`` otherwise; a sum of products not all zero that cancels exactly (or
   truncates to zero) is ``+0``.
3. *Accumulation.* ``inner`` and ``outer`` start at ``-0`` (the identity of IEEE addition, so ``N =
   1`` without chunking is exactly a chain of fused multiply-adds ``inner = round(a*b + inner)``).
   Each beat does ``inner <- round(inner + S)``: the sum is exact and rounded once into ``acc_fmt``
   (IEEE addition of specials and zeros: ``x + (-x) = +0``, ``(-0) + (-0) = -0``). After every ``CL``
   products (``CL/N`` beats) -- unless that beat is the last of the dot product -- ``outer <-
   round(outer + inner)`` and ``inner <- -0``. After the last beat's inner update the result is
   ``round(outer + inner)`` if ``CL > 0``, else ``inner``. Every rounding is the one rounding of
   ``docs/arithmetic.md`` section 2 (``golden.raw.round_raw``): overflow, subnormals and NaN as there.
4. *Stochastic rounding.* Each rounding consumes one ``R``-bit random word (``rand_bits = R``) from
   one of two independent streams: ``rbits_inner`` (one word per beat, in beat order, shape
   ``(..., L/N)``) and ``rbits_outer`` (one word per outer rounding: the chunk flushes and then the
   final rounding, in order, shape ``(..., ceil(L/CL))``; unused when ``CL = 0``). The model never
   draws randomness itself.

Implementation
--------------
The exact lane sum ``S`` (:mod:`golden.lanesum`) is computed as a fixed-point integer relative to the
beat's lowest product bit: in one int64 when its span fits, otherwise in 32-bit limbs held in int64
(:func:`golden.exactsum.exact_sum`), so it is exact for any operand formats. ``inner + S`` is then formed exactly and rounded once: with
``add_raw`` when ``S`` is exact in at most 49 bits (``add_raw``'s proven domain), otherwise by an exact
multi-term sum of ``inner`` and the beat's products (never by adding a sticky-rounded ``S``, which
would not be exact under cancellation). That is the general path, the definition. The fast path
(:mod:`golden.kernels`, a compiled Numba kernel on exact float64 values with TwoSum and round-to-odd)
computes the same bits for every radix-2 configuration whose products are exact in float64 and every
rounding (``sr`` with ``M + R <= 51``); outputs with a beat whose lane sum it cannot prove exact in
float64 are recomputed on the general path. Tests check it bit-exact against the general path
(``fast=False``). The INT4 x FP4 front end (:func:`golden.mac4.dot_mac4`) feeds
:func:`accumulate_sums`.
"""

from __future__ import annotations

from math import prod

import numpy as np

from .checks import check_codes, check_int, check_rand_bits, check_rand_words, check_rounding
from . import kernels
from .exactsum import exact_sum
from .formats import float_format_param
from .lanesum import check_window, products, window_sum
from .raw import Raw, add_raw, bitlen, round_raw, unpack

__all__ = ["dot", "gemm", "accumulate_sums", "check_params"]

U64 = np.uint64
_ADD_RAW_BITS = 49          # add_raw's operand limit
_BLOCK_ELEMS = 1 << 20      # products materialized at once


# -- parameters -------------------------------------------------------------------------------------

def check_params(L, lanes=1, chunk=64, window="exact"):
    """Validate the shape parameters; return ``(lanes, chunk, window)`` normalized.

    Raises :class:`ValueError` with a one-line message naming the parameter.
    """
    lanes = check_int("lanes", lanes)
    if lanes < 1:
        raise ValueError(f"lanes must be at least 1, not {lanes}")
    chunk = check_int("chunk", chunk)
    if chunk < 0:
        raise ValueError(f"chunk must be 0 (no chunking) or a positive multiple of lanes, not {chunk}")
    if chunk % lanes:
        raise ValueError(f"chunk={chunk} must be a multiple of lanes={lanes}")
    if L < 1:
        raise ValueError("the dot-product length L (last axis) must be at least 1")
    if L % lanes:
        raise ValueError(f"the dot-product length L={L} must be a multiple of lanes={lanes}")
    return lanes, chunk, check_window(window)



# -- accumulation engine ----------------------------------------------------------------------------

def _general_step(acc, inner, S, terms, rounding, rb, R):
    """``round(inner + S)`` for codes ``inner`` and a beat's :class:`Raw` ``S`` (one rounding).

    Precision. The value handed to ``round_raw`` must equal ``inner + S`` up to a sticky bit that
    lies at least ``R`` (<= 32) bits below the rounding position, which for ``acc_fmt`` (precision
    ``p = M + 1 <= 24``) is at most ``M`` bits below the sum's leading bit. Two cases:

    * ``S`` exact in at most 49 bits (no sticky): ``add_raw`` takes two exact operands of at most 49
      bits and keeps at least 58 >= 23 + 32 + 1 bits above its sticky bit -- its proven contract.
    * otherwise ``S`` may carry a sticky bit, and adding a sticky ``S`` is *not* safe: when ``inner``
      cancels the top of ``S`` the result's leading bit drops to where ``S``'s sticky bit was (see
      ``test_cancellation_against_wide_lane_sum``: 1.125*2**31 - 2**-31 - 2**-32 against inner =
      -1.125*2**31). So ``inner`` and the beat's truncated products are summed again, exactly, by
      :func:`exact_sum`, which returns the exact total's leading 62 bits (top at bit 61) and a sticky
      bit: the rounding position is at most ``M <= 23`` bits below bit 61, leaving ``61 - 23 = 38 >=
      32`` bits above the sticky bit.
    """
    ir = unpack(acc, inner)
    wide = ~S.nan & ~S.inf & (S.sticky | (bitlen(S.sig) > _ADD_RAW_BITS))
    if wide.any():
        zero = np.zeros_like(S.sig)
        S_ok = Raw(np.where(wide, 0, S.sign), np.where(wide, zero, S.sig), np.where(wide, 0, S.exp),
                   S.sticky & ~wide, S.nan, S.inf)
    else:
        S_ok = S
    r = add_raw(ir, S_ok)
    fix = wide & ~ir.nan & ~ir.inf
    if fix.any():
        # S is not exact in 49 bits: sum inner and the beat's products exactly in one go (exact_sum),
        # which is exact and keeps 62 bits + sticky of the exact total (never round S first).
        w = np.flatnonzero(fix)
        t_sign, t_sig, t_exp = (t[w] for t in terms)
        sg = np.concatenate([ir.sign[w, None], t_sign], axis=1)
        sgg = np.concatenate([ir.sig[w, None], t_sig], axis=1)
        ex = np.concatenate([ir.exp[w, None], t_exp], axis=1)
        s_, g_, e_, k_ = exact_sum(sg, sgg, ex)     # nonzero terms: an exact zero is +0
        r = Raw(*(np.array(f) for f in r))
        r.sign[w], r.sig[w], r.exp[w], r.sticky[w] = s_, g_, e_, k_
    return round_raw(acc, r, rounding, rbits=rb, rand_bits=R)


def _flush_general(acc, outer, inner, rounding, rb, R):
    return round_raw(acc, add_raw(unpack(acc, outer), unpack(acc, inner)), rounding, rbits=rb, rand_bits=R)


def _engine(a_codes, b_codes, a_fmt, b_fmt, acc, lanes, chunk, window, rounding, rbi, rbo, R):
    """The general path on codes broadcasting to ``(..., L)``; return result codes ``(...)``."""
    shape = np.broadcast_shapes(a_codes.shape, b_codes.shape)
    if len(shape) < 1:
        raise ValueError("a_codes and b_codes need a last axis (the dot-product length L)")
    batch_shape, L = shape[:-1], shape[-1]
    lanes, chunk, window = check_params(L, lanes, chunk, window)
    a_fmt.fields(a_codes), b_fmt.fields(b_codes)          # range checks (one-line ValueErrors)
    B = prod(batch_shape)
    nb = L // lanes
    cb = chunk // lanes
    n_outer = -(-nb // cb) if cb else 0
    if rounding == "sr":
        rbi = check_rand_words("rbits_inner", rbi, batch_shape + (nb,), R).reshape(B, nb)
        rbo = check_rand_words("rbits_outer", rbo, batch_shape + (n_outer,), R).reshape(B, n_outer) \
            if cb else None
    else:
        rbi = rbo = None
    if B == 0:
        return np.zeros(batch_shape, acc.code_dtype)
    neg_zero = np.full(B, acc.sign_mask, np.int64).astype(acc.code_dtype)
    inner, outer = neg_zero.copy(), neg_zero.copy()
    k_out = 0
    blk = max(1, min(nb, _BLOCK_ELEMS // max(1, B * lanes)))
    for j0 in range(0, nb, blk):
        j1 = min(nb, j0 + blk)
        a_blk = a_codes[..., j0 * lanes:j1 * lanes]
        b_blk = b_codes[..., j0 * lanes:j1 * lanes]
        sign, sig, exp, P, nan, inf = products(a_fmt, b_fmt, a_blk, b_blk)
        fields = [np.broadcast_to(f, batch_shape + (f.shape[-1],)).reshape(B, j1 - j0, lanes)
                  for f in (sign, sig, exp, P, nan, inf)]
        S, terms = window_sum(*fields, window)
        for j in range(j0, j1):
            Sj = Raw(*(f[:, j - j0] for f in S))
            tj = tuple(t[:, j - j0] for t in terms)
            inner = _general_step(acc, inner, Sj, tj, rounding, None if rbi is None else rbi[:, j], R)
            if cb and (j + 1) % cb == 0 and j != nb - 1:
                outer = _flush_general(acc, outer, inner, rounding,
                                       None if rbo is None else rbo[:, k_out], R)
                inner = neg_zero.copy()
                k_out += 1
    if cb:
        inner = _flush_general(acc, outer, inner, rounding, None if rbo is None else rbo[:, k_out], R)
    return np.asarray(inner).astype(acc.code_dtype).reshape(batch_shape)


def kernel_words(rounding, rbits_inner, rbits_outer, batch, L, lanes, chunk, R):
    """The ``sr`` words for the fast path: validated, broadcast to ``batch + (L/N,)`` and ``batch +
    (ceil(L/CL),)``, compact (``None`` when unused)."""
    if rounding != "sr":
        return None, None
    rbi = check_rand_words("rbits_inner", rbits_inner, batch + (L // lanes,), R, compact=True)
    rbo = check_rand_words("rbits_outer", rbits_outer, batch + (-(-L // chunk),), R, compact=True,
                           dtype=rbi.dtype) if chunk else None       # one dtype: one kernel signature
    return rbi, rbo


def run_kernel(Av, Bv, Ea, Eb, scale, acc, lanes, chunk, window, rounding, R, rbi, rbo, product_bits,
          general):
    """The kernel for outputs ``(M, N)`` (:func:`golden.kernels.accumulate`), encoded to codes.

    ``rbi``, ``rbo``: the random words of ``sr``, validated, ``(M, N, L/N)`` and ``(M, N,
    ceil(L/CL))`` (:func:`kernel_words`). ``general(rows, cols, rbi, rbo)`` recomputes the outputs
    ``(rows[i], cols[i])`` on the general path: those the kernel flags (a lane sum it cannot prove
    exact in float64).
    """
    vals, bad = kernels.accumulate(Av, Bv, acc, lanes, chunk, window, rounding, R, product_bits,
                                   Ea, Eb, scale, rbi, rbo)
    codes = kernels.encode_exact(acc, vals)
    if bad.any():
        rows, cols = np.nonzero(bad)
        codes[rows, cols] = general(rows, cols, None if rbi is None else rbi[rows, cols],
                                    None if rbo is None else rbo[rows, cols])
    return codes


def _setup(a_fmt, b_fmt, acc_fmt, rounding, rand_bits):
    a_fmt = float_format_param("a_fmt", a_fmt)
    b_fmt = float_format_param("b_fmt", b_fmt)
    acc = float_format_param("acc_fmt", acc_fmt)
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    return a_fmt, b_fmt, acc, R


def dot(a_codes, b_codes, a_fmt, b_fmt, acc_fmt="e6m9", lanes=1, chunk=64, window="exact",
        rounding="rne", rbits_inner=None, rbits_outer=None, rand_bits=None, fast=True):
    """Dot products through the chunk-based accumulator (see the module docstring).

    Parameters
    ----------
    a_codes, b_codes : integer arrays broadcasting to ``(..., L)``
        Operand codes; every leading index is an independent dot product of length ``L``.
    a_fmt, b_fmt, acc_fmt : spec strings or :class:`~golden.formats.FloatFormat` (radix 2)
    lanes : int
        ``N``, products summed per beat; ``L`` must be a multiple.
    chunk : int
        ``CL``, products per chunk (a multiple of ``lanes``), or 0 for no chunking.
    window : ``"exact"`` or int ``w >= 1``
        Alignment window of the beat lane sum.
    rounding : ``"rne" | "rna" | "rtz" | "sr"``
    rbits_inner, rbits_outer : integer arrays, for ``sr`` only
        Random words broadcasting to ``(..., L/N)`` and ``(..., ceil(L/CL))``.
    rand_bits : int
        ``R``, bits per random word (``sr`` only, 1 to 32).
    fast : bool
        Allow the compiled fast path (:mod:`golden.kernels`, where it applies); ``False`` forces the
        general path. Results are identical.

    Returns
    -------
    Codes of ``acc_fmt``, shape ``(...)``.
    """
    a_fmt, b_fmt, acc, R = _setup(a_fmt, b_fmt, acc_fmt, rounding, rand_bits)
    a_codes, b_codes = check_codes("a_codes", a_codes), check_codes("b_codes", b_codes)
    pbits = a_fmt.precision + b_fmt.precision
    if not (fast and kernels.applies(acc, rounding, R, pbits)):
        return _engine(a_codes, b_codes, a_fmt, b_fmt, acc, lanes, chunk, window, rounding,
                       rbits_inner, rbits_outer, R)
    shape = np.broadcast_shapes(a_codes.shape, b_codes.shape)
    if len(shape) < 1:
        raise ValueError("a_codes and b_codes need a last axis (the dot-product length L)")
    batch, L = shape[:-1], shape[-1]
    lanes, chunk, window = check_params(L, lanes, chunk, window)
    a_fmt.fields(a_codes), b_fmt.fields(b_codes)          # range checks (one-line ValueErrors)
    B = prod(batch)
    a2 = np.broadcast_to(a_codes, shape).reshape(B, L)
    b2 = np.broadcast_to(b_codes, shape).reshape(B, L)
    rbi, rbo = (None if r is None else r.reshape(1, B, r.shape[-1])   # the kernel's (1, B, words)
                for r in kernel_words(rounding, rbits_inner, rbits_outer, batch, L, lanes, chunk, R))
    ta, tb = kernels.Tables(a_fmt), kernels.Tables(b_fmt)
    Av = ta.values(a2.T)[None]          # (1, L, B): one operand per output
    Bv = tb.values(b2.T)
    Ea, Eb = (None, None) if window == "exact" else (ta.exps(a2.T)[None], tb.exps(b2.T))

    def general(rows, cols, ri, ro):
        return _engine(a2[cols], b2[cols], a_fmt, b_fmt, acc, lanes, chunk, window, rounding, ri, ro, R)

    codes = run_kernel(Av, Bv, Ea, Eb, None, acc, lanes, chunk, window, rounding, R, rbi, rbo, pbits, general)
    return codes.reshape(batch)


def gemm(A, B, a_fmt, b_fmt, acc_fmt="e6m9", lanes=1, chunk=64, window="exact", rounding="rne",
         rbits_inner=None, rbits_outer=None, rand_bits=None, fast=True):
    """``C = A @ B`` with every ``C[m, n]`` computed exactly as ``dot(A[m, :], B[:, n], ...)``.

    ``A``: ``(M, K)`` codes of ``a_fmt``; ``B``: ``(K, N)`` codes of ``b_fmt``. For ``sr`` the random
    words broadcast to ``(M, N, K/lanes)`` and ``(M, N, ceil(K/chunk))``. Returns ``(M, N)`` codes of
    ``acc_fmt``. The compiled kernel (:mod:`golden.kernels`) runs the outputs tile by tile; the general
    path accumulates them together, one beat at a time, without materializing more than a block of
    the ``M*N*K`` products.
    """
    a_fmt, b_fmt, acc, R = _setup(a_fmt, b_fmt, acc_fmt, rounding, rand_bits)
    A, B = check_codes("A", A), check_codes("B", B)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"gemm needs 2-D A and B, got shapes {A.shape} and {B.shape}")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"gemm: inner dimensions differ: A is {A.shape}, B is {B.shape}")
    BT = np.ascontiguousarray(B.T)
    pbits = a_fmt.precision + b_fmt.precision
    if not (fast and kernels.applies(acc, rounding, R, pbits)):
        return _engine(A[:, None, :], BT[None, :, :], a_fmt, b_fmt, acc, lanes, chunk, window, rounding,
                       rbits_inner, rbits_outer, R)
    (M, K), N = A.shape, B.shape[1]
    lanes, chunk, window = check_params(K, lanes, chunk, window)
    a_fmt.fields(A), b_fmt.fields(B)                      # range checks (one-line ValueErrors)
    ta, tb = kernels.Tables(a_fmt), kernels.Tables(b_fmt)
    Ea, Eb = (None, None) if window == "exact" else (ta.exps(A), tb.exps(B))

    def general(rows, cols, ri, ro):
        return _engine(A[rows], BT[cols], a_fmt, b_fmt, acc, lanes, chunk, window, rounding, ri, ro, R)

    rbi, rbo = kernel_words(rounding, rbits_inner, rbits_outer, (M, N), K, lanes, chunk, R)
    return run_kernel(ta.values(A), tb.values(B), Ea, Eb, None, acc, lanes, chunk, window, rounding, R,
                 rbi, rbo, pbits, general)



# -- accumulation over given beat sums (the INT4 x FP4 front end: golden.mac4.dot_mac4) -------------

def accumulate_sums(S, acc_fmt, chunk_beats, rounding="rne", rbits_inner=None, rbits_outer=None,
                    rand_bits=None, terms=None, init=None):
    """The accumulation of item 3 over given exact beat sums.

    ``S`` is a :class:`~golden.raw.Raw` of shape ``(B, nb)``: beat ``j`` of dot product ``b``.
    ``chunk_beats`` is ``CL / N`` (0: no chunking). Returns ``(B,)`` codes. ``rbits_inner`` ``(B, nb)``
    and ``rbits_outer`` ``(B, ceil(nb / chunk_beats))`` feed ``sr``.

    A beat sum must be exact in at most 49 significant bits (``add_raw``'s domain) unless ``terms``
    are given: ``(sign, sig, exp)`` arrays of shape ``(B, nb, P)``, finite exact terms whose sum is
    the beat sum (zero terms pad). A beat whose ``S`` is wider, or carries a sticky bit, is then
    rounded as ``round(inner + sum of its terms)`` from one exact multi-term sum, exactly as the
    accumulator's own wide beats (section 7, notes); ``S`` still carries the beat's specials.
    ``init`` (``(B,)`` codes of ``acc_fmt``, default ``-0``) is the value ``inner`` starts from: an
    addend of the first rounding (``docs/arithmetic.md`` section 9 uses it for ``block_dot``'s ``c``).
    """
    acc = float_format_param("acc_fmt", acc_fmt)
    check_rounding(rounding)
    R = check_rand_bits(rand_bits, rounding)
    B, nb = S.sig.shape
    n_outer = -(-nb // chunk_beats) if chunk_beats else 0
    if rounding == "sr":
        rbi = check_rand_words("rbits_inner", rbits_inner, (B, nb), R)
        rbo = check_rand_words("rbits_outer", rbits_outer, (B, n_outer), R) if chunk_beats else None
    else:
        rbi = rbo = None
    neg_zero = np.full(B, acc.sign_mask, np.int64).astype(acc.code_dtype)
    if init is None:
        inner = neg_zero.copy()
    else:
        init = check_codes("init", init)
        acc.fields(init)                                   # range check (one-line ValueError)
        inner = np.array(np.broadcast_to(init, (B,))).astype(acc.code_dtype)
    outer, k_out = neg_zero.copy(), 0
    for j in range(nb):
        Sj = Raw(*(f[:, j] for f in S))
        rb = None if rbi is None else rbi[:, j]
        if terms is None:
            inner = round_raw(acc, add_raw(unpack(acc, inner), Sj), rounding, rbits=rb, rand_bits=R)
        else:
            inner = _general_step(acc, inner, Sj, tuple(t[:, j] for t in terms), rounding, rb, R)
        if chunk_beats and (j + 1) % chunk_beats == 0 and j != nb - 1:
            outer = _flush_general(acc, outer, inner, rounding, None if rbo is None else rbo[:, k_out], R)
            inner = neg_zero.copy()
            k_out += 1
    if chunk_beats:
        inner = _flush_general(acc, outer, inner, rounding, None if rbo is None else rbo[:, k_out], R)
    return inner
