"""Property-based tests of the MPD reader: any valid slice round-trips, as integer columns (the slice
reader) and as the string columns a challenge set's seeds are read into, and any corruption (cut
bytes, a field replaced by an arbitrary JSON value) ends in one PipelineError naming the file, never
another exception and never a silently wrong slice."""
from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import PipelineError
from preprocess.challenge_file import read_challenge
from preprocess.slices import read_slice_ids

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
B62 = string.digits + string.ascii_letters
ids = st.text(alphabet=B62, min_size=22, max_size=22)
names = st.text(max_size=40)  # any unicode: emoji, control characters, surrogates excluded by JSON
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                         max_size=3), max_leaves=6)


@st.composite
def track(draw, pos: int) -> dict:
    return {"pos": pos, "track_uri": "spotify:track:" + draw(ids), "artist_uri": "spotify:artist:" + draw(ids),
            "album_uri": "spotify:album:" + draw(ids), "track_name": draw(names), "artist_name": draw(names),
            "album_name": draw(names), "duration_ms": draw(st.integers(0, 10**7))}


@st.composite
def playlist(draw, pid: int) -> dict:
    n = draw(st.integers(1, 6))
    tracks = [draw(track(p)) for p in range(n)]
    if n > 1 and draw(st.booleans()):  # a track repeated inside the playlist is legal in the MPD
        tracks[-1] = dict(tracks[0], pos=n - 1)
    pl = {"pid": pid, "num_tracks": n, "tracks": tracks, "collaborative": "false"}
    if draw(st.booleans()):
        pl["name"] = draw(names)
    if draw(st.booleans()):
        pl["description"] = draw(names)
    return pl


@st.composite
def slices(draw) -> list[dict]:
    n = draw(st.integers(1, 4))
    pids = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    return [draw(playlist(pid)) for pid in pids]


def _write(folder: Path, playlists: list[dict]) -> Path:
    path = folder / "mpd.slice.0-999.json"
    path.write_text(json.dumps({"info": {}, "playlists": playlists}, ensure_ascii=bool(len(playlists) % 2)))
    return path


def _one_line_naming(exc: PipelineError, path: Path) -> None:
    msg = str(exc)
    assert str(path) in msg and "\n" not in msg.strip()


def _seeds(path: Path):
    return read_challenge(path).seeds


READERS = (read_slice_ids, _seeds)
# what only a challenge set must satisfy: a slice may declare fewer tracks than it lists, or repeat a pid
CHALLENGE_ONLY = ("more seed tracks than num_tracks", "appears more than once")


def _assert_read_as(s, fast, playlists: list[dict]) -> None:
    """Every column both forms give is what the playlist dicts hold: the string columns per entry,
    the integer columns per entry or, for a track's or artist's own fields, from its first entry."""
    entries = [t for pl in playlists for t in pl["tracks"]]
    for r in (s, fast):
        assert r.pid.tolist() == [pl["pid"] for pl in playlists]
        assert r.name == [pl.get("name") or "" for pl in playlists]
        assert r.has_name.tolist() == [bool(pl.get("name")) for pl in playlists]
        assert r.num_tracks.tolist() == [pl["num_tracks"] for pl in playlists]
        assert r.indptr.tolist() == np.cumsum([0] + [len(pl["tracks"]) for pl in playlists]).tolist()
    for key in ("track_uri", "artist_uri"):
        assert getattr(s, key).tolist() == [t[key] for t in entries], key
    assert s.pos.tolist() == [t["pos"] for t in entries]

    def ident(t, key):
        return t[key].rsplit(":", 1)[1]
    first_of_track = {}
    for t in entries:
        first_of_track.setdefault(ident(t, "track_uri"), t)
    first_of_artist = {}
    for t in entries:
        first_of_artist.setdefault(ident(t, "artist_uri"), t)
    track_ids = fast.track_id.astype(str).tolist()
    assert sorted(track_ids) == sorted(first_of_track) and np.all(np.diff(fast.track_key.astype(np.float64)) >= 0)
    assert len(set(fast.track_key.tolist())) == len(track_ids)
    assert [track_ids[i] for i in fast.track.tolist()] == [ident(t, "track_uri") for t in entries]
    firsts = [first_of_track[i] for i in track_ids]
    artist_ids, album_ids = fast.artist_id.astype(str).tolist(), fast.album_id.astype(str).tolist()
    assert [artist_ids[a] for a in fast.track_artist.tolist()] == [ident(t, "artist_uri") for t in firsts]
    assert [album_ids[b] for b in fast.track_album.tolist()] == [ident(t, "album_uri") for t in firsts]
    assert fast.track_name.take(np.ones(len(track_ids), bool)) == [t["track_name"] for t in firsts]
    assert fast.track_duration.tolist() == [int(t.get("duration_ms", 0)) for t in firsts]
    assert sorted(artist_ids) == sorted(first_of_artist) and sorted(album_ids) == sorted(
        {ident(t, "album_uri") for t in entries})
    assert fast.artist_name.take(np.ones(len(artist_ids), bool)) == [first_of_artist[a]["artist_name"] for a in artist_ids]
    seen_track, seen_artist, first_track, first_artist = set(), set(), [], []
    for p, pl in enumerate(playlists):
        for t in pl["tracks"]:
            first_track.append((p, ident(t, "track_uri")) not in seen_track)
            first_artist.append((p, ident(t, "artist_uri")) not in seen_artist)
            seen_track.add((p, ident(t, "track_uri")))
            seen_artist.add((p, ident(t, "artist_uri")))
    assert fast.first_track.tolist() == first_track and fast.first_artist.tolist() == first_artist


