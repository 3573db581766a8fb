"""The challenge metrics (SPEC section 1), vectorised over playlists.

Items are integer ids in any id space (vocabulary indices inside the pipeline, ids from a
factorisation of uris in `submission.score`); -1 marks an empty slot in a list.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from common.categories import CATEGORIES

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
    truth, truth_artist = _structure(truth), _structure(truth_artist)
    g = np.diff(truth.indptr) if n_truth is None else np.asarray(n_truth, dtype=np.int64)
    rows = np.repeat(np.arange(n_pl, dtype=np.int64), k).reshape(n_pl, k)
    in_g = _member(rows, rec, truth)
    hit = in_g & first_occurrence(rec)
    in_r = np.arange(k)[None, :] < g[:, None]

    track_hits = (hit & in_r).sum(axis=1)
    credit = ~in_g & in_r & (rec_artist >= 0) & _member(rows, rec_artist, truth_artist)
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


def list_metrics(ids: np.ndarray, ps, track_artist: np.ndarray) -> dict[str, np.ndarray]:
    """Per-playlist metrics of track-id lists [P, K] (-1 = empty) against a playlist set's withheld
    tracks (ps.holdout, ps.holdout_artists, ps.n_holdouts; `preprocess.artifacts.PlaylistSet`),
    with track_artist mapping track ids to artist ids (-1 = none) for the artist credit."""
    ids = np.asarray(ids)
    artist = np.where(ids >= 0, track_artist[np.maximum(ids, 0)], -1)
    return playlist_metrics(ids, artist, ps.holdout, ps.holdout_artists, ps.n_holdouts)


def validation_rows(category: np.ndarray, scoreable: np.ndarray, categories: list[int] | None, limit: int,
                    seed: int) -> np.ndarray:
    """A fixed seeded subset (at most `limit`) of the scoreable validation playlists (with a withheld
    track, and whatever else the model needs) of `categories` (None: all): what model selection
    scores after each check, the same every check."""
    keep = np.asarray(scoreable, dtype=bool) & (np.isin(category, categories) if categories is not None else True)
    rows = np.flatnonzero(keep)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng([seed, 2]).choice(rows, limit, replace=False))
    return rows


def summarize(per_playlist: dict[str, np.ndarray], category: np.ndarray) -> dict:
    """Means overall (the official definition: over playlists) and per category id (categories absent
    from `category` are left out), and `category_mean`: the mean of the category means.

    Why both: the official challenge set holds 1,000 playlists of each category, where the two
    overall means coincide; a local set may hold more of one category (1,000 title-only playlists
    for a tight estimate of that category), and then the category mean is the estimate of the
    official overall."""
    out = {m: float(np.nanmean(v)) if len(v) else float("nan") for m, v in per_playlist.items()}
    out["per_category"] = {}
    for c in CATEGORIES:
        mask = category == c.id
        if mask.any():
            out["per_category"][str(c.id)] = {m: float(np.nanmean(v[mask])) for m, v in per_playlist.items()} | {
                "name": c.name, "playlists": int(mask.sum())}
    rows = out["per_category"].values()
    out["category_mean"] = {m: float(np.mean([r[m] for r in rows])) if rows else float("nan") for m in per_playlist}
    return out


def _structure(m: sp.spmatrix) -> sp.csr_matrix:
    """Binary CSR with sorted, unique indices: G is a set, and sorted rows make lookups binary searches."""
    m = m.tocsr()
    if not m.data.all():
        m = m.copy()
        m.eliminate_zeros()
    out = sp.csr_matrix((np.ones(len(m.indices), dtype=np.int8), m.indices, m.indptr), shape=m.shape)
    out.sum_duplicates()
    out.data[:] = 1
    return out


def first_occurrence(items: np.ndarray) -> np.ndarray:
    """bool [P, K]: True where an item appears for the first time reading its row left to right,
    False at empty slots (< 0).

    Row-wise sorts: one plain sort proves the usual case (no repeats) cheaply; the stable sort runs
    only when some row repeats an item."""
    valid = items >= 0
    ordered = np.sort(items, axis=1)
    if not ((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).any():
        return valid
    order = np.argsort(items, axis=1, kind="stable")
    ordered = np.take_along_axis(items, order, axis=1)
    first_sorted = np.ones(items.shape, dtype=bool)
    first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.empty(items.shape, dtype=bool)
    np.put_along_axis(first, order, first_sorted, axis=1)
    return first & valid


def _member(rows: np.ndarray, items: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """items[p, j] is a column of truth row p (truth canonical, so each lookup is a binary search)."""
    valid = (items >= 0) & (items < truth.shape[1])
    found = truth[rows.ravel(), np.where(valid, items, 0).ravel()]
    return valid & (np.asarray(found).reshape(items.shape) != 0)
