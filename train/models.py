"""Models for the training emulation: layers with forward/backward, the loss and the optimizer.

Every matrix product of a GEMM layer (:class:`Dense`, :class:`Conv3x3` through im2col) goes through
:class:`GemmCore`, which applies its recipe: the recipe's quantizers on the operands and its GEMM
twins for the forward (``X W``), backward-data (``dY W^T``) and backward-weight (``X^T dY``)
products. Everything else (bias, ReLU, pooling, softmax, loss) is float32 NumPy. Activations are
NHWC. The optimizer has PyTorch's shape (``zero_grad()``, ``step()``, parameters with ``data`` and
``grad`` side by side); each parameter carries the update rule of its layer's recipe.
"""

from __future__ import annotations

import numpy as np

from .arith import SgdFp32

__all__ = ["Param", "GemmCore", "Dense", "Conv3x3", "ReLU", "AvgPool2", "Flatten", "Model", "build_model",
           "softmax_cross_entropy", "SGD", "MODELS", "StepContext"]

F32 = np.float32


class Param:
    """A trainable tensor: ``data`` and ``grad`` side by side, and the ``update`` rule of its layer."""

    def __init__(self, data, update, name=""):
        self.data = np.array(data, F32)
        self.grad = np.zeros_like(self.data)
        self.update = update
        self.name = name
        update.init(self)


class StepContext:
    """What one forward/backward pass needs besides the data: the random generator of the step
    (random words of stochastic rounding) and an optional ``hook(layer, role, twin, a, b, out)``
    called after every GEMM (tile capture for the hardware-in-the-loop tests)."""

    def __init__(self, rng, train=True, hook=None):
        self.rng, self.train, self.hook = rng, train, hook


class GemmCore:
    """``Y = X W`` of 2-D ``X`` (M, K) and the weight ``W`` (K, N) under ``recipe``."""

    def __init__(self, w, recipe, name):
        self.base, self.recipe, self.name = recipe, recipe, name
        self.w = Param(w, recipe.update, name + ".w")
        self.act_state = {k: Param(np.array(v, F32), SgdFp32(), f"{name}.{k}")
                          for k, v in recipe.activation.params().items()}
        self.grad_state = {}
        self._qx = self._qw = None

    def params(self):
        return [self.w, *self.act_state.values()]

    def start_epoch(self, epoch, epochs):
        """Run the recipe of epoch ``epoch`` of ``epochs`` (``Recipe.at_epoch``: the same one unless
        the recipe has phases)."""
        self.recipe = self.base.at_epoch(epoch, epochs)

    def _gemm(self, role, a, b, ctx):
        twin = getattr(self.recipe, role)
        out = twin.matmul(a, b, ctx.rng)
        if ctx.hook is not None:
            ctx.hook(self.name, role, twin, a, b, out)
        return out

    def forward(self, x, ctx):
        r = self.recipe
        qx = r.activation.quantize(x, self.act_state, ctx.rng)
        qw = r.weight.quantize(self.w.data, {}, ctx.rng)
        if ctx.train:
            self._qx, self._qw = qx, qw
        return self._gemm("fwd", qx, qw, ctx)

    def backward(self, dy, ctx, need_dx=True):
        r = self.recipe
        g_data, g_weight = r.grad.quantize_grad(dy, self.grad_state, ctx.rng)
        self.w.grad += self._gemm("bwd_weight", self._qx.T, g_weight, ctx)
        if not need_dx:
            return None
        dxq = self._gemm("bwd_data", g_data, self._qw.T, ctx)
        return r.activation.backward(self._qx, dxq, self.act_state)


class Dense:
    """``y = x W + b``; ``x`` (B, in)."""

    gemm = True

    def __init__(self, n_in, n_out, rng, recipe, name):
        w = rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out))
        self.core = GemmCore(w, recipe, name)
        self.b = Param(np.zeros(n_out), SgdFp32(), name + ".b")

    def params(self):
        return [*self.core.params(), self.b]

    def forward(self, x, ctx):
        return self.core.forward(x, ctx) + self.b.data

    def backward(self, dy, ctx, need_dx=True):
        self.b.grad += dy.sum(axis=0)
        return self.core.backward(dy, ctx, need_dx)


def im2col(x):
    """NHWC ``x`` (B, H, W, C) to the 3x3, padding-1 patches (B*H*W, 9*C), tap-major."""
    B, H, W, C = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.stack([xp[:, i:i + H, j:j + W, :] for i in range(3) for j in range(3)], axis=3)
    return cols.reshape(B * H * W, 9 * C)


def col2im(dcols, shape):
    """The adjoint of :func:`im2col`: patch gradients summed back onto the image."""
    B, H, W, C = shape
    d = dcols.reshape(B, H, W, 9, C)
    dxp = np.zeros((B, H + 2, W + 2, C), F32)
    for k in range(9):
        i, j = divmod(k, 3)
        dxp[:, i:i + H, j:j + W, :] += d[:, :, :, k, :]
    return dxp[:, 1:-1, 1:-1, :]


