"""`python -m preprocess.synthetic`: bad arguments end as one error line, as in every other stage."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import run_cli
from common.errors import PipelineError
from preprocess import synthetic
from preprocess.synthetic.config import DEFAULT_PROFILE, PROFILES, synth_config
from preprocess.synthetic.writer import write_mpd


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as one PipelineError line instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise PipelineError(message)


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="python -m preprocess.synthetic", description=synthetic.__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the mpd.slice.*.json files")
    ap.add_argument("--playlists", type=int, default=20_000, help="number of playlists (default 20000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: up to 2)")
    ap.add_argument("--profile", default=DEFAULT_PROFILE,
                    help=f"generator profile: {', '.join(PROFILES)} (default {DEFAULT_PROFILE})")
    args = ap.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise PipelineError(f"--workers must be >= 1, got {args.workers}")
    write_mpd(args.out, args.playlists, args.seed, workers=args.workers, config=synth_config(args.profile))
    return 0


if __name__ == "__main__":
    run_cli(main)
