"""Scoring a read submission against the truth: the uris become integer ids once, so that
`common.metrics` scores all playlists as arrays instead of comparing strings per playlist."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.errors import PipelineError
from common.metrics import MAX_RECS, playlist_metrics
from preprocess.challenge_file import Challenge, Truth
from submission.csvio import SubmissionFile
from submission.verify import map_rows


def recommendation_matrix(sub: SubmissionFile, challenge: Challenge) -> np.ndarray:
    """int [P, 500] codes into sub.uris in challenge row order; -1 where nothing was listed.
    A pid's first row counts; unknown pids are ignored."""
    m = map_rows(sub, challenge)
    rec = np.full((len(challenge.seeds), MAX_RECS), -1, dtype=np.int64)
    if m.first_of_pid.all() and (sub.n_tracks == MAX_RECS).all():  # the usual case: whole rows at once
        rec[m.challenge_row] = sub.codes.reshape(len(sub), MAX_RECS)
        return rec
    col = np.arange(len(sub.codes)) - sub.indptr[m.row_of_entry]
    use = m.first_of_pid[m.row_of_entry] & (col < MAX_RECS)
    rec[m.challenge_row[m.row_of_entry[use]], col[use]] = sub.codes[use]
    return rec


def score(sub: SubmissionFile, challenge: Challenge, truth: Truth, artists: dict[str, str]) -> dict[str, np.ndarray]:
    """Per-playlist metrics in challenge row order; `truth` must cover exactly the challenge pids.

    Item ids: the submission's uri codes, then truth tracks nobody recommended. Dictionaries
    number the strings because Python caches a string's hash, which makes them faster here than
    hashing the text again in pandas."""
    index = {u: i for i, u in enumerate(sub.uris)}
    truth_item = np.fromiter((index.setdefault(u, len(index)) for u in truth.track_uri), dtype=np.int64,
                             count=len(truth.track_uri))
    a_index: dict[str, int] = {}
    item_artist = np.fromiter((-1 if (a := artists.get(u)) is None else a_index.setdefault(a, len(a_index))
                               for u in index), dtype=np.int64, count=len(index))
    truth_artist = item_artist[truth_item]
    for e in np.flatnonzero(truth_artist < 0).tolist():  # only when `artists` lacks a truth track
        truth_artist[e] = item_artist[truth_item[e]] = a_index.setdefault(truth.artist_uri[e], len(a_index))

    rows = np.repeat(challenge_rows(truth, challenge), np.diff(truth.indptr))
    g = _binary_csr(rows, truth_item, (len(challenge.seeds), len(index)))
    g_artist = _binary_csr(rows, truth_artist, (len(challenge.seeds), len(a_index)))
    rec = recommendation_matrix(sub, challenge)
    rec_artist = np.where(rec >= 0, item_artist[np.maximum(rec, 0)], -1)
    return playlist_metrics(rec, rec_artist, g, g_artist)


def challenge_rows(truth: Truth, challenge: Challenge) -> np.ndarray:
    """Challenge row of each truth playlist; refuses a truth file that does not match the challenge."""
    ch_pid = challenge.seeds.pid
    at = pd.Index(ch_pid).get_indexer(truth.pid)
    if (at < 0).any():
        extra = truth.pid[at < 0]
        raise PipelineError(f"{truth.path}: pid {extra[0]} is not in the challenge set {challenge.path} "
                            f"({len(extra)} such pid(s))")
    missing = np.setdiff1d(ch_pid, truth.pid)
    if missing.size:
        raise PipelineError(f"{truth.path}: no entry for challenge pid {missing[0]} ({missing.size} pid(s) missing)")
    return at.astype(np.int64)


def _binary_csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Set semantics: a track withheld twice is one element of G."""
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1
    return m
