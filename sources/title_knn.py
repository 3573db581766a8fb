"""Title kNN: the tracks of training playlists whose titles resemble a playlist's title.

Real titles are weak and noisy: a third of real playlists have a title nobody else has, so exact-title
popularity answers few of them, and those it answers it answers from one small group. This source
first folds the forms users write the same title in into one ("Chill Vibes!!", "chilll vibes",
"#chillvibes", "summer '17" / "summer 2k17" / "summer 2017", accents, possessives, plurals), then
compares a title with every distinct training title by TF-IDF cosine over words and character
3-grams (typos and glued words still match, and common words such as "my" or "playlist" weigh
little by their IDF, not by a hand-made list). A title's tracks pool those of its nearest titles:

    score(j) = sum_u sim(q, u)^p * (c_u(j) + m * pop(j) / P) / (n_u + m)

over the `neighbours` most similar titles u, where c_u(j) counts the n_u playlists titled u that
hold j, pop(j) the P training playlists that do: every title group is a small Dirichlet-smoothed
track distribution, so a title held by one playlist says less than one held by a hundred, and the
rest of its weight goes to popularity. The exponent p, the smoothing m and the character share
are chosen on the validation playlists that carry a title (mostly title-only ones); playlists
without a title, or whose title matches nothing, get popularity. Everything is a sparse product
over distinct titles, never a loop over playlists. Settings: the [title_knn] section.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from common.errors import PipelineError
from common.io import load_npz, read_json, save_npz, write_json
from common.metrics import list_metrics, validation_rows
from common.sparse import binary, column_counts, popularity_order
from common.topk import fill_from_order, keep_first
from preprocess.artifacts import PlaylistSet
from preprocess.titles import char_grams, title_tokens
from sources.base import FitContext, Fitted

MODEL, CHOICE = "title_knn.npz", "title_knn.json"
VAL_K = 500  # list depth scored on validation: the challenge's


@dataclass
class TitleKNNConfig:
    # the candidate values validation chooses from (the first of each when there is no validation)
    # at 20K synthetic playlists (three profiles) validation R-precision is flat over the character share,
    # best at p = 2-3 (p = 1: -10%, p = 4: -3%) and m = 20-30 (m = 1: -18%, m = 100: -12%; exact titles alone: -10%)
    char_weight: list[float] = field(default_factory=lambda: [0.3, 0.7])  # similarity share of character 3-grams
    exponent: list[float] = field(default_factory=lambda: [2.0, 3.0])  # p: sharpens similarity toward exact titles
    smoothing: list[float] = field(default_factory=lambda: [10.0, 30.0])  # m: pseudo-playlists of popularity per title
    neighbours: int = 20  # similar training titles pooled per title (10 to 50 within 1%)
    min_similarity: float = 0.1  # weaker matches are noise
    title_tracks: int = 1000  # each training title keeps its most common tracks (bounds the products at 1M)
    val_categories: list[int] = field(default_factory=lambda: [1, 2, 3])  # scored in selection: title, few seeds
    val_playlists: int = 1000  # at most, a fixed sample of them
    batch: int = 1024  # query titles per similarity and scoring block (bounds memory at 1M playlists)

    def __post_init__(self) -> None:
        checks = {"char_weight": bool(self.char_weight) and all(0 <= w <= 1 for w in self.char_weight),
                  "exponent": bool(self.exponent) and all(p > 0 for p in self.exponent),
                  "smoothing": bool(self.smoothing) and all(m >= 0 for m in self.smoothing),
                  "neighbours": self.neighbours > 0, "min_similarity": 0 <= self.min_similarity < 1,
                  "title_tracks": self.title_tracks > 0, "val_categories": bool(self.val_categories),
                  "val_playlists": self.val_playlists > 0, "batch": self.batch > 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PipelineError(f"[title_knn]: out-of-range value(s) for {', '.join(bad)}")


# ---- the title space -------------------------------------------------------------------------
@dataclass
class _Space:
    """One TF-IDF space (words or 3-grams) fit on the training titles, IDF over playlists."""

    index: dict[str, int]
    idf: np.ndarray  # float32 [V]
    unseen_idf: float  # a query token no training title has: counts in the norm, matches nothing

    @classmethod
    def fit(cls, docs: list[list[str]], weight: np.ndarray) -> "_Space":
        index: dict[str, int] = {}
        # tokens in the order they come (dict.fromkeys), never a set's: set order follows Python's
        # per-process string hashing, and the column order sets the float sums and so the ties
        rows = [[index.setdefault(t, len(index)) for t in dict.fromkeys(d)] for d in docs]
        cols = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64)
        df = np.bincount(cols, weights=np.repeat(weight, [len(r) for r in rows]), minlength=len(index))
        total = float(weight.sum())
        return cls(index, np.log1p(total / np.maximum(df, 1.0)).astype(np.float32), float(np.log1p(total)))

    def embed(self, docs: list[list[str]]) -> sp.csr_matrix:
        """Rows of unit length (binary TF times IDF); unseen tokens shorten the seen part."""
        cols, rows, norms = [], [], np.zeros(len(docs), dtype=np.float64)
        for r, d in enumerate(docs):
            for t in dict.fromkeys(d):
                j = self.index.get(t, -1)
                w = self.idf[j] if j >= 0 else self.unseen_idf
                norms[r] += w * w
                if j >= 0:
                    cols.append(j)
                    rows.append(r)
        cols, rows = np.asarray(cols, dtype=np.int64), np.asarray(rows, dtype=np.int64)
        vals = self.idf[cols] / np.sqrt(np.maximum(norms[rows], 1e-12))
        return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(len(docs), len(self.index)))


@dataclass
class _Titles:
    """Distinct keys (the tokens joined by spaces) of a set of titles, each playlist's key row (-1
    without a title), and each key's word and 3-gram tokens."""

    keys: np.ndarray  # str [U]
    of_row: np.ndarray  # int64 [P]
    words: list[list[str]]
    grams: list[list[str]]

    @classmethod
    def of(cls, titles: np.ndarray) -> "_Titles":
        stored, inverse = np.unique(np.asarray(titles, dtype=str), return_inverse=True)
        joined = np.array([" ".join(title_tokens(t)) for t in stored], dtype=str)  # each distinct title once
        keys, key_of = np.unique(joined, return_inverse=True)
        of_row = np.where(joined[inverse] != "", key_of[inverse], -1)
        return cls.from_keys(keys, of_row)

    @classmethod
    def from_keys(cls, keys: np.ndarray, of_row: np.ndarray) -> "_Titles":
        tokens = [tuple(k.split(" ")) if k else () for k in keys]
        return cls(keys, of_row, [list(t) for t in tokens], [char_grams(t) for t in tokens])


