"""Streaming, validating reader for MPD slices and challenge sets.

Each slice becomes a `Slice` of flat numpy columns (one row per track entry, `indptr` per
playlist) so that later code vectorises over entries instead of walking nested dicts.
"""
from __future__ import annotations

import collections
import functools
import itertools
import multiprocessing
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, TypeVar

import numpy as np
import msgspec

from common.errors import PipelineError
from common.io import read_bytes
from common.progress import progress

T = TypeVar("T")
TRACK_KEYS = ("track_uri", "artist_uri", "album_uri", "track_name", "artist_name", "album_name")
URI_PREFIX = {"track_uri": "spotify:track:", "artist_uri": "spotify:artist:", "album_uri": "spotify:album:"}
URI_RE = {k: re.compile(re.escape(p) + r"[0-9A-Za-z]{22}\Z") for k, p in URI_PREFIX.items()}
_SLICE_RE = re.compile(r"mpd\.slice\.(\d+)-(\d+)\.json(\.gz)?$")


@dataclass
class Slice:
    """One file's playlists as flat columns; `indptr[i]:indptr[i+1]` are playlist i's entries."""

    path: Path
    pid: np.ndarray  # int64 [P]
    name: list[str]  # raw title, "" when the key is absent
    has_name: np.ndarray  # bool [P]
    num_tracks: np.ndarray  # int32 [P], as declared by the file
    indptr: np.ndarray  # int64 [P+1]
    pos: np.ndarray  # int32 [N]
    track_uri: np.ndarray  # '<U36' [N]
    artist_uri: np.ndarray  # '<U37' [N]
    album_uri: np.ndarray  # '<U36' [N]
    track_name: list[str]
    artist_name: list[str]
    album_name: list[str]
    duration_ms: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.pid)


