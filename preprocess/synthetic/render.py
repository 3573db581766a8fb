"""A slice's text in the MPD schema (SPEC section 1), spliced by hand in the MPD's key order:
names and uris are pure functions of ids, so the text, and with it every digest the tests pin, is
byte-identical per seed."""
from __future__ import annotations

import functools
import json

import numpy as np

from common.errors import PipelineError
from preprocess.schema import VARIOUS_ARTISTS
from preprocess.synthetic.arrays import distinct_per_row, mix64
from preprocess.synthetic.playlists import SliceData
from preprocess.synthetic.tables import FIRST_NAMES, SONG_WORDS, SYLLABLES
from preprocess.synthetic.world import World

VARIOUS_ARTISTS_ID = VARIOUS_ARTISTS.rsplit(":", 1)[1]
_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_ID_BITS = 40  # ids of every kind stay below 2 ** 40


def uris(ids: np.ndarray, salt: int) -> list[str]:
    """22-character base62 ids: 15 hashed digits, then 7 encoding a bijection of the id, so
    distinct ids always get distinct uris."""
    ids = np.asarray(ids, dtype=np.uint64)
    if len(ids) and int(ids.max()) >> _ID_BITS:
        raise PipelineError(f"synthetic catalogue too large for its uri scheme ({int(ids.max())} ids)")
    with np.errstate(over="ignore"):
        lo = (ids * np.uint64(0xD1B54A32D192ED03) + np.uint64(salt)) & np.uint64((1 << _ID_BITS) - 1)
    h1, h2 = mix64(ids, salt), mix64(ids, salt ^ 0x5A5A)
    six = np.uint64(63)
    cols = [(h1 >> np.uint64(6 * i)) & six for i in range(10)] + [(h2 >> np.uint64(6 * i)) & six for i in range(5)]
    digits = [c.astype(np.int64) % 62 for c in cols]
    x = lo.astype(np.float64)  # < 2 ** 53: exact in floating point, and much faster than uint64 division
    for _ in range(7):
        q = np.floor(x / 62.0)
        digits.append((x - 62.0 * q).astype(np.int64))
        x = q
    text = _B62[np.stack(digits, axis=1)].tobytes().decode("ascii")
    return [text[i:i + 22] for i in range(0, len(text), 22)]


_TABLE_BITS = 16


@functools.lru_cache(maxsize=1)
def _name_tables() -> tuple[list[str], list[str], list[str]]:
    """Fixed tables of artist, track and album names; an item's hash picks its entry.

    Names never contain quotes or backslashes, so the JSON writer can splice them in as they are.
    """
    rng = np.random.default_rng(20180101)
    size = 1 << _TABLE_BITS
    syl, words, first = SYLLABLES, SONG_WORDS, FIRST_NAMES

    def pseudo(n: int) -> str:
        return "".join(syl[i] for i in rng.integers(len(syl), size=n)).capitalize()

    def word() -> str:
        return words[rng.integers(len(words))].capitalize()

    def phrase(n: int) -> str:
        return " ".join(word() for _ in range(n))

    artist_forms = (lambda: pseudo(2), lambda: pseudo(3), lambda: f"{pseudo(2)} {pseudo(3)}",
                    lambda: f"{first[rng.integers(len(first))].capitalize()} {pseudo(3)}",
                    lambda: f"The {word()} {pseudo(2)}s", lambda: f"Lil {pseudo(2)}", lambda: f"DJ {pseudo(2)}",
                    lambda: f"{word()} {word()}")
    suffixes = ("", "", "", "", "", "", "", "", " - Remix", " - Live", " - Acoustic", " - Radio Edit",
                " - Remastered", " - Original Mix")
    album_forms = (lambda: phrase(1), lambda: phrase(1), lambda: phrase(2), lambda: phrase(3), lambda: "Greatest Hits",
                   lambda: f"{phrase(1)} (Deluxe Edition)", lambda: f"Vol. {rng.integers(1, 10)}",
                   lambda: f"The {phrase(1)} EP", lambda: f"Live at the {phrase(1)}", lambda: f"Songs for {phrase(1)}")
    artists = [artist_forms[rng.integers(len(artist_forms))]() for _ in range(size)]
    tracks = []
    for _ in range(size):
        name = phrase(int(rng.integers(1, 5)))
        r = rng.random()
        tracks.append(name + (f" (feat. {pseudo(2)})" if r < 0.08 else suffixes[rng.integers(len(suffixes))]))
    albums = [album_forms[rng.integers(len(album_forms))]() for _ in range(size)]
    return artists, tracks, albums


