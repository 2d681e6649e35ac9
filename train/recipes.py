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

from .arith import (AccumulatorGemm, Affine8, AffineIntGemm, BlockCast, BlockGemm, Fp4Tpr, Float32Gemm, FloatCast,
                    GradAffine, GradBlockCast, GradCast, GradIdentity, Identity, LuqGemm, LuqGrad, Mac4AccGemm,
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
    high_precision: tuple = ()  # ("first", "last"): GEMM layers that run high_precision_recipe instead
    synth_id: str = None        # matrix.toml id of the unit on the frontier chart
    synth_note: str = ""        # why that unit (or why none)
    synth_also: tuple = ()      # further units of the recipe, listed beside it in report.md
    paper: str = ""
    high_precision_recipe: object = None    # the recipe of the high-precision layers (None: FP32)
    phases: tuple = ()          # ((last_epochs, recipe), ...): the recipe of the last epochs instead

    def __post_init__(self):
        for last, r in self.phases:
            if last < 1 or r.update != self.update or r.activation.params() != self.activation.params():
                raise ValueError(f"recipe {self.name}: a phase runs {last} >= 1 last epochs with the same "
                                 f"update rule and quantizer parameters (the layer's state carries over)")

    def layer_recipe(self, index, count):
        """The recipe GEMM layer ``index`` of ``count`` runs: this one, or ``high_precision_recipe``
        (FP32 unless given) when the layer is kept in higher precision."""
        keep = ("first" in self.high_precision and index == 0) or \
               ("last" in self.high_precision and index == count - 1)
        return (self.high_precision_recipe or FP32) if keep else self

    def at_epoch(self, epoch, epochs):
        """The recipe of epoch ``epoch`` (1-based) of ``epochs``: the first phase whose last
        ``last_epochs`` epochs include it, else this one."""
        for last, r in self.phases:
            if epoch > epochs - last:
                return r
        return self


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
               "the MACs); listed beside it: the forward's hw.mac4 --mode int (mac4_int_l8) and the "
               "gradient quantizer hw.quantize tpr_quantize (tpr_fp16_l8)",
    synth_also=("mac4_int_l8", "tpr_fp16_l8"),
    paper="Sun et al. 2020, sections 3-4")


# -- block formats (issue 12): HBFP, Accuracy Booster, OCP MX --------------------------------------

def _block_recipe(name, summary, w, a, g, rounding, paper, synth_id, high_precision=(), **more):
    """Weights, activations and gradients in block formats ``w``, ``a``, ``g``, blocked along the
    reduction axis of every GEMM; block GEMMs into FP32; FP32 SGD. ``synth_id``: the matrix row of
    ``hw.accumulator --front block`` with the recipe's block pair (one block pair per beat, one
    rounding per block into FP32, no chunking: the arithmetic of ``BlockGemm``)."""
    return Recipe(
        name=name, summary=summary,
        weight=BlockCast(w, rounding), activation=BlockCast(a, rounding), grad=GradBlockCast(g, rounding),
        fwd=BlockGemm(a, w), bwd_data=BlockGemm(g, w), bwd_weight=BlockGemm(a, g),
        update=SgdFp32(), high_precision=high_precision, synth_id=synth_id,
        synth_note=f"hw.accumulator --front block ({synth_id}): one block pair of k = 32 per beat, into FP32",
        paper=paper, **more)


_HBFP_PAPER = "Drumond et al. 2018; Harma et al. 2022 (Accuracy Booster)"

HBFP4 = _block_recipe(
    "hbfp4", "HBFP4 (4-bit mantissas incl. sign, shared 8-bit exponent per 32) for every GEMM operand, "
    "stochastic rounding, FP32 accumulation, FP32 elsewhere",
    "hbfp4", "hbfp4", "hbfp4", "sr", _HBFP_PAPER, "accumulator_block_hbfp4")

_HBFP6 = _block_recipe(
    "accuracy-booster/hbfp6", "HBFP6 for every GEMM operand (Accuracy Booster's boosted layers and epoch)",
    "hbfp6", "hbfp6", "hbfp6", "sr", _HBFP_PAPER, "accumulator_block_hbfp6")

ACCURACY_BOOSTER = _block_recipe(
    "accuracy-booster", "HBFP4, with HBFP6 in the first and last layers and in the last epoch "
    "(Harma et al. 2022)",
    "hbfp4", "hbfp4", "hbfp4", "sr", "Harma et al. 2022 (Accuracy Booster)", "accumulator_block_hbfp4",
    high_precision=("first", "last"), high_precision_recipe=_HBFP6, phases=((1, _HBFP6),))
