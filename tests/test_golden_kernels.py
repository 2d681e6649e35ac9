"""The compiled fast paths (golden/kernels.py) against the general paths, bit for bit.

Every GEMM path the training recipes use -- 1 lane and N lanes, chunked or not, exact or windowed
lane sums, rne and sr (and rna, rtz), INT4 x FP4 through mac4 -- is run with ``fast=True`` (the
kernel) and ``fast=False`` (the general path: lanesum/exactsum/round_raw, itself checked against
Fractions in test_golden_accumulator.py) on random and adversarial data: cancellation to zero and its
sign, rounding ties, products near overflow and in the subnormal range, Inf/NaN operands, huge and
tiny products in one beat (the kernel's fallback), chunk boundaries with L not a multiple of CL.
Each data set also asserts that the kernel really computed most outputs itself (not the fallback).
The roundings into a float format and to an integer (round_float, round_int) are checked against
FloatFormat.encode / round_to_int's general path and the Fraction reference; the pieces of BHQ's
plan search against NumPy and the reference plan (golden.block and golden.quantize test their
users end to end).
"""

from __future__ import annotations

from zlib import crc32

import numpy as np
import pytest

from fractions import Fraction

from golden import kernels
from golden.accumulator import dot, gemm
from golden.exact import round_int_fraction
from golden.formats import parse_format
from golden.mac4 import OFFSET_MAX, OFFSET_MIN, gemm_mac4
from golden.quantize import _plan_for
from golden.raw import round_to_int

E5M2 = parse_format("e5m2")
E4M3 = parse_format("fp8_e4m3")


def _rng(*key):
    return np.random.default_rng(crc32(repr(key).encode()))


# -- operand data -----------------------------------------------------------------------------------

def _edge_pool(fmt):
    """Edge codes (zeros, smallest subnormal, min normal, max finite, Inf, NaN; both signs), the
    largest subnormal, and codes around 1.0 and 2**-8."""
    mags = [(1 << fmt.man_bits) - 1, fmt.bias << fmt.man_bits, (fmt.bias << fmt.man_bits) | 1,
            (max(fmt.bias - 8, 1) << fmt.man_bits) | 3, fmt.max_code - 1]
    more = np.array([m | s for m in mags for s in (0, fmt.sign_mask)])
    return np.concatenate([fmt.edge_codes(), more])


def _operands(kind, fmt, M, K, N, rng):
    """``(A, B)`` codes of one data kind."""
    if kind == "gauss":
        return fmt.encode(rng.normal(size=(M, K))), fmt.encode(rng.normal(0, 0.5, size=(K, N)))
    if kind == "mixed":             # any code: specials, zeros, subnormals, the whole range
        return rng.integers(0, 1 << fmt.width, (M, K)), rng.integers(0, 1 << fmt.width, (K, N))
    if kind == "edges":             # edge codes among gaussian data
        pool = _edge_pool(fmt)
        A, B = _operands("gauss", fmt, M, K, N, rng)
        A = np.where(rng.random(A.shape) < 0.3, rng.choice(pool, A.shape), A)
        B = np.where(rng.random(B.shape) < 0.3, rng.choice(pool, B.shape), B)
        return A, B
    if kind == "cancel":            # products in pairs p, -p (exact cancellation, signed zeros)
        A, B = _operands("gauss", fmt, M, K, N, rng)
        e = K - K % 2
        B[1:e:2] = B[0:e:2]
        A[:, 1:e:2] = A[:, 0:e:2] ^ fmt.sign_mask
        z = rng.random(A.shape) < 0.1                        # and some signed zeros
        A = np.where(z, rng.integers(0, 2, A.shape) * fmt.sign_mask, A)
        return A, B
    if kind == "big":               # products near the accumulator's overflow, and subnormal ones
        big = fmt.max_code - rng.integers(0, 4, (M, K))
        tiny = rng.integers(1, 1 << fmt.man_bits, (M, K))
        A = np.where(rng.random((M, K)) < 0.5, big, tiny) | (rng.integers(0, 2, (M, K)) * fmt.sign_mask)
        B = np.where(rng.random((K, N)) < 0.5, fmt.max_code - rng.integers(0, 8, (K, N)),
                     rng.integers(1, 1 << fmt.man_bits, (K, N)))
        return A, B | (rng.integers(0, 2, (K, N)) * fmt.sign_mask)
    raise AssertionError(kind)


