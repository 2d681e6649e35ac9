"""The arithmetic a recipe is made of: operand quantizers, GEMM twins and weight-update rules.

Every piece is a small frozen dataclass, so a recipe (:mod:`train.recipes`) is plain data that the
training loop reads. The arithmetic itself is never re-implemented here: quantizers call
:mod:`golden.formats` / :mod:`golden.quantize`, GEMM twins call the golden GEMMs
(:func:`golden.accumulator.gemm`, :func:`golden.mac4.gemm_mac4`, :func:`golden.mac4.gemm_int4`), the
low-precision weight update calls :func:`golden.fp8_fma.fma`. Random bits come from the generator
the caller passes (one per training step), never from a global state.

A quantized operand is an :class:`Operand`: codes of a format plus the factors that turn them back
into values (``value = decode(codes) * scale * 2**exp``; FP4 codes are read with their TPR phase).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from golden.formats import parse_format

__all__ = ["Operand", "Identity", "FloatCast", "Sawb4", "Pact4", "GradIdentity", "GradCast", "Fp4Tpr",
           "Float32Gemm", "AccumulatorGemm", "Mac4IntGemm", "Mac4AccGemm", "SgdFp32", "SgdAxpy",
           "rand_words"]


def rand_words(rng, shape, bits):
    """Uniform ``bits``-bit random words (uint16 up to 16 bits, else uint32: memory matters)."""
    dtype = np.uint16 if bits <= 16 else np.uint32
    return rng.integers(0, 1 << bits, size=shape, dtype=dtype)


# -- operands ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Operand:
    """One GEMM operand, 2-D. ``fmt`` is ``None`` for plain float32 ``value``s; otherwise ``codes``
    of the format ``fmt`` (a spec or preset string) worth ``decode(codes) * scale * 2**exp`` (FP4
    codes read with ``phase``). ``ste`` and ``clip`` are the straight-through masks of a clipping
    quantizer (PACT), for its backward."""

    codes: np.ndarray = None
    fmt: str = None
    value: np.ndarray = None
    scale: float = 1.0
    exp: int = 0
    phase: int = 0
    ste: np.ndarray = field(default=None, repr=False)
    clip: np.ndarray = field(default=None, repr=False)

    @property
    def T(self):
        t = lambda a: None if a is None else a.T      # noqa: E731
        return replace(self, codes=t(self.codes), value=t(self.value), ste=t(self.ste), clip=t(self.clip))

    @property
    def shape(self):
        return (self.value if self.fmt is None else self.codes).shape


# -- quantizers -------------------------------------------------------------------------------------
#
# ``quantize(x, state)`` returns an Operand; ``backward(op, grad, state)`` maps the gradient with
# respect to the quantized tensor to the gradient with respect to ``x`` (straight-through) and adds
# the gradients of the quantizer's own parameters to ``state``. ``params()`` names those parameters
# and their initial values (PACT's clipping level).

@dataclass(frozen=True)
class Identity:
    """No quantization: float32 values (the FP32 recipe and high-precision layers)."""

    def params(self):
        return {}

    def quantize(self, x, state):
        return Operand(value=np.asarray(x, np.float32))

    def backward(self, op, grad, state):
        return grad


@dataclass(frozen=True)
class FloatCast:
    """Round to the float format ``fmt`` (``docs/arithmetic.md`` section 2; ``rne``)."""

    fmt: str
    rounding: str = "rne"

    def params(self):
        return {}

    def quantize(self, x, state):
        return Operand(codes=parse_format(self.fmt).encode(np.asarray(x, np.float64), self.rounding),
                       fmt=self.fmt)

    def backward(self, op, grad, state):
        return grad


@dataclass(frozen=True)
class Sawb4:
    """SAWB INT4 weights (:func:`golden.quantize.quantize_int4_sawb`, one scale per tensor)."""

    def params(self):
        return {}

    def quantize(self, x, state):
        from golden.quantize import quantize_int4_sawb
        codes, scale = quantize_int4_sawb(np.asarray(x, np.float64))
        return Operand(codes=codes, fmt="int4", scale=float(scale))

    def backward(self, op, grad, state):
        return grad


@dataclass(frozen=True)
class Pact4:
    """PACT unsigned INT4 activations (:func:`golden.quantize.quantize_int4_pact`): ``clip(x, 0,
    alpha)`` on 15 levels, ``alpha`` learned (Choi et al. 2018: the gradient of the clipped part
    goes to ``alpha``, the rest passes straight through)."""

    alpha_init: float = 2.0
    #: Smallest clip level used: SGD may push the learned alpha to zero or below.
    alpha_min: float = 2.0 ** -8

    def params(self):
        return {"alpha": self.alpha_init}

    def quantize(self, x, state):
        from golden.quantize import quantize_int4_pact
        x = np.asarray(x, np.float64)
        alpha = max(float(state["alpha"].data), self.alpha_min)
        codes, scale = quantize_int4_pact(x, alpha)
        return Operand(codes=codes, fmt="uint4", scale=float(scale), ste=(x > 0) & (x < alpha),
                       clip=x >= alpha)

    def backward(self, op, grad, state):
        state["alpha"].grad += np.float32(grad[op.clip].sum())
        return grad * op.ste


@dataclass(frozen=True)
class GradIdentity:
    """Float32 gradients, unquantized."""

    def quantize_grad(self, g, state):
        op = Operand(value=np.asarray(g, np.float32))
        return op, op


@dataclass(frozen=True)
class GradCast:
    """Output gradients rounded to ``fmt``; the same codes feed both backward GEMMs."""

    fmt: str
    rounding: str = "rne"

    def quantize_grad(self, g, state):
        op = FloatCast(self.fmt, self.rounding).quantize(g, state)
        return op, op


@dataclass(frozen=True)
class Fp4Tpr:
    """Radix-4 FP4 gradients with two-phase rounding and GradScale (Sun et al. 2020):
    :func:`golden.quantize.tpr_quantize` at the layer's GradScale exponent; phase
    ``data_phase`` feeds the backward-data GEMM, the other phase the backward-weight GEMM.

    GradScale: the layer's ``scale_exp`` starts at :func:`golden.quantize.gradscale_init` of the
    first gradient's maximum and then moves one step per training step
    (:func:`golden.quantize.gradscale_update` with the current maximum) before quantizing."""

    rounding: str = "rne"
    data_phase: int = 0

    def quantize_grad(self, g, state):
        from golden.quantize import gradscale_init, gradscale_update, tpr_quantize
        g = np.asarray(g, np.float64)
        m = float(np.max(np.abs(g))) if g.size else 0.0
        if "scale_exp" not in state:
            state["scale_exp"] = int(gradscale_init(m))
        else:
            state["scale_exp"] = int(gradscale_update(state["scale_exp"], m))
        se = state["scale_exp"]
        c0, c1 = tpr_quantize(g, self.rounding, scale_exp=se)
        ops = [Operand(codes=c, fmt="fp4_r4", exp=se, phase=ph) for ph, c in ((0, c0), (1, c1))]
        return ops[self.data_phase], ops[1 - self.data_phase]


# -- GEMM twins -------------------------------------------------------------------------------------
#
# ``matmul(a, b, rng)`` is ``a @ b`` of two Operands, (M, K) @ (K, N), as float32. ``unit`` and
# ``config()`` name the hardware the twin models (``lowbit export <unit> <config>``).

def _pad_k(a, b, lanes):
    """Zero codes appended along K up to a multiple of ``lanes``: the hardware streams zero lanes
    (a zero product adds nothing; code 0 is +0 in every operand format used here)."""
    K = a.shape[1]
    pad = -K % lanes
    if pad:
        a = np.concatenate([a, np.zeros((a.shape[0], pad), a.dtype)], axis=1)
        b = np.concatenate([b, np.zeros((pad, b.shape[1]), b.dtype)], axis=0)
    return a, b


@dataclass(frozen=True)
class Float32Gemm:
    """NumPy float32 ``matmul`` (BLAS; its summation order is the library's)."""

    unit = "fp8_fma"

    def config(self):
        return {"a_format": "fp32", "b_format": "fp32", "acc_format": "fp32", "rounding": "rne"}

    def matmul(self, a, b, rng):
        return (a.value.astype(np.float32) @ b.value.astype(np.float32)).astype(np.float32)


@dataclass(frozen=True)
class AccumulatorGemm:
    """:func:`golden.accumulator.gemm`: radix-2 float operands into the chunk-based accumulator
    (twin: ``hw.accumulator``, fp8 front). Operands in the other order (``b`` of ``a_format``)
    are computed as ``(b.T @ a.T).T``, which is the same set of dot products."""

    a_format: str = "fp8_e5m2"
    b_format: str = "fp8_e5m2"
    acc_format: str = "e6m9"
    lanes: int = 8
    chunk: int = 64
    window: object = 10
    rounding: str = "rne"
    rand_bits: int = 16

    unit = "accumulator"

    def config(self):
        cfg = {"lanes": self.lanes, "a_format": self.a_format, "b_format": self.b_format,
               "acc_format": self.acc_format, "rounding": self.rounding, "chunk": self.chunk,
               "window": str(self.window)}
        if self.rounding == "sr":
            cfg["rand_bits"] = self.rand_bits
        return cfg

    def _check(self, a, b):
        if (a.fmt, b.fmt) == (self.a_format, self.b_format):
            return False
        if (a.fmt, b.fmt) == (self.b_format, self.a_format):
            return True
        raise ValueError(f"accumulator twin takes {self.a_format} x {self.b_format} operands, "
                         f"not {a.fmt} x {b.fmt}")

    def operands(self, a, b):
        """The codes the unit is fed: ``(A, B, swapped)`` with K padded to a multiple of lanes."""
        swapped = self._check(a, b)
        if swapped:
            a, b = b.T, a.T
        A, B = _pad_k(a.codes, b.codes, self.lanes)
        return A, B, swapped

    def words(self, M, N, K, rng):
        """The random words of ``sr`` (``rbits_inner``, ``rbits_outer``), else ``{}``."""
        if self.rounding != "sr":
            return {}
        nb = K // self.lanes
        n_outer = -(-K // self.chunk) if self.chunk else 0
        return {"rbits_inner": rand_words(rng, (M, N, nb), self.rand_bits),
                "rbits_outer": rand_words(rng, (M, N, n_outer), self.rand_bits) if n_outer else None,
                "rand_bits": self.rand_bits}

    def codes(self, A, B, words):
        from golden.accumulator import gemm
        return gemm(A, B, self.a_format, self.b_format, self.acc_format, self.lanes, self.chunk,
                    self.window, self.rounding, **words)

    def matmul(self, a, b, rng):
        A, B, swapped = self.operands(a, b)
        words = self.words(A.shape[0], B.shape[1], A.shape[1], rng)
        c = parse_format(self.acc_format).decode(self.codes(A, B, words)) * (a.scale * b.scale)
        c = c.astype(np.float32)
        return c.T if swapped else c


@dataclass(frozen=True)
class Mac4IntGemm:
    """:func:`golden.mac4.gemm_int4`: INT4 x INT4 exactly (twin: ``hw.mac4 --mode int``, 32-bit
    integer accumulator, which cannot wrap for these lengths); the product of the two scales is
    applied in float32 afterwards."""

    lanes: int = 8

    unit = "mac4"

    def config(self):
        return {"lanes": self.lanes, "mode": "int", "x_signed": False, "w_signed": True}

    def matmul(self, a, b, rng):
        from golden.mac4 import gemm_int4
        s = gemm_int4(a.codes, b.codes, x_signed=a.fmt == "int4", w_signed=b.fmt == "int4")
        return (s.astype(np.float64) * (a.scale * b.scale)).astype(np.float32)


@dataclass(frozen=True)
class Mac4AccGemm:
    """:func:`golden.mac4.gemm_mac4`: INT4 ``x`` times FP4 gradients through the chunk-based
    accumulator (twin: ``hw.accumulator --front mac4``). The FP4 operand's GradScale exponent is the
    unit's ``offset``; its TPR phase is the beat phase; the INT4 operand's scale is applied in float32
    afterwards. Either operand may be the FP4 one (``g @ x`` is computed as ``(x.T @ g.T).T``)."""

    acc_format: str = "e6m9"
    lanes: int = 8
    chunk: int = 64
    rounding: str = "rne"
    rand_bits: int = 16

    unit = "accumulator"

    def config(self):
        cfg = {"lanes": self.lanes, "front": "mac4", "acc_format": self.acc_format, "chunk": self.chunk,
               "rounding": self.rounding}
        if self.rounding == "sr":
            cfg["rand_bits"] = self.rand_bits
        return cfg

    def operands(self, a, b):
        """``(X, G, x_operand, g_operand, swapped)`` with K padded to a multiple of lanes."""
        swapped = a.fmt == "fp4_r4"
        if swapped:
            a, b = b.T, a.T
        if b.fmt != "fp4_r4" or a.fmt not in ("int4", "uint4"):
            raise ValueError(f"mac4 accumulate twin takes INT4 x FP4 operands, not {a.fmt} x {b.fmt}")
        X, G = _pad_k(a.codes, b.codes, self.lanes)
        return X, G, a, b, swapped

    def words(self, M, N, K, rng):
        return AccumulatorGemm.words(self, M, N, K, rng)

    def codes(self, X, G, x, g, words):
        from golden.mac4 import gemm_mac4
        return gemm_mac4(X, G, g.phase, g.exp, self.acc_format, self.lanes, self.chunk, self.rounding,
                         x_signed=x.fmt == "int4", **words)

    def matmul(self, a, b, rng):
        X, G, x, g, swapped = self.operands(a, b)
        words = self.words(X.shape[0], G.shape[1], X.shape[1], rng)
        c = parse_format(self.acc_format).decode(self.codes(X, G, x, g, words)) * x.scale
        c = c.astype(np.float32)
        return c.T if swapped else c


# -- weight updates ---------------------------------------------------------------------------------
#
# ``init(param)`` prepares a parameter (e.g. rounds it into the master format) and ``step(param,
# state, lr, momentum, rng)`` applies one SGD-with-momentum step (PyTorch's form: v = mu*v + g;
# w = w - lr*v) in place.

@dataclass(frozen=True)
class SgdFp32:
    """SGD with momentum in float32."""

    def init(self, param):
        pass

    def step(self, p, state, lr, momentum, rng):
        v = state.get("v")
        v = p.grad.copy() if v is None else np.float32(momentum) * v + p.grad
        state["v"] = v
        p.data -= np.float32(lr) * v


@dataclass(frozen=True)
class SgdAxpy:
    """SGD with momentum where the master weights and the momentum live in ``fmt`` and both updates
    are fused multiply-adds through :func:`golden.fp8_fma.fma` (twin: ``hw.fp8_fma`` with all three
    formats ``fmt``): ``v = round(mu*v + g)`` with ``v_rounding`` and ``w = round((-lr)*v + w)`` with
    ``rounding`` (``sr``: Wang et al. 2018's stochastic-rounding AXPY). ``lr`` and ``mu`` are rounded
    to ``fmt`` (rne); the gradient is rounded to ``fmt`` (rne) first."""

    fmt: str = "e6m9"
    rounding: str = "sr"
    v_rounding: str = "rne"
    rand_bits: int = 16

    def init(self, param):
        f = parse_format(self.fmt)
        param.data[...] = f.decode(f.encode(param.data.astype(np.float64))).astype(np.float32)

    def step(self, p, state, lr, momentum, rng):
        from golden.fp8_fma import fma
        f = parse_format(self.fmt)
        enc = lambda v: f.encode(np.asarray(v, np.float64))     # noqa: E731
        g = enc(p.grad)
        v = g if "v" not in state else self._fma(fma, enc(momentum), state["v"], g, self.v_rounding, rng)
        state["v"] = v
        w = self._fma(fma, enc(-lr), v, enc(p.data), self.rounding, rng)
        p.data[...] = f.decode(w).astype(np.float32)

    def _fma(self, fma, a, b, c, rounding, rng):
        kw = {}
        if rounding == "sr":
            kw = {"rbits": rand_words(rng, np.shape(c), self.rand_bits), "rand_bits": self.rand_bits}
        return fma(a, b, c, self.fmt, self.fmt, self.fmt, rounding, **kw)
