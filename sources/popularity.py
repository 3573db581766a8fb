"""Popularity as a source: tracks ranked by the number of training playlists holding them, the floor
every model is compared with. The model itself (sources/sparse.py) is also the fallback below every
other sparse source's scored tracks and the filler of short lists."""
from __future__ import annotations

from preprocess.artifacts import PlaylistSet
from sources.sparse import BaselineConfig, Popularity, SparseSource


class PopularitySource(SparseSource):
    name = "popularity"

    @classmethod
    def build(cls, train: PlaylistSet, settings: BaselineConfig) -> Popularity:
        return Popularity(train)


SOURCES = [PopularitySource]
