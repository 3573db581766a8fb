"""Speed (and optionally quality) of the MMCF denoising autoencoder on one artifact folder.

    python bench/bench_dae.py --artifacts RUN/artifacts [--updates 30] [--threads 2] [--models RUN/mmcf/models]

Speed: training playlists/s of the hand-written step (tied and untied, fp32 and bf16 where the
CPU has AMX) against the plain autograd step of the same model measured in the same run, the
time split of one update, and prediction playlists/s on validation playlists. The model's items
are the dense vocabulary the pipeline would choose (mmcf/dense.py, default [mmcf] settings).
Quality (--models, autoencoders selected on validation by `python -m mmcf`: RUN/mmcf/models):
validation R-precision / NDCG per category of the DAE against a popularity ranking (training
track counts, seeds removed).
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

from common.metrics import playlist_metrics, summarize  # noqa: E402
from mmcf import dense as dense_vocab  # noqa: E402
from mmcf.config import MMCFConfig  # noqa: E402
from mmcf.model import DAE, Bag, Target  # noqa: E402
from mmcf.predict import load_models, predict, recommend  # noqa: E402
from mmcf.train import Batcher, item_frequency, use_bf16  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402


def popularity(ps, track_count: np.ndarray, k: int = 500) -> np.ndarray:
    """Most popular training tracks (track_count: training playlists per catalogue track), each
    playlist's seeds removed (vectorised over a k + max-seeds head)."""
    seeds = ps.tracks.tocsr()
    n_tracks = len(track_count)
    head = np.argsort(-track_count, kind="stable")[:k + int(np.diff(seeds.indptr).max(initial=0))]
    seed_keys = np.repeat(np.arange(len(ps), dtype=np.int64), np.diff(seeds.indptr)) * n_tracks + seeds.indices
    keys = np.arange(len(ps), dtype=np.int64)[:, None] * n_tracks + head[None, :]
    is_seed = np.isin(keys, seed_keys)
    order = np.argsort(is_seed, axis=1, kind="stable")[:, :k]
    rec = head[order]
    return np.where(np.take_along_axis(is_seed, order, axis=1), -1, rec)


def time_updates(model: DAE, batcher: Batcher, cfg: MMCFConfig, n: int, bf16: bool, autograd: bool) -> dict:
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
    ap.add_argument("--models", help="trained autoencoders (RUN/mmcf/models): adds the quality table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    art = load_artifacts(args.artifacts)
    full_train, full_val, vocab = art.playlists("train"), art.playlists("val"), art.vocab
    cfg = MMCFConfig()
    dense = dense_vocab.choose(full_train, cfg.dense_memory_mb, dense_vocab.bytes_per_item(cfg.hidden, cfg.batch_size))
    train, val = dense.view(full_train), dense.view(full_val)
    n_items = dense.n_items
    print(f"artifacts {args.artifacts}: {len(train)} train playlists; dense vocabulary {dense.n_tracks} tracks + "
          f"{len(dense.artists)} artists (in >= {dense.min_count} / {dense.artist_min_count} training playlists; catalogue {vocab.n_tracks} + "
          f"{vocab.n_artists}); {args.threads} threads; AMX bf16 available: {use_bf16('auto', torch.device('cpu'))}\n")
    print("| step | model | precision | ms/update | CPU ms/update | playlists/s | batch ms | grad ms | Adam ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    batcher = Batcher(train, cfg.scheme("25to100_random"), cfg.batch_size, 0, (0, 0))
    variants = [(False, False, True), (False, False, False), (True, False, True), (True, False, False)]
    if use_bf16("auto", torch.device("cpu")):
        variants += [(False, True, True), (False, True, False)]
    for autograd, bf16, tied in variants:
        model = DAE(n_items, dense.n_tracks, cfg.hidden, tied=True)
        model.init_weights(torch.Generator().manual_seed(0), item_frequency(train))
        if not tied:
            model = model.untied_copy()
        r = time_updates(model, batcher, cfg, max(args.updates // (3 if autograd else 1), 3), bf16, autograd)
        print(f"| {'autograd' if autograd else 'hand-written'} | {'tied' if tied else 'untied'} | "
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

    if args.models:
        models = load_models(args.models)
        served = [c for s in models.cfg.schemes for c in s.categories]
        sub = full_val.subset(np.flatnonzero(np.isin(full_val.category, served)))
        arts = lambda r: np.where(r >= 0, vocab.track_artist[np.maximum(r, 0)], -1)  # noqa: E731
        rec, _ = predict(models, sub, vocab)
        dae = summarize(playlist_metrics(rec, arts(rec), sub.holdout, sub.holdout_artists, sub.n_holdouts),
                        sub.category)
        pop_rec = popularity(sub, np.diff(full_train.tracks.tocsc().indptr))
        pop = summarize(playlist_metrics(pop_rec, arts(pop_rec), sub.holdout, sub.holdout_artists, sub.n_holdouts),
                        sub.category)
        print("\n| category | playlists | DAE R-prec | pop R-prec | DAE NDCG | pop NDCG |")
        print("|---|---|---|---|---|---|")
        for c, m in dae["per_category"].items():
            p = pop["per_category"][c]
            print(f"| {c} {m['name']} | {m['playlists']} | {m['r_precision']:.4f} | {p['r_precision']:.4f} | "
                  f"{m['ndcg']:.4f} | {p['ndcg']:.4f} |")
        print(f"| all | {len(sub)} | {dae['r_precision']:.4f} | {pop['r_precision']:.4f} | {dae['ndcg']:.4f} | "
              f"{pop['ndcg']:.4f} |")


if __name__ == "__main__":
    main()
