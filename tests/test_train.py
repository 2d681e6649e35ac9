"""The training emulation (``train/``): recipe GEMMs against the golden models, the FP32 gradients
against finite differences, bit-reproducible runs, the IDX loader, ``lowbit train`` and its errors.

Runs are kept tiny (a few hundred images, one epoch); ``make train`` is the real experiment.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace

import numpy as np
import pytest

from golden.accumulator import dot
from golden.block import block_gemm, dequantize, parse_block_format, quantize_blocks
from golden.formats import parse_format
from golden.mac4 import dot_mac4, fp4_value
from golden.quantize import (LUQ_FP4, bhq_quantize, grad_dequantize, luq_decode, luq_quantize, luq_smp,
                             psq_quantize, tpr_quantize)
from hw.cli import main
from train import recipes as recipes_mod
from train.arith import (AccumulatorGemm, BlockGemm, FloatCast, LuqGemm, Mac4AccGemm, Mac4IntGemm, Operand, SgdAxpy,
                         rand_words)
from train.data import DataError, Dataset, load_digits_split, load_mnist, read_idx, write_idx
from train.loop import run
from train.models import Param, StepContext, build_model, softmax_cross_entropy
from train.recipes import RECIPES


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


@pytest.fixture(scope="module")
def small(digits):
    """256 training and 96 test images of the digits split."""
    return Dataset("digits-small", digits.x_train[:256], digits.y_train[:256], digits.x_test[:96],
                   digits.y_test[:96], 10)


# -- data -------------------------------------------------------------------------------------------

def test_digits_split_is_fixed_and_stratified(digits):
    assert digits.x_train.shape == (1437, 8, 8) and digits.x_test.shape == (360, 8, 8)
    assert digits.x_train.dtype == np.float32 and 0 <= digits.x_train.min() and digits.x_train.max() == 1
    counts = np.bincount(digits.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37          # 360 of 1,797 from every class
    again = load_digits_split()
    assert np.array_equal(again.y_test, digits.y_test) and np.array_equal(again.x_train, digits.x_train)


def _mnist_folder(tmp_path, gz=False, n_train=12, n_test=6):
    rng = np.random.default_rng(5)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 6), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 6), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for name, a in arrays.items():
        write_idx(tmp_path / name, a)
        if gz:
            path = tmp_path / name
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_loader(tmp_path, gz):
    arrays = _mnist_folder(tmp_path, gz)
    d = load_mnist(tmp_path)
    assert d.x_train.shape == (12, 4, 6) and d.x_test.shape == (6, 4, 6) and d.shape == (4, 6)
    assert np.array_equal(d.x_train * 255, arrays["train-images-idx3-ubyte"].astype(np.float32))
    assert np.array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])
    # The header by hand: magic 0x00000803, then three big-endian dimensions.
    raw = (tmp_path / "x.idx")
    raw.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]))
    assert read_idx(raw).tolist() == [[[1, 2, 3]], [[4, 5, 6]]]


def test_idx_loader_errors(tmp_path):
    _mnist_folder(tmp_path)
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(DataError, match="header says"):
        load_mnist(tmp_path)
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        load_mnist(tmp_path)
    bad.unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "missing")


# -- recipe GEMMs are the golden GEMMs --------------------------------------------------------------

def _operands(recipe, M, K, N, rng):
    """Forward, backward-data and backward-weight operands of a layer under ``recipe``, from
    the recipe's own quantizers (random activations, weights and gradients)."""
    x = np.maximum(rng.normal(0, 1, (M, K)), 0)
    w = rng.normal(0, 0.3, (K, N))
    dy = rng.normal(0, 1e-2, (M, N))
    x, w, dy = (v.astype(np.float32) for v in (x, w, dy))     # what the layers hand the quantizers
    act = {k: Param(np.array(v), recipes_mod.FP32.update) for k, v in recipe.activation.params().items()}
    qx, qw = recipe.activation.quantize(x, act, rng), recipe.weight.quantize(w, {}, rng)
    g_data, g_weight = recipe.grad.quantize_grad(dy, {}, rng)
    return {"fwd": (qx, qw), "bwd_data": (g_data, qw.T), "bwd_weight": (qx.T, g_weight)}


