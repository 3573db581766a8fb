"""Top-k over score rows with each row's seeds excluded, batched so memory stays bounded."""
from __future__ import annotations

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

    argpartition alone picks arbitrary members of a tie that straddles the k-th place, so a list cut
    at 500 and the first 500 of a list cut at 1,000 could differ; this keeps every list a prefix of
    a deeper one (ties are common in count-based scores such as title popularity)."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
    above = scores > kth[:, None]
    at = scores == kth[:, None]
    split = np.flatnonzero(above.sum(axis=1) + at.sum(axis=1) > k)  # rows whose tie straddles the cut
    if len(split):
        need = k - above[split].sum(axis=1)
        take = above[split] | (at[split] & (np.cumsum(at[split], axis=1) <= need[:, None]))
        part[split] = np.nonzero(take)[1].reshape(len(split), k)
    return part


DENSE_CELLS = 50_000_000  # score cells per dense block (200 MB of float32)


def batched_topk(score_fn: Callable[[np.ndarray], np.ndarray], exclude: sp.csr_matrix, k: int,
                 batch: int = 512, cells: int = DENSE_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """Apply score_fn(rows) -> dense [len(rows), T] in batches and keep only each batch's top k.

    The batch shrinks so that a block holds at most `cells` scores: at full MPD width (~600K tracks)
    512 rows would be 1.2 GB per block, and scorers make a few temporaries of that size."""
    n = exclude.shape[0]
    batch = max(1, min(batch, cells // max(exclude.shape[1], 1)))
    ids = np.full((n, k), -1, dtype=np.int32)
    vals = np.full((n, k), -np.inf, dtype=np.float32)
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        ids[rows], vals[rows] = topk_excluding(score_fn(rows), exclude[rows], k)
    return ids, vals
