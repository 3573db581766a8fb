"""The catalogue that every slice of a dataset shares, sized for WORLD_PLAYLISTS so that a small
dataset is the first slices of a large one; built once per (seed, size) and cached, so the writer's
forked workers all draw from the parent's copy."""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

import numpy as np

from preprocess.synthetic.arrays import cum, mix64, zipf_total
from preprocess.synthetic.config import SynthConfig
from preprocess.synthetic.tastes import tastes

log = logging.getLogger("synthetic")

WORLD_PLAYLISTS = 1_000_000  # the world is sized for this many playlists and grows beyond


@dataclass
class World:
    """The catalogue. Artists are grouped by genre then scene. An artist's tracks are the ids
    art_track[a] + k, k = 0.. in falling popularity, cut into albums of art_album_size[a]
    tracks; keeping tracks implicit lets the catalogue be as deep as the real one for free."""

    salt: int
    genre_art: np.ndarray  # int64 [G+1] artist range per genre
    genre_scene: np.ndarray  # int64 [G+1] scene range per genre
    scene_art: np.ndarray  # int64 [S+1] artist range per scene
    scene_cw: np.ndarray  # float64 [S] global cumulative scene choice weight
    art_cw: np.ndarray  # float64 [A] global cumulative artist weight
    art_track: np.ndarray  # int64 [A+1] track id range per artist
    art_album: np.ndarray  # int64 [A+1] album id range per artist
    art_album_size: np.ndarray  # int64 [A]
    art_key: np.ndarray  # int64 [A] identity behind the uri (the Various Artists share one)
    art_q: np.ndarray  # float64 [A] within-artist track popularity ~ (k + art_q) ** -track_zipf
    track_zipf: float
    hit_track: np.ndarray  # int64 [H] the most played tracks anywhere
    hit_artist: np.ndarray  # int64 [H]
    hit_cw: np.ndarray  # float64 [H] cumulative, normalised

    @property
    def n_tracks(self) -> int:
        return int(self.art_track[-1])

    @property
    def various_artists(self) -> int:
        return len(self.art_key)

    def track_artist(self, track: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.art_track, track, side="right") - 1

    def track_album(self, track: np.ndarray, artist: np.ndarray | None = None) -> np.ndarray:
        artist = self.track_artist(track) if artist is None else artist
        return self.art_album[artist] + (track - self.art_track[artist]) // self.art_album_size[artist]

    def track_duration(self, track: np.ndarray) -> np.ndarray:
        """ms, log-normal around 3.6 minutes, fixed per track by its id."""
        h = mix64(np.asarray(track, dtype=np.uint64), self.salt ^ 0xD0)
        u = [((h >> np.uint64(16 * i)) & np.uint64(0xFFFF)).astype(np.float64) / 65536.0 for i in range(4)]
        z = (sum(u) - 2.0) * np.sqrt(3.0)  # Irwin-Hall: close to a standard normal
        return np.clip(np.exp(np.log(215_000) + 0.28 * z), 30_000, 1_200_000).astype(np.int64)


def build_world(seed: int, n_playlists: int, config: SynthConfig = SynthConfig()) -> World:
    """The catalogue for a dataset; identical for every size up to WORLD_PLAYLISTS playlists."""
    return _build_world(seed, max(n_playlists, WORLD_PLAYLISTS), config)