def _reference(twin, a, b):
    """Every output element as its own golden dot product (``dot`` / ``dot_mac4``), scaled; the
    independent way to form the GEMM the twin computes with one ``gemm`` call."""
    M, N = a.shape[0], b.shape[1]
    out = np.zeros((M, N))
    acc = parse_format(twin.acc_format)
    for m in range(M):
        for n in range(N):
            if isinstance(twin, AccumulatorGemm):
                # dot takes the operands in either order (the twin may swap them for the hardware).
                fa, fb = a.fmt, b.fmt
                c = dot(a.codes[m], b.codes[:, n], fa, fb, twin.acc_format, twin.lanes, twin.chunk, twin.window)
                out[m, n] = acc.decode(c) * a.scale * b.scale
            else:
                x, g, gx = (a, b, False) if b.fmt == "fp4_r4" else (b.T, a.T, True)
                xi, gi = (n, m) if gx else (m, n)
                c = dot_mac4(x.codes[xi], g.codes[:, gi], g.phase, g.exp, twin.acc_format, twin.lanes,
                             twin.chunk, x_signed=x.fmt == "int4")
                out[m, n] = acc.decode(c) * x.scale
    return out.astype(np.float32)


def _twin_types(recipe):
    return {type(getattr(recipe, role)) for role in ("fwd", "bwd_data", "bwd_weight")}


@pytest.mark.parametrize("name", [n for n, r in RECIPES.items()
                                  if _twin_types(r) <= {AccumulatorGemm, Mac4AccGemm, Mac4IntGemm}])
def test_recipe_gemms_equal_golden_dots(name):
    recipe = RECIPES[name]
    rng = np.random.default_rng(11)
    for role, (a, b) in _operands(recipe, 8, 16, 8, rng).items():
        twin = getattr(recipe, role)
        if isinstance(twin, Mac4IntGemm):
            continue        # exact integers: test_int4_recipe_forward_is_exact_integer_gemm
        got = twin.matmul(a, b, rng)
        assert got.dtype == np.float32 and got.shape == (a.shape[0], b.shape[1])
        assert np.array_equal(got, _reference(twin, a, b)), (name, role)


def test_accumulator_twin_pads_k_with_zero_lanes():
    """K = 13 is no multiple of 8 lanes: small integers keep every sum exact, so the result is the
    exact product whatever the padding, and the transposed (swapped) operand order agrees."""
    rng = np.random.default_rng(2)
    f = parse_format("fp8_e5m2")
    A, B = rng.integers(-3, 4, (5, 13)).astype(float), rng.integers(-3, 4, (13, 4)).astype(float)
    a, b = Operand(codes=f.encode(A), fmt="fp8_e5m2"), Operand(codes=f.encode(B), fmt="fp8_e5m2")
    for chunk in (0, 8, 64):
        for rounding in ("rne", "sr"):      # sr draws its words per step; exact sums stay exact
            twin = AccumulatorGemm(lanes=8, chunk=chunk, rounding=rounding)
            assert np.array_equal(twin.matmul(a, b, rng), (A @ B).astype(np.float32))
    e4 = Operand(codes=parse_format("fp8_e4m3").encode(A), fmt="fp8_e4m3")
    hfp8 = AccumulatorGemm("fp8_e4m3", "fp8_e5m2", lanes=8)
    assert np.array_equal(hfp8.matmul(b.T, e4.T, rng), (A @ B).T.astype(np.float32))   # swapped order
    with pytest.raises(ValueError, match="takes fp8_e4m3 x fp8_e5m2"):
        hfp8.matmul(e4, e4, rng)


def test_mac4_twin_exact_small_values():
    """INT4 x FP4 with K = 10 (padded to 16), both operand orders: small exact values."""
    rng = np.random.default_rng(3)
    X = rng.integers(-7, 8, (4, 10))
    g = rng.choice([0.0, 0.25, -1.0, 4.0, -16.0], (10, 3))
    c0, c1 = tpr_quantize(g * 2.0 ** -5, scale_exp=-5)
    assert np.array_equal(fp4_value(c0, 0, -5), g * 2.0 ** -5)
    x = Operand(codes=parse_format("int4").encode(X).astype(np.uint8), fmt="int4", scale=0.5)
    gop = Operand(codes=c0, fmt="fp4_r4", exp=-5, phase=0)
    want = (X @ g * 2.0 ** -5 * 0.5).astype(np.float32)
    for rounding in ("rne", "sr"):
        twin = Mac4AccGemm(lanes=8, chunk=8, rounding=rounding)
        assert np.array_equal(twin.matmul(x, gop, rng), want)
        assert np.array_equal(twin.matmul(gop.T, x.T, rng), want.T)


def test_int4_recipe_forward_is_exact_integer_gemm():
    recipe = RECIPES["int4-sun2020"]
    rng = np.random.default_rng(4)
    qx, qw = _operands(recipe, 7, 24, 5, rng)["fwd"]
    ints = parse_format("uint4").to_int(qx.codes) @ parse_format("int4").to_int(qw.codes)
    assert np.array_equal(recipe.fwd.matmul(qx, qw, rng), (ints * (qx.scale * qw.scale)).astype(np.float32))


