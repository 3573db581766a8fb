"""`python -m charcnn`: train MMCF's title model against frozen autoencoders, then compare the
autoencoder alone with autoencoder + title model on every validation category.

`torchrun --nproc_per_node=N -m charcnn ...` trains data-parallel over N processes (one per
GPU, common/distributed.py); rank 0 writes the model, compares and prints.
"""
from __future__ import annotations

import argparse
import logging

from charcnn.config import load_title_config
from charcnn.train import compare_on_val, train_title_model
from common import distributed
from common.cli import run_cli
from common.io import write_json
from mmcf.predict import load_models, resolve_device
from preprocess.artifacts import load_artifacts

log = logging.getLogger("charcnn")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m charcnn", description=(
        "Train the title model (character CNN or LSTM) on the mixed output of MMCF with the "
        "autoencoders frozen, resuming an interrupted run in OUT, and print validation metrics."))
    ap.add_argument("--artifacts", required=True, help="folder written by python -m preprocess.build")
    ap.add_argument("--dae", required=True, help="folder of trained autoencoders (python -m mmcf --out)")
    ap.add_argument("--out", required=True, help="folder for title_model.pt, checkpoint.pt and history.json")
    ap.add_argument("--config", help="pipeline TOML; its [charcnn] section (defaults without it)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="auto = CUDA when present, else CPU (under torchrun: cuda:LOCAL_RANK)")
    ap.add_argument("--refit-from", metavar="DIR",
                    help="a title model selected on validation: refit on every playlist for the updates it kept "
                         "(--dae: the autoencoders refit the same way)")
    args = ap.parse_args(argv)
    cfg = load_title_config(args.config)
    art = load_artifacts(args.artifacts)
    with distributed.session(resolve_device(args.device)) as device:
        models = load_models(args.dae, device)
        summary = train_title_model(art, models, args.out, cfg, device, args.refit_from)
        if not distributed.is_main():
            return 0
    if args.refit_from:
        log.info("title model refit: %d updates in %.1f s", summary["updates"], summary["train_seconds"])
        return 0
    table = compare_on_val(art, models, args.out, cfg, device)
    write_json(f"{args.out}/val_metrics.json", table)
    print(f"{'category':<24} {'playlists':>9} {'DAE R-prec':>10} {'+title':>7} {'DAE NDCG':>9} {'+title':>7} "
          f"{'DAE clicks':>10} {'+title':>7}")
    dae, mixed = table["dae"], table["mmcf"]
    rows = [(f"{cid} {m['name']}", m["playlists"], m, mixed["per_category"][cid]) for cid, m in dae["per_category"].items()]
    rows.append(("all", sum(r[1] for r in rows), dae, mixed))
    for name, n, a, b in rows:
        print(f"{name:<24} {n:>9} {a['r_precision']:>10.4f} {b['r_precision']:>7.4f} {a['ndcg']:>9.4f} "
              f"{b['ndcg']:>7.4f} {a['clicks']:>10.2f} {b['clicks']:>7.2f}")
    best = summary["best_val_r_precision"]
    log.info("title model: %d updates in %.1f s, best selection R-precision %s", summary["updates"],
             summary["train_seconds"], "n/a" if best is None else f"{best:.4f}")
    return 0


if __name__ == "__main__":
    run_cli(main)
