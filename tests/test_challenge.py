"""Local challenge builder: the 10 categories, seeds vs holdouts, train split, determinism, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.cli import run_cli
from common.errors import PipelineError
from common.categories import BY_ID, CATEGORIES, infer_categories
from preprocess.challenge import choose_playlists, main, make_challenge, pick_seeds, playlist_coverage
from tests.mpdfake import track_obj, write_slices

PER_CAT = 6


def long_playlists(n: int, n_tracks: int = 1500, seed: int = 0, start_pid: int = 0) -> list[dict]:
    """n playlists with lengths spread over 5..250 (every category has candidates), distinct tracks."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        length = int(rng.integers(5, 251))
        tracks = rng.permutation(n_tracks)[:length] if j % 2 else \
            np.unique(rng.zipf(1.3, size=length * 8) % n_tracks)[:length]
        if len(tracks) < length:
            rest = np.setdiff1d(rng.permutation(n_tracks), tracks, assume_unique=True)
            tracks = np.concatenate([tracks, rest[:length - len(tracks)]])
        out.append({"name": f"Mix {j % 9} 🎵", "collaborative": "false", "pid": start_pid + j, "num_tracks": length,
                    "num_followers": 1, "tracks": [track_obj(int(t), p) for p, t in enumerate(tracks)]})
    return out


@pytest.fixture(scope="module")
def mpd(tmp_path_factory) -> Path:
    return write_slices(tmp_path_factory.mktemp("mpd"), long_playlists(320), per_slice=100)


@pytest.fixture(scope="module")
def made(mpd, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    make_challenge(mpd, out, per_category=PER_CAT, seed=3, workers=1)
    return out


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _original(mpd: Path) -> dict[int, dict]:
    return {pl["pid"]: pl for f in sorted(mpd.glob("mpd.slice.*.json")) for pl in _load(f)["playlists"]}


def _category(entry: dict) -> int:
    pos = [t["pos"] for t in entry["tracks"]]
    return int(infer_categories(np.array([len(pos)]), np.array(["name" in entry]),
                                np.array([pos == list(range(len(pos)))]))[0])


def test_choose_fills_every_category_within_its_window():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 251, size=2000)
    has_title = rng.random(2000) < 0.9
    rows, cat = choose_playlists(lengths, has_title, np.ones(2000, bool), 30, seed=1)
    assert len(np.unique(rows)) == len(rows) == 300
    for c in CATEGORIES:
        r = rows[cat == c.id]
        assert len(r) == 30
        assert (lengths[r] >= c.min_len).all() and (lengths[r] <= c.max_len).all()
        if c.has_title:
            assert has_title[r].all()


def test_choose_prefers_covered_playlists_then_falls_back():
    lengths = np.concatenate([np.full(400, 120), np.full(300, 30), np.full(300, 60), np.full(300, 200)])
    covered = np.zeros(len(lengths), bool)
    covered[:400:4] = True  # 100 covered playlists, all of length 120
    rows, cat = choose_playlists(lengths, np.ones(len(lengths), bool), covered, 10, seed=0)
    assert covered[rows[np.isin(cat, [7, 8])]].all()  # 101..250: covered ones first
    assert (lengths[rows[np.isin(cat, [9, 10])]] == 200).all()  # no covered candidates: filled anyway


def test_choose_not_enough_names_the_category():
    lengths = np.full(100, 30)  # only categories 1..3 fit
    with pytest.raises(PipelineError, match=r"category 4 \(first 5, no title\).*40\.\.100"):
        choose_playlists(lengths, np.ones(100, bool), np.ones(100, bool), 5, seed=0, where="somewhere")


def test_pick_seeds_first_n_and_random():
    lengths = np.array([200, 200, 30, 160])
    category = np.array([8, 7, 1, 10], dtype=np.int8)
    mask = pick_seeds(lengths, category, seed=5)
    parts = np.split(mask, np.cumsum(lengths)[:-1])
    assert parts[0].sum() == 25 and not parts[0][:25].all()  # random: not the first 25
    assert parts[1][:25].all() and parts[1].sum() == 25
    assert parts[2].sum() == 0
    assert parts[3].sum() == 100 and not parts[3][:100].all()
    assert (pick_seeds(lengths, category, seed=5) == mask).all()
    assert (pick_seeds(lengths, category, seed=6) != mask).any()


def test_coverage_flags_playlists_with_a_lonely_track():
    track = np.array([0, 1, 1, 2, 0, 3])  # playlists [0,1], [1,2], [0,3]: tracks 2 and 3 occur once
    first = np.ones(6, bool)
    assert playlist_coverage(track, first, np.array([0, 2, 4, 6])).tolist() == [True, False, False]


