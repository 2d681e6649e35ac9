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
           "BlockCast", "GradBlockCast", "LuqGrad", "Affine8", "GradAffine",
           "Float32Gemm", "AccumulatorGemm", "Mac4IntGemm", "Mac4AccGemm", "BlockGemm", "LuqGemm", "AffineIntGemm",
           "SgdFp32", "SgdAxpy", "rand_words"]


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
    quantizer (PACT), for its backward.

    Further forms (all transposed by :attr:`T` like the codes):

    * ``codes`` with a leading axis of samples (LUQ's SMP): ``samples`` independent quantizations of
      the same tensor, whose mean is the operand.
    * block operands (``blocks``, ``fmt`` a block format of :mod:`golden.block`): ``(rows, cols)``,
      each ``(codes, scales)`` or ``None``: ``rows`` is the tensor cut into blocks along axis 1 (the
      reduction axis when the operand is the left factor of a GEMM), ``cols`` along axis 0 (the
      reduction axis when it is the right factor), each padded with zeros to a multiple of ``k``
      along its blocked axis. ``size`` is the unpadded shape. Transposing swaps the two.
    * affine integer operands (``gq``, a :class:`golden.quantize.GradQuant`): ``codes`` are
      ``gq.codes`` (oriented as the operand) and ``axis`` is the operand's axis that runs along the
      rows of ``gq`` (its samples): the value is ``T^-1 (zero + codes * step)`` along that axis.
    """

    codes: np.ndarray = None
    fmt: str = None
    value: np.ndarray = None
    scale: float = 1.0
    exp: int = 0
    phase: int = 0
    ste: np.ndarray = field(default=None, repr=False)
    clip: np.ndarray = field(default=None, repr=False)
    blocks: tuple = field(default=None, repr=False)
    size: tuple = None
    gq: object = field(default=None, repr=False)
    axis: int = 0

    @property
    def T(self):
        t = lambda a: None if a is None else np.swapaxes(a, -1, -2)      # noqa: E731
        blocks = None if self.blocks is None else \
            tuple(None if b is None else (t(b[0]), t(b[1])) for b in reversed(self.blocks))
        size = None if self.size is None else self.size[::-1]
        return replace(self, codes=t(self.codes), value=t(self.value), ste=t(self.ste), clip=t(self.clip),
                       blocks=blocks, size=size, axis=1 - self.axis)

    @property
    def shape(self):
        if self.size is not None:
            return tuple(self.size)
        return (self.value if self.fmt is None else self.codes).shape[-2:]


# -- quantizers -------------------------------------------------------------------------------------
#
# ``quantize(x, state, rng)`` returns an Operand; ``backward(op, grad, state)`` maps the gradient with
# respect to the quantized tensor to the gradient with respect to ``x`` (straight-through) and adds
# the gradients of the quantizer's own parameters to ``state``. ``params()`` names those parameters
# and their initial values (PACT's clipping level). ``quantize_grad(g, state, rng)`` returns the
# operands of the backward-data and backward-weight GEMMs. ``rng`` is the step's generator: the
# random words of a stochastically rounding quantizer are drawn from it (deterministic quantizers
# ignore it).

@dataclass(frozen=True)
class Identity:
    """No quantization: float32 values (the FP32 recipe and high-precision layers)."""

    def params(self):
        return {}

    def quantize(self, x, state, rng=None):
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

    def quantize(self, x, state, rng=None):
        return Operand(codes=parse_format(self.fmt).encode(np.asarray(x, np.float64), self.rounding),
                       fmt=self.fmt)

    def backward(self, op, grad, state):
        return grad


@dataclass(frozen=True)
class Sawb4:
    """SAWB INT4 weights (:func:`golden.quantize.quantize_int4_sawb`, one scale per tensor)."""

    def params(self):
        return {}

    def quantize(self, x, state, rng=None):
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

    def quantize(self, x, state, rng=None):
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

    def quantize_grad(self, g, state, rng=None):
        op = Operand(value=np.asarray(g, np.float32))
        return op, op


@dataclass(frozen=True)
class GradCast:
    """Output gradients rounded to ``fmt``; the same codes feed both backward GEMMs."""

    fmt: str
    rounding: str = "rne"

    def quantize_grad(self, g, state, rng=None):
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

    def quantize_grad(self, g, state, rng=None):
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


def _pad_axis(x, axis, k):
    """``x`` with zeros appended along ``axis`` up to a multiple of ``k`` (a zero element changes no
    block's maximum and adds nothing to a dot product: the hardware streams zero elements)."""
    pad = -x.shape[axis] % k
    if not pad:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, pad)
    return np.pad(x, widths)


def _block_cast(x, fmt, axis, rounding, rand_bits, rng):
    """``(codes, scales)`` of float32 ``x`` cut into blocks of ``fmt`` along ``axis`` (padded):
    :func:`golden.block.quantize_blocks`, with one random word per element for ``sr``."""
    from golden.block import parse_block_format, quantize_blocks
    v = _pad_axis(np.asarray(x, np.float32), axis, parse_block_format(fmt).k)
    kw = {}
    if rounding == "sr":
        kw = {"rbits": rand_words(rng, v.shape, rand_bits), "rand_bits": rand_bits}
    return quantize_blocks(v, fmt, rounding, axis=axis, **kw)


@dataclass(frozen=True)
class BlockCast:
    """Block-scaled operands (OCP MX, HBFP: :func:`golden.block.quantize_blocks`) with the blocks
    along the reduction axis of every GEMM the tensor enters, as Rouhani et al. 2023 and the MX
    emulation library do: a weight or activation is quantized twice, cut into blocks along axis 1
    (for the GEMM where it is the left factor: ``X W`` for ``X``) and along axis 0 (where it is the
    right factor: ``X W`` for ``W``, and ``X^T dY`` for ``X``). ``rounding`` ``sr`` draws
    ``rand_bits``-bit words per element from the step's generator."""

    fmt: str
    rounding: str = "rne"
    rand_bits: int = 16

    def params(self):
        return {}

    def quantize(self, x, state, rng=None):
        x = np.asarray(x, np.float32)
        rows = _block_cast(x, self.fmt, 1, self.rounding, self.rand_bits, rng)
        cols = _block_cast(x, self.fmt, 0, self.rounding, self.rand_bits, rng)
        return Operand(fmt=self.fmt, blocks=(rows, cols), size=x.shape)

    def backward(self, op, grad, state):
        return grad


@dataclass(frozen=True)
class GradBlockCast:
    """Output gradients ``dY`` in a block format, blocked along the reduction axis of each backward
    GEMM: along axis 1 (output features) for backward-data ``dY W^T``, along axis 0 (the batch) for
    backward-weight ``X^T dY``."""

    fmt: str
    rounding: str = "rne"
    rand_bits: int = 16

    def quantize_grad(self, g, state, rng=None):
        g = np.asarray(g, np.float32)
        rows = _block_cast(g, self.fmt, 1, self.rounding, self.rand_bits, rng)
        cols = _block_cast(g, self.fmt, 0, self.rounding, self.rand_bits, rng)
        return (Operand(fmt=self.fmt, blocks=(rows, None), size=g.shape),
                Operand(fmt=self.fmt, blocks=(None, cols), size=g.shape))


@dataclass(frozen=True)
class LuqGrad:
    """LUQ gradients (Chmiel et al. 2023, :func:`golden.quantize.luq_quantize`): ``fp4_luq`` codes in
    units of ``alpha`` per tensor, stochastic underflow and logarithmic stochastic rounding with
    ``rand_bits``-bit words from the step's generator. ``scale``: ``"max"`` (``alpha = max|g| / 2**6``,
    the paper's) or ``"pow2"`` (the power of two a hardware quantizer uses). ``samples > 1`` is SMP
    (:func:`golden.quantize.luq_smp`): that many independent quantizations with the same ``alpha``,
    all carried to the GEMM (see :class:`LuqGemm`). The same operand feeds both backward GEMMs."""

    scale: str = "max"
    samples: int = 1
    rand_bits: int = 16

    def quantize_grad(self, g, state, rng=None):
        from golden.quantize import luq_quantize, luq_smp
        g = np.asarray(g, np.float64)
        R = self.rand_bits
        if self.samples == 1:
            codes, alpha = luq_quantize(g, self.scale, "sr", rand_words(rng, g.shape, R), R)
        else:
            _, codes, alpha = luq_smp(g, rand_words(rng, (self.samples,) + g.shape, R), R, self.scale)
        op = Operand(codes=codes, fmt="fp4_luq", scale=float(alpha))
        return op, op


@dataclass(frozen=True)
class Affine8:
    """Per-tensor affine integer operands (Chen et al. 2020's forward quantizer):
    :func:`golden.quantize.ptq_quantize` with ``bits`` bits and ``rounding``, value
    ``zero + codes * step`` with one ``zero`` (the minimum) and ``step`` per tensor."""

    bits: int = 8
    rounding: str = "rne"

    def params(self):
        return {}

    def quantize(self, x, state, rng=None):
        from golden.quantize import ptq_quantize
        kw = {}
        if self.rounding == "sr":
            kw = {"rbits": rand_words(rng, np.shape(x), 16), "rand_bits": 16}
        q = ptq_quantize(np.asarray(x, np.float64), self.bits, self.rounding, **kw)
        return Operand(codes=q.codes, fmt=f"affine{self.bits}", gq=q)

    def backward(self, op, grad, state):
        return grad


@dataclass(frozen=True)
class GradAffine:
    """Chen et al. 2020's gradient quantizers on the ``N x D`` output gradient (rows = samples):
    ``method`` ``"psq"`` (per-sample grids, :func:`golden.quantize.psq_quantize`) or ``"bhq"`` (block
    Householder transform, then per-row grids, :func:`golden.quantize.bhq_quantize`), ``bits`` bits,
    stochastic rounding with ``rand_bits``-bit words from the step's generator. The same codes feed
    both backward GEMMs."""

    method: str = "psq"
    bits: int = 4
    rand_bits: int = 16

    def quantize_grad(self, g, state, rng=None):
        from golden.quantize import bhq_quantize, psq_quantize
        g = np.asarray(g, np.float64)
        quant = {"psq": psq_quantize, "bhq": bhq_quantize}[self.method]
        q = quant(g, self.bits, "sr", rand_words(rng, g.shape, self.rand_bits), self.rand_bits)
        op = Operand(codes=q.codes, fmt=f"affine{self.bits}", gq=q)
        return op, op


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


@dataclass(frozen=True)
class BlockGemm:
    """:func:`golden.block.block_gemm`: block operands (OCP MX, HBFP) into ``acc_format`` (FP32 by
    default), one exact block sum and one rounding per block pair (twin: ``hw.accumulator --front
    block``, one block pair per beat; ``docs/arithmetic.md`` section 9.6). The left operand's blocks
    run along its rows (axis 1), the right one's along its columns (axis 0): both along the
    reduction axis. The element formats are the operands' own (``a_format`` and ``b_format`` in
    either order)."""

    a_format: str = "mxfp8_e4m3"
    b_format: str = "mxfp8_e4m3"
    acc_format: str = "fp32"
    chunk: int = 0
    rounding: str = "rne"

    unit = "accumulator"

    def __post_init__(self):
        if self.rounding == "sr":
            # matmul draws no random words: no block recipe rounds its GEMMs stochastically (HBFP's
            # sr is in the conversion, BlockCast).
            raise ValueError("BlockGemm: rounding 'sr' of the block GEMM is not emulated (rne, rna or rtz)")

    def config(self):
        return {"front": "block", "a_format": self.a_format, "b_format": self.b_format,
                "acc_format": self.acc_format, "chunk": self.chunk, "rounding": self.rounding}

    def operands(self, a, b):
        """``(A_codes, A_scales, B_codes, B_scales)``: ``a`` blocked along its rows, ``b`` along its
        columns, both padded along K to the same multiple of ``k``."""
        if {a.fmt, b.fmt} - {self.a_format, self.b_format} or a.blocks is None or b.blocks is None:
            raise ValueError(f"block twin takes {self.a_format} x {self.b_format} block operands, "
                             f"not {a.fmt} x {b.fmt}")
        if a.blocks[0] is None or b.blocks[1] is None:
            raise ValueError("block twin: an operand is not blocked along the reduction axis")
        (A, As), (B, Bs) = a.blocks[0], b.blocks[1]
        return A, As, B, Bs

    def codes(self, A, As, B, Bs, fmt_a, fmt_b):
        """The unit's result codes of the block operands (:meth:`operands`) of formats ``fmt_a`` x
        ``fmt_b``."""
        from golden.block import block_gemm
        return block_gemm(A, As, B, Bs, fmt_a, fmt_b, self.acc_format, self.rounding, self.chunk)

    def matmul(self, a, b, rng):
        return parse_format(self.acc_format).decode(self.codes(*self.operands(a, b), a.fmt, b.fmt)).astype(np.float32)


@dataclass(frozen=True)
class LuqGemm:
    """LUQ's backward GEMMs: INT4 (SAWB weights, PACT activations) times ``fp4_luq`` gradients
    through :func:`golden.accumulator.gemm` into ``acc_format`` (FP32, no chunking). The INT4 values
    are carried exactly in ``int_format`` (``fp8_e4m3``: every integer -7 ... 15 is a code), so each
    product is exact; the INT4 scale and ``alpha`` are applied in float64 afterwards, as the other
    twins do. Either operand may be the FP4 one. An SMP operand (codes with a leading axis of
    samples) is one GEMM per sample, their sum divided by the number of samples.

    In these models every partial sum is an integer below ``2**24`` (|x| <= 15, |level| <= 64,
    K <= 4,096), so the FP32 accumulation is exact and two GEMMs averaged equal one GEMM on the
    averaged codes."""

    int_format: str = "fp8_e4m3"
    acc_format: str = "fp32"
    lanes: int = 8
    chunk: int = 0
    window: object = "exact"
    rounding: str = "rne"

    unit = "accumulator"

    def config(self):
        return {"lanes": self.lanes, "a_format": self.int_format, "b_format": "fp4_luq",
                "acc_format": self.acc_format, "chunk": self.chunk, "window": str(self.window),
                "rounding": self.rounding}

    def operands(self, a, b):
        """``(X, G, x, g, swapped)``: the INT4 codes re-encoded in ``int_format`` (M, K) and the
        LUQ codes (samples, K, N)."""
        swapped = a.fmt == "fp4_luq"
        if swapped:
            a, b = b.T, a.T
        if b.fmt != "fp4_luq" or a.fmt not in ("int4", "uint4"):
            raise ValueError(f"LUQ twin takes INT4 x fp4_luq operands, not {a.fmt} x {b.fmt}")
        ints = parse_format(a.fmt).to_int(a.codes).astype(np.float64)
        fx = parse_format(self.int_format)
        X = fx.encode(ints)
        if not np.array_equal(fx.decode(X), ints):
            raise AssertionError(f"{self.int_format} does not hold the INT4 values exactly")
        G = b.codes if b.codes.ndim == 3 else b.codes[None]
        return X, G, a, b, swapped

    def codes(self, X, G):
        """The accumulator codes of each sample's GEMM, ``(samples, M, N)``."""
        from golden.accumulator import gemm
        out = []
        for Gs in G:
            Xp, Gp = _pad_k(X, Gs, self.lanes)
            out.append(gemm(Xp, Gp, self.int_format, "fp4_luq", self.acc_format, self.lanes, self.chunk,
                            self.window, self.rounding))
        return np.stack(out)

    def matmul(self, a, b, rng):
        X, G, x, g, swapped = self.operands(a, b)
        sums = parse_format(self.acc_format).decode(self.codes(X, G)).sum(axis=0)
        c = (sums / len(G) * (x.scale * g.scale)).astype(np.float32)
        return c.T if swapped else c


def _affine_parts(op, along):
    """``(zero, step, codes)`` of an affine operand whose grid is constant along its axis ``along``:
    ``zero``/``step`` shaped to broadcast against the operand's codes (per row of ``gq`` on the
    operand's ``op.axis``), or ``None`` if the grid varies along ``along``."""
    q = op.gq
    scalar = q.zero.size == 1
    if not scalar and op.axis == along:
        return None
    z, s = (q.zero, q.step) if op.axis == 0 else (q.zero.T, q.step.T)
    return z, s, op.codes.astype(np.int64)


def _inverse_transform(out, q, axis):
    """``T^-1`` of a :class:`GradQuant` applied to ``out`` along ``axis`` (its rows back in input
    order): :func:`golden.quantize.grad_dequantize` of ``out`` as codes with zero 0 and step 1 (an
    exact identity before the transform)."""
    from golden.quantize import GradQuant, grad_dequantize
    if axis == 1:
        return _inverse_transform(out.T, q, 0).T
    return grad_dequantize(GradQuant(out, np.zeros((1, 1)), np.ones((1, 1)), q.order, q.sizes, q.shrink))


@dataclass(frozen=True)
class AffineIntGemm:
    """Chen et al. 2020's GEMMs on affine integer operands (``value = T^-1 (zero + step * codes)``).

    When both grids are constant along the reduction axis (forward: two per-tensor grids;
    backward-data: the gradient's per-sample grids run along the output rows) the product is an
    exact integer GEMM ``Ca @ Cb`` (int64) plus the affine terms, in float64 in this order:
    ``za*zb*K + za*(sb*colsum(Cb)) + (sa*zb)*rowsum(Ca) + (sa*sb)*(Ca @ Cb)`` (``za``, ``sa`` per
    output row, ``zb``, ``sb`` per output column), then each operand's inverse transform along its
    output axis (BHQ's Householder groups; the identity for PTQ and PSQ), rounded to float32 once.
    The backward-weight GEMM ``X^T dY`` sums over the samples, along which the gradient's per-sample
    grid (and BHQ's transform) varies: no integer GEMM carries that, so it is computed on the
    dequantized operands (:func:`golden.quantize.grad_dequantize`, float64) with a float64 GEMM in
    a fixed order (``np.einsum`` without BLAS), rounded to float32 once. There is no lowbit unit for
    these GEMMs (an INT8 x INT4 MAC array would compute the integer part)."""

    unit = None

    def config(self):
        return {}

    def matmul(self, a, b, rng):
        pa, pb = _affine_parts(a, 1), _affine_parts(b, 0)
        if pa is None or pb is None:
            from golden.quantize import grad_dequantize
            va, vb = (grad_dequantize(op.gq) if op.axis == 0 else grad_dequantize(op.gq).T for op in (a, b))
            return np.einsum("mk,kn->mn", va, vb, optimize=False).astype(np.float32)
        (za, sa, Ca), (zb, sb, Cb) = pa, pb
        K = Ca.shape[1]
        out = za * zb * K + za * (sb * Cb.sum(axis=0, keepdims=True)) + \
            (sa * zb) * Ca.sum(axis=1, keepdims=True) + (sa * sb) * (Ca @ Cb)
        if a.axis == 0:                 # a's samples are the output rows (else a is per-tensor)
            out = _inverse_transform(out, a.gq, 0)
        if b.axis == 1:                 # b's samples are the output columns
            out = _inverse_transform(out, b.gq, 1)
        return out.astype(np.float32)


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