class Conv3x3:
    """3x3 convolution, stride 1, zero padding 1, as one GEMM: im2col (B*H*W, 9*Cin) times
    W (9*Cin, Cout). Its backward-weight GEMM sums over B*H*W terms."""

    gemm = True

    def __init__(self, c_in, c_out, rng, recipe, name):
        w = rng.normal(0.0, np.sqrt(2.0 / (9 * c_in)), (9 * c_in, c_out))
        self.core = GemmCore(w, recipe, name)
        self.b = Param(np.zeros(c_out), SgdFp32(), name + ".b")
        self.c_out = c_out

    def params(self):
        return [*self.core.params(), self.b]

    def forward(self, x, ctx):
        self._shape = x.shape
        B, H, W, _ = x.shape
        y = self.core.forward(im2col(x), ctx) + self.b.data
        return y.reshape(B, H, W, self.c_out)

    def backward(self, dy, ctx, need_dx=True):
        dy2 = dy.reshape(-1, self.c_out)
        self.b.grad += dy2.sum(axis=0)
        dcols = self.core.backward(dy2, ctx, need_dx)
        return None if dcols is None else col2im(dcols, self._shape)


class ReLU:
    gemm = False

    def params(self):
        return []

    def forward(self, x, ctx):
        self._mask = x > 0
        return x * self._mask

    def backward(self, dy, ctx, need_dx=True):
        return dy * self._mask


class AvgPool2:
    """2x2 average pooling, stride 2 (NHWC)."""

    gemm = False

    def params(self):
        return []

    def forward(self, x, ctx):
        B, H, W, C = x.shape
        return x.reshape(B, H // 2, 2, W // 2, 2, C).mean(axis=(2, 4), dtype=F32)

    def backward(self, dy, ctx, need_dx=True):
        return np.repeat(np.repeat(dy, 2, axis=1), 2, axis=2) * F32(0.25)


class Flatten:
    gemm = False

    def params(self):
        return []

    def forward(self, x, ctx):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, ctx, need_dx=True):
        return dy.reshape(self._shape)


class Model:
    """A chain of layers; ``forward`` returns the logits."""

    def __init__(self, name, layers, input_rank):
        self.name, self.layers, self.input_rank = name, layers, input_rank

    def params(self):
        return [p for layer in self.layers for p in layer.params()]

    def gemm_layers(self):
        return [layer for layer in self.layers if layer.gemm]

    def start_epoch(self, epoch, epochs):
        """Tell every GEMM layer which epoch (1-based) of how many starts (recipes with phases)."""
        for layer in self.gemm_layers():
            layer.core.start_epoch(epoch, epochs)

    def forward(self, x, ctx):
        x = x.reshape(x.shape[0], -1) if self.input_rank == 2 else x[..., None]
        for layer in self.layers:
            x = layer.forward(x, ctx)
        return x

    def backward(self, dlogits, ctx):
        d = dlogits
        first = self.layers.index(self.gemm_layers()[0])
        for k in range(len(self.layers) - 1, first - 1, -1):
            # The first GEMM layer's input gradient is never used: its backward-data GEMM is skipped.
            d = self.layers[k].backward(d, ctx, need_dx=k > first)


def _mlp(shape, classes, rng, recipe_for):
    n_in = int(np.prod(shape))
    dims = [n_in, 128, 64, classes]
    layers = []
    for k in range(3):
        layers.append(Dense(dims[k], dims[k + 1], rng, recipe_for(k, 3), f"fc{k + 1}"))
        if k < 2:
            layers.append(ReLU())
    return Model("mlp", layers, 2)


def _cnn(shape, classes, rng, recipe_for):
    H, W = shape
    if H % 2 or W % 2:
        raise ValueError(f"the cnn model needs even image sizes, not {H}x{W}")
    c1, c2 = 8, 16
    layers = [Conv3x3(1, c1, rng, recipe_for(0, 3), "conv1"), ReLU(),
              Conv3x3(c1, c2, rng, recipe_for(1, 3), "conv2"), ReLU(),
              AvgPool2(), Flatten(),
              Dense((H // 2) * (W // 2) * c2, classes, rng, recipe_for(2, 3), "fc")]
    return Model("cnn", layers, 4)


#: name -> (builder, description)
MODELS = {
    "mlp": (_mlp, "MLP in-128-64-classes, ReLU"),
    "cnn": (_cnn, "conv3x3(1->8), ReLU, conv3x3(8->16), ReLU, 2x2 average pool, linear (classes)"),
}


def build_model(name, shape, classes, recipe, seed):
    """The model ``name`` for images of ``shape`` with weights from ``seed`` (the same initial
    values for every recipe; low-precision layers then round them into their master format)."""
    builder, _ = MODELS[name]
    return builder(shape, classes, np.random.default_rng([seed, 0]), recipe.layer_recipe)


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits (float32)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(np.maximum(p[np.arange(n), y], F32(1e-30))).mean())
    d = p
    d[np.arange(n), y] -= 1
    return loss, (d / F32(n)).astype(F32)


class SGD:
    """SGD with momentum, shaped like ``torch.optim.SGD``: ``zero_grad()``, ``step()``. Each
    parameter is updated by its own rule (``param.update``): float32, or the recipe's
    low-precision AXPY. ``rng`` (set per step by the loop) feeds stochastic rounding."""

    def __init__(self, params, lr, momentum=0.0):
        self.params, self.lr, self.momentum = list(params), lr, momentum
        self.state = {id(p): {} for p in self.params}
        self.rng = None

    def zero_grad(self):
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        for p in self.params:
            p.update.step(p, self.state[id(p)], self.lr, self.momentum, self.rng)
