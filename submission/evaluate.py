"""Score a submission with the challenge metrics, overall and per category.

    python -m submission.evaluate --submission FILE --challenge FILE --truth FILE --mpd DIR [--json]

The artist partial credit needs the artist of every recommended track; those come from the
truth file's track objects, the challenge seeds and, for the rest, the MPD slices in DIR.
Uris become integer ids once, and `common.metrics` scores all playlists as arrays.
An invalid submission is refused (see `submission.verify`) unless --allow-invalid is given;
then a pid's first row counts, missing pids score nothing and lists are cut at 500.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.cli import run_cli
from common.errors import PipelineError
from common.io import read_bytes
from common.metrics import MAX_RECS, METRICS, playlist_metrics, summarize
from common.progress import progress
from common.categories import BY_ID, infer_categories
from preprocess.mpd import URI_PREFIX, URI_RE, Challenge, load_json, read_challenge, read_slice, slice_files
from submission.csvio import SubmissionFile, read_submission
from submission.verify import find_problems, map_rows

log = logging.getLogger("evaluate")


@dataclass
class Truth:
    """Withheld tracks per playlist, flattened; entries indptr[i]:indptr[i+1] belong to pid[i]."""

    path: Path
    pid: np.ndarray  # int64 [P]
    indptr: np.ndarray  # int64 [P+1]
    track_uri: np.ndarray  # object [N]
    artist_uri: np.ndarray  # object [N]


class _TrackRef(msgspec.Struct, gc=False):
    track_uri: str
    artist_uri: str


class _TruthPlaylist(msgspec.Struct, gc=False):
    pid: int
    tracks: list[_TrackRef]


class _TruthDoc(msgspec.Struct, gc=False):
    playlists: list[_TruthPlaylist]


class _MpdPlaylist(msgspec.Struct, gc=False):
    tracks: list[_TrackRef]


class _MpdDoc(msgspec.Struct, gc=False):
    playlists: list[_MpdPlaylist]


# Typed decoders check types while parsing and skip every key the metrics do not need.
_TRUTH = msgspec.json.Decoder(_TruthDoc)
_MPD = msgspec.json.Decoder(_MpdDoc)


def read_truth(path: str | Path) -> Truth:
    """Validate the truth schema; the first problem ends with one line naming file and pid."""
    path = Path(path)
    try:
        pls = _TRUTH.decode(read_bytes(path)).playlists
        track_uri = [t.track_uri for pl in pls for t in pl.tracks]
        artist_uri = [t.artist_uri for pl in pls for t in pl.tracks]
        ok = (all(pl.tracks for pl in pls) and _uris_ok(track_uri, "track_uri")
              and _uris_ok(artist_uri, "artist_uri"))
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise PipelineError(_truth_problem(path, load_json(path)))
    pid = np.fromiter((pl.pid for pl in pls), dtype=np.int64, count=len(pls))
    uniq, counts = np.unique(pid, return_counts=True)
    if (counts > 1).any():
        raise PipelineError(f"{path}: pid {uniq[counts > 1][0]} appears more than once")
    indptr = np.zeros(len(pid) + 1, dtype=np.int64)
    np.cumsum([len(pl.tracks) for pl in pls], out=indptr[1:])
    return Truth(path=path, pid=pid, indptr=indptr, track_uri=np.asarray(track_uri, dtype=object),
                 artist_uri=np.asarray(artist_uri, dtype=object))


def _uris_ok(uris: list[str], key: str) -> bool:
    """All uris are prefix + 22 base62 characters: one joined byte matrix instead of a regex per uri."""
    width = len(URI_PREFIX[key]) + 22
    try:
        raw = ("\n".join(uris) + "\n").encode("ascii")
    except UnicodeEncodeError:
        return False
    if len(raw) != (width + 1) * len(uris):
        return False
    mat = np.frombuffer(raw, dtype=np.uint8).reshape(len(uris), width + 1)
    prefix = np.frombuffer(URI_PREFIX[key].encode(), dtype=np.uint8)
    return bool((mat[:, width] == 10).all() and (mat[:, :len(prefix)] == prefix).all()
                and _BASE62[mat[:, len(prefix):width]].all())


_BASE62 = np.zeros(256, dtype=bool)
_BASE62[np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)] = True


def _truth_problem(path: Path, data: object) -> str:
    """Slow path, only after the fast checks failed: describe the first bad entry."""
    if not isinstance(data, dict) or not isinstance(data.get("playlists"), list):
        return f"{path}: expected an object with a 'playlists' list"
    pls = data["playlists"]
    for i, pl in enumerate(pls):
        if not isinstance(pl, dict):
            return f"{path}: playlist #{i}: expected an object, got {type(pl).__name__}"
        if type(pl.get("pid")) is not int:
            return f"{path}: playlist #{i}: missing or non-integer 'pid'"
        where = f"{path}: pid {pl['pid']}"
        ts = pl.get("tracks")
        if not isinstance(ts, list):
            return f"{where}: missing or non-list 'tracks'"
        if not ts:
            return f"{where}: no withheld tracks (the metrics need at least one)"
        for j, t in enumerate(ts):
            if not isinstance(t, dict):
                return f"{where} track #{j}: expected an object, got {type(t).__name__}"
            for key in ("track_uri", "artist_uri"):
                if key not in t:
                    return f"{where} track #{j}: missing key '{key}'"
                if type(t[key]) is not str or not URI_RE[key].match(t[key]):
                    return f"{where} track #{j}: malformed {key} {t[key]!r}"
    return f"{path}: invalid truth entries"


def artist_map(folder: str | Path, wanted: set[str]) -> dict[str, str]:
    """track uri -> artist uri for the `wanted` tracks, reading slices until all are found."""
    files = slice_files(folder)
    wanted = set(wanted)
    found: dict[str, str] = {}
    start, read = time.perf_counter(), 0
    for path in progress(files, desc="MPD artists", unit="slices", disable=not wanted):
        if not wanted:
            break
        read += 1
        try:
            playlists = _MPD.decode(read_bytes(path)).playlists
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            read_slice(path)  # raises the reader's precise one-line message
            raise PipelineError(f"{path}: unexpected layout ({exc})") from None
        for pl in playlists:
            for t in pl.tracks:
                if t.track_uri in wanted:
                    found[t.track_uri] = t.artist_uri
                    wanted.discard(t.track_uri)
    log.info("artists of %d tracks found in %d of %d slices (%.1f s); %d not in the MPD",
             len(found), read, len(files), time.perf_counter() - start, len(wanted))
    return found


def challenge_categories(challenge: Challenge) -> np.ndarray:
    """Category id per challenge playlist from its seed count, title and seed positions."""
    s = challenge.seeds
    n_seeds = np.diff(s.indptr)
    row = np.repeat(np.arange(len(s), dtype=np.int64), n_seeds)
    order = np.lexsort((s.pos, row))
    local = np.arange(len(row)) - s.indptr[row]
    off = np.bincount(row[s.pos[order] != local], minlength=len(s))
    return infer_categories(n_seeds, s.has_name, off == 0)


def recommendation_matrix(sub: SubmissionFile, challenge: Challenge) -> np.ndarray:
    """int [P, 500] codes into sub.uris in challenge row order; -1 where nothing was listed.
    A pid's first row counts; unknown pids are ignored."""
    m = map_rows(sub, challenge)
    rec = np.full((len(challenge.seeds), MAX_RECS), -1, dtype=np.int64)
    if m.first_of_pid.all() and (sub.n_tracks == MAX_RECS).all():  # the usual case: whole rows at once
        rec[m.challenge_row] = sub.codes.reshape(len(sub), MAX_RECS)
        return rec
    col = np.arange(len(sub.codes)) - sub.indptr[m.row_of_entry]
    use = m.first_of_pid[m.row_of_entry] & (col < MAX_RECS)
    rec[m.challenge_row[m.row_of_entry[use]], col[use]] = sub.codes[use]
    return rec


