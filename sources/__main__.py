"""`python -m sources`: one registered source's stage alone (the sources with a stage of their own;
the baselines stage, `python -m baselines`, fits the others).

Fits the source on the training playlists choosing its settings on the validation playlists, then
on every playlist with them, and writes its models to OUT/val/ and OUT/challenge/ and its lists to
OUT/<source>.npz (run.py's layout: OUT = RUN/<source>).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import run_cli
from pipeline import stages
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts
from sources import REGISTRY


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sources", description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, choices=[n for n, s in REGISTRY.items() if s.stage == n],
                    help="a registered source with a stage of its own (the others run in python -m baselines)")
    ap.add_argument("--artifacts", required=True, help="folder written by python -m preprocess.build (RUN/artifacts)")
    ap.add_argument("--out", required=True, type=Path, help="the stage folder (RUN/<source>)")
    ap.add_argument("--config", help="pipeline TOML (defaults without it)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = CUDA when present")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    result = stages.source_stage(args.source, load_artifacts(args.artifacts), args.out, cfg, args.device)
    print(f"{args.source}: chose {result['selected']} on validation; lists in {args.out / (args.source + '.npz')}")
    return 0


if __name__ == "__main__":
    run_cli(main)