def _names(ids: np.ndarray, salt: int, table: list[str]) -> list[str]:
    pick = (mix64(np.asarray(ids, dtype=np.uint64), salt) >> np.uint64(64 - _TABLE_BITS)).astype(np.int64)
    return [table[i] for i in pick.tolist()]


_POS = [f'{{"pos": {p}' for p in range(300)]


def render_slice(world: World, data: SliceData, first_pid: int) -> str:
    """The slice file's text in the MPD schema (SPEC section 1), keys in the MPD's order."""
    uniq, inv = np.unique(data.track, return_inverse=True)
    art = world.track_artist(uniq)
    keys = world.art_key[art]
    alb = world.track_album(uniq, art)
    n_va = world.various_artists
    dumps = json.dumps
    artist_t, track_t, album_t = _name_tables()
    is_va = keys == n_va
    dur = world.track_duration(uniq)
    a_uri = uris(keys, world.salt ^ 2)
    a_name = _names(keys, world.salt ^ 2, artist_t)
    for i in np.flatnonzero(is_va).tolist():
        a_uri[i], a_name[i] = VARIOUS_ARTISTS_ID, "Various Artists"
    frags = [f', "artist_name": "{an}", "track_uri": "spotify:track:{tu}", "artist_uri": "spotify:artist:{au}", '
             f'"track_name": "{tn}", "album_uri": "spotify:album:{bu}", "duration_ms": {d}, "album_name": "{bn}"}}'
             for an, tu, au, tn, bu, d, bn in zip(
                 a_name, uris(uniq, world.salt ^ 1), a_uri, _names(uniq, world.salt ^ 1, track_t),
                 uris(alb, world.salt ^ 3), dur.tolist(), _names(alb, world.salt ^ 3, album_t))]
    entry = [frags[i] for i in inv.tolist()]
    ptr = data.indptr.tolist()
    n_albums = distinct_per_row(np.repeat(np.arange(len(ptr) - 1), np.diff(ptr)), alb[inv], len(ptr) - 1)
    n_artists = distinct_per_row(np.repeat(np.arange(len(ptr) - 1), np.diff(ptr)), keys[inv], len(ptr) - 1)
    duration = np.add.reduceat(dur[inv], data.indptr[:-1])
    rows = []
    for i in range(len(ptr) - 1):
        lo, hi = ptr[i], ptr[i + 1]
        tracks = ", ".join([p + f for p, f in zip(_POS, entry[lo:hi])])
        desc = f', "description": {dumps(data.descriptions[i])}' if data.descriptions[i] is not None else ""
        rows.append(
            f'{{"name": {dumps(data.names[i])}, "collaborative": "{"true" if data.collaborative[i] else "false"}", '
            f'"pid": {first_pid + i}, "modified_at": {data.modified_at[i]}, "num_tracks": {hi - lo}, '
            f'"num_albums": {n_albums[i]}, "num_followers": {data.num_followers[i]}, "num_edits": {data.num_edits[i]}, '
            f'"duration_ms": {duration[i]}, "num_artists": {n_artists[i]}{desc}, "tracks": [{tracks}]}}')
    last = first_pid + len(rows) - 1
    info = f'{{"generated_on": "synthetic", "slice": "{first_pid}-{last}", "version": "v1"}}'
    return '{"info": ' + info + ', "playlists": [\n' + ",\n".join(rows) + "\n]}\n"
