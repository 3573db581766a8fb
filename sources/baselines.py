"""The sparse baselines as sources: popularity, title popularity, item kNN and artist kNN.

Each is built from the training playlists in seconds, so fitting is building, nothing is saved,
and loading builds again from the playlists it was fit on. Settings: the [baselines] section."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from baselines.models import ArtistKNN, BaselineConfig, ItemKNN, Popularity, TitlePopularity, recommend
from preprocess.artifacts import PlaylistSet
from sources.base import FitContext


class _Built:
    section: ClassVar[str] = "baselines"
    Config: ClassVar[type | None] = None  # [baselines] belongs to the pipeline's own sections
    stage: ClassVar[str] = "baselines"
    name: ClassVar[str]

    def __init__(self, model: Any, settings: BaselineConfig):
        self.model, self.batch, self.threads, self.selected = model, settings.batch, settings.threads, {}

    @staticmethod
    def build(train: PlaylistSet, settings: BaselineConfig) -> Any:
        raise NotImplementedError

    @classmethod
    def fit(cls, train: PlaylistSet, settings: BaselineConfig, ctx: FitContext) -> "_Built":
        return cls(cls.build(train, settings), settings)

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        return recommend(self.model, ps, k=k, batch=self.batch, threads=self.threads)

    def save(self, folder: Path) -> None:
        """Nothing to keep: the model is its training playlists."""

    @classmethod
    def load(cls, folder: Path, train: PlaylistSet, settings: BaselineConfig, ctx: FitContext) -> "_Built":
        return cls.fit(train, settings, ctx)


class PopularitySource(_Built):
    name = "popularity"

    @staticmethod
    def build(train: PlaylistSet, settings: BaselineConfig) -> Popularity:
        return Popularity(train)


class TitlePopularitySource(_Built):
    name = "title_popularity"

    @staticmethod
    def build(train: PlaylistSet, settings: BaselineConfig) -> TitlePopularity:
        return TitlePopularity(train, Popularity(train), settings)


class ItemKNNSource(_Built):
    name = "item_knn"

    @staticmethod
    def build(train: PlaylistSet, settings: BaselineConfig) -> ItemKNN:
        return ItemKNN(train, Popularity(train), settings)


class ArtistKNNSource(_Built):
    name = "artist_knn"

    @staticmethod
    def build(train: PlaylistSet, settings: BaselineConfig) -> ArtistKNN:
        return ArtistKNN(train, Popularity(train), settings)


SOURCES = [PopularitySource, TitlePopularitySource, ItemKNNSource, ArtistKNNSource]
