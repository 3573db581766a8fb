"""The DAE against implicit's ALS on the same split (bench only: `pip install -r bench/requirements.txt`).

Reads a finished `run.py` output folder: its artifacts (train, validation and challenge playlists,
vocabulary), its truth.json and the DAE's lists (mmcf/dae.npz). ALS is fitted on the training
playlist x track matrix; each validation or challenge playlist is folded in from its seeds
(`recalculate_user`, the standard way to serve unseen users), and its seeds are filtered out.
A small grid over factors and regularisation is chosen on validation R-precision, then the
chosen model is scored on the local challenge set next to the DAE and item kNN.

    python bench/bench_als.py --run runs/default
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice: its own threads, not BLAS's

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.als import AlternatingLeastSquares  # noqa: E402

from common.io import load_npz  # noqa: E402
from preprocess.artifacts import PlaylistSet, load_artifacts  # noqa: E402
from report.evaluation import attach_truth, evaluate_ids  # noqa: E402
from report.tables import metrics_table  # noqa: E402

METRICS = ("r_precision", "ndcg", "clicks")


def als_lists(model: AlternatingLeastSquares, ps: PlaylistSet, k: int = 500) -> np.ndarray:
    """Top-k tracks per playlist of ps, folded in from its seeds; cold playlists get -1 rows
    (scored as empty lists, like any model without evidence)."""
    seeds = sp.csr_matrix(ps.tracks, dtype=np.float32)
    seeds.data[:] = 1.0
    ids = np.full((len(ps), k), -1, dtype=np.int32)
    warm = np.flatnonzero(np.diff(seeds.indptr) > 0)
    if len(warm):
        rec, _ = model.recommend(warm, seeds[warm], N=k, recalculate_user=True, filter_already_liked_items=True)
        ids[warm] = rec
    return ids


def fit(train: sp.csr_matrix, factors: int, reg: float, alpha: float, iterations: int, seed: int
        ) -> AlternatingLeastSquares:
    model = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=alpha, iterations=iterations,
                                    random_state=seed, calculate_training_loss=False)
    model.fit(train, show_progress=False)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished run.py output folder")
    ap.add_argument("--factors", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--reg", type=float, nargs="+", default=[0.01, 0.1])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    art = load_artifacts(args.run / "artifacts")
    train = sp.csr_matrix(art.playlists("train").tracks, dtype=np.float32)
    train.data[:] = 1.0
    val = art.playlists("val")
    test = attach_truth(art.playlists("challenge"), args.run / "data" / "local" / "truth.json", art.vocab)
    print(f"train {train.shape[0]} playlists x {train.shape[1]} tracks, {train.nnz} entries; "
          f"val {len(val)}, test {len(test)}\n")
    print("| factors | reg | fit s | val R-prec | val NDCG |\n|---|---|---|---|---|")
    best = None
    for factors in args.factors:
        for reg in args.reg:
            t0 = time.perf_counter()
            model = fit(train, factors, reg, args.alpha, args.iterations, seed=0)
            secs = time.perf_counter() - t0
            m = evaluate_ids(als_lists(model, val), val, art.vocab)
            print(f"| {factors} | {reg} | {secs:.1f} | {m['r_precision']:.4f} | {m['ndcg']:.4f} |", flush=True)
            if best is None or m["r_precision"] > best[0]:
                best = (m["r_precision"], factors, reg, model)
    _, factors, reg, model = best
    t0 = time.perf_counter()
    ids = als_lists(model, test)
    print(f"\nchosen: factors {factors}, reg {reg}; {len(test)} challenge playlists folded in and ranked in "
          f"{time.perf_counter() - t0:.1f} s\n")
    rows = {"als": evaluate_ids(ids, test, art.vocab)}
    for name, path in [("dae", args.run / "mmcf" / "dae.npz"), ("item_knn", args.run / "baselines" / "item_knn.npz")]:
        rows[name] = evaluate_ids(load_npz(path)["challenge_ids"], test, art.vocab)
    print("Local challenge set (test): ALS, DAE, item kNN\n")
    print(metrics_table(rows))


if __name__ == "__main__":
    main()
