"""Stage two of the two-stage system: a LightGBM lambdarank model reorders each playlist's candidates.

It learns on the validation playlists (built like the challenge categories, with their withheld
tracks as labels), never on the challenge playlists, with early stopping on a held-out share of
them; the category is a feature, so one model serves all ten. The output keeps the challenge
rules: 500 tracks, no seed, the reranked candidates first, then popularity for short lists.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.io import atomic_path, read_json, write_json
from common.config import from_dict
from common.progress import progress as progress_of
from common.sparse import binary, popularity_order
from common.topk import fill_from_order
from ensemble.config import CANDIDATE_KEYS, RerankConfig
from ensemble.candidates import (Candidates, SourceList, as_source, candidate_recall, is_member,
                                 merge_candidates)
from ensemble.features import FeatureContext, build_features
from preprocess.artifacts import Artifacts, PlaylistSet

log = logging.getLogger("rerank")

N_RECS = 500
MODEL_FILE = "reranker.txt"
META_FILE = "reranker.json"
IMPORTANCE_FILE = "importance.json"


@dataclass
class Reranker:
    booster: lgb.Booster
    features: list[str]
    sources: list[str]
    cfg: RerankConfig


def lgb_params(cfg: RerankConfig) -> dict[str, Any]:
    """Fixed seeds, thread count and deterministic=True: the same inputs give the same model."""
    return {
        "objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [cfg.eval_at],
        "lambdarank_truncation_level": cfg.truncation_level, "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves, "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction, "lambda_l2": cfg.lambda_l2, "seed": cfg.seed,
        "deterministic": True, "force_row_wise": True, "num_threads": cfg.num_threads, "verbose": -1,
    }


def prepare(ctx: FeatureContext, ps: PlaylistSet, sources: dict[str, Any], cfg: RerankConfig,
            names: list[str] | None = None) -> tuple[list[SourceList], Candidates]:
    """Sources as ranked lists (in `names` order when given) and their merged candidates."""
    if names is not None and set(names) != set(sources):
        raise PipelineError(f"rerank: the model was trained with sources {sorted(names)}, got {sorted(sources)}")
    order = names if names is not None else list(sources)
    srcs = [as_source(n, sources[n], ps, cfg.list_depth) for n in order]
    cands = merge_candidates(srcs, ps, cfg.depth, cfg.candidates, cfg.cold_depth or None, cfg.default_depth)
    return srcs, cands


def train_reranker(art: Artifacts, sources_val: dict[str, Any], out_dir: str | Path, cfg: RerankConfig,
                   ctx: FeatureContext | None = None) -> dict:
    """Fit the ranker on art.playlists('val') with each source's lists for those playlists; writes
    the model, its metadata and gain importances into out_dir. Returns a JSON-able summary.

    sources_val: name -> (ids [P, K], scores [P, K]) or a scorer (.score(ps, rows)). `rerank` must
    later get the same names, with lists as deep as these,
    from models that never saw the validation playlists' withheld tracks."""
    start = time.perf_counter()
    val = art.playlists("val")
    ctx = ctx or FeatureContext.build(art.playlists("train"), art.vocab, cfg.cooc_max_playlists, cfg.seed)
    return fit(ctx, val, sources_val, out_dir, cfg) | {"seconds": time.perf_counter() - start}


