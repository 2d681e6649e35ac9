"""The training runner of lowbit sweep (train/sweep.py): a point trained on its own arithmetic."""

from __future__ import annotations

import json

import pytest

from hw.cli import main
from hw.sweep.spec import load_sweep
from train.recipes import get_recipe
from train.sweep import recipe_for_point, run_point


def test_a_point_sets_the_accumulation_of_the_recipes_twins_on_its_unit():
    base = get_recipe("fp8-wang2018")
    point = {"lanes": 4, "window": "12", "chunk": 0, "acc_format": "e6m9", "rounding": "sr", "rand_bits": 6,
             "a_format": "e5m2", "b_format": "e5m2", "front": "fp8", "stages": 2}
    recipe = recipe_for_point(base, "accumulator", point)
    for role in ("fwd", "bwd_data", "bwd_weight"):
        twin = getattr(recipe, role)
        assert (twin.lanes, twin.window, twin.chunk, twin.rounding, twin.rand_bits) == (4, 12, 0, "sr", 6)
        assert (twin.a_format, twin.b_format) == (getattr(base, role).a_format, getattr(base, role).b_format)
    assert recipe.weight == base.weight and recipe.update == base.update   # only the GEMM twins change


def test_the_mac4_front_point_sets_the_int4_recipes_backward_twins_only():
    base = get_recipe("int4-sun2020")
    recipe = recipe_for_point(base, "accumulator", {"front": "mac4", "lanes": 16, "chunk": 32,
                                                    "acc_format": "fp16", "rounding": "rne"})
    assert recipe.fwd == base.fwd                                          # the forward is mac4's int mode
    for role in ("bwd_data", "bwd_weight"):
        assert (getattr(recipe, role).lanes, getattr(recipe, role).chunk) == (16, 32)
        assert getattr(recipe, role).acc_format == "fp16"


def test_the_block_front_point_sets_the_block_twins_of_its_operand_formats():
    """Block twins run on ``hw.accumulator --front block``; a point's block formats select the GEMMs
    whose operands they are (E4M3 x E5M2: mxfp8's backward-weight GEMM only)."""
    base = get_recipe("mxfp8")
    point = {"front": "block", "a_format": "mxfp8_e4m3", "b_format": "mxfp8_e5m2", "chunk": 64, "acc_format": "bf16"}
    recipe = recipe_for_point(base, "accumulator", point)
    assert (recipe.bwd_weight.chunk, recipe.bwd_weight.acc_format) == (64, "bf16")
    assert (recipe.fwd, recipe.bwd_data) == (base.fwd, base.bwd_data)
    # An element spec is read as the unit reads it (the MX rule: E8M0 scales, k = 32).
    recipe = recipe_for_point(base, "accumulator", {"front": "block", "a_format": "e4m3:fn", "chunk": 32})
    assert (recipe.fwd.chunk, recipe.bwd_weight.chunk, recipe.bwd_data) == (32, 32, base.bwd_data)


@pytest.mark.parametrize("recipe, unit, params, words", [
    ("fp8-wang2018", "accumulator", {"a_format": "e4m3:fn", "b_format": "e5m2", "lanes": 8}, "no GEMM"),
    ("fp8-wang2018", "mac4", {"mode": "acc", "lanes": 8}, "no GEMM on mac4"),
    ("fp8-wang2018", "accumulator", {"front": "mac4", "lanes": 8}, "no GEMM"),
    ("fp8-wang2018", "accumulator", {"front": "block", "a_format": "mxfp8_e4m3"}, "no GEMM"),
    ("mxfp8", "accumulator", {"a_format": "e4m3:fn", "lanes": 8}, "no GEMM"),
    ("mxfp8", "accumulator", {"front": "block", "a_format": "hbfp4"}, "no GEMM"),
    ("mxfp8", "accumulator", {"front": "block", "a_format": "mxfp8_e4m3", "rounding": "sr"}, "'sr' of the block GEMM"),
])
def test_a_point_the_recipe_does_not_run_on_is_one_line(recipe, unit, params, words):
    with pytest.raises(ValueError, match=words) as info:
        recipe_for_point(get_recipe(recipe), unit, params)
    assert "\n" not in str(info.value)


def test_run_point_trains_the_variant_reproducibly(tmp_path):
    point = {"id": "p", "unit": "accumulator", "params": {"lanes": 8, "window": 10, "chunk": 0},
             "training": {"recipe": "fp8-wang2018", "model": "mlp", "epochs": 1, "seeds": 1}}
    first = run_point(point, tmp_path)
    assert 0.5 < first["accuracy"] <= 1.0 and first["recipe"] == "fp8-wang2018"
    assert run_point(point, tmp_path)["digests"] == first["digests"]
    other = run_point({**point, "params": {"lanes": 8, "window": 3, "chunk": 0}}, tmp_path)
    assert other["digests"] != first["digests"]                             # the window reaches the GEMMs
    with pytest.raises(ValueError, match="unknown training options lr"):
        run_point({**point, "training": {**point["training"], "lr": 1}}, tmp_path)


@pytest.mark.synth
def test_lowbit_sweep_trains_and_synthesizes_a_point(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text("""
flows = ["generic"]
train = { recipe = "fp8-wang2018", model = "mlp", epochs = 1 }
[[configs]]
unit = "accumulator"
params = { lanes = 2, window = [4, 10], chunk = 0 }
""")
    assert len(load_sweep(path).points) == 2
    assert main(["sweep", str(path), "-j", "2", "-o", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "sweep.json").read_text())
    accs = [p["train"]["fp8-wang2018-mlp"]["result"]["accuracy"] for p in data["points"]]
    assert len(accs) == 2 and all(0.0 < a <= 1.0 for a in accs)
