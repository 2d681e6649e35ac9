"""Reports of a training run: ``report.json``, ``report.md``, ``curves.png`` and ``frontier.png``.

``frontier.png`` (each recipe's final accuracy against the sky130 area per MAC of the unit it
models) is drawn only when a synthesis report (``lowbit synth`` / ``make synth``:
``build/synth/report.json``) is given and has a row for at least one recipe's ``synth_id``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hw.export import write_atomic

from .recipes import RECIPES

__all__ = ["summarize", "load_synth", "frontier_points", "markdown", "write_reports"]


def summarize(runs):
    """One row per (model, recipe): final accuracy mean and std over seeds (population std, 0 for
    one seed), the gap of the mean to FP32's, mean wall time per run, largest peak memory."""
    rows = []
    keys = list(dict.fromkeys((r["model"], r["recipe"]) for r in runs))
    for model, recipe in keys:
        rs = [r for r in runs if (r["model"], r["recipe"]) == (model, recipe)]
        accs = np.array([r["final_acc"] for r in rs], float) * 100
        rows.append({"model": model, "recipe": recipe, "seeds": [r["seed"] for r in rs],
                     "epochs": rs[0]["epochs"], "acc_mean": float(accs.mean()), "acc_std": float(accs.std()),
                     "wall_s_mean": float(np.mean([r["wall_s"] for r in rs])),
                     "wall_s_total": float(np.sum([r["wall_s"] for r in rs])),
                     "peak_rss_mib": float(max(r["peak_rss_mib"] for r in rs))})
    for row in rows:
        base = next((b for b in rows if b["model"] == row["model"] and b["recipe"] == "fp32"), None)
        row["gap_to_fp32"] = None if base is None else row["acc_mean"] - base["acc_mean"]
    return rows


