"""Recommend one playlist from a finished run, through the batch path's own code.

The playlist (a title and/or seed track uris) is written as a challenge-set entry and mapped by
`preprocess.build.challenge_set`, exactly like a challenge playlist (category inference included);
every model of the run then makes its list with the functions its stage uses for the challenge
split (`pipeline.stages`), so the reranker sees the same candidates and features a batch run would
give that playlist. Models load once; an answer takes well under a second on a CPU.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.categories import BY_ID, CATEGORIES
from common.config import from_dict
from common.errors import PipelineError
from common.io import read_json
from pipeline import stages
from pipeline.config import SCHEMA, PipelineConfig, stage_models
from preprocess.artifacts import Artifacts, PlaylistSet, load_artifacts
from sources import REGISTRY
from sources.base import FitContext

CONFIG_FILE = "config.json"  # the run's resolved settings, written by run.py and python -m ensemble
LEGEND = {
    "popularity": "training playlists holding the track",
    "title_popularity": "playlists with the same normalised title holding it",
    "item_knn": "co-occurrence with the seeds",
    "als": "matrix factorisation",
    "dae": "the autoencoder of the playlist's scheme",
    "mmcf": "MMCF: title model mixed with the autoencoder",
    "rerank": "LightGBM reranker over every model's candidates",
}


def write_run_config(run: Path, cfg: PipelineConfig) -> None:
    from common.io import write_json

    write_json(Path(run) / CONFIG_FILE, {name: cfg.section(name) for name in SCHEMA})


def run_config(run: Path) -> PipelineConfig:
    """The settings a run was made with (RUN/config.json)."""
    path = Path(run) / CONFIG_FILE
    saved = read_json(path)
    try:
        sections = {name: from_dict(cls, saved[name], f"{path} [{name}]") for name, cls in SCHEMA.items()}
    except KeyError as exc:
        raise PipelineError(f"{path}: no section {exc}; re-run the run's ensemble stage") from None
    return PipelineConfig.from_sections(path, sections)


def playlist_entry(title: str | None, seeds: list[str], art: Artifacts, num_tracks: int | None = None) -> dict:
    """A challenge-set entry for the playlist: seeds in order, with their artists and albums where the
    catalogue knows the track (an unknown track's artist is unknown too). num_tracks, the length the
    playlist is meant to reach, defaults to the middle of its category's length window (the
    reranker learnt with real lengths, so "no more tracks wanted" would be a case it never saw)."""
    v = art.vocab
    ids = pd.Index(v.track_uri).get_indexer(list(seeds)) if seeds else np.zeros(0, dtype=np.int64)
    tracks = []
    for pos, (uri, t) in enumerate(zip(seeds, ids.tolist())):
        t = t if t >= 0 else None
        a = int(v.track_artist[t]) if t is not None else -1
        tracks.append({"pos": pos, "track_uri": uri, "track_name": str(v.track_name[t]) if t is not None else "",
                       "artist_uri": str(v.artist_uri[a]) if a >= 0 else UNKNOWN_ARTIST,
                       "artist_name": str(v.artist_name[a]) if a >= 0 else "",
                       "album_uri": str(v.album_uri[v.track_album[t]]) if t is not None else UNKNOWN_ALBUM,
                       "album_name": "", "duration_ms": int(v.track_duration[t]) if t is not None else 0})
    entry = {"pid": 0, "num_samples": len(seeds), "tracks": tracks,
             "num_tracks": num_tracks if num_tracks is not None else typical_length(len(seeds), bool(title))}
    if title:
        entry["name"] = title
    if entry["num_tracks"] < len(seeds):
        raise PipelineError(f"--length {entry['num_tracks']}: fewer than the {len(seeds)} seed tracks given")
    return entry


UNKNOWN_ARTIST = "spotify:artist:" + "0" * 22  # in no catalogue: contributes nothing, like the unknown track
UNKNOWN_ALBUM = "spotify:album:" + "0" * 22


def typical_length(n_seeds: int, has_title: bool) -> int:
    """The middle of the length window of the category with that many in-order seeds (the nearest
    seed count when none has it exactly), at least one more than the seeds."""
    fits = [c for c in CATEGORIES if not c.random and c.has_title == has_title] or list(CATEGORIES)
    c = min(fits, key=lambda c: (abs(c.n_seeds - n_seeds), c.id))
    return max((c.min_len + c.max_len) // 2, n_seeds + 1)


def playlist_set(entry: dict, art: Artifacts) -> tuple[PlaylistSet, list[str]]:
    """The entry in catalogue space through the batch path (and its seed uris outside the catalogue)."""
    from preprocess.build import challenge_set
    from preprocess.challenge_file import playlists_to_slice

    ps = challenge_set(playlists_to_slice(Path("<playlist>"), [entry]), art.vocab)
    known = set(art.vocab.track_uri[ps.tracks.indices].tolist())
    return ps, [t["track_uri"] for t in entry["tracks"] if t["track_uri"] not in known]


@dataclass
class Recommender:
    """Everything a run made for the challenge split, loaded once."""

    art: Artifacts
    cfg: PipelineConfig
    train: PlaylistSet  # what the challenge models were fit on (training + validation when refit)
    models: dict  # name -> a baseline model, or the run's neural models
    final: str

    @classmethod
    def load(cls, run: Path, device: str = "cpu") -> "Recommender":
        run = Path(run)
        if not (run / "artifacts" / "manifest.json").exists() or not (run / CONFIG_FILE).exists():
            raise PipelineError(f"{run}: not a finished run folder (no artifacts/manifest.json or {CONFIG_FILE})")
        art, cfg = load_artifacts(run / "artifacts"), run_config(run)
        train = stages.fit_sets(art, cfg.run.refit)["challenge"]
        ctx = FitContext(art.vocab.track_artist, device=device)
        models = {name: REGISTRY[name].load(stages.source_dir(run, name) / name / "challenge", train,
                                            cfg.settings(REGISTRY[name].section), ctx)
                  for stage in cfg.run.stages for name in stage_models(cfg.run, stage) if name in REGISTRY}
        models |= _neural(run, art, cfg, device)
        return cls(art=art, cfg=cfg, train=train, models=models, final=cfg.run.final)

    def lists(self, ps: PlaylistSet) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every model's (ids, scores) list for the playlists, as the stages make the challenge lists."""
        from sources.sparse import Popularity
        from mmcf.mixing import mmcf_lists
        from mmcf.predict import predict

        depth = stages.LIST_DEPTH
        out = {name: model.top(ps, depth) for name, model in self.models.items() if name in REGISTRY}
        if "dae" in self.models:
            out["dae"] = predict(self.models["dae"], ps, self.art.vocab, k=depth)
        if "title" in self.models:
            title = self.models["title"]
            out["mmcf"] = mmcf_lists(ps, title, self.models["dae"], self.art.vocab, Popularity(self.train).order(),
                                     k=depth, batch=self.cfg.charcnn.predict_batch,
                                     device=str(next(title.parameters()).device))
        if "reranker" in self.models:
            out["rerank"] = self.rerank(ps, out)
        return out

    def reranker_inputs(self, ps: PlaylistSet, lists: dict) -> tuple:
        """(model, feature context, sources) the reranker scores `ps` with: the stage's own recipe."""
        model = self.models["reranker"]
        return model, self.models["context"], {name: lists[name] for name in model.sources}

    def rerank(self, ps: PlaylistSet, lists: dict) -> tuple[np.ndarray, np.ndarray]:
        from ensemble.ranker import rerank_with

        model, ctx, sources = self.reranker_inputs(ps, lists)
        return rerank_with(model, ctx, ps, sources, self.cfg.rerank)

    def recommend(self, title: str | None, seeds: list[str], n: int = 20,
                  num_tracks: int | None = None) -> tuple[list[dict], list[str], dict]:
        """The final model's first n tracks with every model's rank and score of each; the seed uris
        outside the catalogue; and what the playlist was taken as (category, length)."""
        if not title and not seeds:
            raise PipelineError("give a title and/or seed track uris")
        ps, unknown = playlist_set(playlist_entry(title, seeds, self.art, num_tracks), self.art)
        lists = self.lists(ps)
        v = self.art.vocab
        ranks = {name: {int(t): (r, float(s)) for r, (t, s) in enumerate(zip(ids[0], scores[0])) if t >= 0}
                 for name, (ids, scores) in lists.items()}
        rows = []
        for r, t in enumerate(t for t in lists[self.final][0][0][:n] if t >= 0):
            a = v.track_artist[t]
            rows.append({"rank": r + 1, "track": str(v.track_name[t]), "artist": str(v.artist_name[a]) if a >= 0 else "",
                         "uri": str(v.track_uri[t]),
                         "models": {name: {"rank": ranks[name][t][0] + 1, "score": ranks[name][t][1]}
                                    for name in lists if t in ranks[name]}})
        cat = int(ps.category[0])
        taken = {"category": f"{cat} {BY_ID[cat].name}" if cat else "none (routed by seed count)",
                 "num_tracks": int(ps.num_tracks[0]), "final": self.final}
        return rows, unknown, taken


