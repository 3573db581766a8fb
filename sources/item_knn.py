"""Item kNN: tracks that share training playlists with the seeds, each co-occurrence damped by
both tracks' popularity; popularity below them. The classic neighbourhood model of the challenge's
top teams, computed through the playlists so the track x track matrix is never built."""
from __future__ import annotations

import numpy as np

from common.sparse import binary, sample_rows
from preprocess.artifacts import PlaylistSet
from sources.sparse import BaselineConfig, Popularity, SparseSource, WithFallback


class ItemKNN(WithFallback):
    """score(j) = sum over seeds i of cooc(i, j) / (pop_i^alpha * pop_j^beta), through the
    training playlists (seeds -> playlists -> tracks), so the T x T matrix is never built. A seed in
    more than `knn_max_playlists` playlists is read through a fixed random sample of them
    (`sample_rows`), which keeps the cost per seed flat as the dataset grows."""

    name = "item_knn"

    def __init__(self, train: PlaylistSet, pop: Popularity, cfg: BaselineConfig):
        super().__init__(pop)
        self.x = binary(train.tracks)
        self.xt = sample_rows(self.x.T.tocsr(), cfg.knn_max_playlists, cfg.seed)
        safe = np.maximum(pop.counts, 1.0)
        self.seed_w = (safe ** -cfg.knn_alpha).astype(np.float32)
        self.cand_w = (safe ** -cfg.knn_beta).astype(np.float32)

    def raw_scores(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        seeds = binary(ps.tracks[rows])
        seeds.data *= self.seed_w[seeds.indices]
        via_playlists = seeds @ self.xt
        return np.asarray((via_playlists @ self.x).todense(), dtype=np.float32) * self.cand_w[None, :]


class ItemKNNSource(SparseSource):
    name = "item_knn"
    Model = ItemKNN


SOURCES = [ItemKNNSource]