def fit(ctx: FeatureContext, val: PlaylistSet, sources_val: dict[str, Any], out_dir: str | Path,
        cfg: RerankConfig) -> dict:
    """train_reranker on an explicit validation set (tests and experiments pass a subset).

    Features are built a chunk of playlists at a time and only the pairs the model learns from are
    kept (all of an early-stopping playlist's, the withheld plus `negatives` sampled ones of a
    training playlist), so memory follows the kept pairs, not playlists x candidates."""
    out_dir = Path(out_dir)
    srcs, cands = prepare(ctx, val, sources_val, cfg)
    recall = candidate_recall(cands.to_dense(cfg.candidates), val, ks=_recall_ks(cfg.candidates))
    label = is_member(cands.row, cands.track, val.holdout).astype(np.float32)
    is_valid = stratified_share(val.category, cfg.valid_fraction, cfg.seed)
    use_row = np.bincount(cands.row, weights=label, minlength=len(val)) > 0  # no withheld track: nothing to learn
    keep_train = use_row[cands.row] & ~is_valid[cands.row]
    if cfg.negatives > 0:
        keep_train &= _sample_negatives(cands.row, label, cfg.negatives, cfg.seed)
    keep_valid = use_row[cands.row] & is_valid[cands.row]
    if not keep_train.any() or not keep_valid.any():
        raise PipelineError("rerank: no validation playlist has a withheld track among its candidates "
                            "in the training or the early-stopping part; more validation playlists are needed")
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": []}
    names: list[str] = []
    for a, b, p0, p1, x, names in _chunk_features(ctx, val, srcs, cands, cfg, progress=True):
        parts["train"].append(x[keep_train[p0:p1]])
        parts["valid"].append(x[keep_valid[p0:p1]])
    dtrain = _dataset(np.concatenate(parts.pop("train")), label[keep_train], cands.row[keep_train], names)
    dvalid = _dataset(np.concatenate(parts.pop("valid")), label[keep_valid], cands.row[keep_valid], names,
                      reference=dtrain)
    curve: dict = {}
    booster = lgb.train(lgb_params(cfg), dtrain, num_boost_round=cfg.rounds, valid_sets=[dvalid],
                        valid_names=["valid"],
                        callbacks=[lgb.early_stopping(cfg.early_stopping, verbose=False),
                                   lgb.record_evaluation(curve), lgb.log_evaluation(50)])
    model = Reranker(booster, names, [s.name for s in srcs], cfg)
    save_reranker(model, out_dir)
    metric = f"ndcg@{cfg.eval_at}"
    best = float(booster.best_score["valid"][metric])
    summary = {
        "best_iteration": int(booster.best_iteration or cfg.rounds), f"valid_ndcg_at_{cfg.eval_at}": best,
        "train_playlists": int((use_row & ~is_valid).sum()), "valid_playlists": int((use_row & is_valid).sum()),
        "train_pairs": int(keep_train.sum()), "valid_pairs": int(keep_valid.sum()),
        "positives": int(label.sum()), "features": len(names), "candidate_recall": recall,
        "curve": curve["valid"][metric],
    }
    write_json(out_dir / "train_summary.json", summary)
    log.info("reranker: %d rounds (best %d), valid %s %.4f, %d training pairs", booster.current_iteration(),
             summary["best_iteration"], metric, best, summary["train_pairs"])
    return summary


