"""Check a submission against the official rules and list every problem, not just the first.

    python -m submission.verify --submission FILE --challenge FILE

Exit 0 with a one-line summary when valid; exit 1 with the problems grouped by kind (the
first few of each kind shown, all counted) when not; exit 2 with one line when a file is
unreadable.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import scipy.sparse as sp

from common.cli import run_cli
from common.metrics import MAX_RECS
from preprocess.challenge_file import Challenge, read_challenge
from submission.csvio import SubmissionFile, malformed_uris, read_submission, team_info_problem

SHOW_PER_KIND = 20


@dataclass
class Finding:
    """All problems of one kind: how many there are and the first few, described."""

    kind: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class RowMap:
    """Where each submission row and entry points in the challenge set (-1: nowhere)."""

    row_of_entry: np.ndarray  # int64 [N] submission row of each listed track
    challenge_row: np.ndarray  # int64 [R] challenge row of each submission row, -1 for unknown pids
    first_of_pid: np.ndarray  # bool [R] the row is the first one for its (known) pid


def map_rows(sub: SubmissionFile, challenge: Challenge) -> RowMap:
    ch_pid = challenge.seeds.pid
    challenge_row = np.full(len(sub), -1, dtype=np.int64)
    if len(ch_pid):
        order = np.argsort(ch_pid, kind="stable")
        at = np.minimum(np.searchsorted(ch_pid[order], sub.pid), len(ch_pid) - 1)
        known = sub.pid_ok & (ch_pid[order][at] == sub.pid)
        challenge_row[known] = order[at[known]]
    known = challenge_row >= 0
    first = np.zeros(len(sub), dtype=bool)
    rows = np.flatnonzero(known)
    _, idx = np.unique(challenge_row[rows], return_index=True)
    first[rows[idx]] = True
    row_of_entry = np.repeat(np.arange(len(sub), dtype=np.int64), sub.n_tracks)
    return RowMap(row_of_entry=row_of_entry, challenge_row=challenge_row, first_of_pid=first)


def find_problems(sub: SubmissionFile, challenge: Challenge, n_tracks: int = MAX_RECS,
                  show: int = SHOW_PER_KIND) -> list[Finding]:
    """Every rule violation, grouped by kind, in a fixed order of kinds."""
    m = map_rows(sub, challenge)
    where = _row_labels(sub)
    out: list[Finding] = []

    def add(kind: str, hits: np.ndarray, describe) -> None:
        if len(hits):
            out.append(Finding(kind, len(hits), [describe(i) for i in hits[:show]]))

    team = team_info_problem(sub.team_info)
    if team is not None:
        out.append(Finding("team_info", 1, [team]))
    add("misplaced team_info", np.asarray(sub.stray_team_info),
        lambda ln: f"line {ln}: team_info must be the first non-comment line")
    add("bad pid", np.flatnonzero(~sub.pid_ok),
        lambda r: f"line {sub.line[r]}: pid {_short(sub.pid_text[r])} is not a non-negative integer")
    add("unknown pid", np.flatnonzero(sub.pid_ok & (m.challenge_row < 0)),
        lambda r: f"{where(r)}: pid is not in the challenge set")
    dup_rows = np.flatnonzero((m.challenge_row >= 0) & ~m.first_of_pid)
    first_line = _first_line_of_pid(sub, m)
    add("duplicate pid", dup_rows, lambda r: f"{where(r)}: pid already listed on line {first_line[m.challenge_row[r]]}")
    covered = np.zeros(len(challenge.seeds), dtype=bool)
    covered[m.challenge_row[m.challenge_row >= 0]] = True
    add("missing pid", np.flatnonzero(~covered), lambda c: f"pid {challenge.seeds.pid[c]}: no row in the submission")
    add("wrong number of tracks", np.flatnonzero(sub.n_tracks != n_tracks),
        lambda r: f"{where(r)}: {sub.n_tracks[r]} tracks, expected {n_tracks}")

    bad_uri = malformed_uris(sub.uris)[sub.codes] if len(sub.codes) else np.zeros(0, dtype=bool)
    add("malformed track uri", np.flatnonzero(bad_uri),
        lambda e: f"{where(m.row_of_entry[e])}: malformed track uri {_short(sub.uris[sub.codes[e]])} "
                  f"(track #{e - sub.indptr[m.row_of_entry[e]] + 1})")
    add("duplicate track", np.flatnonzero(_repeats(sub, m) & ~bad_uri),
        lambda e: f"{where(m.row_of_entry[e])}: track {sub.uris[sub.codes[e]]} listed more than once")
    add("seed track included", np.flatnonzero(_seed_entries(sub, challenge, m)),
        lambda e: f"{where(m.row_of_entry[e])}: seed track {sub.uris[sub.codes[e]]} of this playlist is listed")
    return out


def format_report(sub: SubmissionFile, findings: list[Finding]) -> str:
    total = sum(f.count for f in findings)
    lines = [f"{sub.path}: INVALID, {total} problem(s) of {len(findings)} kind(s)"]
    for f in findings:
        lines.append(f"{f.kind} ({f.count}):")
        lines.extend(f"  {e}" for e in f.examples)
        if f.count > len(f.examples):
            lines.append(f"  ... and {f.count - len(f.examples)} more")
    return "\n".join(lines)


def summary_line(sub: SubmissionFile) -> str:
    team = sub.team_info[-2] if sub.team_info else ""
    return f"{sub.path}: OK, {len(sub)} playlists x {MAX_RECS} tracks, team {team!r}"


def _short(text: str, limit: int = 60) -> str:
    """repr of a user's field, cut so that one garbage field cannot flood the report."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _row_labels(sub: SubmissionFile):
    def label(r: int) -> str:
        pid = sub.pid_text[r] if sub.pid_ok[r] else _short(sub.pid_text[r], 20)
        return f"line {sub.line[r]} (pid {pid})"
    return label


