"""Compare the synthetic MPD with the real MPD's published figures (SPEC section 1).

Generates N playlists (default 100,000; figures come straight from the generator's columns,
which map one-to-one onto the written uris) or reads a folder of MPD slices (--mpd), computes
the calibration figures, and writes them side by side with the MPD's in bench/calibration.md.
It also checks that the data rewards collaborative filtering: a co-occurrence kNN must clearly
beat popularity, and titles must be a weak-to-medium signal.

    python bench/calibrate.py                          # 100K generated playlists
    python bench/calibrate.py --playlists 100000 1000000   # also the full-size figures (~30 min)
    python bench/calibrate.py --mpd DIR --out FILE     # any folder of MPD slices
    python bench/calibrate.py --profile realistic --out FILE   # another generator profile
"""
from __future__ import annotations

import argparse
import collections
import datetime
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import run_cli  # noqa: E402
from common.io import atomic_path  # noqa: E402
from common.metrics import playlist_metrics  # noqa: E402
from preprocess import synthetic  # noqa: E402
from preprocess.corpus import scan  # noqa: E402
from preprocess.slices import load_json  # noqa: E402
from preprocess.synthetic.arrays import distinct_per_row  # noqa: E402
from preprocess.titles import normalize_title  # noqa: E402

log = logging.getLogger("calibrate")

# SPEC section 1. Counts of distinct items depend on the sample size: those are given for 1M
# playlists and, for tracks and artists, for a 100K sample.
MPD_1M = {"tracks": 2_262_292, "albums": 734_684, "artists": 295_860, "titles_raw": 92_944,
          "titles_norm": 17_381, "entries": 66_346_428}
MPD_100K = {"tracks": 681_805, "artists": 110_063}
MPD_TOP_TITLES = {"country": 10_000, "chill": 10_000, "rap": 8_493, "workout": 8_481, "oldies": 8_146,
                  "christmas": 8_015, "rock": 6_848, "party": 6_157, "throwback": 5_883, "jams": 5_063,
                  "worship": 5_052, "summer": 4_907, "feels": 4_677, "new": 4_612, "disney": 4_186,
                  "lit": 4_124, "throwbacks": 4_030, "music": 3_886, "sleep": 3_513, "vibes": 3_500}
# Local Heaps exponents between the 100K sample and the full MPD: distinct tracks grow as
# entries ** 0.52, artists as ** 0.43. By Good-Turing, the share of distinct items seen once is
# about that exponent (d distinct / d entries = items seen once / entries).
HEAPS_TRACKS = math.log(MPD_1M["tracks"] / MPD_100K["tracks"]) / math.log(10)
HEAPS_ARTISTS = math.log(MPD_1M["artists"] / MPD_100K["artists"]) / math.log(10)


@dataclass
class Columns:
    """A dataset flattened: one row per entry (int ids) and one per playlist."""

    lengths: list[np.ndarray] = field(default_factory=list)
    track: list[np.ndarray] = field(default_factory=list)
    artist: list[np.ndarray] = field(default_factory=list)
    album: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    described: list[np.ndarray] = field(default_factory=list)
    collaborative: list[np.ndarray] = field(default_factory=list)

    def done(self) -> dict[str, np.ndarray]:
        return {"lengths": np.concatenate(self.lengths), "track": np.concatenate(self.track),
                "artist": np.concatenate(self.artist), "album": np.concatenate(self.album),
                "described": np.concatenate(self.described), "collaborative": np.concatenate(self.collaborative)}


def from_generator(n_playlists: int, seed: int, config: synthetic.SynthConfig = synthetic.SynthConfig()) -> Columns:
    cols = Columns()
    world = synthetic.build_world(seed, n_playlists, config)
    for index in range(len(synthetic.slice_bounds(n_playlists))):
        data, _ = synthetic.make_slice(n_playlists, seed, index, config)
        artist = world.track_artist(data.track)
        cols.lengths.append(np.diff(data.indptr))
        cols.track.append(data.track)
        cols.artist.append(world.art_key[artist])
        cols.album.append(world.track_album(data.track, artist))
        cols.names.extend(data.names)
        cols.described.append(np.array([d is not None for d in data.descriptions]))
        cols.collaborative.append(data.collaborative)
        if index % 100 == 99:
            log.info("generated %d slices", index + 1)
    return cols


