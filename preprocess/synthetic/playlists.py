"""One slice's playlists, drawn for the whole slice at once as columns, from the slice's own
stream: slice k depends only on (seed, k) and the world. Candidates are drawn in surplus and the
MPD's selection rules decide which of them stay."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocess.synthetic.arrays import cum, distinct_per_row, pick, rows_pick, zipf_rank
from preprocess.synthetic.config import SynthConfig
from preprocess.synthetic.tastes import tastes
from preprocess.synthetic.titles import sample_titles
from preprocess.synthetic.world import World

_DAY = 86400
_LAST_DAY = 1509494400 // _DAY  # 2017-11-01, the MPD's end
_FIRST_DAY = 1262304000 // _DAY  # 2010-01-01, the MPD's start


@dataclass
class SliceData:
    """One slice's playlists as columns; `indptr` delimits each playlist's entries."""

    indptr: np.ndarray  # int64 [P+1]
    track: np.ndarray  # int64 [N]
    taste: np.ndarray  # int64 [P] main taste
    taste2: np.ndarray  # int64 [P] secondary taste
    names: list[str]
    descriptions: list[str | None]
    collaborative: np.ndarray  # bool [P]
    modified_at: np.ndarray  # int64 [P]
    num_followers: np.ndarray  # int64 [P]
    num_edits: np.ndarray  # int64 [P]


def sample_slice(world: World, rng: np.random.Generator, n: int, config: SynthConfig = SynthConfig()) -> SliceData:
    """n playlists passing the MPD selection rules (candidates failing them are dropped)."""
    parts = []
    need = n
    while need > 0:
        cand = _candidates(world, rng, need + max(8, need // 20), config)
        ok = np.flatnonzero(cand["valid"])[:need]
        parts.append(_take(cand, ok))
        need -= len(ok)
    pl = {k: np.concatenate([p[k] for p in parts]) for k in ("taste", "taste2")}
    lengths = np.concatenate([p["lengths"] for p in parts])
    track = np.concatenate([p["track"] for p in parts])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    names, descriptions = sample_titles(rng, pl["taste"], pl["taste2"], config)
    num_edits = np.maximum(1, np.round(rng.lognormal(np.log(2 + lengths / 5), 0.6))).astype(np.int64)
    followers = 1 + np.minimum(100_000, np.floor(0.4 * (rng.random(n) ** (-1 / 1.1) - 1))).astype(np.int64)
    days = _LAST_DAY - np.minimum(rng.exponential(330, n), _LAST_DAY - _FIRST_DAY).astype(np.int64)
    return SliceData(indptr, track, pl["taste"], pl["taste2"], names, descriptions,
                     rng.random(n) < config.p_collaborative, days * _DAY, followers, num_edits)


def _take(cand: dict, ok: np.ndarray) -> dict:
    lengths = cand["lengths"][ok]
    starts = cand["indptr"][ok]
    idx = np.repeat(starts - np.cumsum(np.concatenate([[0], lengths[:-1]])), lengths) + np.arange(lengths.sum())
    return {"taste": cand["taste"][ok], "taste2": cand["taste2"][ok], "lengths": lengths,
            "track": cand["track"][idx]}


def _candidates(w: World, rng: np.random.Generator, n: int, cfg: SynthConfig) -> dict:
    ts = tastes(cfg)
    # per playlist: target length, tastes, scenes and habits
    length = np.full(n, 10**6)
    while (bad := length > 250).any():
        length[bad] = 5 + np.round(rng.gamma(cfg.length_shape, cfg.length_scale, bad.sum())).astype(np.int64)
    t1 = np.minimum(np.searchsorted(cum(ts.weight), rng.random(n), side="right"), len(ts.weight) - 1)
    t2 = rows_pick(ts.affinity_cw, t1, rng.random(n))
    s1 = _scene_of(w, rows_pick(ts.profile_cw, t1, rng.random(n)), rng.random(n))
    s2 = _scene_of(w, rows_pick(ts.profile_cw, t2, rng.random(n)), rng.random(n))
    drift0 = 0.12 * rng.random(n)
    drift1 = rng.beta(1.2, 1.2 * (1 - cfg.drift) / cfg.drift, n) * (rng.random(n) < 0.8)
    cont = rng.beta(1.0, (1 - cfg.p_continue) / cfg.p_continue, n)
    album_run = rng.beta(0.6, 0.6 * (1 - cfg.p_album_run) / cfg.p_album_run, n)
    p_hit = rng.beta(1.5, 1.5 * (1 - cfg.p_hit) / cfg.p_hit, n)
    habits = {"length": length, "t1": t1, "t2": t2, "s1": s1, "s2": s2, "drift0": drift0, "drift1": drift1,
              "cont": cont, "album_run": album_run, "p_hit": p_hit}
    if cfg.p_niche > 0:  # (drawn only then: profiles without niche playlists keep their exact random stream)
        habits["niche"] = rng.random(n) < cfg.p_niche
    # entries come in rounds: duplicates are dropped and short playlists get more entries
    pl, track, artist = (np.zeros(0, dtype=np.int64) for _ in range(3))
    next_j = np.zeros(n, dtype=np.int64)
    repeats = (rng.random(n) < cfg.p_repeat) * rng.integers(1, 3, n)
    need = length.copy()
    for over in (1.25, 2.0, 3.0, 4.0):
        rows = np.flatnonzero(need > 0)
        if not len(rows):
            break
        n_e = np.ceil(need[rows] * over).astype(np.int64) + 4
        r_pl, r_track, r_art = _entries(w, rng, habits, rows, n_e, next_j[rows], cfg)
        next_j[rows] += n_e
        old = np.concatenate([np.ones(len(pl), dtype=bool), np.zeros(len(r_pl), dtype=bool)])
        pl, track = np.concatenate([pl, r_pl]), np.concatenate([track, r_track])
        artist = np.concatenate([artist, r_art])
        order = np.argsort(pl, kind="stable")
        pl, track, artist, old = pl[order], track[order], artist[order], old[order]
        # the first occurrence of a track stays; a few playlists keep a repeat or two, as real ones do
        _, first_idx = np.unique(pl * w.n_tracks + track, return_index=True)
        keep = old.copy()
        keep[first_idx] = True
        dup = np.flatnonzero(~keep)
        dup_rank = np.arange(len(dup)) - np.searchsorted(pl[dup], pl[dup], side="left")
        kept_dup = dup[dup_rank < repeats[pl[dup]]]
        keep[kept_dup] = True
        repeats -= np.bincount(pl[kept_dup], minlength=n)
        kpl = pl[keep]
        pos = np.arange(len(kpl)) - np.searchsorted(kpl, kpl, side="left")
        keep[np.flatnonzero(keep)[pos >= length[kpl]]] = False
        pl, track, artist = pl[keep], track[keep], artist[keep]
        need = length - np.bincount(pl, minlength=n)
    lengths = np.bincount(pl, minlength=n)
    n_art = distinct_per_row(pl, w.art_key[artist], n)
    n_alb = distinct_per_row(pl, w.track_album(track, artist), n)
    valid = (lengths >= 5) & (lengths <= 250) & (n_art >= 3) & (n_alb >= 2)
    return {"valid": valid, "taste": t1, "taste2": t2, "lengths": lengths,
            "indptr": np.concatenate([[0], np.cumsum(lengths)]), "track": track}


def _entries(w: World, rng: np.random.Generator, h: dict, rows: np.ndarray, n_e: np.ndarray, j0: np.ndarray,
             cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n_e[i] entries for candidate playlist rows[i], at positions j0[i].. (playlist, track, artist)."""
    ts = tastes(cfg)
    n_g = len(w.genre_art) - 1
    e_ptr = np.concatenate([[0], np.cumsum(n_e)])
    total = int(e_ptr[-1])
    idx = np.repeat(np.arange(len(rows)), n_e)
    pl = rows[idx]
    j = np.arange(total) - e_ptr[idx] + j0[idx]
    new_seg = (rng.random(total) >= h["cont"][pl]) | (np.arange(total) == e_ptr[idx])
    seg = np.cumsum(new_seg) - 1
    seg_first = np.flatnonzero(new_seg)
    n_seg = len(seg_first)
    sp = pl[seg_first]
    x = np.minimum(j[seg_first] / h["length"][sp], 1.0)
    second = rng.random(n_seg) < h["drift0"][sp] + h["drift1"][sp] * x
    taste = np.where(second, h["t2"][sp], h["t1"][sp])
    scene = np.where(second, h["s2"][sp], h["s1"][sp])
    is_hit = rng.random(n_seg) < h["p_hit"][sp]
    niche = h["niche"][sp] if "niche" in h else np.zeros(n_seg, dtype=bool)
    is_hit &= ~niche
    is_scene = ~is_hit & (rng.random(n_seg) < cfg.p_scene) & ~niche
    genre = np.minimum(rows_pick(ts.profile_cw, taste, rng.random(n_seg)), n_g - 1)
    lo = np.where(is_scene, w.scene_art[scene], w.genre_art[genre])
    hi = np.where(is_scene, w.scene_art[scene + 1], w.genre_art[genre + 1])
    artist = pick(w.art_cw, lo, hi, rng.random(n_seg))
    hit = np.minimum(np.searchsorted(w.hit_cw, rng.random(n_seg), side="right"), len(w.hit_cw) - 1)
    artist = np.where(is_hit, w.hit_artist[hit], artist)
    hit = w.hit_track[hit]
    n_tr = w.art_track[artist + 1] - w.art_track[artist]
    q = w.art_q[artist]
    anchor = np.where(is_hit, hit - w.art_track[artist], zipf_rank(n_tr, q, w.track_zipf, rng.random(n_seg)))
    album_mode = ~is_hit & (rng.random(n_seg) < h["album_run"][sp])
    size = w.art_album_size[artist]
    # a segment's first entry is its anchor; later ones walk through the album or redraw
    k = np.arange(total) - seg_first[seg]
    redraw = zipf_rank(n_tr[seg], q[seg], w.track_zipf, rng.random(total))
    if "niche" in h:  # deep cuts: any track of the artist's catalogue, popular or not
        anchor = np.where(niche, (rng.random(n_seg) * n_tr).astype(np.int64), anchor)
        redraw = np.where(niche[seg], (rng.random(total) * n_tr[seg]).astype(np.int64), redraw)
    # an album run stops at the album's end (later entries of the segment redraw)
    walk = anchor[seg] + k
    in_album = album_mode[seg] & (walk < np.minimum((anchor // size + 1) * size, n_tr)[seg])
    rank = np.where(k == 0, anchor[seg], np.where(in_album, walk, redraw))
    return pl, w.art_track[artist][seg] + rank, artist[seg]


def _scene_of(w: World, genre: np.ndarray, u: np.ndarray) -> np.ndarray:
    return pick(w.scene_cw, w.genre_scene[genre], w.genre_scene[genre + 1], u)
