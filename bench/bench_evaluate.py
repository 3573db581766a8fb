"""Benchmark of submission.evaluate at challenge scale (10,000 playlists x 500 tracks).

    python bench/bench_evaluate.py [--playlists 10000] [--out bench/results/evaluate.md]

Builds a challenge set with the SPEC's category mix, its truth, a valid submission that finds
some withheld tracks, and an MPD folder holding every recommended track, in a temporary folder.
Times the vectorised scoring against the plain-Python reference of tests/test_metrics.py on the
same data (and checks they agree), then the whole `python -m submission.evaluate` and
`python -m submission.verify` commands.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.metrics import playlist_metrics  # noqa: E402
from common.categories import CATEGORIES  # noqa: E402
from preprocess.challenge_file import read_challenge, read_truth  # noqa: E402
from preprocess.slices import track_artists  # noqa: E402
from submission.score import score  # noqa: E402
from submission.csvio import read_submission  # noqa: E402
from submission.verify import find_problems  # noqa: E402
from submission.writer import finalize, write_rows  # noqa: E402
from tests import mpdfake  # noqa: E402
from tests.test_metrics import ref_metrics  # noqa: E402

N_TRACKS = 200_000
MPD_SLICES = 10


def generate(folder: Path, n_playlists: int, seed: int = 0) -> list[np.ndarray]:
    """Writes the files; returns each challenge playlist's seed track ids (for the writer timing)."""
    rng = np.random.default_rng(seed)
    weight = 1.0 / (np.arange(N_TRACKS) + 10.0) ** 0.9
    weight /= weight.sum()
    cdf = np.cumsum(weight)

    def draw(size: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(size)), N_TRACKS - 1)

    per_cat = n_playlists // len(CATEGORIES)
    challenge, truth, rows, rec_tracks, seed_ids = [], [], [], set(), []
    popular = np.argsort(-weight)[:3000]
    for c in CATEGORIES:
        for j in range(per_cat):
            pid = 1_000_000 + c.id * 100_000 + j
            length = int(rng.integers(c.min_len, c.max_len + 1))
            tracks = np.unique(draw(length * 2))
            tracks = rng.permutation(tracks)[:length]
            pick = np.sort(rng.choice(len(tracks), c.n_seeds, replace=False)) if c.random else np.arange(c.n_seeds)
            held = np.delete(tracks, pick)
            seed_ids.append(tracks[pick])
            entry = {"pid": pid, "num_tracks": len(tracks), "num_samples": c.n_seeds,
                     "num_holdouts": len(held), "tracks": [mpdfake.track_obj(int(tracks[p]), int(p)) for p in pick]}
            if c.has_title:
                entry["name"] = "road trip"
            challenge.append(entry)
            truth.append({"pid": pid, "tracks": [mpdfake.track_obj(int(t), i) for i, t in enumerate(held)]})
            found = rng.permutation(held)[: rng.binomial(len(held), 0.3)]
            tail = rng.integers(0, N_TRACKS, size=300)  # long-tail guesses, mostly outside every truth list
            cand = np.concatenate([found, rng.permutation(np.concatenate([rng.permutation(popular)[:400], tail]))])
            cand = cand[~np.isin(cand, tracks[pick])]
            _, first = np.unique(cand, return_index=True)
            rec = cand[np.sort(first)][:500]
            rec = rec[rng.permutation(len(rec))] if rng.random() < 0.5 else rec
            rec_tracks.update(rec.tolist())
            rows.append(f"{pid}," + ",".join(mpdfake.uri("track", int(t)) for t in rec))
    (folder / "challenge.json").write_text(json.dumps({"playlists": challenge}))
    (folder / "truth.json").write_text(json.dumps({"playlists": truth}))
    (folder / "sub.csv").write_text("team_info,bench,bench@example.com\n" + "\n".join(rows) + "\n")
    # MPD: random playlists, and last the ones that cover every recommended track, so every slice is read
    cover = np.array(sorted(rec_tracks))
    cover_pls = [cover[i:i + 60] for i in range(0, len(cover), 60)]
    n_random = max(MPD_SLICES * 1000 - len(cover_pls), 0)
    pls = [np.unique(draw(60)) for _ in range(n_random)] + cover_pls
    mpd = [{"name": "x", "pid": i, "num_tracks": len(t), "tracks": [mpdfake.track_obj(int(x), p) for p, x in enumerate(t)]}
           for i, t in enumerate(pls)]
    mpdfake.write_slices(folder / "mpd", mpd, per_slice=1000)
    return seed_ids


