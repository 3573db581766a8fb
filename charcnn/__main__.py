"""The title model stage: train the title model (character CNN or LSTM) on the mixed output of MMCF
with the autoencoders frozen, selected on the validation playlists into OUT/model, refit on every
playlist into OUT/refit (run.py's layout: OUT = RUN/charcnn), print validation metrics and compare
the autoencoder alone with autoencoder + title model on every validation category. An interrupted
run resumes.

`torchrun --nproc_per_node=N -m charcnn ...` trains data-parallel over N processes (one per
GPU, common/distributed.py); rank 0 writes the model, compares and prints.
"""
from __future__ import annotations

import logging
from pathlib import Path

from charcnn.train import compare_on_val
from common import distributed
from common.cli import run_cli, stage_parser
from common.device import resolve_device
from common.io import write_json
from mmcf.predict import load_models
from pipeline import stages
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts

log = logging.getLogger("charcnn")


def main(argv: list[str] | None = None) -> int:
    ap = stage_parser("python -m charcnn", __doc__.split("\n\n")[0], "RUN/charcnn")
    ap.add_argument("--dae", required=True, type=Path, help="the autoencoder stage folder (RUN/mmcf)")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    art = load_artifacts(args.artifacts)
    with distributed.session(resolve_device(args.device)) as device:
        stages.charcnn(art, args.dae, args.out, cfg, device)
        if not distributed.is_main():
            return 0
        models = load_models(args.dae / "models", device)
    selected = args.out / "model"
    table = compare_on_val(art, models, selected, cfg.charcnn, device)
    write_json(selected / "val_metrics.json", table)
    print(f"{'category':<24} {'playlists':>9} {'DAE R-prec':>10} {'+title':>7} {'DAE NDCG':>9} {'+title':>7} "
          f"{'DAE clicks':>10} {'+title':>7}")
    dae, mixed = table["dae"], table["mmcf"]
    rows = [(f"{cid} {m['name']}", m["playlists"], m, mixed["per_category"][cid]) for cid, m in dae["per_category"].items()]
    rows.append(("all", sum(r[1] for r in rows), dae, mixed))
    for name, n, a, b in rows:
        print(f"{name:<24} {n:>9} {a['r_precision']:>10.4f} {b['r_precision']:>7.4f} {a['ndcg']:>9.4f} "
              f"{b['ndcg']:>7.4f} {a['clicks']:>10.2f} {b['clicks']:>7.2f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
