"""preprocess.build: vocabulary rules, order-keeping matrices, validation split, challenge seeds,
fingerprints and crash-safe rewrites, checked against brute-force counts over the raw JSON."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from common.errors import PipelineError
from preprocess import build as build_mod
from preprocess.artifacts import load_artifacts
from pipeline.config import load_pipeline_config
from preprocess.build import BuildConfig, build
from preprocess.schema import VARIOUS_ARTISTS
from common.categories import BY_ID
from preprocess.challenge import pick_seeds
from preprocess.titles import normalize_title
from tests.mpdfake import track_obj, uri, write_slices
from tests.test_challenge import long_playlists

CFG = BuildConfig(val_per_category=3, max_train_len=100, workers=1, min_track_count=5, min_artist_count=3)


def _playlists() -> list[dict]:
    pls = long_playlists(300, n_tracks=1500, seed=1)
    for pl in pls:
        for t in pl["tracks"]:
            if int(t["track_uri"][-3:], 36) % 50 == 0:
                t["artist_uri"] = VARIOUS_ARTISTS
    for pl in pls[1:40:4]:  # short playlists that repeat a track
        pl["tracks"] = pl["tracks"][:30] + [dict(pl["tracks"][2], pos=30)]
        pl["num_tracks"] = 31
    del pls[2]["name"]
    return pls


@pytest.fixture(scope="module")
def mpd(tmp_path_factory) -> Path:
    return write_slices(tmp_path_factory.mktemp("mpd"), _playlists(), per_slice=100)


@pytest.fixture(scope="module")
def raw(mpd) -> dict[int, dict]:
    return {pl["pid"]: pl for f in sorted(mpd.glob("*.json")) for pl in json.loads(f.read_text())["playlists"]}


@pytest.fixture(scope="module")
def art(mpd, tmp_path_factory):
    return build(mpd, tmp_path_factory.mktemp("art"), CFG)


def _row(m, i) -> dict[int, int]:
    r = m[i]
    return dict(zip(r.indices.tolist(), r.data.tolist()))


def test_catalogue_follows_min_counts_over_training_and_validation_playlists(art, raw):
    t_count = Counter(u for pl in raw.values() for u in {t["track_uri"] for t in pl["tracks"]})
    a_count = Counter(t["artist_uri"] for pl in raw.values() for t in pl["tracks"])
    v = art.vocab
    assert set(v.track_uri) == {u for u, c in t_count.items() if c >= 5}
    assert set(v.artist_uri) == {u for u, c in a_count.items() if c >= 3}
    assert [t_count[u] for u in v.track_uri] == v.track_count.tolist()
    assert [a_count[u] for u in v.artist_uri] == v.artist_count.tolist()
    val_pids = set(art.playlists("val").pid.tolist())
    t_train = Counter(u for pid, pl in raw.items() if pid not in val_pids for u in {t["track_uri"] for t in pl["tracks"]})
    assert list(v.track_uri) == sorted(v.track_uri, key=lambda u: (-t_train[u], u))  # training counts, then uri


def _tie(mpd: Path, art, tmp_path: Path, winner: int) -> list[int]:
    """Catalogue ids of two tracks a < b (by uri) held by as many training playlists and no validation
    playlist, after a validation playlist's withheld track is swapped for track `winner` (which then
    counts once more over all playlists). The swapped-out track stays in >= 2 other playlists, so
    every playlist keeps its coverage and the validation split is the same."""
    pls = [pl for f in sorted(mpd.glob("*.json")) for pl in json.loads(f.read_text())["playlists"]]
    val = art.playlists("val")
    val_pids = set(val.pid.tolist())
    total = Counter(u for pl in pls for u in {t["track_uri"] for t in pl["tracks"]})
    in_val = {t["track_uri"] for pl in pls if pl["pid"] in val_pids for t in pl["tracks"]}
    by_count: dict[int, list[str]] = {}
    for u, c in sorted(total.items()):
        if u not in in_val and c >= CFG.min_track_count:
            by_count.setdefault(c, []).append(u)
    a, b = next(us[:2] for c, us in sorted(by_count.items()) if len(us) >= 2)
    seed_mask = np.split(pick_seeds(val.num_tracks, val.category, CFG.seed), np.cumsum(val.num_tracks)[:-1])
    host = next(i for i in range(len(val)) if val.n_holdouts[i] > 5)
    pl = next(p for p in pls if p["pid"] == val.pid[host])
    at = next(p for p, t in enumerate(pl["tracks"]) if not seed_mask[host][p] and total[t["track_uri"]] > CFG.min_track_count
              and sum(x["track_uri"] == t["track_uri"] for x in pl["tracks"]) == 1)
    pl["tracks"][at] = dict(pl["tracks"][at], track_uri=(a, b)[winner])
    out = build(write_slices(tmp_path / "mpd", pls, per_slice=100), tmp_path / "art", CFG)
    assert out.playlists("val").pid.tolist() == val.pid.tolist()
    index = {u: i for i, u in enumerate(out.vocab.track_uri)}
    assert out.vocab.track_count[index[(a, b)[winner]]] == out.vocab.track_count[index[(a, b)[1 - winner]]] + 1
    assert index[(a, b)[winner]] in out.playlists("val").holdout[host].indices
    return [index[a], index[b]]


def test_a_validation_holdout_wins_no_tie_through_catalogue_order(mpd, art, tmp_path):
    """Scores tie (counts, fills) and ties go to the lower id: a track that a validation playlist
    withholds must not get a lower id than an equally trained one, whichever of the two it is."""
    for winner in (0, 1):
        ids = _tie(mpd, art, tmp_path / str(winner), winner)
        assert ids[0] < ids[1]  # by uri, as nothing in training tells them apart


def test_default_catalogue_holds_every_track_and_artist(mpd, raw, tmp_path):
    v = build(mpd, tmp_path, BuildConfig(val_per_category=3, max_train_len=100, workers=1)).vocab
    assert set(v.track_uri) == {t["track_uri"] for pl in raw.values() for t in pl["tracks"]}
    assert set(v.artist_uri) == {t["artist_uri"] for pl in raw.values() for t in pl["tracks"]}


def test_val_full_holds_the_validation_playlists_whole_and_all_adds_them_to_train(art, raw):
    val, full, train = art.playlists("val"), art.playlists("val_full"), art.playlists("train")
    index = {u: i for i, u in enumerate(art.vocab.track_uri)}
    kept = {pid: len({t["track_uri"] for t in raw[pid]["tracks"]} & set(index)) for pid in val.pid.tolist()}
    assert 0 < len(full) < len(val)  # like training playlists, those over max_train_len kept tracks are skipped
    assert sorted(full.pid.tolist()) == sorted(pid for pid, n in kept.items() if n <= CFG.max_train_len)
    for i, pid in enumerate(full.pid.tolist()):
        expect = {}
        for p, t in enumerate(raw[pid]["tracks"]):
            if t["track_uri"] in index:
                expect.setdefault(index[t["track_uri"]], p + 1)  # first occurrence's position + 1
        assert _row(full.tracks, i) == expect
    both = art.playlists("all")
    assert len(both) == len(train) + len(full) and both.tracks.nnz == train.tracks.nnz + full.tracks.nnz
    assert both.pid.tolist() == train.pid.tolist() + full.pid.tolist()


def test_various_artists_in_the_catalogue_but_in_no_playlist_input(art, raw):
    v = art.vocab
    assert VARIOUS_ARTISTS in a_count_keys(raw) and VARIOUS_ARTISTS in set(v.artist_uri)  # for the artist credit
    info = {t["track_uri"]: t for pl in raw.values() for t in pl["tracks"]}
    assert [info[u]["artist_uri"] for u in v.track_uri] == v.artist_uri[v.track_artist].tolist()
    various = int(np.flatnonzero(v.artist_uri == VARIOUS_ARTISTS)[0])
    for name in ("train", "val", "val_full"):
        assert various not in art.playlists(name).artists.indices  # models never see it
    held = art.playlists("val").holdout_artists
    assert various in held.indices  # withheld artists keep it
    assert v.album_uri[v.track_album].tolist() == [info[u]["album_uri"] for u in v.track_uri]
    assert v.track_name.tolist() == [info[u]["track_name"] for u in v.track_uri]


def a_count_keys(raw: dict) -> set[str]:
    return {t["artist_uri"] for pl in raw.values() for t in pl["tracks"]}


def test_train_matrices_keep_first_positions(art, raw):
    train, v = art.playlists("train"), art.vocab
    t_index = {u: i for i, u in enumerate(v.track_uri)}
    a_index = {u: i for i, u in enumerate(v.artist_uri) if u != VARIOUS_ARTISTS}  # never a model input
    assert train.tracks.has_sorted_indices and train.tracks.dtype == np.int32
    for i, pid in enumerate(train.pid.tolist()):
        want_t, want_a = {}, {}
        for p, t in enumerate(raw[pid]["tracks"]):
            if t["track_uri"] in t_index:
                want_t.setdefault(t_index[t["track_uri"]], p + 1)
            if t["artist_uri"] in a_index:
                want_a.setdefault(a_index[t["artist_uri"]], p + 1)
        assert _row(train.tracks, i) == want_t
        assert _row(train.artists, i) == want_a
        assert train.num_tracks[i] == len(raw[pid]["tracks"])
        assert train.title[i] == normalize_title(raw[pid].get("name", ""))
    assert set(range(1, 40, 4)) & set(train.pid.tolist())  # playlists with a repeated track
    assert not train.has_title[train.pid.tolist().index(2)]


def test_long_training_playlists_are_skipped(art, raw):
    train, v = art.playlists("train"), art.vocab
    val = set(art.playlists("val").pid.tolist())
    vocab = set(v.track_uri)
    kept = {pid: len({t["track_uri"] for t in pl["tracks"]} & vocab) for pid, pl in raw.items() if pid not in val}
    assert set(train.pid.tolist()) == {pid for pid, k in kept.items() if k <= CFG.max_train_len}
    assert art.manifest["counts"]["train_skipped_long"] == sum(k > CFG.max_train_len for k in kept.values()) > 0
    assert np.diff(train.tracks.indptr).max() <= CFG.max_train_len


def test_validation_split_follows_the_categories(art, raw):
    val, v = art.playlists("val"), art.vocab
    t_index = {u: i for i, u in enumerate(v.track_uri)}
    trained = set(art.playlists("train").tracks.indices.tolist())  # a seed beyond these is unknown to val-fit models
    assert np.bincount(val.category, minlength=11)[1:].tolist() == [3] * 10
    assert not set(val.pid.tolist()) & set(art.playlists("train").pid.tolist())
    seed_mask = np.split(pick_seeds(val.num_tracks, val.category, CFG.seed), np.cumsum(val.num_tracks)[:-1])
    for i, pid in enumerate(val.pid.tolist()):
        cat, tracks = BY_ID[int(val.category[i])], raw[pid]["tracks"]
        assert cat.min_len <= val.num_tracks[i] == len(tracks) <= cat.max_len
        assert val.n_seeds[i] == cat.n_seeds and val.has_title[i] == cat.has_title
        assert (val.title[i] != "") == cat.has_title and val.title_chars[i].any() == cat.has_title
        positions = np.flatnonzero(seed_mask[i]).tolist()
        assert len(positions) == cat.n_seeds
        if not cat.random:
            assert positions == list(range(cat.n_seeds))
        want = {}
        for p in positions:
            if t_index.get(tracks[p]["track_uri"], -1) in trained:
                want.setdefault(t_index[tracks[p]["track_uri"]], p + 1)
        assert _row(val.tracks, i) == want
        assert val.n_unknown[i] == sum(t_index.get(tracks[p]["track_uri"], -1) not in trained for p in positions)
        held = {t["track_uri"] for p, t in enumerate(tracks) if not seed_mask[i][p]}
        assert val.n_holdouts[i] == len(held)
        assert set(v.track_uri[val.holdout[i].indices]) == held & set(t_index)
        held_artists = {t["artist_uri"] for p, t in enumerate(tracks) if not seed_mask[i][p]}
        assert set(v.artist_uri[val.holdout_artists[i].indices]) == held_artists & set(v.artist_uri)
    assert val.holdout.dtype == np.int8 and val.holdout_artists.nnz > 0


def test_same_artifacts_with_two_workers(art, mpd, tmp_path):
    again = build(mpd, tmp_path, dataclasses.replace(CFG, workers=2))
    assert again.vocab.fingerprint == art.vocab.fingerprint
    for name in ("train", "val"):
        a, b = art.playlists(name), again.playlists(name)
        assert (a.pid == b.pid).all() and (a.tracks != b.tracks).nnz == 0 and (a.artists != b.artists).nnz == 0


def test_matches_the_naive_reference(art, mpd):
    spec = importlib.util.spec_from_file_location("bench_build", Path(__file__).parents[1] / "bench" / "bench_build.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.differences(bench.naive_build(mpd, CFG), bench.fast_outputs(art.folder)) == []


def _challenge(path: Path) -> Path:
    known = [track_obj(t, p) for p, t in enumerate([0, 1, 2, 3, 4])]
    unknown = dict(known[3], track_uri=uri("track", 999_999))
    playlists = [
        {"name": "chill", "pid": 9001, "num_tracks": 20, "num_samples": 0, "num_holdouts": 20, "tracks": []},
        {"pid": 9002, "num_tracks": 50, "num_samples": 5, "num_holdouts": 45,
         "tracks": known[:3] + [unknown, known[4]]},
        {"name": "Party!", "pid": 9003, "num_tracks": 200, "num_samples": 25, "num_holdouts": 175,
         "tracks": [track_obj(t, p) for t, p in zip(range(25), range(3, 200, 8))]},
    ]
    path.write_text(json.dumps({"date": "x", "version": "v1", "name": "challenge_set", "playlists": playlists}))
    return path


def test_challenge_seeds_mapped_and_unknown_counted(mpd, tmp_path):
    out = build(mpd, tmp_path / "a", CFG, challenge=_challenge(tmp_path / "c.json"))
    ch, v = out.playlists("challenge"), out.vocab
    assert ch.pid.tolist() == [9001, 9002, 9003]
    assert ch.category.tolist() == [1, 4, 8]
    assert ch.n_seeds.tolist() == [0, 5, 25]
    unknown = [sum(track_obj(t, 0)["track_uri"] not in set(v.track_uri) for t in ts)
               for ts in ([], [0, 1, 2, 4], range(25))]
    assert ch.n_unknown.tolist() == [unknown[0], unknown[1] + 1, unknown[2]]
    assert out.manifest["counts"]["challenge_unknown_seeds"] == sum(ch.n_unknown) >= 1
    assert ch.n_holdouts.tolist() == [20, 45, 175]
    assert ch.title.tolist() == ["chill", "", "party"] and ch.has_title.tolist() == [True, False, True]
    row = _row(ch.tracks, 2)
    assert sorted(row.values()) == sorted(p + 1 for t, p in zip(range(25), range(3, 200, 8))
                                          if track_obj(t, 0)["track_uri"] in set(v.track_uri))


def test_fingerprint_mismatch_is_refused(art, mpd, tmp_path):
    with pytest.raises(PipelineError, match="fingerprint"):
        load_artifacts(art.folder, expect_fingerprint="0" * 16)
    other = build(mpd, tmp_path / "other", BuildConfig(val_per_category=3, min_track_count=3, workers=1))
    assert other.vocab.fingerprint != art.vocab.fingerprint
    (tmp_path / "other" / "vocab.npz").write_bytes((art.folder / "vocab.npz").read_bytes())
    with pytest.raises(PipelineError, match="does not match manifest"):
        load_artifacts(tmp_path / "other")


def test_half_finished_build_is_refused_then_rerun_cleanly(mpd, tmp_path, monkeypatch):
    out = tmp_path / "a"
    build(mpd, out, CFG, challenge=_challenge(tmp_path / "c.json"))
    real_save = build_mod.save_playlists

    def crash(path, ps):
        if path.name == "val.npz":
            raise KeyboardInterrupt
        real_save(path, ps)

    monkeypatch.setattr(build_mod, "save_playlists", crash)
    with pytest.raises(KeyboardInterrupt):
        build(mpd, out, BuildConfig(val_per_category=3, min_track_count=2, workers=1))
    with pytest.raises(PipelineError, match="manifest.json"):
        load_artifacts(out)
    monkeypatch.setattr(build_mod, "save_playlists", real_save)
    (out / ".train.npz.leftover.tmp").write_bytes(b"partial")
    again = build(mpd, out, CFG)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.npz", "val.npz", "val_full.npz",
                                                     "vocab.npz"]
    assert len(again.playlists("train")) == again.manifest["counts"]["train_playlists"]


def test_config_section_and_checks(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[preprocess]\nmin_track_count = 2\nval_per_category = 0\n")
    cfg = load_pipeline_config(path).preprocess
    assert (cfg.min_track_count, cfg.val_per_category, cfg.min_artist_count) == (2, 0, 1)
    for text, msg in [("[preprocess]\nmin_track_cnt = 2\n", "min_track_cnt"),
                      ("[preprocess]\nmax_train_len = 0\n", "max_train_len must be >= 1"),
                      ("[preproces]\nmin_track_count = 2\n", "unknown section"),
                      ("[mmcf]\nhiden = 3\n", "unknown key")]:  # any section's typo, whichever stage reads it
        path.write_text(text)
        with pytest.raises(PipelineError, match=msg) as err:
            load_pipeline_config(path).preprocess
        assert str(path) in str(err.value)


def test_no_validation_split_when_zero(mpd, tmp_path):
    out = build(mpd, tmp_path, BuildConfig(val_per_category=0, workers=1))
    assert len(out.playlists("val")) == 0
    assert len(out.playlists("train")) + out.manifest["counts"]["train_skipped_long"] == 300


def test_odd_playlists_are_data_not_errors(tmp_path):
    """An empty playlist and titles of 10,000 characters, control characters or emoji only are
    legal input: built, kept, and turned into bounded title tensors."""
    from tests.mpdfake import make_playlists

    pls = make_playlists(40, seed=3)
    pls[1]["tracks"], pls[1]["num_tracks"] = [], 0
    pls[2]["name"] = "x" * 10_000
    pls[3]["name"] = "\x00\x01\x1b[31m\u202e\ufeffmix"
    pls[4]["name"] = "🔥" * 3000
    mpd = write_slices(tmp_path / "mpd", pls, per_slice=20)
    out = tmp_path / "art"
    build(mpd, out, BuildConfig(val_per_category=0, min_track_count=1, min_artist_count=1, workers=1))
    train = load_artifacts(out).playlists("train")
    assert len(train) == 40 and train.tracks[1].nnz == 0
    assert train.title_chars.shape == (40, 25)
    assert (train.title_chars[2] == train.title_chars[2, 0]).all() and train.title_chars[2, 0] > 0
    assert train.title_chars[3].any() and not train.title_chars[4].any()
    assert normalize_title(train.title[3]).endswith("mix")


def test_validation_seeds_are_unknown_at_the_rate_the_challenge_has(tmp_path):
    """A challenge drawn from playlists outside the training folder (as the real excerpt's was) has
    seeds no training playlist holds; validation seeds that the training playlists never hold are
    unknown too, at a like rate (before, every validation seed was in the catalogue: rate 0)."""
    from preprocess.challenge import make_challenge
    from preprocess.synthetic import synth_config, write_mpd

    files = sorted(write_mpd(tmp_path / "all", 4000, 0, workers=1, config=synth_config("realistic")))
    for name, part in (("train", files[:3]), ("other", files[3:])):
        (tmp_path / name).mkdir()
        for f in part:
            (tmp_path / name / f.name).write_bytes(f.read_bytes())
    make_challenge(tmp_path / "other", tmp_path / "local", per_category=10, seed=0, workers=1)
    art = build(tmp_path / "train", tmp_path / "art", BuildConfig(val_per_category=20, workers=1),
                challenge=tmp_path / "local" / "challenge_set.json")
    c = art.manifest["counts"]
    chal_rate, val_rate = c["challenge_unknown_seeds"] / c["challenge_seeds"], c["val_unknown_seeds"] / c["val_seeds"]
    assert chal_rate > 0.1 and 0.67 * chal_rate < val_rate < 1.5 * chal_rate
    val, trained = art.playlists("val"), np.zeros(art.vocab.n_tracks, dtype=bool)
    trained[art.playlists("train").tracks.indices] = True
    assert trained[val.tracks.indices].all() and (val.n_unknown > 0).any()
    assert (np.diff(val.tracks.indptr) + val.n_unknown <= val.n_seeds).all()
