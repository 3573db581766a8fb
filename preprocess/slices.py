"""The one reader of MPD slice files, so that a slice one stage accepts every stage accepts, and
reads the same way.

The full MPD is 1,000 files, 33 GB of JSON: a typed msgspec decode checks every type while parsing
and never builds objects for keys nobody reads, and the uris are checked as byte arrays, not one
regex each. Only once those checks refused a file is it parsed again as plain JSON, to name the
first problem with its playlist and track. The challenge set and the truth share the schema and the
checks (preprocess.challenge_file).
"""
from __future__ import annotations

import functools
import itertools
import logging
import operator
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Generic, Iterable, TypeVar

import msgspec
import numpy as np

from common.errors import PipelineError
from common.io import read_bytes
from common.progress import progress
from preprocess.schema import TRACK_KEYS, URI_PREFIX, URI_RE

log = logging.getLogger("preprocess.slices")

P = TypeVar("P")
_SLICE_RE = re.compile(r"mpd\.slice\.(\d+)-(\d+)\.json(\.gz)?$")
URI_KEYS = tuple(URI_PREFIX)


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
        raise _not_json(path, exc) from None


def _not_json(path: Path, exc: Exception) -> PipelineError:
    return PipelineError(f"{path}: not valid JSON ({exc.__class__.__name__}: {exc})")


# Bounds of the numpy columns the numbers land in: a pid of 2**70 or a duration of 1e30 is refused
# by the decoder like any other bad value instead of overflowing a column later.
Int64 = Annotated[int, msgspec.Meta(ge=-2**63, le=2**63 - 1)]
_Int32 = Annotated[int, msgspec.Meta(ge=-2**31, le=2**31 - 1)]
_Float64 = Annotated[float, msgspec.Meta(ge=-2.0**63, lt=2.0**63)]


# The MPD schema (SPEC section 1) as typed structs: keys nobody reads are skipped while parsing.
class TrackRef(msgspec.Struct, gc=False):
    """What the artist credit needs of a track object."""

    track_uri: str
    artist_uri: str


class Track(TrackRef, gc=False):
    album_uri: str
    track_name: str
    artist_name: str
    album_name: str
    pos: _Int32
    duration_ms: Int64 | _Float64 = 0


class Playlist(msgspec.Struct, gc=False):
    pid: Int64
    num_tracks: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
    tracks: list[Track]
    name: str | None = None


class _TrackRefs(msgspec.Struct, gc=False):
    tracks: list[TrackRef]


class Doc(msgspec.Struct, Generic[P], gc=False):
    playlists: list[P]


@dataclass(frozen=True)
class Schema:
    """One file kind of the MPD family: the typed decoder that reads it, and what the slow path
    checks to name the first problem once the decoder or a column check refused a file."""

    decoder: msgspec.json.Decoder
    track_keys: tuple[str, ...]  # required; those of TRACK_KEYS strings; with "pos", duration_ms a number too
    playlist_problem: Callable[[dict], str | None]

    def playlists(self, path: Path) -> list:
        """The file's playlists, decoded and type-checked; a bad file is one line naming it."""
        raw = read_bytes(path)
        try:
            return self.decoder.decode(raw).playlists
        except msgspec.ValidationError as exc:
            raise self.invalid(path, str(exc)) from None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise _not_json(path, exc) from None

    def invalid(self, path: Path, detail: str, data: Any = None) -> PipelineError:
        """The error for a refused file: its first problem as `problem` names it, else `detail`.
        `data` is the file's plain JSON when the caller holds it; otherwise the file is parsed again."""
        return PipelineError(self.problem(path, load_json(path) if data is None else data) or f"{path}: {detail}")

    def problem(self, path: Path, data: Any) -> str | None:
        """Slow path: the first problem of plain JSON in this schema, with its place; None if none is found."""
        if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
            return f"{path}: expected an object with a 'playlists' list"
        for i, pl in enumerate(data["playlists"]):
            if not isinstance(pl, dict):
                return f"{path}: playlist #{i}: expected an object, got {type(pl).__name__}"
            if type(pl.get("pid")) is not int:
                return f"{path}: playlist #{i}: missing or non-integer 'pid'"
            if not isinstance(pl.get("tracks"), list):
                return f"{path}: pid {pl['pid']}: missing or non-list 'tracks'"
            if (msg := self.playlist_problem(pl)) is not None:
                return f"{path}: pid {pl['pid']}: {msg}"
        for pl in data["playlists"]:
            for j, t in enumerate(pl["tracks"]):
                if (msg := self._track_problem(t)) is not None:
                    return f"{path}: pid {pl['pid']} track #{j}: {msg}"
        return None

    def _track_problem(self, t: Any) -> str | None:
        if not isinstance(t, dict):
            return f"expected an object, got {type(t).__name__}"
        for key in self.track_keys:
            if key not in t:
                return f"missing key '{key}'"
        for key in self.track_keys:
            if key in TRACK_KEYS and type(t[key]) is not str:
                return f"'{key}' must be a string, got {type(t[key]).__name__}"
        if "pos" in self.track_keys:
            if type(t["pos"]) is not int:
                return "'pos' must be an integer"
            if type(t.get("duration_ms", 0)) not in (int, float):
                return "'duration_ms' must be a number"
        for key in self.track_keys:
            if key in URI_RE and not URI_RE[key].match(t[key]):
                return f"malformed {key} {t[key]!r}"
        return None


