"""Challenge metrics: hand-worked cases, an independent reference, and the evaluate CLI against it."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from common.metrics import playlist_metrics, summarize
from submission import evaluate
from tests import mpdfake

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- reference, straight from SPEC
def ref_metrics(rec: list, truth: list, artist_of: dict) -> tuple[float, float, float]:
    """R-precision, NDCG, clicks of one playlist with sets and loops, nothing shared with the code under test."""
    g = set(truth)
    g_artists = {artist_of[t] for t in g}
    rec = rec[:500]
    hits, credited, seen = 0, set(), set()
    for t in rec[:len(g)]:
        if t in g:
            if t not in seen:
                hits += 1
        elif artist_of.get(t) in g_artists:
            credited.add(artist_of[t])
        seen.add(t)
    r_prec = (hits + 0.25 * len(credited)) / len(g)
    dcg, seen = 0.0, set()
    for i, t in enumerate(rec, start=1):
        if t in g and t not in seen:
            dcg += 1 / math.log2(i + 1)
        seen.add(t)
    idcg = sum(1 / math.log2(i + 1) for i in range(1, min(len(g), 500) + 1))
    clicks = next((i // 10 for i, t in enumerate(rec) if t in g), 51)
    return r_prec, dcg / idcg, float(clicks)


def csr_rows(lists: list[list[int]], width: int, permute: np.random.Generator | None = None) -> sp.csr_matrix:
    """Rows as given (optionally shuffled, leaving indices unsorted on purpose)."""
    cols = [np.asarray(sorted(set(x)), dtype=np.int64) for x in lists]
    if permute is not None:
        cols = [permute.permutation(c) for c in cols]
    indptr = np.cumsum([0] + [len(c) for c in cols])
    idx = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(len(idx), np.int8), idx, indptr), shape=(len(lists), width))


def run_metrics(recs: list[list[int]], truths: list[list[int]], artist_of: dict, permute=None) -> dict:
    """Call common.metrics on lists of item ids; the artist of item t is artist_of[t]."""
    k = max(len(r) for r in recs)
    rec = np.full((len(recs), k), -1, dtype=np.int64)
    for i, r in enumerate(recs):
        rec[i, :len(r)] = r
    rec_artist = np.vectorize(lambda t: artist_of.get(t, -1) if t >= 0 else -1, otypes=[np.int64])(rec)
    width = max(max(artist_of) + 1, rec.max() + 1)
    g = csr_rows(truths, width, permute)
    ga = csr_rows([[artist_of[t] for t in tr] for tr in truths], max(artist_of.values()) + 1, permute)
    return playlist_metrics(rec, rec_artist, g, ga)


# ---------------------------------------------------------------- hand-worked cases
def test_artist_credit_only_for_non_matching_tracks_once_per_artist():
    # G = {1, 2, 3, 4}; artists: 1, 2 -> A(0); 3 -> B(1); 4 -> C(2); 5, 6 -> A; 7 -> B; 8 -> C; 9 -> D(3).
    artist = {1: 0, 2: 0, 3: 1, 4: 2, 5: 0, 6: 0, 7: 1, 8: 2, 9: 3}
    # first |G| = 4 recs: 1 hit (1); 5 not in G, artist A in G -> 0.25; 6 artist A again -> 0;
    # 7 artist B -> 0.25; 8 (artist C) sits at rank 5, beyond |G| -> 0.  R-prec = 1.5 / 4 = 0.375
    # DCG = 1/log2(2) = 1; IDCG = 1 + 1/log2(3) + 1/log2(4) + 1/log2(5) = 2.5616063; NDCG = 0.3903800
    out = run_metrics([[1, 5, 6, 7, 8]], [[1, 2, 3, 4]], artist)
    assert out["r_precision"][0] == pytest.approx(0.375)
    assert out["ndcg"][0] == pytest.approx(0.3903800499921017)
    assert out["clicks"][0] == 0
    # two track hits by artist A earn no artist credit on top: (2 + 0) / 4 = 0.5
    # (9 at rank 3 has artist D, not in G -> 0).
    out = run_metrics([[1, 2, 9, 6]], [[1, 2, 3, 4]], artist)
    # rank 4 holds 6 (artist A, not in G) -> 0.25: R-prec = (2 + 0.25) / 4 = 0.5625
    assert out["r_precision"][0] == pytest.approx(0.5625)
    out = run_metrics([[1, 2, 9]], [[1, 2, 3, 4]], artist)
    assert out["r_precision"][0] == pytest.approx(0.5)


def test_duplicates_in_the_list_count_once():
    # G = {1, 2}; artists 1 -> A, 2 -> B, 3 -> A.  R = [1, 1, 2, 3]
    # R-prec looks at [1, 1]: one distinct hit, and the repeat is a track in G so it earns no
    # artist credit: 1 / 2 = 0.5 (counting it twice or crediting artist A would give 1.0 or 0.625).
    # NDCG: rel = [1, 0, 1, 0] -> DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.6309298;
    # NDCG = 0.9197208.
    out = run_metrics([[1, 1, 2, 3]], [[1, 2]], {1: 0, 2: 1, 3: 0})
    assert out["r_precision"][0] == pytest.approx(0.5)
    assert out["ndcg"][0] == pytest.approx(0.9197207891481876)
    assert out["clicks"][0] == 0


def test_more_than_500_withheld():
    # |G| = 600 (tracks 0..599, artist = track). Perfect 500: R-prec = 500 / 600; IDCG is over
    # min(600, 500) = 500 ranks, so NDCG = 1.
    truth = [list(range(600))]
    artist = {t: t for t in range(2000)}
    out = run_metrics([list(range(500))], truth, artist)
    assert out["r_precision"][0] == pytest.approx(500 / 600)
    assert out["ndcg"][0] == pytest.approx(1.0)
    # 250 misses (1000..1249, artists not in G) then 250 hits: R-prec = 250 / 600;
    # NDCG = sum_{i=251..500} 1/log2(i+1) / sum_{i=1..500} 1/log2(i+1); first hit at index 250 -> 25 clicks.
    out = run_metrics([list(range(1000, 1250)) + list(range(250))], truth, artist)
    dcg = sum(1 / math.log2(i + 1) for i in range(251, 501))
    idcg = sum(1 / math.log2(i + 1) for i in range(1, 501))
    assert out["r_precision"][0] == pytest.approx(250 / 600)
    assert out["ndcg"][0] == pytest.approx(dcg / idcg)
    assert out["clicks"][0] == 25


def test_no_hit_scores_51_clicks_even_with_artist_credit():
    # G = {1, 2}; rec 3 shares artist A with 1 -> R-prec = 0.25 / 2 = 0.125, but no track is
    # relevant: NDCG = 0 and clicks = 51.
    out = run_metrics([[3] + list(range(10, 509))], [[1, 2]], {1: 0, 2: 1, 3: 0} | {t: 5 for t in range(10, 509)})
    assert out["r_precision"][0] == pytest.approx(0.125)
    assert out["ndcg"][0] == 0
    assert out["clicks"][0] == 51


def test_perfect_list_and_clicks_boundaries():
    artist = {t: t for t in range(600)}
    # G = {5, 6, 7} listed first in any order: R-prec 3/3, NDCG 1, clicks 0.
    out = run_metrics([[7, 5, 6, 100, 101]], [[5, 6, 7]], artist)
    assert out["r_precision"][0] == 1 and out["ndcg"][0] == pytest.approx(1.0) and out["clicks"][0] == 0
    # first hit at 0-based index 9 -> 0 clicks, 10 -> 1, 23 -> 2, 499 -> 49.
    for index, clicks in ((9, 0), (10, 1), (23, 2), (499, 49)):
        rec = list(range(100, 600))
        rec[index] = 5
        assert run_metrics([rec], [[5]], artist)["clicks"][0] == clicks
    # a hit at rank 501 does not count: the list is cut at 500.
    assert run_metrics([list(range(100, 600)) + [5]], [[5]], artist)["clicks"][0] == 51


# ---------------------------------------------------------------- properties
playlist = st.tuples(
    st.sets(st.integers(0, 40), min_size=1, max_size=15),
    st.lists(st.integers(-1, 45), min_size=1, max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(playlist, min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_properties_and_agreement_with_reference(pls, seed):
    artist = {t: t % 7 for t in range(46)}
    truths = [sorted(g) for g, _ in pls]
    recs = [r for _, r in pls]
    out = run_metrics(recs, truths, artist)
    shuffled = run_metrics(recs, truths, artist, permute=np.random.default_rng(seed))
    for i, (g, r) in enumerate(pls):
        ref = ref_metrics([t if t >= 0 else None for t in r], list(g), artist)  # -1: an empty slot
        got = (out["r_precision"][i], out["ndcg"][i], out["clicks"][i])
        assert got == pytest.approx(ref, abs=1e-9)
    for m in ("r_precision", "ndcg", "clicks"):
        np.testing.assert_allclose(shuffled[m], out[m], atol=1e-12)
    assert ((out["r_precision"] >= 0) & (out["r_precision"] <= 1)).all()
    assert ((out["ndcg"] >= 0) & (out["ndcg"] <= 1 + 1e-12)).all()
    assert np.isin(out["clicks"], np.arange(52)).all()


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 300), min_size=1, max_size=120), st.randoms(use_true_random=False))
def test_perfect_list_has_ndcg_one(g, rnd):
    g = sorted(g)
    rec = g[:]
    rnd.shuffle(rec)
    rec += [t for t in range(1000, 1500)][: 500 - len(rec)]
    out = run_metrics([rec], [g], {t: t // 3 for t in range(1500)})
    assert out["ndcg"][0] == pytest.approx(1.0)
    assert out["r_precision"][0] == pytest.approx(1.0)
    assert out["clicks"][0] == 0


# ---------------------------------------------------------------- the CLI against the reference
N_POOL = 1000  # submission tracks come from uri("track", 0..999); the MPD only knows 0..299


def _category(n: int, titled: bool, in_order: bool) -> int:
    """SPEC table, written out independently of common.categories (seed lists of 5 or more
    are either the first n or random; the generator below never draws one random seed)."""
    ordered = {(0, True): 1, (1, True): 2, (5, True): 3, (5, False): 4, (10, True): 5, (10, False): 6,
               (25, True): 7, (100, True): 9}
    shuffled = {(25, True): 8, (100, True): 10}
    return (ordered if in_order else shuffled).get((n, titled), 0)


def make_case(tmp: Path, seed: int, invalid: bool) -> dict:
    """Random MPD, challenge, truth and submission files, plus everything the reference needs."""
    rng = np.random.default_rng(seed)
    pls = mpdfake.make_playlists(120, n_tracks=300, seed=seed)
    mpdfake.write_slices(tmp / "mpd", pls, per_slice=40)
    artist_of = {t["track_uri"]: t["artist_uri"] for pl in pls for t in pl["tracks"]}
    challenge, truth, cases = [], [], []
    for pl in rng.choice(pls, size=40, replace=False):
        tracks = pl["tracks"]
        n = int(rng.choice([0, 1, 5, 10, 25]))
        n = min(n, len(tracks) - 1)
        titled = bool(rng.random() < 0.8)
        shuffled = n >= 5 and rng.random() < 0.4
        pick = np.sort(rng.choice(len(tracks), n, replace=False)) if shuffled else np.arange(n)
        seeds = [tracks[i] for i in pick]
        picked = set(pick.tolist())
        held = [t for i, t in enumerate(tracks) if i not in picked]
        if held and rng.random() < 0.2:
            held.append(held[0])  # a playlist that repeats a withheld track: G is a set
        entry = {"pid": pl["pid"], "num_tracks": len(tracks), "num_samples": n, "num_holdouts": len(tracks) - n,
                 "tracks": seeds}
        if titled:
            entry["name"] = pl["name"]
        challenge.append(entry)
        truth.append({"pid": pl["pid"], "tracks": [held[i] for i in rng.permutation(len(held))]})
        in_order = [t["pos"] for t in seeds] == list(range(n))
        seed_uris = {t["track_uri"] for t in seeds}
        pool = [mpdfake.uri("track", t) for t in rng.permutation(N_POOL)]
        pool = [u for u in pool if u not in seed_uris]
        g = list(dict.fromkeys(t["track_uri"] for t in held))
        front = [g[i] for i in rng.permutation(len(g))[: rng.integers(0, len(g) + 1)]]
        rec = front + [u for u in pool if u not in set(front)]
        if rng.random() < 0.3:  # no hits after a random rank, to vary clicks and NDCG
            cut, g_set = int(rng.integers(0, 60)), set(g)
            rec = rec[:cut] + [u for u in rec[cut:] if u not in g_set]
        rec = rec[:500]
        cases.append({"pid": pl["pid"], "rec": rec, "g": [t["track_uri"] for t in held],
                      "category": _category(n, titled, in_order)})
    rows = {c["pid"]: list(c["rec"]) for c in cases}
    if invalid:
        pids = list(rows)
        rows[pids[0]][3] = rows[pids[0]][1]  # a repeat
        rows[pids[1]] = rows[pids[1]][:450]  # short
        seeded = next(e for e in challenge[2:] if e["tracks"])
        rows[seeded["pid"]] = [seeded["tracks"][0]["track_uri"]] + rows[seeded["pid"]][:499]  # a seed listed
        del rows[pids[-1]]  # missing
        for c in cases:
            c["rec"] = rows.get(c["pid"], [])
    lines = ["# generated", "team_info,main,tester,t@example.com", ""]
    lines += [f"{pid}, " + ", ".join(r) for pid, r in rows.items()]
    if invalid:
        lines.append(f"{cases[0]['pid']}," + ",".join(reversed(cases[0]["rec"])))  # duplicate pid: first row counts
        lines.append("999999," + ",".join(cases[0]["rec"]))  # unknown pid: ignored
    (tmp / "challenge.json").write_text(json.dumps({"playlists": challenge}))
    (tmp / "truth.json").write_text(json.dumps({"playlists": truth}))
    (tmp / "sub.csv").write_text("\n".join(lines) + "\n")
    return {"cases": cases, "artist_of": artist_of}


def reference_summary(case: dict) -> dict:
    per = np.array([ref_metrics(c["rec"], c["g"], case["artist_of"]) for c in case["cases"]])
    cats = np.array([c["category"] for c in case["cases"]])
    out = {"overall": per.mean(axis=0)}
    for cid in np.unique(cats[cats > 0]):
        out[str(cid)] = per[cats == cid].mean(axis=0)
    return out


def _args(tmp: Path) -> list[str]:
    return ["--submission", str(tmp / "sub.csv"), "--challenge", str(tmp / "challenge.json"),
            "--truth", str(tmp / "truth.json"), "--mpd", str(tmp / "mpd"), "--json"]


def _assert_agrees(got: dict, want: dict) -> None:
    keys = ("r_precision", "ndcg", "clicks")
    assert [got[k] for k in keys] == pytest.approx(list(want["overall"]), abs=1e-6)
    assert set(got["per_category"]) == set(want) - {"overall"}
    for cid, row in got["per_category"].items():
        assert [row[k] for k in keys] == pytest.approx(list(want[cid]), abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_evaluate_cli_matches_reference(tmp_path, capsys, seed):
    case = make_case(tmp_path, seed, invalid=False)
    assert evaluate.main(_args(tmp_path)) == 0
    got = json.loads(capsys.readouterr().out)
    assert set(got) == {"r_precision", "ndcg", "clicks", "per_category"}
    assert got["r_precision"] > 0  # the random lists do find withheld tracks
    _assert_agrees(got, reference_summary(case))


def test_evaluate_cli_matches_reference_on_invalid_submission(tmp_path, capsys):
    case = make_case(tmp_path, 7, invalid=True)
    assert evaluate.main(_args(tmp_path) + ["--allow-invalid"]) == 0
    _assert_agrees(json.loads(capsys.readouterr().out), reference_summary(case))


def test_evaluate_subprocess_json_and_table(tmp_path):
    case = make_case(tmp_path, 11, invalid=False)
    cmd = [sys.executable, "-m", "submission.evaluate", *_args(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    _assert_agrees(json.loads(done.stdout), reference_summary(case))
    table = subprocess.run(cmd[:-1], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    want = reference_summary(case)["overall"]
    last = table.stdout.strip().splitlines()[-1].split()
    assert last[0] == "all" and int(last[1]) == len(case["cases"])
    assert [float(x) for x in last[2:]] == pytest.approx(list(want), abs=1e-3)


def test_summarize_gives_the_official_mean_and_the_mean_of_category_means():
    per = {"r_precision": np.array([0.1, 0.3, 0.5, 0.6, 0.7]), "ndcg": np.array([0.2, 0.2, 0.4, np.nan, 0.4]),
           "clicks": np.array([1.0, 3.0, 0.0, 0.0, 2.0])}
    out = summarize(per, np.array([1, 1, 4, 4, 4]))
    assert out["r_precision"] == pytest.approx(2.2 / 5) and out["clicks"] == pytest.approx(6 / 5)
    assert out["per_category"]["1"]["r_precision"] == pytest.approx(0.2)
    assert out["per_category"]["4"]["ndcg"] == pytest.approx(0.4)  # NaN (no withheld track) left out
    assert out["category_mean"]["r_precision"] == pytest.approx((0.2 + 0.6) / 2)
    assert out["category_mean"]["clicks"] == pytest.approx((2.0 + 2 / 3) / 2)
    balanced = summarize(per, np.array([1, 1, 4, 4, 5]))
    assert balanced["per_category"]["5"]["playlists"] == 1
