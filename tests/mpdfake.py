"""Tiny hand-rolled MPD slices for tests that must not depend on the synthetic generator."""
from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np

_B62 = np.array(list(string.digits + string.ascii_letters))


def uri(kind: str, i: int) -> str:
    digits = np.base_repr(i, 36).lower().rjust(22, "0")
    return f"spotify:{kind}:{digits}"


def make_playlists(n: int, n_tracks: int = 300, seed: int = 0, start_pid: int = 0) -> list[dict]:
    """n playlists over n_tracks tracks (artist = track // 4, album = track // 2), lengths 5..60."""
    rng = np.random.default_rng(seed)
    out = []
    for j in range(n):
        length = int(rng.integers(5, 61))
        pop = rng.zipf(1.3, size=length * 3) % n_tracks
        tracks = list(dict.fromkeys(int(t) for t in pop))[:length]
        while len({t // 4 for t in tracks}) < 3 or len(tracks) < 5:
            tracks.append(int(rng.integers(n_tracks)))
            tracks = list(dict.fromkeys(tracks))
        out.append({
            "name": ["road trip", "Chill", "RAP 🔥", "workout!!"][j % 4], "collaborative": "false",
            "pid": start_pid + j, "modified_at": 1493424000, "num_tracks": len(tracks),
            "num_albums": len({t // 2 for t in tracks}), "num_followers": 1, "num_edits": 1,
            "duration_ms": 200000 * len(tracks), "num_artists": len({t // 4 for t in tracks}),
            "tracks": [track_obj(t, p) for p, t in enumerate(tracks)],
        })
    return out


def track_obj(t: int, pos: int) -> dict:
    return {"pos": pos, "artist_name": f"artist {t // 4}", "track_uri": uri("track", t),
            "artist_uri": uri("artist", t // 4), "track_name": f"track {t}",
            "album_uri": uri("album", t // 2), "duration_ms": 200000, "album_name": f"album {t // 2}"}


def write_slices(folder: Path, playlists: list[dict], per_slice: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(playlists), per_slice):
        chunk = playlists[i:i + per_slice]
        name = f"mpd.slice.{i}-{i + per_slice - 1}.json"
        info = {"generated_on": "test", "slice": f"{i}-{i + per_slice - 1}", "version": "v1"}
        (folder / name).write_text(json.dumps({"info": info, "playlists": chunk}))
    return folder