def _slice_playlist_problem(pl: dict) -> str | None:
    name = pl.get("name")
    if name is not None and not isinstance(name, str):
        return f"'name' must be a string, got {type(name).__name__}"
    n = pl.get("num_tracks")
    if type(n) is not int or n < 0:
        return "missing or invalid 'num_tracks'"
    return None


SLICE = Schema(msgspec.json.Decoder(Doc[Playlist]), (*TRACK_KEYS, "pos"), _slice_playlist_problem)
_TRACK_REFS = msgspec.json.Decoder(Doc[_TrackRefs])
_TRACKS, _PID, _NUM_TRACKS = (operator.attrgetter(k) for k in ("tracks", "pid", "num_tracks"))
_TRACK_NAME, _ARTIST_NAME, _DURATION = (operator.attrgetter(k) for k in ("track_name", "artist_name", "duration_ms"))
_URIS = operator.attrgetter(*URI_KEYS)


def playlist_columns(playlists: list[Playlist]) -> tuple[dict[str, Any], list[Track]]:
    """The playlist columns of both flat forms (pid, name, has_name, num_tracks, indptr) and the
    entries in playlist order."""
    n = len(playlists)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, map(_TRACKS, playlists)), dtype=np.int64, count=n), out=indptr[1:])
    names = [pl.name or "" for pl in playlists]
    cols = {"pid": np.fromiter(map(_PID, playlists), dtype=np.int64, count=n), "name": names,
            "has_name": np.fromiter(map(bool, names), dtype=bool, count=n),
            "num_tracks": np.fromiter(map(_NUM_TRACKS, playlists), dtype=np.int32, count=n), "indptr": indptr}
    return cols, list(itertools.chain.from_iterable(map(_TRACKS, playlists)))


# ---------------------------------------------------------------------------------------------
# Uris as one byte matrix: a row per entry, each uri followed by a newline.

_B62_OK = np.zeros(256, dtype=bool)
_B62_OK[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)] = True


