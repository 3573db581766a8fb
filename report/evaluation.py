"""Scoring recommendation lists (vocabulary ids) against withheld tracks, per category."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.errors import PipelineError
from common.metrics import list_metrics, summarize
from preprocess.artifacts import PlaylistSet, Vocab
from preprocess.challenge_file import read_truth


def evaluate_ids(ids: np.ndarray, ps: PlaylistSet, vocab: Vocab) -> dict:
    """Metrics of ids [P, K] against ps.holdout (validation sets and test sets with known truth)."""
    return summarize(list_metrics(ids, ps, vocab.track_artist), ps.category)


def attach_truth(ps: PlaylistSet, truth_path: Path, vocab: Vocab) -> PlaylistSet:
    """Copy of ps with holdouts read from a truth.json (official schema), mapped into the vocabulary.

    Withheld tracks outside the vocabulary still count in |G| (n_holdouts)."""
    truth = read_truth(truth_path)
    at = pd.Index(truth.pid).get_indexer(ps.pid)
    if (at < 0).any():
        missing = ps.pid[at < 0]
        raise PipelineError(f"{truth_path}: no entry for challenge pid {missing[0]} ({len(missing)} missing)")
    lengths = np.diff(truth.indptr)[at]
    row = np.repeat(np.arange(len(ps)), lengths)
    entry = truth.indptr[at][row] + np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    uris, artists = truth.track_uri[entry], truth.artist_uri[entry]
    distinct = np.unique(row * (len(uris) + 1) + pd.factorize(uris)[0])
    out = ps.subset(np.arange(len(ps)))
    out.holdout = _rows_in_vocab(row, uris, vocab.track_uri, len(ps))
    out.holdout_artists = _rows_in_vocab(row, artists, vocab.artist_uri, len(ps))
    out.n_holdouts = np.bincount(distinct // (len(uris) + 1), minlength=len(ps)).astype(np.int32)
    return out


def _rows_in_vocab(row: np.ndarray, uris: np.ndarray, vocab_uris: np.ndarray, n_rows: int) -> sp.csr_matrix:
    """Binary [n_rows, V]: row[e] holds uris[e] where the vocabulary has it."""
    order = np.argsort(vocab_uris)
    flat = uris.astype(vocab_uris.dtype)
    at = np.minimum(np.searchsorted(vocab_uris[order], flat), len(order) - 1)
    found = vocab_uris[order][at] == flat
    m = sp.csr_matrix((np.ones(found.sum(), np.int8), (row[found], order[at][found])),
                      shape=(n_rows, len(vocab_uris)))
    m.sum_duplicates()
    m.data[:] = 1
    return m
