"""Reader for the official submission CSV (.csv or .csv.gz).

The reader never judges a submission: it keeps every row, ragged or not, so that
`submission.verify` can list all problems at once. Track fields become integer codes (one
numbering over the whole file) so every later check is a vectorised array operation.

A challenge-sized file holds five million uris. Rows in the canonical layout (`pid,` then 500
fields of 36 bytes, no spaces) are read straight from the bytes: each field's bytes are packed
into integers, hashed and grouped, and the grouping is then checked byte for byte, so it is
exact. Other rows (spaces after commas, odd lengths, malformed fields) take a plain split.
"""
from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.errors import PipelineError
from common.metrics import MAX_RECS

TRACK_URI_RE = re.compile(r"spotify:track:[0-9A-Za-z]{22}")
URI_LEN = len("spotify:track:") + 22
TEAM_TAG = "team_info"
TRACK_KINDS = ("main", "creative")
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_BLANKS = " \t\r"  # stripped around fields
_BLANK_BYTES = np.frombuffer(_BLANKS.encode(), dtype=np.uint8)
_FAST_SPAN = MAX_RECS * (URI_LEN + 1) - 1  # bytes after 'pid,' in a canonical row
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                 0xFF51AFD7ED558CCD], dtype=np.uint64)


@dataclass
class SubmissionFile:
    """A submission as read, one entry per non-comment, non-blank, non-team_info line."""

    path: Path
    team_info: tuple[str, ...] | None  # fields after 'team_info' on the first content line, None if absent
    stray_team_info: list[int]  # line numbers of team_info lines that are not the first content line
    line: np.ndarray  # int64 [R] 1-based line number of each row
    pid_text: list[str]  # first field of each row as written
    pid: np.ndarray  # int64 [R], -1 where pid_ok is False
    pid_ok: np.ndarray  # bool [R] first field is a non-negative integer
    indptr: np.ndarray  # int64 [R+1]; row r's tracks are codes[indptr[r]:indptr[r+1]]
    codes: np.ndarray  # int64 [N] index into `uris`
    uris: np.ndarray  # object [U] distinct track fields (whitespace around them removed)

    def __len__(self) -> int:
        return len(self.pid)

    @property
    def n_tracks(self) -> np.ndarray:
        return np.diff(self.indptr)


def team_info_problem(fields: tuple[str, ...] | None) -> str | None:
    """Why a team_info line is unacceptable, or None. Accepts both the current and the older form."""
    if fields is None:
        return "missing team_info: the first line must be 'team_info,<team name>,<contact email>'"
    if len(fields) == 3 and fields[0] in TRACK_KINDS:
        fields = fields[1:]
    if len(fields) != 2:
        return (f"malformed team_info {','.join((TEAM_TAG, *fields))!r}: expected "
                "'team_info,<team name>,<contact email>' or 'team_info,main|creative,<team name>,<contact email>'")
    if not fields[0] or not fields[1]:
        return "malformed team_info: empty team name or contact email"
    return None


def malformed_uris(uris: np.ndarray) -> np.ndarray:
    """bool [U]: the field is not 'spotify:track:' followed by 22 base62 characters."""
    return np.fromiter((TRACK_URI_RE.fullmatch(u) is None for u in uris), dtype=bool, count=len(uris))


def read_submission(path: str | Path, fast: bool = True) -> SubmissionFile:
    """Parse a submission; `fast=False` splits every row as text (the reference the fast path must match)."""
    path = Path(path)
    data = _read_bytes(path)
    team_info: tuple[str, ...] | None = None
    stray: list[int] = []
    lines: list[int] = []
    pid_text: list[str] = []
    slow: dict[int, list[str]] = {}  # row -> fields, for rows not in the canonical layout
    fast_rows: list[int] = []
    fast_at: list[int] = []  # byte offset of the first track field of each fast row
    fast_span: list[tuple[int, int, int]] = []  # line number, start and end of each fast row
    first_content = True
    bounds = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10).tolist()
    for number, (start, end) in enumerate(zip([0, *(b + 1 for b in bounds)], [*bounds, len(data)]), start=1):
        if end > start and data[end - 1] == 13:
            end -= 1
        comma = data.find(b",", start, end)
        if fast and _canonical(data, start, comma, end):
            fast_rows.append(len(lines))
            fast_at.append(comma + 1)
            fast_span.append((number, start, end))
            lines.append(number)
            pid_text.append(data[start:comma].decode("ascii"))
            first_content = False
            continue
        text = _decode(data[start:end], path, number)
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _split(text)
        if fields[0] == TEAM_TAG:
            if first_content:
                team_info = tuple(fields[1:])
            else:
                stray.append(number)
        else:
            slow[len(lines)] = fields[1:]
            lines.append(number)
            pid_text.append(fields[0])
        first_content = False

    irregular = _irregular(data, np.asarray(fast_at, dtype=np.int64))
    for k in np.flatnonzero(irregular).tolist():
        number, start, end = fast_span[k]
        slow[fast_rows[k]] = _split(_decode(data[start:end], path, number))[1:]
    fast_rows = [r for r, odd in zip(fast_rows, irregular.tolist()) if not odd]
    fast_codes, uris = _group_fields(data, np.asarray(fast_at, dtype=np.int64)[~irregular], path)
    if fast_codes is None:
        return read_submission(path, fast=False)
    index = {u: i for i, u in enumerate(uris)}
    slow_codes = {r: [index.setdefault(f, len(index)) for f in fields] for r, fields in slow.items()}

    lengths = np.full(len(lines), MAX_RECS, dtype=np.int64)  # every fast row has 500
    for r, fields in slow.items():
        lengths[r] = len(fields)
    indptr = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    codes = np.empty(int(indptr[-1]), dtype=np.int64)
    if fast_rows:
        at = indptr[np.asarray(fast_rows)][:, None] + np.arange(MAX_RECS)
        codes[at] = fast_codes.reshape(len(fast_rows), MAX_RECS)
    for r, c in slow_codes.items():
        codes[indptr[r]:indptr[r + 1]] = c
    pid_ok = np.fromiter((p.isascii() and p.isdigit() for p in pid_text), dtype=bool, count=len(pid_text))
    pid = np.fromiter((int(p) if ok else -1 for p, ok in zip(pid_text, pid_ok)), dtype=np.int64, count=len(pid_text))
    return SubmissionFile(path=path, team_info=team_info, stray_team_info=stray,
                          line=np.asarray(lines, dtype=np.int64), pid_text=pid_text, pid=pid, pid_ok=pid_ok,
                          indptr=indptr, codes=codes, uris=np.asarray(list(index), dtype=object))


