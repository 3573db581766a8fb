"""The plain-text metrics table `python -m submission.evaluate` prints: one row per category, as
wide as a terminal, unlike the report's markdown tables (report.tables) with a column per model."""
from __future__ import annotations

import numpy as np

from common.categories import BY_ID


def format_table(summary: dict, category: np.ndarray, per: dict[str, np.ndarray]) -> str:
    """summary: `common.metrics.summarize` of `per` (per-playlist metrics) over `category`."""
    head = f"{'category':<26}{'playlists':>10}{'R-prec':>9}{'NDCG':>9}{'clicks':>9}"
    lines = [head, "-" * len(head)]
    for cid, row in summary["per_category"].items():
        lines.append(f"{cid:>2} {BY_ID[int(cid)].name:<23}{row['playlists']:>10}" + _cells(row))
    other = category == 0
    if other.any():
        lines.append(f"{'   (no category)':<26}{int(other.sum()):>10}" + _cells({m: v[other].mean() for m, v in per.items()}))
    lines.append("-" * len(head))
    lines.append(f"{'   all':<26}{len(category):>10}" + _cells(summary))
    return "\n".join(lines)


def _cells(row: dict) -> str:
    return f"{row['r_precision']:>9.4f}{row['ndcg']:>9.4f}{row['clicks']:>9.3f}"