def rerank(model: Reranker, art: Artifacts, ps: PlaylistSet, sources: dict[str, Any], cfg: RerankConfig | None = None,
           ctx: FeatureContext | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top 500 per playlist: candidates in the model's order, then popularity for short lists.
    Returns ids int32 [P, 500] (never a seed) and float32 scores, best first."""
    cfg = cfg or model.cfg
    ctx = ctx or FeatureContext.build(art.playlists("train"), art.vocab, cfg.cooc_max_playlists, cfg.seed)
    return rerank_with(model, ctx, ps, sources, cfg)


def rerank_with(model: Reranker, ctx: FeatureContext, ps: PlaylistSet, sources: dict[str, Any],
                cfg: RerankConfig) -> tuple[np.ndarray, np.ndarray]:
    start = time.perf_counter()
    changed = [k for k in CANDIDATE_KEYS if getattr(cfg, k) != getattr(model.cfg, k)]
    if changed:
        log.warning("rerank: candidate settings %s differ from training; rank features will shift", changed)
    srcs, cands = prepare(ctx, ps, sources, cfg, model.sources)
    pred = np.empty(len(cands.row), dtype=np.float64)
    for a, b, p0, p1, x, names in _chunk_features(ctx, ps, srcs, cands, cfg, progress=len(ps) > cfg.chunk):
        if names != model.features:
            raise PipelineError("rerank: feature set differs from the trained model's; retrain the reranker")
        pred[p0:p1] = model.booster.predict(x, num_threads=cfg.num_threads)
    ids, scores = order_candidates(cands, pred, N_RECS)
    ids, scores = fill_popular(ids, scores, ps, cands, ctx.pop)
    n_cold = 0
    if cfg.cold_source in sources:  # pipeline.config checks that a configured cold source is offered
        n_cold = serve_cold(ids, scores, ps, as_source(cfg.cold_source, sources[cfg.cold_source], ps, N_RECS), ctx.pop)
    log.info("reranked %d playlists x %.0f candidates in %.1f s (%d cold ones served by %s)", len(ps),
             len(cands.row) / max(len(ps), 1), time.perf_counter() - start, n_cold, cfg.cold_source or "-")
    return ids, scores


def serve_cold(ids: np.ndarray, scores: np.ndarray, ps: PlaylistSet, src: SourceList, pop: np.ndarray) -> int:
    """In place: playlists with a title and no seed in the catalogue take `src`'s list (popularity
    fills its empty slots); returns how many did."""
    cold = np.flatnonzero((np.diff(ps.tracks.indptr) == 0) & ps.has_title)
    if cold.size:
        sub_ids, sub_scores = src.ids[cold].copy(), src.scores[cold].copy()
        floor = float(sub_scores[np.isfinite(sub_scores)].min(initial=0.0)) - 1.0  # fills rank below the list
        fill_from_order(sub_ids, sub_scores, ps.tracks[cold], popularity_order(pop), floor)
        ids[cold], scores[cold] = sub_ids, sub_scores
    return int(cold.size)


def _chunk_features(ctx: FeatureContext, ps: PlaylistSet, srcs: list[SourceList], cands: Candidates,
                    cfg: RerankConfig, progress: bool = False):
    """(first row, end row, first pair, end pair, features, names) per chunk of cfg.chunk playlists."""
    starts = list(range(0, len(ps), cfg.chunk))
    for a in progress_of(starts, desc="features", unit="chunks", disable=not progress):
        b = min(a + cfg.chunk, len(ps))
        p0, p1 = int(cands.indptr[a]), int(cands.indptr[b])
        if p0 == p1:
            continue
        rows = np.arange(a, b)
        sub = [SourceList(s.name, s.ids[rows], s.scores[rows]) for s in srcs]
        x, names = build_features(ctx, ps.subset(rows), cands.rows_slice(a, b), sub, cfg.cooc_cells)
        yield a, b, p0, p1, x, names


def order_candidates(cands: Candidates, pred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's candidates by descending prediction (ties: merge order), the first k as dense
    [P, k] (-1 / -inf where a row has fewer)."""
    order = np.lexsort((cands.merge_rank, -pred, cands.row))
    row = cands.row[order]
    pos = np.arange(len(order)) - cands.indptr[row]
    keep = pos < k
    ids = np.full((cands.n_rows, k), -1, dtype=np.int32)
    scores = np.full((cands.n_rows, k), -np.inf, dtype=np.float32)
    ids[row[keep], pos[keep]] = cands.track[order[keep]]
    scores[row[keep], pos[keep]] = pred[order[keep]]
    return ids, scores