def _neural(run: Path, art: Artifacts, cfg: PipelineConfig, device: str) -> dict:
    """The autoencoders, title model and reranker that served the run's challenge lists."""
    out: dict = {}
    if "mmcf" not in cfg.run.stages:
        return out
    from mmcf.predict import load_models

    out["dae"] = load_models(stages.dae_dir(run / "mmcf", "challenge", cfg.run.refit), device)
    if "charcnn" in cfg.run.stages:
        from charcnn.train import load_title_model

        out["title"] = load_title_model(stages.title_dir(run / "charcnn", "challenge", cfg.run.refit), device,
                                        art.vocab.fingerprint)
    if "rerank" in cfg.run.stages:
        from ensemble.features import FeatureContext
        from ensemble.ranker import load_reranker

        out["reranker"] = load_reranker(run / "ensemble" / "rerank")
        train = stages.fit_sets(art, cfg.run.refit)["challenge"]
        out["context"] = FeatureContext.build(train, art.vocab, cfg.rerank.cooc_max_playlists, cfg.rerank.seed,
                                              dense_tracks=stages.dense_tracks(run / "mmcf", "challenge", cfg))
    return out


def print_table(rows: list[dict], unknown: list[str], taken: dict) -> str:
    """Warnings first, then the final model's list with each model's rank of every track, then the legend."""
    lines = []
    if unknown:
        lines.append(f"warning: {len(unknown)} seed uri(s) not in the run's catalogue, ignored: "
                     f"{', '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}")
    lines.append(f"taken as category {taken['category']}, {taken['num_tracks']} tracks in all; "
                 f"final model: {taken['final']}\n")
    models = [m for m in LEGEND if any(m in r["models"] for r in rows)]
    width = max(30, min(shutil.get_terminal_size((120, 20)).columns - sum(len(m) + 2 for m in models) - 8, 70))
    lines.append(f"{'#':>3}  {'track - artist':<{width}}" + "".join(f"  {m:>{max(len(m), 5)}}" for m in models))
    for r in rows:
        label = f"{r['track']} - {r['artist']}"[:width]
        cells = [str(r["models"][m]["rank"]) if m in r["models"] else "-" for m in models]
        lines.append(f"{r['rank']:>3}  {label:<{width}}" + "".join(f"  {c:>{max(len(m), 5)}}" for c, m in zip(cells, models)))
    lines.append(f"\nEach column is a model's rank of the track (1 = its first choice, - = not in its top "
                 f"{stages.LIST_DEPTH}); scores are in --json.")
    lines += [f"  {m}: {LEGEND.get(m, '')}" for m in models]
    return "\n".join(lines)