def _first_line_of_pid(sub: SubmissionFile, m: RowMap) -> dict[int, int]:
    rows = np.flatnonzero(m.first_of_pid)
    return dict(zip(m.challenge_row[rows].tolist(), sub.line[rows].tolist()))


def _repeats(sub: SubmissionFile, m: RowMap) -> np.ndarray:
    """bool [N]: the entry's uri already appeared earlier in the same row.

    Rows of equal length are sorted row by row (cheap), and a file without repeats, the usual
    case, stops there; otherwise a stable sort marks every occurrence after the first."""
    width = int(sub.n_tracks[0]) if len(sub) else 0
    if len(sub) and (sub.n_tracks == width).all():
        items = sub.codes.reshape(len(sub), width)
        if not (np.diff(np.sort(items, axis=1), axis=1) == 0).any():
            return np.zeros(len(sub.codes), dtype=bool)
    key = m.row_of_entry * max(len(sub.uris), 1) + sub.codes
    order = np.argsort(key, kind="stable")
    repeat = np.zeros(len(key), dtype=bool)
    repeat[order[1:]] = key[order[1:]] == key[order[:-1]]
    return repeat


def _seed_entries(sub: SubmissionFile, challenge: Challenge, m: RowMap) -> np.ndarray:
    """bool [N]: the entry is one of the seed tracks of the playlist its row names (a sparse
    playlist x uri lookup, one binary search per entry)."""
    seeds = challenge.seeds
    index = {u: i for i, u in enumerate(sub.uris)}
    seed_code = np.fromiter((index.get(u, -1) for u in seeds.track_uri.tolist()), dtype=np.int64,
                            count=len(seeds.track_uri))
    seed_row = np.repeat(np.arange(len(seeds), dtype=np.int64), np.diff(seeds.indptr))
    listed = seed_code >= 0
    table = sp.csr_matrix((np.ones(int(listed.sum()), dtype=np.int8), (seed_row[listed], seed_code[listed])),
                          shape=(len(seeds), max(len(sub.uris), 1)))
    table.sum_duplicates()
    crow = m.challenge_row[m.row_of_entry]
    known = crow >= 0
    out = np.zeros(len(sub.codes), dtype=bool)
    out[known] = np.asarray(table[crow[known], sub.codes[known]]).ravel() != 0
    return out


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m submission.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submission", required=True, help="submission .csv or .csv.gz")
    p.add_argument("--challenge", required=True, help="challenge_set.json the submission answers")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    challenge = read_challenge(args.challenge)
    sub = read_submission(args.submission)
    findings = find_problems(sub, challenge)
    if findings:
        print(format_report(sub, findings))
        return 1
    print(summary_line(sub))
    return 0


if __name__ == "__main__":
    run_cli(main)
