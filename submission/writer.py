"""Turn model output (vocabulary ids) into a valid official submission file.

Rules are enforced here rather than trusted upstream: seeds and repeats are dropped, short
lists are topped up from a popularity ranking, and every row gets exactly 500 tracks. The
file is written atomically; gzip output has a zero mtime and no embedded name, so the same
input always gives the same bytes.
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.io import atomic_path
from common.metrics import MAX_RECS, first_occurrence
from submission.csvio import TEAM_TAG

log = logging.getLogger("writer")


def finalize(rec: np.ndarray, seeds: sp.csr_matrix, popularity: np.ndarray, n: int = MAX_RECS) -> np.ndarray:
    """int [P, n] vocab ids: `rec` without seeds, repeats and -1, in order, then the most popular
    tracks that are neither seeds nor already listed.

    rec: int [P, K] vocab ids best first (-1 = empty); seeds: [P, T] nonzero = seed track;
    popularity: vocab ids best first.
    """
    rec = np.asarray(rec, dtype=np.int64)
    n_pl, n_vocab = seeds.shape
    if rec.ndim != 2 or rec.shape[0] != n_pl:
        raise PipelineError(f"recommendations have shape {rec.shape}, expected ({n_pl}, K) like the seeds")
    if rec.size and rec.max() >= n_vocab:
        raise PipelineError(f"recommendation id {rec.max()} outside the vocabulary of {n_vocab} tracks")
    popularity = np.asarray(popularity, dtype=np.int64)
    if popularity.size and (popularity.min() < 0 or popularity.max() >= n_vocab):
        raise PipelineError(f"popularity ranking holds ids outside the vocabulary of {n_vocab} tracks")
    _, first = np.unique(popularity, return_index=True)
    popularity = popularity[np.sort(first)]

    seeds = seeds.tocsr()
    kept = _keep(rec, seeds)
    need = n - kept.sum(axis=1)
    out = np.empty((n_pl, n), dtype=np.int64)
    full = need <= 0
    if full.any():
        out[full] = _first(rec[full], kept[full], n)
    short = np.flatnonzero(~full)
    if short.size:
        n_pad = int(min(len(popularity), n + int(np.diff(seeds.indptr).max(initial=0))))
        merged = np.concatenate([rec[short], np.broadcast_to(popularity[:n_pad], (short.size, n_pad))], axis=1)
        ok = _keep(merged, seeds[short])
        ok[:, rec.shape[1]:] &= np.cumsum(ok[:, rec.shape[1]:], axis=1) <= need[short, None]
        unfilled = ok.sum(axis=1) < n
        if unfilled.any():
            raise PipelineError(f"cannot fill {n} tracks for {int(unfilled.sum())} playlist(s): the popularity "
                                f"ranking has {len(popularity)} tracks, too few once seeds are excluded")
        out[short] = _first(merged, ok, n)
    log.info("submission rows: %d playlists, %d topped up with %d popular tracks", n_pl, short.size,
             int(need[short].sum()))
    return out


def _first(items: np.ndarray, ok: np.ndarray, n: int) -> np.ndarray:
    """The first n items of each row where ok, in order (every row has at least n)."""
    order = np.argsort(~ok, axis=1, kind="stable")[:, :n]
    return np.take_along_axis(items, order, axis=1)


def _keep(items: np.ndarray, seeds: sp.csr_matrix) -> np.ndarray:
    """bool: a real id, not a seed of its row (sparse lookups), and its first appearance in the row."""
    valid = items >= 0
    safe = np.where(valid, items, 0)
    rows = np.repeat(np.arange(items.shape[0], dtype=np.int64), items.shape[1])
    is_seed = np.asarray(seeds[rows, safe.ravel()]).reshape(items.shape) != 0 if items.size else valid
    ok = valid & ~is_seed
    return ok & first_occurrence(np.where(ok, items, -1))


def write_rows(path: str | Path, pids: np.ndarray, uris: np.ndarray, team_name: str, email: str) -> None:
    """Write a ready [P, 500] uri matrix (str or ASCII bytes); .gz in the name selects gzip
    (level 6: a few percent larger than level 9 and several times faster)."""
    for what, value in (("team name", team_name), ("contact email", email)):
        if not value or any(c in value for c in ",\n\r") or value != value.strip():
            raise PipelineError(f"{what} {value!r} must be non-empty, without commas, line breaks or edge spaces")
    pids = np.asarray(pids, dtype=np.int64)
    if len(np.unique(pids)) != len(pids):
        raise PipelineError("submission pids must be unique")
    uris = np.asarray(uris)
    if uris.ndim != 2 or uris.shape[0] != len(pids):
        raise PipelineError(f"uri matrix of shape {uris.shape} does not match {len(pids)} pids")
    data = _csv_bytes(f"{TEAM_TAG},{team_name},{email}\n".encode("utf-8"), pids, uris)
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            if path.suffix == ".gz":
                with gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=6) as gz:
                    gz.write(data)
            else:
                fh.write(data)


def _csv_bytes(head: bytes, pids: np.ndarray, uris: np.ndarray) -> bytes:
    """The file's bytes. Equal-width uris (always, for Spotify uris) are laid out as one byte
    matrix with the separators written in columns; anything else is joined as text."""
    try:
        cells = uris if uris.dtype.kind == "S" else np.ascontiguousarray(uris.astype(str)).astype("S")
    except UnicodeEncodeError:
        raise PipelineError("track uris must be ASCII") from None
    width = cells.dtype.itemsize
    if not cells.size or not (np.strings.str_len(cells) == width).all():
        rows = (f"{p}," + ",".join(r) for p, r in zip(pids.tolist(), cells.astype(str).tolist()))
        return head + "".join(r + "\n" for r in rows).encode("ascii")
    n_rows, n = cells.shape
    body = np.empty((n_rows, n, width + 1), dtype=np.uint8)
    body[:, :, :width] = np.ascontiguousarray(cells).view(np.uint8).reshape(n_rows, n, width)
    body[:, :, width] = ord(",")
    body[:, -1, width] = ord("\n")
    parts = [head]
    for pid, row in zip(pids.tolist(), body.reshape(n_rows, -1)):
        parts.append(b"%d," % pid)
        parts.append(row.tobytes())
    return b"".join(parts)


def write_submission(path: str | Path, pids: np.ndarray, rec: np.ndarray, track_uri: np.ndarray,
                     seeds: sp.csr_matrix, popularity: np.ndarray, team_name: str, email: str,
                     n: int = MAX_RECS) -> None:
    """Write the official CSV (.csv or .csv.gz) with exactly `n` tracks per pid.

    pids: int [P]; rec: int [P, K] vocab ids best first (-1 = empty); track_uri: str [T] the
    vocabulary (Vocab.track_uri); seeds: [P, T] the playlists' seed tracks (PlaylistSet.tracks;
    seeds outside the vocabulary need no mask since only vocabulary tracks are written);
    popularity: vocab ids best first, used to top up short lists.
    """
    pids = np.asarray(pids)
    if len(pids) != seeds.shape[0] or seeds.shape[1] != len(track_uri):
        raise PipelineError(f"{len(pids)} pids, seeds of shape {seeds.shape} and {len(track_uri)} vocabulary "
                            "tracks do not line up")
    ids = finalize(rec, seeds, popularity, n)
    try:
        vocab = np.asarray(track_uri).astype("S")  # once per vocabulary, not per cell
    except UnicodeEncodeError:
        raise PipelineError("vocabulary track uris must be ASCII") from None
    write_rows(path, pids, vocab[ids], team_name, email)
    log.info("wrote %s: %d playlists x %d tracks", path, len(pids), n)
