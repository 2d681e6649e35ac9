"""Compiled (Numba) fast paths of the golden models.

* The chunk-based accumulator: ``gemm``, ``dot`` and ``gemm_mac4`` (:func:`accumulate`), and
  :func:`golden.block.block_gemm`, whose block pairs are the accumulator's beats.
* One rounding into a float format or to an integer (:func:`round_float`, :func:`round_int`): the
  block conversion (:func:`golden.block.quantize_blocks`) and :func:`golden.raw.round_to_int`.
* BHQ's search for its group count (:func:`bhq_costs`, for :func:`golden.quantize.bhq_plan`).

The semantics are those of the general paths (the accumulator's: ``docs/arithmetic.md`` section 7,
:mod:`golden.lanesum`, :mod:`golden.exactsum`, :func:`golden.raw.round_raw`; the others' below);
this module only computes them faster, on float64 values. :func:`applies` says when the
accumulator kernel may be used; the general paths are the definitions and the tests check every
fast path bit-exact against them (``fast=False``) on random and adversarial data.

Why float64 is exact here
-------------------------
* Operands are decoded to float64 (every code of a radix-2 format of at most 24 bits of precision and
  8 exponent bits is a float64), and a product of two of them is exact when ``pa + pb <= 53``; its
  exponent stays inside float64's normal range (magnitudes ``2**-600 ... 2**520``), so no float64
  subnormal or overflow ever occurs, in products, sums or power-of-two scalings.
* A beat's lane sum is formed in float64, in lane order (so ``-0 + -0 = -0`` and a cancelling sum is
  ``+0``, the zero rules of item 2). It is exact when every product is a multiple of ``2**lo`` and
  below ``2**(hi + 1)`` with ``hi + 1 - lo + ceil(log2 N) <= 53``. The kernel checks that bound per
  beat and flags the output otherwise; the caller recomputes flagged outputs on the general path.
  (``N = 1`` without a window is always exact.) A window truncates each product's magnitude to a
  multiple of ``2**g`` with ``trunc(p * 2**-g) * 2**g`` (exact: power-of-two scalings), and a product
  truncated away becomes ``+0`` (item 2).
* Block pairs (``golden.block.block_gemm``, ``docs/arithmetic.md`` 9.5-9.6) are beats of ``N = k``
  lanes whose operands are the elements times their block's scale ``2**s``: exact float64 values
  (elements of at most 16 significant bits, ``|s| <= 127``; block.py checks the magnitudes above),
  NaN for every element under a NaN scale, so the lane sum's specials and zero signs are section
  9.5's. Products have at most ``pa + pb <= 32`` significant bits (``W - 1`` for a ``W``-bit
  fixed-point element) and the bound above decides exactness per beat, as for any beat.
* ``x + y`` for exact float64 accumulator values and lane sums: TwoSum gives ``s = fl(x + y)`` and the
  exact remainder ``err``. If ``err != 0`` and ``s`` is even, ``s`` is moved one float64 ulp toward the
  exact sum (round to odd). Rounding the round-to-odd value to a grid at least two bits coarser than
  float64's gives the same result as rounding the exact sum, for ``rne``, ``rna`` and ``rtz``
  (``p + 2 <= 53``); for ``sr`` it keeps ``floor(|x| / 2**(u - R))`` when the grid ``2**(u - R)`` is at
  least two float64 ulps, i.e. ``M + R <= 51``. IEEE float addition already gives item 3's zeros
  (``x + (-x) = +0``, ``-0 + -0 = -0``) and specials (NaN, ``Inf - Inf``).
* The rounding itself (``docs/arithmetic.md`` 2.1-2.2) is done on exact float64 values: with ``u`` the
  weight of the last kept bit (``max(t, emin) - M``, or ``t - M`` then flush without subnormals),
  ``rne`` is the FPU's own ``(|s| + 2**(u+52)) - 2**(u+52)``, ``sr`` is ``floor((floor(|s| *
  2**(R-u)) + r) / 2**R) * 2**u`` (``r`` added to the ``R`` bits below the last place, the carry kept),
  ``rna``/``rtz`` take ``q = floor(|s| * 2**-u)`` and ``d = |s| * 2**-u - q`` (all exact) and round up
  when ``d >= 1/2`` (``rna``); overflow to Inf or saturation as specified.

State and results stay float64 values inside the kernel; results are encoded to codes once at the end
(exact: every value is representable).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

from .lanesum import MAX_WINDOW

__all__ = ["Tables", "applies", "accumulate", "encode_exact", "MODES"]

#: Rounding-mode numbers of the kernel.
MODES = {"rne": 0, "rna": 1, "rtz": 2, "sr": 3}
_RNE, _RNA, _RTZ, _SR = 0, 1, 2, 3
_TILE = 256                 # outputs per tile: the state arrays stay in L1
_MAG = 0x7FFFFFFFFFFFFFFF


class Tables:
    """Per-format decode tables: value (float64) and hidden-bit exponent ``max(e, 1) - bias``."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.small = fmt.width <= 16
        if self.small:
            codes = fmt.all_codes()
            self.val = fmt.decode(codes)
            self.exp = self._exp(codes).astype(np.int16)

    def _exp(self, codes):
        e = (np.asarray(codes).astype(np.int64) >> self.fmt.man_bits) & ((1 << self.fmt.exp_bits) - 1)
        return np.maximum(e, 1) - self.fmt.bias

    def values(self, codes):
        if self.small:
            return self.val[codes]
        return self.fmt.decode(codes)

    def exps(self, codes):
        """``max(e, 1) - bias`` as int16 (``|e| <= 255``)."""
        if self.small:
            return self.exp[codes]
        return self._exp(codes).astype(np.int16)


