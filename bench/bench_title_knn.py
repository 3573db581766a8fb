"""Title kNN against exact-title popularity on the playlists that carry a title, the way the pipeline
fits them: chosen on the validation playlists, refit on every playlist, scored on the local challenge
set with its truth (title-only playlists, and those with a title and 1 or 5 seeds).

    python -m bench.bench_title_knn --artifacts RUN/artifacts --truth DATA/local/truth.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common.metrics import list_metrics
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts
from report.evaluation import attach_truth
from sources import REGISTRY
from sources.base import FitContext

NAMES = ("title_popularity", "title_knn")
GROUPS = {"title only": [1], "title + 1 or 5 seeds": [2, 3]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifacts", required=True, type=Path)
    ap.add_argument("--truth", required=True, type=Path, help="the local challenge set's truth.json")
    ap.add_argument("--config", help="pipeline TOML (defaults without it)")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    art = load_artifacts(args.artifacts)
    train, val, every = art.playlists("train"), art.playlists("val"), art.playlists("all")
    test = attach_truth(art.playlists("challenge"), args.truth, art.vocab)
    masks = {g: np.isin(test.category, c) & test.has_title for g, c in GROUPS.items()}
    masks["title only, title unseen in training"] = (test.category == 1) & ~np.isin(test.title, every.title)  # where exact titles fail
    out = {}
    for name in NAMES:
        source = REGISTRY[name]
        settings = cfg.settings(source.section)
        start = time.perf_counter()
        chosen = source.fit(train, settings, FitContext(art.vocab.track_artist, val=val))
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        refit = source.fit(every, settings, FitContext(art.vocab.track_artist, selected=chosen.selected))
        ids = refit.top(test, 500)[0]
        list_s = time.perf_counter() - start
        m = list_metrics(ids, test, art.vocab.track_artist)
        row = {"select_s": round(fit_s, 2), "refit_and_list_s": round(list_s, 2), "selected": chosen.selected}
        for group, mask in masks.items():
            row[group] = {k: round(float(np.nanmean(m[k][mask])), 4) for k in ("r_precision", "ndcg")} | {
                "playlists": int(mask.sum())}
        out[name] = row
    base = out[NAMES[0]]["title only"]["r_precision"]
    out["ratio_title_only_r_precision"] = round(out[NAMES[1]]["title only"]["r_precision"] / base, 3) if base else None
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