# ---- the model -------------------------------------------------------------------------------
class TitleKNN:
    """The distinct training titles (keys), their playlist counts n_u, their track counts c_u(j) and
    the tracks' playlist counts; `candidates` scores query titles against them."""

    def __init__(self, keys: np.ndarray, size: np.ndarray, counts: sp.csr_matrix, pop: np.ndarray, n_playlists: int,
                 cfg: TitleKNNConfig):
        self.cfg, self.keys, self.size, self.counts, self.pop, self.n_playlists = cfg, keys, size, counts, pop, n_playlists
        titles = _Titles.from_keys(keys, np.arange(len(keys)))
        self.words, self.grams = _Space.fit(titles.words, size), _Space.fit(titles.grams, size)
        self.word_rows, self.gram_rows = self.words.embed(titles.words), self.grams.embed(titles.grams)
        self.prior = pop / max(n_playlists, 1)  # pop(j) / P
        self.order = popularity_order(pop)

    @classmethod
    def build(cls, train: PlaylistSet, cfg: TitleKNNConfig) -> "TitleKNN":
        titles = _Titles.of(train.title)
        rows = np.flatnonzero(titles.of_row >= 0)
        group = sp.csr_matrix((np.ones(len(rows), np.float32), (titles.of_row[rows], rows)),
                              shape=(len(titles.keys), len(train)))
        size = np.asarray(group.sum(axis=1), dtype=np.float64).ravel()
        counts = _keep_top(group @ binary(train.tracks), cfg.title_tracks)
        return cls(titles.keys, size, counts, column_counts(train.tracks).astype(np.float64), len(train), cfg)

    def save(self, path: Path) -> None:
        c = self.counts
        save_npz(path, keys=self.keys, size=self.size, pop=self.pop, n_playlists=np.int64(self.n_playlists),
                 counts_data=c.data, counts_indices=c.indices, counts_indptr=c.indptr, counts_shape=np.asarray(c.shape))

    @classmethod
    def load(cls, path: Path, cfg: TitleKNNConfig) -> "TitleKNN":
        z = load_npz(path)
        try:
            counts = sp.csr_matrix((z["counts_data"], z["counts_indices"], z["counts_indptr"]),
                                   shape=tuple(int(n) for n in z["counts_shape"]))
            return cls(z["keys"], z["size"], counts, z["pop"], int(z["n_playlists"]), cfg)
        except KeyError as exc:
            raise PipelineError(f"{path}: missing array {exc}") from None

    def similarity(self, query: _Titles, char_weight: float) -> sp.csr_matrix:
        """[U_query, U_train] cosines, each row cut to its `neighbours` best at or above `min_similarity`."""
        qw, qg = self.words.embed(query.words), self.grams.embed(query.grams)
        blocks = []
        for start in range(0, len(query.keys), self.cfg.batch):
            end = min(start + self.cfg.batch, len(query.keys))
            s = (1 - char_weight) * (qw[start:end] @ self.word_rows.T) + char_weight * (qg[start:end] @ self.gram_rows.T)
            blocks.append(_keep_top(_at_least(s.tocsr(), self.cfg.min_similarity), self.cfg.neighbours))
        return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, len(self.size)), dtype=np.float32)

    def candidates(self, sim: sp.csr_matrix, exponent: float, smoothing: float, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query title's `depth` best tracks (ids [U, depth], scores) by the pooled, smoothed
        counts of its neighbours; a row without neighbours gets popularity. The popularity head is
        always a candidate, so no track that smoothing ranks high is missed, and its lowest score is a
        floor below which no other track can reach the list (which keeps the sort small)."""
        w = sim.power(exponent).tocsr()
        shrink = 1.0 / (self.size + smoothing)
        evidence = (w @ sp.diags(shrink.astype(np.float32)) @ self.counts).tocsr()
        prior_weight = smoothing * (w @ shrink)  # sum_u sim^p m / (n_u + m)
        prior_weight[np.diff(w.indptr) == 0] = 1.0  # no neighbour: popularity alone
        head = self.order[:depth]
        head_score = prior_weight[:, None] * self.prior[head][None, :] + evidence[:, head].toarray()
        in_head = np.zeros(len(self.prior), dtype=bool)
        in_head[head] = True
        row = np.repeat(np.arange(sim.shape[0]), np.diff(evidence.indptr))
        score = evidence.data + prior_weight[row] * self.prior[evidence.indices]
        keep = ~in_head[evidence.indices] & (score >= head_score.min(axis=1, initial=np.inf)[row])
        n = sim.shape[0]
        return _row_top(np.concatenate([row[keep], np.repeat(np.arange(n), len(head))]),
                        np.concatenate([evidence.indices[keep], np.tile(head, n)]),
                        np.concatenate([score[keep], head_score.ravel()]), n, depth)

    def top(self, ps: PlaylistSet, k: int, choice: dict) -> tuple[np.ndarray, np.ndarray]:
        """Per playlist: its title's candidates without its seeds, then popularity for empty slots."""
        query = _Titles.of(np.where(ps.has_title, ps.title, ""))
        n_seeds = np.diff(ps.tracks.indptr)
        depth = min(k + int(n_seeds.max(initial=0)), len(self.prior))
        sim = self.similarity(query, choice["char_weight"])
        sim = sp.vstack([sim, sp.csr_matrix((1, sim.shape[1]), dtype=np.float32)], format="csr")  # the untitled row
        # in blocks of query titles: a block's pooled evidence holds up to neighbours x title_tracks per row
        parts = [self.candidates(sim[a:a + self.cfg.batch], choice["exponent"], choice["smoothing"], depth)
                 for a in range(0, sim.shape[0], self.cfg.batch)]
        ids, scores = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        ids, scores = ids[query.of_row], scores[query.of_row]  # -1 (no title) takes the last, untitled row
        seeds = ps.tracks.tocsr()
        seed_keys = np.repeat(np.arange(len(ps), dtype=np.int64), n_seeds) * len(self.prior) + seeds.indices
        drop = (ids < 0) | np.isin(np.arange(len(ps), dtype=np.int64)[:, None] * len(self.prior) + ids, seed_keys)
        ids, scores = keep_first(ids, scores, drop, k)
        fill_from_order(ids, scores, ps.tracks, self.order, np.float32(-1.0))  # a catalogue smaller than the lists
        return ids, scores


def _at_least(m: sp.csr_matrix, floor: float) -> sp.csr_matrix:
    m.data[m.data < floor] = 0
    m.eliminate_zeros()
    return m


def _keep_top(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's k largest entries (ties by column id), still sparse."""
    m = m.tocsr()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, row))
    rank = np.arange(len(order)) - np.searchsorted(row[order], row[order])
    keep = np.sort(order[rank < k])
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)


