"""Matplotlib figures for the report; Agg backend so runs need no display."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common.io import atomic_path  # noqa: E402

METRIC_LABELS = {"r_precision": "R-precision", "ndcg": "NDCG", "clicks": "clicks (lower is better)"}


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def per_category_bars(table: dict[str, dict], title: str, path: Path) -> Path:
    """table: model -> summarize() output. One panel per metric, a group of bars per category."""
    models = list(table)
    cats = sorted({c for m in models for c in table[m]["per_category"]}, key=int)
    labels = [*cats, "all"]
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 1.1 * len(labels) * max(1, len(models)) / 2.5), 10))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(labels))
    for ax, metric in zip(axes, METRIC_LABELS):
        for j, m in enumerate(models):
            vals = [table[m]["per_category"].get(c, {}).get(metric, np.nan) for c in cats] + [table[m][metric]]
            ax.bar(x + (j - (len(models) - 1) / 2) * width, vals, width, label=m)
        ax.set_xticks(x, labels)
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("challenge category (see report.md for names)")
    axes[0].legend(fontsize=8, ncol=min(len(models), 4), loc="upper left")
    return _save(fig, path)


def training_curves(histories: dict[str, list[dict]], path: Path) -> Path:
    """histories: curve name -> [{"step", "loss", "val_r_precision"}...] (step = Adam updates so far);
    training loss and the validation metric that selects the weights, side by side."""
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, hist in histories.items():
        ep = [h["step"] for h in hist]
        ax_loss.plot(ep, [h["loss"] for h in hist], marker=".", label=name)
        ax_val.plot(ep, [h["val_r_precision"] for h in hist], marker=".", label=name)
    ax_loss.set(xlabel="Adam updates", ylabel="training loss (per playlist)", title="training loss")
    ax_val.set(xlabel="Adam updates", ylabel="validation R-precision", title="model selection metric")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def horizontal_bars(values: dict[str, float], title: str, xlabel: str, path: Path) -> Path:
    """Stage timings, feature importances: one bar per name, largest on top."""
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(items) + 1.5))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)
