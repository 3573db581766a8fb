"""Recommend one playlist from a finished run: load once, then answer in well under a second.

The playlist (a title and/or seed track uris) is mapped into the run's vocabulary and scored by
every model the run trained; the final model's list is printed with each model's score.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from preprocess.artifacts import Artifacts, PlaylistSet, load_artifacts
from preprocess.categories import infer_categories
from preprocess.titles import normalize_title, title_chars


def playlist_set(title: str | None, seeds: list[str], art: Artifacts) -> tuple[PlaylistSet, list[str]]:
    """One playlist in vocabulary space (seeds taken as the first n, in order); unknown uris are returned."""
    vocab = art.vocab
    order = np.argsort(vocab.track_uri)
    uris = np.asarray(seeds, dtype=vocab.track_uri.dtype) if seeds else np.zeros(0, dtype=vocab.track_uri.dtype)
    at = np.minimum(np.searchsorted(vocab.track_uri[order], uris), len(order) - 1)
    known = vocab.track_uri[order][at] == uris
    ids = order[at][known]
    _, first = np.unique(ids, return_index=True)
    ids = ids[np.sort(first)]
    pos = np.arange(1, len(ids) + 1, dtype=np.int32)
    tracks = sp.csr_matrix((pos, (np.zeros(len(ids), int), ids)), shape=(1, vocab.n_tracks))
    art_ids = vocab.track_artist[ids]
    art_ids, a_first = np.unique(art_ids[art_ids >= 0], return_index=True)
    artists = sp.csr_matrix((pos[a_first], (np.zeros(len(art_ids), int), art_ids)), shape=(1, vocab.n_artists))
    has_title = bool(title)
    category = infer_categories(np.array([len(seeds)]), np.array([has_title]), np.array([True]))
    if category[0] == 0:  # seed counts outside the 10 categories: the nearest in-order category
        category = np.array([_nearest_category(len(seeds), has_title)], dtype=np.int8)
    empty = sp.csr_matrix((1, vocab.n_tracks), dtype=np.int8)
    ps = PlaylistSet(
        pid=np.array([0]), title=np.array([normalize_title(title or "")]), has_title=np.array([has_title]),
        title_chars=title_chars([title or ""]), num_tracks=np.array([len(seeds)], dtype=np.int32),
        category=category.astype(np.int8), n_seeds=np.array([len(seeds)], dtype=np.int32),
        n_unknown=np.array([int((~known).sum())], dtype=np.int32), tracks=tracks, artists=artists,
        n_holdouts=np.zeros(1, dtype=np.int32), holdout=empty,
        holdout_artists=sp.csr_matrix((1, vocab.n_artists), dtype=np.int8),
    )
    return ps, [u for u, k in zip(seeds, known) if not k]


def _nearest_category(n_seeds: int, has_title: bool) -> int:
    if n_seeds == 0:
        return 1
    if n_seeds < 5:
        return 2 if has_title else 4
    if n_seeds < 10:
        return 3 if has_title else 4
    if n_seeds < 25:
        return 5 if has_title else 6
    return 7 if n_seeds < 100 else 9


@dataclass
class Recommender:
    """Everything a run trained, loaded once."""

    art: Artifacts
    scorers: dict  # model name -> callable(ps) -> dense float32 [T] scores
    final: str

    @classmethod
    def load(cls, run: Path, device: str = "cpu") -> "Recommender":
        from baselines.als import ALS, ALSConfig
        from baselines.models import BaselineConfig, ItemKNN, Popularity, TitlePopularity

        run = Path(run)
        if not (run / "artifacts" / "manifest.json").exists():
            raise PipelineError(f"{run}: not a finished run folder (no artifacts/manifest.json)")
        art = load_artifacts(run / "artifacts")
        record = _baselines_record(run)
        train = art.playlists("all" if record.get("refit", False) else "train")  # what served the challenge
        pop = Popularity(train)
        cfg = BaselineConfig(**record["config"]) if record.get("config") else BaselineConfig()
        baselines = {"popularity": pop, "title_popularity": TitlePopularity(train, pop, cfg),
                     "item_knn": ItemKNN(train, pop, cfg)}
        if (run / "baselines" / "als_challenge.npz").exists():
            baselines["als"] = ALS.load(run / "baselines" / "als_challenge.npz", ALSConfig(**record["als_config"]))
        scorers = {name: _dense(model) for name, model in baselines.items()}
        final = "item_knn"
        neural = _neural_dirs(run)
        if neural:
            scorers |= _neural_scorers(art, *neural, device)
            final = "mmcf" if "mmcf" in scorers else "dae"
        if "mmcf" in scorers and (run / "ensemble" / "rerank").is_dir():
            scorers["rerank"] = _rerank_scorer(run, art, train, scorers, baselines, neural[0])
            final = "rerank"
        return cls(art=art, scorers=scorers, final=final)

    def recommend(self, title: str | None, seeds: list[str], n: int = 20) -> tuple[list[dict], list[str]]:
        if not title and not seeds:
            raise PipelineError("give a title and/or seed track uris")
        ps, unknown = playlist_set(title, seeds, self.art)
        scores = {name: fn(ps) for name, fn in self.scorers.items()}
        final = scores[self.final].copy()
        final[ps.tracks.indices] = -np.inf
        top = np.lexsort((-scores["popularity"], -final))[:n]  # no evidence at all: popularity order
        v = self.art.vocab
        rows = [{"rank": r + 1, "track": str(v.track_name[t]), "artist": str(v.artist_name[v.track_artist[t]])
                 if v.track_artist[t] >= 0 else "", "uri": str(v.track_uri[t]),
                 **{name: float(s[t]) for name, s in scores.items()}} for r, t in enumerate(top)]
        return rows, unknown


def _dense(model):
    return lambda ps: np.asarray(model.score(ps, np.array([0])))[0]


def _neural_dirs(run: Path) -> tuple[Path, Path | None] | None:
    """The autoencoders' and title model's folders that served the challenge (refit when the run refit)."""
    for dae, title in (("refit", "refit"), ("models", "model")):
        if (run / "mmcf" / dae / "config.json").exists():
            title_dir = run / "charcnn" / title
            return run / "mmcf" / dae, title_dir if (title_dir / "title_model.pt").exists() else None
    return None


def _neural_scorers(art: Artifacts, dae_dir: Path, title_dir: Path | None, device: str) -> dict:
    import torch

    from ensemble.mixing import mixing_weights, usable_title
    from mmcf.predict import dae_scores, load_models

    models = load_models(dae_dir, device)
    dense = models.dense

    def catalogue(dense_scores: np.ndarray) -> np.ndarray:
        """Dense track scores scattered over the catalogue (0 outside the dense vocabulary)."""
        out = np.zeros(art.vocab.n_tracks, dtype=np.float32)
        out[dense.tracks] = dense_scores[:dense.n_tracks]
        return out

    def dae(ps):
        return catalogue(dae_scores(models, ps, np.array([0]))[0][0].cpu().numpy())

    out = {"dae": dae}
    if title_dir is not None:
        from charcnn.train import load_title_model

        title = load_title_model(title_dir, device, art.vocab.fingerprint)

        def title_only(ps):
            with torch.no_grad():
                return catalogue(title.probs(torch.from_numpy(ps.title_chars))[0].cpu().numpy())

        def mixed(ps):
            _, c = dae_scores(models, ps, np.array([0]))
            w_t, w_p = mixing_weights(usable_title(ps), c)
            return w_t[0] * out["title_model"](ps) + w_p[0] * dae(ps)

        out |= {"title_model": title_only, "mmcf": mixed}
    return out


def _baselines_record(run: Path) -> dict:
    """What the run's baselines stage recorded (its settings, whether it refit); {} for older runs."""
    from common.io import read_json

    record = run / "baselines" / "stage.json"
    return read_json(record).get("result", {}) if record.exists() else {}


