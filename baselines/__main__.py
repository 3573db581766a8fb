"""`python -m baselines`: the baselines stage alone (popularity, title popularity, item kNN, ALS).

Writes each model's lists for the validation and challenge playlists into OUT (run.py's layout:
OUT = RUN/baselines); ALS's rank is chosen on the validation playlists.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import run_cli
from pipeline import stages
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m baselines", description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifacts", required=True, help="folder written by python -m preprocess.build (RUN/artifacts)")
    ap.add_argument("--out", required=True, type=Path, help="the stage folder (RUN/baselines)")
    ap.add_argument("--config", help="pipeline TOML (defaults without it)")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    art = load_artifacts(args.artifacts)
    record = stages.baselines(art, args.out, cfg)
    for name, chosen in record["selected"].items():
        if chosen:
            print(f"{name}: chose {chosen} on validation")
    return 0


if __name__ == "__main__":
    run_cli(main)
