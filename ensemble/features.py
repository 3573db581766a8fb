"""Features of (playlist, candidate) pairs for the reranker, computed on flat pair arrays.

The ranker learns on validation playlists with counts over the training playlists and serves the
challenge with counts over every playlist, so every count (popularity, co-occurrence, title counts)
is a frequency per million of the playlists it was counted over: the same meaning in both.
Everything is a gather from a per-playlist or per-track array or a sparse lookup; the only batching is
over blocks of playlists for the seed x candidate co-occurrence, whose dense block size is bounded by
`cooc_cells`. Nothing here reads a playlist's withheld tracks (ps.holdout*, ps.n_holdouts): the
features of a validation playlist are exactly those it would have as a challenge playlist.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from common.progress import progress as progress_of
from common.sparse import binary, sample_rows
from ensemble.candidates import Candidates, SourceList, lookup_csr
from preprocess.artifacts import PlaylistSet, Vocab
from sources.sparse import BaselineConfig, Popularity
from sources.title_popularity import TitlePopularity

log = logging.getLogger("features")

RECENT_SEEDS = 5  # "recent" = the last seeds by position: the in-order categories continue from there

PLAYLIST_FEATURES = ("n_seeds", "n_seeds_vocab", "n_unknown", "has_title", "category", "in_order", "num_tracks",
                     "n_withheld", "seed_artists", "seed_albums", "seed_artist_ratio", "seed_pop_mean", "title_n",
                     "n_candidates")
TRACK_FEATURES = ("pop_log", "artist_pop_log", "album_pop_log", "duration_min", "pop_vs_seeds", "in_dense")
PAIR_FEATURES = ("merge_rank", "n_sources", "title_count", "title_frac",
                 "artist_count", "artist_frac", "artist_recent", "artist_in_seeds", "album_count", "album_frac",
                 "album_recent", "same_artist_last", "same_album_last")
COOC_STATS = ("max", "mean", "min", "nonzero", "norm_max", "norm_mean", "norm_min", "last", "norm_last",
              "norm_recent")
COOC_LEVELS = ("cooc", "artist_cooc")  # candidate track with seed tracks; candidate's artist with seed artists
SOURCE_FEATURES = ("score", "rank", "ratio")


def feature_names(source_names: list[str]) -> list[str]:
    return ([f"{s}_{f}" for s in source_names for f in SOURCE_FEATURES]
            + list(PLAYLIST_FEATURES) + list(TRACK_FEATURES) + list(PAIR_FEATURES)
            + [f"{lvl}_{st}" for lvl in COOC_LEVELS for st in COOC_STATS])


@dataclass
class FeatureContext:
    """What features need from the training playlists, built once and shared by val and challenge."""

    vocab: Vocab
    per_million: float  # 1e6 / training playlists: a count times this is its frequency per million
    xt: sp.csr_matrix  # float32 [T, Ptrain] binary: track -> training playlists
    xt_seed: sp.csr_matrix  # xt with each row cut to a scaled sample of its playlists (baselines.sample_rows)
    pop: np.ndarray  # float32 [T] training playlists holding the track, per million
    xat: sp.csr_matrix  # float32 [A + 1, Ptrain] binary: artist -> training playlists (last row: no artist)
    xat_seed: sp.csr_matrix  # the same, sampled like xt_seed
    artist_pl: np.ndarray  # float32 [A + 1] training playlists with the artist, per million
    titles: TitlePopularity  # normalised title -> track counts among that title's training playlists
    title_n: np.ndarray  # float32 [n_titles] training playlists per normalised title, per million
    artist_of: sp.csr_matrix  # float32 [T, A] one-hot track -> artist (no entry when not kept)
    album_of: sp.csr_matrix  # float32 [T, B] one-hot track -> album
    artist_pop: np.ndarray  # float32 [A] entries of the artist's tracks, per million playlists
    album_pop: np.ndarray  # float32 [B] the same for albums
    in_dense: np.ndarray  # float32 [T] 1 inside the autoencoders' vocabulary, 0 outside, NaN without them

    @classmethod
    def build(cls, train: PlaylistSet, vocab: Vocab, max_playlists: int = 1000, seed: int = 0,
              dense_tracks: np.ndarray | None = None) -> "FeatureContext":
        """max_playlists: the seed side of the co-occurrence features reads at most this many playlists
        per seed track or artist (0 = all), so their cost per seed stays flat as the dataset grows.
        dense_tracks: catalogue ids of the autoencoders' (budgeted) vocabulary: their sources have no
        score for the other tracks, and the ranker should know that is why."""
        pop = Popularity(train)
        titles = TitlePopularity(train, pop, BaselineConfig(title_min_playlists=1))
        _, title_n = np.unique(train.title, return_counts=True)
        n_t = vocab.n_tracks
        kept = vocab.track_artist >= 0
        artist_of = sp.csr_matrix((np.ones(kept.sum(), np.float32), (np.flatnonzero(kept), vocab.track_artist[kept])),
                                  shape=(n_t, vocab.n_artists))
        n_albums = max(len(vocab.album_uri), int(vocab.track_album.max(initial=-1)) + 1)
        album_of = sp.csr_matrix((np.ones(n_t, np.float32), (np.arange(n_t), vocab.track_album)), shape=(n_t, n_albums))
        xat = sp.vstack([binary(train.artists).T, sp.csr_matrix((1, len(train)), dtype=np.float32)], format="csr")
        xt = binary(train.tracks).T.tocsr()
        in_dense = np.full(n_t, np.nan, dtype=np.float32)
        if dense_tracks is not None:
            in_dense[:] = 0.0
            in_dense[dense_tracks] = 1.0
        pm = 1e6 / max(len(train), 1)
        counts = pop.counts * pm
        return cls(vocab=vocab, per_million=pm, xt=xt, xt_seed=sample_rows(xt, max_playlists, seed),
                   pop=counts.astype(np.float32), xat=xat, xat_seed=sample_rows(xat, max_playlists, seed + 1),
                   artist_pl=(np.diff(xat.indptr) * pm).astype(np.float32), titles=titles,
                   title_n=(title_n * pm).astype(np.float32), artist_of=artist_of, album_of=album_of,
                   artist_pop=np.asarray(artist_of.T @ counts, dtype=np.float32).ravel(),
                   album_pop=np.asarray(album_of.T @ counts, dtype=np.float32).ravel(), in_dense=in_dense)


def build_features(ctx: FeatureContext, ps: PlaylistSet, cands: Candidates, sources: list[SourceList],
                   cooc_cells: int = 20_000_000, progress: bool = False) -> tuple[np.ndarray, list[str]]:
    """float32 [M, F] features of the M candidate pairs (rows of `cands` index `ps`), and their names."""
    start = time.perf_counter()
    row, track = cands.row, cands.track.astype(np.int64)
    cols: dict[str, np.ndarray] = {}
    for src in sources:
        cols.update(_source_features(src, row, track, ps.tracks.shape[1]))
    seeds = ps.tracks.tocsr()
    seeds.sort_indices()
    seeds_bin = binary(seeds)
    ns_vocab = np.diff(seeds.indptr).astype(np.float32)
    recent = _recent_mask(seeds, RECENT_SEEDS)
    recent_bin = seeds_bin.copy()
    recent_bin.data = recent.astype(np.float32)
    recent_bin.eliminate_zeros()
    last = _last_seed(seeds)

    seed_art = (seeds_bin @ ctx.artist_of).tocsr()
    seed_alb = (seeds_bin @ ctx.album_of).tocsr()
    n_seed_art = np.diff(ps.artists.indptr).astype(np.float32)  # artists of all seeds, known tracks or not
    title_row = ctx.titles.lookup(ps.title)
    seed_rows = np.repeat(np.arange(len(ps)), np.diff(seeds.indptr))
    seed_pop_mean = _div(np.bincount(seed_rows, weights=np.log1p(ctx.pop)[seeds.indices], minlength=len(ps)), ns_vocab)
    playlist = {
        "n_seeds": ps.n_seeds, "n_seeds_vocab": ns_vocab, "n_unknown": ps.n_unknown, "has_title": ps.has_title,
        "category": ps.category, "in_order": _in_order(seeds, ps.n_seeds), "num_tracks": ps.num_tracks,
        "n_withheld": ps.num_tracks.astype(np.int64) - ps.n_seeds, "seed_artists": n_seed_art,
        "seed_albums": np.diff(seed_alb.indptr), "seed_artist_ratio": _div(n_seed_art, ps.n_seeds),
        "seed_pop_mean": seed_pop_mean,
        "title_n": np.where(title_row >= 0, ctx.title_n[np.maximum(title_row, 0)], 0.0),
        "n_candidates": cands.counts(),
    }
    cols.update({k: np.asarray(v, dtype=np.float32)[row] for k, v in playlist.items()})

    artist = ctx.vocab.track_artist[track].astype(np.int64)
    album = ctx.vocab.track_album[track].astype(np.int64)
    cols["pop_log"] = np.log1p(ctx.pop[track])
    cols["artist_pop_log"] = np.where(artist >= 0, np.log1p(ctx.artist_pop[np.maximum(artist, 0)]), np.nan)
    cols["album_pop_log"] = np.log1p(ctx.album_pop[album])
    cols["duration_min"] = ctx.vocab.track_duration[track] / 60000.0
    cols["pop_vs_seeds"] = cols["pop_log"] - cols["seed_pop_mean"]
    cols["in_dense"] = ctx.in_dense[track]

    cols["merge_rank"] = cands.merge_rank
    cols["n_sources"] = cands.n_sources
    tr = title_row[row]
    cols["title_count"] = np.where(tr >= 0, lookup_csr(ctx.titles.by_title, np.maximum(tr, 0), track), 0.0) * ctx.per_million
    cols["title_frac"] = _div(cols["title_count"], cols["title_n"])
    cols["artist_count"] = lookup_csr(seed_art, row, artist)
    cols["artist_frac"] = _div(cols["artist_count"], cols["n_seeds_vocab"])
    cols["artist_recent"] = lookup_csr((recent_bin @ ctx.artist_of).tocsr(), row, artist)
    cols["album_count"] = lookup_csr(seed_alb, row, album)
    cols["album_frac"] = _div(cols["album_count"], cols["n_seeds_vocab"])
    cols["album_recent"] = lookup_csr((recent_bin @ ctx.album_of).tocsr(), row, album)
    last_t = last[row]
    has_last = last_t >= 0
    last_art = np.where(has_last, ctx.vocab.track_artist[np.maximum(last_t, 0)], -1)
    cols["same_artist_last"] = np.where(has_last, (artist == last_art) & (artist >= 0), np.nan)
    cols["same_album_last"] = np.where(has_last, album == ctx.vocab.track_album[np.maximum(last_t, 0)], np.nan)
    cols["artist_in_seeds"] = lookup_csr(ps.artists, row, artist) > 0
    cols.update(_cooc_features("cooc", ctx.xt_seed, ctx.xt, ctx.pop, ctx.per_million, seeds, cands, track, cooc_cells,
                               progress))
    seed_artists = ps.artists.tocsr()
    seed_artists.sort_indices()
    cand_artist = np.where(artist >= 0, artist, ctx.vocab.n_artists)  # the empty last row of xat
    art = _cooc_features("artist_cooc", ctx.xat_seed, ctx.xat, ctx.artist_pl, ctx.per_million, seed_artists, cands,
                         cand_artist, cooc_cells, progress)
    cols.update({k: np.where(artist >= 0, v, np.nan) for k, v in art.items()})

    names = feature_names([s.name for s in sources])
    out = np.empty((len(names), len(row)), dtype=np.float32)  # one contiguous row per feature ...
    for j, name in enumerate(names):
        out[j] = cols[name]
    out = out.T  # ... read as [M, F] in Fortran order, which LightGBM takes without a copy
    log.info("features: %d pairs x %d features for %d playlists in %.1f s", len(row), len(names), len(ps),
             time.perf_counter() - start)
    return out, names


def _source_features(src: SourceList, row: np.ndarray, track: np.ndarray, n_tracks: int) -> dict[str, np.ndarray]:
    """Score, 0-based rank (list length when absent) and score / the row's best score of one source."""
    r, c = np.nonzero(src.ids >= 0)
    keys = r.astype(np.int64) * n_tracks + src.ids[r, c]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    q = row * n_tracks + track
    at = np.minimum(np.searchsorted(keys, q), max(len(keys) - 1, 0))
    hit = keys[at] == q if len(keys) else np.zeros(len(q), dtype=bool)
    score = np.full(len(q), np.nan, dtype=np.float32)
    rank = np.full(len(q), src.ids.shape[1], dtype=np.float32)
    score[hit] = src.scores[r[order[at[hit]]], c[order[at[hit]]]]
    rank[hit] = c[order[at[hit]]]
    top = np.full(len(src.ids), np.nan, dtype=np.float32)
    if src.ids.shape[1]:
        ok = (src.ids[:, 0] >= 0) & (src.scores[:, 0] > 0)
        top[ok] = src.scores[ok, 0]
    return {f"{src.name}_score": score, f"{src.name}_rank": rank, f"{src.name}_ratio": score / top[row]}


