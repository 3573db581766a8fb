"""The dense models' vocabulary: MMCF's min counts, within a memory budget.

Why: the catalogue (every track seen) is cheap for the sparse models (kNN, ALS, popularity), but the
autoencoders and the title model have one dense output unit per item, and their memory and time per
update grow with it. MMCF keeps every track in >= 5 and every artist in >= 3 training playlists, and
so does this at every size. The counts once shrank with the data (2 below 400K playlists); at 100K
realistic playlists that made 326K output units, 61% of them items of 2-4 training playlists, which
held 0.08% of MMCF's top-500 entries and none of its 218,906 hits, but most of the cost of an update.
MMCF's counts there (126K units) halve an epoch and, in the same time budget, lift validation
R-precision 0.183 -> 0.195 (bench/RESULTS.md); the withheld tracks the vocabulary reaches fall from
87% to 83% of validation's (91% for every track seen). A fixed budget instead (400 MB: 32K tracks
whatever the data) had left 74% reachable at 100K. The rule's memory is computed before training;
past `memory_mb` the counts rise until it fits, tracks taking up to TRACK_SHARE of it (one count for
both had let artists take most of a budget), and the log says so. Tracks outside the vocabulary
still reach the final lists through the sparse sources and the reranker.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.io import load_npz, save_npz
from common.sparse import column_counts
from preprocess.artifacts import PlaylistSet

log = logging.getLogger("mmcf")
FILE = "dense.npz"
TRACK_SHARE = 0.75  # of the budget's items, at most, for tracks; artists take the rest (20K: 2/3 tracks)


@dataclass
class DenseVocab:
    tracks: np.ndarray  # int32 [Kt] catalogue track ids, most frequent first (dense track i = tracks[i])
    artists: np.ndarray  # int32 [Ka] catalogue artist ids, most frequent first
    track_count: np.ndarray  # int64 [Kt] training playlists holding each dense track
    n_catalogue_tracks: int
    n_catalogue_artists: int
    min_count: int  # c: every track in at least this many training playlists is in
    n_train: int  # training playlists it was chosen from (track_count / n_train = frequency)
    artist_min_count: int | None = None  # c' for artists (None: the same as the tracks')

    def __post_init__(self) -> None:
        if self.artist_min_count is None:
            self.artist_min_count = self.min_count

    @property
    def track_prior(self) -> np.ndarray:
        """Training frequency of each dense track: the output for an empty input (popularity)."""
        return self.track_count / max(self.n_train, 1)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks)

    @property
    def n_items(self) -> int:
        return len(self.tracks) + len(self.artists)

    def view(self, ps: PlaylistSet) -> PlaylistSet:
        """ps with its track and artist columns restricted to this vocabulary and renumbered (dense
        ids); positions, holdouts and per-playlist counts are kept, so n_holdouts still counts
        withheld tracks outside it (the metrics stay honest)."""
        if ps.tracks.shape[1] != self.n_catalogue_tracks or ps.artists.shape[1] != self.n_catalogue_artists:
            raise PipelineError(f"dense vocabulary: playlists have {ps.tracks.shape[1]} tracks and "
                                f"{ps.artists.shape[1]} artists, the vocabulary was chosen from "
                                f"{self.n_catalogue_tracks} and {self.n_catalogue_artists}; retrain")
        t_new = _new_ids(self.tracks, self.n_catalogue_tracks)
        a_new = _new_ids(self.artists, self.n_catalogue_artists)
        out = ps.subset(np.arange(len(ps)))
        out.tracks, out.holdout = (_restrict(m, t_new, self.n_tracks) for m in (ps.tracks, ps.holdout))
        out.artists, out.holdout_artists = (_restrict(m, a_new, len(self.artists))
                                            for m in (ps.artists, ps.holdout_artists))
        return out

    def catalogue_ids(self, ids: np.ndarray) -> np.ndarray:
        """Dense track ids -> catalogue track ids (-1 stays -1)."""
        ids = np.asarray(ids)
        return np.where(ids >= 0, self.tracks[np.maximum(ids, 0)], -1).astype(np.int32)

    def save(self, folder: Path) -> None:
        save_npz(Path(folder) / FILE, tracks=self.tracks, artists=self.artists, track_count=self.track_count,
                 shape=np.array([self.n_catalogue_tracks, self.n_catalogue_artists, self.min_count, self.n_train,
                                 self.artist_min_count]))

    @staticmethod
    def load(folder: Path) -> "DenseVocab":
        z = load_npz(Path(folder) / FILE)
        try:
            n_t, n_a, c, n_train, *c_artists = (int(v) for v in z["shape"])  # files before c' hold 4
            return DenseVocab(z["tracks"].astype(np.int32), z["artists"].astype(np.int32),
                              z["track_count"].astype(np.int64), n_t, n_a, c, n_train, *c_artists)
        except (KeyError, ValueError):
            raise PipelineError(f"{Path(folder) / FILE}: expected tracks, artists, track_count and shape "
                                "arrays; retrain") from None


def bytes_per_item(hidden: int, batch: int, sampled: bool) -> int:
    """Training memory per output unit of the largest dense model, the untied autoencoder: two
    [N, hidden] fp32 weights, their gradients and Adam's two moments (8 x hidden x 4 bytes), and
    with the full loss a column of the [batch, N] logits in fp32 plus its bf16 copy (the sampled
    loss's logits cover its few thousand columns only). (The title model's 400-wide dense layer
    with its batch of 150 needs less per item.)"""
    return 8 * hidden * 4 + (0 if sampled else batch * 6)


def choose(train: PlaylistSet, min_counts: tuple[int, int], memory_mb: float, per_item: int,
           track_share: float = TRACK_SHARE) -> DenseVocab:
    """Every track in >= c and every artist in >= c' training playlists, (c, c') = min_counts (MMCF's
    rule: MMCFConfig.min_counts). When those items' training memory would pass
    memory_mb, the counts rise: c to the smallest count whose tracks fit `track_share` of the
    budget, c' to the smallest whose artists fit the rest (logged: the run is narrower than the rule)."""
    t_count, a_count = column_counts(train.tracks), column_counts(train.artists)
    budget_items = int(memory_mb * 2**20 // max(per_item, 1))
    c, c_artists = min_counts
    n_rule = int((t_count >= c).sum() + (a_count >= c_artists).sum())
    if n_rule > budget_items:
        c_fit, n_tracks = _smallest_count(t_count, int(budget_items * track_share))
        if n_tracks == 0:
            raise PipelineError(f"dense vocabulary: a budget of {memory_mb} MB holds {budget_items} items, fewer than "
                                f"the {int((t_count == t_count.max(initial=0)).sum())} most frequent tracks; "
                                "raise dense_memory_mb")
        c = max(c, c_fit)
        c_artists = max(c_artists, _smallest_count(a_count, budget_items - int((t_count >= c).sum()))[0])
        log.info("dense vocabulary: tracks in >= %d and artists in >= %d training playlists are %d items, "
                 "%.0f MB of training memory, past the budget of %g MB: counts raised to %d and %d",
                    *min_counts, n_rule, n_rule * per_item / 2**20, memory_mb, c, c_artists)
    tracks = _most_frequent(t_count, c)
    return DenseVocab(tracks=tracks, artists=_most_frequent(a_count, c_artists),
                      track_count=t_count[tracks].astype(np.int64), n_catalogue_tracks=len(t_count),
                      n_catalogue_artists=len(a_count), min_count=c, n_train=len(train), artist_min_count=c_artists)


def _smallest_count(count: np.ndarray, room: int) -> tuple[int, int]:
    """(c, items with count >= c) for the smallest c >= 1 whose items fit `room` (none may fit)."""
    top = int(count.max(initial=0)) + 2
    fits_at = np.cumsum(np.bincount(count, minlength=top)[::-1])[::-1]  # items with count >= c, for every c
    c = max(1, int(np.argmax(fits_at[1:] <= room)) + 1)
    return c, int(fits_at[c])


def coverage(dense: DenseVocab, val: PlaylistSet, train: PlaylistSet) -> dict[str, float]:
    """Share of the validation playlists' withheld entries that training holds at all (what the
    sparse models can reach) and that the dense vocabulary holds (what the dense models can reach)."""
    total = max(int(val.n_holdouts.sum()), 1)
    held = val.holdout.tocsr().indices
    seen = column_counts(train.tracks) > 0
    return {"trained": round(float(seen[held].sum()) / total, 4),
            "dense": round(float(np.isin(held, dense.tracks).sum()) / total, 4)}


def _most_frequent(count: np.ndarray, c: int) -> np.ndarray:
    ids = np.flatnonzero(count >= c)
    return ids[np.lexsort((ids, -count[ids]))].astype(np.int32)


def _new_ids(ids: np.ndarray, width: int) -> np.ndarray:
    new = np.full(width, -1, dtype=np.int64)
    new[ids] = np.arange(len(ids))
    return new


def _restrict(m: sp.csr_matrix, new_id: np.ndarray, width: int) -> sp.csr_matrix:
    """Columns of m mapped through new_id (-1 = dropped), values kept."""
    m = m.tocsr()
    col = new_id[m.indices]
    keep = col >= 0
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    indptr = np.r_[0, np.cumsum(np.bincount(row, minlength=m.shape[0]))]
    out = sp.csr_matrix((m.data[keep], col[keep].astype(np.int32), indptr), shape=(m.shape[0], width))
    out.sort_indices()
    return out
