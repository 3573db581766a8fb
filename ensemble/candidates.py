"""Stage one of the two-stage system: candidate tracks per playlist from several models' top lists.

A *source* is a model's ranked list per playlist: either precomputed `(ids [P, K], scores [P, K])`
(-1 = empty slot) or a scorer with `.score(ps, rows) -> dense [B, T]` (baselines, MMCF, the title
model), or with `.top(ps, k) -> (ids, scores)` where it has an exact shortcut (popularity).
Candidates are the union of each source's top N, kept as flat (row, track) pairs sorted by row, so
later stages never loop over playlists or candidates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.topk import batched_topk
from preprocess.artifacts import PlaylistSet
from common.categories import CATEGORIES


@dataclass
class SourceList:
    """One model's ranked list per playlist, seeds already removed."""

    name: str
    ids: np.ndarray  # int32 [P, K], best first, -1 = empty
    scores: np.ndarray  # float32 [P, K]


@dataclass
class Candidates:
    """Flat (row, track) pairs sorted by row, then by merge order (best first)."""

    indptr: np.ndarray  # int64 [P + 1]: pairs of row r are indptr[r]:indptr[r+1]
    row: np.ndarray  # int64 [M]
    track: np.ndarray  # int32 [M]
    merge_rank: np.ndarray  # int32 [M] position in the row's merged list
    n_sources: np.ndarray  # int8 [M] how many sources put the track in their top N

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def rows_slice(self, start: int, stop: int) -> "Candidates":
        """Rows start..stop-1 renumbered from 0 (pairs of consecutive rows are contiguous)."""
        a, b = int(self.indptr[start]), int(self.indptr[stop])
        return Candidates(indptr=self.indptr[start:stop + 1] - a, row=self.row[a:b] - start, track=self.track[a:b],
                          merge_rank=self.merge_rank[a:b], n_sources=self.n_sources[a:b])

    def to_dense(self, width: int) -> np.ndarray:
        """int32 [P, width] in merge order, -1 padded (for recall tables and fallbacks)."""
        out = np.full((self.n_rows, width), -1, dtype=np.int32)
        keep = self.merge_rank < width
        out[self.row[keep], self.merge_rank[keep]] = self.track[keep]
        return out


def as_source(name: str, src: Any, ps: PlaylistSet, k: int, batch: int = 512) -> SourceList:
    """A SourceList of depth k from a scorer (its top k is computed here) or an (ids, scores) pair
    (cut to k, so a list saved deeper by an earlier stage gives the reranker what a scorer would).

    Seeds are removed from precomputed lists too, so nothing downstream can ever recommend one."""
    if hasattr(src, "top"):
        return SourceList(name, *src.top(ps, k))
    if hasattr(src, "score"):
        return SourceList(name, *batched_topk(lambda rows: src.score(ps, rows), ps.tracks, k, batch))
    try:
        ids, scores = src
    except (TypeError, ValueError):
        raise PipelineError(f"source {name}: expected a scorer with .score(ps, rows) "
                            "or an (ids, scores) pair") from None
    ids = np.asarray(ids)
    scores = np.asarray(scores, dtype=np.float32)
    if ids.ndim != 2 or ids.shape != scores.shape or ids.shape[0] != len(ps):
        raise PipelineError(f"source {name}: ids {ids.shape} and scores {scores.shape} must both be "
                            f"[{len(ps)} playlists, K]")
    if ids.size and (ids.max() >= ps.tracks.shape[1] or ids.min() < -1):
        raise PipelineError(f"source {name}: track ids outside 0..{ps.tracks.shape[1] - 1} (and -1 for empty)")
    ids, scores = ids[:, :k].astype(np.int32, copy=True), scores[:, :k]  # as deep as a scorer's list
    ids[is_member(np.arange(len(ps))[:, None], ids, ps.tracks)] = -1
    return SourceList(name, ids, scores)


