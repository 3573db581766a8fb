"""Inference with the trained autoencoders: seed weighting, routing playlists to schemes, top-k.

Seed weighting and the row normalisation: a seed track weighs `track_weight` (1.0), each of the
seeds' artists `artist_weight` (0.5); in-order seed lists longer than `long_seeds` (50) weigh
their last `recent_seeds` (15) tracks 1.0 and the earlier ones `early_weight` (0.15). The
weighted vector is then divided by its sum, exactly like the training inputs (whose survivors
are divided by their row sum). The encoder is linear before its sigmoid, so the hidden
pre-activation becomes a weighted average of seed embeddings: the weights set each seed's
share, not the input's scale. An average of many seeds is short, though, and a model trained for
a few epochs answers it near its popularity prior; so each category's input is multiplied by the
gain chosen on validation (MMCFConfig.input_gains; 1 is the published input). Training feeds
tracks or artists alone (hide and seek); at inference both are fed, and the normalisation makes
that a convex mix of the two kinds of input the model knows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from common.errors import PipelineError
from common.io import read_json
from common.config import from_dict
from common.device import resolve_device
from mmcf.config import MMCFConfig
from mmcf.dense import DenseVocab
from mmcf.model import DAE, Bag
from preprocess.artifacts import PlaylistSet, Vocab
from common.categories import BY_ID, CATEGORIES

CONFIG_FILE = "config.json"
_RANDOM_CATEGORIES = np.array([c.id for c in CATEGORIES if c.random])
_IN_ORDER = [c for c in CATEGORIES if not c.random]


@dataclass
class MMCFModels:
    cfg: MMCFConfig
    models: dict[str, DAE]  # scheme name -> model (eval mode, on its device)
    fingerprint: str  # catalogue the models were trained on
    dense: DenseVocab  # the models' own inputs and outputs: a budgeted part of the catalogue
    gains: dict[int, float] = field(default_factory=dict)  # category -> input gain chosen on validation (absent: 1)

    def input_gain(self, ps: PlaylistSet) -> np.ndarray:
        """Each playlist's input gain, by the category it is routed as."""
        cat = routed_category(ps)
        lookup = np.ones(max(int(cat.max(initial=0)), max(self.gains, default=0)) + 1, dtype=np.float32)
        lookup[list(self.gains)] = list(self.gains.values())
        return lookup[cat]

    @property
    def n_tracks(self) -> int:
        return self.dense.n_tracks


def model_path(out_dir: Path, scheme: str) -> Path:
    return Path(out_dir) / f"{scheme}.pt"


def load_models(out_dir: str | Path, device: str | torch.device = "cpu", schemes: list[str] | None = None
                ) -> MMCFModels:
    """The trained models of `out_dir` (all of the config's schemes unless `schemes` names some)."""
    out_dir = Path(out_dir)
    meta = read_json(out_dir / CONFIG_FILE)
    cfg = from_dict(MMCFConfig, meta.get("config"), f"{out_dir / CONFIG_FILE} config")
    device = resolve_device(device)
    models, gains = {}, {}
    for name in schemes or [s.name for s in cfg.schemes]:
        cfg.scheme(name)
        path = model_path(out_dir, name)
        if not path.exists():
            raise PipelineError(f"{path}: missing; train scheme {name!r} first (python -m mmcf)")
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("fingerprint") != meta["fingerprint"]:
            raise PipelineError(f"{path}: trained on another vocabulary than {out_dir / CONFIG_FILE}; retrain")
        models[name] = DAE.from_state(blob["state"], meta["n_items"], meta["n_tracks"], cfg.hidden, blob["tied"],
                                      device)
        gains |= {int(c): float(g) for c, g in blob.get("gains", {}).items()}
    return MMCFModels(cfg=cfg, models=models, fingerprint=meta["fingerprint"], dense=DenseVocab.load(out_dir),
                      gains=gains)


def encode_inputs(ps: PlaylistSet, rows: np.ndarray, cfg: MMCFConfig, gain: np.ndarray | None = None
                  ) -> tuple[sp.csr_matrix, np.ndarray]:
    """The autoencoder input of playlists `rows`: [len(rows), tracks + artists] float32, rows summing
    to 1, or to gain[i] (MMCFModels.gains; empty rows stay empty), and c, the sum of the input's
    weights before that normalisation (for count-dependent mixing): the published code counts the
    seed artists too, at their weight, so one seed track gives c = 1.5 and w_t = 1 / 2.5."""
    rows = np.asarray(rows, dtype=np.int64)
    tracks = ps.tracks[rows].tocsr()
    artists = ps.artists[rows].tocsr()
    entry_row = np.repeat(np.arange(len(rows)), np.diff(tracks.indptr))
    n_seeds = ps.n_seeds[rows].astype(np.int64)
    long_in_order = ~np.isin(ps.category[rows], _RANDOM_CATEGORIES) & (n_seeds > cfg.long_seeds)
    early = long_in_order[entry_row] & (tracks.data <= (n_seeds - cfg.recent_seeds)[entry_row])
    tw = np.where(early, cfg.early_weight, cfg.track_weight).astype(np.float32)
    t = sp.csr_matrix((tw, tracks.indices, tracks.indptr), shape=tracks.shape)
    a = sp.csr_matrix((np.full(artists.nnz, cfg.artist_weight, np.float32), artists.indices, artists.indptr),
                      shape=artists.shape)
    x = sp.hstack([t, a], format="csr", dtype=np.float32)
    total = np.asarray(x.sum(axis=1)).ravel()
    scale = (1.0 if gain is None else np.asarray(gain, dtype=np.float64)) / np.where(total > 0, total, 1.0)
    x.data *= np.repeat(scale, np.diff(x.indptr)).astype(np.float32)
    return x, total.astype(np.float32)


