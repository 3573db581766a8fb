"""The preprocessing stage: MPD slices (+ a challenge set) -> the artifact folder models read.

Built for the full MPD (1M playlists, 66M entries) on a small machine: slices are parsed in
worker processes straight into integer ids (preprocess.corpus.scan), so the main process holds
only int32/bool per-entry arrays; vocabulary counts are bincounts and the playlist matrices
are assembled as CSR directly. The artifact format is preprocess.artifacts.

CLI: `python -m preprocess.build --mpd DIR --out DIR [--challenge FILE] [--config FILE]`
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from common.cli import run_cli
from common.io import write_json
from common.sparse import column_counts
from preprocess.artifacts import (FORMAT_VERSION, Artifacts, PlaylistSet, Vocab, load_artifacts, save_playlists,
                                  save_vocab)
from common.categories import CATEGORIES
from preprocess.build_config import BuildConfig
from preprocess.challenge import choose_playlists, entry_rows, pick_seeds, playlist_coverage
from preprocess.challenge_file import Slice, read_challenge, seed_categories
from preprocess.corpus import Corpus, scan
from preprocess.schema import URI_PREFIX, VARIOUS_ARTISTS
from preprocess.titles import normalize_title, title_chars

log = logging.getLogger("preprocess.build")

# Caps on stored strings: numpy str arrays are as wide as their longest entry, and one odd
# 300-character name would multiply the vocabulary's size. Titles keep far more than the 25
# characters the title model reads.
MAX_NAME_CHARS = 100
MAX_TITLE_CHARS = 64
OUTPUTS = ("manifest.json", "vocab.npz", "train.npz", "val.npz", "val_full.npz", "challenge.npz")


def build(mpd_dir: str | Path, out_dir: str | Path, cfg: BuildConfig | None = None,
          challenge: str | Path | None = None) -> Artifacts:
    """Build the artifact folder `out_dir` from the MPD slices in `mpd_dir` and return it loaded."""
    cfg = cfg or BuildConfig()
    mpd_dir, out_dir = Path(mpd_dir), Path(out_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    seeds = read_challenge(challenge).seeds if challenge is not None else None  # bad input fails early
    corpus = scan(mpd_dir, cfg.workers, desc="build: reading slices")
    counts: dict[str, Any] = {
        "slices": len(corpus.files), "playlists_read": len(corpus), "entries_read": len(corpus.track),
        "tracks_seen": len(corpus.track_id), "artists_seen": len(corpus.artist_id), "albums_seen": len(corpus.album_id)}
    log.info("read %s", counts)
    lap("read")
    row = np.repeat(np.arange(len(corpus), dtype=np.int32), corpus.lengths)
    idx = np.int32 if len(corpus.track) < 2**31 else np.int64  # per-entry arrays stay 4 bytes on the MPD
    pos = np.arange(len(corpus.track), dtype=idx) - corpus.indptr.astype(idx)[row]
    covered = playlist_coverage(corpus.track, corpus.first_track, corpus.indptr)
    val_rows, val_cat = choose_playlists(corpus.lengths, corpus.has_name, covered, cfg.val_per_category, cfg.seed,
                                         f"{mpd_dir} (validation split, val_per_category={cfg.val_per_category})")
    is_val = np.zeros(len(corpus), dtype=bool)
    is_val[val_rows] = True
    lap("split")

    vocab, t_map, a_map = _vocabulary(corpus, cfg, ~is_val[row])
    log.info("catalogue: %d tracks (count >= %d), %d artists (count >= %d), %d albums", vocab.n_tracks,
             cfg.min_track_count, vocab.n_artists, cfg.min_artist_count, len(vocab.album_uri))
    lap("vocabulary")
    train, n_long = _train_set(corpus, row, pos, ~is_val, t_map, a_map, vocab, cfg.max_train_len)
    log.info("train: %d playlists, %d entries (%d skipped: more than %d kept tracks)", len(train),
             train.tracks.nnz, n_long, cfg.max_train_len)
    lap("train")
    val = _holdout_set(corpus, val_rows, val_cat, pick_seeds(corpus.lengths[val_rows], val_cat, cfg.seed),
                       t_map, a_map, vocab, (column_counts(train.tracks) > 0, column_counts(train.artists) > 0))
    val_full, _ = _train_set(corpus, row, pos, is_val, t_map, a_map, vocab, cfg.max_train_len)
    lap("val")
    del corpus, row, pos
    counts |= {"train_playlists": len(train), "train_entries": int(train.tracks.nnz), "train_skipped_long": n_long,
               "val_playlists": len(val), "val_seeds": int(val.n_seeds.sum()),
               "val_unknown_seeds": int(val.n_unknown.sum()), "vocab_tracks": vocab.n_tracks, "vocab_artists": vocab.n_artists,
               "vocab_albums": len(vocab.album_uri)}
    chal = None
    if seeds is not None:
        chal = challenge_set(seeds, vocab)
        counts |= {"challenge_playlists": len(chal), "challenge_seeds": int(chal.n_seeds.sum()),
                   "challenge_unknown_seeds": int(chal.n_unknown.sum()),
                   "challenge_playlists_with_unknown": int((chal.n_unknown > 0).sum()),
                   "challenge_uncategorised": int((chal.category == 0).sum())}
        log.info("challenge: %d playlists, %d of %d seed tracks outside the vocabulary (in %d playlists)",
                 len(chal), counts["challenge_unknown_seeds"], counts["challenge_seeds"],
                 counts["challenge_playlists_with_unknown"])
        if counts["challenge_uncategorised"]:
            log.warning("challenge: %d playlists fit no category", counts["challenge_uncategorised"])
        lap("challenge")
    _write_arrays(out_dir, vocab, train, val, val_full, chal)
    lap("write")
    write_json(out_dir / "manifest.json", {
        "format_version": FORMAT_VERSION, "fingerprint": vocab.fingerprint,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "source": {"mpd": str(mpd_dir.resolve()), "challenge": str(Path(challenge).resolve()) if challenge else None},
        "options": dataclasses.asdict(cfg), "counts": counts, "timings_s": timings,
        "val_categories": {str(c.id): int((val.category == c.id).sum()) for c in CATEGORIES}})
    log.info("wrote %s (%s)", out_dir, ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return load_artifacts(out_dir)


def _vocabulary(corpus: Corpus, cfg: BuildConfig, train_entry: np.ndarray) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """The catalogue: min-count vocabulary over every playlist read (training and validation: the
    final models train on both; the challenge set is not among them), ordered by count over the
    training playlists alone, then uri. Scores tie often (counts, fills) and ties go to the lower
    id: counting validation playlists in the order would hand each one's withheld tracks the ties,
    in the lists the reranker learns from and never in the challenge's. A track only a validation
    playlist holds is listed, but models fit on the training part never see it."""
    t_count = np.bincount(corpus.track[corpus.first_track], minlength=len(corpus.track_id))
    a_count = np.bincount(corpus.track_artist[corpus.track], minlength=len(corpus.artist_id))
    t_train = np.bincount(corpus.track[corpus.first_track & train_entry], minlength=len(corpus.track_id))
    a_train = np.bincount(corpus.track_artist[corpus.track[train_entry]], minlength=len(corpus.artist_id))
    keep_a = a_count >= cfg.min_artist_count
    t_idx = _ordered(np.flatnonzero(t_count >= cfg.min_track_count), t_train, corpus.track_id)
    a_idx = _ordered(np.flatnonzero(keep_a), a_train, corpus.artist_id)
    t_map = np.full(len(corpus.track_id), -1, dtype=np.int32)
    t_map[t_idx] = np.arange(len(t_idx), dtype=np.int32)
    a_map = np.full(len(corpus.artist_id), -1, dtype=np.int32)
    a_map[a_idx] = np.arange(len(a_idx), dtype=np.int32)
    album_ids, track_album = np.unique(corpus.album_id[corpus.track_album[t_idx]], return_inverse=True)
    vocab = Vocab(
        track_uri=_uris("track_uri", corpus.track_id[t_idx]), track_name=_strings(corpus.track_name[t_idx]),
        track_count=t_count[t_idx].astype(np.int64), track_artist=a_map[corpus.track_artist[t_idx]],
        track_album=track_album.astype(np.int32).ravel(), track_duration=corpus.track_duration[t_idx],
        artist_uri=_uris("artist_uri", corpus.artist_id[a_idx]), artist_name=_strings(corpus.artist_name[a_idx]),
        artist_count=a_count[a_idx].astype(np.int64), album_uri=_uris("album_uri", album_ids))
    return vocab, t_map, a_map


def _ordered(idx: np.ndarray, count: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Most frequent first, ties by uri: the order depends on the playlists, not on slice order."""
    return idx[np.lexsort((ids[idx], -count[idx]))]


