"""Scoring recommendation lists (vocabulary ids) against withheld tracks, per category."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.metrics import list_metrics, summarize
from preprocess.artifacts import PlaylistSet, Vocab
from preprocess.mpd import load_json


def evaluate_ids(ids: np.ndarray, ps: PlaylistSet, vocab: Vocab) -> dict:
    """Metrics of ids [P, K] against ps.holdout (validation sets and test sets with known truth)."""
    return summarize(list_metrics(ids, ps, vocab.track_artist), ps.category)


def attach_truth(ps: PlaylistSet, truth_path: Path, vocab: Vocab) -> PlaylistSet:
    """Copy of ps with holdouts read from a truth.json (official schema), mapped into the vocabulary.

    Withheld tracks outside the vocabulary still count in |G| (n_holdouts)."""
    data = load_json(truth_path)
    try:
        by_pid = {int(p["pid"]): p["tracks"] for p in data["playlists"]}
    except (KeyError, TypeError, ValueError):
        raise PipelineError(f"{truth_path}: expected {{'playlists': [{{'pid', 'tracks'}}]}}") from None
    missing = [int(p) for p in ps.pid if int(p) not in by_pid]
    if missing:
        raise PipelineError(f"{truth_path}: no entry for challenge pid {missing[0]} ({len(missing)} missing)")
    try:
        uris = [[t["track_uri"] for t in by_pid[int(p)]] for p in ps.pid]
        artists = [[t["artist_uri"] for t in by_pid[int(p)]] for p in ps.pid]
    except (KeyError, TypeError):
        raise PipelineError(f"{truth_path}: every withheld track needs track_uri and artist_uri") from None
    n_holdouts = np.array([len(set(u)) for u in uris], dtype=np.int32)
    holdout = _rows_in_vocab(uris, vocab.track_uri)
    holdout_artists = _rows_in_vocab(artists, vocab.artist_uri)
    out = ps.subset(np.arange(len(ps)))
    out.holdout, out.holdout_artists, out.n_holdouts = holdout, holdout_artists, n_holdouts
    return out


def _rows_in_vocab(rows: list[list[str]], vocab_uris: np.ndarray) -> sp.csr_matrix:
    order = np.argsort(vocab_uris)
    flat = np.asarray([u for r in rows for u in r], dtype=vocab_uris.dtype)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    at = np.minimum(np.searchsorted(vocab_uris[order], flat), len(order) - 1)
    found = vocab_uris[order][at] == flat
    row_ids = np.repeat(np.arange(len(rows)), lengths)[found]
    m = sp.csr_matrix((np.ones(found.sum(), np.int8), (row_ids, order[at][found])),
                      shape=(len(rows), len(vocab_uris)))
    m.sum_duplicates()
    m.data[:] = 1
    return m
