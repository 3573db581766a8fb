"""Build small PlaylistSet / Vocab objects directly, for tests of models and metrics."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmcf.dense import DenseVocab
from preprocess.artifacts import PlaylistSet, Vocab
from preprocess.titles import normalize_title, title_chars
from tests.mpdfake import uri


def make_vocab(n_tracks: int, artist_of=lambda t: t // 4) -> Vocab:
    artists = np.array([artist_of(t) for t in range(n_tracks)], dtype=np.int32)
    n_art = int(artists.max()) + 1
    return Vocab(
        track_uri=np.array([uri("track", t) for t in range(n_tracks)]),
        track_name=np.array([f"track {t}" for t in range(n_tracks)]),
        track_count=np.ones(n_tracks, dtype=np.int64), track_artist=artists,
        track_album=np.arange(n_tracks, dtype=np.int32) // 2, track_duration=np.full(n_tracks, 200000),
        artist_uri=np.array([uri("artist", a) for a in range(n_art)]),
        artist_name=np.array([f"artist {a}" for a in range(n_art)]),
        artist_count=np.ones(n_art, dtype=np.int64),
        album_uri=np.array([uri("album", b) for b in range((n_tracks + 1) // 2)]),
    )


def whole_dense(vocab: Vocab, n_train: int = 100) -> DenseVocab:
    """A dense vocabulary that is the whole catalogue, in catalogue order (tests of the models)."""
    return DenseVocab(tracks=np.arange(vocab.n_tracks, dtype=np.int32), artists=np.arange(vocab.n_artists, dtype=np.int32),
                      track_count=np.asarray(vocab.track_count, dtype=np.int64), n_catalogue_tracks=vocab.n_tracks,
                      n_catalogue_artists=vocab.n_artists, min_count=1, n_train=n_train)


def _ordered(lists: list[list[int]], width: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.array([t for x in lists for t in x], dtype=np.int64)
    pos = np.array([p + 1 for x in lists for p in range(len(x))], dtype=np.int32)
    return sp.csr_matrix((pos, (rows, cols)), shape=(len(lists), width))


def make_set(seeds: list[list[int]], vocab: Vocab, titles: list[str] | None = None,
             holdouts: list[list[int]] | None = None, category: list[int] | None = None) -> PlaylistSet:
    n = len(seeds)
    titles = titles if titles is not None else [""] * n
    holdouts = holdouts if holdouts is not None else [[] for _ in range(n)]
    art_lists = [list(dict.fromkeys(int(vocab.track_artist[t]) for t in s)) for s in seeds]
    hold_art = [sorted({int(vocab.track_artist[t]) for t in h}) for h in holdouts]
    holdout = _ordered(holdouts, vocab.n_tracks)
    holdout.data[:] = 1
    hold_artists = _ordered(hold_art, vocab.n_artists)
    hold_artists.data[:] = 1
    return PlaylistSet(
        pid=np.arange(n, dtype=np.int64), title=np.array([normalize_title(t) for t in titles]),
        has_title=np.array([t != "" for t in titles]), title_chars=title_chars(titles),
        num_tracks=np.array([len(s) + len(h) for s, h in zip(seeds, holdouts)], dtype=np.int32),
        category=np.array(category if category is not None else [0] * n, dtype=np.int8),
        n_seeds=np.array([len(s) for s in seeds], dtype=np.int32), n_unknown=np.zeros(n, dtype=np.int32),
        tracks=_ordered(seeds, vocab.n_tracks), artists=_ordered(art_lists, vocab.n_artists),
        n_holdouts=np.array([len(h) for h in holdouts], dtype=np.int32),
        holdout=holdout.astype(np.int8), holdout_artists=hold_artists.astype(np.int8),
    )


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from threads, and a busy machine makes OpenMP barriers spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