def slice_files(folder: str | Path) -> list[Path]:
    """MPD slice files of a folder in numeric order (lexicographic order would put 1000 before 999)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: not a directory of MPD slices")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _SLICE_RE.fullmatch(p.name))]
    if not found:
        raise PipelineError(f"{folder}: no mpd.slice.*.json files found")
    return [p for _, p in sorted(found)]


def load_json(path: str | Path) -> Any:
    """Parse a .json or .json.gz file; any failure is one line naming the file."""
    path = Path(path)
    try:
        return msgspec.json.decode(read_bytes(path))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc.__class__.__name__}: {exc})") from None


def _in_range(reader: Callable[[str | Path], T]) -> Callable[[str | Path], T]:
    """A number beyond 64 bits (a pid of 2**70, a duration of 1e30) overflows numpy's columns;
    the reader reports it as bad input naming the file instead."""
    @functools.wraps(reader)
    def checked(path: str | Path) -> T:
        try:
            return reader(path)
        except OverflowError:
            raise PipelineError(f"{path}: a number does not fit in 64 bits (pid, num_tracks, pos or "
                                "duration_ms)") from None
    return checked


@_in_range
def read_slice(path: str | Path) -> Slice:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        raise PipelineError(f"{path}: expected an object with a 'playlists' list")
    return playlists_to_slice(Path(path), data["playlists"], require_num_tracks=True)


def iter_slices(folder: str | Path) -> Iterator[Slice]:
    for path in slice_files(folder):
        yield read_slice(path)


def playlists_to_slice(path: Path, playlists: list[Any], require_num_tracks: bool) -> Slice:
    """Validate and flatten playlist dicts; the first problem found stops with file and pid."""
    pids, names, has_name, num_tracks, indptr = _playlist_fields(path, playlists, require_num_tracks)
    entries = [t for pl in playlists for t in pl["tracks"]]
    cols = _entry_columns(path, playlists, entries)
    return Slice(path=path, pid=pids, name=names, has_name=has_name, num_tracks=num_tracks, indptr=indptr, **cols)


def _playlist_fields(path: Path, playlists: list[Any], require_num_tracks: bool) -> tuple:
    """Playlist-level checks and columns: pid, name, has_name, num_tracks, indptr."""
    pids, names, has_name, num_tracks, lengths = [], [], [], [], []
    for i, pl in enumerate(playlists):
        where = f"{path}: playlist #{i}"
        if not isinstance(pl, dict):
            raise PipelineError(f"{where}: expected an object, got {type(pl).__name__}")
        pid = pl.get("pid")
        if type(pid) is not int:
            raise PipelineError(f"{where}: missing or non-integer 'pid'")
        where = f"{path}: pid {pid}"
        tracks = pl.get("tracks")
        if not isinstance(tracks, list):
            raise PipelineError(f"{where}: missing or non-list 'tracks'")
        name = pl.get("name")
        if name is not None and not isinstance(name, str):
            raise PipelineError(f"{where}: 'name' must be a string, got {type(name).__name__}")
        n = pl.get("num_tracks", len(tracks) if not require_num_tracks else None)
        if type(n) is not int or n < 0:
            raise PipelineError(f"{where}: missing or invalid 'num_tracks'")
        pids.append(pid)
        names.append(name or "")
        has_name.append(name is not None and name != "")
        num_tracks.append(n)
        lengths.append(len(tracks))
    indptr = np.zeros(len(pids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return (np.asarray(pids, dtype=np.int64), names, np.asarray(has_name, dtype=bool),
            np.asarray(num_tracks, dtype=np.int32), indptr)


def _entry_columns(path: Path, playlists: list[dict], entries: list[Any]) -> dict[str, Any]:
    try:
        cols: dict[str, Any] = {k: [t[k] for t in entries] for k in TRACK_KEYS}
        pos = [t["pos"] for t in entries]
        duration = [t.get("duration_ms", 0) for t in entries]
    except (KeyError, TypeError):
        raise PipelineError(_first_bad_entry(path, playlists)) from None
    for key in TRACK_KEYS:
        if not all(type(v) is str for v in cols[key]):
            raise PipelineError(_first_bad_entry(path, playlists))
    if not all(type(v) is int for v in pos) or not all(type(v) in (int, float) for v in duration):
        raise PipelineError(_first_bad_entry(path, playlists))
    for key in URI_PREFIX:
        arr = np.asarray(cols[key], dtype=str) if cols[key] else np.zeros(0, dtype="<U36")
        if arr.size and not _uris_ok(arr, key):
            raise PipelineError(_first_bad_entry(path, playlists))
        cols[key] = arr
    cols["pos"] = np.asarray(pos, dtype=np.int32)
    cols["duration_ms"] = np.asarray(duration, dtype=np.int64)
    return cols


def _uris_ok(arr: np.ndarray, key: str) -> bool:
    lengths = np.strings.str_len(arr)
    want = len(URI_PREFIX[key]) + 22
    return bool((lengths == want).all() and np.strings.startswith(arr, URI_PREFIX[key]).all())


def _first_bad_entry(path: Path, playlists: list[dict]) -> str:
    """Slow path, only after the fast checks failed: find and describe the first bad entry."""
    for pl in playlists:
        for j, t in enumerate(pl["tracks"]):
            where = f"{path}: pid {pl['pid']} track #{j}"
            if not isinstance(t, dict):
                return f"{where}: expected an object, got {type(t).__name__}"
            for key in (*TRACK_KEYS, "pos"):
                if key not in t:
                    return f"{where}: missing key '{key}'"
            for key in TRACK_KEYS:
                if type(t[key]) is not str:
                    return f"{where}: '{key}' must be a string, got {type(t[key]).__name__}"
            if type(t["pos"]) is not int:
                return f"{where}: 'pos' must be an integer"
            if type(t.get("duration_ms", 0)) not in (int, float):
                return f"{where}: 'duration_ms' must be a number"
            for key, rx in URI_RE.items():
                if not rx.match(t[key]):
                    return f"{where}: malformed {key} {t[key]!r}"
    return f"{path}: invalid track entries"


@dataclass
class Challenge:
    """A challenge set: seeds as a `Slice` (names absent for the no-title categories)."""

    path: Path
    seeds: Slice


@_in_range
def read_challenge(path: str | Path) -> Challenge:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        raise PipelineError(f"{path}: expected an object with a 'playlists' list")
    seeds = playlists_to_slice(Path(path), data["playlists"], require_num_tracks=True)
    dup = _first_duplicate(seeds.pid)
    if dup is not None:
        raise PipelineError(f"{path}: pid {dup} appears more than once")
    short = np.flatnonzero(seeds.num_tracks < np.diff(seeds.indptr))
    if short.size:
        raise PipelineError(f"{path}: pid {seeds.pid[short[0]]} has more seed tracks than num_tracks")
    return Challenge(path=Path(path), seeds=seeds)


def _first_duplicate(pids: np.ndarray) -> int | None:
    uniq, counts = np.unique(pids, return_counts=True)
    return int(uniq[counts > 1][0]) if (counts > 1).any() else None


# ---------------------------------------------------------------------------------------------
# Bulk path: slices reduced to integer ids. Stages that read the whole MPD (1M playlists,
# 66M entries) never hold per-entry strings: each slice is parsed and factorised on its own
# (in worker processes), and only its unique uris are merged into one global table.

_B62_OK = np.zeros(256, dtype=bool)
_B62_OK[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)] = True
# A 22-char base-62 id (131 bits) does not fit a uint64, so ids are hashed (three 8-byte words times
# random odd constants). Every merge compares the stored id bytes, so a collision is reported, never
# silently merged.
_HASH_MUL = np.random.default_rng(2018).integers(0, 2**64, size=3, dtype=np.uint64, endpoint=False) | np.uint64(1)
ID_DTYPE = "S22"


@dataclass
class PackedStrings:
    """Strings as one text and their end offsets: crosses a process boundary in one piece
    instead of one pickled object per name."""

    text: str
    ends: np.ndarray  # int64 [n]

    @classmethod
    def pack(cls, values: list[str]) -> "PackedStrings":
        return cls("".join(values), np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values))))

    def take(self, mask: np.ndarray) -> list[str]:
        starts = np.concatenate([[0], self.ends[:-1]])[mask].tolist()
        text = self.text
        return [text[a:b] for a, b in zip(starts, self.ends[mask].tolist())]


@dataclass
class SliceIds:
    """One slice as integer columns: entries point into the slice's unique tracks (sorted by key)."""

    path: Path
    pid: np.ndarray  # int64 [P]
    name: list[str]  # raw title, "" when absent
    has_name: np.ndarray  # bool [P]
    num_tracks: np.ndarray  # int32 [P], as declared
    indptr: np.ndarray  # int64 [P+1]
    track: np.ndarray  # int32 [N] index into the slice's unique tracks
    first_track: np.ndarray  # bool [N] first time the track occurs in its playlist
    first_artist: np.ndarray  # bool [N] first track of its artist in its playlist
    track_key: np.ndarray  # uint64 [U] hash of the 22-char id, sorted
    track_id: np.ndarray  # S22 [U]
    track_name: PackedStrings  # [U]
    track_artist: np.ndarray  # int32 [U] index into artist_*
    track_album: np.ndarray  # int32 [U] index into album_*
    track_duration: np.ndarray  # int64 [U]
    artist_key: np.ndarray  # uint64 [UA]
    artist_id: np.ndarray  # S22 [UA]
    artist_name: PackedStrings  # [UA]
    album_key: np.ndarray  # uint64 [UB]
    album_id: np.ndarray  # S22 [UB]


