"""Per-category metric tables as markdown (printed by run.py and written into report.md)."""
from __future__ import annotations

from preprocess.categories import BY_ID

SHORT = {"r_precision": "R-prec", "ndcg": "NDCG", "clicks": "clicks"}


def metrics_table(table: dict[str, dict]) -> str:
    """table: model -> common.metrics.summarize() output. One row per category and overall,
    one column group (R-prec / NDCG / clicks) per model."""
    models = list(table)
    cats = sorted({c for m in models for c in table[m]["per_category"]}, key=int)
    head = ["category"] + [f"{m} {SHORT[k]}" for m in models for k in SHORT]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cats:
        cells = [f"{c} {BY_ID[int(c)].name}"]
        for m in models:
            row = table[m]["per_category"].get(c)
            cells += [_fmt(row.get(k) if row else None, k) for k in SHORT]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all**"] + [f"**{_fmt(table[m][k], k)}**" for m in models for k in SHORT]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def simple_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(v, key: str) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:.3f}" if key == "clicks" else f"{v:.4f}"
