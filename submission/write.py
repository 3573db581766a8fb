"""`python -m submission.write`: a run's final lists to a verified submission CSV.

    python -m submission.write --run RUN --challenge FILE [--config FILE] [--out FILE]

Takes the lists of the config's final model ([run].final) from the run folder, pads short lists
with popularity, writes the official CSV (`.csv`, or gzipped for `.csv.gz`) and verifies it
against the challenge set; a submission that breaks a rule is an error, not a file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import run_cli
from pipeline import stages
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m submission.write", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path, help="the run folder (its model stages done)")
    ap.add_argument("--challenge", required=True, type=Path, help="challenge_set.json the run was built for")
    ap.add_argument("--config", help="pipeline TOML (defaults without it): [run].final picks the lists")
    ap.add_argument("--out", type=Path, help="the CSV to write (default: RUN/submission.csv)")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    stages.check_inputs(args.run, cfg, "submission")
    lists = stages.list_files(args.run, cfg)[cfg.run.final]
    path = stages.write_submission(load_artifacts(args.run / "artifacts"), lists, args.challenge,
                                   args.out or args.run / "submission.csv", cfg)
    print(f"wrote {path} from {lists}")
    return 0


if __name__ == "__main__":
    run_cli(main)
