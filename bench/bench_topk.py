"""Listing speed of `common.topk` (torch's top-k with the ties resolved in numpy) against numpy's
argpartition (the previous cut, kept here as the baseline), over a run's ALS and item kNN lists.

    .venv/bin/python bench/bench_topk.py --run RUN --playlists 2000

ALS (RUN/baselines/als/challenge/als.npz, the run's refit) and item kNN list the same challenge
playlists (evenly spaced) to depth 500 through `sources.sparse.recommend`, once with each cut, in
one process. ALS scores every track as one dense block per batch, so its lists were the cut's
largest cost (100K playlists: 290 s for the 10,000 challenge lists, of which the fit 72 s); item kNN
has many ties at the cut (the popularity fallback's equal counts). Prints markdown: wall time per
cut and whether the lists are identical.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common.topk as topk  # noqa: E402
from pipeline.recommend import run_config  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from sources.als import ALS  # noqa: E402
from sources.item_knn import ItemKNN  # noqa: E402
from sources.sparse import BaselineConfig, Popularity, recommend  # noqa: E402


def argpartition_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """The previous `_best_columns`: numpy's argpartition, then every row's tie at the cut checked
    over the whole row."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
    above = scores > kth[:, None]
    at = scores == kth[:, None]
    split = np.flatnonzero(above.sum(axis=1) + at.sum(axis=1) > k)
    if len(split):
        need = k - above[split].sum(axis=1)
        take = above[split] | (at[split] & (np.cumsum(at[split], axis=1) <= need[:, None]))
        part[split] = np.nonzero(take)[1].reshape(len(split), k)
    return part


def timed(model, ps, cut) -> tuple[float, np.ndarray]:
    topk._best_columns = cut
    start = time.perf_counter()
    ids = recommend(model, ps, k=500)[0]
    return time.perf_counter() - start, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a run folder with artifacts/ and ALS's lists")
    ap.add_argument("--playlists", type=int, default=2000, help="challenge playlists, evenly spaced")
    args = ap.parse_args()
    cfg = run_config(args.run)
    art = load_artifacts(args.run / "artifacts")
    train, challenge = art.playlists("all"), art.playlists("challenge")
    ps = challenge.subset(np.arange(0, len(challenge), max(1, len(challenge) // args.playlists))[:args.playlists])
    models = {"ALS": ALS.load(args.run / "baselines" / "als" / "challenge" / "als.npz", cfg.settings("als")),
              "item kNN": ItemKNN(train, Popularity(train), BaselineConfig())}
    torch_cut = topk._best_columns
    print(f"{len(ps)} challenge playlists, {art.vocab.n_tracks} tracks, depth 500\n")
    print("| lists | argpartition (previous) | torch top-k | ratio | identical |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        t_old, old = timed(model, ps, argpartition_columns)
        t_new, new = timed(model, ps, torch_cut)
        print(f"| {name} | {t_old:.1f} s | {t_new:.1f} s | {t_old / t_new:.2f}x | {np.array_equal(old, new)} |",
              flush=True)


if __name__ == "__main__":
    main()
