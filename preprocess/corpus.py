"""A whole folder of slices with uris as dense global ids, built so the main process never holds
per-entry strings: at 66M entries those alone would not fit a small machine.

Slices are read in worker processes (`map_ordered`), each reduced to its unique ids
(preprocess.slices.read_slice_ids); here only those are merged, in file order, so ids and every
output are the same for any number of workers.
"""
from __future__ import annotations

import collections
import itertools
import multiprocessing
import multiprocessing.pool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from common.errors import PipelineError
from common.progress import progress
from preprocess.slices import ID_DTYPE, object_array, read_slice_ids, slice_files


@dataclass
class Corpus:
    """A whole folder of slices with uris mapped to dense global ids (ids in first-seen key order)."""

    files: list[Path]
    slice_of: np.ndarray  # int32 [P] index into files
    pid: np.ndarray  # int64 [P]
    name: np.ndarray  # object [P] raw title, "" when absent
    has_name: np.ndarray  # bool [P]
    num_tracks: np.ndarray  # int32 [P] as declared
    indptr: np.ndarray  # int64 [P+1]
    track: np.ndarray  # int32 [N] global track id per entry, playlist order
    first_track: np.ndarray  # bool [N]
    first_artist: np.ndarray  # bool [N]
    track_id: np.ndarray  # S22 [T]
    track_name: np.ndarray  # object [T]
    track_artist: np.ndarray  # int32 [T] global artist id
    track_album: np.ndarray  # int32 [T] global album id
    track_duration: np.ndarray  # int64 [T]
    artist_id: np.ndarray  # S22 [A]
    artist_name: np.ndarray  # object [A]
    album_id: np.ndarray  # S22 [B]

    def __len__(self) -> int:
        return len(self.pid)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


class _Growing:
    """An append-only numpy array with amortised doubling."""

    def __init__(self, dtype: Any) -> None:
        self._buf = np.empty(1024, dtype=dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self._buf):
            grown = np.empty(max(need, 2 * len(self._buf)), dtype=self._buf.dtype)
            grown[:self.n] = self._buf[:self.n]
            self._buf = grown
        self._buf[self.n:need] = values
        self.n = need

    @property
    def array(self) -> np.ndarray:
        return self._buf[:self.n].copy()

    def take(self, idx: np.ndarray) -> np.ndarray:
        return self._buf[:self.n][idx]


