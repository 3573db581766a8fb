"""Matrix factorisation (implicit's ALS): the strongest simple baseline, and a candidate source:
its rank chosen on the validation playlists, then refit with it.

The 1st place's main candidate generator was weighted matrix factorisation; on real MPD playlists
plain ALS over every track and playlist beat our first release. implicit is the field's maintained
ALS (a conjugate-gradient solver with native threads, and CUDA where built with it), so we use it
rather than write our own. Playlists outside training are folded in from their seeds (one
least-squares solve against the fixed item factors, implicit's `recalculate_user`), the standard
way to serve new users; a playlist without a seed in the catalogue gets popularity.

The rank matters (real data at 7K playlists: R-precision +14% from 32 to 256 factors) and depends
on the data, so `select_factors` picks it on the validation playlists. A fit's cost grows with the
rank and the data (at 100K playlists four ranks took 580 s, the last 175 s alone, and 32 won), so the
search climbs from the smallest rank and stops at the first that does not gain or whose projected
cost would overrun a time budget: one rule from 20K playlists to 1M.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from common.errors import PipelineError
from common.io import load_npz, save_npz
from common.metrics import list_metrics
from common.sparse import binary, column_counts
from preprocess.artifacts import PlaylistSet
from sources.base import FitContext, Fitted
from sources.sparse import recommend

log = logging.getLogger("als")


@dataclass
class ALSConfig:
    factors: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # the best on validation is kept
    # the rank search's time budget (fits and validation lists): a rank whose projected cost (the last
    # one's, scaled by the rank ratio) would overrun it is not tried. All four ranks took 100 s at 20K
    # playlists and 854 s at 300K on 2 cores (each gaining: 256 won, 9% above 64), about 2,100 s at 1M
    # by the fits' growth; a tighter budget would hand the baseline a weaker rank there
    search_seconds: float = 3600.0
    alpha: float = 20.0  # confidence of an observed entry: 1 + alpha
    regularization: float = 0.05
    iterations: int = 15
    threads: int = 0  # implicit's threads; 0 = one per core
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.factors or min(self.factors) < 1 or self.alpha <= 0 or self.regularization < 0 \
                or self.iterations < 1 or self.threads < 0 or self.search_seconds <= 0:
            raise PipelineError("[als]: factors must be >= 1, alpha > 0, regularization >= 0, iterations >= 1, "
                                "search_seconds > 0")


class ALS:
    """Item factors [T, f] of a fitted implicit ALS model; scores = folded-in playlist factors . items."""

    name = "als"

    def __init__(self, item_factors: np.ndarray, popularity: np.ndarray, cfg: ALSConfig):
        self.cfg = cfg
        self.factors = item_factors.shape[1]
        self.prior = (popularity / max(float(popularity.max(initial=0.0)), 1.0)).astype(np.float32)
        self._model = _implicit_als(self.factors, cfg)  # folds playlists in over the fitted item factors
        self._model.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)

    @classmethod
    def fit(cls, train: PlaylistSet, factors: int, cfg: ALSConfig) -> "ALS":
        x = binary(train.tracks)
        model = _implicit_als(factors, cfg)
        _start_factors(model, x.shape, cfg.seed)
        with threadpool_limits(1, "blas"):  # implicit's own threads; a threaded BLAS beside them only slows it
            model.fit(x, show_progress=False)
        return cls(model.item_factors, column_counts(x).astype(np.float32), cfg)

    def playlist_factors(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        """[len(rows), f] least-squares factors of each playlist from its seed tracks (0 without seeds)."""
        seeds = binary(ps.tracks[rows])
        with threadpool_limits(1, "blas"):
            return self._model.recalculate_user(np.arange(len(rows)), seeds)

    def score(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
        """Dense [len(rows), T] scores: factor products, or the popularity prior for playlists
        without a seed in the catalogue (their factors would be 0 and rank nothing)."""
        rows = np.asarray(rows)
        scores = self.playlist_factors(ps, rows) @ self._model.item_factors.T
        cold = np.diff(ps.tracks[rows].indptr) == 0
        scores[cold] = self.prior
        return scores

    def save(self, path: Path) -> None:
        save_npz(path, item_factors=self._model.item_factors, popularity=self.prior)

    @classmethod
    def load(cls, path: Path, cfg: ALSConfig) -> "ALS":
        z = load_npz(path)
        try:
            return cls(z["item_factors"], z["popularity"], cfg)
        except KeyError as exc:
            raise PipelineError(f"{path}: missing array {exc}") from None


def select_factors(train: PlaylistSet, val: PlaylistSet, track_artist: np.ndarray, cfg: ALSConfig,
                   batch: int = 512) -> tuple[ALS, list[dict]]:
    """Fit the candidate ranks on `train` from the smallest up and keep the best validation
    R-precision. The climb stops at the first rank that does not beat the best so far (R-precision
    rises with the rank until the data cannot fill it, then falls), or before a rank whose projected
    time would overrun `cfg.search_seconds`. Returns the kept model and a row per rank tried (factors,
    fit and total seconds, R-precision, NDCG)."""
    best, table, began = None, [], time.perf_counter()
    ranks = sorted(set(cfg.factors))
    for i, factors in enumerate(ranks):
        start = time.perf_counter()
        model = ALS.fit(train, factors, cfg)
        fit_s = time.perf_counter() - start
        m = list_metrics(recommend(model, val, k=500, batch=batch)[0], val, track_artist)
        row = {"factors": factors, "fit_seconds": round(fit_s, 1), "seconds": round(time.perf_counter() - start, 1),
               "r_precision": float(np.nanmean(m["r_precision"])), "ndcg": float(np.nanmean(m["ndcg"]))}
        table.append(row)
        log.info("als %d factors: fit %.1f s, validation R-precision %.4f NDCG %.4f", factors, fit_s,
                 row["r_precision"], row["ndcg"])
        if best is not None and row["r_precision"] <= best[0]:
            log.info("als: %d factors do not beat %d; the search stops", factors, best[1].factors)
            break
        best = (row["r_precision"], model)
        if i + 1 < len(ranks):
            projected = row["seconds"] * ranks[i + 1] / factors
            if time.perf_counter() - began + projected > cfg.search_seconds:
                log.info("als: %d factors would take about %.0f s more, past the search budget of %.0f s; "
                         "the search stops", ranks[i + 1], projected, cfg.search_seconds)
                break
    return best[1], table


def _start_factors(model, shape: tuple[int, int], seed: int) -> None:
    """implicit's own starting factors (its generator, users then items, times 0.01), scaled in
    place: its `random(...) * 0.01` holds a second copy of each, 4 GB of item factors at 1M playlists
    and the 256-factor rank, at the moment the fit's other arrays are all held."""
    rng = np.random.default_rng(seed)
    for attr, n in (("user_factors", shape[0]), ("item_factors", shape[1])):
        start = rng.random((n, model.factors), dtype=model.dtype)
        start *= 0.01
        setattr(model, attr, start)


