"""Small-sample calibration: a synthetic profile against a real 8K-playlist MPD excerpt (SPEC section 5).

Why: the full-MPD statistics (bench/calibrate.py) say little about how hard the data is at the
size the project runs at. A real excerpt of 8,065 playlists split into 7,065 training playlists
and a local challenge set of 1,000 showed how many withheld tracks training has seen, how ALS
gains from rank, and how far titles alone go. This bench reproduces that measurement on
generated data, through the project's own pipeline:

1. `preprocess.synthetic.write_mpd` (the profile, N playlists, seed);
2. `preprocess.challenge.make_challenge` (100 playlists per category);
3. `preprocess.build.build` of the training part, every track and artist kept;
4. implicit ALS (alpha 20, reg 0.05, 15 iterations) fitted on the binary training matrix, the
   challenge playlists folded in from their seeds; playlists without a known seed, and any empty
   slot, get training popularity without the seeds; title popularity on title-only playlists;
   all scored by report.evaluation;
5. how titles spread over all N playlists (normalised as preprocess.titles does): distinct titles,
   titles held by one playlist, the share of the 10 and 100 most common, words, emoji.

    python bench/calibrate_tail.py --profile mpd realistic                 # 8,065 playlists, seed 0
    python bench/calibrate_tail.py --profile realistic --playlists 20000
    python bench/calibrate_tail.py --profile realistic --set p_hit=0.03    # try a variation
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice: its own threads, not BLAS's

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402

from common.cli import run_cli  # noqa: E402
from common.errors import PipelineError  # noqa: E402
from common.sparse import binary  # noqa: E402
from common.topk import fill_from_order  # noqa: E402
from preprocess import synthetic  # noqa: E402
from preprocess.artifacts import Artifacts, PlaylistSet, Vocab  # noqa: E402
from preprocess.build import BuildConfig, build  # noqa: E402
from preprocess.challenge import make_challenge  # noqa: E402
from preprocess.slices import load_json, slice_files  # noqa: E402
from preprocess.titles import normalize_title  # noqa: E402
from report.evaluation import attach_truth, evaluate_ids  # noqa: E402
from sources.sparse import BaselineConfig, Popularity, recommend  # noqa: E402
from sources.title_popularity import TitlePopularity  # noqa: E402

K = 500
FACTORS = (32, 64, 128, 256)
# The real excerpt (SPEC section 5): 7,065 training playlists, 1,000 challenge playlists.
REAL: dict[str, float] = {
    "train_playlists": 7065, "train_entries": 654_000, "train_tracks": 190_000, "train_tracks_ge5": 22_600,
    "seen_1": 0.79, "seen_2": 0.71, "seen_5": 0.59,
    "als_32_r_precision": 0.145, "als_32_ndcg": 0.249, "als_32_clicks": 8.15,
    "als_64_r_precision": 0.154, "als_64_ndcg": 0.263, "als_64_clicks": 7.40,
    "als_128_r_precision": 0.160, "als_128_ndcg": 0.271, "als_128_clicks": 6.96,
    "als_256_r_precision": 0.165, "als_256_ndcg": 0.273, "als_256_clicks": 6.87,
    "als_gain_r_precision": 0.165 / 0.145, "als_gain_clicks": 6.87 / 8.15,
    "title_only_r_precision": 0.046,
    "titles_distinct": 4338 / 8065, "titles_unique": 0.365, "titles_top10": 0.046, "titles_top100": 0.18,
    "titles_words": 1.6, "titles_foreign": 0.014,
}
# row key, label, format
ROWS = (
    ("train_playlists", "training playlists", ",.0f"),
    ("train_entries", "training entries (distinct per playlist)", ",.0f"),
    ("train_tracks", "distinct training tracks", ",.0f"), ("train_tracks_ge5", "tracks in >= 5 training playlists", ",.0f"),
    ("train_once", "share of training tracks seen once", ".3f"),
    *((f"seen_{k}", f"withheld entries seen in training >= {k}", ".3f") for k in (1, 2, 5)),
    *((f"als_{f}_{m}", f"ALS {f}: {label}", fmt) for f in FACTORS
      for m, label, fmt in (("r_precision", "R-precision", ".3f"), ("ndcg", "NDCG", ".3f"),
                            ("clicks", "clicks", ".2f"))),
    ("als_gain_r_precision", "ALS R-precision 256 / 32", ".3f"), ("als_gain_clicks", "ALS clicks 256 / 32", ".3f"),
    ("title_only_r_precision", "title popularity, title-only: R-precision", ".3f"),
    ("titles_distinct", "distinct normalised titles per playlist", ".3f"),
    ("titles_unique", "playlists whose normalised title no other has", ".3f"),
    *((f"titles_top{k}", f"playlists named by the {k} most common titles", ".3f") for k in (10, 100)),
    ("titles_words", "words per normalised title", ".2f"),
    ("titles_foreign", "titles with emoji or non-Latin characters", ".3f"),
)


def prepare(folder: Path, config: synthetic.SynthConfig, n_playlists: int, seed: int) -> Artifacts:
    """Generate, hold out the challenge set (folder/local/truth.json), build artifacts of the
    training part with every track and artist kept."""
    synthetic.write_mpd(folder / "mpd", n_playlists, seed, workers=1, config=config)
    make_challenge(folder / "mpd", folder / "local", per_category=100, seed=seed, workers=1)
    return build(folder / "local" / "train", folder / "art",
                 BuildConfig(min_track_count=1, min_artist_count=1, val_per_category=0, workers=1),
                 challenge=folder / "local" / "challenge_set.json")


def seen_shares(truth_path: Path, vocab: Vocab) -> dict[str, float]:
    """Share of withheld entries whose track is in >= 1 / 2 / 5 training playlists."""
    uris = np.array([t["track_uri"] for p in load_json(truth_path)["playlists"] for t in p["tracks"]])
    order = np.argsort(vocab.track_uri)
    at = np.minimum(np.searchsorted(vocab.track_uri[order], uris), len(order) - 1)
    count = np.where(vocab.track_uri[order][at] == uris, vocab.track_count[order][at], 0)
    return {f"seen_{k}": float(np.mean(count >= k)) for k in (1, 2, 5)}


def title_figures(names: list[str]) -> dict[str, float]:
    """How titles spread over all playlists: how many distinct, how many personal (no other
    playlist holds them), how much the head covers, how long, how many with emoji. The real
    excerpt's titles are weak (title popularity 0.046 on title-only playlists) because they are
    spread like this; a generator with a heavier head flatters title models."""
    norm = [normalize_title(n) for n in names]
    counts = np.sort(np.unique(norm, return_counts=True)[1])[::-1]
    n = len(norm)
    return {"titles_distinct": len(counts) / n, "titles_unique": float(counts[counts == 1].sum() / n),
            "titles_top10": float(counts[:10].sum() / n), "titles_top100": float(counts[:100].sum() / n),
            "titles_words": float(np.mean([len(t.split()) for t in norm])),
            "titles_foreign": float(np.mean([any(map(_foreign, t)) for t in names]))}


def _foreign(ch: str) -> bool:
    """An emoji or other pictograph, or a letter of a non-Latin script."""
    kind = unicodedata.category(ch)
    return kind == "So" or (kind[0] == "L" and not unicodedata.name(ch, "").startswith("LATIN"))


def als_lists(model: AlternatingLeastSquares, test: PlaylistSet, pop: Popularity) -> np.ndarray:
    """Top-K per challenge playlist folded in from its seeds; popularity (seeds excluded) serves
    playlists without a known seed and fills any empty slot."""
    seeds = binary(test.tracks)
    ids = np.full((len(test), K), -1, dtype=np.int64)
    warm = np.flatnonzero(np.diff(seeds.indptr) > 0)
    if len(warm):
        ids[warm], _ = model.recommend(warm, seeds[warm], N=K, recalculate_user=True, filter_already_liked_items=True)
    fill_from_order(ids, np.zeros(ids.shape, dtype=np.float32), seeds, pop.order())
    return ids


def als_curve(train: sp.csr_matrix, test: PlaylistSet, vocab: Vocab, pop: Popularity, threads: int) -> dict:
    """R-precision, NDCG and clicks per rank, and the gains from the lowest rank to the highest."""
    out: dict[str, float] = {}
    for factors in FACTORS:
        t0 = time.perf_counter()
        model = AlternatingLeastSquares(factors=factors, regularization=0.05, alpha=20.0, iterations=15,
                                        random_state=0, num_threads=threads)
        model.fit(train, show_progress=False)
        m = evaluate_ids(als_lists(model, test, pop), test, vocab)
        out |= {f"als_{factors}_{k}": m[k] for k in ("r_precision", "ndcg", "clicks")}
        print(f"  ALS {factors}: R-prec {m['r_precision']:.4f} NDCG {m['ndcg']:.4f} clicks {m['clicks']:.2f} "
              f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    out["als_gain_r_precision"] = out["als_256_r_precision"] / out["als_32_r_precision"]
    out["als_gain_clicks"] = out["als_256_clicks"] / out["als_32_clicks"]
    return out


def measure(config: synthetic.SynthConfig, n_playlists: int, seed: int, threads: int, als: bool) -> dict:
    """Every figure of ROWS for one generated dataset (the figures of a skipped ALS are absent)."""
    with tempfile.TemporaryDirectory(prefix="calibrate_tail.") as tmp:
        art = prepare(Path(tmp), config, n_playlists, seed)
        truth_path = Path(tmp) / "local" / "truth.json"
        train_ps = art.playlists("train")
        test = attach_truth(art.playlists("challenge"), truth_path, art.vocab)
        counts = art.vocab.track_count
        out = {"train_playlists": len(train_ps), "train_entries": train_ps.tracks.nnz,
               "train_tracks": art.vocab.n_tracks, "train_tracks_ge5": int((counts >= 5).sum()),
               "train_once": float(np.mean(counts == 1))} | seen_shares(truth_path, art.vocab)
        out |= title_figures([p["name"] for f in slice_files(Path(tmp) / "mpd") for p in load_json(f)["playlists"]])
        pop = Popularity(train_ps)
        title_only = test.subset(np.flatnonzero(test.category == 1))
        ids, _ = recommend(TitlePopularity(train_ps, pop, BaselineConfig()), title_only, k=K)
        out["title_only_r_precision"] = evaluate_ids(ids, title_only, art.vocab)["r_precision"]
        if als:
            out |= als_curve(binary(train_ps.tracks), test, art.vocab, pop, threads)
        return out


def table(runs: list[tuple[str, dict]]) -> str:
    """Markdown: the real excerpt's figure, then each run's figure and its ratio to the real one."""
    head = "| figure | real excerpt | " + " | ".join(f"{name} | ratio" for name, _ in runs) + " |"
    lines = [head, "|---|---|" + "---|---|" * len(runs)]
    for key, label, fmt in ROWS:
        if not any(key in r for _, r in runs):
            continue
        real = REAL.get(key)
        cells = [format(real, fmt) if real is not None else "n/a"]
        for _, r in runs:
            value = r.get(key)
            cells.append("" if value is None else format(value, fmt))
            cells.append(f"{value / real:.2f}" if value is not None and real else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overrides(pairs: list[str]) -> dict[str, float | int]:
    """--set field=value pairs, typed like the SynthConfig field they replace."""
    fields = {f.name: f.type for f in dataclasses.fields(synthetic.SynthConfig)}
    out: dict[str, float | int] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields or not value:
            raise PipelineError(f"--set {pair!r}: expected FIELD=VALUE with a SynthConfig field")
        out[name] = int(value) if fields[name] in ("int", int) else float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", nargs="+", default=[synthetic.DEFAULT_PROFILE], help="synthetic profiles")
    ap.add_argument("--playlists", type=int, nargs="+", default=[8065], help="dataset sizes (default 8065)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="override SynthConfig fields")
    ap.add_argument("--no-als", action="store_true", help="skip the ALS curve (the seen shares take seconds)")
    ap.add_argument("--threads", type=int, default=1, help="ALS threads (default 1)")
    args = ap.parse_args(argv)
    changes = overrides(args.set)
    runs = []
    for profile in args.profile:
        config = dataclasses.replace(synthetic.synth_config(profile), **changes)
        for n in args.playlists:
            t0 = time.perf_counter()
            name = f"{profile} {n:,d}" + (" (" + ", ".join(args.set) + ")" if changes else "")
            runs.append((name, measure(config, n, args.seed, args.threads, not args.no_als)))
            print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(table(runs))
    return 0


if __name__ == "__main__":
    run_cli(main)