def merge_candidates(sources: list[SourceList], ps: PlaylistSet, depth: dict[str, int], total: int,
                     cold_depth: dict[str, int] | None = None, default_depth: int = 0) -> Candidates:
    """Union of each source's top `depth[name]` tracks (`cold_depth` for playlists without a seed in
    the vocabulary), ordered by each track's best rank in any source (ties: source order, then
    track id), cut to `total` per playlist."""
    if not sources:
        raise PipelineError("candidates: no sources given")
    n_rows, n_tracks = len(ps), ps.tracks.shape[1]
    cold = np.diff(ps.tracks.indptr) == 0
    cold_depth = depth if cold_depth is None else cold_depth
    rows_all, tracks_all, ranks_all, src_all = [], [], [], []
    for s_idx, src in enumerate(sources):
        n_warm = min(depth.get(src.name, default_depth), src.ids.shape[1])
        n_cold = min(cold_depth.get(src.name, depth.get(src.name, default_depth)), src.ids.shape[1])
        limit = np.where(cold, n_cold, n_warm)
        rank = np.broadcast_to(np.arange(src.ids.shape[1], dtype=np.int32), src.ids.shape)
        keep = (src.ids >= 0) & (rank < limit[:, None])
        r, c = np.nonzero(keep)
        rows_all.append(r.astype(np.int64))
        tracks_all.append(src.ids[r, c].astype(np.int64))
        ranks_all.append(c.astype(np.int32))
        src_all.append(np.full(len(r), s_idx, dtype=np.int16))
    row = np.concatenate(rows_all)
    track = np.concatenate(tracks_all)
    rank = np.concatenate(ranks_all)
    src = np.concatenate(src_all)
    key = row * n_tracks + track
    order = np.lexsort((src, rank, key))
    key, rank, src = key[order], rank[order], src[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    n_src = np.diff(np.r_[first, len(key)]).astype(np.int8)
    key, rank, src = key[first], rank[first], src[first]
    row, track = key // n_tracks, (key % n_tracks).astype(np.int32)
    order = np.lexsort((track, src, rank, row))
    row, track, n_src = row[order], track[order], n_src[order]
    pos = _position_in_row(row, n_rows)
    keep = pos < total
    row, track, n_src, pos = row[keep], track[keep], n_src[keep], pos[keep]
    indptr = np.r_[0, np.cumsum(np.bincount(row, minlength=n_rows))].astype(np.int64)
    return Candidates(indptr=indptr, row=row, track=track, merge_rank=pos.astype(np.int32), n_sources=n_src)


def candidate_recall(ids: np.ndarray, ps: PlaylistSet, ks: tuple[int, ...] = (500, 1000, 2000)) -> dict:
    """Share of each playlist's withheld tracks among its first k candidates, averaged overall and per
    category; |G| counts withheld tracks outside the vocabulary too (they can never be found)."""
    ids = np.asarray(ids)
    hit = is_member(np.arange(len(ps))[:, None], ids, ps.holdout)
    cum = np.cumsum(hit, axis=1)
    g = ps.n_holdouts.astype(np.float64)
    valid = g > 0
    out: dict = {"per_category": {}}
    for k in ks:
        found = cum[:, min(k, ids.shape[1]) - 1] if ids.shape[1] else np.zeros(len(ps))
        rec = np.where(valid, found / np.maximum(g, 1), np.nan)
        out[f"recall@{k}"] = float(np.nanmean(rec)) if valid.any() else float("nan")
        for c in CATEGORIES:
            mask = (ps.category == c.id) & valid
            if mask.any():
                out["per_category"].setdefault(str(c.id), {"name": c.name, "playlists": int(mask.sum())})
                out["per_category"][str(c.id)][f"recall@{k}"] = float(rec[mask].mean())
    return out


def is_member(rows: np.ndarray, items: np.ndarray, m: sp.csr_matrix) -> np.ndarray:
    """items[i, j] is a stored column of m's row rows[i] (broadcast); -1 items are never members."""
    rows, items = np.broadcast_arrays(np.asarray(rows, dtype=np.int64), np.asarray(items, dtype=np.int64))
    found = lookup_csr(m, rows.ravel(), items.ravel(), missing=0) != 0
    return found.reshape(items.shape)


def lookup_csr(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, missing: float = 0.0) -> np.ndarray:
    """m[rows[i], cols[i]] for flat index arrays without densifying m; `missing` where not stored
    (or where a column is negative)."""
    m = m.tocsr()
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    width = m.shape[1] + 1
    nnz_rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = nnz_rows * width + m.indices.astype(np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    valid = (cols >= 0) & (cols < m.shape[1])
    q = rows * width + np.where(valid, cols, 0)
    at = np.searchsorted(keys, q)
    at_c = np.minimum(at, max(len(keys) - 1, 0))
    hit = valid & (at < len(keys))
    if len(keys):
        hit &= keys[at_c] == q
    out = np.full(len(q), missing, dtype=np.float64)
    if len(keys):
        out[hit] = m.data[at_c[hit]]
    return out


def _position_in_row(row: np.ndarray, n_rows: int) -> np.ndarray:
    """0-based index of each entry within its row (row must be sorted)."""
    starts = np.r_[0, np.cumsum(np.bincount(row, minlength=n_rows))[:-1]]
    return np.arange(len(row)) - starts[row]