def score(sub: SubmissionFile, challenge: Challenge, truth: Truth, artists: dict[str, str]) -> dict[str, np.ndarray]:
    """Per-playlist metrics in challenge row order; `truth` must cover exactly the challenge pids.

    Item ids: the submission's uri codes, then truth tracks nobody recommended. Dictionaries
    number the strings because Python caches a string's hash, which makes them faster here than
    hashing the text again in pandas."""
    index = {u: i for i, u in enumerate(sub.uris)}
    truth_item = np.fromiter((index.setdefault(u, len(index)) for u in truth.track_uri), dtype=np.int64,
                             count=len(truth.track_uri))
    a_index: dict[str, int] = {}
    item_artist = np.fromiter((-1 if (a := artists.get(u)) is None else a_index.setdefault(a, len(a_index))
                               for u in index), dtype=np.int64, count=len(index))
    truth_artist = item_artist[truth_item]
    for e in np.flatnonzero(truth_artist < 0).tolist():  # only when `artists` lacks a truth track
        truth_artist[e] = item_artist[truth_item[e]] = a_index.setdefault(truth.artist_uri[e], len(a_index))

    rows = np.repeat(_row_order(truth, challenge), np.diff(truth.indptr))
    g = _binary_csr(rows, truth_item, (len(challenge.seeds), len(index)))
    g_artist = _binary_csr(rows, truth_artist, (len(challenge.seeds), len(a_index)))
    rec = recommendation_matrix(sub, challenge)
    rec_artist = np.where(rec >= 0, item_artist[np.maximum(rec, 0)], -1)
    return playlist_metrics(rec, rec_artist, g, g_artist)