def routed_category(ps: PlaylistSet) -> np.ndarray:
    """Each playlist's category, uncategorised ones (0) taken as the in-order category with the
    nearest seed count."""
    cat = ps.category.astype(np.int64).copy()
    unknown = cat == 0
    if unknown.any():
        seeds = np.array([c.n_seeds for c in _IN_ORDER])
        nearest = np.abs(ps.n_seeds[unknown, None].astype(np.int64) - seeds[None, :]).argmin(axis=1)
        cat[unknown] = np.array([c.id for c in _IN_ORDER])[nearest]
    return cat


def route(ps: PlaylistSet, cfg: MMCFConfig) -> np.ndarray:
    """Scheme index per playlist from its (routed) category."""
    scheme_of_cat = {c: i for i, s in enumerate(cfg.schemes) for c in s.categories}
    cat = routed_category(ps)
    missing = sorted(set(np.unique(cat).tolist()) - set(scheme_of_cat))
    if missing:
        names = ", ".join(f"{c} ({BY_ID[c].name})" if c in BY_ID else str(c) for c in missing)
        raise PipelineError(f"[mmcf.schemes]: no scheme serves categor{'y' if len(missing) == 1 else 'ies'} {names}")
    lookup = np.full(max(scheme_of_cat) + 1, -1, dtype=np.int64)
    lookup[list(scheme_of_cat)] = list(scheme_of_cat.values())
    return lookup[cat]


def recommend(model: DAE, ps: PlaylistSet, rows: np.ndarray, cfg: MMCFConfig, prior: np.ndarray, k: int = 500,
              gain: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k tracks of one model for playlists `rows`, seeds excluded: rec int32 [n, k] (-1 = none),
    scores float32 [n, k] (output probabilities, 0 where rec is -1). gain: each row's input gain
    (encode_inputs; None: 1).

    Playlists with no input at all (title only, or every seed outside the vocabulary) get `prior`
    (float [tracks], the training frequency of each track): popularity, which ranks them a little
    better than the autoencoder's output for an empty input.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n_tracks = ps.tracks.shape[1]
    rec = np.full((len(rows), k), -1, dtype=np.int32)
    scores = np.zeros((len(rows), k), dtype=np.float32)
    kk = min(k, n_tracks)
    device = model.W.device
    p = np.clip(np.asarray(prior, dtype=np.float64), 1e-9, 1 - 1e-9)
    prior_logit = torch.from_numpy(np.log(p / (1 - p)).astype(np.float32)).to(device)
    with torch.no_grad():
        for lo in range(0, len(rows), cfg.predict_batch):
            chunk = rows[lo:lo + cfg.predict_batch]
            x, _ = encode_inputs(ps, chunk, cfg, None if gain is None else gain[lo:lo + cfg.predict_batch])
            z = model.logits(Bag.from_csr(x, device))[:, :n_tracks]
            empty = torch.from_numpy(np.flatnonzero(np.diff(x.indptr) == 0)).to(device)
            z[empty] = prior_logit
            seeds = ps.tracks[chunk].tocoo()
            z[torch.from_numpy(seeds.row.astype(np.int64)).to(device),
              torch.from_numpy(seeds.col.astype(np.int64)).to(device)] = -torch.inf
            val, idx = torch.topk(z, kk, dim=1)
            ok = torch.isfinite(val)
            rec[lo:lo + len(chunk), :kk] = torch.where(ok, idx, -1).cpu().numpy()
            scores[lo:lo + len(chunk), :kk] = torch.where(ok, torch.sigmoid(val), 0.0).cpu().numpy()
    return rec, scores


def predict(models: MMCFModels, ps: PlaylistSet, vocab: Vocab, k: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Top-k catalogue tracks for every playlist of `ps` (catalogue columns), each routed to the
    scheme serving its category.

    Title-only playlists (no seeds) get popularity (see `recommend`); the title model serves them.
    """
    check_vocab(models, vocab)
    view = models.dense.view(ps)
    scheme_idx, gain = route(ps, models.cfg), models.input_gain(ps)
    rec = np.full((len(ps), k), -1, dtype=np.int32)
    scores = np.zeros((len(ps), k), dtype=np.float32)
    for i, scheme in enumerate(models.cfg.schemes):
        rows = np.flatnonzero(scheme_idx == i)
        if len(rows):
            rec[rows], scores[rows] = recommend(_model(models, scheme.name), view, rows, models.cfg,
                                                models.dense.track_prior, k, gain[rows])
    return models.dense.catalogue_ids(rec), scores


def check_vocab(models: MMCFModels, vocab: Vocab) -> None:
    if vocab.fingerprint != models.fingerprint:
        raise PipelineError(f"mmcf models were trained on vocabulary {models.fingerprint}, the artifacts have "
                            f"{vocab.fingerprint}; retrain or point at the matching artifacts")


def _model(models: MMCFModels, name: str) -> DAE:
    if name not in models.models:
        raise PipelineError(f"mmcf: scheme {name!r} is not loaded (trained schemes: {', '.join(models.models)})")
    return models.models[name]
