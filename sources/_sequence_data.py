"""The sequence source's settings and its batches (playlists as position-ordered id runs, crops
of them): numpy only, so that the registry (sources/sequence.py) reads the settings without torch,
and the network (sources/_sequence_net.py) builds its batches from the same code."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.errors import PipelineError
from preprocess.artifacts import PlaylistSet


@dataclass
class SequenceConfig:
    # "gru" (GRU4Rec) or "sasrec" (causal self-attention, 2 blocks). At 20K realistic playlists, 1,000
    # updates on one core: GRU 0.141 validation R-precision at 9 updates/s, SASRec 0.082 at 5/s
    arch: str = "gru"
    dim: int = 64  # embedding and state width
    max_len: int = 50  # tracks read per playlist: a training crop, the last seeds at inference
    negatives: int = 1024  # tracks (drawn by count^0.75) each batch scores the next track against
    dropout: float = 0.2
    batch: int = 128
    lr: float = 0.005
    updates: int = 1000  # Adam updates (budget updates, not epochs)
    eval_every: int = 250  # updates between validation checks (selection)
    val_playlists: int = 500  # validation playlists per check, at most (those with seeds)
    memory_mb: float = 100.0  # the vocabulary's budget: embeddings and Adam state (c = 2 at 20K playlists)
    threads: int = 0  # torch threads while training; 0 = torch's default
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {"arch": self.arch in ("gru", "sasrec"), "dim": self.dim > 0 and self.dim % 2 == 0,
                  "max_len": self.max_len > 1, "negatives": self.negatives > 0, "batch": self.batch > 0,
                  "dropout": 0 <= self.dropout < 1, "lr": self.lr > 0, "updates": self.updates >= 0,
                  "eval_every": self.eval_every > 0, "val_playlists": self.val_playlists > 0,
                  "memory_mb": self.memory_mb > 0, "threads": self.threads >= 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PipelineError(f"[sequence]: out-of-range value(s) for {', '.join(bad)}")


def sequences(ps: PlaylistSet) -> tuple[np.ndarray, np.ndarray]:
    """Each playlist's tracks (in ps's columns) in position order: (indptr [P + 1], ids [N] + 1)."""
    m = ps.tracks.tocsr()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.data, row))
    return m.indptr.astype(np.int64), m.indices[order].astype(np.int64) + 1


def crops(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, length: int,
          rng: np.random.Generator | None, last: bool = False) -> np.ndarray:
    """int64 [len(rows), length] right-padded windows of consecutive tracks: a random window of each
    playlist (its start half the time, so the first tracks, which 7 categories give, are well
    learnt), or with `last` the final `length` tracks."""
    n = indptr[rows + 1] - indptr[rows]
    room = np.maximum(n - length, 0)
    if last:
        start = room
    else:
        start = np.where(rng.random(len(rows)) < 0.5, 0, np.floor(rng.random(len(rows)) * (room + 1)).astype(np.int64))
    take = np.minimum(n - start, length)
    pos = np.arange(length)[None, :]
    ok = pos < take[:, None]
    out = np.zeros((len(rows), length), dtype=np.int64)
    out[ok] = items[((indptr[rows] + start)[:, None] + pos)[ok]]
    return out