def test_sr_weight_update_does_not_stagnate():
    """w = 1 and lr*g = 2**-12, a quarter of e6m9's half-ulp at 1: round-to-nearest never moves
    the weight (Wang et al. 2018, section 3.2), stochastic rounding moves it by one ulp (2**-9) with
    probability 1/8, so the mean update is right."""
    n = 20000
    rng = np.random.default_rng(7)
    for rounding, lo, hi in (("rne", 1.0, 1.0), ("sr", 1 - 2**-12 * 1.1, 1 - 2**-12 * 0.9)):
        p = Param(np.ones(n), SgdAxpy("e6m9", rounding=rounding))
        p.grad[...] = 2.0 ** -12
        p.update.step(p, {}, 1.0, 0.0, rng)
        assert set(np.unique(p.data)) <= {1.0, 1.0 - 2**-10}     # below 1 the ulp is 2**-10
        assert lo <= p.data.mean() <= hi, rounding


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_high_precision_layers_follow_the_recipe(model_name):
    """The first and last GEMM layers of a built model run FP32 (quantizers, twins and float32
    updates) when the recipe keeps them in higher precision; the middle one runs the recipe."""
    for recipe in RECIPES.values():
        model = build_model(model_name, (8, 8), 10, recipe, seed=0)
        cores = [layer.core for layer in model.gemm_layers()]
        keep = recipe.high_precision
        hp = recipe.high_precision_recipe or recipes_mod.FP32
        assert [c.recipe.name for c in cores] == [
            hp.name if "first" in keep else recipe.name, recipe.name, hp.name if "last" in keep else recipe.name]
        assert type(cores[1].w.update) is type(recipe.update)
        assert type(cores[0].w.update) is type((hp if "first" in keep else recipe).update)


# -- FP32 gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_fp32_gradients_against_finite_differences(model_name, small):
    """Central differences of the loss along random directions, per parameter tensor, against the
    backward pass (float32; the step is large enough for float32 but small against ReLU kinks)."""
    x, y = small.x_train[:16], small.y_train[:16]
    model = build_model(model_name, small.shape, 10, RECIPES["fp32"], seed=1)
    ctx = StepContext(np.random.default_rng(0))
    # Nonzero biases: with zero biases every all-zero input patch (digits have many) puts a ReLU
    # exactly at its kink, where the one-sided differences of a bias disagree with any gradient.
    for p in model.params():
        if p.name.endswith(".b"):
            p.data[...] = np.random.default_rng(2).normal(0, 0.1, p.data.shape)

    def loss():
        return softmax_cross_entropy(model.forward(x, StepContext(None, train=False)), y)[0]

    for p in model.params():
        p.grad[...] = 0
    _, d = softmax_cross_entropy(model.forward(x, ctx), y)
    model.backward(d, ctx)
    rng = np.random.default_rng(9)
    for p in model.params():
        direction = rng.normal(size=p.data.shape).astype(np.float32)
        direction /= np.linalg.norm(direction)
        eps = np.float32(1e-2)
        base = p.data.copy()
        p.data[...] = base + eps * direction
        up = loss()
        p.data[...] = base - eps * direction
        down = loss()
        p.data[...] = base
        numeric = (up - down) / (2 * eps)
        analytic = float(np.sum(p.grad * direction))
        assert abs(numeric - analytic) <= 2e-3 + 2e-2 * abs(analytic), (p.name, numeric, analytic)


# -- runs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe,model_name", [("fp8-wang2018", "mlp"), ("int4-sun2020", "cnn")])
def test_seeded_run_is_bit_reproducible(recipe, model_name, small):
    first = run(recipe, model_name, small, 1, seed=3)
    again = run(recipe, model_name, small, 1, seed=3)
    other = run(recipe, model_name, small, 1, seed=4)
    assert first["digest"] == again["digest"] and first["history"][0]["loss"] == again["history"][0]["loss"]
    assert other["digest"] != first["digest"]
    assert first["finite"]


@pytest.mark.parametrize("recipe", ["mxfp4", "accuracy-booster", "luq-smp2", "fqt-bhq"])
def test_seeded_run_of_each_new_family_is_bit_reproducible(recipe, small):
    """One short run per family (MX, HBFP with stochastic rounding and an epoch switch, LUQ with
    SMP, FQT with BHQ): the same seed gives the same weights bit for bit, another seed others."""
    tiny = Dataset("tiny", small.x_train[:128], small.y_train[:128], small.x_test[:32], small.y_test[:32], 10)
    first, again, other = (run(recipe, "mlp", tiny, 2, seed=s) for s in (3, 3, 4))
    assert first["digest"] == again["digest"] and first["history"] == [
        {**h, "seconds": f["seconds"]} for h, f in zip(again["history"], first["history"])]
    assert other["digest"] != first["digest"] and first["finite"]