def _row_order(truth: Truth, challenge: Challenge) -> np.ndarray:
    """Challenge row of each truth entry; refuses a truth file that does not match the challenge."""
    ch_pid = challenge.seeds.pid
    at = pd.Index(ch_pid).get_indexer(truth.pid)
    if (at < 0).any():
        extra = truth.pid[at < 0]
        raise PipelineError(f"{truth.path}: pid {extra[0]} is not in the challenge set {challenge.path} "
                            f"({len(extra)} such pid(s))")
    missing = np.setdiff1d(ch_pid, truth.pid)
    if missing.size:
        raise PipelineError(f"{truth.path}: no entry for challenge pid {missing[0]} ({missing.size} pid(s) missing)")
    return at.astype(np.int64)


def _binary_csr(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Set semantics: a track withheld twice is one element of G."""
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1
    return m


def evaluate(submission: str | Path, challenge_path: str | Path, truth_path: str | Path, mpd: str | Path,
             allow_invalid: bool = False) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """The summary (as `common.metrics.summarize`), the category of each challenge playlist and
    the per-playlist metrics, all in challenge order."""
    challenge = read_challenge(challenge_path)
    truth = read_truth(truth_path)
    _row_order(truth, challenge)
    sub = read_submission(submission)
    findings = find_problems(sub, challenge)
    if findings:
        total = sum(f.count for f in findings)
        if not allow_invalid:
            raise PipelineError(
                f"{sub.path}: invalid submission, {total} problem(s), first: {findings[0].examples[0]}; "
                "run python -m submission.verify for the list or pass --allow-invalid to score it anyway")
        log.warning("scoring an invalid submission: %s", ", ".join(f"{f.count} {f.kind}" for f in findings))
    known = dict(zip(truth.track_uri, truth.artist_uri))
    known.update(zip(challenge.seeds.track_uri.tolist(), challenge.seeds.artist_uri.tolist()))
    known.update(artist_map(mpd, {u for u in sub.uris if u not in known}))
    start = time.perf_counter()
    per = score(sub, challenge, truth, known)
    log.info("scored %d playlists in %.2f s", len(challenge.seeds), time.perf_counter() - start)
    category = challenge_categories(challenge)
    return summarize(per, category), category, per


def format_table(summary: dict, category: np.ndarray, per: dict[str, np.ndarray]) -> str:
    head = f"{'category':<26}{'playlists':>10}{'R-prec':>9}{'NDCG':>9}{'clicks':>9}"
    lines = [head, "-" * len(head)]
    for cid, row in summary["per_category"].items():
        lines.append(f"{cid:>2} {BY_ID[int(cid)].name:<23}{row['playlists']:>10}" + _cells(row))
    other = category == 0
    if other.any():
        lines.append(f"{'   (no category)':<26}{int(other.sum()):>10}" + _cells({m: v[other].mean() for m, v in per.items()}))
    lines.append("-" * len(head))
    lines.append(f"{'   all':<26}{len(category):>10}" + _cells(summary))
    return "\n".join(lines)


def _cells(row: dict) -> str:
    return f"{row['r_precision']:>9.4f}{row['ndcg']:>9.4f}{row['clicks']:>9.3f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m submission.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submission", required=True, help="submission .csv or .csv.gz")
    p.add_argument("--challenge", required=True, help="challenge_set.json the submission answers")
    p.add_argument("--truth", required=True, help="truth.json: the withheld tracks of every challenge pid")
    p.add_argument("--mpd", required=True, help="folder of MPD slices (track -> artist for the artist credit)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--allow-invalid", action="store_true",
                   help="score a submission that breaks the rules instead of refusing it")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary, category, per = evaluate(args.submission, args.challenge, args.truth, args.mpd, args.allow_invalid)
    if args.json:
        print(json.dumps({k: summary[k] for k in (*METRICS, "per_category")}, indent=1))
    else:
        print(format_table(summary, category, per))
    return 0


if __name__ == "__main__":
    run_cli(main)
