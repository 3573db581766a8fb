"""The challenge metrics (SPEC section 1), vectorised over playlists.

Items are integer ids in any id space (vocabulary indices inside the pipeline, ids from a
factorisation of uris in `submission.evaluate`); -1 marks an empty slot in a list.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from preprocess.categories import CATEGORIES

MAX_RECS = 500
NO_CLICK = 51
METRICS = ("r_precision", "ndcg", "clicks")


def playlist_metrics(rec: np.ndarray, rec_artist: np.ndarray, truth: sp.csr_matrix,
                     truth_artist: sp.csr_matrix, n_truth: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-playlist R-precision, NDCG and clicks.

    rec, rec_artist: int [P, K] recommended items best first and their artists (-1 = none).
    truth: [P, N] withheld items (nonzeros); truth_artist: [P, M] their artists.
    n_truth: |G| per playlist when some withheld items lie outside `truth`'s columns (they can
    never be hit but still count); defaults to the row sizes of `truth`.
    """
    rec = np.asarray(rec, dtype=np.int64)[:, :MAX_RECS]
    rec_artist = np.asarray(rec_artist, dtype=np.int64)[:, :MAX_RECS]
    n_pl, k = rec.shape
    g = np.diff(truth.indptr) if n_truth is None else np.asarray(n_truth, dtype=np.int64)
    rows = np.repeat(np.arange(n_pl, dtype=np.int64), k).reshape(n_pl, k)
    hit = (rec >= 0) & _first_occurrence(rows, rec) & _member(rows, rec, truth)
    in_r = np.arange(k)[None, :] < g[:, None]

    track_hits = (hit & in_r).sum(axis=1)
    credit = ~hit & in_r & (rec_artist >= 0) & _member(rows, rec_artist, truth_artist)
    pairs = np.unique(rows[credit] * (truth_artist.shape[1] + 1) + rec_artist[credit])
    artist_hits = np.bincount(pairs // (truth_artist.shape[1] + 1), minlength=n_pl)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_prec = (track_hits + 0.25 * artist_hits) / g

    discount = 1.0 / np.log2(np.arange(2, MAX_RECS + 2))
    dcg = (hit * discount[:k]).sum(axis=1)
    idcg = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(g, MAX_RECS)]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg = dcg / idcg

    first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    clicks = np.where(first_hit >= 0, first_hit // 10, NO_CLICK).astype(np.float64)
    return {"r_precision": r_prec, "ndcg": ndcg, "clicks": clicks}


def summarize(per_playlist: dict[str, np.ndarray], category: np.ndarray) -> dict:
    """Means overall and per category id (categories absent from `category` are left out)."""
    out = {m: float(np.nanmean(v)) if len(v) else float("nan") for m, v in per_playlist.items()}
    out["per_category"] = {}
    for c in CATEGORIES:
        mask = category == c.id
        if mask.any():
            out["per_category"][str(c.id)] = {m: float(np.nanmean(v[mask])) for m, v in per_playlist.items()} | {
                "name": c.name, "playlists": int(mask.sum())}
    return out


def _first_occurrence(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """True where (row, item) appears for the first time reading each row left to right."""
    flat = rows.ravel() * (items.max(initial=0) + 2) + (items.ravel() + 1)
    _, first = np.unique(flat, return_index=True)
    mask = np.zeros(flat.size, dtype=bool)
    mask[first] = True
    return mask.reshape(items.shape)


def _member(rows: np.ndarray, items: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """items[p, j] is a nonzero column of truth row p."""
    width = truth.shape[1] + 1
    t_rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    keys = t_rows * width + truth.indices.astype(np.int64)
    valid = (items >= 0) & (items < truth.shape[1])
    q = rows * width + np.where(valid, items, 0)
    return valid & np.isin(q, keys)
