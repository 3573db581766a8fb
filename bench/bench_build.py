"""Benchmark: `preprocess.build` against a naive reference written the way the 2018 code was
(json.load of every slice, Python dicts and lists, matrices from Python lists).

Both produce the same vocabulary and matrices (checked here and in tests/test_build.py). Each
runs in its own subprocess so its peak RSS (resource.getrusage) is its own; the fast build's
worker processes are reported separately (RUSAGE_CHILDREN: the largest worker).

    python bench/bench_build.py --playlists 20000          # generates /tmp/syn20k if missing
    python bench/bench_build.py --mpd DIR --repeat 3
    python bench/bench_build.py --mpd DIR --only fast      # scale runs (1M playlists)
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from preprocess.build import MAX_NAME_CHARS, MAX_TITLE_CHARS, BuildConfig  # noqa: E402
from preprocess.challenge import choose_playlists, pick_seeds  # noqa: E402
from preprocess.schema import VARIOUS_ARTISTS  # noqa: E402
from preprocess.slices import slice_files  # noqa: E402
from preprocess.titles import normalize_title, title_chars  # noqa: E402


def naive_build(mpd_dir: Path, cfg: BuildConfig) -> dict[str, np.ndarray]:
    """The reference: every playlist as Python dicts in memory, counts in Counters."""
    playlists = []
    for path in slice_files(mpd_dir):
        with open(path) as fh:
            playlists.extend(json.load(fh)["playlists"])
    count = Counter()
    for pl in playlists:
        count.update({t["track_uri"] for t in pl["tracks"]})
    lengths = np.array([len(pl["tracks"]) for pl in playlists])
    has_title = np.array([bool(pl.get("name")) for pl in playlists])
    covered = np.array([all(count[t["track_uri"]] >= 2 for t in pl["tracks"]) for pl in playlists])
    val_rows, val_cat = choose_playlists(lengths, has_title, covered, cfg.val_per_category, cfg.seed)
    seed_mask = pick_seeds(lengths[val_rows], val_cat, cfg.seed)
    val_set = set(val_rows.tolist())

    t_count, a_count, t_train, a_train, info, artist_name = Counter(), Counter(), Counter(), Counter(), {}, {}
    for i, pl in enumerate(playlists):  # the catalogue counts training and validation playlists alike ...
        for t in pl["tracks"]:
            info.setdefault(t["track_uri"], t)
            artist_name.setdefault(t["artist_uri"], t["artist_name"])
        t_count.update({t["track_uri"] for t in pl["tracks"]})
        a_count.update(t["artist_uri"] for t in pl["tracks"])
        if i not in val_set:  # ... and orders by the training playlists alone
            t_train.update({t["track_uri"] for t in pl["tracks"]})
            a_train.update(t["artist_uri"] for t in pl["tracks"])
    tracks = sorted((u for u, c in t_count.items() if c >= cfg.min_track_count), key=lambda u: (-t_train[u], u))
    artists = sorted((u for u, c in a_count.items() if c >= cfg.min_artist_count),
                     key=lambda u: (-a_train[u], u))
    t_index = {u: i for i, u in enumerate(tracks)}
    a_index = {u: i for i, u in enumerate(artists)}
    albums = sorted({info[u]["album_uri"] for u in tracks})
    b_index = {u: i for i, u in enumerate(albums)}
    out = {
        "track_uri": np.array(tracks), "track_count": np.array([t_count[u] for u in tracks]),
        "track_name": np.array([info[u]["track_name"][:MAX_NAME_CHARS] for u in tracks]),
        "track_artist": np.array([a_index.get(info[u]["artist_uri"], -1) for u in tracks]),
        "track_album": np.array([b_index[info[u]["album_uri"]] for u in tracks]),
        "track_duration": np.array([info[u].get("duration_ms", 0) for u in tracks]),
        "artist_uri": np.array(artists), "artist_count": np.array([a_count[u] for u in artists]),
        "artist_name": np.array([artist_name[u][:MAX_NAME_CHARS] for u in artists]), "album_uri": np.array(albums)}

    rows_t, rows_a, pids, titles = ([], [], [], []), ([], [], [], []), [], []
    trained_t, trained_a = set(), set()  # what the training playlists hold: validation seeds beyond it are unknown
    for i, pl in enumerate(playlists):
        if i in val_set:
            continue
        t_pos, a_pos = {}, {}
        for p, t in enumerate(pl["tracks"]):
            if t["track_uri"] in t_index:
                t_pos.setdefault(t_index[t["track_uri"]], p + 1)
            if t["artist_uri"] in a_index and t["artist_uri"] != VARIOUS_ARTISTS:  # never a model input
                a_pos.setdefault(a_index[t["artist_uri"]], p + 1)
        if len(t_pos) > cfg.max_train_len:
            continue
        trained_t.update(t_pos)
        trained_a.update(a_pos)
        _append(rows_t, len(pids), t_pos)
        _append(rows_a, len(pids), a_pos)
        pids.append(pl["pid"])
        titles.append(pl.get("name") or "")
    out |= _matrices("train", rows_t, rows_a, len(pids), len(tracks), len(artists))
    out["train.pid"] = np.array(pids)
    out["train.title"] = np.array([normalize_title(t)[:MAX_TITLE_CHARS] for t in titles])
    out["train.title_chars"] = title_chars(titles)

    seeds_t, seeds_a, held_t, n_held = ([], [], [], []), ([], [], [], []), ([], [], [], []), []
    k = 0
    for r, row in enumerate(val_rows.tolist()):
        tracks_r = playlists[row]["tracks"]
        t_pos, a_pos, held, held_all = {}, {}, {}, set()
        for p, t in enumerate(tracks_r):
            if seed_mask[k + p]:
                if t_index.get(t["track_uri"], -1) in trained_t:
                    t_pos.setdefault(t_index[t["track_uri"]], p + 1)
                if a_index.get(t["artist_uri"], -1) in trained_a:
                    a_pos.setdefault(a_index[t["artist_uri"]], p + 1)
            else:
                held_all.add(t["track_uri"])
                if t["track_uri"] in t_index:
                    held.setdefault(t_index[t["track_uri"]], 1)
        k += len(tracks_r)
        _append(seeds_t, r, t_pos)
        _append(seeds_a, r, a_pos)
        _append(held_t, r, held)
        n_held.append(len(held_all))
    out |= _matrices("val", seeds_t, seeds_a, len(val_rows), len(tracks), len(artists))
    out["val.holdout"] = _csr(held_t, len(val_rows), len(tracks))
    out["val.n_holdouts"] = np.array(n_held)
    return out


def _append(cols: tuple[list, list, list, list], row: int, positions: dict[int, int]) -> None:
    for item, value in positions.items():
        cols[0].append(row)
        cols[1].append(item)
        cols[2].append(value)


def _csr(cols: tuple[list, list, list, list], n_rows: int, n_cols: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.array(cols[2], dtype=np.int32), (np.array(cols[0], dtype=np.int64),
                       np.array(cols[1], dtype=np.int64))), shape=(n_rows, n_cols))
    m.sort_indices()
    return m


def _matrices(prefix: str, rows_t: tuple, rows_a: tuple, n_rows: int, n_tracks: int, n_artists: int) -> dict:
    return {f"{prefix}.tracks": _csr(rows_t, n_rows, n_tracks), f"{prefix}.artists": _csr(rows_a, n_rows, n_artists)}


def fast_outputs(folder: Path) -> dict[str, np.ndarray]:
    """The same keys as `naive_build`, read from an artifact folder."""
    from preprocess.artifacts import load_artifacts
    art = load_artifacts(folder)
    v = art.vocab
    out = {k: getattr(v, k) for k in ("track_uri", "track_count", "track_name", "track_artist", "track_album",
                                        "track_duration", "artist_uri", "artist_count", "artist_name", "album_uri")}
    train, val = art.playlists("train"), art.playlists("val")
    out |= {"train.tracks": train.tracks, "train.artists": train.artists, "train.pid": train.pid,
            "train.title": train.title, "train.title_chars": train.title_chars,
            "val.tracks": val.tracks, "val.artists": val.artists, "val.holdout": val.holdout,
            "val.n_holdouts": val.n_holdouts}
    return out


def differences(a: dict, b: dict) -> list[str]:
    """Names of outputs that differ (sparse matrices compared by structure and values)."""
    bad = []
    for key in sorted(a):
        x, y = a[key], b[key]
        if sp.issparse(x):
            same = x.shape == y.shape and x.nnz == y.nnz and (x != y).nnz == 0
        else:
            same = x.shape == y.shape and bool(np.all(np.asarray(x) == np.asarray(y)))
        if not same:
            bad.append(key)
    return bad


def _child(which: str, mpd: Path, out: Path, cfg: BuildConfig) -> None:
    """Run one side in this process and print its timing and peak RSS as one JSON line."""
    cpu0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    if which == "fast":
        from preprocess.build import build
        build(mpd, out, cfg)
        seconds = time.perf_counter() - t0
    else:
        res = naive_build(mpd, cfg)
        seconds = time.perf_counter() - t0
        with open(out, "wb") as fh:
            pickle.dump(res, fh)
    main_cpu, worker_cpu = _cpu(resource.RUSAGE_SELF) - cpu0[0], _cpu(resource.RUSAGE_CHILDREN) - cpu0[1]
    print(json.dumps({"seconds": seconds, "cpu_s": main_cpu + worker_cpu, "worker_cpu_s": worker_cpu,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def _cpu(who: int) -> float:
    """CPU seconds of this process, or of its finished children (the build's workers)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _run(which: str, mpd: Path, out: Path, cfg_args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--mpd", str(mpd), "--out", str(out), *cfg_args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        sys.exit(f"{which} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpd", type=Path, help="MPD slices (default: synthetic, generated if missing)")
    ap.add_argument("--playlists", type=int, default=20000, help="size of the generated synthetic MPD")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the best time is reported")
    ap.add_argument("--only", choices=("fast", "naive"), help="run one side only")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--val-per-category", type=int, default=200)
    ap.add_argument("--child", choices=("fast", "naive"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    cfg = BuildConfig(val_per_category=args.val_per_category, workers=args.workers)
    if args.child:
        _child(args.child, args.mpd, args.out, cfg)
        return
    mpd = args.mpd or Path(f"/tmp/syn{args.playlists // 1000}k")
    if not mpd.exists():
        subprocess.run([sys.executable, "-m", "preprocess.synthetic", "--out", str(mpd), "--playlists",
                        str(args.playlists)], check=True, cwd=ROOT)
    cfg_args = ["--workers", str(args.workers), "--val-per-category", str(args.val_per_category)]
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, list[dict]] = {"fast": [], "naive": []}
        load = os.getloadavg()
        for _ in range(args.repeat):
            for which in ("fast", "naive"):
                if args.only in (None, which):
                    results[which].append(_run(which, mpd, Path(tmp) / "naive.pkl" if which == "naive"
                                               else Path(tmp) / "fast", cfg_args))
        print(f"MPD {mpd}: {len(slice_files(mpd))} slices, workers {args.workers}, "
              f"load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
        for which, runs in results.items():
            if runs:
                best = min(runs, key=lambda r: r["seconds"])
                print(f"{which:5s} best {best['seconds']:.2f} s of {[round(r['seconds'], 2) for r in runs]}, "
                      f"peak RSS {max(r['rss_mb'] for r in runs):.0f} MB (largest worker "
                      f"{max(r['child_rss_mb'] for r in runs):.0f} MB), CPU {min(r['cpu_s'] for r in runs):.1f} s "
                      f"(workers {min(r['worker_cpu_s'] for r in runs):.1f} s)")
        if args.only is None:
            fast_t = min(r["seconds"] for r in results["fast"])
            naive_t = min(r["seconds"] for r in results["naive"])
            cpu = min(r["cpu_s"] for r in results["naive"]) / min(r["cpu_s"] for r in results["fast"])
            print(f"speed-up {naive_t / fast_t:.2f}x wall, {cpu:.2f}x CPU time")
            with open(Path(tmp) / "naive.pkl", "rb") as fh:
                naive = pickle.load(fh)
            diff = differences(naive, fast_outputs(Path(tmp) / "fast"))
            print("outputs identical" if not diff else f"outputs DIFFER: {diff}")


if __name__ == "__main__":
    main()