def fill_popular(ids: np.ndarray, scores: np.ndarray, ps: PlaylistSet, cands: Candidates,
                 pop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empty slots get the most popular tracks that are neither seeds nor candidates of the row,
    scored below every reranked candidate (and in popularity order among themselves)."""
    empty = ids < 0
    if not empty.any():
        return ids, scores
    ids, scores = ids.copy(), scores.copy()
    floor = np.where((~empty).any(axis=1), np.min(np.where(empty, np.inf, scores), axis=1), 0.0)
    cand_m = sp.csr_matrix((np.ones(len(cands.row), np.int8), (cands.row, cands.track)), shape=ps.tracks.shape)
    fill_from_order(ids, scores, (binary(ps.tracks) + cand_m).tocsr(), popularity_order(pop))
    filled = empty & (ids >= 0)
    scores[filled] = (floor[:, None] - 1.0 - (np.cumsum(empty, axis=1) - 1))[filled]
    return ids, scores


def save_reranker(model: Reranker, out_dir: str | Path) -> None:
    """Model text and metadata written atomically; gain importances as JSON for the report's plot."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / MODEL_FILE) as tmp:
        model.booster.save_model(str(tmp), num_iteration=model.booster.best_iteration or None)
    gain = model.booster.feature_importance(importance_type="gain", iteration=model.booster.best_iteration or None)
    write_json(out_dir / IMPORTANCE_FILE, {"importance_type": "gain",
                                           "gain": dict(zip(model.features, (float(g) for g in gain)))})
    write_json(out_dir / META_FILE, {"features": model.features, "sources": model.sources, "config": asdict(model.cfg)})


def load_reranker(out_dir: str | Path) -> Reranker:
    out_dir = Path(out_dir)
    path = out_dir / MODEL_FILE
    if not path.exists():
        raise PipelineError(f"{path}: missing; train the reranker first")
    meta = read_json(out_dir / META_FILE)
    try:
        booster = lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as exc:
        raise PipelineError(f"{path}: unreadable LightGBM model ({exc})") from None
    try:
        cfg = from_dict(RerankConfig, meta["config"], f"{out_dir / META_FILE} config")
        features, sources = list(meta["features"]), list(meta["sources"])
    except (KeyError, TypeError):
        raise PipelineError(f"{out_dir / META_FILE}: expected features, sources and config") from None
    if booster.feature_name() != features:
        raise PipelineError(f"{path}: feature names differ from {out_dir / META_FILE}; retrain the reranker")
    return Reranker(booster, features, sources, cfg)


def _dataset(x: np.ndarray, label: np.ndarray, row: np.ndarray, names: list[str],
             reference: lgb.Dataset | None = None) -> lgb.Dataset:
    """One query per playlist; row must be sorted so each query's pairs are contiguous."""
    group = np.bincount(row)
    return lgb.Dataset(x, label=label, group=group[group > 0], feature_name=names,
                       reference=reference, free_raw_data=True, params={"verbose": -1})


def stratified_share(category: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded share of each category for early stopping."""
    rng = np.random.default_rng(seed)
    key = rng.random(len(category))
    order = np.lexsort((key, category))
    cat_sorted = category[order]
    starts = np.searchsorted(cat_sorted, cat_sorted, side="left")
    sizes = np.searchsorted(cat_sorted, cat_sorted, side="right") - starts
    within = np.arange(len(order)) - starts
    out = np.zeros(len(category), dtype=bool)
    out[order] = within < np.round(sizes * fraction)
    return out


def _sample_negatives(row: np.ndarray, label: np.ndarray, n: int, seed: int) -> np.ndarray:
    """All positives plus n random negatives per row."""
    key = np.random.default_rng(seed).random(len(row))
    neg = label == 0
    order = np.lexsort((key, neg, row))
    starts = np.searchsorted(row[order], row[order], side="left")
    n_pos = np.bincount(row, weights=label, minlength=int(row.max(initial=-1)) + 1).astype(np.int64)
    rank = np.arange(len(order)) - starts - n_pos[row[order]]
    keep = np.zeros(len(row), dtype=bool)
    keep[order] = (~neg[order]) | (rank < n)
    return keep


def _recall_ks(total: int) -> tuple[int, ...]:
    return tuple(k for k in (100, 250, 500, 1000, 2000, 5000) if k < total) + (total,)
