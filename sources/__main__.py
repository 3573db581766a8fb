"""`python -m sources`: one stage of the registered sources alone, in run.py's layout.

`--stage baselines` fits every source of the baselines stage (popularity, title popularity, item
and artist kNN, ALS, title kNN) into OUT = RUN/baselines; `--stage NAME` for a source with a stage
of its own (sequence) fits it into OUT = RUN/NAME. Each source chooses its settings on the
validation playlists, is refit on every playlist with them, and writes its lists for the validation
and challenge playlists.
"""
from __future__ import annotations

from pathlib import Path

from common.cli import run_cli, stage_parser
from pipeline import stages
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts
from sources import REGISTRY


def main(argv: list[str] | None = None) -> int:
    own = [n for n, s in REGISTRY.items() if s.stage == n]
    ap = stage_parser("python -m sources", __doc__.split("\n\n")[0], "RUN/<stage>")
    ap.add_argument("--stage", "--source", dest="stage", required=True, choices=["baselines", *own],
                    help="baselines, or a registered source with a stage of its own")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    art = load_artifacts(args.artifacts)
    if args.stage == "baselines":
        chosen = stages.baselines(art, args.out, cfg)["selected"]
    else:
        chosen = {args.stage: stages.source_stage(args.stage, art, args.out, cfg, args.device)["selected"]}
    for name, selected in chosen.items():
        print(f"{name}: chose {selected or 'nothing'} on validation")
    print(f"lists in {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