def from_folder(folder: Path) -> Columns:
    """Read with the pipeline's own validating reader, whose uris are already dense ids; the
    description and collaborative flags, which the pipeline never reads, come from the JSON."""
    corpus = scan(folder)
    cols = Columns(lengths=[corpus.lengths], track=[corpus.track], artist=[corpus.track_artist[corpus.track]],
                   album=[corpus.track_album[corpus.track]], names=list(corpus.name))
    for path in corpus.files:
        playlists = load_json(path)["playlists"]
        cols.described.append(np.array([bool(p.get("description")) for p in playlists]))
        cols.collaborative.append(np.array([p.get("collaborative") == "true" for p in playlists]))
    return cols


def figures(cols: Columns) -> dict:
    c = cols.done()
    lengths, track, artist, album = c["lengths"], c["track"], c["artist"], c["album"]
    n_pl, n_e = len(lengths), len(track)
    pl = np.repeat(np.arange(n_pl), lengths)
    t_uniq, t_inv, t_count = np.unique(track, return_inverse=True, return_counts=True)
    a_uniq, a_count = np.unique(artist, return_counts=True)
    distinct_t = distinct_per_row(pl, t_inv, n_pl)
    key = np.sort(pl * len(t_uniq) + t_inv)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    t_playlists = np.bincount(key[first] % len(t_uniq), minlength=len(t_uniq))
    norm = collections.Counter(normalize_title(n) for n in cols.names)
    same_artist = (artist[1:] == artist[:-1]) & (pl[1:] == pl[:-1])
    same_album = (album[1:] == album[:-1]) & (pl[1:] == pl[:-1])
    return {
        "playlists": n_pl, "entries": n_e, "tracks": len(t_uniq), "artists": len(a_uniq),
        "albums": len(np.unique(album, return_counts=True)[0]), "mean_length": lengths.mean(),
        "min_length": int(lengths.min()),
        "max_length": int(lengths.max()), "median_length": float(np.median(lengths)),
        "min_artists": int(distinct_per_row(pl, artist, n_pl).min()),
        "min_albums": int(distinct_per_row(pl, album, n_pl).min()),
        "mean_artists": distinct_per_row(pl, artist, n_pl).mean(),
        "mean_albums": distinct_per_row(pl, album, n_pl).mean(),
        "top_track_share": t_playlists.max() / n_pl, "top_artist_share": a_count.max() / n_e,
        "tracks_once": float(np.mean(t_count == 1)), "artists_once": float(np.mean(a_count == 1)),
        "tracks_ge5": int(np.sum(t_playlists >= 5)),
        "titles_raw": len(set(cols.names)), "titles_norm": len(norm), "top_titles": norm.most_common(25),
        "title_counts": norm,
        "described": float(c["described"].mean()), "collaborative": float(c["collaborative"].mean()),
        "with_repeats": float(np.mean(distinct_t < lengths)),
        "adjacent_same_artist": same_artist.sum() / max(1, n_e - n_pl),
        "adjacent_same_album": same_album.sum() / max(1, n_e - n_pl),
        "_matrix": (pl, t_inv, len(t_uniq), np.unique(artist, return_inverse=True)[1], cols.names, lengths),
    }


