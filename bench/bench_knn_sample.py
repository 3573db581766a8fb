"""Item kNN with every playlist of a seed against a sample of at most N of them
(`BaselineConfig.knn_max_playlists`): time and validation metrics on the same playlists.

    .venv/bin/python bench/bench_knn_sample.py --artifacts RUN/artifacts --playlists 400 --caps 0 1000

Cap 0 reads every playlist (the exact model). Prints one markdown row per cap.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.models import BaselineConfig, ItemKNN, Popularity, recommend  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from report.evaluation import evaluate_ids  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, required=True)
    ap.add_argument("--playlists", type=int, default=400, help="validation playlists, evenly spaced")
    ap.add_argument("--caps", type=int, nargs="+", default=[0, 1000])
    args = ap.parse_args()
    art = load_artifacts(args.artifacts)
    train, val = art.playlists("train"), art.playlists("val")
    ps = val.subset(np.arange(0, len(val), max(1, len(val) // args.playlists))[:args.playlists])
    pop = Popularity(train)
    print(f"{len(train)} training playlists, {train.tracks.shape[1]} tracks; {len(ps)} validation playlists\n")
    print("| cap | build s | score s | R-prec | NDCG | clicks |\n|---|---|---|---|---|---|")
    for cap in args.caps:
        start = time.perf_counter()
        knn = ItemKNN(train, pop, BaselineConfig(knn_max_playlists=cap))
        built = time.perf_counter() - start
        start = time.perf_counter()
        ids, _ = recommend(knn, ps, 500)
        scored = time.perf_counter() - start
        m = evaluate_ids(ids, ps, art.vocab)
        print(f"| {cap or 'all'} | {built:.1f} | {scored:.1f} | {m['r_precision']:.4f} | {m['ndcg']:.4f} | "
              f"{m['clicks']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
