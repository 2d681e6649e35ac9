"""The training loop: the same for every recipe (it reads the recipe, never its name).

A run is ``(recipe, model, seed)``: weights from the seed, one shuffle per epoch, minibatch SGD with
momentum, test accuracy after every epoch (with the recipe's forward arithmetic). The random words of
stochastic rounding come from a generator seeded by ``(seed, epoch, step)``, so a run is
reproducible bit for bit (:func:`run` returns the final weights' hash).
"""

from __future__ import annotations

import hashlib
import resource
import time
from dataclasses import asdict, dataclass

import numpy as np

from .models import SGD, StepContext, build_model, softmax_cross_entropy
from .recipes import get_recipe

__all__ = ["Hyper", "run", "evaluate", "train_step", "batches", "weights_digest", "peak_rss_mib"]


@dataclass(frozen=True)
class Hyper:
    """Hyperparameters, the same for every recipe (tuned once on ``fp32``, docs/training.md)."""

    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 64


def batches(n, batch_size, rng):
    order = rng.permutation(n)
    return [order[k:k + batch_size] for k in range(0, n, batch_size)]


def train_step(model, opt, x, y, rng, hook=None):
    """One forward/backward/update on a minibatch; returns the loss."""
    ctx = StepContext(rng, train=True, hook=hook)
    opt.zero_grad()
    loss, dlogits = softmax_cross_entropy(model.forward(x, ctx), y)
    model.backward(dlogits, ctx)
    opt.rng = rng
    opt.step()
    return loss


def evaluate(model, x, y, rng, batch_size=512):
    """Accuracy (fraction) with the recipe's forward arithmetic."""
    correct = 0
    ctx = StepContext(rng, train=False)
    for k in range(0, len(x), batch_size):
        logits = model.forward(x[k:k + batch_size], ctx)
        correct += int((logits.argmax(axis=1) == y[k:k + batch_size]).sum())
    return correct / len(x)


def weights_digest(model):
    h = hashlib.sha256()
    for p in model.params():
        h.update(p.name.encode())
        h.update(np.ascontiguousarray(p.data).tobytes())
    return h.hexdigest()[:16]


def peak_rss_mib():
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def setup(recipe_name, model_name, data, seed, hyper=Hyper()):
    recipe = get_recipe(recipe_name)
    model = build_model(model_name, data.shape, data.classes, recipe, seed)
    opt = SGD(model.params(), hyper.lr, hyper.momentum)
    return recipe, model, opt


def step_rng(seed, epoch, step):
    return np.random.default_rng([seed, 1, epoch, step])


def run(recipe_name, model_name, data, epochs, seed, hyper=Hyper(), progress=None):
    """Train one run (``recipe_name``: a name or a :class:`train.recipes.Recipe`); returns a dict: per-epoch loss / test accuracy / time, final accuracy, wall
    time, peak memory and the final weights' digest. ``progress(line)`` gets one line per epoch."""
    t0 = time.perf_counter()
    recipe, model, opt = setup(recipe_name, model_name, data, seed, hyper)
    recipe_name = recipe.name
    history = []
    for epoch in range(1, epochs + 1):
        te = time.perf_counter()
        model.start_epoch(epoch, epochs)
        order_rng = np.random.default_rng([seed, 2, epoch])
        losses = []
        for step, idx in enumerate(batches(len(data.x_train), hyper.batch_size, order_rng)):
            losses.append(train_step(model, opt, data.x_train[idx], data.y_train[idx],
                                     step_rng(seed, epoch, step)))
        acc = evaluate(model, data.x_test, data.y_test, np.random.default_rng([seed, 3, epoch]))
        loss = float(np.mean(losses))
        dt = time.perf_counter() - te
        history.append({"epoch": epoch, "loss": loss, "test_acc": acc, "seconds": dt})
        if progress is not None:
            progress(f"{recipe_name:<22} {model_name} seed {seed} epoch {epoch:>3}/{epochs} "
                     f"loss {loss:.4f} acc {100 * acc:6.2f} % {dt:7.1f} s")
    return {"recipe": recipe_name, "model": model_name, "seed": seed, "epochs": epochs,
            "hyper": asdict(hyper), "history": history, "final_acc": history[-1]["test_acc"] if history else None,
            "wall_s": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib(),
            "digest": weights_digest(model), "finite": bool(all(np.isfinite(p.data).all() for p in model.params()))}
