"""Per-category comparison of systems from finished runs, with ratios against a baseline from one of them.

    python bench/compare_runs.py --system default=/tmp/run_a:rerank --system ALS=/tmp/run_a:als \
        --system "+ sequence=/tmp/run_b:rerank" --baseline ALS [--out table.md]

A system is LABEL=RUN_FOLDER:MODEL, MODEL a key of the run's metrics.json "test" section (als, rerank,
mmcf, dae, item_knn, sequence, ...). The baseline should come from the same run as the systems it
judges (the same data and local challenge set); the ratio block says each system's R-precision, NDCG
and clicks as a multiple of the baseline's, per category and for the categories weighted equally.

    python bench/compare_runs.py --paired "+ MMCF=/tmp/run_b:rerank" default=/tmp/run_a:rerank

--paired A B: A's mean minus B's over the same challenge playlists (the runs' local challenge sets must
be the same playlists), each playlist scored against its run's truth.json, categories weighted
equally as in the tables, with the standard error of the paired differences: the figure a change's
gain is judged by.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.categories import BY_ID  # noqa: E402
from common.metrics import METRICS  # noqa: E402
from report.tables import metrics_table  # noqa: E402


def load(spec: str) -> tuple[str, dict]:
    label, _, where = spec.partition("=")
    folder, _, model = where.rpartition(":")
    test = json.loads((Path(folder) / "metrics.json").read_text())["test"]
    if model not in test:
        sys.exit(f"{folder}/metrics.json: no model {model!r} (has {', '.join(test)})")
    return label, test[model]


def paired(a: str, b: str) -> str:
    """A - B per metric over the same challenge playlists: mean +- standard error of the differences."""
    from common.metrics import list_metrics
    from pipeline.recommend import run_config
    from pipeline.stages import list_files, load_lists
    from preprocess.artifacts import load_artifacts
    from report.evaluation import attach_truth

    per = {}
    for spec in (a, b):
        label, _, where = spec.partition("=")
        folder, _, model = where.rpartition(":")
        run = Path(folder)
        art = load_artifacts(run / "artifacts")
        ps = attach_truth(art.playlists("challenge"), run / "data" / "local" / "truth.json", art.vocab)
        files = list_files(run, run_config(run))
        if model not in files:
            sys.exit(f"{run}: no lists of model {model!r} (has {', '.join(files)})")
        ids = load_lists(files[model], "challenge")[0]
        order = np.argsort(ps.pid)
        m = list_metrics(ids, ps, art.vocab.track_artist)
        per[label] = (ps.pid[order], ps.category[order], {k: v[order] for k, v in m.items()})
    (la, (pa, cat, ma)), (lb, (pb, _, mb)) = per.items()
    if not np.array_equal(pa, pb):
        sys.exit(f"--paired: {la} and {lb} were scored on different challenge playlists")
    cats = np.unique(cat)
    lines = [f"| {la} - {lb} ({len(pa)} challenge playlists, categories equal) | {lb} | difference +- SE |",
             "|---|---|---|"]
    for k in METRICS:
        means, variances, base = [], [], []
        for c in cats:
            d = (ma[k] - mb[k])[cat == c]
            d = d[np.isfinite(d)]
            means.append(d.mean())
            variances.append(d.var(ddof=1) / len(d))
            base.append(np.nanmean(mb[k][cat == c]))
        se = np.sqrt(np.sum(variances)) / len(cats)
        lines.append(f"| {k} | {np.mean(base):.4f} | {np.mean(means):+.4f} +- {se:.4f} |")
    return "\n".join(lines)


def ratio_table(table: dict[str, dict], baseline: str) -> str:
    """R-precision / NDCG / clicks of each system over the baseline's, per category."""
    base = table[baseline]
    others = [m for m in table if m != baseline]
    cats = sorted(base["per_category"], key=int)

    def cell(row: dict, ref: dict) -> str:
        return " / ".join(f"{row[k] / ref[k]:.3f}" if ref.get(k) else "-" for k in METRICS)

    lines = ["| " + " | ".join([f"x {baseline} (R / NDCG / clicks)", *others]) + " |", "|" + "---|" * (len(others) + 1)]
    for c in cats:
        cells = [cell(table[m]["per_category"][c], base["per_category"][c]) for m in others]
        lines.append("| " + " | ".join([f"{c} {BY_ID[int(c)].name}", *cells]) + " |")
    lines.append("| " + " | ".join(["**all, categories equal**",
                                     *(f"**{cell(table[m]['category_mean'], base['category_mean'])}**"
                                       for m in others)]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--system", action="append", help="LABEL=RUN_FOLDER:MODEL (repeat)")
    ap.add_argument("--baseline", help="the LABEL the ratios are taken against")
    ap.add_argument("--paired", nargs=2, metavar=("A", "B"), help="LABEL=RUN_FOLDER:MODEL twice: A - B, paired")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.paired:
        text = paired(*args.paired) + "\n"
        print(text)
        if args.out:
            args.out.write_text(text)
        return
    if not args.system or not args.baseline:
        sys.exit("give --system (repeated) and --baseline, or --paired A B")
    table = dict(load(s) for s in args.system)
    if args.baseline not in table:
        sys.exit(f"--baseline {args.baseline!r} is not one of the systems ({', '.join(table)})")
    text = metrics_table(table) + "\n\n" + ratio_table(table, args.baseline) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
