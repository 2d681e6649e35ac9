"""GEMM tiles captured from a real training step, for the hardware-in-the-loop testbench.

:func:`capture` runs a seeded training job for a few steps and records the operands of one GEMM
(layer and role) exactly as the recipe's twin fed its golden GEMM: the unit's input codes (K padded
to a multiple of the lanes, as the hardware streams them), the TPR phase and GradScale offset of a
mac4 GEMM, the element and scale codes of a block GEMM, and the result codes.
``tb/test_training_tiles.py`` streams a tile through the RTL and compares the codes bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from golden.formats import parse_format

from .arith import AccumulatorGemm, BlockGemm, Mac4AccGemm
from .data import load_digits_split
from .loop import Hyper, batches, setup, step_rng, train_step

__all__ = ["Tile", "capture"]


@dataclass(frozen=True)
class Tile:
    """``codes[m, n]`` is the unit's result for the dot product of ``a[m, :]`` and ``b[:, n]``.

    ``unit`` and ``config`` name the hardware (``lowbit export <unit> <config>``); for the mac4 front
    ``a`` holds the INT4 ``x`` codes, ``b`` the FP4 ``g`` codes, with one ``phase`` per GEMM and one
    ``offset`` per dot product; for the block front ``a`` and ``b`` hold the element codes and
    ``a_scales`` ``(M, K/k)``, ``b_scales`` ``(K/k, N)`` the scale codes of their blocks of ``k``
    along K (``docs/arithmetic.md`` section 9.6)."""

    unit: str
    config: dict
    a: np.ndarray
    b: np.ndarray
    codes: np.ndarray
    phase: int = 0
    offset: int = 0
    a_scales: np.ndarray = None
    b_scales: np.ndarray = None

    def sub(self, rows, cols):
        """The tile of output rows ``rows`` and columns ``cols`` (slices), all of K."""
        return replace(self, a=self.a[rows], b=self.b[:, cols], codes=self.codes[rows, cols],
                       a_scales=None if self.a_scales is None else self.a_scales[rows],
                       b_scales=None if self.b_scales is None else self.b_scales[:, cols])

    def arrays(self):
        """The tile's data by name (``numpy.savez``): the codes, ``phase`` and ``offset``, and the
        scale codes of a block tile."""
        out = dict(a=self.a, b=self.b, codes=self.codes, phase=self.phase, offset=self.offset)
        if self.a_scales is not None:
            out.update(a_scales=self.a_scales, b_scales=self.b_scales)
        return out


def capture(recipe_name, model_name, layer, role, seed=0, step=0, data=None, hyper=Hyper()):
    """The GEMM ``role`` (``fwd``, ``bwd_data``, ``bwd_weight``) of ``layer`` (e.g. ``"conv2"``) in
    training step ``step`` (0-based, first epoch) of the seeded run, as a :class:`Tile`.

    The result codes are the golden GEMM's on the captured codes, and they are checked against the
    value the training step used (decoded, scaled and transposed back), so the tile is the emulation's.
    Twins with RTL: :class:`~train.arith.AccumulatorGemm`, :class:`~train.arith.Mac4AccGemm` and
    :class:`~train.arith.BlockGemm` (rne only).
    """
    data = data if data is not None else load_digits_split()
    recipe, model, opt = setup(recipe_name, model_name, data, seed, hyper)
    seen = {}

    def hook(name, r, twin, a, b, out):
        if name == layer and r == role:
            seen.update(twin=twin, a=a, b=b, out=out)

    order = batches(len(data.x_train), hyper.batch_size, np.random.default_rng([seed, 2, 1]))
    for k in range(step + 1):
        idx = order[k]
        train_step(model, opt, data.x_train[idx], data.y_train[idx], step_rng(seed, 1, k),
                   hook=hook if k == step else None)
    if not seen:
        raise ValueError(f"no {role} GEMM in layer {layer!r} of {model_name} under {recipe_name}")
    twin, a, b, out = seen["twin"], seen["a"], seen["b"], seen["out"]
    if not isinstance(twin, (AccumulatorGemm, Mac4AccGemm, BlockGemm)):
        # LUQ and affine-integer twins have no RTL yet (the accumulator's INT4 x fp4_luq front is
        # being built; Chen et al.'s GEMMs have no lowbit unit).
        raise ValueError(f"no tile capture for {type(twin).__name__}")
    if twin.rounding != "rne":
        # The RTL draws sr words from its own LFSRs; a tile with sr would need those words.
        raise ValueError("tiles are captured from rne GEMMs only")
    acc = parse_format(twin.acc_format)
    config, scale, swapped = twin.config(), 1.0, False
    if isinstance(twin, AccumulatorGemm):
        A, B, swapped = twin.operands(a, b)
        codes = twin.codes(A, B, {})
        scale, tile = a.scale * b.scale, dict(a=A, b=B)
    elif isinstance(twin, Mac4AccGemm):
        X, G, x, g, swapped = twin.operands(a, b)
        codes = twin.codes(X, G, x, g, {})
        scale, tile = x.scale, dict(a=X, b=G, phase=g.phase, offset=g.exp)
        config = {**config, "x_signed": x.fmt == "int4"}
    elif isinstance(twin, BlockGemm):
        # The operands as the step quantized them (blocked along K, padded to a multiple of k); the
        # unit applies the block scales to each block pair's sum, so the result takes no further
        # factor. The unit takes the element formats in the GEMM's order (the twin accepts either).
        A, As, B, Bs = twin.operands(a, b)
        codes = twin.codes(A, As, B, Bs, a.fmt, b.fmt)
        tile = dict(a=A, a_scales=As, b=B, b_scales=Bs)
        config = {**config, "a_format": a.fmt, "b_format": b.fmt}
    else:
        raise ValueError(f"no tile capture for {type(twin).__name__}")
    value = (acc.decode(codes) * scale).astype(np.float32)
    if not np.array_equal(value.T if swapped else value, out, equal_nan=True):
        raise AssertionError("captured GEMM codes do not reproduce the training step's result")
    return Tile(twin.unit, config, codes=codes, **tile)