def _row_top(row: np.ndarray, col: np.ndarray, score: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense [n, k] best (col, score) per row of a coordinate list, ties by column id; -1 / -inf pad."""
    order = np.lexsort((col, -score, row))
    row, col, score = row[order], col[order], score[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    sel = rank < k
    ids = np.full((n, k), -1, dtype=np.int64)
    out = np.full((n, k), -np.inf, dtype=np.float64)
    ids[row[sel], rank[sel]] = col[sel]
    out[row[sel], rank[sel]] = score[sel]
    return ids, out


def select(model: TitleKNN, val: PlaylistSet, track_artist: np.ndarray, cfg: TitleKNNConfig) -> dict:
    """The grid's best validation R-precision on title-bearing playlists of `val_categories`
    (ties: the earlier grid point). Title-only and few-seed playlists are where a title is most of
    what is known; the grid is small (8 points, about 4 s at 20K playlists on one core)."""
    rows = validation_rows(val.category, val.has_title & (val.title != "") & (val.n_holdouts > 0),
                           cfg.val_categories, cfg.val_playlists, seed=0)
    sub = val.subset(rows)
    best, tried = None, {}
    for w in cfg.char_weight:
        for p, m in itertools.product(cfg.exponent, cfg.smoothing):
            choice = {"char_weight": w, "exponent": p, "smoothing": m}
            r_prec = float(np.nanmean(list_metrics(model.top(sub, VAL_K, choice)[0], sub, track_artist)["r_precision"]))
            tried[f"w={w:g} p={p:g} m={m:g}"] = round(r_prec, 4)
            if best is None or r_prec > best[0]:
                best = (r_prec, choice)
    return best[1] | {"validation_r_precision": tried}


class TitleKNNSource(Fitted):
    name = section = "title_knn"
    Config = TitleKNNConfig

    @classmethod
    def fit(cls, train: PlaylistSet, settings: TitleKNNConfig, ctx: FitContext) -> "TitleKNNSource":
        model = TitleKNN.build(train, settings)
        if ctx.selected:
            return cls(model, ctx.selected)
        if ctx.val is None:  # nothing to choose on: the first of each list
            return cls(model, {"char_weight": settings.char_weight[0], "exponent": settings.exponent[0],
                               "smoothing": settings.smoothing[0]})
        return cls(model, select(model, ctx.val, ctx.track_artist, settings))

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.model.top(ps, k, self.selected)

    def save(self, folder: Path) -> None:
        self.model.save(Path(folder) / MODEL)
        write_json(Path(folder) / CHOICE, self.selected)

    @classmethod
    def load(cls, folder: Path, train: PlaylistSet, settings: TitleKNNConfig, ctx: FitContext) -> "TitleKNNSource":
        return cls(TitleKNN.load(Path(folder) / MODEL, settings), read_json(Path(folder) / CHOICE))


SOURCES = [TitleKNNSource]