def _cooc_features(prefix: str, xt_seed: sp.csr_matrix, xt: sp.csr_matrix, pop: np.ndarray, per_million: float,
                   seeds: sp.csr_matrix, cands: Candidates, items: np.ndarray, cells: int,
                   progress: bool) -> dict[str, np.ndarray]:
    """Co-occurrence of each pair's item (the candidate track, or its artist) with each seed item
    of its playlist through the training playlists (xt: item -> playlists), reduced to max / mean /
    min (counts per million playlists, and cosine-normalised: pop is per million too), with the
    last seed (highest position) and the recent seeds. Per block of playlists, G = xt_seed[block seeds] @ xt[block items].T is the dense slice of
    X^T X that the block needs (estimated through the seeds' sampled playlists), gathered per
    (seed, pair) triple; X^T X itself is never built."""
    m = len(cands.row)
    out = {f"{prefix}_{k}": np.full(m, np.nan, dtype=np.float32) for k in COOC_STATS}
    o = {k: out[f"{prefix}_{k}"] for k in COOC_STATS}
    recent = _recent_mask(seeds, RECENT_SEEDS)
    last = _last_seed(seeds)
    ns = np.diff(seeds.indptr)
    sq_pop = np.sqrt(np.maximum(pop, per_million))  # at least one playlist
    bounds = _blocks(ns, cands.counts(), cells)
    for a, b in progress_of(list(zip(bounds[:-1], bounds[1:])), desc=prefix, unit="blocks", disable=not progress):
        p0, p1 = int(cands.indptr[a]), int(cands.indptr[b])
        s0, s1 = int(seeds.indptr[a]), int(seeds.indptr[b])
        if p0 == p1 or s0 == s1:
            continue
        v, v_inv = np.unique(seeds.indices[s0:s1], return_inverse=True)
        u, u_inv = np.unique(items[p0:p1], return_inverse=True)
        g = (xt_seed[v] @ xt[u].T).toarray()
        pair_row = cands.row[p0:p1]
        pair_ns = ns[pair_row]
        tp = np.repeat(np.arange(p1 - p0), pair_ns)
        seg = np.cumsum(pair_ns) - pair_ns
        seed_at = np.repeat(seeds.indptr[pair_row] - s0 - seg, pair_ns) + np.arange(len(tp))
        vs, us = v_inv[seed_at], u_inv[tp]
        raw = g[vs, us] * per_million
        norm = raw / (sq_pop[v[vs]] * sq_pop[u[us]])
        with_seeds = pair_ns > 0
        starts = seg[with_seeds]
        sel = np.arange(p0, p1)[with_seeds]
        cnt = pair_ns[with_seeds]
        o["max"][sel] = np.maximum.reduceat(raw, starts)
        o["min"][sel] = np.minimum.reduceat(raw, starts)
        o["mean"][sel] = np.add.reduceat(raw, starts) / cnt
        o["nonzero"][sel] = np.add.reduceat((raw > 0).astype(np.float32), starts) / cnt
        o["norm_max"][sel] = np.maximum.reduceat(norm, starts)
        o["norm_min"][sel] = np.minimum.reduceat(norm, starts)
        o["norm_mean"][sel] = np.add.reduceat(norm, starts) / cnt
        rec = recent[s0:s1][seed_at].astype(np.float32)
        o["norm_recent"][sel] = _div(np.add.reduceat(norm * rec, starts), np.add.reduceat(rec, starts))
        is_last = seeds.indices[s0:s1][seed_at] == last[pair_row[tp]]
        o["last"][sel] = np.add.reduceat(np.where(is_last, raw, 0.0), starts)
        o["norm_last"][sel] = np.add.reduceat(np.where(is_last, norm, 0.0), starts)
    return out


