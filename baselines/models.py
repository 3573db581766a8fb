"""Popularity, title popularity and item co-occurrence kNN, all as sparse matrix products.

Each model scores a batch of playlists as a dense [B, T] block; `recommend` keeps only the
top k of each block, so memory is bounded by the batch, not by the number of playlists.
Tracks the model cannot score fall back to popularity, ranked below every scored track.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from common.topk import batched_topk
from preprocess.artifacts import PlaylistSet


@dataclass
class BaselineConfig:
    knn_alpha: float = 0.5  # seed-side popularity damping (cosine = 0.5)
    knn_beta: float = 0.5  # candidate-side popularity damping
    title_min_playlists: int = 1  # a title needs this many training playlists to be used
    batch: int = 512


def binary(m: sp.csr_matrix) -> sp.csr_matrix:
    out = m.tocsr(copy=True).astype(np.float32)
    out.data[:] = 1.0
    return out


class Popularity:
    """Tracks ranked by the number of training playlists holding them."""

    name = "popularity"

    def __init__(self, train: PlaylistSet):
        self.counts = np.asarray(binary(train.tracks).sum(axis=0)).ravel().astype(np.float32)
        self.prior = self.counts / max(self.counts.max(), 1.0)

    def score(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.prior, (len(rows), len(self.prior)))

    def order(self) -> np.ndarray:
        """All tracks best first (ties by id) for padding short lists."""
        return np.lexsort((np.arange(len(self.counts)), -self.counts)).astype(np.int32)


class _WithFallback:
    """Scores > 0 from the model land in (1, 2]; everything else keeps popularity order in [0, 1]."""

    def __init__(self, pop: Popularity):
        self.pop = pop

    def score(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        raw = self.raw_scores(ps, rows)
        top = raw.max(axis=1, keepdims=True)
        scaled = 1.0 + raw / np.where(top > 0, top, 1.0)
        return np.where(raw > 0, scaled, self.pop.prior[None, :]).astype(np.float32)

    def raw_scores(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TitlePopularity(_WithFallback):
    """Tracks of training playlists that share the normalised title, by how many of them hold it."""

    name = "title_popularity"

    def __init__(self, train: PlaylistSet, pop: Popularity, cfg: BaselineConfig):
        super().__init__(pop)
        titles, inverse, counts = np.unique(train.title, return_inverse=True, return_counts=True)
        keep = (counts >= cfg.title_min_playlists) & (titles != "")
        group = sp.csr_matrix((np.ones(len(inverse), np.float32), (inverse, np.arange(len(inverse)))),
                              shape=(len(titles), len(inverse)))
        self.by_title = (group @ binary(train.tracks)).tocsr()
        self.titles, self.usable = titles, keep

    def lookup(self, titles: np.ndarray) -> np.ndarray:
        """Row of by_title per normalised title, -1 when unseen, empty or too rare."""
        if len(self.titles) == 0:
            return np.full(len(titles), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.titles, titles), len(self.titles) - 1)
        return np.where((self.titles[at] == titles) & self.usable[at], at, -1)

    def raw_scores(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        found = self.lookup(ps.title[rows])
        out = np.zeros((len(rows), self.by_title.shape[1]), dtype=np.float32)
        hit = np.flatnonzero(found >= 0)
        if hit.size:
            out[hit] = self.by_title[found[hit]].toarray()
        return out


class ItemKNN(_WithFallback):
    """score(j) = sum over seeds i of cooc(i, j) / (pop_i^alpha * pop_j^beta), through the
    training playlists (seeds -> playlists -> tracks), so the T x T matrix is never built."""

    name = "item_knn"

    def __init__(self, train: PlaylistSet, pop: Popularity, cfg: BaselineConfig):
        super().__init__(pop)
        self.x = binary(train.tracks)
        self.xt = self.x.T.tocsr()
        safe = np.maximum(pop.counts, 1.0)
        self.seed_w = (safe ** -cfg.knn_alpha).astype(np.float32)
        self.cand_w = (safe ** -cfg.knn_beta).astype(np.float32)

    def raw_scores(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        seeds = binary(ps.tracks[rows])
        seeds.data *= self.seed_w[seeds.indices]
        via_playlists = seeds @ self.xt
        return np.asarray((via_playlists @ self.x).todense(), dtype=np.float32) * self.cand_w[None, :]


def recommend(model, ps: PlaylistSet, k: int = 500, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Top-k vocabulary ids per playlist (seeds excluded) and their scores."""
    return batched_topk(lambda rows: model.score(ps, rows), ps.tracks, k, batch)