def structure_check(f: dict, n_test: int = 1000, seed: int = 0) -> dict:
    """R-precision / NDCG of popularity, title popularity and co-occurrence kNN on held-out playlists.

    Test playlists: n_test random playlists with >= 50 tracks. Seeds: the first 10 tracks, and for
    playlists with >= 101 tracks also the first 25 vs 25 random ones (challenge categories 7 and 8).
    """
    pl, t, n_t, art, names, lengths = f["_matrix"]
    rng = np.random.default_rng(seed)
    cand = np.flatnonzero(lengths >= 50)
    test = np.sort(rng.choice(cand, min(n_test, len(cand)), replace=False))
    is_test = np.zeros(len(lengths), dtype=bool)
    is_test[test] = True
    train_rows = np.flatnonzero(~is_test)
    remap = np.full(len(lengths), -1)
    remap[train_rows] = np.arange(len(train_rows))
    e_train = ~is_test[pl]
    x = sp.csr_matrix((np.ones(e_train.sum(), dtype=np.float32), (remap[pl[e_train]], t[e_train])),
                      shape=(len(train_rows), n_t))
    x.data[:] = 1.0
    x.sum_duplicates()
    x.data[:] = 1.0
    pop = np.asarray(x.sum(axis=0)).ravel()
    track_artist = np.zeros(n_t, dtype=np.int64)
    track_artist[t] = art
    norm = np.array([normalize_title(n) for n in names])
    starts = np.concatenate([[0], np.cumsum(lengths)])
    out = {}
    setups = [("first 10", test, lambda r, n: np.arange(10))]
    long_test = test[lengths[test] >= 101]
    setups += [("first 25", long_test, lambda r, n: np.arange(25)),
               ("25 random", long_test, lambda r, n: np.sort(r.choice(n, 25, replace=False)))]
    for label, rows, pick in setups:
        seeds, holds = [], []
        for r in rows:
            entries = t[starts[r]:starts[r + 1]]
            chosen = pick(rng, len(entries))
            mask = np.zeros(len(entries), dtype=bool)
            mask[chosen] = True
            seeds.append(np.unique(entries[mask]))
            holds.append(np.setdiff1d(np.unique(entries[~mask]), seeds[-1]))
        truth = _rows_matrix(holds, n_t)
        truth_art = _rows_matrix([np.unique(track_artist[h]) for h in holds], int(art.max()) + 1)
        seed_m = _rows_matrix(seeds, n_t)
        recs = {"popularity": _popular(pop, seeds),
                "co-occurrence kNN": _knn(seed_m, x, pop)}
        if label == "first 10":
            recs["title popularity"] = _title_pop(norm[rows], norm[train_rows], x, pop, seed_m)
        for name, rec in recs.items():
            m = playlist_metrics(rec, track_artist[rec], truth, truth_art)
            out[(label, name)] = (float(np.mean(m["r_precision"])), float(np.mean(m["ndcg"])), len(rows))
    return out


def _popular(pop: np.ndarray, seeds: list[np.ndarray], k: int = 500) -> np.ndarray:
    """The most popular tracks, each playlist's seeds left out."""
    order = np.argsort(-pop, kind="stable")[:k + max(len(s) for s in seeds)]
    return np.stack([order[~np.isin(order, s)][:k] for s in seeds])


def _rows_matrix(rows: list[np.ndarray], width: int) -> sp.csr_matrix:
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    idx = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(idx), dtype=np.float32), idx, indptr), shape=(len(rows), width))


