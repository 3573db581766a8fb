"""`python -m ensemble`: the ensemble stage alone, over a run folder whose model stages are done.

MMCF's count-dependent mixing of the title model and the autoencoders (RUN/ensemble/mmcf.npz) and,
when the config has the rerank stage, candidates from every source reordered by a LightGBM model
trained on the validation playlists (RUN/ensemble/rerank/, RUN/ensemble/rerank.npz).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import run_cli
from common.device import resolve_device
from pipeline import stages
from pipeline.config import load_pipeline_config
from pipeline.recommend import write_run_config
from preprocess.artifacts import load_artifacts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ensemble", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path,
                    help="the run folder: RUN/artifacts, RUN/baselines, RUN/mmcf, RUN/charcnn as the config's stages need")
    ap.add_argument("--config", help="pipeline TOML (defaults without it)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto = CUDA when present")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    stages.check_inputs(args.run, cfg, "ensemble")
    write_run_config(args.run, cfg)  # recommend.py serves with these settings
    result = stages.ensemble(load_artifacts(args.run / "artifacts"), args.run, cfg, str(resolve_device(args.device)))
    print(f"wrote {', '.join(str(p) for n, p in stages.list_files(args.run, cfg).items() if n in ('mmcf', 'rerank'))}"
          f" ({', '.join(result)})")
    return 0


if __name__ == "__main__":
    run_cli(main)