def encode_exact(fmt, values):
    """Codes of float64 ``values`` that are exactly values of the radix-2 format ``fmt`` (NaN and
    ``±Inf`` only where ``fmt`` has them): the kernel's results, without a rounding pass (the same
    codes as ``fmt.encode``, ten times faster)."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    bits = v.view(np.int64)
    M = fmt.man_bits
    e = ((bits >> 52) & 0x7FF) - 1023
    normal = e >= fmt.emin
    mant = np.where(normal, ((e + fmt.bias) << M) | ((bits >> (52 - M)) & ((1 << M) - 1)),
                    np.ldexp(np.where(normal, 0.0, np.abs(v)), M - fmt.emin).astype(np.int64))  # / ulp
    code = mant | ((bits < 0).astype(np.int64) << (fmt.width - 1))
    if fmt.has_inf:
        code = np.where(np.isinf(v), fmt.inf_code | ((bits < 0) << (fmt.width - 1)), code)
    if fmt.has_nan:
        code = np.where(np.isnan(v), fmt.nan_code, code)
    return code.astype(fmt.code_dtype)


def applies(acc, rounding, rand_bits, product_bits):
    """Whether the kernel computes this configuration (otherwise use the general path).

    Products of at most ``product_bits <= 53`` significant bits (radix-2 operands: ``pa + pb``), any
    radix-2 accumulator format (``M <= 23``), every rounding mode; ``sr`` needs ``M + R <= 51``.
    """
    if acc.radix != 2 or product_bits > 53:
        return False
    return rounding != "sr" or acc.man_bits + rand_bits <= 51


# -- scalar helpers (inlined into the loops) ----------------------------------------------------------

@intrinsic
def _bits(typingctx, x):
    """The bit pattern of a float64 as int64 (an LLVM bitcast)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, x):
    """The float64 with bit pattern ``x`` (int64)."""
    if x != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


def _at(a, i):
    """``a[i]`` for an array, ``a`` for a scalar: one kernel source for gemm (an operand per row of
    ``A``) and dot (an operand per output)."""


@overload(_at)
def _at_ov(a, i):
    if isinstance(a, types.Array):
        return lambda a, i: a[i]
    return lambda a, i: a


def _row(A, m, k, n0, n1):
    """``A[m, k]`` of a 2-D ``A`` (a scalar), ``A[m, k, n0:n1]`` of a 3-D one (a row over outputs)."""


@overload(_row)
def _row_ov(A, m, k, n0, n1):
    if A.ndim == 3:
        return lambda A, m, k, n0, n1: A[m, k, n0:n1]
    return lambda A, m, k, n0, n1: A[m, k]


@njit(inline="always")
def _pow2(k):
    """``2.0**k`` for ``-1022 <= k <= 1023``."""
    return _from_bits(np.int64(k + 1023) << 52)