@functools.lru_cache(maxsize=2)
def _build_world(seed: int, world_playlists: int, cfg: SynthConfig) -> World:
    t0 = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    ts = tastes(cfg)
    grow = world_playlists / WORLD_PLAYLISTS
    share = ts.genre_weight ** 0.7
    n_art = np.maximum(300, np.round(cfg.n_artists * grow ** cfg.world_growth * share / share.sum())).astype(np.int64)
    genre_art = np.concatenate([[0], np.cumsum(n_art)])
    n_a = int(genre_art[-1])
    art_genre = np.repeat(np.arange(len(n_art)), n_art)
    local = np.arange(n_a) - genre_art[art_genre]  # popularity rank inside the genre
    # broken power law: a flat head of stars, then a steep tail of rarely played artists
    brk = np.maximum(10.0, cfg.artist_break * n_art / n_art.max())[art_genre]
    art_w = np.where(local < brk, (local + 1.0) ** -cfg.artist_head,
                     brk ** (cfg.artist_tail - cfg.artist_head) * (local + 1.0) ** -cfg.artist_tail)
    art_w = art_w / np.add.reduceat(art_w, genre_art[:-1])[art_genre]  # share inside the genre
    n_scene = np.maximum(1, n_art // cfg.artists_per_scene)
    genre_scene = np.concatenate([[0], np.cumsum(n_scene)])
    # the first artists (scene_stars rounds of them) are dealt over the scenes, so no scene is empty
    # and each holds that many of the genre's head artists; the other ranks are spread at random
    random_scene = (rng.random(n_a) * n_scene[art_genre]).astype(np.int64)
    first_fill = rng.permutation(n_a) % n_scene[art_genre]
    scene = genre_scene[art_genre] + np.where(local < cfg.scene_stars * n_scene[art_genre], first_fill, random_scene)
    order = np.argsort(scene, kind="stable")  # group by scene; genres stay contiguous
    art_w, scene, local = art_w[order], scene[order], local[order]
    n_s = int(genre_scene[-1])
    scene_art = np.concatenate([[0], np.cumsum(np.bincount(scene, minlength=n_s))])
    scene_w = np.bincount(scene, weights=art_w, minlength=n_s)
    # catalogue depth grows with the plays an artist gets, so deep cuts keep appearing
    plays = art_w * ts.genre_weight[art_genre] * 66e6 * grow
    n_tr = np.minimum(cfg.tracks_cap, 1 + np.ceil(cfg.tracks_scale * plays ** cfg.tracks_power
                                                  * rng.lognormal(0, 0.5, n_a))).astype(np.int64)
    art_track = np.concatenate([[0], np.cumsum(n_tr)])
    album_size = np.where(n_tr <= 3, n_tr, 1 + rng.poisson(cfg.album_size - 1, n_a))
    album_size = np.clip(album_size, 1, n_tr)
    n_alb = -(-n_tr // album_size)
    art_album = np.concatenate([[0], np.cumsum(n_alb)])
    art_key = np.arange(n_a, dtype=np.int64)
    # the compilation genres each have a "Various Artists" near their top, sharing the MPD's uri
    for gname in ("christmas", "disney", "broadway", "kids", "classical", "oldies"):
        g = ts.names.index(gname)
        lo = genre_art[g]
        art_key[lo + int(np.flatnonzero(local[lo:genre_art[g + 1]] == 7)[0])] = n_a
    art_q = cfg.track_q0 + cfg.track_q1 * (plays / 1e4) ** cfg.track_q_power
    # global hits: the top tracks of the most played artists
    top_art = np.argpartition(-plays, 20_000)[:20_000]
    k = np.arange(20)
    q = art_q[top_art, None]
    z = (k[None, :] + q) ** -cfg.track_zipf
    zt = zipf_total(n_tr[top_art, None], q, cfg.track_zipf)
    cand_w = (plays[top_art, None] * z / zt) * (k[None, :] < n_tr[top_art, None])
    best = np.argpartition(-cand_w.ravel(), cfg.n_hits)[:cfg.n_hits]
    hit_ids = art_track[top_art[best // 20]] + best % 20
    order = np.argsort(hit_ids)
    hit_track, hit_w, hit_artist = hit_ids[order], cand_w.ravel()[best][order], top_art[best // 20][order]
    salt = int(rng.integers(1, 2**62))
    log.info("world: %d genres, %d scenes, %d artists, %d albums, %d tracks (%.1fs)",
             len(n_art), n_s, n_a, int(art_album[-1]), int(art_track[-1]), time.perf_counter() - t0)
    return World(salt, genre_art, genre_scene, scene_art, np.cumsum(np.maximum(scene_w, 1e-300) ** cfg.scene_power),
                 np.cumsum(art_w), art_track, art_album,
                 album_size.astype(np.int64), art_key, art_q, cfg.track_zipf, hit_track, hit_artist,
                 cum(hit_w ** cfg.hit_power))
