"""Local challenge sets: hold out playlists the way the RecSys Challenge 2018 did.

The selection functions are pure and vectorised over playlists; the CLI and `preprocess.build`
(its validation split) share them, so local scores and validation follow the same rules:
10 categories (common.categories), equal counts, each playlist used once, seeds = first N
or N random positions, holdouts = every other track.

The real challenge only used playlists whose tracks all appear in the training MPD. Here
playlists whose every track also occurs in some other playlist are preferred; when a category
cannot be filled with those, others make up the rest, and the share of seed and holdout
entries whose track is absent from the training part is logged.

CLI: `python -m preprocess.challenge --mpd DIR --out DIR [--per-category N] [--title-only N] [--seed S]`
writes OUT/train/ (MPD slices of the other playlists, 1,000 per file), OUT/challenge_set.json
and OUT/truth.json. The MPD is read twice, one slice at a time, so memory stays bounded.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from common.cli import run_cli
from common.errors import PipelineError
from common.io import atomic_path
from common.progress import progress
from common.categories import CATEGORIES
from preprocess.corpus import map_ordered, scan
from preprocess.slices import load_json

log = logging.getLogger("preprocess.challenge")

PER_SLICE = 1000
_N_SEEDS = np.zeros(max(c.id for c in CATEGORIES) + 1, dtype=np.int64)
_RANDOM = np.zeros(len(_N_SEEDS), dtype=bool)
_HAS_TITLE = np.zeros(len(_N_SEEDS), dtype=bool)
for _c in CATEGORIES:
    _N_SEEDS[_c.id], _RANDOM[_c.id], _HAS_TITLE[_c.id] = _c.n_seeds, _c.random, _c.has_title


def playlist_coverage(track: np.ndarray, first_track: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """bool [P]: every track of the playlist also occurs in at least one other playlist."""
    n_pl = len(indptr) - 1
    count = np.bincount(track[first_track])
    row = np.repeat(np.arange(n_pl, dtype=np.int32), np.diff(indptr))
    return np.bincount(row[count[track] < 2], minlength=n_pl) == 0


def category_counts(per_category: int, overrides: dict[int, int] | None = None) -> dict[int, int]:
    """Playlists wanted per category id: `per_category` each, except where `overrides` says otherwise
    (a larger title-only set: with 100 playlists one standard error of its R-precision is ~0.008)."""
    counts = {c.id: per_category for c in CATEGORIES}
    for cid, n in (overrides or {}).items():
        if cid not in counts or n < 0:
            raise PipelineError(f"category counts: no category {cid}, or a negative count {n}")
        counts[cid] = n
    return counts


def choose_playlists(lengths: np.ndarray, has_title: np.ndarray, covered: np.ndarray, per_category: int | dict[int, int],
                     seed: int, where: str = "MPD") -> tuple[np.ndarray, np.ndarray]:
    """Rows and category ids of the wanted playlists (`per_category` each, or a count per category
    id), category by category.

    Categories are filled scarcest first (fewest eligible playlists), so the narrow long-playlist
    windows are not emptied by the wide ones. Within a category covered playlists come first,
    in random order. Raises a one-line PipelineError when a category cannot be filled.
    """
    lengths, has_title, covered = np.asarray(lengths), np.asarray(has_title, bool), np.asarray(covered, bool)
    wanted = per_category if isinstance(per_category, dict) else category_counts(per_category)
    rng = np.random.default_rng([seed, 0])
    eligible = {c.id: (lengths >= c.min_len) & (lengths <= c.max_len) & (has_title | (not c.has_title))
                for c in CATEGORIES}
    used = np.zeros(len(lengths), dtype=bool)
    picked: dict[int, np.ndarray] = {}
    for c in sorted(CATEGORIES, key=lambda c: (int(eligible[c.id].sum()), c.id)):
        cand = np.flatnonzero(eligible[c.id] & ~used)
        if len(cand) < wanted[c.id]:
            title = " with a title" if c.has_title else ""
            raise PipelineError(
                f"{where}: not enough playlists for category {c.id} ({c.name}): needs {wanted[c.id]} of "
                f"{c.min_len}..{c.max_len} tracks{title}, {len(cand)} left of {int(eligible[c.id].sum())} "
                f"eligible; use a smaller per-category count or more playlists")
        order = np.lexsort((rng.random(len(cand)), ~covered[cand]))
        picked[c.id] = cand[order[:wanted[c.id]]]
        used[picked[c.id]] = True
    rows = np.concatenate([picked[c.id] for c in CATEGORIES]).astype(np.int64)
    category = np.repeat(np.array([c.id for c in CATEGORIES], dtype=np.int8), [wanted[c.id] for c in CATEGORIES])
    return rows, category


def pick_seeds(lengths: np.ndarray, category: np.ndarray, seed: int) -> np.ndarray:
    """bool over the chosen playlists' entries laid end to end: True for seed positions.

    First-N categories take positions 0..N-1; random categories N distinct random positions.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    total = int(lengths.sum())
    row = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    key = np.where(_RANDOM[category][row], rng.random(total), pos)
    rank = np.empty(total, dtype=np.int64)
    rank[np.lexsort((key, row))] = pos
    return rank < _N_SEEDS[category][row]