def load_synth(path):
    """The synthesis report at ``path`` (``None`` if there is none); a malformed file is an error."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        {c["id"]: c for c in data["configs"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--synth: {str(path)!r} is not a lowbit synthesis report ({e})") from None
    return data


def frontier_points(rows, synth):
    """``(points, used, missing)``: one point per summary row whose recipe's ``synth_id`` has an
    area per MAC in ``synth``; ``used`` the synth rows used; ``missing`` recipe -> reason."""
    configs = {c["id"]: c for c in synth["configs"]}
    points, used, missing = [], {}, {}
    for row in rows:
        recipe = RECIPES[row["recipe"]]
        cfg = configs.get(recipe.synth_id)
        area = cfg.get("area_per_mac_um2") if cfg else None
        if area is None:
            missing[recipe.name] = (f"no row {recipe.synth_id!r} with an area per MAC in the synthesis report"
                                    if recipe.synth_id else "no synthesized unit")
            continue
        used[recipe.synth_id] = {"label": cfg.get("label"), "area_per_mac_um2": area, "recipe": recipe.name,
                                 "note": recipe.synth_note}
        points.append({**row, "synth_id": recipe.synth_id, "area_per_mac_um2": area})
        for sid in recipe.synth_also:
            also = configs.get(sid)
            if also and also.get("area_per_mac_um2") is not None:
                used[sid] = {"label": also.get("label"), "area_per_mac_um2": also["area_per_mac_um2"],
                             "recipe": recipe.name, "note": "listed only (not the plotted point)"}
    return points, used, missing


def _pct(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}"


def markdown(report):
    """The report text."""
    lines = ["# lowbit training report", "",
             f"Data: {report['data']} ({report['n_train']} training, {report['n_test']} test images). "
             f"Hyperparameters (the same for every recipe): {report['hyper']}.", "",
             "| model | recipe | epochs | seeds | test accuracy % (mean ± std) | gap to fp32 (points) "
             "| wall time per run s | peak memory MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in report["summary"]:
        gap = "" if r["gap_to_fp32"] is None or r["recipe"] == "fp32" else f"{r['gap_to_fp32']:+.2f}"
        lines.append(f"| {r['model']} | {r['recipe']} | {r['epochs']} | {len(r['seeds'])} | "
                     f"{r['acc_mean']:.2f} ± {r['acc_std']:.2f} | {gap} | {r['wall_s_mean']:.1f} | "
                     f"{r['peak_rss_mib']:.0f} |")
    lines += ["", "Accuracy is the test accuracy after the last epoch, with the recipe's own forward "
              "arithmetic; std is over seeds (0 with one seed). Wall time is per run (one process, "
              f"{report['jobs']} in parallel); peak memory is the process's peak resident set "
              "(getrusage).", ""]
    fr = report.get("frontier")
    lines += ["## Accuracy against area", ""]
    if fr is None:
        lines += [f"frontier.png not drawn: no synthesis report at `{report['synth_path']}` "
                  "(`make synth` writes one).", ""]
    else:
        lines += [f"frontier.png: final accuracy against the sky130 area per MAC of each recipe's unit, "
                  f"from `{report['synth_path']}`. Synthesis rows used:", ""]
        lines += [f"- `{sid}` ({u['label']}): {u['area_per_mac_um2']:,.1f} µm² per MAC for "
                  f"`{u['recipe']}` — {u['note']}" for sid, u in fr["used"].items()]
        lines += [f"- `{name}`: not drawn, {why}" for name, why in fr["missing"].items()]
        lines += [""]
        if fr.get("note"):
            lines += [fr["note"], ""]
    lines += ["## Runs", "", "| model | recipe | seed | final accuracy % | wall s | peak MiB | weights digest |",
              "|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        lines.append(f"| {r['model']} | {r['recipe']} | {r['seed']} | {100 * r['final_acc']:.2f} | "
                     f"{r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} | `{r['digest']}` |")
    return "\n".join(lines) + "\n"


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        return None


def _style(name):
    """A recipe's colour and line style in registry order: the ten dark tab20 hues, solid, then their
    light twins, dashed (up to twenty recipes stay distinct)."""
    import matplotlib
    recipes = list(RECIPES)
    k = (recipes.index(name) if name in recipes else len(recipes)) % 20
    return matplotlib.colormaps["tab20"](2 * k if k < 10 else 2 * (k - 10) + 1), ("-" if k < 10 else "--")


def plot_curves(report, path):
    """Test accuracy per epoch, one line per recipe (mean over seeds), one panel per model."""
    plt = _plt()
    if plt is None:
        return False
    models = list(dict.fromkeys(r["model"] for r in report["runs"]))
    fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models), 4.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        for name in dict.fromkeys(r["recipe"] for r in report["runs"] if r["model"] == model):
            rs = [r for r in report["runs"] if r["model"] == model and r["recipe"] == name]
            acc = np.mean([[h["test_acc"] * 100 for h in r["history"]] for r in rs], axis=0)
            epochs = [h["epoch"] for h in rs[0]["history"]]
            color, ls = _style(name)
            ax.plot(epochs, acc, marker=".", label=f"{name} ({len(rs)} seed{'s' if len(rs) > 1 else ''})",
                    color=color, ls=ls, lw=1.2, ms=4)
        ax.set_title(f"{model} on {report['data']}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right", ncol=2 if len(ax.get_lines()) > 6 else 1)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return True


def plot_frontier(report, path):
    """Final accuracy (mean over seeds, std as error bar) against area per MAC (log scale)."""
    plt = _plt()
    if plt is None:
        return False
    pts = report["frontier"]["points"]
    markers = {"mlp": "o", "cnn": "s"}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for p in pts:
        ax.errorbar(p["area_per_mac_um2"], p["acc_mean"], yerr=p["acc_std"], fmt=markers.get(p["model"], "^"),
                    color=_style(p["recipe"])[0], capsize=3, ms=7, alpha=0.85)
    # A legend, not labels at the points: recipes of similar area and accuracy would overlap.
    from matplotlib.lines import Line2D
    shown = list(dict.fromkeys(p["recipe"] for p in pts))
    handles = [Line2D([], [], color=_style(r)[0], marker="o", ls="", label=r) for r in shown]
    handles += [Line2D([], [], color="grey", marker=markers.get(m, "^"), ls="", label=m)
                for m in dict.fromkeys(p["model"] for p in pts)]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
    ax.xaxis.set_major_locator(FixedLocator([1000, 2000, 5000, 10000, 20000, 50000]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("sky130 area per MAC of the modelled unit (µm², log scale)")
    ax.set_ylabel("final test accuracy (%), mean ± std over seeds")
    ax.set_title(f"Accuracy against area ({report['data']})")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return True


def write_reports(report, out):
    """Write the files into ``out`` (created); returns the names written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if plot_curves(report, out / "curves.png"):
        written.append("curves.png")
    else:
        report["note_plots"] = "curves.png and frontier.png need matplotlib (pip install lowbit[plot])"
    if report.get("frontier") and report["frontier"]["points"] and plot_frontier(report, out / "frontier.png"):
        written.append("frontier.png")
    write_atomic(out / "report.json", json.dumps(report, sort_keys=True, indent=1) + "\n")
    write_atomic(out / "report.md", markdown(report))
    return ["report.json", "report.md", *written]
