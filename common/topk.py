"""Top-k over score rows with each row's seeds excluded, batched so memory stays bounded."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import scipy.sparse as sp


def topk_excluding(scores: np.ndarray, exclude: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k columns per row of a dense [B, T] block, never an excluded (nonzero) column.

    Returns ids int32 [B, k] (-1 where fewer than k columns have a finite score) and scores.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
    scores[rows, exclude.indices] = -np.inf
    k_eff = min(k, scores.shape[1])
    part = _best_columns(scores, k_eff) if k_eff < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)  # ties broken by column id for reproducibility
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1)
    ids[~np.isfinite(vals)] = -1
    if k_eff < k:
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return ids, vals


def _best_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best columns per row, unordered, with ties at the cut going to the lowest column ids.

    A selection alone picks arbitrary members of a tie that straddles the k-th place, so a list cut
    at 500 and the first 500 of a list cut at 1,000 could differ; this keeps every list a prefix of
    a deeper one (ties are common in count-based scores such as title popularity). torch's top-k
    finds the k + 1 best values (threaded; ALS's lists at 100K 3.6x faster than with numpy's
    argpartition and its whole-row tie checks: bench/bench_topk.py); only the rows whose k-th value
    ties the (k + 1)-th are then cut again in numpy, where the tie's lowest ids are kept."""
    import torch  # here, not at the top: commands that never list stay free of torch's start-up

    vals, part = (t.numpy() for t in torch.topk(torch.from_numpy(scores), k + 1, dim=1))
    if np.isnan(vals).any():  # torch ranks NaN first; a NaN is never listed (in place: the caller's copy)
        scores[np.isnan(scores)] = -np.inf
        vals, part = (t.numpy() for t in torch.topk(torch.from_numpy(scores), k + 1, dim=1))
    kth = vals[:, k - 1]
    part = part[:, :k]
    split = np.flatnonzero(vals[:, k] == kth)  # rows whose tie straddles the cut
    if len(split):
        tied = scores[split]
        take = tied > kth[split, None]
        r, c = np.nonzero(tied == kth[split, None])  # by row, then by column id
        rank = np.arange(len(r)) - np.searchsorted(r, r)  # place of each tied column within its row
        keep = rank < (k - take.sum(axis=1))[r]
        take[r[keep], c[keep]] = True
        part[split] = np.nonzero(take)[1].reshape(len(split), k)
    return part


def keep_first(ids: np.ndarray, scores: np.ndarray, drop: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first k slots that `drop` does not mark, in their order, as int32 ids and float32
    scores, -1 / -inf after them: a ranked list with its seeds (or empty slots) taken out."""
    pick = np.argsort(drop, axis=1, kind="stable")[:, :k]
    gone = np.take_along_axis(drop, pick, axis=1)
    out_ids = np.where(gone, -1, np.take_along_axis(ids, pick, axis=1)).astype(np.int32)
    out_scores = np.where(gone, -np.inf, np.take_along_axis(scores, pick, axis=1)).astype(np.float32)
    if out_ids.shape[1] < k:
        out_ids = np.pad(out_ids, ((0, 0), (0, k - out_ids.shape[1])), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, k - out_scores.shape[1])), constant_values=-np.inf)
    return out_ids, out_scores


DENSE_CELLS = 50_000_000  # score cells per dense block (200 MB of float32)


def batched_topk(score_fn: Callable[[np.ndarray], np.ndarray], exclude: sp.csr_matrix, k: int,
                 batch: int = 512, cells: int = DENSE_CELLS, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Apply score_fn(rows) -> dense [len(rows), T] in batches and keep only each batch's top k.

    The batch shrinks so that a block holds at most `cells` scores (at least one row). With
    `threads` > 1 (0: one per core) blocks are scored at once, one per thread (scipy's sparse
    products and numpy's sorts release the GIL), but never more than DENSE_CELLS scores in all, so
    memory does not grow with the core count; each block writes its own rows, so the lists are the
    same for any thread count. score_fn must then be thread-safe (read-only over its model)."""
    n, width = exclude.shape[0], max(exclude.shape[1], 1)
    batch = max(1, min(batch, cells // width))
    threads = max(1, min(threads or cores(), DENSE_CELLS // (batch * width)))
    ids = np.full((n, k), -1, dtype=np.int32)
    vals = np.full((n, k), -np.inf, dtype=np.float32)

    def block(start: int) -> None:
        rows = np.arange(start, min(start + batch, n))
        ids[rows], vals[rows] = topk_excluding(score_fn(rows), exclude[rows], k)

    starts = range(0, n, batch)
    if threads == 1:  # in the caller's thread, which keeps its state (torch's grad mode, say)
        for start in starts:
            block(start)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(block, starts))  # list(): a block's exception is raised here
    return ids, vals


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fill_from_order(ids: np.ndarray, scores: np.ndarray, exclude: sp.csr_matrix, fill_order: np.ndarray,
                    fill_score: float | np.ndarray = 0.0) -> int:
    """Fill -1 slots in place with the first tracks of fill_order that are neither excluded nor
    already listed in that row; returns the number of slots filled. fill_score: the score of a
    filled slot, one value or one per track id (e.g. the popularity a fallback ranks by)."""
    rows = np.flatnonzero((ids < 0).any(axis=1))
    if rows.size == 0 or len(fill_order) == 0:
        return 0
    sub_ids, sub_ex = ids[rows], exclude[rows]
    k = ids.shape[1]
    n_ex = np.diff(sub_ex.indptr)
    # at most k listed + n_ex excluded ids can be blocked, so this prefix always suffices
    cand = np.asarray(fill_order[:k + int(n_ex.max(initial=0))], dtype=np.int64)
    width = int(max(exclude.shape[1], cand.max(initial=0) + 1, ids.max(initial=0) + 1)) + 1
    r = np.arange(len(rows), dtype=np.int64)
    listed = sub_ids >= 0
    blocked = np.concatenate([np.repeat(r, n_ex) * width + sub_ex.indices,
                              np.repeat(r, listed.sum(axis=1)) * width + sub_ids[listed]])
    ok = ~np.isin(r[:, None] * width + cand[None, :], blocked)
    cand_rank = np.cumsum(ok, axis=1) - 1
    missing = ~listed
    miss_rank = np.cumsum(missing, axis=1) - 1
    n_fill = np.minimum(missing.sum(axis=1), ok.sum(axis=1))
    take_c = ok & (cand_rank < n_fill[:, None])
    take_m = missing & (miss_rank < n_fill[:, None])
    mr, mc = np.nonzero(take_m)  # row-major: pairs up with the candidates row by row, rank by rank
    sub_ids[mr, mc] = np.broadcast_to(cand, ok.shape)[take_c]
    sub_scores = scores[rows]
    sub_scores[mr, mc] = fill_score[sub_ids[mr, mc]] if isinstance(fill_score, np.ndarray) else fill_score
    ids[rows], scores[rows] = sub_ids, sub_scores
    return int(n_fill.sum())