@functools.cache
def uri_layout(keys: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """(start, end) of each key's uri in a row of `uri_matrix`; a newline follows each."""
    out, at = {}, 0
    for key in keys:
        out[key] = (at, at + len(URI_PREFIX[key]) + 22)
        at = out[key][1] + 1
    return out


def uri_matrix(uris: Iterable[str], n: int, keys: tuple[str, ...]) -> np.ndarray | None:
    """uint8 [n, row]: `uris` holds each of n entries' uris of `keys` in turn; None unless every uri
    is ASCII with its key's prefix and length.

    One join for all columns: a uri of the wrong length moves some newline off its column, so
    checking the newline columns and the total length proves every uri has its exact length."""
    layout = uri_layout(keys)
    width = layout[keys[-1]][1] + 1
    try:
        raw = ("\n".join(uris) + "\n").encode("ascii") if n else b""
    except UnicodeEncodeError:
        return None
    if len(raw) != width * n:
        return None
    mat = np.frombuffer(raw, dtype=np.uint8).reshape(n, width)
    for key, (start, end) in layout.items():
        prefix = np.frombuffer(URI_PREFIX[key].encode(), dtype=np.uint8)
        if (mat[:, end] != ord("\n")).any() or (mat[:, start:start + len(prefix)] != prefix).any():
            return None
    return mat


def uris_ok(uris: list[str], key: str) -> bool:
    """Every uri is `key`'s prefix and 22 base-62 characters. For uris already listed by key (the
    truth's): a narrow matrix per key checks faster than one interleaved matrix."""
    mat = uri_matrix(uris, len(uris), (key,))
    return mat is not None and ids_ok(mat, (key,))


def entry_uris(entries: list[Track]) -> Iterable[str]:
    """The entries' track, artist and album uris in turn, as `uri_matrix` takes them for URI_KEYS."""
    return itertools.chain.from_iterable(map(_URIS, entries))


def _id_bytes(mat: np.ndarray, keys: tuple[str, ...], key: str) -> np.ndarray:
    """uint8 [N, 22]: the 22-character ids of `key` in a `uri_matrix`."""
    end = uri_layout(keys)[key][1]
    return mat[:, end - 22:end]


def ids_ok(mat: np.ndarray, keys: tuple[str, ...]) -> bool:
    """Every id of a `uri_matrix` is 22 base-62 characters (the matrix itself proved the rest of each uri)."""
    return all(_B62_OK[_id_bytes(mat, keys, key)].all() for key in keys)


def uri_column(mat: np.ndarray, keys: tuple[str, ...], key: str) -> np.ndarray:
    """'<U{width}' [N]: the uris of `key` in a `uri_matrix` as strings."""
    start, end = uri_layout(keys)[key]
    return np.ascontiguousarray(mat[:, start:end]).view(f"S{end - start}").ravel().astype(f"U{end - start}")


# ---------------------------------------------------------------------------------------------
# Bulk path: slices reduced to integer ids. Stages that read the whole MPD (1M playlists,
# 66M entries) never hold per-entry strings: each slice is parsed and factorised on its own
# (in worker processes, preprocess.corpus), and only its unique uris are merged into one table.

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


def read_slice_ids(path: str | Path) -> SliceIds:
    """Parse and validate one slice into integer columns; a bad file is one line naming it and the place."""
    path = Path(path)
    cols, entries = playlist_columns(SLICE.playlists(path))
    uris = uri_matrix(entry_uris(entries), len(entries), URI_KEYS)
    if uris is None:
        raise SLICE.invalid(path, "malformed uri")
    t_key, t_first, t_inv, t_id = _factorize(path, uris, "track_uri")
    a_key, a_first, a_inv, a_id = _factorize(path, uris, "artist_uri")
    b_key, _, b_inv, b_id = _factorize(path, uris, "album_uri")
    del uris
    row = np.repeat(np.arange(len(cols["pid"]), dtype=np.int64), np.diff(cols["indptr"]))
    entries = object_array(entries)
    first_tracks = entries[t_first]
    return SliceIds(
        path=path, **cols,
        track=t_inv, first_track=_first_in_row(row, t_inv, len(t_key)),
        first_artist=_first_in_row(row, a_inv, len(a_key)),
        track_key=t_key, track_id=t_id, track_name=PackedStrings.pack(list(map(_TRACK_NAME, first_tracks))),
        track_artist=a_inv[t_first], track_album=b_inv[t_first],
        track_duration=np.asarray(list(map(_DURATION, first_tracks)), dtype=np.int64).reshape(-1),
        artist_key=a_key, artist_id=a_id,
        artist_name=PackedStrings.pack(list(map(_ARTIST_NAME, entries[a_first]))),
        album_key=b_key, album_id=b_id,
    )


def object_array(values: list | tuple) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _factorize(path: Path, uris: np.ndarray, key: str) -> tuple[np.ndarray, ...]:
    """Factorise one uri column by its 22-char id: sorted unique keys, first index and inverse
    (int32) per key, and the id bytes per key. A malformed id stops with its playlist and track."""
    buf = np.zeros((len(uris), 24), dtype=np.uint8)
    buf[:, :22] = _id_bytes(uris, URI_KEYS, key)
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
        raise SLICE.invalid(path, f"malformed {key}")
    return keys[first], first, inv, ids


def _first_in_row(row: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """True for the first occurrence of each item within its playlist (entries are in playlist order)."""
    mask = np.zeros(len(item), dtype=bool)
    mask[np.unique(row * max(n_items, 1) + item, return_index=True)[1]] = True
    return mask


def track_artists(folder: str | Path, wanted: set[str]) -> dict[str, str]:
    """track uri -> artist uri for the `wanted` tracks, reading slices until all are found.

    Only the two uris of each entry are decoded (a quarter of a full read's time, and the lookup may
    read the whole MPD); a file that fails is read by `read_slice_ids`, whose checks include these,
    for its one-line message."""
    files = slice_files(folder)
    wanted = set(wanted)
    found: dict[str, str] = {}
    start, read = time.perf_counter(), 0
    for path in progress(files, desc="MPD artists", unit="slices", disable=not wanted):
        if not wanted:
            break
        read += 1
        try:
            playlists = _TRACK_REFS.decode(read_bytes(path)).playlists
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            read_slice_ids(path)
            raise PipelineError(f"{path}: unexpected layout ({exc})") from None
        for pl in playlists:
            for t in pl.tracks:
                if t.track_uri in wanted:
                    found[t.track_uri] = t.artist_uri
                    wanted.discard(t.track_uri)
    log.info("artists of %d tracks found in %d of %d slices (%.1f s); %d not in the MPD",
             len(found), read, len(files), time.perf_counter() - start, len(wanted))
    return found