def _canonical(data: bytes, start: int, comma: int, end: int) -> bool:
    """`pid,` then 500 fields and 499 commas in exactly 500 x 36 + 499 bytes (where the commas are,
    and that no field has blanks at its edges, is checked for all rows at once in `_irregular`)."""
    return (comma > start and end - comma - 1 == _FAST_SPAN and data[start:comma].isdigit()
            and data.count(b",", comma + 1, end) == MAX_RECS - 1)


def _split(text: str) -> list[str]:
    fields = text.split(",")
    if " " in text or "\t" in text or "\r" in text:
        fields = [f.strip(_BLANKS) for f in fields]
    return fields


def _irregular(data: bytes, row_at: np.ndarray) -> np.ndarray:
    """bool [F]: a fast-candidate row whose commas are not every 37 bytes, or with blanks at a
    field's edge; such rows are split as text instead."""
    at = row_at[:, None] + (URI_LEN + 1) * np.arange(MAX_RECS)
    byte = np.frombuffer(data, dtype=np.uint8)
    odd = (byte[at[:, 1:] - 1] != 44).any(axis=1)
    odd |= np.isin(byte[at], _BLANK_BYTES).any(axis=1) | np.isin(byte[at + URI_LEN - 1], _BLANK_BYTES).any(axis=1)
    return odd


def _group_fields(data: bytes, row_at: np.ndarray, path: Path) -> tuple[np.ndarray | None, list[str]]:
    """Codes of the fixed-width fields of the fast rows and their distinct texts.

    A field's 36 bytes are read as five non-overlapping integers (bytes 0-7, 8-11, 12-19, 20-27,
    28-35); a hash of them groups the fields, and every field is then compared with its group's
    first member on all five integers. None when two different fields share a hash (then the
    caller falls back to splitting text)."""
    if not len(row_at):
        return np.zeros(0, dtype=np.int64), []
    at = (row_at[:, None] + (URI_LEN + 1) * np.arange(MAX_RECS)).ravel()
    parts = [_words(data, row_at, off, dt) for off, dt in ((0, "<u8"), (8, "<u4"), (12, "<u8"), (20, "<u8"), (28, "<u8"))]
    h = np.zeros(len(at), dtype=np.uint64)
    for p, m in zip(parts, _MIX):
        h += p * m
    codes, _ = pd.factorize(h)  # codes numbered in order of first appearance
    seen = np.maximum.accumulate(codes)
    first = np.flatnonzero(np.r_[True, seen[1:] > seen[:-1]])
    rep = first[codes]
    if not all((p[rep] == p).all() for p in parts):
        return None, []
    texts = [_decode(data[a:a + URI_LEN], path, None) for a in at[first].tolist()]
    return codes.astype(np.int64), texts


def _words(data: bytes, row_at: np.ndarray, offset: int, dtype: str) -> np.ndarray:
    """uint64 [F * 500]: the integer at `offset` in every field of the fast rows, read through
    strided views over runs of equally spaced rows (all of them when pids have equal length)."""
    step = np.diff(row_at)
    cut = np.flatnonzero(np.diff(step) != 0) + 2 if len(step) > 1 else np.zeros(0, dtype=np.int64)
    out = []
    for run in np.split(np.arange(len(row_at)), cut):
        stride = int(row_at[run[1]] - row_at[run[0]]) if len(run) > 1 else 0
        view = np.ndarray(shape=(len(run), MAX_RECS), dtype=dtype, buffer=data, offset=int(row_at[run[0]]) + offset,
                          strides=(stride, URI_LEN + 1))
        out.append(view.astype(np.uint64).ravel())
    return np.concatenate(out)


def _decode(raw: bytes, path: Path, line: int | None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"line {line}: " if line is not None else ""
        raise PipelineError(f"{path}: {where}not UTF-8 text ({exc.reason} at {raw[exc.start:exc.start + 4]!r})") from None


def _read_bytes(path: Path) -> bytes:
    """Gzip is recognised by its magic bytes, so a misnamed file still reads."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise PipelineError(f"{path}: is a directory, expected a submission CSV") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise PipelineError(f"{path}: corrupt or truncated gzip ({exc})") from None
    return data[len(_BOM):] if data.startswith(_BOM) else data
