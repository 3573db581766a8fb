"""Speed and GPU memory at the full MPD's dimensions: DAE updates of every scheme, MMCF prediction
for a challenge-sized set, and title-model updates. Random playlists stand in for the MPD: the
cost of a step depends on the shapes and the number of nonzeros, not on what the playlists mean.

    python bench/bench_gpu_full.py [--scale 1] [--updates 200] [--device auto]

At --scale 1: 1M training playlists of mean length ~66 (lengths 5..250) over the full MPD's
catalogue, 2,262,292 tracks and 295,860 artists (2.56M outputs: the whole catalogue, an upper
bound for configs/full_mpd.toml, whose MMCF min counts keep ~770K), with a Zipf-like track
popularity, hidden 256, batch 250 (DAE) / 150 (titles), 10,000 challenge playlists (1,000 per
category) predicted to a top 500. The autoencoders' dense vocabulary is the whole random catalogue,
and the peak GPU memory is set against full_mpd.toml's dense budget.
--scale 0.01 shrinks the playlist, track and artist counts (not the batch or hidden sizes) for a
quick CPU check.
Each scheme/phase is timed over --updates Adam updates after 5 warm-up ones, in the precision
training uses ("auto": bf16 on GPUs that have it) and in fp32, and extrapolated to an epoch
(training playlists / batch updates). Weights start from Glorot (init = "svd" costs a CPU
randomised SVD before training, not part of an update). Prints markdown.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from charcnn.config import TitleConfig  # noqa: E402
from charcnn.model import TitleModel  # noqa: E402
from charcnn.train import _Batches, _step  # noqa: E402
from mmcf.config import MMCFConfig  # noqa: E402
from mmcf.dense import DenseVocab  # noqa: E402
from mmcf.model import DAE, Bag, Target  # noqa: E402
from common.device import resolve_device  # noqa: E402
from mmcf.predict import MMCFModels, predict  # noqa: E402
from mmcf.train import LOSS_EVERY, Batcher, item_frequency, use_bf16  # noqa: E402
from pipeline.config import load_pipeline_config  # noqa: E402
from preprocess.artifacts import PlaylistSet, Vocab  # noqa: E402
from common.categories import CATEGORIES  # noqa: E402
from preprocess.titles import title_chars  # noqa: E402

WARMUP = 5
TITLES = ["country", "chill", "rap", "workout", "oldies", "christmas", "rock", "party", "throwback", "jams"]


def random_playlists(n: int, n_tracks: int, track_artist: np.ndarray, rng: np.random.Generator,
                     min_len: int = 5) -> PlaylistSet:
    """n playlists of Zipf-popular distinct tracks in draw order; lognormal lengths (5..250) whose
    mean, once repeated draws are dropped, is about the MPD's 66."""
    lengths = np.clip(np.round(rng.lognormal(4.0, 0.75, n)), min_len, 250).astype(np.int64)
    cdf = np.cumsum(1.0 / np.arange(1, n_tracks + 1) ** 0.9)
    row = np.repeat(np.arange(n, dtype=np.int64), lengths)
    track = np.minimum(np.searchsorted(cdf, rng.random(len(row)) * cdf[-1]), n_tracks - 1)
    first = np.unique(row * n_tracks + track, return_index=True)[1]
    keep = np.zeros(len(row), dtype=bool)
    keep[first] = True
    row, track = row[keep], track[keep]
    starts = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))])
    pos = (np.arange(len(row)) - starts[row] + 1).astype(np.int32)
    tracks = sp.csr_matrix((pos, (row, track)), shape=(n, n_tracks))
    n_artists = int(track_artist.max()) + 1
    artist = track_artist[track].astype(np.int64)
    first_a = np.unique(row * n_artists + artist, return_index=True)[1]
    artists = sp.csr_matrix((pos[first_a], (row[first_a], artist[first_a])), shape=(n, n_artists))
    counts = np.diff(tracks.indptr).astype(np.int32)
    titles = [TITLES[i % len(TITLES)] for i in range(n)]
    empty_t, empty_a = sp.csr_matrix((n, n_tracks), dtype=np.int8), sp.csr_matrix((n, n_artists), dtype=np.int8)
    return PlaylistSet(pid=np.arange(n, dtype=np.int64), title=np.array(titles), has_title=np.ones(n, dtype=bool),
                       title_chars=title_chars(titles), num_tracks=counts, category=np.zeros(n, dtype=np.int8),
                       n_seeds=counts.copy(), n_unknown=np.zeros(n, dtype=np.int32), tracks=tracks, artists=artists,
                       n_holdouts=np.zeros(n, dtype=np.int32), holdout=empty_t, holdout_artists=empty_a)