def _implicit_als(factors: int, cfg: ALSConfig):
    """implicit's CPU ALS with the [als] settings. Imported before the BLAS limit is entered: a limit
    applies only to libraries already loaded, and implicit checks the BLAS threads when built (and
    warns at 2)."""
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):
        return AlternatingLeastSquares(factors=factors, regularization=cfg.regularization, alpha=cfg.alpha,
                                       iterations=cfg.iterations, num_threads=cfg.threads, random_state=cfg.seed,
                                       calculate_training_loss=False)


FILE = "als.npz"


class ALSSource(Fitted):
    name = section = "als"
    Config = ALSConfig

    @classmethod
    def fit(cls, train: PlaylistSet, settings: ALSConfig, ctx: FitContext) -> "ALSSource":
        if ctx.selected:
            return cls(ALS.fit(train, ctx.selected["factors"], settings), ctx.selected)
        if ctx.val is None:  # nothing to choose on: the first rank listed
            return cls(ALS.fit(train, settings.factors[0], settings), {"factors": settings.factors[0]})
        model, table = select_factors(train, ctx.val, ctx.track_artist, settings)
        tried = {row["factors"]: round(row["r_precision"], 4) for row in table}
        return cls(model, {"factors": model.factors, "validation_r_precision": tried})

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return recommend(self.model, ps, k=k)

    def save(self, folder: Path) -> None:
        self.model.save(Path(folder) / FILE)

    @classmethod
    def load(cls, folder: Path, train: PlaylistSet, settings: ALSConfig, ctx: FitContext) -> "ALSSource":
        model = ALS.load(Path(folder) / FILE, settings)
        return cls(model, {"factors": model.factors})


SOURCES = [ALSSource]
