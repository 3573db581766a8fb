"""What the autoencoders' vocabulary costs a whole-catalogue model: a run's list for its challenge
playlists, cut to the tracks the autoencoders can output, scored beside the uncut one per category.

    python bench/dense_reach.py RUN [--model als]

If the cut list scores as the whole one, the tracks MMCF's vocabulary leaves out are not what the
other model wins with, and a gap between MMCF and it lies in the ranking, not the vocabulary. The
vocabulary is the one serving the challenge (pipeline.stages.dense_tracks, as the reranker reads it).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.categories import BY_ID  # noqa: E402
from common.metrics import list_metrics  # noqa: E402
from pipeline.recommend import run_config  # noqa: E402
from pipeline.stages import dense_tracks, list_files, load_lists  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from report.evaluation import attach_truth  # noqa: E402


def cut_to(ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """ids [P, K] with the tracks outside `keep` (bool [T]) dropped, the rest moved up in order."""
    inside = (ids >= 0) & keep[np.maximum(ids, 0)]
    order = np.argsort(~inside, axis=1, kind="stable")
    return np.take_along_axis(np.where(inside, ids, -1), order, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--model", default="als", help="a list of the run's (a key of list_files)")
    args = ap.parse_args()
    cfg = run_config(args.run)
    tracks = dense_tracks(args.run / "mmcf", "challenge", cfg)
    if tracks is None:
        sys.exit(f"{args.run}: no autoencoders serve the challenge (run the mmcf stage first)")
    art = load_artifacts(args.run / "artifacts")
    ps = attach_truth(art.playlists("challenge"), args.run / "data" / "local" / "truth.json", art.vocab)
    keep = np.zeros(art.vocab.n_tracks, dtype=bool)
    keep[tracks] = True
    ids = load_lists(list_files(args.run, cfg)[args.model], "challenge")[0]
    cut = cut_to(ids, keep)
    whole, part = (list_metrics(x, ps, art.vocab.track_artist)["r_precision"] for x in (ids, cut))
    held = np.asarray(ps.holdout[:, np.flatnonzero(keep)].sum(axis=1)).ravel() / np.maximum(ps.n_holdouts, 1)
    print(f"| category | {args.model} R-precision | cut to the autoencoders' vocabulary | withheld tracks inside it |")
    print("|---|---|---|---|")
    for c in np.unique(ps.category):
        m = ps.category == c
        print(f"| {c} {BY_ID[int(c)].name} | {whole[m].mean():.4f} | {part[m].mean():.4f} | {held[m].mean():.3f} |")
    for k in (50, 500):
        top = ids[:, :k]
        outside = (top >= 0) & ~keep[np.maximum(top, 0)]
        print(f"top {k}: {outside.sum() / max((top >= 0).sum(), 1):.5f} of the listed entries lie outside the vocabulary")


if __name__ == "__main__":
    main()