@pytest.mark.parametrize("recipe", ["luq", "fqt-psq"])
def test_no_tile_capture_for_twins_without_rtl(recipe):
    """The LUQ and affine-integer twins have no RTL yet: capturing a tile says so."""
    from train.tiles import capture
    with pytest.raises(ValueError, match="no tile capture for"):
        capture(recipe, "mlp", "fc2", "bwd_weight")


def test_no_tile_capture_of_an_sr_gemm(monkeypatch):
    """The RTL draws its sr words from its own LFSRs, so an sr GEMM gives no tile."""
    from train.tiles import capture
    base = RECIPES["fp8-wang2018"]
    monkeypatch.setitem(RECIPES, "sr-gemm", replace(base, name="sr-gemm",
                                                    bwd_weight=replace(base.bwd_weight, rounding="sr")))
    with pytest.raises(ValueError, match="rne GEMMs only"):
        capture("sr-gemm", "mlp", "fc2", "bwd_weight")


@pytest.mark.parametrize("role, formats", [("bwd_weight", ("mxfp8_e4m3", "mxfp8_e5m2")),
                                           ("bwd_data", ("mxfp8_e5m2", "mxfp8_e4m3"))])
def test_block_tile_holds_the_step_block_operands(role, formats):
    """A block tile names the accumulator's block front with the GEMM's element formats in its order,
    holds element and scale codes blocked along K, and its result codes are the product of the
    dequantized operands up to one FP32 rounding per block pair (an operand read along the wrong
    axis, or scales of other blocks, would be far off)."""
    from train.tiles import capture
    t = capture("mxfp8", "mlp", "fc2", role)
    assert t.unit == "accumulator"
    assert t.config == {"front": "block", "a_format": formats[0], "b_format": formats[1], "acc_format": "fp32",
                        "chunk": 0, "rounding": "rne"}
    (M, K), N = t.a.shape, t.b.shape[1]
    nb = K // 32
    assert K % 32 == 0 and t.a_scales.shape == (M, nb) and t.b_scales.shape == (nb, N)
    A = dequantize(t.a, t.a_scales, formats[0], axis=1)
    B = dequantize(t.b, t.b_scales, formats[1], axis=0)
    got = parse_format("fp32").decode(t.codes)
    bound = (nb + 1) * 2.0 ** -23 * (np.abs(A) @ np.abs(B))
    assert np.all(np.abs(got - A @ B) <= bound) and np.any(got != 0)
    sub = t.sub(slice(1, 3), slice(2, 5))
    assert np.array_equal(dequantize(sub.a, sub.a_scales, formats[0], axis=1), A[1:3])
    assert np.array_equal(dequantize(sub.b, sub.b_scales, formats[1], axis=0), B[:, 2:5])
    assert np.array_equal(sub.codes, t.codes[1:3, 2:5]) and set(sub.arrays()) >= {"a_scales", "b_scales"}


def test_a_new_recipe_is_one_object(monkeypatch, small):
    """A recipe registered as data runs through the unchanged loop (here: CL = 16, e4m3 weights)."""
    base = RECIPES["fp8-wang2018"]
    twin = replace(base.fwd, chunk=16, a_format="fp8_e5m2", b_format="fp8_e4m3")
    custom = replace(base, name="custom", weight=FloatCast("fp8_e4m3"), fwd=twin,
                     bwd_data=replace(twin, a_format="fp8_e5m2"), bwd_weight=replace(base.bwd_weight, chunk=16))
    monkeypatch.setitem(RECIPES, "custom", custom)
    result = run("custom", "mlp", small, 1, seed=0)
    assert result["finite"] and result["recipe"] == "custom"


# -- the command line -------------------------------------------------------------------------------

def _fake_synth(path):
    path.write_text(json.dumps({"configs": [
        {"id": "fp32_fma", "label": "FP32 FMA", "area_per_mac_um2": 29570.0},
        {"id": "accumulator_l8_w10", "label": "Accumulator 8 lanes", "area_per_mac_um2": 2365.0}]}))
    return path


def test_cli_writes_reports(tmp_path, capfd):
    out = tmp_path / "out"
    status = main(["train", "--recipe", "fp32", "--recipe", "fp8-wang2018", "--model", "mlp", "--epochs", "1",
                   "--seeds", "1", "-j", "2", "-o", str(out), "--synth", str(_fake_synth(tmp_path / "s.json"))])
    text = capfd.readouterr().out       # the workers' lines reach the file descriptor, not sys.stdout
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "frontier.png", "report.json", "report.md"]
    assert "fp8-wang2018           mlp seed 0 epoch   1/1 loss" in text      # a progress line per epoch
    report = json.loads((out / "report.json").read_text())
    assert [(r["recipe"], r["model"]) for r in report["summary"]] == [("fp32", "mlp"), ("fp8-wang2018", "mlp")]
    assert all(r["peak_rss_mib"] > 0 and r["wall_s"] > 0 for r in report["runs"])
    assert set(report["frontier"]["used"]) == {"fp32_fma", "accumulator_l8_w10"}
    md = (out / "report.md").read_text()
    assert "`accumulator_l8_w10` (Accumulator 8 lanes): 2,365.0 µm² per MAC" in md


