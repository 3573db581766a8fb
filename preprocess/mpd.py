"""Streaming, validating reader for MPD slices and challenge sets.

Each slice becomes a `Slice` of flat numpy columns (one row per track entry, `indptr` per
playlist) so that later code vectorises over entries instead of walking nested dicts.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from common.errors import PipelineError

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
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc.__class__.__name__}: {exc})") from None
    except (OSError, EOFError) as exc:
        raise PipelineError(f"{path}: unreadable or truncated ({exc})") from None


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
    entries = [t for pl in playlists for t in pl["tracks"]]
    cols = _entry_columns(path, playlists, entries)
    indptr = np.zeros(len(pids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return Slice(
        path=path, pid=np.asarray(pids, dtype=np.int64), name=names,
        has_name=np.asarray(has_name, dtype=bool), num_tracks=np.asarray(num_tracks, dtype=np.int32),
        indptr=indptr, **cols,
    )


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
