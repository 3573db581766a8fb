"""Score a submission with the challenge metrics, overall and per category.

    python -m submission.evaluate --submission FILE --challenge FILE --truth FILE --mpd DIR [--json]

The artist partial credit needs the artist of every recommended track; those come from the
truth file's track objects, the challenge seeds and, for the rest, the MPD slices in DIR.
An invalid submission is refused (see `submission.verify`) unless --allow-invalid is given;
then a pid's first row counts, missing pids score nothing and lists are cut at 500.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from common.cli import run_cli
from common.errors import PipelineError
from common.metrics import METRICS, summarize
from preprocess.challenge_file import read_challenge, read_truth, seed_categories
from preprocess.slices import track_artists
from submission.csvio import read_submission
from submission.score import challenge_rows, score
from submission.table import format_table
from submission.verify import find_problems

log = logging.getLogger("evaluate")


def evaluate(submission: str | Path, challenge_path: str | Path, truth_path: str | Path, mpd: str | Path,
             allow_invalid: bool = False) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """The summary (as `common.metrics.summarize`), the category of each challenge playlist and
    the per-playlist metrics, all in challenge order."""
    challenge = read_challenge(challenge_path)
    truth = read_truth(truth_path)
    challenge_rows(truth, challenge)
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
    known.update(track_artists(mpd, {u for u in sub.uris if u not in known}))
    start = time.perf_counter()
    per = score(sub, challenge, truth, known)
    log.info("scored %d playlists in %.2f s", len(challenge.seeds), time.perf_counter() - start)
    category = seed_categories(challenge.seeds)
    return summarize(per, category), category, per


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
