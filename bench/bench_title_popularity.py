"""Title popularity's lists from each title's sparse row against top-k over its dense scores.

    python bench/bench_title_popularity.py --artifacts RUN/artifacts [--k 1000] [--repeat 3]

Both give the same lists (checked here too); the sparse path never builds a [playlists, catalogue]
block, which at a 320K-track catalogue is what the baselines stage spent its time on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.models import BaselineConfig, Popularity, TitlePopularity  # noqa: E402
from common.topk import batched_topk  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, required=True)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    art = load_artifacts(args.artifacts)
    train, ps = art.playlists("train"), art.playlists("val")
    model = TitlePopularity(train, Popularity(train), BaselineConfig())
    paths = {"dense scores + top-k": lambda: batched_topk(lambda rows: model.score(ps, rows), ps.tracks, args.k),
             "sparse rows (TitlePopularity.top)": lambda: model.top(ps, args.k)}
    times, lists = {}, {}
    for name, fn in paths.items():
        best = np.inf
        for _ in range(args.repeat):
            start = time.perf_counter()
            lists[name] = fn()
            best = min(best, time.perf_counter() - start)
        times[name] = best
    (a, sa), (b, sb) = lists.values()
    assert np.array_equal(a, b) and np.allclose(sa, sb), "the two paths differ"
    print(f"{len(ps)} validation playlists, catalogue of {art.vocab.n_tracks} tracks, k = {args.k}, best of {args.repeat}\n")
    print("| path | seconds | speed-up |\n|---|---|---|")
    base = times["dense scores + top-k"]
    for name, t in times.items():
        print(f"| {name} | {t:.2f} | {base / t:.1f}x |")


if __name__ == "__main__":
    main()