class _IdTable:
    """Global key -> dense id map kept as a sorted key array; ids are handed out in arrival order."""

    def __init__(self) -> None:
        self._keys = np.zeros(0, dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int32)
        self.raw = _Growing(ID_DTYPE)

    def add(self, path: Path, keys: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global ids for sorted unique `keys` and which of them are new."""
        pos = np.searchsorted(self._keys, keys)
        hit = pos < len(self._keys)
        hit[hit] = self._keys[pos[hit]] == keys[hit]
        gid = np.empty(len(keys), dtype=np.int32)
        gid[hit] = self._ids[pos[hit]]
        clash = np.flatnonzero(self.raw.take(gid[hit]) != raw[hit])
        if clash.size:
            old, new = self.raw.take(gid[hit][clash[:1]])[0], raw[hit][clash[0]]
            raise PipelineError(f"{path}: ids {new.decode()} and {old.decode()} hash alike")
        new = ~hit
        gid[new] = np.arange(self.raw.n, self.raw.n + int(new.sum()), dtype=np.int32)
        self._keys = np.insert(self._keys, pos[new], keys[new])
        self._ids = np.insert(self._ids, pos[new], gid[new])
        self.raw.extend(raw[new])
        return gid, new


def scan(folder: str | Path, workers: int = 2, desc: str = "reading slices") -> Corpus:
    """Read every slice of `folder` into a `Corpus`; `workers` > 1 parses slices in parallel processes.

    Results are merged in file order, so ids and outputs do not depend on the number of workers.
    """
    files = slice_files(folder)
    tracks, artists, albums = _IdTable(), _IdTable(), _IdTable()
    t_name, t_artist, t_album, t_dur, a_name = [], [], [], [], []
    pl_cols: dict[str, list] = {k: [] for k in ("pid", "name", "has_name", "num_tracks", "lengths", "slice_of")}
    e_cols: dict[str, list] = {k: [] for k in ("track", "first_track", "first_artist")}
    for i, sl in enumerate(progress(map_ordered(read_slice_ids, files, workers), total=len(files), desc=desc,
                                    unit="slices")):
        a_gid, a_new = artists.add(sl.path, sl.artist_key, sl.artist_id)
        a_name.append(object_array(sl.artist_name.take(a_new)))
        b_gid, _ = albums.add(sl.path, sl.album_key, sl.album_id)
        t_gid, t_new = tracks.add(sl.path, sl.track_key, sl.track_id)
        t_name.append(object_array(sl.track_name.take(t_new)))
        t_artist.append(a_gid[sl.track_artist[t_new]])
        t_album.append(b_gid[sl.track_album[t_new]])
        t_dur.append(sl.track_duration[t_new])
        for k, v in (("pid", sl.pid), ("has_name", sl.has_name), ("num_tracks", sl.num_tracks),
                     ("lengths", np.diff(sl.indptr)), ("slice_of", np.full(len(sl.pid), i, dtype=np.int32))):
            pl_cols[k].append(v)
        pl_cols["name"].append(object_array(tuple(sl.name)))
        e_cols["track"].append(t_gid[sl.track])
        e_cols["first_track"].append(sl.first_track)
        e_cols["first_artist"].append(sl.first_artist)
    indptr = np.zeros(sum(map(len, pl_cols["pid"])) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(pl_cols.pop("lengths")), out=indptr[1:])
    cat = {k: np.concatenate(v) for k, v in (pl_cols | e_cols).items()}
    corpus = Corpus(
        files=files, indptr=indptr, **cat,
        track_id=tracks.raw.array, track_name=np.concatenate(t_name), track_artist=np.concatenate(t_artist),
        track_album=np.concatenate(t_album), track_duration=np.concatenate(t_dur),
        artist_id=artists.raw.array, artist_name=np.concatenate(a_name), album_id=albums.raw.array,
    )
    _check_unique_pids(corpus)
    return corpus


def map_ordered(fn: Callable[[Any], Any], items: list, workers: int) -> Iterator:
    """fn over items in order, in `workers` forked processes when there is more than one item.

    At most two results per worker wait to be consumed, so a slow consumer (writing files)
    never lets finished slices pile up in memory. While the workers live (the end, an error in a
    slice, a consumer that stops) the pool closes and joins, letting those few pending tasks end:
    `Pool.terminate`, what `with Pool` calls, can hang on a worker's queue lock, and once hung a CI
    run. Only an interrupt, which reaches the workers too, terminates them.
    """
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    n = min(workers, len(items))
    pool = multiprocessing.get_context("fork").Pool(n)
    try:
        todo = iter(items)
        pending = collections.deque(pool.apply_async(fn, (item,)) for item in itertools.islice(todo, 2 * n))
        while pending:
            result = pending.popleft().get()
            pending.extend(pool.apply_async(fn, (item,)) for item in itertools.islice(todo, 1))
            yield result
    except (Exception, GeneratorExit):
        _close(pool)
        raise
    except BaseException:
        pool.terminate()
        raise
    _close(pool)


def _close(pool: multiprocessing.pool.Pool) -> None:
    pool.close()
    pool.join()


def _check_unique_pids(corpus: Corpus) -> None:
    order = np.argsort(corpus.pid, kind="stable")
    dup = np.flatnonzero(corpus.pid[order][1:] == corpus.pid[order][:-1])
    if dup.size:
        first, again = order[dup[0]], order[dup[0] + 1]
        pid = corpus.pid[first]
        f1, f2 = corpus.files[corpus.slice_of[first]], corpus.files[corpus.slice_of[again]]
        where = f"appears twice in {f1}" if f1 == f2 else f"appears in both {f1} and {f2}"
        raise PipelineError(f"{f2}: pid {pid} {where}")