# (Its HBFP6 unit, the block front with 32 HBFP6 lanes, has no synthesis row: ABC does not finish on
# it, docs/synthesis.md.)

_MX_PAPER = "Rouhani et al. 2023; OCP MX v1.0"

MXFP8 = _block_recipe(
    "mxfp8", "MXFP8 (k = 32, E8M0 scales): E4M3 weights and activations, E5M2 gradients; rne; FP32 "
    "accumulation", "mxfp8_e4m3", "mxfp8_e4m3", "mxfp8_e5m2", "rne", _MX_PAPER, "accumulator_block_mxfp8")

MXFP6 = _block_recipe(
    "mxfp6", "MXFP6 E3M2 (k = 32) for weights, activations and gradients; rne; FP32 accumulation",
    "mxfp6_e3m2", "mxfp6_e3m2", "mxfp6_e3m2", "rne", _MX_PAPER, "accumulator_block_mxfp6")

MXFP4 = _block_recipe(
    "mxfp4", "MXFP4 E2M1 (k = 32) for weights, activations and gradients; rne; FP32 accumulation",
    "mxfp4_e2m1", "mxfp4_e2m1", "mxfp4_e2m1", "rne", _MX_PAPER, "accumulator_block_mxfp4")

# -- 4-bit gradients (issue 13): LUQ, Chen et al.'s FQT -------------------------------------------

LUQ = Recipe(
    name="luq",
    summary="INT4 forward (SAWB weights, PACT activations), LUQ 4-bit gradients (alpha = max/2^6, "
            "stochastic), INT4 x FP4 products into FP32, FP32 update",
    weight=Sawb4(), activation=Pact4(), grad=LuqGrad(scale="max"),
    fwd=Mac4IntGemm(lanes=8), bwd_data=LuqGemm(), bwd_weight=LuqGemm(),
    update=SgdFp32(), high_precision=("first", "last"),
    synth_id=None,
    synth_note="no INT4 x fp4_luq MAC unit in lowbit (the backward GEMMs); listed beside: the forward's "
               "hw.mac4 --mode int (mac4_int_l8) and the gradient quantizer hw.quantize luq (luq_fp16_l8)",
    synth_also=("mac4_int_l8", "luq_fp16_l8"),
    paper="Chmiel et al. 2023 (LUQ)")

LUQ_SMP2 = Recipe(**{**LUQ.__dict__, "name": "luq-smp2",
                     "summary": "luq with SMP: the mean of 2 independent LUQ samples of each gradient",
                     "grad": LuqGrad(scale="max", samples=2)})

LUQ_POW2 = Recipe(**{**LUQ.__dict__, "name": "luq-pow2",
                     "summary": "luq with a power-of-two alpha (the hardware quantizer's scale)",
                     "grad": LuqGrad(scale="pow2")})

FQT_PSQ = Recipe(
    name="fqt-psq",
    summary="Chen et al. 2020: 8-bit per-tensor forward, 4-bit per-sample (PSQ) stochastic gradients, "
            "integer GEMMs with affine scaling, FP32 update",
    weight=Affine8(), activation=Affine8(), grad=GradAffine("psq", bits=4),
    fwd=AffineIntGemm(), bwd_data=AffineIntGemm(), bwd_weight=AffineIntGemm(),
    update=SgdFp32(), high_precision=("first", "last"),
    synth_id=None, synth_note="no lowbit unit: Chen et al.'s quantizers are recipe-level (an INT8 x INT4 "
                              "MAC array with float scaling would compute these GEMMs)",
    paper="Chen et al. 2020")

FQT_BHQ = Recipe(**{**FQT_PSQ.__dict__, "name": "fqt-bhq",
                    "summary": "fqt-psq with the block Householder gradient quantizer (BHQ)",
                    "grad": GradAffine("bhq", bits=4)})

RECIPES = {r.name: r for r in (FP32, FP8_WANG2018, FP8_WANG2018_NOCHUNK, HFP8_SUN2019, INT4_SUN2020,
                               HBFP4, ACCURACY_BOOSTER, MXFP8, MXFP6, MXFP4,
                               LUQ, LUQ_SMP2, LUQ_POW2, FQT_PSQ, FQT_BHQ)}


def get_recipe(name):
    """The recipe called ``name`` (a :class:`Recipe` passes through: sweeps train variants)."""
    if isinstance(name, Recipe):
        return name
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"--recipe: unknown recipe {name!r} (available: {', '.join(RECIPES)})") from None
