"""Where a run's lists hit on each category: the share of the top R by a seed's artist, and the
hits by the withheld track's training count, per model, beside ALS.

    python bench/long_input_hits.py RUN [--models als item_knn dae]

Written for the autoencoders' gap on long inputs (bench/RESULTS.md, "The default and
configs/mmcf.toml again"): a model can lose by missing the popular tracks or the tail, and by
listing the seeds' own artists too little or too much; R-precision alone does not say which.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.sparse import binary, column_counts  # noqa: E402
from pipeline.recommend import run_config  # noqa: E402
from pipeline.stages import list_files, load_lists  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from report.evaluation import attach_truth  # noqa: E402

EDGES = np.array([0, 5, 20, 100, np.iinfo(np.int64).max])


def top_r(ids: np.ndarray, n_holdouts: np.ndarray, n_tracks: int) -> sp.csr_matrix:
    """Each playlist's first R listed tracks (R = its withheld count) as a 0/1 matrix [P, T]."""
    keep = (np.arange(ids.shape[1])[None, :] < n_holdouts[:, None]) & (ids >= 0)
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)[keep]
    return sp.csr_matrix((np.ones(keep.sum(), dtype=np.float32), (rows, ids[keep])), shape=(len(ids), n_tracks))


def by_seed_artist(tracks: sp.csr_matrix, seed_artists: sp.csr_matrix, track_artist: np.ndarray) -> int:
    """How many entries of tracks [P, T] are by one of their playlist's seed artists (seed_artists
    [P, A], nonzero where the playlist's seeds hold the artist); a track whose artist was not kept
    (track_artist -1) never is."""
    entries = tracks.tocoo()
    artist = track_artist[entries.col]
    own = artist >= 0
    return int(np.count_nonzero(np.asarray(seed_artists[entries.row[own], artist[own]])))


def table_row(category: int, name: str, listed: sp.csr_matrix, hits: sp.csr_matrix, seed_artists: sp.csr_matrix,
              track_artist: np.ndarray, band: np.ndarray) -> str:
    """One markdown row: the hits, the share of the listed entries by a seed's artist, the hits per band."""
    per_band = np.bincount(band[hits.indices], minlength=len(EDGES) - 1)
    share = by_seed_artist(listed, seed_artists, track_artist) / max(listed.nnz, 1)
    return f"| {category} | {name} | {hits.nnz} | {share:.3f} | " + " | ".join(str(n) for n in per_band) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--models", nargs="+", default=["als", "item_knn", "dae"])
    args = ap.parse_args()
    cfg = run_config(args.run)
    art = load_artifacts(args.run / "artifacts")
    ps = attach_truth(art.playlists("challenge"), args.run / "data" / "local" / "truth.json", art.vocab)
    count = column_counts(binary(art.playlists("train").tracks)).astype(np.int64)
    band = np.searchsorted(EDGES, count, side="right") - 1
    track_artist = np.asarray(art.vocab.track_artist)
    seed_artists, holdout = binary(ps.artists).tocsr(), binary(ps.holdout).tocsr()
    files = list_files(args.run, cfg)
    lists = {m: load_lists(files[m], "challenge")[0] for m in args.models if m in files}
    bands = " | ".join(f"hits, count {lo}-{hi - 1}" if hi < EDGES[-1] else f"hits, count >= {lo}"
                       for lo, hi in zip(EDGES[:-1], EDGES[1:]))
    print(f"| category | model | hits in the top R | listed by a seed's artist | {bands} |")
    print("|---|---|---|---|" + "---|" * (len(EDGES) - 1))
    for c in np.unique(ps.category):
        m = np.flatnonzero(ps.category == c)
        held, seeds = holdout[m], seed_artists[m]
        print(table_row(c, "withheld", held, held, seeds, track_artist, band))
        for name, ids in lists.items():
            listed = top_r(ids[m], ps.n_holdouts[m], art.vocab.n_tracks)
            print(table_row(c, name, listed, listed.multiply(held).tocsr(), seeds, track_artist, band))


if __name__ == "__main__":
    main()