def reference_scores(sub, challenge, truth, artists: dict) -> np.ndarray:
    pid_rows = {int(p): r for r, p in enumerate(sub.pid)}
    out = []
    for i, pid in enumerate(challenge.seeds.pid.tolist()):
        r = pid_rows[pid]
        rec = sub.uris[sub.codes[sub.indptr[r]:sub.indptr[r + 1]]].tolist()
        g = truth.track_uri[truth.indptr[i]:truth.indptr[i + 1]].tolist()
        out.append(ref_metrics(rec, g, artists))
    return np.array(out)


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--playlists", type=int, default=10_000)
    p.add_argument("--out", default=str(ROOT / "bench/results/evaluate.md"))
    args = p.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seed_ids, t_gen = timed(generate, folder, args.playlists)
        files = {"challenge": folder / "challenge.json", "truth": folder / "truth.json", "sub": folder / "sub.csv"}
        challenge, t_ch = timed(read_challenge, files["challenge"])
        truth, t_truth = timed(read_truth, files["truth"])
        sub, t_sub = timed(read_submission, files["sub"])
        _, t_sub_text = timed(read_submission, files["sub"], False)
        known = dict(zip(truth.track_uri, truth.artist_uri))
        known.update(zip(challenge.seeds.track_uri.tolist(), challenge.seeds.artist_uri.tolist()))
        extra, t_mpd = timed(track_artists, folder / "mpd", {u for u in sub.uris if u not in known})
        artists = known | extra
        assert not (set(sub.uris) - set(artists)), "bench data: MPD does not cover the recommendations"

        fast = []
        for _ in range(3):
            per, t = timed(score, sub, challenge, truth, artists)
            fast.append(t)
        ref, t_ref = timed(reference_scores, sub, challenge, truth, artists)
        got = np.stack([per["r_precision"], per["ndcg"], per["clicks"]], axis=1)
        max_diff = float(np.abs(got - ref).max())
        assert max_diff < 1e-9, max_diff

        core = []
        rec, rec_a, g, ga = _core_inputs(sub, challenge, truth, artists)
        for _ in range(3):
            _, t = timed(playlist_metrics, rec, rec_a, g, ga)
            core.append(t)

        (t_finalize, t_write), writer_ok = _writer_timing(folder, challenge, seed_ids)

        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cmd = [sys.executable, "-m", "submission.evaluate", "--submission", str(files["sub"]), "--challenge",
               str(files["challenge"]), "--truth", str(files["truth"]), "--mpd", str(folder / "mpd"), "--json"]
        done, t_cli = _run(cmd, env)
        summary = json.loads(done.stdout)
        vcmd = [sys.executable, "-m", "submission.verify", "--submission", str(files["sub"]),
                "--challenge", str(files["challenge"])]
        vdone, t_verify = _run(vcmd, env)
        assert vdone.returncode == 0, vdone.stdout + vdone.stderr
        sizes = {k: v.stat().st_size / 2**20 for k, v in files.items()}
        mpd_mb = sum(f.stat().st_size for f in (folder / "mpd").iterdir()) / 2**20

    n = len(challenge.seeds)
    lines = [
        "# submission.evaluate benchmark",
        "",
        f"- command: `python bench/bench_evaluate.py --playlists {args.playlists}`",
        f"- machine: 2-core CPU, 24 GiB; date {datetime.date.today().isoformat()}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; load average at the start "
        f"{load[0]:.1f}, at the end {os.getloadavg()[0]:.1f} (other jobs share the 2 cores)",
        f"- data: {n} challenge playlists (SPEC category mix) x 500 tracks, {len(truth.track_uri):,} withheld "
        f"entries, {len(sub.uris):,} distinct recommended tracks; submission {sizes['sub']:.0f} MiB, truth "
        f"{sizes['truth']:.0f} MiB, challenge {sizes['challenge']:.0f} MiB, MPD folder {MPD_SLICES} slices "
        f"{mpd_mb:.0f} MiB (generated in {t_gen:.0f} s, not counted)",
        f"- scores: R-prec {summary['r_precision']:.4f}, NDCG {summary['ndcg']:.4f}, clicks {summary['clicks']:.3f}; "
        f"vectorised vs reference max |diff| {max_diff:.1e}",
        "",
        "| step | seconds | speed vs the reference (>1 = faster) |",
        "|---|---|---|",
        f"| scoring, plain-Python reference (sets and loops) | {t_ref:.2f} | 1.0x |",
        f"| scoring, `submission.score` (uris to ids, matrices, `common.metrics`), best of 3 | {min(fast):.2f} | "
        f"{t_ref / min(fast):.1f}x |",
        f"| of which `common.metrics.playlist_metrics`, best of 3 | {min(core):.2f} | {t_ref / min(core):.1f}x |",
        f"| read challenge set | {t_ch:.2f} | |",
        f"| read + validate truth | {t_truth:.2f} | |",
        f"| read submission CSV, byte-level reader | {t_sub:.2f} | {t_sub_text / t_sub:.1f}x the text split |",
        f"| read submission CSV, text split (`fast=False`) | {t_sub_text:.2f} | |",
        f"| track -> artist from {MPD_SLICES} MPD slices | {t_mpd:.2f} | |",
        f"| whole `python -m submission.evaluate ... --json` | {t_cli:.2f} | |",
        f"| whole `python -m submission.verify` | {t_verify:.2f} | |",
        f"| writer: `finalize` (drop seeds/repeats, top up) of {n:,} x 520 random ids | {t_finalize:.2f} | |",
        f"| writer: format + gzip (level 6) + atomic write of {n:,} x 500 | {t_write:.2f} | "
        f"output passes verify: {writer_ok} |",
        "",
        "Target: scoring 10,000 x 500 in <= 10 s on 2 cores. The whole command is reading its inputs (submission "
        "CSV, then truth, challenge and MPD JSON; the MPD part grows with the folder given) plus the rule checks "
        "and the scoring. Figures taken while other jobs load the cores (see load average) run several times "
        "slower than on an idle machine; compare ratios within one run.",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def _writer_timing(folder: Path, challenge, seed_ids: list[np.ndarray]) -> tuple[tuple[float, float], bool]:
    rng = np.random.default_rng(1)
    n = len(seed_ids)
    rows = np.repeat(np.arange(n), [len(s) for s in seed_ids])
    seeds = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, np.concatenate(seed_ids))), shape=(n, N_TRACKS))
    rec = rng.integers(-1, N_TRACKS, size=(n, 520))
    popularity = np.arange(N_TRACKS)
    ids, t_finalize = timed(finalize, rec, seeds, popularity)
    vocab = np.array([mpdfake.uri("track", t) for t in range(N_TRACKS)])
    out = folder / "written.csv.gz"
    _, t_write = timed(write_rows, out, challenge.seeds.pid, vocab.astype("S")[ids], "bench", "bench@example.com")
    return (t_finalize, t_write), not find_problems(read_submission(out), challenge)


def _core_inputs(sub, challenge, truth, artists):
    """The integer inputs `submission.score` hands to `common.metrics`, rebuilt to time the core alone."""
    import submission.score as scoring
    captured = {}

    def spy(rec, rec_artist, g, ga):
        captured.update(rec=rec, rec_artist=rec_artist, g=g, ga=ga)
        return playlist_metrics(rec, rec_artist, g, ga)

    scoring.playlist_metrics = spy
    try:
        score(sub, challenge, truth, artists)
    finally:
        scoring.playlist_metrics = playlist_metrics
    return captured["rec"], captured["rec_artist"], captured["g"], captured["ga"]


def _run(cmd, env):
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done, elapsed


if __name__ == "__main__":
    main()
