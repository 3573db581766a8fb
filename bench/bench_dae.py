"""Speed of the MMCF denoising autoencoder's training and prediction on one artifact folder.

    python bench/bench_dae.py --artifacts RUN/artifacts [--updates 30] [--threads 2]

Speed: training playlists/s of the hand-written full-output step and of the CPU's sampled step
(tied and untied, fp32 and bf16 where the CPU has AMX) against the plain autograd step of the same
model measured in the same run, the time split of one update, and prediction playlists/s on
validation playlists. The model's items
are the dense vocabulary the pipeline would choose (mmcf/dense.py, default [mmcf] settings).
Prints markdown for bench/results/dae.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcf import dense as dense_vocab  # noqa: E402
from mmcf.config import MMCFConfig  # noqa: E402
from mmcf.model import DAE, Bag, Target  # noqa: E402
from mmcf.predict import recommend  # noqa: E402
from mmcf.train import Batcher, item_frequency, sampled_loss, use_bf16  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402


def time_updates(model: DAE, batcher: Batcher, cfg: MMCFConfig, n: int, bf16: bool, step: str) -> dict:
    autograd = step == "autograd"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.tied_lr, fused=not autograd, foreach=autograd or None)
    gen = torch.Generator()
    t_batch = t_step = t_opt = cpu = 0.0
    for u in range(n + 3):
        c0 = time.process_time()
        t0 = time.perf_counter()
        b = batcher.batch(u)
        bag = Bag.from_csr(b.x)
        target = Target(torch.from_numpy(b.target_rows), torch.from_numpy(b.target_cols))
        mask = model.dropout_mask(b.x.shape[0], cfg.hidden_keep, gen.manual_seed(u))
        t1 = time.perf_counter()
        if autograd:
            opt.zero_grad(set_to_none=True)
            model.reference_loss(bag, target, cfg.neg_weight, mask).backward()
        elif step == "sampled":
            model.sampled_loss_and_grad(bag, target, cfg.neg_weight, mask, torch.from_numpy(b.cols),
                                        torch.from_numpy(b.col_scale), b.n_whole, bf16, with_loss=u % 10 == 0)
        else:
            model.loss_and_grad(bag, target, cfg.neg_weight, mask, bf16=bf16, with_loss=u % 10 == 0)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if u >= 3:  # warm-up: buffers and allocator
            t_batch, t_step, t_opt = t_batch + t1 - t0, t_step + t2 - t1, t_opt + t3 - t2
            cpu += time.process_time() - c0
    total = t_batch + t_step + t_opt
    return {"ms_per_update": 1000 * total / n, "playlists_per_s": n * cfg.batch_size / total, "cpu_ms": 1000 * cpu / n,
            "batch_ms": 1000 * t_batch / n, "grad_ms": 1000 * t_step / n, "adam_ms": 1000 * t_opt / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--updates", type=int, default=30, help="timed updates per variant")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    art = load_artifacts(args.artifacts)
    full_train, full_val, vocab = art.playlists("train"), art.playlists("val"), art.vocab
    cfg = MMCFConfig()
    per_item = dense_vocab.bytes_per_item(cfg.hidden, cfg.batch_size, sampled_loss(cfg.loss, torch.device("cpu")))
    dense = dense_vocab.choose(full_train, cfg.min_counts, cfg.dense_memory_mb, per_item)
    train, val = dense.view(full_train), dense.view(full_val)
    n_items = dense.n_items
    print(f"artifacts {args.artifacts}: {len(train)} train playlists; dense vocabulary {dense.n_tracks} tracks + "
          f"{len(dense.artists)} artists (in >= {dense.min_count} / {dense.artist_min_count} training playlists; catalogue {vocab.n_tracks} + "
          f"{vocab.n_artists}); {args.threads} threads; AMX bf16 available: {use_bf16('auto', torch.device('cpu'))}\n")
    print("| step | model | precision | ms/update | CPU ms/update | playlists/s | batch ms | grad ms | Adam ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    scheme = cfg.scheme("25to100_random")
    batchers = {"autograd": Batcher(train, scheme, cfg.batch_size, 0, (0, 0)),
                "full": Batcher(train, scheme, cfg.batch_size, 0, (0, 0)),
                "sampled": Batcher(train, scheme, cfg.batch_size, 0, (0, 0), True, cfg.head, cfg.negatives)}
    precisions = [False, True] if use_bf16("auto", torch.device("cpu")) else [False]
    variants = [("autograd", False, tied) for tied in (True, False)]
    variants += [(step, bf16, tied) for step in ("full", "sampled") for bf16 in precisions for tied in (True, False)]
    for step, bf16, tied in variants:
        model = DAE(n_items, dense.n_tracks, cfg.hidden, tied=True)
        model.init_weights(torch.Generator().manual_seed(0), item_frequency(train))
        if not tied:
            model = model.untied_copy()
        r = time_updates(model, batchers[step], cfg, max(args.updates // (3 if step == "autograd" else 1), 3), bf16,
                         step)
        print(f"| {step} | {'tied' if tied else 'untied'} | "
              f"{'bf16' if bf16 else 'fp32'} | {r['ms_per_update']:.0f} | {r['cpu_ms']:.0f} | "
              f"{r['playlists_per_s']:.0f} | "
              f"{r['batch_ms']:.1f} | {r['grad_ms']:.0f} | {r['adam_ms']:.0f} |")

    rows = np.arange(min(len(val), 2000))
    model = DAE(n_items, dense.n_tracks, cfg.hidden, tied=True)
    model.init_weights(torch.Generator().manual_seed(0), item_frequency(train))
    prior = dense.track_prior
    recommend(model, val, rows[:10], cfg, prior)
    t0 = time.perf_counter()
    recommend(model, val, rows, cfg, prior)
    dt = time.perf_counter() - t0
    print(f"\nprediction: {len(rows)} validation playlists in {dt:.2f} s = {len(rows) / dt:.0f} playlists/s "
          f"(top 500, seeds removed, batch {cfg.predict_batch})")


if __name__ == "__main__":
    main()
