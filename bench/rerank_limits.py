"""How far the reranker can go on what it is given: two offline measurements over a finished run
folder (the default's, with data/local/truth.json), each scored on the run's local challenge set.

  queries   the ranker refit on stratified shares of the validation playlists (--shares 0.25:0 0.5:0
            1:0, share:draw): its learning curve in the number of queries, i.e. what cross-fitting
            (more queries from folds of the training playlists) could buy at most
  settings  the ranker refit on every validation playlist with [rerank] overrides
            (--overrides "" negatives=0 "num_leaves=63,min_data_in_leaf=50"; values are JSON)

    .venv/bin/python bench/rerank_limits.py queries --run runs/default [--config C] --shares 0.25:0 0.5:0 1:0

Prints one line per measurement (categories equal, and per category R-precision).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import run_cli  # noqa: E402
from common.errors import PipelineError  # noqa: E402
from common.metrics import list_metrics, summarize  # noqa: E402
from ensemble.config import RerankConfig  # noqa: E402
from ensemble.features import FeatureContext  # noqa: E402
from ensemble.ranker import fit, load_reranker, rerank_with, stratified_share  # noqa: E402
from pipeline.config import load_pipeline_config  # noqa: E402
from pipeline.stages import dense_tracks, fit_sets, list_files, load_lists  # noqa: E402
from preprocess.artifacts import PlaylistSet, load_artifacts  # noqa: E402
from report.evaluation import attach_truth  # noqa: E402


class Setting:
    """The run's artifacts, lists and feature contexts, loaded once for every measurement."""

    def __init__(self, run: Path, config: str | None):
        self.run, self.cfg = run, load_pipeline_config(config)
        self.art = load_artifacts(run / "artifacts")
        self.sets = fit_sets(self.art, self.cfg.run.refit)
        self.files = list_files(run, self.cfg)
        self.val = self.art.playlists("val")
        self.test = attach_truth(self.art.playlists("challenge"), run / "data" / "local" / "truth.json", self.art.vocab)
        self.artist = self.art.vocab.track_artist
        rc = self.cfg.rerank
        self.ctx = {s: FeatureContext.build(self.sets[s], self.art.vocab, rc.cooc_max_playlists, rc.seed,
                                            dense_tracks=dense_tracks(run / "mmcf", s, self.cfg))
                    for s in ("val", "challenge")}

    def lists(self, split: str, names: list[str] | None = None) -> dict:
        """The run's saved lists of `split` per source (every reranker source by default)."""
        return {n: load_lists(self.files[n], split) for n in names or self.cfg.rerank_sources()}

    def line(self, label: str, ids: np.ndarray, ps: PlaylistSet, extra: str = "") -> str:
        """Categories-equal R-precision, NDCG and clicks of `ids`, then R-precision per category."""
        m = summarize(list_metrics(ids, ps, self.artist), ps.category)
        cats = " ".join(f"{c}:{v['r_precision']:.4f}" for c, v in m["per_category"].items())
        cm = m["category_mean"]
        return (f"{label:36s} {extra} R {cm['r_precision']:.4f} NDCG {cm['ndcg']:.4f} clicks {cm['clicks']:.3f} | "
                f"{cats}")


def refit_and_score(s: Setting, val: PlaylistSet, lists_val: dict, rc: RerankConfig,
                    work: Path) -> tuple[np.ndarray, dict]:
    """The ranker fit on `val` as the ensemble stage fits it, then its lists for the test playlists."""
    summary = fit(s.ctx["val"], val, lists_val, work, rc)
    ids, _ = rerank_with(load_reranker(work), s.ctx["challenge"], s.test, s.lists("challenge"), rc)
    return ids, summary


def queries(s: Setting, shares: list[str], work: Path) -> None:
    """One line per share:draw of the validation playlists the ranker learns from."""
    lists_val = s.lists("val")
    for spec in shares:
        share, draw = float(spec.split(":")[0]), int(spec.split(":")[1])
        rows = np.arange(len(s.val)) if share >= 1 else \
            np.flatnonzero(stratified_share(s.val.category, share, 100 + draw))
        t = time.perf_counter()
        ids, sm = refit_and_score(s, s.val.subset(rows), {n: (i[rows], v[rows]) for n, (i, v) in lists_val.items()},
                                  s.cfg.rerank, work)
        print(s.line(f"{len(rows)} queries (share {share:g}, draw {draw})", ids, s.test,
                     f"best {sm['best_iteration']:4d} {time.perf_counter() - t:4.0f}s"), flush=True)


def settings(s: Setting, overrides: list[str], work: Path) -> None:
    """One line per set of [rerank] overrides. The feature contexts are built once, with the run's
    own co-occurrence sample, so overrides of what builds them are refused."""
    lists_val = s.lists("val")
    for spec in overrides:
        over = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in spec.split(",") if kv)}
        if {"cooc_max_playlists", "seed"} & set(over):
            raise PipelineError(f"--overrides {spec!r}: cooc_max_playlists and seed build the features, "
                                "which are built once from the run's config")
        t = time.perf_counter()
        ids, sm = refit_and_score(s, s.val, lists_val, dataclasses.replace(s.cfg.rerank, **over), work)
        took = f"best {sm['best_iteration']:4d} {time.perf_counter() - t:4.0f}s"
        print(s.line(spec or "as configured", ids, s.test, took), flush=True)


def main(argv: list[str] | None = None) -> int:
    """The CLI: one measurement per call, over one finished run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("queries", "settings"))
    ap.add_argument("--run", required=True, type=Path, help="a finished run folder with data/local/truth.json")
    ap.add_argument("--config", help="the run's pipeline TOML (default: the default config)")
    ap.add_argument("--shares", nargs="*", default=["0.25:0", "0.5:0", "1:0"])
    ap.add_argument("--overrides", nargs="*", default=[""])
    ap.add_argument("--work", type=Path, default=Path("/tmp/rerank_limits"))
    args = ap.parse_args(argv)
    s = Setting(args.run, args.config)
    if args.what == "queries":
        queries(s, args.shares, args.work)
    else:
        settings(s, args.overrides, args.work)
    return 0


if __name__ == "__main__":
    run_cli(main)
