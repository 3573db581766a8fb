"""Per-category metric tables as markdown (printed by run.py and written into report.md)."""
from __future__ import annotations

from common.categories import BY_ID

SHORT = {"r_precision": "R-prec", "ndcg": "NDCG", "clicks": "clicks"}


def metrics_table(table: dict[str, dict]) -> str:
    """table: model -> common.metrics.summarize() output. One block per metric; rows are the
    categories and the overall mean, columns the models."""
    models = list(table)
    cats = sorted({c for m in models for c in table[m]["per_category"]}, key=int)
    blocks = []
    for key, label in SHORT.items():
        lines = ["| " + " | ".join([f"{label}: category", *models]) + " |", "|" + "---|" * (len(models) + 1)]
        for c in cats:
            cells = [_fmt(table[m]["per_category"].get(c, {}).get(key), key) for m in models]
            lines.append("| " + " | ".join([f"{c} {BY_ID[int(c)].name}", *cells]) + " |")
        lines.append("| " + " | ".join(["**all**", *(f"**{_fmt(table[m][key], key)}**" for m in models)]) + " |")
        if _unbalanced(table[models[0]]):
            lines.append("| " + " | ".join(["**all, categories equal**",
                                             *(f"**{_fmt(table[m]['category_mean'][key], key)}**" for m in models)]) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _unbalanced(summary: dict) -> bool:
    """Categories hold different numbers of playlists (then the two overall means differ)."""
    return len({row["playlists"] for row in summary["per_category"].values()}) > 1 and "category_mean" in summary


def simple_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v, key: str) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:.3f}" if key == "clicks" else f"{v:.4f}"