def _top(scores: np.ndarray, seeds: sp.csr_matrix, k: int = 500) -> np.ndarray:
    s = np.array(scores, dtype=np.float64)
    s[seeds.nonzero()] = -np.inf
    top = np.argpartition(-s, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _chunk(n_tracks: int) -> int:
    """Test playlists scored at once: dense score rows stay under ~1 GB."""
    return int(max(10, min(100, 1e8 // n_tracks)))


def _knn(seeds: sp.csr_matrix, x: sp.csr_matrix, pop: np.ndarray, k_users: int = 200) -> np.ndarray:
    """User-based co-occurrence kNN: cosine to training playlists, top neighbours vote."""
    row_norm = np.sqrt(np.asarray(x.sum(axis=1)).ravel()) + 1e-9
    out = []
    step = _chunk(x.shape[1])
    for lo in range(0, seeds.shape[0], step):
        s = seeds[lo:lo + step]
        sim = (s @ x.T).toarray() / row_norm[None, :]
        keep = np.argpartition(-sim, k_users, axis=1)[:, :k_users]
        w = np.zeros_like(sim)
        np.put_along_axis(w, keep, np.take_along_axis(sim, keep, axis=1), axis=1)
        scores = (sp.csr_matrix(w) @ x).toarray() + 1e-6 * pop / pop.max()
        out.append(_top(scores, s))
    return np.concatenate(out)


def _title_pop(titles: np.ndarray, train_titles: np.ndarray, x: sp.csr_matrix, pop: np.ndarray,
               seeds: sp.csr_matrix) -> np.ndarray:
    """Most popular tracks among training playlists with the same normalised title (else overall)."""
    uniq, inv = np.unique(np.concatenate([titles, train_titles]), return_inverse=True)
    t_test, t_train = inv[:len(titles)], inv[len(titles):]
    # title x track counts from the training playlists, only for titles that occur in the test set
    wanted = np.isin(t_train, t_test)
    by_title = sp.csr_matrix((np.ones(wanted.sum()), (t_train[wanted], np.flatnonzero(wanted))),
                             shape=(len(uniq), x.shape[0])) @ x
    out = []
    step = _chunk(x.shape[1])
    for lo in range(0, len(titles), step):
        scores = by_title[t_test[lo:lo + step]].toarray() + 1e-6 * pop / pop.max()
        out.append(_top(scores, seeds[lo:lo + step]))
    return np.concatenate(out)


def _reference(n: int) -> dict[str, float | None]:
    """The MPD's value of each figure for a sample of n playlists (None where SPEC has none)."""
    at_100k, at_1m = n == 100_000, n == 1_000_000
    return {
        "entries": MPD_1M["entries"] * n / 1_000_000, "mean_length": 66.35,
        "tracks": MPD_100K["tracks"] if at_100k else MPD_1M["tracks"] if at_1m else None,
        "artists": MPD_100K["artists"] if at_100k else MPD_1M["artists"] if at_1m else None,
        "albums": MPD_1M["albums"] if at_1m else None,
        "top_track_share": 46_574 / 1_000_000, "top_artist_share": 847_160 / MPD_1M["entries"],
        "tracks_once": HEAPS_TRACKS, "artists_once": HEAPS_ARTISTS,
        "titles_raw": MPD_1M["titles_raw"] if at_1m else None,
        "titles_norm": MPD_1M["titles_norm"] if at_1m else None,
        "described": 18_760 / 1_000_000,
    }


# figure key, label, format
_FIGURES = (
    ("entries", "track entries", ",.0f"), ("mean_length", "mean length", ".2f"),
    ("tracks", "unique tracks", ",.0f"), ("artists", "unique artists", ",.0f"), ("albums", "unique albums", ",.0f"),
    ("top_track_share", "top track: share of playlists", ".4f"),
    ("top_artist_share", "top artist: share of entries", ".4f"),
    ("tracks_once", "tracks seen once (share of unique tracks)", ".3f"),
    ("artists_once", "artists seen once (share of unique artists)", ".3f"),
    ("titles_raw", "unique raw titles", ",.0f"), ("titles_norm", "unique normalised titles", ",.0f"),
    ("described", "playlists with a description", ".4f"),
)
_OURS_ONLY = (
    ("median_length", "median length", ".0f"), ("tracks_ge5", "tracks in >= 5 playlists", ",.0f"),
    ("mean_artists", "mean artists per playlist", ".1f"), ("mean_albums", "mean albums per playlist", ".1f"),
    ("with_repeats", "playlists repeating a track", ".3f"),
    ("adjacent_same_artist", "next entry by the same artist", ".3f"),
    ("adjacent_same_album", "next entry from the same album", ".3f"), ("collaborative", "collaborative", ".4f"),
)


def report(runs: list[tuple[dict, dict]], source: str, seconds: float) -> str:
    """Markdown: every figure for every size, beside the MPD's, with a note on each >2x gap."""
    head = "| figure | " + " | ".join(f"synthetic {f['playlists']:,d} | MPD | ratio" for f, _ in runs) + " |"
    rule = "|---|" + "---|---|---|" * len(runs)
    rows, notes = [], []
    for key, label, fmt in _FIGURES:
        cells = []
        for f, _ in runs:
            ref = _reference(f["playlists"])[key]
            ours = f[key]
            if ref is None:
                cells.append(f"{format(ours, fmt)} | n/a | ")
                continue
            ratio = ours / ref
            off = not 0.5 <= ratio <= 2.0
            cells.append(f"{format(ours, fmt)} | {format(ref, fmt)} | {ratio:.2f}{' **off >2x**' if off else ''}")
            if off:
                notes.append(f"- **{label}** at {f['playlists']:,d} playlists ({ratio:.2f}x).")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    rows.append("| min / max length | " + " | ".join(
        f"{f['min_length']} / {f['max_length']} | 5 / 250 | " for f, _ in runs) + " |")
    rows.append("| min artists / albums per playlist | " + " | ".join(
        f"{f['min_artists']} / {f['min_albums']} | 3 / 2 | " for f, _ in runs) + " |")
    for key, label, fmt in _OURS_ONLY:
        rows.append(f"| {label} | " + " | ".join(f"{format(f[key], fmt)} | n/a | " for f, _ in runs) + " |")

    f_big = runs[-1][0]
    n = f_big["playlists"]
    ours_titles = f_big["title_counts"]
    title_rows = []
    for title, count in MPD_TOP_TITLES.items():
        ours = ours_titles.get(title, 0) / n * 1_000_000
        ratio = ours / count
        off = not 0.5 <= ratio <= 2
        title_rows.append(f"| {title} | {ours:,.0f} | {count:,d} | {ratio:.2f}{' **off >2x**' if off else ''} |")
        if off:
            notes.append(f"- title **{title}** ({ratio:.2f}x): its count comes from the taste's naming "
                         "chance and vocabulary weight in preprocess/synthetic/.")
    ours_top = ", ".join(f"{t!r} {c * 1_000_000 / n:,.0f}" for t, c in f_big["top_titles"][:25])

    check_rows = []
    for f, checks in runs:
        check_rows += [f"| {f['playlists']:,d} | {label} | {name} | {rp:.4f} | {nd:.4f} | {m} |"
                       for (label, name), (rp, nd, m) in checks.items()]
    summary = []
    for f, checks in runs:
        pop = checks[("first 10", "popularity")][0]
        knn = checks[("first 10", "co-occurrence kNN")][0]
        title = checks[("first 10", "title popularity")][0]
        first25 = checks[("first 25", "co-occurrence kNN")][0]
        rand25 = checks[("25 random", "co-occurrence kNN")][0]
        summary.append(f"- {f['playlists']:,d} playlists: kNN {knn / pop:.1f}x popularity; title popularity "
                       f"{title / pop:.1f}x popularity and {title / knn:.2f}x kNN; kNN from 25 random seeds "
                       f"{rand25 / first25:.2f}x kNN from the first 25.")
    return "\n".join([
        "# Synthetic MPD calibration",
        "",
        f"Source: {source}. Computed by `bench/calibrate.py` on {datetime.date.today().isoformat()} "
        f"(2-core CPU, 24 GiB, shared machine; {seconds:.0f} s). MPD figures: SPEC section 1. Counts of "
        "distinct items grow with the sample, so they are compared only where the MPD gives them at that "
        "size (tracks and artists at 100K and 1M; albums and titles at 1M); shares compare at any size.",
        "",
        head,
        rule,
        *rows,
        "",
        "'Seen once' MPD values are derived, not published: between the 100K sample and the full MPD "
        f"distinct tracks grow as entries^{HEAPS_TRACKS:.2f} and artists as entries^{HEAPS_ARTISTS:.2f}; "
        "by Good-Turing the share of distinct items seen once is about that local exponent. The MPD's "
        "description count (18,760) is from the MPD documentation, not SPEC.",
        "",
        f"## Top normalised titles at {n:,d} playlists (count per 1M playlists)",
        "",
        "| title | synthetic | MPD | ratio |",
        "|---|---|---|---|",
        *title_rows,
        "",
        f"Synthetic top 25: {ours_top}.",
        "",
        "## Figures off by more than 2x",
        "",
        *(notes or ["None."]),
        "",
        "## Structure: does the data reward collaborative filtering?",
        "",
        "Held-out playlists (>= 50 tracks; the other playlists are the training set), 500 recommendations "
        "each with the seeds removed, challenge R-precision and NDCG (common/metrics.py). Popularity: "
        "the most frequent training tracks. Title popularity: the most frequent tracks of training "
        "playlists with the same normalised title (the title-only signal). Co-occurrence kNN: cosine "
        "similarity of the seeds to training playlists, 200 nearest playlists vote.",
        "",
        "| playlists | seeds | method | R-precision | NDCG | test playlists |",
        "|---|---|---|---|---|---|",
        *check_rows,
        "",
        *summary,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpd", type=Path, help="folder of MPD slices to measure (default: generate)")
    ap.add_argument("--playlists", type=int, nargs="+", default=[100_000],
                    help="dataset sizes to generate (default 100000)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    ap.add_argument("--profile", default=synthetic.DEFAULT_PROFILE,
                    help=f"generator profile (default {synthetic.DEFAULT_PROFILE})")
    ap.add_argument("--test", type=int, default=1000, help="held-out playlists for the structure check")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "calibration.md", help="report file")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    runs = []
    sources = [(lambda: from_folder(args.mpd))] if args.mpd else [
        (lambda n=n: from_generator(n, args.seed, synthetic.synth_config(args.profile))) for n in args.playlists]
    for load in sources:
        f = figures(load())
        log.info("%d playlists: figures done (%.0fs); structure check", f["playlists"], time.perf_counter() - t0)
        runs.append((f, structure_check(f, args.test, args.seed)))
        f.pop("_matrix")
    source = f"MPD slices in {args.mpd}" if args.mpd else \
        f"preprocess.synthetic, profile {args.profile}, seed {args.seed}"
    text = report(runs, source, time.perf_counter() - t0)
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)
    print(text)
    return 0



if __name__ == "__main__":
    run_cli(main)
