"""The [preprocess] section, apart from the stage that reads it: every config load needs the
dataclass, and the stage itself imports pandas and the slice readers."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from common.errors import PipelineError


@dataclass
class BuildConfig:
    """[preprocess] section of a config file."""

    # The catalogue: every track and artist of the playlists that train the final models (training
    # + validation). MMCF's 5 / 3 were set for 1M playlists; at 10K-100K they cut a quarter of the
    # reachable answers. The dense models choose their own, budgeted vocabulary (mmcf/dense.py).
    min_track_count: int = 1  # a track is kept if this many playlists contain it
    min_artist_count: int = 1  # an artist is kept if it has this many entries
    max_train_len: int = 250  # training playlists with more kept tracks are skipped
    val_per_category: int = 200  # validation playlists per challenge category (0: none)
    seed: int = 0
    workers: int = 2  # processes parsing slices

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            lowest = 1 if f.name in ("min_track_count", "min_artist_count", "max_train_len") else 0
            if f.name != "seed" and getattr(self, f.name) < lowest:
                raise PipelineError(f"[preprocess]: {f.name} must be >= {lowest}, got {getattr(self, f.name)}")
