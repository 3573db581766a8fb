"""implicit's ALS as a source: its rank chosen on the validation playlists, then refit with it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from baselines.als import ALS, ALSConfig, select_factors
from baselines.models import recommend
from preprocess.artifacts import PlaylistSet
from sources.base import FitContext

FILE = "als.npz"


class ALSSource:
    name = "als"
    section = "als"
    Config = ALSConfig
    stage = "baselines"

    def __init__(self, model: ALS, selected: dict):
        self.model, self.selected = model, selected

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
