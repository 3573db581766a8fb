"""What the sparse sources share: the [baselines] settings, popularity (a source of its own, the
fallback below every other sparse source's scored tracks and the filler of short lists), the
build-on-load adapter, and `recommend`, which lists any scorer in bounded blocks.

Popularity, title popularity and item and artist kNN are sparse matrix products over the training
playlists, built in seconds, so fitting is building, nothing is saved, and loading builds again.
Each scores a batch of playlists as a dense [B, T] block and `recommend` keeps only each block's
top k, so memory is bounded by the block, not by the number of playlists.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from common.sparse import binary, column_counts, popularity_order
from common.topk import DENSE_CELLS, batched_topk, keep_first
from preprocess.artifacts import PlaylistSet
from sources.base import FitContext


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


class WithFallback:
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


def recommend(model: Any, ps: PlaylistSet, k: int = 500, batch: int = 512,
              threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Top-k catalogue ids per playlist (seeds excluded) and their scores, from the model's own `top`
    where it has one; threads: 0 = one per core."""
    if hasattr(model, "top"):
        return model.top(ps, k)
    return batched_topk(lambda rows: model.score(ps, rows), ps.tracks, k, batch,
                        cells=getattr(model, "block_cells", DENSE_CELLS), threads=threads)


class SparseSource:
    """A sparse model as a source (sources/base.py): `build` makes the model from the playlists."""

    section: ClassVar[str] = "baselines"
    Config: ClassVar[type | None] = None  # [baselines] belongs to the pipeline's own sections
    stage: ClassVar[str] = "baselines"
    name: ClassVar[str]
    Model: ClassVar[type]  # built from (training playlists, their popularity, the [baselines] settings)

    def __init__(self, model: Any, settings: BaselineConfig):
        self.model, self.batch, self.threads, self.selected = model, settings.batch, settings.threads, {}

    @classmethod
    def build(cls, train: PlaylistSet, settings: BaselineConfig) -> Any:
        return cls.Model(train, Popularity(train), settings)

    @classmethod
    def fit(cls, train: PlaylistSet, settings: BaselineConfig, ctx: FitContext) -> "SparseSource":
        return cls(cls.build(train, settings), settings)

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return recommend(self.model, ps, k=k, batch=self.batch, threads=self.threads)

    def save(self, folder: Path) -> None:
        """Nothing to keep: the model is its training playlists."""

    @classmethod
    def load(cls, folder: Path, train: PlaylistSet, settings: BaselineConfig, ctx: FitContext) -> "SparseSource":
        return cls.fit(train, settings, ctx)