@njit(inline="always")
def _add_round(x, y, r, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan):
    """``round(x + y)`` into the accumulator format (one rounding of the exact sum; module docstring).

    ``x``, ``y`` exact float64 values; ``r`` the random word of ``sr`` (as a float64 integer).
    """
    s = x + y
    bp = s - x
    err = (x - (s - bp)) + (y - bp)
    sb = _bits(s)
    mb = sb & _MAG
    finite = (mb >> 52) != 2047
    if finite and err != 0.0 and (sb & 1) == 0:       # round to odd: toward the exact sum
        if (err > 0.0) == (s > 0.0):
            mb += 1
        else:
            mb -= 1
    e = (mb >> 52) - 1023                               # exponent of |s| (zero: -1023)
    lo = emin if sub else emin - 2                      # below 2**(emin-1) everything flushes anyway
    ee = e if e > lo else lo
    u = ee - M
    a = _from_bits(mb)
    if mode == _RNE:
        # The FPU's own rne onto multiples of 2**u: a + 2**(u+52) has its last bit at 2**u
        # (a < 2**(u + M + 1) <= 2**(u + 52)), and subtracting 2**(u+52) again is exact.
        c = _pow2(u + 52)
        m = (a + c) - c
    elif mode == _SR:
        # floor(|x| / 2**u + r / 2**R) = floor((floor(|x| * 2**(R-u)) + r) / 2**R): integers below
        # 2**(M + 1 + R) + 2**R <= 2**53, all exact.
        t = np.floor(a * _pow2(R - u)) + r
        m = np.floor(t * _pow2(-R)) * _pow2(u)
    else:
        y = a * _pow2(-u)
        q = np.floor(y)
        d = y - q
        if mode == _RNA and d >= 0.5:
            q += 1.0
        m = q * _pow2(u)
    if m > maxv:
        m = maxv if (mode == _RTZ or not has_inf) else np.inf
    if not sub and m < minn:
        m = 0.0
    res = np.copysign(m, s)
    if not finite:
        if s != s:
            res = np.nan if has_nan else 0.0
        else:
            res = s if has_inf else np.copysign(maxv, s)
    return res


@njit(inline="always")
def _round_into(dst, x, y, rw, w, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan):
    """``dst[i] = round(x[i] + y[i])`` for ``i < w``; ``rw[i]`` are the words of ``sr`` (float64)."""
    for i in range(w):
        r = rw[i] if mode == _SR else 0.0
        dst[i] = _add_round(x[i], y[i], r, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan)


@njit(inline="always")
def _load_words(rw, row):
    """The words of one rounding per output, strided in memory, into the contiguous float64 ``rw``
    (a separate loop: the rounding loop then vectorizes, which a strided load prevents)."""
    for i in range(row.shape[0]):
        rw[i] = row[i]


@njit(inline="always")
def _round_tile(dst, x, y, rw, w, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan):
    """:func:`_round_into` with the mode a constant in the hot cases (``rne``, ``sr``): the other
    modes' code folds away, which doubles the speed of the loop."""
    if mode == _RNE:
        _round_into(dst, x, y, rw, w, _RNE, R, M, emin, sub, maxv, minn, has_inf, has_nan)
    elif mode == _SR:
        _round_into(dst, x, y, rw, w, _SR, R, M, emin, sub, maxv, minn, has_inf, has_nan)
    else:
        _round_into(dst, x, y, rw, w, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan)


