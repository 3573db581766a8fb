"""The autoencoder stage: train MMCF's denoising autoencoders (one per scheme: tied, then untied where
configured) selected on the validation playlists into OUT/models, refit them on every playlist into
OUT/refit (a copy of OUT/models under [mmcf] refit_min_share), write their lists to OUT/dae.npz (run.py's layout: OUT = RUN/mmcf) and print validation
metrics per category. An interrupted run resumes.

`torchrun --nproc_per_node=N -m mmcf ...` trains each scheme data-parallel over N processes
(one per GPU, common/distributed.py); rank 0 writes the models and prints the table.
"""
from __future__ import annotations

import logging

from common import distributed
from common.cli import run_cli, stage_parser
from common.device import resolve_device
from common.io import read_json
from mmcf.train import SUMMARY_FILE, train_all
from pipeline import stages
from pipeline.config import load_pipeline_config
from preprocess.artifacts import load_artifacts

log = logging.getLogger("mmcf")


def main(argv: list[str] | None = None) -> int:
    ap = stage_parser("python -m mmcf", __doc__.split("\n\n")[0], "RUN/mmcf")
    ap.add_argument("--scheme", action="append", metavar="NAME",
                    help="only select this scheme (repeatable) into OUT/models, e.g. one per GPU; a later run "
                         "without --scheme finds it trained and does the rest")
    args = ap.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    artifacts = load_artifacts(args.artifacts)
    with distributed.session(resolve_device(args.device)) as device:
        if args.scheme:
            train_all(artifacts, args.out / "models", cfg.mmcf, device, args.scheme)
        else:
            stages.mmcf(artifacts, args.out, cfg, device)
        if not distributed.is_main():
            return 0
    result = read_json(args.out / "models" / SUMMARY_FILE)
    val = result["val"]
    print(f"{'category':<24} {'playlists':>9} {'R-prec':>7} {'NDCG':>7} {'clicks':>7}")
    for cid, m in val["per_category"].items():
        print(f"{cid + ' ' + m['name']:<24} {m['playlists']:>9} {m['r_precision']:>7.4f} {m['ndcg']:>7.4f} "
              f"{m['clicks']:>7.2f}")
    print(f"{'all':<24} {result['predict_playlists']:>9} {val['r_precision']:>7.4f} {val['ndcg']:>7.4f} "
          f"{val['clicks']:>7.2f}")
    log.info("selection trained in %.1f s, predicted %d validation playlists in %.1f s", result["train_seconds"],
             result["predict_playlists"], result["predict_seconds"])
    return 0


if __name__ == "__main__":
    run_cli(main)
