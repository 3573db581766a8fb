"""Item and artist kNN lists by block size and thread count (`common.topk.DENSE_CELLS`, `[baselines]
threads`): wall time of listing the same playlists, and whether the lists are identical.

    .venv/bin/python bench/bench_knn_blocks.py --artifacts RUN/artifacts --playlists 1000 \\
        --settings 50000000:1 4000000:1 4000000:2

Each setting is cells:threads, and the first is the baseline, measured in the same process. The
models are fit on every playlist and list the challenge playlists to depth 1,000, as the run's refit
does; at 1M playlists these lists were the run's largest single-threaded cost (~1,000 s for each
model's 10,000 lists on 2 cores). Prints markdown.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.topk import batched_topk, cores  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from sources.artist_knn import ArtistKNN  # noqa: E402
from sources.item_knn import ItemKNN  # noqa: E402
from sources.sparse import BaselineConfig, Popularity  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, required=True)
    ap.add_argument("--playlists", type=int, default=1000, help="challenge playlists, evenly spaced")
    ap.add_argument("--settings", nargs="+", default=["50000000:1", "4000000:1", "4000000:2"],
                    help="cells:threads per run; the first is the baseline")
    args = ap.parse_args()
    settings = [tuple(int(v) for v in s.split(":")) for s in args.settings]
    art = load_artifacts(args.artifacts)
    train, challenge = art.playlists("all"), art.playlists("challenge")
    ps = challenge.subset(np.arange(0, len(challenge), max(1, len(challenge) // args.playlists))[:args.playlists])
    pop, cfg = Popularity(train), BaselineConfig()
    print(f"{len(train):,} playlists, {train.tracks.shape[1]:,} tracks; {len(ps):,} challenge playlists listed "
          f"to depth 1,000; {cores()} cores\n")
    print("| model | cells | threads | rows per block | list s | x baseline | lists identical |")
    print("|---|---|---|---|---|---|---|")
    for name, model in (("item_knn", ItemKNN(train, pop, cfg)), ("artist_knn", ArtistKNN(train, pop, cfg))):
        base = None
        for cells, threads in settings:
            start = time.perf_counter()
            ids, scores = batched_topk(lambda rows: model.score(ps, rows), ps.tracks, 1000, cfg.batch, cells, threads)
            seconds = time.perf_counter() - start
            base = base or (seconds, ids, scores)
            same = np.array_equal(ids, base[1]) and np.array_equal(scores, base[2])
            rows = max(1, min(cfg.batch, cells // ps.tracks.shape[1]))
            print(f"| {name} | {cells:,} | {threads} | {rows} | {seconds:.1f} | {base[0] / seconds:.2f} | "
                  f"{'yes' if same else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