def _uris(key: str, ids: np.ndarray) -> np.ndarray:
    return np.char.add(URI_PREFIX[key], ids.astype("U22"))


def _strings(values: np.ndarray, limit: int = MAX_NAME_CHARS) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype="<U1")
    return np.asarray([v[:limit] for v in values], dtype=str) if max(map(len, values)) > limit \
        else values.astype(str)


def _titles(names: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised titles and char tensors; each distinct raw title is normalised once."""
    codes, uniq = pd.factorize(np.where(keep, names, ""))
    norm = [normalize_title(t)[:MAX_TITLE_CHARS] for t in uniq]
    chars = title_chars(list(uniq))
    return _strings(np.asarray(norm, dtype=object), MAX_TITLE_CHARS)[codes], chars[codes]


def _csr(out_row: np.ndarray, col: np.ndarray, value: np.ndarray, shape: tuple[int, int],
         dtype: Any) -> sp.csr_matrix:
    """CSR from entries already grouped by non-decreasing row, one entry per (row, col)."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(out_row, minlength=shape[0]), out=indptr[1:])
    m = sp.csr_matrix((value.astype(dtype, copy=False), col.astype(np.int32, copy=False), indptr), shape=shape)
    m.sort_indices()
    return m


def _first(out_row: np.ndarray, item: np.ndarray) -> np.ndarray:
    """First occurrence of each (row, item) pair, entries in playlist order."""
    mask = np.zeros(len(item), dtype=bool)
    mask[np.unique(out_row.astype(np.int64) * (int(item.max(initial=0)) + 1) + item, return_index=True)[1]] = True
    return mask


def _empty(n_rows: int, n_cols: int) -> sp.csr_matrix:
    return sp.csr_matrix((n_rows, n_cols), dtype=np.int8)


def _train_set(corpus: Corpus, row: np.ndarray, pos: np.ndarray, train_rows: np.ndarray, t_map: np.ndarray,
               a_map: np.ndarray, vocab: Vocab, max_len: int) -> tuple[PlaylistSet, int]:
    vt = t_map[corpus.track]
    kept = corpus.first_track & (vt >= 0)
    long = train_rows & (np.bincount(row[kept], minlength=len(corpus)) > max_len)
    rows = np.flatnonzero(train_rows & ~long)
    out_index = np.full(len(corpus), -1, dtype=np.int32)
    out_index[rows] = np.arange(len(rows), dtype=np.int32)
    sel = kept & (out_index[row] >= 0)
    tracks = _csr(out_index[row[sel]], vt[sel], pos[sel] + 1, (len(rows), vocab.n_tracks), np.int32)
    va = _without_various(a_map[corpus.track_artist[corpus.track]], vocab)
    del vt
    sel = corpus.first_artist & (va >= 0) & (out_index[row] >= 0)
    artists = _csr(out_index[row[sel]], va[sel], pos[sel] + 1, (len(rows), vocab.n_artists), np.int32)
    del va, sel
    lengths = corpus.lengths[rows].astype(np.int32)
    unknown = np.bincount(row[t_map[corpus.track] < 0], minlength=len(corpus))[rows].astype(np.int32)
    title, chars = _titles(corpus.name[rows], corpus.has_name[rows])
    ps = PlaylistSet(
        pid=corpus.pid[rows], title=title, has_title=corpus.has_name[rows], title_chars=chars, num_tracks=lengths,
        category=np.zeros(len(rows), dtype=np.int8), n_seeds=lengths, n_unknown=unknown, tracks=tracks,
        artists=artists, n_holdouts=np.zeros(len(rows), dtype=np.int32), holdout=_empty(len(rows), vocab.n_tracks),
        holdout_artists=_empty(len(rows), vocab.n_artists))
    return ps, int(long.sum())


def _holdout_set(corpus: Corpus, rows: np.ndarray, category: np.ndarray, seeds: np.ndarray, t_map: np.ndarray,
                 a_map: np.ndarray, vocab: Vocab, known: tuple[np.ndarray, np.ndarray]) -> PlaylistSet:
    """Validation playlists: seeds in tracks/artists (value = position + 1), the rest as holdouts.

    known: catalogue tracks and artists that some training playlist holds. The models listing these
    playlists are fit on the training playlists, so a seed they never saw is unknown to them, as a
    challenge seed outside the catalogue is to the refit models: it is counted in n_unknown and left
    out of the seeds, so the reranker learns the case it meets in the challenge."""
    lengths = corpus.lengths[rows]
    e = entry_rows(corpus.indptr, rows)
    out_row = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
    pos = np.arange(len(e)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    g_track = corpus.track[e]
    g_artist = corpus.track_artist[g_track]
    vt, va = t_map[g_track], a_map[g_artist]
    seen_t = np.where(vt >= 0, known[0][np.maximum(vt, 0)], False)
    seen_a = np.where(va >= 0, known[1][np.maximum(va, 0)], False)
    shape_t, shape_a = (len(rows), vocab.n_tracks), (len(rows), vocab.n_artists)

    s = seeds & _first(out_row, np.where(seeds, g_track, -1) + 1) & seen_t
    tracks = _csr(out_row[s], vt[s], pos[s] + 1, shape_t, np.int32)
    va_in = _without_various(va, vocab)
    s = seeds & _first(out_row, np.where(seeds, g_artist, -1) + 1) & (va_in >= 0) & seen_a
    artists = _csr(out_row[s], va_in[s], pos[s] + 1, shape_a, np.int32)
    held_first = ~seeds & _first(out_row, np.where(seeds, -1, g_track) + 1)
    h = held_first & (vt >= 0)
    holdout = _csr(out_row[h], vt[h], np.ones(int(h.sum())), shape_t, np.int8)
    h = ~seeds & _first(out_row, np.where(seeds, -1, g_artist) + 1) & (va >= 0)
    holdout_artists = _csr(out_row[h], va[h], np.ones(int(h.sum())), shape_a, np.int8)

    has_title = corpus.has_name[rows] & np.isin(category, [c.id for c in CATEGORIES if c.has_title])
    title, chars = _titles(corpus.name[rows], has_title)
    return PlaylistSet(
        pid=corpus.pid[rows], title=title, has_title=has_title, title_chars=chars,
        num_tracks=lengths.astype(np.int32), category=category.astype(np.int8),
        n_seeds=np.bincount(out_row[seeds], minlength=len(rows)).astype(np.int32),
        n_unknown=np.bincount(out_row[seeds & ~seen_t], minlength=len(rows)).astype(np.int32),
        tracks=tracks, artists=artists,
        n_holdouts=np.bincount(out_row[held_first], minlength=len(rows)).astype(np.int32),
        holdout=holdout, holdout_artists=holdout_artists)


def challenge_set(seeds: Slice, vocab: Vocab) -> PlaylistSet:
    """Challenge seeds in catalogue space; unknown seed tracks are counted, the category inferred (0 where
    none fits). recommend.py maps a single playlist through it too, so both paths see the same inputs."""
    n_pl = len(seeds)
    lengths = np.diff(seeds.indptr)
    out_row = np.repeat(np.arange(n_pl, dtype=np.int32), lengths)
    order = np.lexsort((seeds.pos, out_row))
    out_row, pos = out_row[order], seeds.pos[order].astype(np.int64)
    vt = pd.Index(vocab.track_uri).get_indexer(seeds.track_uri[order]).astype(np.int32)
    va = _without_various(pd.Index(vocab.artist_uri).get_indexer(seeds.artist_uri[order]).astype(np.int32), vocab)
    t_key = pd.factorize(seeds.track_uri[order])[0]
    a_key = pd.factorize(seeds.artist_uri[order])[0]
    s = _first(out_row, t_key) & (vt >= 0)
    tracks = _csr(out_row[s], vt[s], pos[s] + 1, (n_pl, vocab.n_tracks), np.int32)
    s = _first(out_row, a_key) & (va >= 0)
    artists = _csr(out_row[s], va[s], pos[s] + 1, (n_pl, vocab.n_artists), np.int32)
    title, chars = _titles(np.asarray(seeds.name, dtype=object), seeds.has_name)
    return PlaylistSet(
        pid=seeds.pid, title=title, has_title=seeds.has_name, title_chars=chars,
        num_tracks=seeds.num_tracks.astype(np.int32),
        category=seed_categories(seeds),
        n_seeds=lengths.astype(np.int32), n_unknown=np.bincount(out_row[vt < 0], minlength=n_pl).astype(np.int32),
        tracks=tracks, artists=artists,
        n_holdouts=np.maximum(seeds.num_tracks - lengths, 0).astype(np.int32),
        holdout=_empty(n_pl, vocab.n_tracks), holdout_artists=_empty(n_pl, vocab.n_artists))


def _without_various(artist: np.ndarray, vocab: Vocab) -> np.ndarray:
    """Artist ids with "Various Artists" as -1. MMCF drops it from what models see (it says nothing
    about taste), but it stays in the catalogue: the artist credit of R-precision counts it, as the
    official scorer does, and so do the withheld artists (holdout_artists)."""
    various = np.flatnonzero(vocab.artist_uri == VARIOUS_ARTISTS)
    return np.where(np.isin(artist, various), -1, artist).astype(artist.dtype)


def _write_arrays(out: Path, vocab: Vocab, train: PlaylistSet, val: PlaylistSet, val_full: PlaylistSet,
                  chal: PlaylistSet | None) -> None:
    """The manifest goes first and is written last (by the caller): a folder whose build died
    midway has none, and load_artifacts refuses it instead of mixing two builds."""
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    save_vocab(out / "vocab.npz", vocab)
    save_playlists(out / "train.npz", train)
    save_playlists(out / "val.npz", val)
    save_playlists(out / "val_full.npz", val_full)
    if chal is not None:
        save_playlists(out / "challenge.npz", chal)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m preprocess.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--mpd", required=True, type=Path, help="folder of mpd.slice.*.json(.gz) files")
    ap.add_argument("--out", required=True, type=Path, help="artifact folder to write")
    ap.add_argument("--challenge", type=Path, help="challenge_set.json whose seeds to map into the vocabulary")
    ap.add_argument("--config", type=Path, help="TOML file with a [preprocess] section (defaults otherwise)")
    args = ap.parse_args(argv)
    from pipeline.config import load_pipeline_config  # an entry point reads the whole config

    build(args.mpd, args.out, load_pipeline_config(args.config).preprocess, args.challenge)
    return 0


if __name__ == "__main__":
    run_cli(main)