def test_cli_mnist_and_no_frontier_without_synth(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()
    _mnist_folder(tmp_path / "mnist")
    out = tmp_path / "out"
    status = main(["train", "--recipe", "fp32", "--model", "cnn", "--epochs", "2", "--seeds", "1", "-j", "1",
                   "--data", f"mnist:{tmp_path / 'mnist'}", "-o", str(out), "--synth", str(tmp_path / "none.json")])
    assert status == 0
    assert not (out / "frontier.png").exists() and (out / "curves.png").exists()
    assert "frontier.png not drawn" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["n_train"] == 12


@pytest.mark.parametrize("args,message", [
    (["--recipe", "fp9"], r"--recipe: unknown recipe 'fp9' \(available: fp32, fp8-wang2018"),
    (["--data", "mnist:/no/such/folder"], r"--data: MNIST folder '/no/such/folder' does not exist"),
    (["--data", "cifar"], r"--data must be digits or mnist:DIR"),
    (["--model", "resnet"], r"--model: invalid choice: 'resnet'"),
    (["--epochs", "0"], r"--epochs: must be a positive integer, not '0'"),
    (["--lr", "-1"], r"--lr: must be a positive number"),
])
def test_cli_errors(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("lowbit: error: ")
    import re
    assert re.search(message, err), err
    assert not out.exists()


def test_cli_lists_every_recipe(tmp_path, capsys):
    """Every recipe of the registry, the new ones included, is offered by ``lowbit train``."""
    assert main(["train", "--recipe", "nope", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"(available: {', '.join(RECIPES)})" in err
    for name in ("hbfp4", "accuracy-booster", "mxfp8", "mxfp6", "mxfp4", "luq", "luq-smp2", "luq-pow2",
                 "fqt-psq", "fqt-bhq", "int4-sun2020"):
        assert name in RECIPES


def test_cli_error_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    assert main(["train", "--recipe", "fp32", "-o", str(f)]) == 2
    assert "-o/--out" in capsys.readouterr().err and f.read_text() == "keep"


def test_cli_bad_data_folder_without_files(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", f"mnist:{tmp_path / 'empty'}", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no train-images-idx3-ubyte" in err
    assert not (tmp_path / "out").exists()


# -- block-format recipes (issue 12) ----------------------------------------------------------------

def _blocks(v, fmt, axis, **kw):
    """``quantize_blocks`` of float32 ``v`` zero-padded along ``axis`` to a multiple of ``k``."""
    widths = [(0, 0), (0, 0)]
    widths[axis] = (0, -v.shape[axis] % parse_block_format(fmt).k)
    return quantize_blocks(np.pad(v.astype(np.float32), widths), fmt, axis=axis, **kw)


def _layer_tensors(M, K, N, rng):
    """A layer's input, weights and output gradient (float32) with one large row or column each,
    so that blocks along axis 0 and along axis 1 quantize them differently."""
    x = np.maximum(rng.normal(0, 1, (M, K)), 0)
    x[1] *= 300.0
    w = rng.normal(0, 0.3, (K, N))
    w[:, 2] *= 300.0
    dy = rng.normal(0, 1e-2, (M, N))
    dy[0] *= 300.0
    return tuple(v.astype(np.float32) for v in (x, w, dy))


@pytest.mark.parametrize("name", ["mxfp8", "mxfp6", "mxfp4"])
def test_block_recipe_gemms_are_block_gemm_along_the_reduction_axis(name):
    """Each GEMM of an MX recipe (rne, so the operands can be formed here independently) equals
    ``block_gemm`` on the tensors quantized by ``quantize_blocks`` along that GEMM's reduction axis
    (X and dY are cut along different axes for their two GEMMs, and W too). M = 36, K = 40, N = 24
    are no multiples of 32 (zero padding). The same operand blocked along its other axis has other
    values and gives another product (checked), so a recipe blocking along the wrong axis fails."""
    recipe = RECIPES[name]
    fx, fw, fg = recipe.activation.fmt, recipe.weight.fmt, recipe.grad.fmt
    rng = np.random.default_rng(21)
    x, w, dy = _layer_tensors(36, 40, 24, rng)
    qx, qw = recipe.activation.quantize(x, {}, rng), recipe.weight.quantize(w, {}, rng)
    g_data, g_weight = recipe.grad.quantize_grad(dy, {}, rng)
    roles = {"fwd": ((qx, qw), (x, fx), (w, fw)),
             "bwd_data": ((g_data, qw.T), (dy, fg), (w.T, fw)),
             "bwd_weight": ((qx.T, g_weight), (x.T, fx), (dy, fg))}
    fp32 = parse_format("fp32")
    for role, ((a, b), (va, fa), (vb, fb)) in roles.items():
        twin = getattr(recipe, role)
        assert isinstance(twin, BlockGemm) and twin.acc_format == "fp32"
        (A, As), (B, Bs) = _blocks(va, fa, 1), _blocks(vb, fb, 0)
        want = fp32.decode(block_gemm(A, As, B, Bs, fa, fb, "fp32")).astype(np.float32)
        got = twin.matmul(a, b, rng)
        assert got.dtype == np.float32 and got.shape == (va.shape[0], vb.shape[1])
        assert np.array_equal(got, want), (name, role)
        # Blocked along the other axis: other operand values, another product.
        M, K = va.shape
        right_a = dequantize(A, As, fa, axis=1)[:, :K]
        wrong_a = dequantize(*_blocks(va, fa, 0), fa, axis=0)[:M]
        right_b = dequantize(B, Bs, fb, axis=0)[:K]
        wrong_b = dequantize(*_blocks(vb, fb, 1), fb, axis=1)[:, :vb.shape[1]]
        assert not np.array_equal(right_a, wrong_a) and not np.array_equal(right_b, wrong_b)
        assert not np.allclose(wrong_a @ right_b, want, rtol=1e-3, atol=0), (name, role)
        assert not np.allclose(right_a @ wrong_b, want, rtol=1e-3, atol=0), (name, role)


@pytest.mark.parametrize("name", ["hbfp4", "accuracy-booster"])
def test_hbfp_recipe_operands_use_the_step_words(name):
    """HBFP operands round stochastically: each is ``quantize_blocks`` with ``sr`` and the step
    generator's 16-bit words, one per element of the padded tensor, drawn in a fixed order (the
    rows view, then the columns view); the GEMMs are ``block_gemm`` on those codes."""
    recipe = RECIPES[name]
    fmt = recipe.weight.fmt
    assert fmt == "hbfp4" and recipe.activation.fmt == recipe.grad.fmt == fmt
    x, w, dy = _layer_tensors(36, 40, 24, np.random.default_rng(5))
    qx = recipe.activation.quantize(x, {}, np.random.default_rng(9))
    g_data, g_weight = recipe.grad.quantize_grad(dy, {}, np.random.default_rng(10))
    mirror = np.random.default_rng(9)
    for got, axis in zip(qx.blocks, (1, 0)):
        shape = list(x.shape)
        shape[axis] += -shape[axis] % 32
        words = rand_words(mirror, tuple(shape), 16)
        want = _blocks(x, fmt, axis, rounding="sr", rbits=words, rand_bits=16)
        assert all(np.array_equal(g, e) for g, e in zip(got, want)), axis
    mirror = np.random.default_rng(10)
    rows = _blocks(dy, fmt, 1, rounding="sr", rbits=rand_words(mirror, (36, 32), 16), rand_bits=16)
    cols = _blocks(dy, fmt, 0, rounding="sr", rbits=rand_words(mirror, (64, 24), 16), rand_bits=16)
    assert g_data.blocks[1] is None and g_weight.blocks[0] is None
    assert all(np.array_equal(g, e) for g, e in zip(g_data.blocks[0] + g_weight.blocks[1], rows + cols))
    qw = recipe.weight.quantize(w, {}, np.random.default_rng(11))
    for role, (a, b) in {"fwd": (qx, qw), "bwd_data": (g_data, qw.T), "bwd_weight": (qx.T, g_weight)}.items():
        (A, As), (B, Bs) = a.blocks[0], b.blocks[1]
        want = parse_format("fp32").decode(block_gemm(A, As, B, Bs, fmt, fmt, "fp32")).astype(np.float32)
        assert np.array_equal(getattr(recipe, role).matmul(a, b, None), want), role


def test_accuracy_booster_layers_and_last_epoch():
    """Accuracy Booster: the first and last GEMM layers always run HBFP6; the middle layer runs
    HBFP4 and switches to HBFP6 in the last epoch only, as the training loop announces each epoch."""
    recipe = RECIPES["accuracy-booster"]
    model = build_model("mlp", (8, 8), 10, recipe, seed=0)
    cores = [layer.core for layer in model.gemm_layers()]

    def formats():
        return [c.recipe.weight.fmt for c in cores]

    assert formats() == ["hbfp6", "hbfp4", "hbfp6"]
    for epoch, want in ((1, "hbfp4"), (4, "hbfp4"), (5, "hbfp6")):
        model.start_epoch(epoch, 5)
        assert formats() == ["hbfp6", want, "hbfp6"], epoch
        assert {c.recipe.fwd.a_format for c in cores[::2]} == {"hbfp6"}
    assert recipe.at_epoch(1, 1).weight.fmt == "hbfp6" and RECIPES["hbfp4"].at_epoch(5, 5) is RECIPES["hbfp4"]
    with pytest.raises(ValueError, match="same update rule"):
        replace(recipe, phases=((1, RECIPES["fp8-wang2018"]),))


def test_the_loop_announces_each_epoch(monkeypatch, small):
    seen = []
    from train import models
    orig = models.GemmCore.start_epoch

    def spy(core, epoch, epochs):
        orig(core, epoch, epochs)
        seen.append((core.name, epoch, core.recipe.weight.fmt))

    monkeypatch.setattr(models.GemmCore, "start_epoch", spy)
    tiny = Dataset("tiny", small.x_train[:64], small.y_train[:64], small.x_test[:16], small.y_test[:16], 10)
    run("accuracy-booster", "mlp", tiny, 2, seed=0)
    assert seen == [("fc1", 1, "hbfp6"), ("fc2", 1, "hbfp4"), ("fc3", 1, "hbfp6"),
                    ("fc1", 2, "hbfp6"), ("fc2", 2, "hbfp6"), ("fc3", 2, "hbfp6")]


# -- 4-bit gradient recipes (issue 13) --------------------------------------------------------------

@pytest.mark.parametrize("name", ["luq", "luq-smp2", "luq-pow2"])
def test_luq_recipe_gemms(name):
    """The backward GEMMs of the LUQ recipes are ``golden.accumulator.gemm`` of the INT4 codes
    (carried in e4m3) and the LUQ codes into FP32, one GEMM per SMP sample; checked against single
    golden ``dot`` calls per output and, since every sum is an exact integer, against the exact
    integer product of the decoded operands. The gradient codes are ``luq_quantize`` / ``luq_smp``
    with the step's words; ``luq-pow2``'s alpha is a power of two."""
    recipe = RECIPES[name]
    rng = np.random.default_rng(31)
    ops = _operands(recipe, 8, 24, 12, rng)
    g = ops["bwd_data"][0]
    samples = recipe.grad.samples
    lead = (samples,) if samples > 1 else ()
    assert g is ops["bwd_weight"][1] and g.fmt == "fp4_luq" and g.codes.shape == lead + (8, 12)
    assert (np.frexp(g.scale)[0] == 0.5) == (recipe.grad.scale == "pow2")
    # The codes are the golden quantizer's with the words drawn from the step generator.
    dy = np.random.default_rng(1).normal(0, 1e-2, (8, 12)).astype(np.float32)
    mine = recipe.grad.quantize_grad(dy, {}, np.random.default_rng(2))[0]
    words = rand_words(np.random.default_rng(2), lead + dy.shape, 16)
    if samples == 1:
        want_codes, alpha = luq_quantize(dy.astype(np.float64), recipe.grad.scale, "sr", words, 16)
    else:
        _, want_codes, alpha = luq_smp(dy.astype(np.float64), words, 16, recipe.grad.scale)
    assert np.array_equal(mine.codes, want_codes) and mine.scale == alpha
    e4m3 = parse_format("fp8_e4m3")
    for role in ("bwd_data", "bwd_weight"):
        a, b = ops[role]
        twin = getattr(recipe, role)
        assert isinstance(twin, LuqGemm) and twin.acc_format == "fp32" and twin.chunk == 0
        got = twin.matmul(a, b, rng)
        x, gg, swapped = (b.T, a.T, True) if a.fmt == "fp4_luq" else (a, b, False)
        ints = parse_format(x.fmt).to_int(x.codes)
        G = gg.codes if gg.codes.ndim == 3 else gg.codes[None]
        levels = sum(LUQ_FP4.decode(Gs) for Gs in G)
        exact = ((ints @ levels) / len(G) * (x.scale * gg.scale)).astype(np.float32)
        dots = np.zeros(exact.shape)
        for m in range(ints.shape[0]):
            for n in range(G.shape[2]):
                for Gs in G:
                    pad = -len(Gs) % 8        # zero lanes, as the twin streams them
                    xa = np.concatenate([e4m3.encode(ints[m].astype(float)), np.zeros(pad, np.uint8)])
                    ga = np.concatenate([Gs[:, n], np.zeros(pad, Gs.dtype)])
                    dots[m, n] += parse_format("fp32").decode(dot(xa, ga, "fp8_e4m3", "fp4_luq", "fp32", 8, 0, "exact"))
        assert np.array_equal(dots, ints @ levels)
        assert np.array_equal(got, exact.T if swapped else exact), (name, role)


def test_luq_smp_two_gemms_equal_one_on_the_mean():
    """SMP as two 4-bit GEMMs whose FP32 sums are averaged equals one GEMM on the mean of the two
    samples (the sums are exact): the recipe's choice of two GEMMs costs nothing in accuracy."""
    recipe = RECIPES["luq-smp2"]
    rng = np.random.default_rng(4)
    a, b = _operands(recipe, 16, 64, 10, rng)["bwd_weight"]
    got = recipe.bwd_weight.matmul(a, b, rng)
    ints = parse_format(a.fmt).to_int(a.codes)
    mean = np.mean([luq_decode(c, b.scale) for c in b.codes], axis=0)
    assert np.array_equal(got, ((ints @ mean) * a.scale).astype(np.float32))


def _exact_product(va, vb):
    """The exact product of two float64 matrices (rationals), as float64 values of the nearest
    float and of the sum of magnitudes."""
    from fractions import Fraction
    A = [[Fraction(v) for v in row] for row in va]
    B = [[Fraction(v) for v in row] for row in vb.T]
    out = np.array([[float(sum(p * q for p, q in zip(r, c))) for c in B] for r in A])
    mag = np.abs(va) @ np.abs(vb)
    return out, mag


@pytest.mark.parametrize("name", ["fqt-psq", "fqt-bhq"])
def test_fqt_recipe_gemms(name):
    """Chen et al.'s recipes: 8-bit per-tensor forward operands (``ptq_quantize``) and 4-bit
    PSQ/BHQ gradients with the step's words. Forward and backward-data are exact integer GEMMs plus
    the affine terms (the integer part is checked exactly); every GEMM is within float64 rounding
    of the exact product of the golden dequantized operands (``grad_dequantize``), rounded to
    float32: at most one float32 ulp plus 1e-12 of the sum of magnitudes."""
    recipe = RECIPES[name]
    rng = np.random.default_rng(41)
    ops = _operands(recipe, 12, 20, 9, rng)
    qx, qw = ops["fwd"]
    assert qx.codes.max() <= 255 and qx.gq.zero.size == 1 and qx.fmt == "affine8"
    g = ops["bwd_data"][0]
    assert g is ops["bwd_weight"][1] and g.codes.max() <= 15 and g.gq.zero.shape == (12, 1)
    dy = np.random.default_rng(1).normal(0, 1e-2, (12, 9)).astype(np.float32)
    mine = recipe.grad.quantize_grad(dy, {}, np.random.default_rng(2))[0].gq
    quant = psq_quantize if recipe.grad.method == "psq" else bhq_quantize
    want = quant(dy.astype(np.float64), 4, "sr", rand_words(np.random.default_rng(2), dy.shape, 16), 16)
    assert all(np.array_equal(p, q) for p, q in zip(mine, want))
    for role, (a, b) in ops.items():
        got = getattr(recipe, role).matmul(a, b, rng)
        va = grad_dequantize(a.gq) if a.axis == 0 else grad_dequantize(a.gq).T
        vb = grad_dequantize(b.gq) if b.axis == 0 else grad_dequantize(b.gq).T
        exact, mag = _exact_product(va, vb)
        assert got.dtype == np.float32 and got.shape == exact.shape
        err = np.abs(got.astype(np.float64) - exact)
        assert np.all(err <= np.spacing(np.abs(exact).astype(np.float32)) + 1e-12 * mag), (name, role)
    # The integer part of the forward GEMM: codes times codes, exactly.
    Ca, Cb = qx.codes.astype(np.int64), qw.codes.astype(np.int64)
    za, sa, zb, sb = qx.gq.zero, qx.gq.step, qw.gq.zero, qw.gq.step
    K = Ca.shape[1]
    affine = za * zb * K + za * (sb * Cb.sum(axis=0, keepdims=True)) + (sa * zb) * Ca.sum(axis=1, keepdims=True) + \
        (sa * sb) * np.array([[sum(int(p) * int(q) for p, q in zip(r, c)) for c in Cb.T] for r in Ca])
    assert np.array_equal(recipe.fwd.matmul(qx, qw, rng), affine.astype(np.float32))


def test_every_recipe_names_rows_of_the_synthesis_matrix():
    """The frontier chart finds each recipe's unit by its matrix id: a renamed or dropped row would
    silently take the recipe off the chart."""
    import tomllib
    from hw.synth.config import scripts_dir
    matrix = tomllib.loads((scripts_dir() / "matrix.toml").read_text())
    ids = {c["id"] for c in matrix["configs"]}
    named = {(r.name, sid) for r in RECIPES.values() for sid in (r.synth_id, *r.synth_also) if sid}
    assert named and {sid for _, sid in named} <= ids, sorted(n for n in named if n[1] not in ids)
    assert sum(r.synth_id is not None for r in RECIPES.values()) >= 9