class _Track(msgspec.Struct, gc=False):
    track_uri: str
    artist_uri: str
    album_uri: str
    track_name: str
    artist_name: str
    album_name: str
    pos: int
    duration_ms: int | float = 0


class _Playlist(msgspec.Struct, gc=False):
    pid: int
    num_tracks: Annotated[int, msgspec.Meta(ge=0)]
    tracks: list[_Track]
    name: str | None = None


class _SliceDoc(msgspec.Struct, gc=False):
    playlists: list[_Playlist]


# Typed decoding checks every type while parsing and never builds objects for keys nobody reads
# (descriptions, counters), which makes it about twice as fast as parsing into dicts.
_DECODER = msgspec.json.Decoder(_SliceDoc)


@_in_range
def read_slice_ids(path: str | Path) -> SliceIds:
    """Parse and validate one slice (same checks and messages as `read_slice`) into integer columns."""
    path = Path(path)
    raw = read_bytes(path)
    try:
        playlists = _DECODER.decode(raw).playlists
    except msgspec.ValidationError as exc:
        raise _invalid(path, str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc.__class__.__name__}: {exc})") from None
    del raw
    n = len(playlists)
    lengths = np.fromiter(map(len, map(_TRACKS, playlists)), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    names = [pl.name or "" for pl in playlists]
    entries = list(itertools.chain.from_iterable(map(_TRACKS, playlists)))
    uris = _uri_matrix(path, entries)
    t_key, t_first, t_inv, t_id = _factorize(path, uris, "track_uri")
    a_key, a_first, a_inv, a_id = _factorize(path, uris, "artist_uri")
    b_key, _, b_inv, b_id = _factorize(path, uris, "album_uri")
    del uris
    row = np.repeat(np.arange(n, dtype=np.int64), lengths)
    entries = _objects(entries)
    first_tracks = entries[t_first]
    return SliceIds(
        path=path, pid=np.fromiter(map(_PID, playlists), dtype=np.int64, count=n), name=names,
        has_name=np.fromiter(map(bool, names), dtype=bool, count=n),
        num_tracks=np.fromiter(map(_NUM_TRACKS, playlists), dtype=np.int32, count=n), indptr=indptr,
        track=t_inv, first_track=_first_in_row(row, t_inv, len(t_key)),
        first_artist=_first_in_row(row, a_inv, len(a_key)),
        track_key=t_key, track_id=t_id, track_name=PackedStrings.pack(list(map(_TRACK_NAME, first_tracks))),
        track_artist=a_inv[t_first], track_album=b_inv[t_first],
        track_duration=np.asarray(list(map(_DURATION, first_tracks)), dtype=np.int64).reshape(-1),
        artist_key=a_key, artist_id=a_id,
        artist_name=PackedStrings.pack(list(map(_ARTIST_NAME, entries[a_first]))),
        album_key=b_key, album_id=b_id,
    )


_TRACKS, _PID, _NUM_TRACKS = (operator.attrgetter(k) for k in ("tracks", "pid", "num_tracks"))
_TRACK_NAME, _ARTIST_NAME, _DURATION = (operator.attrgetter(k) for k in ("track_name", "artist_name", "duration_ms"))


def _invalid(path: Path, detail: str) -> PipelineError:
    """Slow path once a fast check failed: re-read the file as plain JSON to name the first problem."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        return PipelineError(f"{path}: expected an object with a 'playlists' list")
    _playlist_fields(path, data["playlists"], require_num_tracks=True)
    msg = _first_bad_entry(path, data["playlists"])
    return PipelineError(msg if msg != f"{path}: invalid track entries" else f"{path}: {detail}")


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


_URIS = operator.attrgetter(*URI_PREFIX)
_URI_WIDTH = {k: len(p) + 22 for k, p in URI_PREFIX.items()}
_URI_START = dict(zip(URI_PREFIX, np.cumsum([0] + [w + 1 for w in _URI_WIDTH.values()])[:-1].tolist()))
_ROW_WIDTH = sum(w + 1 for w in _URI_WIDTH.values())


def _uri_matrix(path: Path, entries: list) -> np.ndarray:
    """uint8 [N, 112]: each entry's track, artist and album uri, each followed by a newline.

    One join for all three columns; a uri of the wrong length moves some newline off its column,
    so checking the newline columns and the total length proves every uri has its exact length.
    """
    try:
        raw = ("\n".join(itertools.chain.from_iterable(map(_URIS, entries))) + "\n").encode("ascii") \
            if entries else b""
    except UnicodeEncodeError:
        raw = b""
    if len(raw) != _ROW_WIDTH * len(entries):
        raise _invalid(path, "malformed uri")
    mat = np.frombuffer(raw, dtype=np.uint8).reshape(len(entries), _ROW_WIDTH)
    for key, prefix in URI_PREFIX.items():
        start, end = _URI_START[key], _URI_START[key] + _URI_WIDTH[key]
        if (mat[:, end] != ord("\n")).any() or \
                (mat[:, start:start + len(prefix)] != np.frombuffer(prefix.encode(), dtype=np.uint8)).any():
            raise _invalid(path, f"malformed {key}")
    return mat


def _factorize(path: Path, uris: np.ndarray, key: str) -> tuple[np.ndarray, ...]:
    """Factorise one uri column by its 22-char id: sorted unique keys, first index and inverse
    (int32) per key, and the id bytes per key. A malformed id stops with its playlist and track."""
    end = _URI_START[key] + _URI_WIDTH[key]
    buf = np.zeros((len(uris), 24), dtype=np.uint8)
    buf[:, :22] = uris[:, end - 22:end]
    words = buf.view(np.uint64)
    keys = words[:, 0] * _HASH_MUL[0] + words[:, 1] * _HASH_MUL[1] + words[:, 2] * _HASH_MUL[2]
    order = np.argsort(keys)
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = keys[order[1:]] != keys[order[:-1]]
    first = np.minimum.reduceat(order, np.flatnonzero(starts)) if len(keys) else order
    inv = np.empty(len(keys), dtype=np.int32)
    inv[order] = np.cumsum(starts) - 1
    # equal keys must mean equal ids, so checking the characters of one id per key checks them all
    same = (words[first][inv] == words).all(axis=1)
    ids = buf[first, :22].copy().view(ID_DTYPE).ravel()
    if not same.all():
        bad = int(np.flatnonzero(~same)[0])
        raise PipelineError(f"{path}: ids {buf[bad, :22].tobytes().decode()} and {ids[inv[bad]].decode()} hash alike")
    if not _B62_OK[buf[first, :22]].all():
        raise _invalid(path, f"malformed {key}")
    return keys[first], first, inv, ids


def _first_in_row(row: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """True for the first occurrence of each item within its playlist (entries are in playlist order)."""
    mask = np.zeros(len(item), dtype=bool)
    mask[np.unique(row * max(n_items, 1) + item, return_index=True)[1]] = True
    return mask


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
        a_name.append(_objects(sl.artist_name.take(a_new)))
        b_gid, _ = albums.add(sl.path, sl.album_key, sl.album_id)
        t_gid, t_new = tracks.add(sl.path, sl.track_key, sl.track_id)
        t_name.append(_objects(sl.track_name.take(t_new)))
        t_artist.append(a_gid[sl.track_artist[t_new]])
        t_album.append(b_gid[sl.track_album[t_new]])
        t_dur.append(sl.track_duration[t_new])
        for k, v in (("pid", sl.pid), ("has_name", sl.has_name), ("num_tracks", sl.num_tracks),
                     ("lengths", np.diff(sl.indptr)), ("slice_of", np.full(len(sl.pid), i, dtype=np.int32))):
            pl_cols[k].append(v)
        pl_cols["name"].append(_objects(tuple(sl.name)))
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


def map_ordered(fn: Any, items: list, workers: int) -> Iterator:
    """fn over items in order, in `workers` forked processes when there is more than one item.

    At most two results per worker wait to be consumed, so a slow consumer (writing files)
    never lets finished slices pile up in memory.
    """
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    n = min(workers, len(items))
    with multiprocessing.get_context("fork").Pool(n) as pool:
        todo = iter(items)
        pending = collections.deque(pool.apply_async(fn, (item,)) for item in itertools.islice(todo, 2 * n))
        while pending:
            result = pending.popleft().get()
            pending.extend(pool.apply_async(fn, (item,)) for item in itertools.islice(todo, 1))
            yield result


def _check_unique_pids(corpus: Corpus) -> None:
    order = np.argsort(corpus.pid, kind="stable")
    dup = np.flatnonzero(corpus.pid[order][1:] == corpus.pid[order][:-1])
    if dup.size:
        first, again = order[dup[0]], order[dup[0] + 1]
        pid = corpus.pid[first]
        f1, f2 = corpus.files[corpus.slice_of[first]], corpus.files[corpus.slice_of[again]]
        where = f"appears twice in {f1}" if f1 == f2 else f"appears in both {f1} and {f2}"
        raise PipelineError(f"{f2}: pid {pid} {where}")
