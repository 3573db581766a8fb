"""How far the reranker can go on what it is given: three offline measurements over a finished run
folder (the default's, with data/local/truth.json), each scored on the run's local challenge set.

  queries   the ranker refit on stratified shares of the validation playlists (--shares 0.25:0 0.5:0
            1:0, share:draw): its learning curve in the number of queries, i.e. what cross-fitting
            (more queries from folds of the training playlists) could buy at most
  settings  the ranker refit on every validation playlist with [rerank] overrides
            (--overrides "" negatives=0 "num_leaves=63,min_data_in_leaf=50"; values are JSON)
  cold      a ranker for title-only playlists that learns from --queries title-only queries cut
            from --folds folds of the training playlists (title sources and popularity refit on the
            other folds; training playlists of the category's lengths, 10 to 50 tracks), against
            title kNN's own list on the title-only test playlists: does the ranker lose to title kNN
            there for lack of queries?

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
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.categories import CATEGORIES  # noqa: E402
from common.cli import run_cli  # noqa: E402
from common.errors import PipelineError  # noqa: E402
from common.io import read_json  # noqa: E402
from common.metrics import list_metrics, summarize  # noqa: E402
from common.sparse import binary  # noqa: E402
from ensemble.candidates import is_member  # noqa: E402
from ensemble.config import RerankConfig  # noqa: E402
from ensemble.features import FeatureContext  # noqa: E402
from ensemble.ranker import (Reranker, _chunk_features, _dataset, _sample_negatives, fit, lgb_params,  # noqa: E402
                             load_reranker, prepare, rerank_with, stratified_share)
from pipeline.config import load_pipeline_config  # noqa: E402
from pipeline.stages import dense_tracks, fit_sets, list_files, load_lists  # noqa: E402
from preprocess.artifacts import PlaylistSet, load_artifacts  # noqa: E402
from report.evaluation import attach_truth  # noqa: E402
from sources.base import FitContext  # noqa: E402
from sources.baselines import PopularitySource, TitlePopularitySource  # noqa: E402
from sources.title_knn import TitleKNNSource  # noqa: E402

COLD_SOURCES = ["popularity", "title_popularity", "title_knn"]


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


def title_only(ps: PlaylistSet) -> PlaylistSet:
    """Whole playlists as title-only challenge entries: no seed, every track withheld."""
    n, t, a = len(ps), ps.tracks.shape[1], ps.artists.shape[1]
    return dataclasses.replace(
        ps, tracks=sp.csr_matrix((n, t), dtype=np.int32), artists=sp.csr_matrix((n, a), dtype=np.int32),
        n_seeds=np.zeros(n, np.int32), n_unknown=np.zeros(n, np.int32), category=np.ones(n, np.int8),
        n_holdouts=ps.num_tracks.astype(np.int32), holdout=binary(ps.tracks).astype(np.int8),
        holdout_artists=binary(ps.artists).astype(np.int8))


def fold_features(s: Setting, train: PlaylistSet, fold: np.ndarray, f: int, n: int, rc: RerankConfig,
                  rng: np.random.Generator) -> tuple:
    """Features, labels, query rows, early-stopping flags and the number of fold f's title-only
    queries, every source refit on the other folds; pairs kept as `ensemble.ranker.fit` keeps them
    (all of an early-stopping query's, the withheld plus sampled negatives of a training one)."""
    rows = np.sort(rng.choice(np.flatnonzero(fold == f), min(int((fold == f).sum()), n), replace=False))
    other, qs = train.subset(np.flatnonzero(fold != f)), title_only(train.subset(rows))
    ctx = FitContext(track_artist=s.artist, selected=read_json(s.run / "baselines" / "title_knn.done.json")["selected"])
    lists = {S.name: S.fit(other, s.cfg.baselines, ctx).top(qs, rc.list_depth)
             for S in (PopularitySource, TitlePopularitySource)}
    lists["title_knn"] = TitleKNNSource.fit(other, s.cfg.settings("title_knn"), ctx).top(qs, rc.list_depth)
    fctx = FeatureContext.build(other, s.art.vocab, rc.cooc_max_playlists, rc.seed)
    srcs, cands = prepare(fctx, qs, lists, rc, COLD_SOURCES)
    label = is_member(cands.row, cands.track, qs.holdout).astype(np.float32)
    is_valid = (rng.random(len(qs)) < rc.valid_fraction)[cands.row]
    train_pair = _sample_negatives(cands.row, label, rc.negatives, rc.seed + f) if rc.negatives > 0 else True
    keep = (np.bincount(cands.row, weights=label, minlength=len(qs)) > 0)[cands.row] & (is_valid | train_pair)
    x, names = [], []
    for _, _, p0, p1, chunk, names in _chunk_features(fctx, qs, srcs, cands, rc):
        x.append(chunk[keep[p0:p1]])
    return np.concatenate(x), label[keep], cands.row[keep], is_valid[keep], names, len(qs)


def cold(s: Setting, folds: int, n_queries: int) -> None:
    """Train a title-only ranker on cross-fitted title-only queries and print it, title kNN and
    title popularity on the test's title-only playlists."""
    import lightgbm as lgb

    rc = dataclasses.replace(s.cfg.rerank, cold_source="")
    train, rng = s.art.playlists("train"), np.random.default_rng(0)
    category = CATEGORIES[0]  # title only
    fold = np.full(len(train), -1)
    like = np.flatnonzero(train.has_title & (train.num_tracks >= category.min_len)
                          & (train.num_tracks <= category.max_len))  # the lengths the category holds
    fold[like] = rng.integers(0, folds, len(like))
    parts, names, offset = [], [], 0
    t = time.perf_counter()
    for f in range(folds):
        x, y, r, v, names, n = fold_features(s, train, fold, f, n_queries // folds, rc, rng)
        parts.append((x, y, r + offset, v))
        offset += n
    x, y, r, valid = (np.concatenate(p) for p in zip(*parts))
    dtrain = _dataset(x[~valid], y[~valid], r[~valid], names)
    booster = lgb.train(lgb_params(rc), dtrain, num_boost_round=rc.rounds,
                        valid_sets=[_dataset(x[valid], y[valid], r[valid], names, reference=dtrain)],
                        callbacks=[lgb.early_stopping(rc.early_stopping, verbose=False)])
    rows = np.flatnonzero(s.test.category == 1)
    test = s.test.subset(rows)
    lists = {n: (i[rows], v[rows]) for n, (i, v) in s.lists("challenge", COLD_SOURCES).items()}
    ids, _ = rerank_with(Reranker(booster, names, COLD_SOURCES, rc), s.ctx["challenge"], test, lists, rc)
    print(s.line(f"cold ranker, {offset} fold queries", ids, test,
                 f"best {booster.best_iteration:4d} {time.perf_counter() - t:4.0f}s"))
    for n in ("title_knn", "title_popularity"):
        print(s.line(n, lists[n][0][:, :500], test))


def main(argv: list[str] | None = None) -> int:
    """The CLI: one measurement per call, over one finished run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("queries", "settings", "cold"))
    ap.add_argument("--run", required=True, type=Path, help="a finished run folder with data/local/truth.json")
    ap.add_argument("--config", help="the run's pipeline TOML (default: the default config)")
    ap.add_argument("--shares", nargs="*", default=["0.25:0", "0.5:0", "1:0"])
    ap.add_argument("--overrides", nargs="*", default=[""])
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--queries", type=int, default=8000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rerank_limits"))
    args = ap.parse_args(argv)
    s = Setting(args.run, args.config)
    if args.what == "queries":
        queries(s, args.shares, args.work)
    elif args.what == "settings":
        settings(s, args.overrides, args.work)
    else:
        cold(s, args.folds, args.queries)
    return 0


if __name__ == "__main__":
    run_cli(main)
