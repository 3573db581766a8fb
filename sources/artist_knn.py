"""Artist kNN: tracks of training playlists that share artists with the seeds. It still has
evidence where item kNN has none: a seed whose track is outside the catalogue keeps its artist."""
from __future__ import annotations

import numpy as np

from common.sparse import binary, column_counts, sample_rows
from preprocess.artifacts import PlaylistSet
from sources.sparse import BaselineConfig, Popularity, SparseSource, WithFallback


class ArtistKNN(WithFallback):
    """Tracks of training playlists that share artists with the seeds:
    score(j) = sum over training playlists q of overlap(seed artists, q) * [j in q] / pop_j^beta,
    each seed artist weighted by pop^-alpha. It reads ps.artists, which keeps the artists of seeds
    whose track is outside the catalogue, so it still has evidence where item kNN has none. As in
    item kNN, an artist in more than `knn_max_playlists` playlists is read through a fixed sample."""

    name = "artist_knn"

    def __init__(self, train: PlaylistSet, pop: Popularity, cfg: BaselineConfig):
        super().__init__(pop)
        self.x = binary(train.tracks)
        xa = binary(train.artists)
        self.xa_t = sample_rows(xa.T.tocsr(), cfg.knn_max_playlists, cfg.seed)
        self.seed_w = (np.maximum(column_counts(xa), 1.0) ** -cfg.artist_alpha).astype(np.float32)
        self.cand_w = (np.maximum(pop.counts, 1.0) ** -cfg.artist_beta).astype(np.float32)

    def raw_scores(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        seeds = binary(ps.artists[rows])
        seeds.data *= self.seed_w[seeds.indices]
        return np.asarray(((seeds @ self.xa_t) @ self.x).todense(), dtype=np.float32) * self.cand_w[None, :]


class ArtistKNNSource(SparseSource):
    name = "artist_knn"
    Model = ArtistKNN


SOURCES = [ArtistKNNSource]