# -- the kernel ------------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy", nogil=True)
def _kernel(Av, Ea, Bv, Eb, scale, rbi, rbo, lanes, cb, window, ps, kbits, mode, R, M, emin, sub, maxv,
            minn, has_inf, has_nan, out, bad):
    """Run the accumulator for every output ``(m, n)`` of ``out`` (float64 values) and flag in ``bad``
    the outputs with a beat whose lane sum may not be exact in float64.

    ``Av[m, k]`` is a float64 (gemm: ``(M, K)``) or a row over ``n`` (dot: ``(1, K, N)``); ``Bv`` is
    ``(K, N)``. ``Ea``/``Eb`` are the operands' hidden-bit exponents (used with a window, else any
    shape). ``scale`` ``(M, N)`` multiplies each lane sum (mac4's ``2**lsb_exp``) when it is not
    empty, and then a zero sum is ``+0``. ``window`` 0 means exact. ``rbi`` ``(M, nb, N)`` and ``rbo``
    ``(M, n_outer, N)`` are the random words of ``sr`` (with a stride-0 last axis, :func:`_words`;
    unused otherwise).
    """
    Mr, N = out.shape
    nb = Bv.shape[0] // lanes
    use_scale = scale.shape[0] > 0
    is_sr = mode == _SR
    direct = lanes == 1 and window == 0 and not use_scale
    inner = np.empty(_TILE)
    outer = np.empty(_TILE)
    S = np.empty(_TILE)
    hi = np.empty(_TILE, np.int64)
    lo = np.empty(_TILE, np.int64)
    T = np.empty(_TILE, np.int64)
    g = np.empty(_TILE, np.int64)
    flag = np.empty(_TILE, np.bool_)
    rw = np.zeros(_TILE)
    # Rows are sliced per tile (x[n0:n1], indexed from 0): an index n0 + i of unknown sign would
    # make every access check for a negative index and stop the loops from vectorizing.
    for n0 in range(0, N, _TILE):
        n1 = min(N, n0 + _TILE)
        w = n1 - n0
        for m in range(Mr):
            for i in range(w):
                inner[i] = -0.0
                outer[i] = -0.0
                flag[i] = False
            k_out = 0
            for j in range(nb):
                if direct:
                    a = _row(Av, m, j, n0, n1)
                    brow = Bv[j, n0:n1]
                    for i in range(w):
                        S[i] = _at(a, i) * brow[i]
                elif window == 0:
                    # Exact lane sum in lane order; track the span of the nonzero finite products.
                    for i in range(w):
                        hi[i] = 0
                        lo[i] = 4095
                    for k in range(j * lanes, (j + 1) * lanes):
                        a = _row(Av, m, k, n0, n1)
                        brow = Bv[k, n0:n1]
                        first = k == j * lanes
                        for i in range(w):
                            p = _at(a, i) * brow[i]
                            S[i] = p if first else S[i] + p
                            ef = (_bits(p) >> 52) & 2047
                            valid = ef != 0 and ef != 2047
                            hi[i] = max(hi[i], ef if valid else 0)
                            lo[i] = min(lo[i], ef if valid else 4095)
                    for i in range(w):
                        # products are multiples of 2**(lo - ps + 1) below 2**(hi + 1)
                        if hi[i] >= lo[i] and hi[i] - lo[i] + ps + kbits > 53:
                            flag[i] = True
                else:
                    # Window: T = max P over nonzero finite products; cut at g = T + 2 - w
                    # (never below the products' last bits, where a cut changes nothing).
                    for i in range(w):
                        T[i] = -(1 << 20)
                        lo[i] = 4095
                    for k in range(j * lanes, (j + 1) * lanes):
                        a = _row(Av, m, k, n0, n1)
                        ea = _row(Ea, m, k, n0, n1)
                        brow = Bv[k, n0:n1]
                        erow = Eb[k, n0:n1]
                        for i in range(w):
                            p = _at(a, i) * brow[i]
                            ef = (_bits(p) >> 52) & 2047
                            valid = ef != 0 and ef != 2047
                            P = np.int64(_at(ea, i)) + np.int64(erow[i])
                            T[i] = max(T[i], P if valid else -(1 << 20))
                            lo[i] = min(lo[i], ef if valid else 4095)
                    for i in range(w):
                        gi = max(T[i] + 2 - window, lo[i] - 1023 - ps + 1)
                        g[i] = gi
                        if lo[i] != 4095 and T[i] + 2 - gi + kbits > 53:
                            flag[i] = True
                    for k in range(j * lanes, (j + 1) * lanes):
                        a = _row(Av, m, k, n0, n1)
                        brow = Bv[k, n0:n1]
                        first = k == j * lanes
                        for i in range(w):
                            p = _at(a, i) * brow[i]
                            ef = (_bits(p) >> 52) & 2047
                            if ef != 0 and ef != 2047:
                                p = np.trunc(p * _pow2(-g[i])) * _pow2(g[i]) + 0.0
                            S[i] = p if first else S[i] + p
                if use_scale:
                    srow = scale[m, n0:n1]
                    for i in range(w):
                        S[i] = S[i] * srow[i] + 0.0
                if is_sr:
                    _load_words(rw, rbi[m, j, n0:n1, 0])
                _round_tile(inner, inner, S, rw, w, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan)
                if cb > 0 and (j + 1) % cb == 0 and j != nb - 1:
                    if is_sr:
                        _load_words(rw, rbo[m, k_out, n0:n1, 0])
                    _round_into(outer, outer, inner, rw, w, mode, R, M, emin, sub, maxv, minn, has_inf,
                                has_nan)
                    for i in range(w):
                        inner[i] = -0.0
                    k_out += 1
            if cb > 0:
                if is_sr:
                    _load_words(rw, rbo[m, k_out, n0:n1, 0])
                _round_into(inner, outer, inner, rw, w, mode, R, M, emin, sub, maxv, minn, has_inf,
                            has_nan)
            orow = out[m, n0:n1]
            brow_ = bad[m, n0:n1]
            for i in range(w):
                orow[i] = inner[i]
                brow_[i] = flag[i]


_EMPTY_F = np.zeros((0, 0))


def _words(r, dtype):
    """Random words ``(M, N, n)`` as the kernel reads them: ``(M, n, N, 2)`` with a stride-0 last axis
    (read at index 0), read-only; a dummy of ``dtype`` for ``None``. Never contiguous, whatever the
    shape and strides of the given words: one compiled signature per word dtype serves them all (a
    contiguous or degenerate shape would type as another layout and compile the kernel again)."""
    if r is None:
        r = np.zeros((1, 1, 1), dtype)
    r = r.transpose(0, 2, 1)[..., None]
    return np.broadcast_to(r, r.shape[:-1] + (2,))


