"""The compact artifacts every model reads: a vocabulary and playlist sets as sparse matrices.

Layout of an artifact folder (written by `python -m preprocess.build`):
  manifest.json   counts, options, vocabulary fingerprint
  vocab.npz       the catalogue: tracks and artists of every training and validation playlist (min
                  counts 1 by default), with names and the track -> artist map, ordered by their
                  count over the training playlists alone (then uri)
  train.npz       training playlists (full playlists)
  val.npz         validation playlists built like the challenge categories (seeds + holdouts; a seed
                  no training playlist holds is unknown, as a challenge seed outside the catalogue)
  val_full.npz    the same validation playlists whole, as training rows: models are selected on
                  val.npz, then refit on train + val_full ("all") for the challenge
  challenge.npz   the challenge playlists' seeds (when a challenge set was given)

Playlist x item matrices keep order: a stored value is 1 + the entry's position in the
playlist (the first occurrence for repeated tracks; for artists, their first track's position).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.io import fingerprint, load_npz, read_json, save_npz

FORMAT_VERSION = 3  # 2: the whole catalogue and val_full.npz; 3: ids by training counts, validation seeds unseen in training unknown


@dataclass
class Vocab:
    track_uri: np.ndarray  # str [T] full 'spotify:track:...' uris
    track_name: np.ndarray  # str [T]
    track_count: np.ndarray  # int64 [T] training + validation playlists containing the track
    track_artist: np.ndarray  # int32 [T] artist index, -1 when the artist is not kept
    track_album: np.ndarray  # int32 [T] index into album_uri
    track_duration: np.ndarray  # int64 [T] ms
    artist_uri: np.ndarray  # str [A]
    artist_name: np.ndarray  # str [A]
    artist_count: np.ndarray  # int64 [A] training + validation entries by the artist
    album_uri: np.ndarray  # str [B]

    @property
    def n_tracks(self) -> int:
        return len(self.track_uri)

    @property
    def n_artists(self) -> int:
        return len(self.artist_uri)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.track_uri.astype("S"), self.artist_uri.astype("S"), self.track_artist)


@dataclass
class PlaylistSet:
    """Playlists in vocabulary space. For training playlists `tracks` is the whole playlist;
    for validation and challenge playlists it is the seeds and `holdout*` the withheld part."""

    pid: np.ndarray  # int64 [P]
    title: np.ndarray  # str [P] normalised title, "" when absent
    has_title: np.ndarray  # bool [P]
    title_chars: np.ndarray  # uint8 [P, 25]
    num_tracks: np.ndarray  # int32 [P] full playlist length
    category: np.ndarray  # int8 [P] 1..10, 0 for training playlists
    n_seeds: np.ndarray  # int32 [P] seed tracks given, in-vocabulary or not
    n_unknown: np.ndarray  # int32 [P] seed tracks outside the vocabulary (validation: that no training playlist holds)
    tracks: sp.csr_matrix  # int32 [P, T] value = position + 1
    artists: sp.csr_matrix  # int32 [P, A] value = first position + 1
    n_holdouts: np.ndarray  # int32 [P] |G|, in-vocabulary or not (0 when unknown)
    holdout: sp.csr_matrix  # int8 [P, T] withheld tracks in the vocabulary (empty when unknown)
    holdout_artists: sp.csr_matrix  # int8 [P, A] artists of all withheld tracks

    def __len__(self) -> int:
        return len(self.pid)

    def subset(self, rows: np.ndarray) -> "PlaylistSet":
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v[rows] if not sp.issparse(v) else v[rows].tocsr()
        return PlaylistSet(**kw)

    def concat(self, other: "PlaylistSet") -> "PlaylistSet":
        """This set's playlists followed by other's (same vocabulary)."""
        kw = {}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            kw[f.name] = sp.vstack([a, b], format="csr") if sp.issparse(a) else np.concatenate([a, b])
        return PlaylistSet(**kw)


def save_vocab(path: Path, vocab: Vocab) -> None:
    save_npz(path, **{f.name: getattr(vocab, f.name) for f in fields(vocab)})


def load_vocab(path: Path) -> Vocab:
    z = load_npz(path)
    try:
        return Vocab(**{f.name: z[f.name] for f in fields(Vocab)})
    except KeyError as exc:
        raise PipelineError(f"{path}: missing array {exc}") from None


def save_playlists(path: Path, ps: PlaylistSet) -> None:
    arrays = {}
    for f in fields(ps):
        v = getattr(ps, f.name)
        if sp.issparse(v):
            v = v.tocsr()
            arrays.update({f"{f.name}.data": v.data, f"{f.name}.indices": v.indices,
                           f"{f.name}.indptr": v.indptr, f"{f.name}.shape": np.asarray(v.shape)})
        else:
            arrays[f.name] = v
    save_npz(path, **arrays)


def load_playlists(path: Path) -> PlaylistSet:
    z = load_npz(path)
    kw = {}
    try:
        for f in fields(PlaylistSet):
            if f.name in z:
                kw[f.name] = z[f.name]
            else:
                shape = tuple(int(s) for s in z[f"{f.name}.shape"])
                kw[f.name] = sp.csr_matrix((z[f"{f.name}.data"], z[f"{f.name}.indices"], z[f"{f.name}.indptr"]), shape=shape)
    except KeyError as exc:
        raise PipelineError(f"{path}: missing array {exc}") from None
    return PlaylistSet(**kw)


@dataclass
class Artifacts:
    folder: Path
    manifest: dict
    vocab: Vocab

    def playlists(self, name: str) -> PlaylistSet:
        """name is 'train', 'val', 'val_full', 'challenge', or 'all' (train + val_full: what the final
        models are refit on once validation has chosen their settings)."""
        if name == "all":
            return self.playlists("train").concat(self.playlists("val_full"))
        path = self.folder / f"{name}.npz"
        if not path.exists():
            raise PipelineError(f"{path}: missing; re-run preprocess.build")
        ps = load_playlists(path)
        if ps.tracks.shape[1] != self.vocab.n_tracks or ps.artists.shape[1] != self.vocab.n_artists:
            raise PipelineError(f"{path}: built with another vocabulary; re-run preprocess.build")
        return ps


def load_artifacts(folder: str | Path, expect_fingerprint: str | None = None) -> Artifacts:
    """Load and check an artifact folder; `expect_fingerprint` guards models trained on another vocabulary."""
    folder = Path(folder)
    manifest = read_json(folder / "manifest.json")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise PipelineError(f"{folder / 'manifest.json'}: unsupported artifact format; re-run preprocess.build")
    vocab = load_vocab(folder / "vocab.npz")
    if vocab.fingerprint != manifest.get("fingerprint"):
        raise PipelineError(f"{folder / 'vocab.npz'}: fingerprint does not match manifest.json; re-run preprocess.build")
    if expect_fingerprint is not None and expect_fingerprint != vocab.fingerprint:
        raise PipelineError(f"{folder}: vocabulary fingerprint {vocab.fingerprint} differs from the model's "
                            f"{expect_fingerprint}; retrain or point at the matching artifacts")
    return Artifacts(folder=folder, manifest=manifest, vocab=vocab)