KINDS = ["gauss", "mixed", "edges", "cancel", "big"]


def _words(rng, shape, R):
    """Random words with the extremes 0 and 2**R - 1 over-represented."""
    w = rng.integers(0, 1 << R, shape)
    u = rng.random(shape)
    w = np.where(u < 0.1, 0, np.where(u > 0.9, (1 << R) - 1, w))
    return w.astype(np.uint16 if R <= 16 else np.uint32)


def _sr_kw(rng, rounding, M, N, K, lanes, chunk, R):
    if rounding != "sr":
        return {}
    return dict(rand_bits=R, rbits_inner=_words(rng, (M, N, K // lanes), R),
                rbits_outer=_words(rng, (M, N, -(-K // chunk) if chunk else 1), R))


def _kernel_direct(A, B, a_fmt, b_fmt, acc, lanes, chunk, window, rounding, R, kw):
    """The kernel's own result (values, fallback flags), bypassing the fallback."""
    ta, tb = kernels.Tables(a_fmt), kernels.Tables(b_fmt)
    Ea, Eb = (None, None) if window == "exact" else (ta.exps(A), tb.exps(B))
    rbi = kw.get("rbits_inner")
    rbo = kw.get("rbits_outer") if chunk else None
    return kernels.accumulate(ta.values(A), tb.values(B), acc, lanes, chunk, window, rounding, R,
                              a_fmt.precision + b_fmt.precision, Ea, Eb, rbi=rbi, rbo=rbo)


# -- gemm: fast against general ---------------------------------------------------------------------

SHAPES = [  # (lanes, chunk, window): the recipes' paths first
    (1, 64, "exact"), (8, 64, 16), (8, 64, "exact"), (8, 64, 10), (1, 0, "exact"), (8, 0, "exact"),
    (4, 16, 3), (1, 8, 2), (2, 6, "exact"),
]


@pytest.mark.parametrize("rounding", ["rne", "sr"])
@pytest.mark.parametrize("shape", SHAPES, ids=[f"N{a}-CL{b}-w{c}" for a, b, c in SHAPES])
def test_gemm_fast_matches_general(shape, rounding):
    lanes, chunk, window = shape
    M, K, N = 5, 96, 12                       # K = 96: the last chunk of 64 is partial
    acc = parse_format("e6m9")
    for kind in KINDS:
        for fa, fb in ((E5M2, E5M2), (E4M3, E5M2)):
            rng = _rng(shape, rounding, kind, str(fa))
            A, B = _operands(kind, fa, M, K, N, rng) if fa is fb else \
                (_operands(kind, fa, M, K, 1, rng)[0], _operands(kind, fb, M, K, N, rng)[1])
            kw = dict(lanes=lanes, chunk=chunk, window=window, rounding=rounding,
                      **_sr_kw(rng, rounding, M, N, K, lanes, chunk, 8))
            got = gemm(A, B, fa, fb, acc, **kw)
            want = gemm(A, B, fa, fb, acc, fast=False, **kw)
            np.testing.assert_array_equal(got, want, err_msg=f"{kind} {fa}x{fb}")
            if kind in ("gauss", "cancel"):   # the kernel computed these itself
                vals, bad = _kernel_direct(A, B, fa, fb, acc, lanes, chunk, window, rounding,
                                           kw.get("rand_bits", 0), kw)
                assert not bad.any()
                np.testing.assert_array_equal(acc.encode(vals), want)


@pytest.mark.parametrize("acc", ["fp16_e6m9", "fp16", "bf16", "fp32", "e4m3", "e5m7:finite"])
@pytest.mark.parametrize("rounding", ["rne", "sr", "rna", "rtz"])
def test_gemm_fast_matches_general_formats(acc, rounding):
    """Other accumulators: no subnormals (flush), fn/finite (saturation), fp32, narrow formats."""
    M, K, N = 4, 80, 10
    for lanes, chunk, window in ((1, 64, "exact"), (8, 64, 16), (8, 16, "exact")):
        for kind in ("gauss", "edges", "big", "cancel"):
            rng = _rng(acc, rounding, lanes, kind)
            A, B = _operands(kind, E5M2, M, K, N, rng)
            if kind == "gauss":
                B = E5M2.encode(E5M2.decode(B) * 2.0 ** rng.integers(-12, 12, (K, N)))
            # R = 28 puts fp32 exactly at the kernel's bound M + R = 51; uint32 words for R > 16
            R = {"fp32": 28, "e4m3": 32}.get(acc, 24) if rounding == "sr" else 8
            kw = dict(lanes=lanes, chunk=chunk, window=window, rounding=rounding,
                      **_sr_kw(rng, rounding, M, N, K, lanes, chunk, R))
            np.testing.assert_array_equal(gemm(A, B, E5M2, E5M2, acc, **kw),
                                          gemm(A, B, E5M2, E5M2, acc, fast=False, **kw),
                                          err_msg=f"{kind} N={lanes} CL={chunk} w={window}")


def test_fallback_is_exercised():
    """Huge and tiny products in one beat span more than float64 holds: the kernel flags those
    outputs and the general path recomputes them (still bit-exact)."""
    rng = _rng("span")
    M, K, N = 3, 64, 8
    A = E5M2.encode(rng.normal(size=(M, K)))
    B = E5M2.encode(rng.normal(size=(K, N)))
    A[:, 0], B[0, :5], B[0, 5:] = 0b0_11110_11, 0b0_11110_10, 0    # ~2**31 products (columns 0-4)
    A[:, 1], B[1, :] = 0b1_00000_01, 0b0_00000_11                   # ~2**-32 products
    for lanes, window in ((8, "exact"), (8, 60), (2, "exact")):
        vals, bad = _kernel_direct(A, B, E5M2, E5M2, parse_format("e6m9"), lanes, 64, window, "rne", 0, {})
        assert bad[:, :5].all() and not bad[:, 5:].any()
        np.testing.assert_array_equal(gemm(A, B, E5M2, E5M2, lanes=lanes, window=window),
                                      gemm(A, B, E5M2, E5M2, lanes=lanes, window=window, fast=False))


def test_ties_and_cancellation_signs():
    """Hand-made beats: ties of inner + S decided by a bit beyond float64's 53 (the round-to-odd
    step), exact cancellation (+0) and all-negative-zero beats (-0), for every mode."""
    c = lambda x: int(E5M2.encode(np.array([x]))[0])  # noqa: E731
    tiny = 0b0_00000_01                                              # 2**-16
    cases = []
    for sgn in (0, 0x80):        # inner = 2**25 (ulp 2**16), S = 2**15 +- 2**-32: around the midpoint
        cases.append(([c(2.0 ** 15), c(2.0 ** 15), tiny], [c(2.0 ** 10), c(1.0), tiny | sgn]))
    cases.append(([c(1.5), c(-1.5), 0x80], [c(2.0), c(2.0), 0]))     # 3 - 3 + (-0 * 0) = +0
    cases.append(([0x80, 0x80, 0], [0, 0, 0x80]))                     # all -0: -0
    cases.append(([0x80, c(2.0 ** -16)], [0, c(-2.0 ** -16)]))        # underflow: -2**-32 stays
    for a, b in cases:
        a, b = np.array(a), np.array(b)
        for rounding in ("rne", "rna", "rtz", "sr"):
            for lanes in (1, len(a)):
                kw = dict(lanes=lanes, chunk=0, rounding=rounding)
                if rounding == "sr":
                    kw |= dict(rand_bits=4, rbits_inner=np.full(len(a) // lanes, 15, np.uint16))
                want = dot(a, b, E5M2, E5M2, fast=False, **kw)
                assert dot(a, b, E5M2, E5M2, **kw) == want
                assert gemm(a[None], b[:, None], E5M2, E5M2, **kw)[0, 0] == want


def test_lane_sum_span_just_beyond_float64():
    """A beat whose exact sum needs 54 bits (2**21 ... 2**-32): float64 would round it; the kernel
    must flag it. inner = -1.5625 * 2**21 cancels the top, leaving -2**-32 (not +0)."""
    c = lambda x: int(E5M2.encode(np.array([x]))[0])  # noqa: E731
    a = np.array([c(-1.25 * 2.0 ** 11), 0, c(1.25 * 2.0 ** 11), 0b1_00000_01])
    b = np.array([c(1.25 * 2.0 ** 10), 0, c(1.25 * 2.0 ** 10), 0b0_00000_01])
    for fast in (True, False):
        for window in ("exact", 60):               # w = 60 cuts at 2**-37: nothing is cut
            kw = dict(lanes=2, chunk=0, window=window, fast=fast)
            got = dot(a, b, E5M2, E5M2, **kw)
            assert parse_format("e6m9").decode(got) == -2.0 ** -32
            assert gemm(a[None], b[:, None], E5M2, E5M2, **kw)[0, 0] == got


def test_window_truncated_to_zero_is_positive():
    """A product truncated away by the window is +0 (item 2): with a -0 product beside it the beat's
    sum is +0, and so is -0 + S."""
    c = lambda x: int(E5M2.encode(np.array([x]))[0])  # noqa: E731
    a, b = np.array([c(-1.0), 0x80]), np.array([c(1.0), 0])           # -1 cut at 2**1 by w = 1; -0
    for fast in (True, False):
        got = dot(a, b, E5M2, E5M2, lanes=2, chunk=0, window=1, fast=fast)
        assert int(got) == 0                                              # +0, not -0 (0x8000)
        assert gemm(a[None], b[:, None], E5M2, E5M2, lanes=2, chunk=0, window=1, fast=fast)[0, 0] == 0


def test_nosub_rounds_with_unbounded_exponent():
    """Without subnormals a value just below 2**emin rounds with its own (unbounded) exponent and
    then flushes (docs/arithmetic.md 2.2): e5m10:nosub, S = 2**-14 - 3 * 2**-27 rounds (rne) to
    2**-14 - 2**-25 and flushes to +0; on the subnormal grid it would round up to 2**-14."""
    c = lambda x: int(E5M2.encode(np.array([x]))[0])  # noqa: E731
    a, b = np.array([c(2.0 ** -7), 0b0_00000_11]), np.array([c(2.0 ** -7), c(-2.0 ** -11)])
    for fast in (True, False):
        assert int(dot(a, b, E5M2, E5M2, "e5m10:nosub", lanes=2, chunk=0, fast=fast)) == 0
        b2 = np.array([c(2.0 ** -7), c(-2.0 ** -12)])                    # 2**-14 - 3 * 2**-28: up
        assert int(dot(a, b2, E5M2, E5M2, "e5m10:nosub", lanes=2, chunk=0, fast=fast)) == 0x0400


@pytest.mark.parametrize("rounding", ["rne", "sr"])
def test_dot_fast_matches_general(rounding):
    """dot: one operand per output (the elementwise kernel), batch shapes and broadcasting."""
    rng = _rng("dot", rounding)
    for lanes, chunk, window in ((1, 64, "exact"), (8, 64, 16), (8, 64, "exact"), (4, 0, 5)):
        for kind in KINDS:
            A, B = _operands(kind, E5M2, 6, 96, 2, rng)
            a = A.reshape(2, 3, 96)
            b = B.T[:, None, :]                                   # (2, 1, 96): broadcasts
            kw = dict(lanes=lanes, chunk=chunk, window=window, rounding=rounding)
            if rounding == "sr":
                kw |= dict(rand_bits=12, rbits_inner=_words(rng, (2, 3, 96 // lanes), 12),
                           rbits_outer=_words(rng, (3, 2) if chunk else (1,), 12))
            got = dot(a, b, E5M2, E5M2, **kw)
            assert got.shape == (2, 3)
            np.testing.assert_array_equal(got, dot(a, b, E5M2, E5M2, fast=False, **kw), err_msg=kind)


def test_words_dtypes_and_broadcast():
    """Random words of any integer dtype, broadcast or not, give the same result."""
    rng = _rng("words")
    A, B = _operands("gauss", E5M2, 3, 64, 4, rng)
    w = rng.integers(0, 256, (3, 4, 64))
    base = gemm(A, B, E5M2, E5M2, rounding="sr", rand_bits=8, rbits_inner=w, rbits_outer=[7], fast=False)
    for dt in (np.uint8, np.uint16, np.uint32, np.int64):
        got = gemm(A, B, E5M2, E5M2, rounding="sr", rand_bits=8, rbits_inner=w.astype(dt),
                   rbits_outer=np.array([7], dt))
        np.testing.assert_array_equal(got, base)
    got = gemm(A, B, E5M2, E5M2, rounding="sr", rand_bits=8, rbits_inner=w[:1, :1, :], rbits_outer=[7])
    np.testing.assert_array_equal(
        got, gemm(A, B, E5M2, E5M2, rounding="sr", rand_bits=8, rbits_inner=w[:1, :1, :], rbits_outer=[7],
                  fast=False))


def test_applies():
    e6m9, fp32 = parse_format("e6m9"), parse_format("fp32")
    assert kernels.applies(e6m9, "rne", 0, 8) and kernels.applies(e6m9, "sr", 32, 8)
    assert kernels.applies(fp32, "sr", 28, 8) and not kernels.applies(fp32, "sr", 29, 8)
    assert not kernels.applies(e6m9, "rne", 0, 54)
    # fp32 operands (48-bit products) and fp32 accumulation with 32 random bits: the general path
    rng = _rng("applies")
    A, B = rng.integers(0, 1 << 32, (2, 8)), rng.integers(0, 1 << 32, (8, 3))
    for kw in (dict(), dict(rounding="sr", rand_bits=32, rbits_inner=rng.integers(0, 1 << 32, (2, 3, 4)),
                            rbits_outer=[0])):
        np.testing.assert_array_equal(gemm(A, B, "fp32", "fp32", "fp32", lanes=2, **kw),
                                      gemm(A, B, "fp32", "fp32", "fp32", lanes=2, fast=False, **kw))


# -- mac4 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rounding", ["rne", "sr", "rtz"])
@pytest.mark.parametrize("acc", ["e6m9", "fp16_e6m9", "fp16"])
def test_gemm_mac4_fast_matches_general(acc, rounding):
    M, K, N = 4, 96, 10
    for lanes, chunk in ((8, 64), (1, 64), (16, 0), (4, 8)):
        for x_signed in (True, False):
            for phase in (0, 1):
                rng = _rng(acc, rounding, lanes, x_signed, phase)
                X, G = rng.integers(0, 16, (M, K)), rng.integers(0, 16, (K, N))
                if phase:                                          # cancellation: pairs x*g, -x*g
                    G[1::2] = G[0::2] ^ 8
                    X[:, 1::2] = X[:, 0::2]
                off = rng.choice([OFFSET_MIN, -40, -20, 0, 7, 20, OFFSET_MAX], (M, N))
                kw = dict(acc_fmt=acc, lanes=lanes, chunk=chunk, rounding=rounding, x_signed=x_signed,
                          **_sr_kw(rng, rounding, M, N, K, lanes, chunk, 8))
                np.testing.assert_array_equal(gemm_mac4(X, G, phase, off, **kw),
                                              gemm_mac4(X, G, phase, off, fast=False, **kw))


@pytest.mark.parametrize("spec", ["e6m9", "fp16_e6m9", "fp16", "bf16", "e4m3", "e5m7:finite", "fp8_e4m3",
                                  "e3m2:bias=0", "e8m0:fn", "fp32"])
def test_encode_exact(spec):
    """The kernel's result encoder against FloatFormat.encode on every value of the format."""
    fmt = parse_format(spec)
    codes = fmt.all_codes() if fmt.width <= 16 else _rng(spec).integers(0, 1 << 32, 100_000)
    values = fmt.decode(codes)
    got = kernels.encode_exact(fmt, values)
    assert got.dtype == fmt.code_dtype
    np.testing.assert_array_equal(got, fmt.encode(values))


@pytest.mark.long
@pytest.mark.parametrize("rounding", ["rne", "sr", "rna", "rtz"])
def test_long_random_sweep(rounding):
    """Many random shapes, seeds, formats and paths (opt-in: --long)."""
    rng = _rng("long", rounding)
    accs = ["e6m9", "fp16_e6m9", "fp16", "bf16", "fp32"]
    for trial in range(400):
        acc = accs[trial % len(accs)]
        lanes = int(rng.choice([1, 2, 4, 8, 16]))
        K = lanes * int(rng.integers(1, 40))
        chunk = int(rng.choice([0, lanes, 4 * lanes, 64 if 64 % lanes == 0 else lanes]))
        window = "exact" if rng.random() < 0.5 else int(rng.integers(1, 40))
        M, N = int(rng.integers(1, 9)), int(rng.integers(1, 300))          # N > 256: two tiles
        fa, fb = (E5M2, E5M2) if trial % 3 else (E4M3, E5M2)
        kind = KINDS[trial % len(KINDS)]
        A = _operands(kind, fa, M, K, 1, rng)[0]
        B = _operands(kind, fb, 1, K, N, rng)[1]
        R = int(rng.integers(1, 52 - parse_format(acc).man_bits if acc != "fp32" else 29))
        kw = dict(lanes=lanes, chunk=chunk, window=window, rounding=rounding,
                  **_sr_kw(rng, rounding, M, N, K, lanes, chunk, min(R, 32)))
        np.testing.assert_array_equal(gemm(A, B, fa, fb, acc, **kw),
                                      gemm(A, B, fa, fb, acc, fast=False, **kw), err_msg=f"trial {trial}: {acc} {kind} M={M} K={K} N={N} {kw.keys()}")


def test_fallback_plumbing(monkeypatch):
    """Outputs the kernel flags are recomputed on the general path with their own random words:
    flag a random half of them (mac4's sums never need it) and compare with the general path."""
    rng = _rng("plumbing")
    real = kernels.accumulate

    def flagging(*args, **kw):
        vals, bad = real(*args, **kw)
        return vals, bad | (rng.random(bad.shape) < 0.5)

    monkeypatch.setattr(kernels, "accumulate", flagging)
    M, K, N = 4, 48, 6
    sr = dict(rounding="sr", **_sr_kw(rng, "sr", M, N, K, 4, 16, 8))
    A, B = _operands("edges", E5M2, M, K, N, rng)
    kw = dict(lanes=4, chunk=16, window=7, **sr)
    np.testing.assert_array_equal(gemm(A, B, E5M2, E5M2, **kw), gemm(A, B, E5M2, E5M2, fast=False, **kw))
    np.testing.assert_array_equal(dot(A[:, None, :], B.T[None], E5M2, E5M2, **kw),
                                  dot(A[:, None, :], B.T[None], E5M2, E5M2, fast=False, **kw))
    X, G = rng.integers(0, 16, (M, K)), rng.integers(0, 16, (K, N))
    off = rng.integers(-30, 30, (M, N))
    kw = dict(lanes=4, chunk=16, **sr)
    np.testing.assert_array_equal(gemm_mac4(X, G, 1, off, **kw), gemm_mac4(X, G, 1, off, fast=False, **kw))


# -- one rounding: round_int (round_to_int's fast path) and round_float ------------------------------

def _int_values(rng, n):
    """float64 values for rounding to integers: every magnitude (subnormal to beyond 2**62), exact
    ties k + 1/2 and their neighbours one ulp away, integers, both zeros, Inf and NaN."""
    wide = rng.standard_normal(n) * np.exp2(rng.integers(-1080, 70, n).astype(float))
    small = rng.uniform(-40, 40, n)
    k = np.floor(rng.uniform(-2.0 ** 20, 2.0 ** 20, n // 4))
    ties = np.concatenate([k + 0.5, np.nextafter(k + 0.5, np.inf), np.nextafter(k + 0.5, -np.inf), k])
    big = np.array([2.0 ** 52 - 0.5, 2.0 ** 52 + 1, 2.0 ** 62, -2.0 ** 62, 2.0 ** 63, 1e300, 0.5, -0.5, 1.5,
                    -2.5, 0.0, -0.0, 5e-324, -5e-324, 1 - 2.0 ** -53, np.inf, -np.inf, np.nan])
    return np.concatenate([wide, small, ties, big])


@pytest.mark.parametrize("rounding, R", [("rne", None), ("rna", None), ("rtz", None), ("sr", 1), ("sr", 16),
                                         ("sr", 32)])
def test_round_int_matches_general_and_fractions(rounding, R):
    rng = _rng("round-int", rounding, R)
    v = _int_values(rng, 4000)
    r = _words(rng, v.shape, R) if rounding == "sr" else None
    got = round_to_int(v, rounding, rbits=r, rand_bits=R)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, round_to_int(v, rounding, rbits=r, rand_bits=R, fast=False))
    finite = np.flatnonzero(np.isfinite(v) & (np.abs(v) < 2.0 ** 62))
    for i in rng.choice(finite, 300, replace=False):           # and the Fraction reference
        assert got[i] == round_int_fraction(Fraction(float(v[i])), rounding,
                                            r=None if r is None else int(r[i]), rand_bits=R), v[i]
    # shapes, broadcast words, errors as the general path's
    assert round_to_int(np.float64(2.5), rounding, rbits=0 if R else None, rand_bits=R).shape == ()
    if rounding == "sr":
        with pytest.raises(ValueError, match=f"random bits out of range for rand_bits={R}"):
            round_to_int(v, "sr", rbits=1 << R, rand_bits=R)
        with pytest.raises(ValueError, match="needs rbits"):
            round_to_int(v, "sr", rand_bits=R)


ROUND_FORMATS = ["fp8_e4m3", "e5m2", "e3m2:finite", "e2m3:finite", "e2m1:finite", "e4m3", "e5m2:nosub",
                 "e3m4:fn", "fp16", "bf16", "fp16_e6m9", "fp32"]


def _float_values(fmt, rng, n):
    """float64 values around a format: every midpoint between neighbouring values and one float64
    ulp either side (both signs), values beyond the largest, random values over the whole range and
    far outside it (subnormal region included), both zeros."""
    if fmt.width <= 16:
        grid = np.unique(np.abs(fmt.decode(fmt.all_codes())))
    else:
        grid = np.unique(np.abs(fmt.decode(rng.integers(0, 1 << fmt.width, 20000))))
    grid = grid[np.isfinite(grid)]
    grid = np.append(grid, 2 * grid[-1] - grid[-2])            # the next grid point above the maximum
    mids = (grid[:-1] + grid[1:]) / 2
    near = np.concatenate([mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf), grid])
    lo, hi = np.log2(grid[1]), np.log2(grid[-1])
    rand = np.exp2(rng.uniform(lo - 8, hi + 4, n)) * rng.uniform(1, 2, n)
    x = np.concatenate([near, rand, [0.0, 2.0 ** -899, 2.0 ** 899]])
    return np.concatenate([x, -x, [-0.0]])


@pytest.mark.parametrize("rounding", ["rne", "rna", "rtz", "sr"])
@pytest.mark.parametrize("spec", ROUND_FORMATS)
def test_round_float_matches_encode(spec, rounding):
    """round_float against FloatFormat.encode (round_raw) on ties, their neighbours, overflow, the
    subnormal range and both zeros; with clamp, Inf results become the largest value."""
    fmt = parse_format(spec)
    rng = _rng("round-float", spec, rounding)
    x = _float_values(fmt, rng, 3000)
    for R in ((1, 16, min(32, 51 - fmt.man_bits)) if rounding == "sr" else (None,)):
        r = _words(rng, x.shape, R) if R else None
        want = fmt.encode(x, rounding, rbits=r, rand_bits=R)
        got = kernels.round_float(x, fmt, rounding, r, R)
        assert got.dtype == fmt.code_dtype
        np.testing.assert_array_equal(got, want, err_msg=f"R={R}")
        if fmt.has_inf:
            clamped = np.where(fmt.is_inf(want), (want & fmt.sign_mask) | fmt.max_code, want)
            np.testing.assert_array_equal(kernels.round_float(x, fmt, rounding, r, R, clamp=True), clamped)


def test_round_float_declines_what_it_cannot_prove():
    fmt = parse_format("e5m2")
    for bad in (2.0 ** -950, 2.0 ** 950, np.inf, np.nan):
        assert kernels.round_float(np.array([1.0, bad]), fmt, "rne") is None
    assert kernels.round_float(np.ones(3), parse_format("bf16"), "sr", np.zeros(3, int), 45) is None   # M + R > 51
    assert kernels.round_float(np.ones((2, 0)), fmt, "rne").shape == (2, 0)


# -- BHQ's plan search --------------------------------------------------------------------------------

def test_np_sum_is_numpys_pairwise_sum():
    """_np_sum reproduces np.sum of a contiguous float64 vector bit for bit (leaves of 8 interleaved
    accumulators, halves rounded to multiples of 8 above 128, and the initial 0.0: -0 sums to +0)."""
    rng = _rng("np-sum")
    lengths = list(range(0, 300)) + rng.integers(300, 9000, 60).tolist()
    for n in lengths:
        x = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n).astype(float))
        for v in (x, np.abs(x), np.full(n, -0.0)):
            assert kernels._np_sum(v, n) == np.sum(v) and np.signbit(kernels._np_sum(v, n)) == np.signbit(np.sum(v)), n


def _ranges(rng, n, kind):
    if kind == "lognormal":
        return np.exp(rng.normal(0, 1, n))
    if kind == "outliers":                       # a few rows far larger: what BHQ is for
        m = rng.random(n) * 1e-3
        m[rng.choice(n, min(n, 3), replace=False)] = [5.0, 3.0, 1.0][:min(n, 3)]
        return m
    if kind == "ties":                           # equal ranges, zeros: largest-remainder ties
        return rng.integers(0, 4, n) * 0.25
    if kind == "zeros":
        return np.zeros(n)
    return rng.random(n)


@pytest.mark.parametrize("kind", ["uniform", "lognormal", "outliers", "ties", "zeros"])
def test_bhq_costs_are_the_reference_costs(kind):
    """Every G's cost of the compiled search equals bhq_plan's own float64 model, bit for bit."""
    rng = _rng("bhq-costs", kind)
    for n in (1, 2, 3, 7, 8, 9, 40, 129, 300):
        m = _ranges(rng, n, kind)
        ms = m[np.lexsort((np.arange(n), -m))]
        ref = np.array([_plan_for(ms, G)[0] for G in range(1, n + 1)])
        np.testing.assert_array_equal(kernels.bhq_costs(ms).view(np.int64), ref.view(np.int64), err_msg=str(n))


def test_bhq_costs_small_buffers_and_declines(monkeypatch):
    """Several passes (tiny buffers, one G needing more than the buffer) give the same costs; ranges
    whose model could overflow, or non-finite ones, are left to the reference."""
    rng = _rng("bhq-buffers")
    ms = np.sort(_ranges(rng, 200, "lognormal"))[::-1].copy()
    want = kernels.bhq_costs(ms)
    monkeypatch.setattr(kernels, "_BHQ_ARGS", 16)
    monkeypatch.setattr(kernels, "_BHQ_NFS", 500)
    np.testing.assert_array_equal(kernels.bhq_costs(ms), want)
    for bad in ([1.0, np.inf], [1.0, np.nan], [2.0 ** 401, 1.0], [1.0, -1.0]):
        assert kernels.bhq_costs(np.array(bad)) is None
