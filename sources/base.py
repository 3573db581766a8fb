"""The contract every registered candidate source keeps, one module per model under sources/.

A source is fit on a training PlaylistSet, either choosing its settings on validation playlists
(ctx.val) or refit with what such a fit chose (ctx.selected), saved and loaded, and asked for each
playlist's top k catalogue tracks (seeds never among them). The pipeline fits every source the
config names twice (select on the training playlists, refit on every playlist), the reranker takes
each source's lists and builds its score, rank and ratio features, recommend.py serves the loaded
objects, and tests/test_sources.py checks every registered source against this contract.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from preprocess.artifacts import PlaylistSet


@dataclass
class FitContext:
    track_artist: np.ndarray  # catalogue track -> artist id: the validation metrics' artist credit
    val: PlaylistSet | None = None  # choose settings on these playlists ...
    selected: dict = field(default_factory=dict)  # ... or refit with what a fit on them chose
    work: Path | None = None  # a folder for checkpoints, so interrupted training resumes
    device: str = "cpu"


class Source(Protocol):
    name: ClassVar[str]  # its lists' name and the prefix of its reranker features
    section: ClassVar[str]  # the config section it reads its settings from
    Config: ClassVar[type | None]  # that section's dataclass, when the source owns the section
    stage: ClassVar[str]  # the run stage (and folder) that fits it: "baselines", or its own name
    selected: dict  # what fitting on the training playlists chose on validation (JSON)

    @classmethod
    def fit(cls, train: PlaylistSet, settings: Any, ctx: FitContext) -> "Source": ...

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        """int32 [P, k] catalogue ids, best first, -1 for an empty slot, never a seed; float32 scores."""

    def save(self, folder: Path) -> None: ...

    @classmethod
    def load(cls, folder: Path, train: PlaylistSet, settings: Any, ctx: FitContext) -> "Source": ...


class Fitted:
    """The state most sources hold: one fitted model and what validation chose for it."""

    stage: ClassVar[str] = "baselines"

    def __init__(self, model: Any, selected: dict):
        self.model, self.selected = model, selected