def accumulate(Av, Bv, acc, lanes, chunk, window, rounding, rand_bits, ps, Ea=None, Eb=None,
               scale=None, rbi=None, rbo=None):
    """Run the kernel; return ``(values, bad)``: float64 results ``(M, N)`` and the flags of outputs
    the caller must recompute on the general path.

    ``Av`` ``(M, K)`` (gemm) or ``(1, K, N)`` (one operand per output), ``Bv`` ``(K, N)``: float64
    operand values; ``ps`` bounds the significand bits of a product (``pa + pb``). ``Ea``, ``Eb``:
    hidden-bit exponents of the same shapes (needed with an integer ``window``). ``scale`` ``(M, N)``:
    per-output factor of every lane sum (mac4). ``rbi``, ``rbo``: ``sr`` words ``(M, N, nb)`` and
    ``(M, N, n_outer)``, validated, both ``uint16`` or both ``uint32``
    (:func:`golden.checks.check_rand_words` with ``compact``).
    """
    M = Av.shape[0]
    K, N = Bv.shape
    win = 0 if window == "exact" else min(int(window), MAX_WINDOW)
    if win and (Ea is None or Eb is None):
        raise ValueError("a window needs the operands' exponents (Ea, Eb)")
    empty_e = np.zeros((1,) * Av.ndim, np.int16)
    out = np.empty((M, N))
    bad = np.zeros((M, N), np.bool_)
    sr = rounding == "sr"
    R = rand_bits if sr else 0
    wdt = rbi.dtype if sr else np.uint16
    if sr and (wdt not in (np.uint16, np.uint32) or (rbo is not None and rbo.dtype != wdt)):
        raise ValueError("random words must be uint16 or uint32 arrays of one dtype")
    _kernel(np.ascontiguousarray(Av), empty_e if Ea is None else np.ascontiguousarray(Ea),
            np.ascontiguousarray(Bv), np.zeros((1, 1), np.int16) if Eb is None else np.ascontiguousarray(Eb),
            _EMPTY_F if scale is None else np.ascontiguousarray(scale, dtype=np.float64),
            _words(rbi if sr else None, wdt), _words(rbo if sr else None, wdt),
            int(lanes), int(chunk // lanes) if chunk else 0, win, int(ps), (lanes - 1).bit_length(),
            MODES[rounding], R, acc.man_bits, acc.emin, acc.subnormals, acc.max_value, acc.min_normal,
            acc.has_inf, acc.has_nan, out, bad)
    return out, bad


# -- element rounding (golden.block's conversion, docs/arithmetic.md section 9.4) -------------------
#
# One rounding of exact float64 values into a radix-2 float format is ``_add_round(x, -0.0, ...)``:
# ``x + (-0)`` is ``x`` exactly for every ``x`` (zeros keep their sign), the TwoSum remainder is 0, so
# no round-to-odd step happens and the rounding is that of the module docstring on the exact value.
# It needs ``x`` a float64 normal number or zero whose scalings by ``2**(u+52)``, ``2**(R-u)`` stay
# normal: ``2**-900 <= |x| < 2**901`` (every format's ``emax`` and ``emin - M`` lie within ``±300``:
# exponent fields of at most 8 bits) and, for ``sr``, ``M + R <= 51``; the kernel checks the values
# and reports failure instead of guessing.

_LO_FIELD, _HI_FIELD = 123, 1923     # float64 exponent fields of 2**-900 and 2**900


@njit(inline="always")
def _code_of(v, M, emin, bias, width, inf_code, nan_code):
    """The code of ``v``, a float64 that is exactly a value of the format (as :func:`encode_exact`)."""
    b = _bits(v)
    sign = (b >> 63) & 1
    if v != v:
        return nan_code
    a = abs(v)
    if a == np.inf:
        mag = inf_code
    elif a == 0.0:
        mag = 0
    else:
        e = ((b >> 52) & 2047) - 1023
        if e >= emin:
            mag = ((e + bias) << M) | ((b >> (52 - M)) & ((1 << M) - 1))
        else:
            mag = np.int64(a * _pow2(M - emin))         # subnormal: |v| / 2**(emin - M), exact
    return mag | (sign << (width - 1))


@njit(cache=True, error_model="numpy", nogil=True)
def _round_float_codes(x, rw, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan, clamp, bias, width,
                       inf_code, nan_code, out):
    """``out[i]`` = the code of ``round(x[i])`` in the format, ``±Inf`` results replaced by
    ``±maxv`` when ``clamp``. ``rw[i]``: the words of ``sr`` (else unread). Returns ``False``
    (``out`` then incomplete) if some ``x[i]`` is not zero or a finite number with ``2**-900 <= |x|
    < 2**901``."""
    for i in range(x.size):
        xi = x[i]
        ef = (_bits(xi) >> 52) & 2047
        if xi != 0.0 and (ef < _LO_FIELD or ef > _HI_FIELD):
            return False
        r = np.float64(rw[i]) if mode == _SR else 0.0
        v = _add_round(xi, -0.0, r, mode, R, M, emin, sub, maxv, minn, has_inf, has_nan)
        if clamp and np.isinf(v):
            v = np.copysign(maxv, v)
        out[i] = _code_of(v, M, emin, bias, width, inf_code, nan_code)
    return True


@njit(cache=True, error_model="numpy", nogil=True)
def _round_int_values(t, rw, mode, R, out):
    """``out[i]`` = ``t[i]`` rounded to an integer (int64) as :func:`golden.raw.round_to_int`: NaN
    gives 0, magnitudes are clipped to ``2**62``, the rounding acts on the magnitude and the sign is
    put back. With ``q = floor(|t|)`` and ``f = |t| - q`` (both exact), ``rne`` rounds up when ``f >
    1/2`` or ``f = 1/2`` and ``q`` is odd, ``rna`` when ``f >= 1/2``, ``rtz`` never, ``sr`` when
    ``floor(f * 2**R) + r >= 2**R`` (integers below ``2**33``, exact)."""
    top = np.float64(1 << 62)
    scale = _pow2(R)
    for i in range(t.size):
        ti = t[i]
        if ti != ti:
            out[i] = 0
            continue
        a = min(abs(ti), top)
        q = np.floor(a)
        f = a - q
        if mode == _RNE:
            up = f > 0.5 or (f == 0.5 and np.fmod(q, 2.0) == 1.0)
        elif mode == _RNA:
            up = f >= 0.5
        elif mode == _SR:
            up = np.floor(f * scale) + np.float64(rw[i]) >= scale
        else:
            up = False
        n = np.int64(q) + (1 if up else 0)
        out[i] = -n if ti < 0.0 else n
    return True


def _flat_words(rbits, shape, rounding, rand_bits):
    """The ``sr`` words broadcast to ``shape``, flat uint64 (range-checked as ``round_raw`` does); a
    dummy word otherwise."""
    if rounding != "sr":
        return np.zeros(1, np.uint64)
    if rbits is None:
        raise ValueError("rounding 'sr' needs rbits (the random bits)")
    r = np.ascontiguousarray(np.broadcast_to(np.asarray(rbits), shape), dtype=np.uint64).reshape(-1)
    if r.size and int(r.max()) >> rand_bits:
        raise ValueError(f"random bits out of range for rand_bits={rand_bits}")
    return r


def round_float(x, fmt, rounding, rbits=None, rand_bits=None, clamp=False):
    """Codes of exact float64 values ``x`` rounded into the radix-2 float format ``fmt`` with one
    rounding: ``fmt.encode(x, ...)`` (``clamp``: ``±Inf`` results become ``±max``), or ``None`` when
    this path does not apply (a value outside ``2**-900 ... 2**900`` or non-finite, ``sr`` with
    ``M + R > 51``): the caller then takes the general path. ``rbits`` broadcast to ``x`` (``sr``)."""
    x = np.asarray(x, dtype=np.float64)
    R = rand_bits if rounding == "sr" else 0
    if fmt.radix != 2 or (rounding == "sr" and fmt.man_bits + R > 51):
        return None
    rw = _flat_words(rbits, x.shape, rounding, R)
    out = np.empty(x.shape, fmt.code_dtype)
    ok = _round_float_codes(np.ascontiguousarray(x).reshape(-1), rw, MODES[rounding], R, fmt.man_bits, fmt.emin, fmt.subnormals,
                            fmt.max_value, fmt.min_normal, fmt.has_inf, fmt.has_nan, bool(clamp), fmt.bias,
                            fmt.width, fmt.inf_code if fmt.has_inf else 0, fmt.nan_code if fmt.has_nan else 0,
                            out.reshape(-1))
    return out if ok else None


def round_int(t, rounding, rbits=None, rand_bits=None):
    """The fast path of :func:`golden.raw.round_to_int` (which checks ``rounding`` and ``rand_bits``):
    float64 ``t`` to int64, the same results; ``rbits`` broadcast to ``t`` (``sr``)."""
    t = np.asarray(t, dtype=np.float64)
    R = rand_bits if rounding == "sr" else 0
    rw = _flat_words(rbits, t.shape, rounding, R)
    out = np.empty(t.shape, np.int64)
    _round_int_values(np.ascontiguousarray(t).reshape(-1), rw, MODES[rounding], R, out.reshape(-1))
    return out


# -- BHQ's plan search (golden.quantize.bhq_plan, docs/arithmetic.md section 10.6) ------------------
#
# bhq_plan evaluates its variance model for every group count G = 1 ... N with NumPy float64
# operations; choosing G is an argmin over those N costs, so the compiled search must reproduce each
# cost bit for bit. Every step is an IEEE operation NumPy and LLVM round alike (+ - * / sqrt floor,
# min/max, comparisons; Numba never contracts to FMA without fastmath) except two, reproduced as such:
# * ``np.sum`` of a contiguous float64 vector is ``0.0 + pairwise(v)``, NumPy's pairwise summation
#   (blocks of at most 128 summed with 8 interleaved accumulators, longer vectors split in two halves
#   rounded down to a multiple of 8): :func:`_np_sum` (tested against ``np.sum`` for lengths 0 to 9000).
# * ``np.cbrt`` may use SIMD code whose last bit differs from libm's (and Numba's); its arguments are
#   therefore collected by one pass (:func:`_bhq_groups`) and handed to ``np.cbrt`` itself, and a
#   second pass (:func:`_bhq_model`) consumes the cube roots in the same order.

@njit(inline="always")
def _pairwise_block(a, lo, n):
    """NumPy's pairwise sum of a leaf, ``n <= 128``: 8 interleaved accumulators, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    top = n - n % 8
    while i < top:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise(a, lo, n):
    """NumPy's pairwise sum of ``a[lo:lo+n]`` (``DOUBLE_pairwise_sum``, without the initial 0.0):
    vectors longer than 128 are split at ``n2 = n // 2`` rounded down to a multiple of 8 and the
    halves' sums added, left plus right. The recursion runs on an explicit stack of ``(lo, n,
    state)`` (depth below 64 for any length): Numba cannot cache recursive functions (numba issue
    6061)."""
    if n <= 128:
        return _pairwise_block(a, lo, n)
    stack = np.empty((64, 3), np.int64)
    left = np.empty(64)
    sp = 1
    stack[0, 0], stack[0, 1], stack[0, 2] = lo, n, 0
    ret = 0.0
    while sp > 0:
        t = sp - 1
        l_, n_, st = stack[t, 0], stack[t, 1], stack[t, 2]
        if st == 0 and n_ <= 128:
            ret = _pairwise_block(a, l_, n_)
            sp -= 1
            continue
        n2 = n_ // 2
        n2 -= n2 % 8
        if st == 0:                     # descend into the left half
            stack[t, 2] = 1
            stack[sp, 0], stack[sp, 1], stack[sp, 2] = l_, n2, 0
            sp += 1
        elif st == 1:                   # left half done: keep it, descend into the right half
            left[t] = ret
            stack[t, 2] = 2
            stack[sp, 0], stack[sp, 1], stack[sp, 2] = l_ + n2, n_ - n2, 0
            sp += 1
        else:                           # both done
            ret = left[t] + ret
            sp -= 1
    return ret


@njit(cache=True)
def _np_sum(a, n):
    """``np.sum(a[:n])`` of a contiguous float64 vector, bit for bit."""
    return 0.0 + _pairwise(a, 0, n)


@njit(cache=True, nogil=True)
def _bhq_apportion(ms, G, nf, frac, bucket, counts):
    """``golden.quantize._apportion(N - G, ms[:G])`` into ``nf[:G]``; ``False`` if the floors
    overshoot (never for finite inputs; the caller then takes the reference).

    The ``rest`` extra units go to the largest fractions, ties to the lower index. The fractions lie
    in ``[0, 1)``; bucket ``floor(frac * G)`` is monotonic in ``frac``, so every fraction of a higher
    bucket is larger: one counting pass finds the bucket holding the ``rest``-th largest, every
    fraction above it gets a unit, and the bucket's own fractions are ranked exactly (value down,
    index up) for the units left."""
    n = ms.size
    total = n - G
    sw = _np_sum(ms, G)
    tot = np.float64(total)
    s = 0
    if sw > 0.0:
        for i in range(G):
            q = tot * ms[i] / sw
            fl = np.floor(q)
            nf[i] = np.int64(fl)
            frac[i] = q - fl
            s += nf[i]
    else:                                               # all weights 0: equal weights, np.sum = G
        q = tot * 1.0 / np.float64(G)
        fl = np.floor(q)
        for i in range(G):
            nf[i] = np.int64(fl)
            frac[i] = q - fl
            s += nf[i]
    rest = total - s
    if rest < 0 or rest > G:
        return False
    if rest == 0:
        return True
    for b in range(G):
        counts[b] = 0
    for i in range(G):
        b = min(np.int64(frac[i] * G), G - 1)
        bucket[i] = b
        counts[b] += 1
    top = G - 1
    while counts[top] < rest:                           # units for whole buckets from the top
        rest -= counts[top]
        top -= 1
    c = 0
    for i in range(G):
        if bucket[i] > top:
            nf[i] += 1
        elif bucket[i] == top:
            bucket[c] = i                               # the bucket's members, in index order
            c += 1
    if rest == c:
        for t in range(c):
            nf[bucket[t]] += 1
        return True
    key = np.empty(c)
    for t in range(c):
        key[t] = -frac[bucket[t]]
    rank = np.argsort(key, kind="mergesort")            # stable: ties keep the lower index first
    for t in range(rest):
        nf[bucket[rank[t]]] += 1
    return True


@njit(cache=True, nogil=True)
def _bhq_groups(ms, g0, g1, args, nfs, nf, frac, bucket, counts):
    """Stage 0 of :func:`bhq_costs` over ``G = g0 ... g1 - 1``: each ``G``'s apportionment, appended
    to ``nfs`` (``G`` int32 follower counts), and the cube-root arguments ``(k-1) l1 / (sqrt(k) l2)``
    of its groups with ``k > 1`` and ``l2 > 0``, appended to ``args``, in order; stops before a ``G``
    that would not fit. Returns ``(G reached, arguments written)``; ``G reached = -1``: the
    reference must decide."""
    n = ms.size
    pos = 0
    off = 0
    for G in range(g0, g1):
        if off + G > nfs.size:
            return G, pos
        if not _bhq_apportion(ms, G, nf, frac, bucket, counts):
            return -1, 0
        need = 0
        first = G
        for g in range(G):
            if nf[g] > 0 and ms[min(first, n - 1)] > 0.0:
                need += 1
            first += nf[g]
        if pos + need > args.size:
            return G, pos
        first = G
        for g in range(G):
            nfs[off + g] = nf[g]
            if nf[g] > 0:
                lam2 = ms[min(first, n - 1)]
                if lam2 > 0.0:
                    k = nf[g] + 1
                    args[pos] = np.float64(k - 1) * ms[g] / (np.sqrt(np.float64(k)) * lam2)
                    pos += 1
            first += nf[g]
        off += G
    return g1, pos


@njit(cache=True, nogil=True)
def _bhq_model(ms, g0, g1, roots, nfs, costs, terms):
    """Stage 1 of :func:`bhq_costs`: ``costs[G - 1]`` for ``G = g0 ... g1 - 1`` from stage 0's
    follower counts ``nfs`` and the cube roots ``roots`` of its arguments (in the same order)."""
    n = ms.size
    pos = 0
    off = 0
    for G in range(g0, g1):
        first = G
        for g in range(G):
            nfg = np.int64(nfs[off + g])
            lam1 = ms[g]
            if nfg == 0:
                terms[g] = lam1 * lam1
                continue
            lam2 = ms[min(first, n - 1)]
            first += nfg
            kf = np.float64(nfg + 1)
            sk = np.sqrt(kf)
            if lam2 > 0.0:
                a = min(max(roots[pos], 1.0), kf)          # np.clip(cbrt(...), 1, k)
                pos += 1
            else:
                a = kf
            t = lam1 / (a * sk) + lam2
            terms[g] = (t * t) * (a * a + kf - 1.0)
        costs[G - 1] = _np_sum(terms, G)
        off += G


_BHQ_ARGS = 1 << 16         # cube-root arguments per pass (512 KiB: small buffers stay mapped)
_BHQ_NFS = 1 << 20          # follower counts per pass (4 MiB)


def bhq_costs(ms):
    """The variance-model cost of every group count ``G = 1 ... N`` (``costs[G - 1]``) that
    :func:`golden.quantize.bhq_plan` computes for the ranges ``ms`` (sorted decreasing), bit for
    bit; ``None`` when the reference must decide (non-finite or huge ranges, whose costs could
    overflow, or an apportionment the floors overshoot)."""
    ms = np.ascontiguousarray(ms, dtype=np.float64)
    n = ms.size
    if n == 0 or not np.all(np.isfinite(ms)) or ms.max(initial=0.0) >= 2.0 ** 400 or ms.min() < 0:
        return None
    costs, terms = np.empty(n), np.empty(n)
    nf, frac, bucket, counts = np.empty(n, np.int64), np.empty(n), np.empty(n, np.int64), np.empty(n, np.int64)
    size = n * (n + 1) // 2                                  # every G's follower counts
    args, roots = np.empty(min(_BHQ_ARGS, size)), np.empty(min(_BHQ_ARGS, size))
    nfs = np.empty(max(n, min(_BHQ_NFS, size)), np.int32)
    g = 1
    while g <= n:
        g_stop, count = _bhq_groups(ms, g, n + 1, args, nfs, nf, frac, bucket, counts)
        if g_stop == -1:
            return None
        if g_stop == g:                                      # one G needs more than the buffer
            args, roots = np.empty(2 * args.size), np.empty(2 * args.size)
            continue
        np.cbrt(args[:count], out=roots[:count])             # NumPy's own cube roots
        _bhq_model(ms, g, g_stop, roots, nfs, costs, terms)
        g = g_stop
    return costs
