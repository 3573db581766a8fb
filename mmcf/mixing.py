"""MMCF's count-dependent mixing of the title model and the autoencoder, and its top-500 lists.

p = w_t * title(x) + w_p * dae(x) with w_t = u / (u + c), w_p = c / (u + c): u = 1 when the
playlist has a usable title, c the weighted count of seeds fed to the autoencoder. A title-only
playlist is served by the title model alone, a playlist without a title by the autoencoder
alone. One with neither (no usable title, no seed in the vocabulary) gets popularity, as in
`mmcf.predict`; popularity also fills whatever is still empty.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from common.errors import PipelineError
from common.progress import Progress
from common.topk import fill_from_order, topk_excluding
from mmcf.predict import MMCFModels, check_vocab, encode_inputs, route
from preprocess.artifacts import PlaylistSet, Vocab

log = logging.getLogger("mixing")

# a frozen autoencoder: row-normalised seed input [B, T + A] (csr) -> probabilities [B, T + A]
DaeFn = Callable[[sp.csr_matrix], torch.Tensor]


class TitleFn(Protocol):
    def probs(self, chars: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 25] title characters -> probabilities [B, T + A]."""


def usable_title(ps: PlaylistSet) -> np.ndarray:
    """u: a title with at least one character of the model's alphabet (emoji-only titles have none)."""
    return np.asarray(ps.has_title, dtype=bool) & (np.asarray(ps.title_chars) > 0).any(axis=1)


def mixing_weights(has_title: np.ndarray, seed_weight_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(w_t, w_p) = (u / (u + c), c / (u + c)), and (0, 0) where u = c = 0 (nothing to mix)."""
    u = np.asarray(has_title, dtype=np.float64)
    c = np.asarray(seed_weight_sum, dtype=np.float64)
    if (c < 0).any() or not np.isfinite(c).all():
        raise ValueError("seed weight sums must be finite and >= 0")
    total = u + c
    safe = np.where(total > 0, total, 1.0)
    return (u / safe).astype(np.float32), (c / safe).astype(np.float32)


def scheme_names(ps: PlaylistSet, models: MMCFModels) -> np.ndarray:
    """The scheme serving each playlist, routed exactly as the autoencoder's own predictions are."""
    return np.array([s.name for s in models.cfg.schemes])[route(ps, models.cfg)]


def mmcf_lists(ps: PlaylistSet, title_model: TitleFn | None, models: MMCFModels, vocab: Vocab,
               fill_order: np.ndarray, k: int = 500, batch: int = 256,
               device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """MMCF's top-k lists for a playlist set (catalogue columns): the title model (None: left out)
    mixed with each playlist's scheme autoencoder over their dense vocabulary, mapped back to
    catalogue ids; slots they leave empty are filled from fill_order (catalogue track ids, best
    first; score 0.0 there: the mixture has no evidence for them). A playlist with no usable title
    and no seed in the dense vocabulary gets fill_order alone.
    Returns ids int32 [P, k] (-1 only when the catalogue runs out) and scores float32 [P, k]."""
    check_vocab(models, vocab)
    view = models.dense.view(ps)
    x, c = encode_inputs(view, np.arange(len(ps)), models.cfg, models.input_gain(ps))
    daes = {name: m.forward_sparse for name, m in models.models.items()}
    ids, scores = recommend_mixed(view, title_model, daes, scheme_names(ps, models), x, c, k=k, batch=batch,
                                  device=device)
    ids = models.dense.catalogue_ids(ids)
    filled = fill_from_order(ids, scores, ps.tracks, fill_order)
    log.info("mixed lists: %d slots filled from popularity", filled)
    return ids, scores


def recommend_mixed(ps: PlaylistSet, title_model: TitleFn | None, daes: Mapping[str, DaeFn], scheme: np.ndarray,
                    x: sp.csr_matrix, c: np.ndarray, k: int = 500, batch: int = 256,
                    device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Top-k tracks per playlist of the mixed output (ps, x and the ids in the models' own columns),
    seeds removed; -1 / -inf where the models have nothing.

    scheme: str [P], the autoencoder serving each playlist (a key of daes); x [P, T + A]: the
    autoencoders' inputs; c [P]: the weighted seed counts. title_model None gives the
    autoencoder alone; a playlist with no usable title and c = 0 gets nothing.
    """
    n_tracks = ps.tracks.shape[1]
    u = usable_title(ps) if title_model is not None else np.zeros(len(ps), dtype=bool)
    w_t, w_p = mixing_weights(u, c)
    ids = np.full((len(ps), k), -1, dtype=np.int32)
    scores = np.full((len(ps), k), -np.inf, dtype=np.float32)
    chars = torch.from_numpy(np.ascontiguousarray(ps.title_chars))
    scheme = np.asarray(scheme)
    groups = {name: np.flatnonzero(scheme == name) for name in np.unique(scheme)}
    for name, rows in groups.items():
        if name not in daes and bool((w_p[rows] > 0).any()):
            raise PipelineError(f"no autoencoder for scheme {name!r} (loaded: {', '.join(sorted(daes)) or 'none'})")
    start = time.perf_counter()
    with torch.no_grad(), Progress(len(ps), "mixing", "playlists") as bar:
        for name, rows_all in groups.items():
            for lo in range(0, len(rows_all), batch):
                rows = rows_all[lo:lo + batch]
                p = mixed_probs(chars[rows], x[rows], w_t[rows], w_p[rows], title_model, daes.get(name), device)
                p = p[:, :n_tracks].cpu().numpy()
                p[(w_t[rows] == 0) & (w_p[rows] == 0)] = -np.inf  # no model at all: popularity fill
                ids[rows], scores[rows] = topk_excluding(p, ps.tracks[rows], k)
                bar.update(len(rows))
    log.info("mixed lists for %d playlists (%d title only, %d autoencoder only, %d with neither) in %.1f s",
             len(ps), int(((w_t > 0) & (w_p == 0)).sum()), int(((w_t == 0) & (w_p > 0)).sum()),
             int(((w_t == 0) & (w_p == 0)).sum()), time.perf_counter() - start)
    return ids, scores


@torch.no_grad()
def mixed_probs(chars: torch.Tensor, x: sp.csr_matrix, w_t: np.ndarray, w_p: np.ndarray,
                title_model: TitleFn | None, dae: DaeFn | None, device: str | torch.device) -> torch.Tensor:
    """p = w_t * title + w_p * dae for one batch (no gradients); each model runs only on rows
    that weigh it, so title-only rows never call the autoencoder and vice versa."""
    p = torch.zeros((len(w_t), x.shape[1]), dtype=torch.float32, device=device)
    need_t = np.flatnonzero(w_t > 0)
    if need_t.size:
        wt = torch.from_numpy(w_t[need_t]).to(device)[:, None]
        p[need_t] += wt * title_model.probs(chars[need_t].to(device)).to(torch.float32)
    need_p = np.flatnonzero(w_p > 0)
    if need_p.size:
        wp = torch.from_numpy(w_p[need_p]).to(device)[:, None]
        p[need_p] += wp * dae(x[need_p]).to(device, torch.float32)
    return p
