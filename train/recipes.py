"""Training recipes: one frozen data object each (``docs/training.md`` has their tables).

A :class:`Recipe` names, per tensor (weights, layer inputs, output gradients), the quantizer; per
GEMM role (``fwd``: ``X W``, ``bwd_data``: ``dY W^T``, ``bwd_weight``: ``X^T dY``) the GEMM twin
(the golden function and the unit parameters of the hardware it models); the weight-update rule;
which layers stay in higher precision; and the synthesized configuration (an id of
``hw/synth/scripts/matrix.toml``) that stands for the recipe on the accuracy-vs-area chart. The
training loop reads these fields and nothing else: a new recipe is one more entry in
:data:`RECIPES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .arith import (AccumulatorGemm, Fp4Tpr, Float32Gemm, FloatCast, GradCast, GradIdentity, Identity, Mac4AccGemm,
                    Mac4IntGemm, Pact4, Sawb4, SgdAxpy, SgdFp32)

__all__ = ["Recipe", "RECIPES", "get_recipe", "FP32"]


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    weight: object              # quantizer of the weights (forward and backward-data operand)
    activation: object          # quantizer of a layer's input (forward and backward-weight operand)
    grad: object                # gradient quantizer: quantize_grad -> (bwd_data operand, bwd_weight operand)
    fwd: object                 # GEMM twins
    bwd_data: object
    bwd_weight: object
    update: object              # weight-update rule of the low-precision layers
    high_precision: tuple = ()  # ("first", "last"): GEMM layers that run the FP32 recipe instead
    synth_id: str = None        # matrix.toml id of the unit on the frontier chart
    synth_note: str = ""        # why that unit (or why none)
    synth_also: tuple = ()      # further units of the recipe, listed beside it in report.md
    paper: str = ""

    def layer_recipe(self, index, count):
        """The recipe GEMM layer ``index`` of ``count`` runs: this one, or FP32 when the layer is
        kept in higher precision."""
        keep = ("first" in self.high_precision and index == 0) or \
               ("last" in self.high_precision and index == count - 1)
        return FP32 if keep else self


FP32 = Recipe(
    name="fp32", summary="NumPy float32 throughout (the baseline)",
    weight=Identity(), activation=Identity(), grad=GradIdentity(),
    fwd=Float32Gemm(), bwd_data=Float32Gemm(), bwd_weight=Float32Gemm(), update=SgdFp32(),
    synth_id="fp32_fma", synth_note="an FP32 FMA per MAC", paper="")

_WANG_ACC = dict(acc_format="e6m9", lanes=8, chunk=64, window=10, rounding="rne")

FP8_WANG2018 = Recipe(
    name="fp8-wang2018",
    summary="FP8 1-5-2 operands, 1-6-9 chunk-based accumulation (CL = 64), SR weight update",
    weight=FloatCast("fp8_e5m2"), activation=FloatCast("fp8_e5m2"), grad=GradCast("fp8_e5m2"),
    fwd=AccumulatorGemm("fp8_e5m2", "fp8_e5m2", **_WANG_ACC),
    bwd_data=AccumulatorGemm("fp8_e5m2", "fp8_e5m2", **_WANG_ACC),
    bwd_weight=AccumulatorGemm("fp8_e5m2", "fp8_e5m2", **_WANG_ACC),
    update=SgdAxpy("e6m9", rounding="sr"),
    high_precision=("first", "last"),
    synth_id="accumulator_l8_w10",
    synth_note="hw.accumulator, 8 FP8 lanes, window 10, CL = 64 (all three GEMMs)",
    paper="Wang et al. 2018, sections 3-4")

FP8_WANG2018_NOCHUNK = Recipe(
    **{**FP8_WANG2018.__dict__,
       "name": "fp8-wang2018-nochunk",
       "summary": "fp8-wang2018 without chunking (CL = 0): the ablation of chunk-based accumulation",
       "fwd": AccumulatorGemm("fp8_e5m2", "fp8_e5m2", **{**_WANG_ACC, "chunk": 0}),
       "bwd_data": AccumulatorGemm("fp8_e5m2", "fp8_e5m2", **{**_WANG_ACC, "chunk": 0}),
       "bwd_weight": AccumulatorGemm("fp8_e5m2", "fp8_e5m2", **{**_WANG_ACC, "chunk": 0}),
       "synth_id": "accumulator_l8_w10_nochunk",
       "synth_note": "hw.accumulator, 8 FP8 lanes, window 10, no chunking"})

HFP8_SUN2019 = Recipe(
    name="hfp8-sun2019",
    summary="HFP8: e4m3 forward operands, e5m2 gradients, 1-6-9 chunk-based accumulation, SR update",
    weight=FloatCast("fp8_e4m3"), activation=FloatCast("fp8_e4m3"), grad=GradCast("fp8_e5m2"),
    fwd=AccumulatorGemm("fp8_e4m3", "fp8_e4m3", **_WANG_ACC),
    bwd_data=AccumulatorGemm("fp8_e4m3", "fp8_e5m2", **_WANG_ACC),
    bwd_weight=AccumulatorGemm("fp8_e4m3", "fp8_e5m2", **_WANG_ACC),
    update=SgdAxpy("e6m9", rounding="sr"),
    high_precision=("first", "last"),
    synth_id="accumulator_hfp8_l8_w10",
    synth_note="hw.accumulator, 8 lanes e4m3:fn x e5m2, window 10, CL = 64 (the backward GEMMs, 2/3 "
               "of the MACs; the forward's e4m3 x e4m3 is the same datapath with b in e4m3)",
    paper="Sun et al. 2019, sections 3-4")

INT4_SUN2020 = Recipe(
    name="int4-sun2020",
    summary="INT4 forward (SAWB weights, PACT activations), radix-4 FP4 gradients with TPR and "
            "GradScale, 1-6-9 chunk-based accumulation",
    weight=Sawb4(), activation=Pact4(), grad=Fp4Tpr(data_phase=0),
    fwd=Mac4IntGemm(lanes=8),
    bwd_data=Mac4AccGemm("e6m9", lanes=8, chunk=64),
    bwd_weight=Mac4AccGemm("e6m9", lanes=8, chunk=64),
    update=SgdAxpy("e6m9", rounding="sr"),
    high_precision=("first", "last"),
    synth_id="accumulator_mac4_l8",
    synth_note="hw.accumulator --front mac4, 8 INT4 x FP4 lanes, CL = 64 (the backward GEMMs, 2/3 of "
               "the MACs); the forward's hw.mac4 --mode int (mac4_int_l8) is listed beside it",
    synth_also=("mac4_int_l8",),
    paper="Sun et al. 2020, sections 3-4")

RECIPES = {r.name: r for r in (FP32, FP8_WANG2018, FP8_WANG2018_NOCHUNK, HFP8_SUN2019, INT4_SUN2020)}


def get_recipe(name):
    """The recipe called ``name`` (a :class:`Recipe` passes through: sweeps train variants)."""
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"--recipe: unknown recipe {name!r} (available: {', '.join(RECIPES)})") from None
