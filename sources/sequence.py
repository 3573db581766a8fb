"""An order-aware sequence model from the session-based family the lecture covers (GRU4Rec, SASRec).

Seven of the ten challenge categories give a playlist's first tracks in order, and playlists are
built in order (a mood drifts, an album plays through), which the autoencoder, kNN and ALS all
ignore: they see a set. This model reads a playlist's tracks in position order and learns to
predict the next one: a GRU (GRU4Rec) or causal self-attention (SASRec) over track embeddings,
scored against the same embeddings (tied), trained with a sampled softmax (each batch shares
`negatives` tracks drawn by popularity^0.75, with the logQ correction) and sparse embedding updates,
so an update costs the same whatever the catalogue's size.
The vocabulary is the dense models' rule (mmcf/dense.py): every track in >= c training playlists
for the smallest c that fits `memory_mb` (at 20K realistic playlists c = 2: 72K of the 324K
tracks; a track in one playlist gives its embedding one context to learn from). Updates are
budgeted; validation R-precision selects the kept weights, and the refit on every playlist trains
for the selected number. At inference the last `max_len` seeds (in position order) give the state
whose scores rank the catalogue; playlists without a known seed get popularity.

This module is what the registry reads (the source's name, stage and settings, from
sources/_sequence_data.py with its numpy batches); the network, its training and its scoring are in
sources/_sequence_net.py, imported when the source is fit or loaded, so commands that only read a
config never import torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from preprocess.artifacts import PlaylistSet
from sources._sequence_data import SequenceConfig
from sources.base import FitContext


class SequenceSource:
    name = "sequence"
    section = "sequence"
    Config = SequenceConfig
    stage = "sequence"

    @classmethod
    def fit(cls, train: PlaylistSet, settings: SequenceConfig, ctx: FitContext) -> Any:
        from sources._sequence_net import fit
        return fit(train, settings, ctx)

    @classmethod
    def load(cls, folder: Path, train: PlaylistSet, settings: SequenceConfig, ctx: FitContext) -> Any:
        from sources._sequence_net import load
        return load(folder, train, settings, ctx)


SOURCES = [SequenceSource]