def test_cli_writes_ten_categories_with_exact_seeds_and_holdouts(mpd, made):
    chal, truth = _load(made / "challenge_set.json"), _load(made / "truth.json")
    assert set(chal) == {"date", "version", "name", "playlists"}
    original = _original(mpd)
    cats = [_category(e) for e in chal["playlists"]]
    assert sorted(np.bincount(cats, minlength=11)[1:].tolist()) == [PER_CAT] * 10
    assert [e["pid"] for e in chal["playlists"]] == [t["pid"] for t in truth["playlists"]]
    for e, t, c in zip(chal["playlists"], truth["playlists"], cats):
        cat = BY_ID[c]
        full = original[e["pid"]]["tracks"]
        assert e["num_tracks"] == len(full) and cat.min_len <= len(full) <= cat.max_len
        assert e["num_samples"] == len(e["tracks"]) == cat.n_seeds
        assert e["num_samples"] + e["num_holdouts"] == e["num_tracks"] == len(e["tracks"]) + len(t["tracks"])
        assert ("name" in e) == cat.has_title
        if cat.has_title:
            assert e["name"] == original[e["pid"]]["name"]
        merged = sorted(e["tracks"] + t["tracks"], key=lambda x: x["pos"])
        assert merged == full  # seeds + holdouts are exactly the playlist, positions intact
        seed_pos = [x["pos"] for x in e["tracks"]]
        assert (seed_pos == list(range(cat.n_seeds))) != cat.random


def test_cli_train_holds_the_rest_in_slices_of_1000(mpd, made):
    chal = _load(made / "challenge_set.json")
    held = {e["pid"] for e in chal["playlists"]}
    train = [pl for f in sorted(made.glob("train/mpd.slice.*.json")) for pl in _load(f)["playlists"]]
    assert len(train) == 320 - 10 * PER_CAT
    assert {pl["pid"] for pl in train} == set(_original(mpd)) - held
    assert train[0] == _original(mpd)[train[0]["pid"]]  # playlists pass through unchanged
    assert sorted(p.name for p in (made / "train").iterdir()) == ["mpd.slice.0-999.json"]


def test_cli_is_deterministic_by_seed_and_workers(mpd, made, tmp_path):
    make_challenge(mpd, tmp_path / "again", per_category=PER_CAT, seed=3, workers=2)
    make_challenge(mpd, tmp_path / "other", per_category=PER_CAT, seed=4, workers=1)
    first, again, other = (_load(p / "challenge_set.json")["playlists"] for p in (made, tmp_path / "again",
                                                                                 tmp_path / "other"))
    assert first == again
    assert _load(made / "truth.json") == _load(tmp_path / "again" / "truth.json")
    assert (made / "train/mpd.slice.0-999.json").read_bytes() == \
        (tmp_path / "again/train/mpd.slice.0-999.json").read_bytes()
    assert [e["pid"] for e in first] != [e["pid"] for e in other]


def test_cli_rerun_replaces_train_folder(mpd, tmp_path):
    out = tmp_path / "o"
    (out / "train").mkdir(parents=True)
    (out / "train" / "mpd.slice.5000-5999.json").write_text("stale")
    run = lambda: run_cli(main, ["--mpd", str(mpd), "--out", str(out), "--per-category", "2", "--workers", "1"])
    with pytest.raises(SystemExit) as exc:
        run()
    assert exc.value.code == 0
    assert [p.name for p in (out / "train").iterdir()] == ["mpd.slice.0-999.json"]
    assert not list(out.glob(".train*"))


def test_cli_not_enough_playlists_is_one_line(mpd, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(main, ["--mpd", str(mpd), "--out", str(tmp_path), "--per-category", "500", "--workers", "1"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert err.startswith("error: ") and "\n" not in err and "not enough playlists for category" in err
    assert not (tmp_path / "challenge_set.json").exists()


def test_cli_refuses_to_overwrite_its_input(tmp_path, capsys):
    src = write_slices(tmp_path / "x" / "train", long_playlists(5), per_slice=100)
    with pytest.raises(SystemExit) as exc:
        run_cli(main, ["--mpd", str(src), "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "would be overwritten" in capsys.readouterr().err
    assert len(list(src.iterdir())) == 1


def test_train_is_rechunked_in_order(mpd, tmp_path, monkeypatch):
    import preprocess.challenge as ch
    monkeypatch.setattr(ch, "PER_SLICE", 50)
    make_challenge(mpd, tmp_path, per_category=PER_CAT, seed=3, workers=2)
    files = sorted((tmp_path / "train").iterdir(), key=lambda p: int(p.name.split(".")[2].split("-")[0]))
    assert [p.name for p in files] == [f"mpd.slice.{i}-{i + 49}.json" for i in range(0, 260, 50)]
    docs = [_load(p) for p in files]
    assert [len(d["playlists"]) for d in docs] == [50] * 5 + [10]
    assert [d["info"]["slice"] for d in docs] == [f"{i}-{i + 49}" for i in range(0, 260, 50)]
    pids = [pl["pid"] for d in docs for pl in d["playlists"]]
    assert pids == sorted(pids) and len(pids) == 260