def entry_rows(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Entry indices of `rows` (in that order), laid end to end."""
    starts, lens = indptr[rows], indptr[np.asarray(rows) + 1] - indptr[rows]
    return np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))


def unseen_share(track: np.ndarray, first_track: np.ndarray, indptr: np.ndarray, rows: np.ndarray,
                 seeds: np.ndarray) -> tuple[float, float]:
    """Share of seed and of holdout entries of `rows` whose track is absent from the other playlists."""
    held = np.zeros(len(indptr) - 1, dtype=bool)
    held[rows] = True
    in_train = ~np.repeat(held, np.diff(indptr))
    count = np.bincount(track[first_track & in_train], minlength=int(track.max(initial=-1)) + 1)
    unseen = count[track[entry_rows(indptr, rows)]] == 0
    share = [float(unseen[m].mean()) if m.any() else 0.0 for m in (seeds, ~seeds)]
    return share[0], share[1]


def make_challenge(mpd: str | Path, out: str | Path, per_category: int = 1000, seed: int = 0,
                   workers: int = 2, title_only: int | None = None) -> dict[str, Any]:
    """Write OUT/train/, OUT/challenge_set.json and OUT/truth.json; returns a summary.
    title_only: playlists of category 1 (default: per_category like the others)."""
    mpd, out = Path(mpd), Path(out)
    if per_category < 1:
        raise PipelineError(f"--per-category must be at least 1, got {per_category}")
    if title_only is not None and title_only < 1:
        raise PipelineError(f"--title-only must be at least 1, got {title_only}")
    if mpd.resolve() == (out / "train").resolve():
        raise PipelineError(f"{mpd}: input folder would be overwritten by OUT/train; choose another --out")
    t0 = time.perf_counter()
    corpus = scan(mpd, workers, desc="challenge: pass 1")
    covered = playlist_coverage(corpus.track, corpus.first_track, corpus.indptr)
    wanted = category_counts(per_category, {1: title_only} if title_only is not None else None)
    rows, category = choose_playlists(corpus.lengths, corpus.has_name, covered, wanted, seed, str(mpd))
    seeds = pick_seeds(corpus.lengths[rows], category, seed)
    seed_share, holdout_share = unseen_share(corpus.track, corpus.first_track, corpus.indptr, rows, seeds)
    log.info("chose %d playlists (%d covered) of %d; entries unseen in train: seeds %.2f%%, holdouts %.2f%%",
             len(rows), int(covered[rows].sum()), len(corpus), 100 * seed_share, 100 * holdout_share)

    n_seeds = _N_SEEDS[category]
    starts = np.cumsum(corpus.lengths[rows]) - corpus.lengths[rows]
    seed_pos = np.split(np.flatnonzero(seeds) - np.repeat(starts, n_seeds), np.cumsum(n_seeds)[:-1])
    chosen_per_file: list[dict[int, tuple[int, int, tuple]]] = [{} for _ in corpus.files]
    for k, (r, c, sp) in enumerate(zip(rows.tolist(), category.tolist(), seed_pos)):
        chosen_per_file[corpus.slice_of[r]][int(corpus.pid[r])] = (k, c, tuple(sp.tolist()))
    n_train, files = len(corpus) - len(rows), corpus.files
    del corpus

    for name in ("challenge_set.json", "truth.json"):  # never leave an old set beside a new train/
        (out / name).unlink(missing_ok=True)
    picked = _write_train(out, list(zip(files, chosen_per_file)), workers)
    if len(picked) != len(rows):
        raise PipelineError(f"{mpd}: slices changed while reading ({len(picked)} of {len(rows)} chosen found)")
    picked.sort(key=lambda p: p[0])
    challenge = {"date": datetime.datetime.now().isoformat(sep=" ", timespec="seconds"), "version": "v1",
                 "name": "challenge_set", "playlists": [p[1] for p in picked]}
    truth = {"playlists": [p[2] for p in picked]}
    for name, obj in (("truth.json", truth), ("challenge_set.json", challenge)):
        with atomic_path(out / name) as tmp:
            tmp.write_bytes(msgspec.json.encode(obj))
    summary = {"challenge_playlists": len(rows), "train_playlists": n_train, "covered": int(covered[rows].sum()),
               "unseen_seed_share": seed_share, "unseen_holdout_share": holdout_share,
               "seconds": round(time.perf_counter() - t0, 2)}
    log.info("wrote %s: %s", out, summary)
    return summary


def _split_slice(task: tuple[Path, dict]) -> tuple[Any, list[bytes], list[tuple]]:
    """One slice: kept playlists serialised, chosen ones as (order, challenge entry, truth entry)."""
    path, chosen = task
    data = load_json(path)
    kept, picked = [], []
    for pl in data["playlists"]:
        hit = chosen.get(pl["pid"])
        if hit is None:
            kept.append(msgspec.json.encode(pl))
            continue
        order, cat, seed_pos = hit
        tracks = [dict(t, pos=i) for i, t in enumerate(pl["tracks"])]
        is_seed = np.zeros(len(tracks), dtype=bool)
        is_seed[list(seed_pos)] = True
        entry: dict[str, Any] = {"name": pl.get("name", "")} if _HAS_TITLE[cat] else {}
        entry |= {"num_holdouts": int(len(tracks) - is_seed.sum()), "pid": pl["pid"], "num_tracks": len(tracks),
                  "tracks": [t for t, s in zip(tracks, is_seed) if s], "num_samples": int(is_seed.sum())}
        picked.append((order, entry, {"pid": pl["pid"], "tracks": [t for t, s in zip(tracks, is_seed) if not s]}))
    return data.get("info"), kept, picked


def _write_train(out: Path, tasks: list[tuple[Path, dict]], workers: int) -> list[tuple]:
    """Second pass: re-chunk the kept playlists into OUT/train/, swapped in only when complete."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".train.", suffix=".tmp", dir=out))
    tmp.chmod(0o755)  # mkdtemp makes it private; the finished train/ is an ordinary folder
    picked: list[tuple] = []
    try:
        buffer: list[bytes] = []
        info: dict = {}
        written = 0
        for src_info, kept, chosen in progress(map_ordered(_split_slice, tasks, workers), total=len(tasks),
                                               desc="challenge: pass 2", unit="slices"):
            info = info or (src_info if isinstance(src_info, dict) else {"version": "v1"})
            picked.extend(chosen)
            buffer.extend(kept)
            while len(buffer) >= PER_SLICE:
                written = _write_slice(tmp, info, buffer[:PER_SLICE], written)
                del buffer[:PER_SLICE]
        if buffer:
            _write_slice(tmp, info, buffer, written)
        final, old = out / "train", out / f".train.old.{tmp.name}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return picked


def _write_slice(folder: Path, info: dict, playlists: list[bytes], start: int) -> int:
    end = start + PER_SLICE - 1
    head = msgspec.json.encode(info | {"slice": f"{start}-{end}"})
    (folder / f"mpd.slice.{start}-{end}.json").write_bytes(
        b'{"info":' + head + b',"playlists":[' + b",".join(playlists) + b"]}")
    return start + len(playlists)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m preprocess.challenge", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpd", required=True, type=Path, help="folder of mpd.slice.*.json(.gz) files")
    ap.add_argument("--out", required=True, type=Path, help="output folder (train/, challenge_set.json, truth.json)")
    ap.add_argument("--per-category", type=int, default=1000, help="playlists per category (default 1000)")
    ap.add_argument("--title-only", type=int, help="playlists of category 1, title only (default: --per-category)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--workers", type=int, default=2, help="processes parsing slices (default 2)")
    args = ap.parse_args(argv)
    make_challenge(args.mpd, args.out, args.per_category, args.seed, args.workers, args.title_only)
    return 0


if __name__ == "__main__":
    run_cli(main)
