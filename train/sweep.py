"""The training runner of ``lowbit sweep`` (``hw.sweep.runners``: ``train`` = ``train.sweep:run_point``).

A sweep point names a unit configuration and a training entry (``recipe``, ``model`` and options).
The point is trained with the recipe *on the point's arithmetic*: every GEMM twin of the recipe that
runs on the point's unit (same unit, same front and operand formats) is rebuilt with the point's
accumulation parameters (accumulator format, lanes, chunk length, window, rounding, random bits),
so a sweep over, say, the accumulator's window or chunk length trains each configuration it
synthesizes. The operand formats stay the recipe's: its quantizers produce them. A recipe with no
GEMM on the point's unit is an error of that point (one line).

Training options (the sweep file's training entry): ``recipe`` (required), ``model`` (``mlp``),
``epochs`` (10), ``seeds`` (1: seeds 0 ... seeds-1), ``data`` (``digits`` or ``mnist:DIR``). The
result's ``accuracy`` is the mean final test accuracy over the seeds (a fraction).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from golden.block import block_operand_param
from golden.formats import parse_format

from .data import load_data
from .loop import run
from .recipes import get_recipe

__all__ = ["run_point", "recipe_for_point", "version"]

#: Enters the sweep's cache key: change it when the same point would train to a different result.
version = "1"

#: Twin fields a point's parameters may set (the accumulation, not the operands).
TUNABLE = ("acc_format", "lanes", "chunk", "window", "rounding", "rand_bits")
#: Twin configuration keys that must agree with the point (what the recipe's operands are).
STRUCTURAL = ("front", "mode", "a_format", "b_format")
ROLES = ("fwd", "bwd_data", "bwd_weight")


def _same(key, twin_value, point_value, block=False):
    if key in ("a_format", "b_format") and block:
        # The block front's operands: block formats (an element spec under the MX rule, as the unit reads it).
        return block_operand_param(key, twin_value) == block_operand_param(key, point_value)
    if key in ("a_format", "b_format", "acc_format"):
        return parse_format(twin_value) == parse_format(point_value)
    return twin_value == point_value


def _matches(twin, unit, params):
    if getattr(twin, "unit", None) != unit:
        return False
    config = twin.config()
    block = config.get("front") == "block"
    for key in STRUCTURAL:
        point_value = params.get(key, "fp8" if key == "front" else None)
        if key in config and point_value is not None and not _same(key, config[key], point_value, block):
            return False
        if key == "front" and config.get("front", "fp8") != point_value:
            return False
    return True


def recipe_for_point(recipe, unit, params):
    """``recipe`` with every GEMM twin on ``unit`` rebuilt from the point's ``params`` (JSON data,
    as a sweep point carries them). ``ValueError`` if no twin runs on the point's unit."""
    changes, matched = {}, []
    for role in ROLES:
        twin = getattr(recipe, role)
        if not _matches(twin, unit, params):
            continue
        fields = {f.name for f in dataclasses.fields(twin)}
        new = {k: params[k] for k in TUNABLE if k in fields and k in params}
        if "window" in new and new["window"] != "exact":
            new["window"] = int(new["window"])
        changes[role] = dataclasses.replace(twin, **new)
        matched.append(role)
    if not matched:
        raise ValueError(f"recipe {recipe.name} has no GEMM on {unit} "
                         f"{ {k: params[k] for k in STRUCTURAL if k in params} } (its operands are fixed by "
                         "the recipe's quantizers)")
    return dataclasses.replace(recipe, **changes)


def run_point(point, workdir):
    """Train ``point`` (``hw.sweep.runners`` contract): returns ``accuracy`` and the runs' details."""
    options = dict(point["training"])
    recipe = recipe_for_point(get_recipe(options.pop("recipe")), point["unit"], point["params"])
    model = options.pop("model", "mlp")
    epochs = int(options.pop("epochs", 10))
    seeds = int(options.pop("seeds", 1))
    data = load_data(options.pop("data", "digits"))
    if options:
        raise ValueError(f"unknown training options {', '.join(sorted(options))} "
                         "(known: recipe, model, epochs, seeds, data)")
    runs = [run(recipe, model, data, epochs, seed) for seed in range(seeds)]
    accs = [r["final_acc"] for r in runs]
    return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "final_accuracies": accs, "recipe": recipe.name, "model": model, "epochs": epochs,
            "seconds": sum(r["wall_s"] for r in runs), "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "digests": [r["digest"] for r in runs]}
