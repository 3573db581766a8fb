"""The challenge set and its truth, read in one place for the preprocessing, the submission checks
and both evaluations, so a file one accepts none refuses.

Both files are in the MPD playlist schema: they share the slice reader's decoder and checks
(preprocess.slices), so a seed or withheld track is refused for exactly what would refuse it in a
slice. A challenge set is small (10,000 playlists), so its seeds stay strings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from common.categories import infer_categories
from common.errors import PipelineError
from preprocess.slices import (SLICE, URI_KEYS, Doc, Int64, Playlist, Schema, TrackRef, entry_uris, ids_ok,
                               playlist_columns, uri_column, uri_matrix, uris_ok)


@dataclass
class Slice:
    """Playlists as flat columns; `indptr[i]:indptr[i+1]` are playlist i's entries."""

    path: Path
    pid: np.ndarray  # int64 [P]
    name: list[str]  # raw title, "" when the key is absent
    has_name: np.ndarray  # bool [P]
    num_tracks: np.ndarray  # int32 [P], as declared by the file
    indptr: np.ndarray  # int64 [P+1]
    pos: np.ndarray  # int32 [N]
    track_uri: np.ndarray  # '<U36' [N]
    artist_uri: np.ndarray  # '<U37' [N]

    def __len__(self) -> int:
        return len(self.pid)


def playlists_to_slice(path: str | Path, playlists: list[dict]) -> Slice:
    """Playlist objects already in memory (recommend.py's one playlist) checked and flattened as a
    challenge set's are; `path` names them in errors."""
    path = Path(path)
    try:
        decoded = msgspec.convert(playlists, list[Playlist])
    except msgspec.ValidationError as exc:
        raise SLICE.invalid(path, str(exc), {"playlists": playlists}) from None
    return _flatten(path, decoded, {"playlists": playlists})


def _flatten(path: Path, playlists: list[Playlist], data: Any = None) -> Slice:
    cols, entries = playlist_columns(playlists)
    uris = uri_matrix(entry_uris(entries), len(entries), URI_KEYS)
    if uris is None or not ids_ok(uris, URI_KEYS):
        raise SLICE.invalid(path, "malformed uri", data)
    return Slice(path=path, **cols, pos=np.fromiter((t.pos for t in entries), dtype=np.int32, count=len(entries)),
                 **{key: uri_column(uris, URI_KEYS, key) for key in ("track_uri", "artist_uri")})


@dataclass
class Challenge:
    """A challenge set: seeds as a `Slice` (names absent for the no-title categories)."""

    path: Path
    seeds: Slice


def read_challenge(path: str | Path) -> Challenge:
    """Validate a challenge set as a slice, and that no pid repeats or has more seeds than num_tracks."""
    path = Path(path)
    seeds = _flatten(path, SLICE.playlists(path))
    _refuse_repeats(path, seeds.pid)
    short = np.flatnonzero(seeds.num_tracks < np.diff(seeds.indptr))
    if short.size:
        raise PipelineError(f"{path}: pid {seeds.pid[short[0]]} has more seed tracks than num_tracks")
    return Challenge(path=path, seeds=seeds)


def _refuse_repeats(path: Path, pids: np.ndarray) -> None:
    uniq, counts = np.unique(pids, return_counts=True)
    if (counts > 1).any():
        raise PipelineError(f"{path}: pid {uniq[counts > 1][0]} appears more than once")


def seed_categories(seeds: Slice) -> np.ndarray:
    """Category id of each playlist from its seed count, title and seed positions (0 where none fits)."""
    n_seeds = np.diff(seeds.indptr)
    row = np.repeat(np.arange(len(seeds), dtype=np.int64), n_seeds)
    order = np.lexsort((seeds.pos, row))
    rank = np.arange(len(row)) - seeds.indptr[row]
    off = np.bincount(row[seeds.pos[order] != rank], minlength=len(seeds))
    return infer_categories(n_seeds, seeds.has_name, off == 0)


@dataclass
class Truth:
    """Withheld tracks per playlist, flattened; entries indptr[i]:indptr[i+1] belong to pid[i]."""

    path: Path
    pid: np.ndarray  # int64 [P]
    indptr: np.ndarray  # int64 [P+1]
    track_uri: np.ndarray  # object [N]
    artist_uri: np.ndarray  # object [N]


class _TruthPlaylist(msgspec.Struct, gc=False):
    pid: Int64
    tracks: list[TrackRef]


def _truth_playlist_problem(pl: dict) -> str | None:
    return None if pl["tracks"] else "no withheld tracks (the metrics need at least one)"


TRUTH = Schema(msgspec.json.Decoder(Doc[_TruthPlaylist]), ("track_uri", "artist_uri"), _truth_playlist_problem)


def read_truth(path: str | Path) -> Truth:
    """Validate the truth schema; the first problem ends with one line naming file and pid."""
    path = Path(path)
    pls = TRUTH.playlists(path)
    track_uri = [t.track_uri for pl in pls for t in pl.tracks]
    artist_uri = [t.artist_uri for pl in pls for t in pl.tracks]
    if not (all(pl.tracks for pl in pls) and uris_ok(track_uri, "track_uri") and uris_ok(artist_uri, "artist_uri")):
        raise TRUTH.invalid(path, "invalid truth entries")
    pid = np.fromiter((pl.pid for pl in pls), dtype=np.int64, count=len(pls))
    _refuse_repeats(path, pid)
    indptr = np.zeros(len(pid) + 1, dtype=np.int64)
    np.cumsum([len(pl.tracks) for pl in pls], out=indptr[1:])
    return Truth(path=path, pid=pid, indptr=indptr, track_uri=np.asarray(track_uri, dtype=object),
                 artist_uri=np.asarray(artist_uri, dtype=object))
