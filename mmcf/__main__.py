"""`python -m mmcf`: train the denoising autoencoder schemes on preprocessed artifacts.

`torchrun --nproc_per_node=N -m mmcf ...` trains each scheme data-parallel over N processes
(one per GPU, common/distributed.py); rank 0 writes the models and prints the table.
"""
from __future__ import annotations

import argparse
import logging

from common import distributed
from common.cli import run_cli
from mmcf.config import load_config
from mmcf.predict import resolve_device
from mmcf.train import train_all
from preprocess.artifacts import load_artifacts

log = logging.getLogger("mmcf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmcf", description=(
        "Train MMCF's denoising autoencoders (one per scheme: tied, then untied where configured), "
        "resuming an interrupted run in OUT, and print validation metrics per category."))
    ap.add_argument("--artifacts", required=True, help="folder written by python -m preprocess.build")
    ap.add_argument("--out", required=True, help="folder for models, checkpoints and summary.json")
    ap.add_argument("--config", help="pipeline TOML; its [mmcf] section (defaults without it)")
    ap.add_argument("--scheme", action="append", metavar="NAME",
                    help="train only this scheme (repeatable); default: all of the config's schemes")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="auto = CUDA when present, else CPU (under torchrun: cuda:LOCAL_RANK)")
    ap.add_argument("--refit-from", metavar="DIR",
                    help="a run selected on validation: refit on every playlist (training + validation) for the "
                         "updates it kept, without validation")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    artifacts = load_artifacts(args.artifacts)
    with distributed.session(resolve_device(args.device)) as device:
        result = train_all(artifacts, args.out, cfg, device, args.scheme, args.refit_from)
        if not distributed.is_main():
            return 0
    if "val" not in result:
        log.info("refit in %.1f s: %s", result["train_seconds"], args.out)
        return 0
    val = result["val"]
    print(f"{'category':<24} {'playlists':>9} {'R-prec':>7} {'NDCG':>7} {'clicks':>7}")
    for cid, m in val["per_category"].items():
        print(f"{cid + ' ' + m['name']:<24} {m['playlists']:>9} {m['r_precision']:>7.4f} {m['ndcg']:>7.4f} "
              f"{m['clicks']:>7.2f}")
    print(f"{'all':<24} {result['predict_playlists']:>9} {val['r_precision']:>7.4f} {val['ndcg']:>7.4f} "
          f"{val['clicks']:>7.2f}")
    log.info("trained in %.1f s, predicted %d validation playlists in %.1f s", result["train_seconds"],
             result["predict_playlists"], result["predict_seconds"])
    return 0


if __name__ == "__main__":
    run_cli(main)