def _blocks(ns: np.ndarray, nc: np.ndarray, cells: int) -> np.ndarray:
    """Row boundaries such that (seeds in block) x (candidates in block) <= cells, or one row per block."""
    cs = np.r_[0, np.cumsum(ns, dtype=np.int64)]
    cc = np.r_[0, np.cumsum(nc, dtype=np.int64)]
    n = len(ns)
    bounds = [0]
    while bounds[-1] < n:
        a = bounds[-1]
        prod = (cs[a + 1:] - cs[a]) * (cc[a + 1:] - cc[a])
        bounds.append(a + max(1, int(np.searchsorted(prod, cells, side="right"))))
    return np.asarray(bounds)


def _recent_mask(seeds: sp.csr_matrix, n: int) -> np.ndarray:
    """bool per stored seed: among the row's n highest positions."""
    row = np.repeat(np.arange(seeds.shape[0]), np.diff(seeds.indptr))
    order = np.lexsort((-seeds.data.astype(np.int64), row))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - seeds.indptr[row[order]]
    return rank < n


def _last_seed(seeds: sp.csr_matrix) -> np.ndarray:
    """Track id of each row's seed with the highest position, -1 for rows without seeds."""
    row = np.repeat(np.arange(seeds.shape[0]), np.diff(seeds.indptr))
    order = np.lexsort((-seeds.data.astype(np.int64), row))
    first = seeds.indptr[:-1][np.diff(seeds.indptr) > 0]
    out = np.full(seeds.shape[0], -1, dtype=np.int64)
    out[row[order[first]]] = seeds.indices[order[first]]
    return out


def _in_order(seeds: sp.csr_matrix, n_seeds: np.ndarray) -> np.ndarray:
    """Seeds are the playlist's first positions (no position beyond the number of seeds given)."""
    top = np.zeros(seeds.shape[0], dtype=np.int64)
    has = np.diff(seeds.indptr) > 0
    if seeds.nnz:
        top[has] = np.maximum.reduceat(seeds.data.astype(np.int64), seeds.indptr[:-1][has])
    return (top <= n_seeds).astype(np.float32)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan).astype(np.float32)