def _rerank_scorer(run: Path, art: Artifacts, train: PlaylistSet, scorers: dict, baselines: dict, dae_dir: Path):
    """The two-stage system for one playlist, with the sources the run's rerank stage used for the
    challenge (the baseline models already built for their own columns, plus the reranker's own
    sources): candidates from every list, reordered by the trained LightGBM model. Tracks outside
    its top 500 score -inf (the table lists at most those)."""
    from common.topk import topk_excluding
    from ensemble.features import FeatureContext
    from ensemble.ranker import load_reranker, own_sources, rerank_with
    from mmcf.dense import DenseVocab
    from pipeline.stages import LIST_DEPTH

    model = load_reranker(run / "ensemble" / "rerank")
    ctx = FeatureContext.build(train, art.vocab, model.cfg.cooc_max_playlists, model.cfg.seed,
                               dense_tracks=DenseVocab.load(dae_dir).tracks)
    fixed = baselines | own_sources(train, model.cfg)

    def rerank(ps):
        mmcf = topk_excluding(scorers["mmcf"](ps)[None, :], ps.tracks, LIST_DEPTH)
        sources = {name: src for name, src in (fixed | {"mmcf": mmcf}).items() if name in model.sources}
        ids, scores = rerank_with(model, ctx, ps, sources, model.cfg)
        out = np.full(art.vocab.n_tracks, -np.inf, dtype=np.float32)
        keep = ids[0] >= 0
        out[ids[0][keep]] = scores[0][keep]
        return out

    return rerank


def print_table(rows: list[dict], unknown: list[str]) -> str:
    models = [k for k in rows[0] if k not in ("rank", "track", "artist", "uri")] if rows else []
    width = max(40, min(shutil.get_terminal_size((120, 20)).columns - 12 * len(models) - 8, 80))
    lines = [f"{'#':>3}  {'track — artist':<{width}}" + "".join(f"{m[:11]:>12}" for m in models)]
    for r in rows:
        label = f"{r['track']} — {r['artist']}"[:width]
        lines.append(f"{r['rank']:>3}  {label:<{width}}" + "".join(f"{r[m]:>12.4g}" for m in models))
    if unknown:
        lines.append(f"({len(unknown)} seed uri(s) not in the vocabulary, ignored: {', '.join(unknown[:3])}"
                     f"{' ...' if len(unknown) > 3 else ''})")
    return "\n".join(lines)
