"""Popularity, title popularity and item co-occurrence kNN, all as sparse matrix products.

Each model scores a batch of playlists as a dense [B, T] block; `recommend` keeps only the
top k of each block, so memory is bounded by the batch, not by the number of playlists.
Tracks the model cannot score fall back to popularity, ranked below every scored track.
Popularity needs no scores at all: its list is the global order minus the seeds (`Popularity.top`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from common.sparse import binary, column_counts, popularity_order, sample_rows
from common.topk import DENSE_CELLS, batched_topk, fill_from_order, keep_first
from preprocess.artifacts import PlaylistSet


@dataclass
class BaselineConfig:
    knn_alpha: float = 0.5  # seed-side popularity damping (cosine = 0.5)
    knn_beta: float = 0.5  # candidate-side popularity damping
    knn_max_playlists: int = 1000  # a seed's co-occurrence is read from at most this many of its playlists
    title_min_playlists: int = 1  # a title needs this many training playlists to be used
    batch: int = 512
    # blocks of playlists scored at once by the item and artist kNN lists; 0 = one per core. The
    # lists are the same for any number (bench/bench_knn_blocks.py)
    threads: int = 0
    seed: int = 0  # which playlists the kNN sample keeps
    artist_alpha: float = 0.5  # artist kNN: seed-artist popularity damping
    artist_beta: float = 0.3  # artist kNN: candidate popularity damping


class Popularity:
    """Tracks ranked by the number of training playlists holding them."""

    name = "popularity"

    def __init__(self, train: PlaylistSet):
        self.counts = column_counts(train.tracks).astype(np.float32)
        self.prior = self.counts / max(self.counts.max(), 1.0)

    def score(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.prior, (len(rows), len(self.prior)))

    def order(self) -> np.ndarray:
        """All tracks best first (ties by id) for padding short lists."""
        return popularity_order(self.counts)

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The same lists as top-k over `score`, without scoring every track: each playlist's list is
        the first k of the global order that are not its seeds, so only k + (most seeds) ids are read."""
        order = self.order()
        n_seeds = np.diff(ps.tracks.indptr)
        head = order[:min(len(order), k + int(n_seeds.max(initial=0)))]
        is_seed = binary(ps.tracks.tocsr()[:, head]).toarray() > 0
        return keep_first(np.broadcast_to(head, is_seed.shape), np.broadcast_to(self.prior[head], is_seed.shape),
                          is_seed, k)


class _WithFallback:
    """Scores > 0 from the model land in (1, 2]; everything else keeps popularity order in [0, 1]."""

    # dense score cells per listed block (`batched_topk`). Sparse products make each row's scores
    # on their own, so small blocks cost nothing and keep the block's temporaries near the caches:
    # item kNN lists 1.6x faster at 4M cells than at 50M over 1M playlists (bench/bench_knn_blocks.py).
    # A dense scorer such as ALS wants large blocks instead (each reads every item factor once).
    block_cells = 4_000_000

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

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The same lists as top-k over `score`, from each title's sparse row instead of a dense
        [playlists, catalogue] block (4x faster over a 320K-track catalogue): the title's tracks by
        count (ties by id, seeds removed), then popularity order."""
        found = self.lookup(ps.title)
        ids = np.full((len(ps), k), -1, dtype=np.int32)
        scores = np.full((len(ps), k), -np.inf, dtype=np.float32)
        hit = np.flatnonzero(found >= 0)
        if hit.size:
            m = self.by_title[found[hit]].tocsr()
            row = np.repeat(np.arange(len(hit)), np.diff(m.indptr))
            top = np.zeros(len(hit), dtype=np.float32)
            np.maximum.at(top, row, m.data)  # the dense scorer's row maximum (seeds included)
            seeds = ps.tracks[hit].tocsr()
            seed_keys = np.repeat(np.arange(len(hit), dtype=np.int64), np.diff(seeds.indptr)) * m.shape[1] + seeds.indices
            keep = ~np.isin(row.astype(np.int64) * m.shape[1] + m.indices, seed_keys)
            row, col, val = row[keep], m.indices[keep], m.data[keep]
            order = np.lexsort((col, -val, row))
            row, col, val = row[order], col[order], val[order]
            rank = np.arange(len(row)) - np.searchsorted(row, row)
            sel = rank < k
            ids[hit[row[sel]], rank[sel]] = col[sel]
            scores[hit[row[sel]], rank[sel]] = (np.float32(1.0) + val[sel] / top[row[sel]]).astype(np.float32)
        fill_from_order(ids, scores, ps.tracks, self.pop.order(), self.pop.prior)
        return ids, scores

    def raw_scores(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        found = self.lookup(ps.title[rows])
        out = np.zeros((len(rows), self.by_title.shape[1]), dtype=np.float32)
        hit = np.flatnonzero(found >= 0)
        if hit.size:
            out[hit] = self.by_title[found[hit]].toarray()
        return out


class ItemKNN(_WithFallback):
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


class ArtistKNN(_WithFallback):
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


def recommend(model, ps: PlaylistSet, k: int = 500, batch: int = 512,
              threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Top-k vocabulary ids per playlist (seeds excluded) and their scores; threads: 0 = one per core."""
    if hasattr(model, "top"):
        return model.top(ps, k)
    return batched_topk(lambda rows: model.score(ps, rows), ps.tracks, k, batch,
                        cells=getattr(model, "block_cells", DENSE_CELLS), threads=threads)
