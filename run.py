"""Every stage in order: data -> artifacts -> models -> scores -> submission -> report.

`python run.py` alone is the embedded default: a synthetic MPD, a local challenge set, all
stages, the submission, and the per-category metrics table.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from common.cli import run_cli
from pipeline.config import load_pipeline_config
from pipeline.runner import Runner

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.toml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpd", type=Path, help="folder of MPD slices (default: generate the synthetic MPD)")
    ap.add_argument("--challenge", type=Path, help="challenge_set.json (default: built from the data)")
    ap.add_argument("--truth", type=Path, help="truth.json for local test metrics (optional)")
    ap.add_argument("--out", type=Path, default=Path("runs/default"), help="output folder (default: runs/default)")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="TOML config (default: configs/default.toml)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--force", action="store_true", help="re-run stages even when their inputs are unchanged")
    args = ap.parse_args(argv)
    if (args.mpd is None) != (args.challenge is None):
        ap.error("--mpd and --challenge go together (or leave both out for the synthetic default)")
    cfg = load_pipeline_config(args.config)
    runner = Runner(cfg, args.out, device=args.device, force=args.force)
    runner.add_log_file()
    logging.getLogger("run").info("config %s, output %s", args.config, args.out)
    runner.run(mpd=args.mpd, challenge=args.challenge, truth=args.truth)
    return 0


if __name__ == "__main__":
    run_cli(main)