def challenge_like(n_per_category: int, n_tracks: int, track_artist: np.ndarray, rng: np.random.Generator
                   ) -> PlaylistSet:
    """Playlists cut to each challenge category's seed count (the first seeds: speed does not care)."""
    full = random_playlists(n_per_category * len(CATEGORIES), n_tracks, track_artist, rng, min_len=110)
    cats = np.repeat([c.id for c in CATEGORIES], n_per_category)
    cut = np.repeat([c.n_seeds for c in CATEGORIES], n_per_category)
    t = full.tracks.tocoo()
    keep = t.data <= cut[t.row]
    full.tracks = sp.csr_matrix((t.data[keep], (t.row[keep], t.col[keep])), shape=t.shape)
    a = full.artists.tocoo()
    keep = a.data <= cut[a.row]
    full.artists = sp.csr_matrix((a.data[keep], (a.row[keep], a.col[keep])), shape=a.shape)
    full.category, full.n_seeds = cats.astype(np.int8), cut.astype(np.int32)
    return full


def make_vocab(train: PlaylistSet, track_artist: np.ndarray) -> Vocab:
    n_tracks, n_artists = train.tracks.shape[1], train.artists.shape[1]
    track_uri = np.char.add("spotify:track:", np.arange(n_tracks).astype(str))
    artist_uri = np.char.add("spotify:artist:", np.arange(n_artists).astype(str))
    return Vocab(track_uri=track_uri, track_name=track_uri, track_artist=track_artist.astype(np.int32),
                 track_count=np.bincount(train.tracks.indices, minlength=n_tracks).astype(np.int64),
                 track_album=np.arange(n_tracks, dtype=np.int32), track_duration=np.full(n_tracks, 200000),
                 artist_uri=artist_uri, artist_name=artist_uri,
                 artist_count=np.bincount(train.artists.indices, minlength=n_artists).astype(np.int64),
                 album_uri=track_uri)


