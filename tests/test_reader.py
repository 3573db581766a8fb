"""MPD reader through the CLIs: every bad input is one line naming the file, non-zero exit, no
traceback; real-world oddities (emoji titles, missing description, repeated tracks, gzip) pass."""
from __future__ import annotations

import dataclasses
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.cli import run_cli
from common.errors import PipelineError
from preprocess import build, challenge
from preprocess.corpus import scan
from preprocess.slices import PackedStrings, read_slice_ids, slice_files
from tests.mpdfake import make_playlists, write_slices

ROOT = Path(__file__).resolve().parents[1]


def _slices(folder: Path, n: int = 6, per_slice: int = 3) -> Path:
    return write_slices(folder, make_playlists(n, seed=2), per_slice=per_slice)


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data["playlists"])
    path.write_text(json.dumps(data))


def _cli_error(capsys, folder: Path, tmp_path: Path, workers: int = 1) -> str:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[preprocess]\nval_per_category = 0\nworkers = {workers}\n")
    with pytest.raises(SystemExit) as exc:
        run_cli(build.main, ["--mpd", str(folder), "--out", str(tmp_path / "art"), "--config", str(cfg)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def _set(key, value, pl=0, track=1):
    def fn(playlists):
        playlists[pl]["tracks"][track][key] = value
    return fn


def _drop(key, pl=0, track=1):
    def fn(playlists):
        del playlists[pl]["tracks"][track][key]
    return fn


def _pl_set(key, value, pl=1):
    def fn(playlists):
        playlists[pl][key] = value
    return fn


@pytest.mark.parametrize("edit, message", [
    (_drop("track_uri"), "pid 0 track #1: missing key 'track_uri'"),
    (_drop("pos"), "pid 0 track #1: missing key 'pos'"),
    (_set("pos", "1"), "pid 0 track #1: 'pos' must be an integer"),
    (_set("track_name", 7), "pid 0 track #1: 'track_name' must be a string"),
    (_set("album_name", None), "pid 0 track #1: 'album_name' must be a string"),
    (_set("duration_ms", "long"), "pid 0 track #1: 'duration_ms' must be a number"),
    (_set("track_uri", "spotify:track:abc"), "pid 0 track #1: malformed track_uri 'spotify:track:abc'"),
    (_set("artist_uri", "spotify:artist:" + "a" * 21 + "!"), "pid 0 track #1: malformed artist_uri"),
    (_set("album_uri", "spotify:track:" + "a" * 22), "pid 0 track #1: malformed album_uri"),
    (_set("track_uri", "spotify:track:" + "é" * 22), "pid 0 track #1: malformed track_uri"),
    (_set("track_uri", "spotify:track:" + "a" * 23), "pid 0 track #1: malformed track_uri"),
    (_pl_set("pid", "1"), "playlist #1: missing or non-integer 'pid'"),
    (_pl_set("name", 5), "pid 1: 'name' must be a string"),
    (_pl_set("tracks", {}), "pid 1: missing or non-list 'tracks'"),
    (_pl_set("num_tracks", -1), "pid 1: missing or invalid 'num_tracks'"),
    (lambda pls: pls[1]["tracks"].__setitem__(0, "x"), "pid 1 track #0: expected an object, got str"),
    (lambda pls: pls.__setitem__(2, [1]), "playlist #2: expected an object, got list"),
])
def test_bad_entry_is_one_line_naming_file_and_place(tmp_path, capsys, edit, message):
    folder = _slices(tmp_path / "mpd")
    bad = folder / "mpd.slice.0-2.json"
    _edit(bad, edit)
    err = _cli_error(capsys, folder, tmp_path)
    assert f"{bad}: " in err and message in err


def test_truncated_and_non_json_files(tmp_path, capsys):
    folder = _slices(tmp_path / "mpd")
    path = folder / "mpd.slice.3-5.json"
    path.write_bytes(path.read_bytes()[:500])
    assert f"{path}: not valid JSON" in _cli_error(capsys, folder, tmp_path)
    path.write_text("hello")
    assert f"{path}: not valid JSON" in _cli_error(capsys, folder, tmp_path)
    path.write_bytes(b"\xff\xfe{}")
    assert f"{path}: not valid JSON" in _cli_error(capsys, folder, tmp_path)
    path.write_text("[1, 2]")
    assert f"{path}: expected an object with a 'playlists' list" in _cli_error(capsys, folder, tmp_path)


def test_errors_from_worker_processes(tmp_path, capsys):
    folder = _slices(tmp_path / "mpd")
    _edit(folder / "mpd.slice.3-5.json", _set("track_uri", "nope", pl=2, track=0))
    err = _cli_error(capsys, folder, tmp_path, workers=2)
    assert "mpd.slice.3-5.json: pid 5 track #0: malformed track_uri 'nope'" in err


def test_gzip_accepted_and_truncated_gzip_refused(tmp_path, capsys):
    folder = _slices(tmp_path / "mpd")
    plain = folder / "mpd.slice.3-5.json"
    gz = folder / "mpd.slice.3-5.json.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    want = read_slice_ids(plain)
    plain.unlink()
    corpus = scan(folder, workers=1)
    assert corpus.pid.tolist() == list(range(6))
    _same_columns(read_slice_ids(gz), want)  # the gzipped slice reads as the plain one did
    gz.write_bytes(gz.read_bytes()[:200])
    assert f"{gz}: unreadable or truncated" in _cli_error(capsys, folder, tmp_path)


def _same_columns(got, want) -> None:
    """Every column of two reads of a slice is equal; only the path differs."""
    assert got.path != want.path and len(want.pid) > 0
    for f in dataclasses.fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if f.name == "path":
            continue
        if isinstance(b, PackedStrings):
            assert a.text == b.text and np.array_equal(a.ends, b.ends), f.name
        elif isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b), f.name
        else:
            assert a == b, f.name


def test_repeated_pid_names_both_files(tmp_path, capsys):
    folder = _slices(tmp_path / "mpd")
    _edit(folder / "mpd.slice.3-5.json", _pl_set("pid", 1, pl=2))
    err = _cli_error(capsys, folder, tmp_path)
    assert "pid 1 appears in both" in err and "mpd.slice.0-2.json" in err and "mpd.slice.3-5.json" in err
    _edit(folder / "mpd.slice.3-5.json", _pl_set("pid", 3, pl=2))
    assert "pid 3 appears twice in" in _cli_error(capsys, folder, tmp_path)


def test_empty_or_missing_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.json").write_text("{}")
    assert "no mpd.slice.*.json files found" in _cli_error(capsys, tmp_path / "empty", tmp_path)
    assert "not a directory of MPD slices" in _cli_error(capsys, tmp_path / "nowhere", tmp_path)


def test_real_world_oddities_are_accepted(tmp_path):
    playlists = make_playlists(6, seed=3)
    playlists[0]["name"] = "Été 🔥🔥 Vibes!!"
    playlists[1]["name"] = "🎄"
    playlists[2]["description"] = "a description"
    playlists[3]["tracks"].append(dict(playlists[3]["tracks"][0], pos=len(playlists[3]["tracks"])))
    playlists[4]["tracks"][0]["duration_ms"] = 1234.0
    del playlists[5]["name"]
    folder = write_slices(tmp_path / "mpd", playlists, per_slice=3)
    ids = read_slice_ids(folder / "mpd.slice.0-2.json")
    assert ids.name[:2] == ["Été 🔥🔥 Vibes!!", "🎄"] and ids.has_name.all()
    art = build.build(folder, tmp_path / "art", build.BuildConfig(val_per_category=0, min_track_count=1,
                                                                  min_artist_count=1, workers=1))
    train = art.playlists("train")
    assert train.title[:2].tolist() == ["été 🔥🔥 vibes", "🎄"]
    assert train.has_title.tolist() == [True] * 5 + [False]
    assert train.tracks[3].nnz == len(playlists[3]["tracks"]) - 1 == train.num_tracks[3] - 1


def test_corpus_ids_give_back_every_entry_of_the_files(tmp_path):
    folder = _slices(tmp_path / "mpd", n=40, per_slice=20)
    corpus = scan(folder, workers=1)
    entries = [t for p in slice_files(folder) for pl in json.loads(p.read_text())["playlists"] for t in pl["tracks"]]
    uris = np.array([t["track_uri"] for t in entries])
    assert (np.char.add("spotify:track:", corpus.track_id[corpus.track].astype(str)) == uris).all()
    artists = np.array([t["artist_uri"] for t in entries])
    got = np.char.add("spotify:artist:", corpus.artist_id[corpus.track_artist[corpus.track]].astype(str))
    assert (got == artists).all()


@pytest.mark.parametrize("module", ["preprocess.build", "preprocess.challenge"])
def test_real_process_exit_code_and_single_line(tmp_path, module):
    folder = _slices(tmp_path / "mpd")
    _edit(folder / "mpd.slice.0-2.json", _drop("artist_uri", pl=1, track=0))
    res = subprocess.run([sys.executable, "-m", module, "--mpd", str(folder), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2
    assert lines == [f"error: {folder / 'mpd.slice.0-2.json'}: pid 1 track #0: missing key 'artist_uri'"]
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_help_of_both_clis():
    for module in (build, challenge):
        with pytest.raises(SystemExit) as exc:
            module.main(["--help"])
        assert exc.value.code == 0


def test_hash_collisions_are_reported_not_merged(tmp_path, monkeypatch):
    from preprocess import corpus, slices
    folder = _slices(tmp_path / "mpd")
    monkeypatch.setattr(slices, "_HASH_MUL", np.zeros(3, dtype=np.uint64))  # every id hashes to 0
    with pytest.raises(PipelineError, match="hash alike"):
        read_slice_ids(folder / "mpd.slice.0-2.json")
    table = corpus._IdTable()
    first = table.add(folder, np.array([7], dtype=np.uint64), np.array([b"a" * 22], dtype="S22"))
    assert first[0].tolist() == [0] and first[1].tolist() == [True]
    with pytest.raises(PipelineError, match=f"{'b' * 22} and {'a' * 22} hash alike"):
        table.add(folder, np.array([7], dtype=np.uint64), np.array([b"b" * 22], dtype="S22"))