@SETTINGS
@given(slices())
def test_valid_slices_round_trip_in_both_forms(tmp_path, playlists):
    path = _write(tmp_path, playlists)
    _assert_read_as(_seeds(path), read_slice_ids(path), playlists)


@SETTINGS
@given(slices(), st.data())
def test_cut_files_are_one_line_errors(tmp_path, playlists, data):
    path = _write(tmp_path, playlists)
    raw = path.read_bytes()
    cut = data.draw(st.integers(0, len(raw) - 2))  # anything short of the closing brace
    path.write_bytes(raw[:cut])
    for reader in READERS:
        with pytest.raises(PipelineError) as exc:
            reader(path)
        _one_line_naming(exc.value, path)


@SETTINGS
@given(slices(), st.data(), json_values)
def test_a_field_replaced_by_any_json_value_is_caught_or_harmless(tmp_path, playlists, data, value):
    pl = data.draw(st.sampled_from(playlists))
    target = data.draw(st.sampled_from([pl, *pl["tracks"]]))
    key = data.draw(st.sampled_from(sorted(target)))
    old = target[key]
    target[key] = value
    path = _write(tmp_path, playlists)
    results, errors = [], []
    for reader in READERS:
        try:
            results.append(reader(path))
        except PipelineError as exc:
            _one_line_naming(exc, path)
            results.append(None)
            errors.append(str(exc))
    if results[0] is not None and results[1] is None:
        assert any(m in errors[0] for m in CHALLENGE_ONLY), f"forms disagree on {key}={value!r}: {errors[0]}"
        return
    assert (results[0] is None) == (results[1] is None), f"forms disagree on {key}={value!r}"
    if results[0] is not None:  # accepted: only an equivalent value or an unread key may pass
        if key in ("track_uri", "artist_uri", "album_uri"):
            assert value == old
        _assert_read_as(results[1], results[0], playlists)  # both read every field as the edited playlists hold it


@pytest.mark.parametrize("level, key, value", [
    ("track", "duration_ms", 1e30), ("playlist", "pid", 2**70), ("playlist", "num_tracks", 2**40),
    ("track", "pos", True), ("track", "pos", 1.0), ("playlist", "num_tracks", True), ("playlist", "pid", -2**64),
])
def test_numbers_out_of_range_or_of_the_wrong_kind(tmp_path, level, key, value):
    playlists = [{"pid": 3, "num_tracks": 1, "name": "x", "tracks": [
        {"pos": 0, "track_uri": "spotify:track:" + "a" * 22, "artist_uri": "spotify:artist:" + "b" * 22,
         "album_uri": "spotify:album:" + "c" * 22, "track_name": "t", "artist_name": "a", "album_name": "b",
         "duration_ms": 1}]}]
    (playlists[0] if level == "playlist" else playlists[0]["tracks"][0])[key] = value
    path = _write(tmp_path, playlists)
    for reader in READERS:
        with pytest.raises(PipelineError) as exc:
            reader(path)
        _one_line_naming(exc.value, path)


@SETTINGS
@given(slices(), st.sampled_from(["pid", "num_tracks", "tracks"]))
def test_challenge_reader_refuses_missing_keys(tmp_path, playlists, key):
    path = tmp_path / "challenge_set.json"
    ok = {"date": "x", "version": "v1", "name": "challenge_set", "playlists": playlists}
    path.write_text(json.dumps(ok))
    assert read_challenge(path).seeds.pid.tolist() == [pl["pid"] for pl in playlists]
    del playlists[-1][key]
    path.write_text(json.dumps(ok))
    with pytest.raises(PipelineError) as exc:
        read_challenge(path)
    _one_line_naming(exc.value, path)