def whole_catalogue(train: PlaylistSet) -> DenseVocab:
    """A dense vocabulary of every track and artist, in catalogue order (dense id = catalogue id)."""
    n_tracks, n_artists = train.tracks.shape[1], train.artists.shape[1]
    return DenseVocab(tracks=np.arange(n_tracks, dtype=np.int32), artists=np.arange(n_artists, dtype=np.int32),
                      track_count=np.bincount(train.tracks.indices, minlength=n_tracks).astype(np.int64),
                      n_catalogue_tracks=n_tracks, n_catalogue_artists=n_artists, min_count=0, n_train=len(train))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def time_dae(model: DAE, batcher: Batcher, cfg: MMCFConfig, lr: float, n: int, bf16: bool,
             device: torch.device) -> dict:
    """ms per update of train_scheme's loop body (batch, mask, step with the sampled loss, Adam),
    and the CPU's batch building in it, which overlaps the GPU's work on the update before."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    gen = torch.Generator(device=device)
    batch_s = 0.0
    for u in range(WARMUP + n):
        if u == WARMUP:
            sync(device)
            start, batch_s = time.perf_counter(), 0.0
        t0 = time.perf_counter()
        b = batcher.batch(u)
        batch_s += time.perf_counter() - t0  # before the copies: a copy to the GPU waits for its queue
        bag = Bag.from_csr(b.x, device)
        target = Target(torch.from_numpy(b.target_rows).to(device), torch.from_numpy(b.target_cols).to(device))
        mask = model.dropout_mask(b.x.shape[0], cfg.hidden_keep, gen.manual_seed(u))
        model.loss_and_grad(bag, target, cfg.neg_weight, mask, bf16=bf16, with_loss=u % LOSS_EVERY == 0)
        opt.step()
    sync(device)
    return {"ms": 1000 * (time.perf_counter() - start) / n, "batch_ms": 1000 * batch_s / n}


def fresh_model(train: PlaylistSet, cfg: MMCFConfig, tied: bool, device: torch.device) -> DAE:
    model = DAE(train.tracks.shape[1] + train.artists.shape[1], train.tracks.shape[1], cfg.hidden, tied=True)
    model.init_weights(torch.Generator().manual_seed(cfg.seed), item_frequency(train))
    return model.to(device) if tied else model.to(device).untied_copy()


def bench_dae(train: PlaylistSet, cfg: MMCFConfig, n: int, device: torch.device) -> list[dict]:
    precisions = sorted({use_bf16(cfg.precision, device), False}, reverse=True)
    rows = []
    for i, scheme in enumerate(cfg.schemes):
        batcher = Batcher(train, scheme, cfg.batch_size, cfg.seed, (i, 0))
        for phase in ["tied", "untied"] if scheme.untied_epochs else ["tied"]:
            for bf16 in precisions:
                model = fresh_model(train, cfg, phase == "tied", device)
                reset_peak(device)
                lr = cfg.tied_lr if phase == "tied" else cfg.untied_lr
                r = time_dae(model, batcher, cfg, lr, n, bf16, device)
                r.update(scheme=scheme.name, phase=phase, precision="bf16" if bf16 else "fp32", peak_gb=peak_gb(device))
                rows.append(r)
                print(f"  {scheme.name} {phase} {r['precision']}: {r['ms']:.2f} ms/update", file=sys.stderr)
                del model
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return rows


def bench_predict(train: PlaylistSet, cfg: MMCFConfig, challenge: PlaylistSet, vocab: Vocab,
                  device: torch.device) -> dict:
    """Seconds for `predict` on the challenge-like set, with one untied model per scheme."""
    models = {s.name: fresh_model(train, cfg, not s.untied_epochs, device).eval() for s in cfg.schemes}
    mm = MMCFModels(cfg=cfg, models=models, fingerprint=vocab.fingerprint, dense=whole_catalogue(train))
    predict(mm, challenge.subset(np.arange(min(500, len(challenge)))), vocab)  # warm-up
    reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    rec, _ = predict(mm, challenge, vocab)
    sync(device)
    assert rec.shape == (len(challenge), 500)
    return {"seconds": time.perf_counter() - t0, "playlists": len(challenge), "peak_gb": peak_gb(device)}


def bench_title(train: PlaylistSet, dae_cfg: MMCFConfig, dae: DAE, n: int, device: torch.device) -> dict:
    """ms per title-model update (charcnn.train._step: CNN encoder, hand-written dense gradient of the
    full output layer, as on a GPU, the frozen DAE's forward on the fed rows)."""
    cfg = TitleConfig(train_scheme="x", loss="full")
    n_out = train.tracks.shape[1] + train.artists.shape[1]
    torch.manual_seed(0)
    model = TitleModel(cfg, n_out).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
    batches = _Batches(train, np.arange(len(train)), cfg, dae_cfg, model.encoder.out_dim, dae.hidden)
    chars = torch.from_numpy(np.ascontiguousarray(train.title_chars))
    model.train()
    reset_peak(device)
    for u in range(WARMUP + n):
        if u == WARMUP:
            sync(device)
            start = time.perf_counter()
        _step(model, model.encoder, opt, dae, chars, batches.batch(u), cfg, device)
    sync(device)
    return {"ms": 1000 * (time.perf_counter() - start) / n, "peak_gb": peak_gb(device)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the full playlist/track/artist counts")
    ap.add_argument("--updates", type=int, default=200, help="timed updates per scheme, phase and precision")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = ap.parse_args()
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    n_train, n_tracks, n_artists = (max(int(v * args.scale), 1000) for v in (1_000_000, 2_262_292, 295_860))
    n_challenge = max(int(1000 * args.scale), 10)
    t0 = time.perf_counter()
    a_cdf = np.cumsum(1.0 / np.arange(1, n_artists + 1) ** 0.8)
    track_artist = np.minimum(np.searchsorted(a_cdf, rng.random(n_tracks) * a_cdf[-1]), n_artists - 1)
    track_artist[:n_artists] = rng.permutation(n_artists)  # every artist has a track
    train = random_playlists(n_train, n_tracks, track_artist, rng)
    challenge = challenge_like(n_challenge, n_tracks, track_artist, rng)
    vocab = make_vocab(train, track_artist)
    data_s = time.perf_counter() - t0
    cfg = MMCFConfig(precision="auto")
    epoch = len(train) / cfg.batch_size
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"## Full-scale speed on {name} (torch {torch.__version__}), scale {args.scale}\n")
    print(f"{len(train):,} training playlists, {train.tracks.nnz:,} track entries, {n_tracks:,} tracks + "
          f"{n_artists:,} artists = {n_tracks + n_artists:,} outputs; hidden {cfg.hidden}, batch {cfg.batch_size}; "
          f"random data built in {data_s:.1f} s. One epoch = {epoch:,.0f} updates.\n")
    rows = bench_dae(train, cfg, args.updates, device)
    print("| scheme | phase | precision | ms / update | CPU batch building, overlapping the GPU | epoch (min) | peak GPU GB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scheme']} | {r['phase']} | {r['precision']} | {r['ms']:.2f} | {r['batch_ms']:.2f} | "
              f"{r['ms'] * epoch / 60000:.2f} | {r['peak_gb']:.2f} |")
    p = bench_predict(train, cfg, challenge, vocab, device)
    print(f"\nPrediction (4 schemes routed by category, top 500): {p['playlists']:,} playlists in "
          f"{p['seconds']:.1f} s ({p['playlists'] / p['seconds']:,.0f} playlists/s), peak GPU {p['peak_gb']:.2f} GB.")
    title = bench_title(train, cfg, fresh_model(train, cfg, True, device).eval(), args.updates, device)
    print(f"\nTitle model (CNN, batch 150, fp32): {title['ms']:.2f} ms / update, "
          f"{title['ms'] * len(train) / 150 / 60000:.2f} min per epoch, peak GPU {title['peak_gb']:.2f} GB.")
    budget_mb = load_pipeline_config(ROOT / "configs" / "full_mpd.toml").mmcf.dense_memory_mb
    budget_gb = budget_mb / 1024
    peak = max([r["peak_gb"] for r in rows] + [p["peak_gb"], title["peak_gb"]])
    print(f"\nPeak GPU memory is torch.cuda.max_memory_allocated, reset before each measurement: at most "
          f"{peak:.2f} GB, against the {budget_gb:.1f} GB dense budget of configs/full_mpd.toml "
          f"(dense_memory_mb = {budget_mb:g}). Whole run: {time.perf_counter() - t0:.0f} s.")


if __name__ == "__main__":
    main()
