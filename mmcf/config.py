"""The autoencoder stage's settings, filled from the `[mmcf]` section of a pipeline TOML.

The four denoising schemes of SPEC section 2 are rows of one table (`schemes`), not four
copies of the stage; everything they share lives once on `MMCFConfig`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from common.config import from_dict
from common.errors import PipelineError
from common.categories import BY_ID

FIRST_N_KINDS = ("fraction", "count")
PRECISIONS = ("auto", "fp32", "bf16")
INITS = ("glorot", "svd")


@dataclass
class SchemeConfig:
    """One denoising scheme: which categories it serves and how its training inputs are cut.

    first_n = "fraction": the input is the first floor(f * num_tracks) tracks, f ~ U(first_n_range);
    first_n = "count": the first n tracks, n an integer drawn uniformly from first_n_range (inclusive).
    The whole playlist is "fraction" with range [1, 1].
    """

    name: str
    categories: list[int]
    first_n: str = "fraction"
    first_n_range: list[float] = field(default_factory=lambda: [1.0, 1.0])
    keep_range: list[float] = field(default_factory=lambda: [0.75, 0.75])  # input keep prob ~ U(range) per batch
    untied: bool = True  # after the tied phase, train an untied copy started from the best tied weights
    tied_updates: int = 1000  # Adam updates of the tied phase (budget updates, not epochs)
    untied_updates: int = 500
    hide_and_seek: bool = True  # per batch a coin feeds tracks or artists; False feeds tracks every batch


def default_schemes() -> list[SchemeConfig]:
    """SPEC section 2's table; the update budgets fill what a 15-minute default run on 2 CPU cores
    leaves them (bf16 matmuls). At 20K realistic playlists the selection score still rises at the end
    of the long-seed schemes' phases (1.5x their updates: +3% validation R-precision, while a 50%
    larger vocabulary gave nothing), and 0to1_inorder is flat from 600 updates on."""
    return [
        SchemeConfig("0to1_inorder", [1, 2], "fraction", [0.0, 0.3], [0.75, 0.75], untied=False,
                     tied_updates=800, untied_updates=0),
        SchemeConfig("5_inorder", [3, 4], "count", [1, 50], [0.75, 0.75], untied=True,
                     tied_updates=750, untied_updates=250),
        SchemeConfig("10to100_inorder", [5, 6, 7, 9], "fraction", [0.3, 0.6], [0.75, 0.75], untied=True,
                     tied_updates=1000, untied_updates=250),
        SchemeConfig("25to100_random", [8, 10], "fraction", [1.0, 1.0], [0.5, 0.8], untied=True,
                     tied_updates=1000, untied_updates=250),
    ]


@dataclass
class MMCFConfig:
    hidden: int = 256
    hidden_keep: float = 0.8  # dropout keep on the hidden layer while training
    neg_weight: float = 0.55  # weight of the y = 0 term of the binary cross-entropy
    batch_size: int = 250
    # SPEC: 0.01 / 0.005. At 20K playlists a Glorot-initialised tied model leaves the popularity
    # plateau after ~1,100 updates at 0.01 and ~600 at 0.03 (bench/results/dae.md); the CPU default
    # triples both (and starts from the principal subspace, init = "svd").
    tied_lr: float = 0.03
    untied_lr: float = 0.015
    eval_every: int = 200  # updates between validation checks = model selection + checkpoint ("an epoch")
    val_playlists: int = 1000  # validation playlists per check (a fixed seeded subset of the scheme's categories)
    init: str = "svd"  # "glorot", or "svd": W starts in the inputs' principal subspace (mmcf/model.py init_principal)
    init_row_norm: float = 2.7  # "svd" only: RMS norm of W's rows at the start
    threads: int = 0  # torch intra-op threads while this stage runs; 0 = torch's default (one per core)
    precision: str = "auto"  # training matmuls: "fp32", "bf16", or "auto" = bf16 where the hardware has fast bf16
    seed: int = 0
    track_weight: float = 1.0  # inference: weight of a seed track
    artist_weight: float = 0.5  # inference: weight of a seed track's artist
    long_seeds: int = 50  # inference: in-order seed lists longer than this are recency-weighted ...
    recent_seeds: int = 15  # ... the last `recent_seeds` keep track_weight ...
    early_weight: float = 0.15  # ... and the earlier ones weigh this much
    predict_batch: int = 500  # playlists per dense [B, tracks + artists] block at inference
    # Training memory of the largest autoencoder (mmcf/dense.py): it sets the dense vocabulary, every
    # item in >= c training playlists for the smallest c that fits. Time per update grows with it too.
    dense_memory_mb: float = 400.0
    # Every scheme's update budgets are multiplied by this: a smoke test, a rehearsal or mmcf.toml
    # scales them without copying the scheme table (the full MPD's budgets differ in their ratios,
    # so configs/full_mpd.toml states its own).
    updates_scale: float = 1.0
    schemes: list[SchemeConfig] = field(default_factory=default_schemes)

    def __post_init__(self) -> None:
        checks = {"hidden": self.hidden > 0, "hidden_keep": 0 < self.hidden_keep <= 1,
                  "neg_weight": self.neg_weight > 0, "batch_size": self.batch_size > 0,
                  "tied_lr": self.tied_lr > 0, "untied_lr": self.untied_lr > 0, "eval_every": self.eval_every > 0,
                  "val_playlists": self.val_playlists > 0, "precision": self.precision in PRECISIONS,
                  "init": self.init in INITS, "init_row_norm": self.init_row_norm > 0, "threads": self.threads >= 0,
                  "long_seeds": self.long_seeds >= 0, "recent_seeds": self.recent_seeds >= 0,
                  "predict_batch": self.predict_batch > 0, "dense_memory_mb": self.dense_memory_mb > 0,
                  "updates_scale": self.updates_scale > 0,
                  "schemes": len(self.schemes) > 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PipelineError(f"[mmcf]: out-of-range value(s) for {', '.join(bad)}")
        self.schemes = [s if isinstance(s, SchemeConfig) else from_dict(SchemeConfig, s, f"[mmcf.schemes.{i}]")
                        for i, s in enumerate(self.schemes)]
        for s in self.schemes:
            _check_scheme(s)
        names = [s.name for s in self.schemes]
        if len(set(names)) != len(names):
            raise PipelineError("[mmcf.schemes]: scheme names must be unique")
        served = [c for s in self.schemes for c in s.categories]
        if len(set(served)) != len(served):
            raise PipelineError("[mmcf.schemes]: a category is served by more than one scheme")

    def updates(self, scheme: SchemeConfig) -> tuple[int, int]:
        """(tied, untied) updates the scheme trains for, after updates_scale (untied 0 when tied only)."""
        untied = scheme.untied_updates if scheme.untied else 0
        return round(scheme.tied_updates * self.updates_scale), round(untied * self.updates_scale)

    def scheme(self, name: str) -> SchemeConfig:
        for s in self.schemes:
            if s.name == name:
                return s
        raise PipelineError(f"[mmcf]: no scheme named {name!r} (have {', '.join(s.name for s in self.schemes)})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_scheme(s: SchemeConfig) -> None:
    where = f"[mmcf.schemes] {s.name!r}"
    two = len(s.first_n_range) == 2 and len(s.keep_range) == 2
    lo, hi = s.first_n_range if two else (-1.0, -1.0)
    klo, khi = s.keep_range if two else (0.0, 0.0)
    problems = []
    if s.first_n not in FIRST_N_KINDS:
        problems.append(f"first_n must be one of {', '.join(FIRST_N_KINDS)}")
    if not 0 <= lo <= hi or (s.first_n == "fraction" and hi > 1):
        problems.append("first_n_range must be [lo, hi] with 0 <= lo <= hi (<= 1 for fractions)")
    if not 0 < klo <= khi <= 1:
        problems.append("keep_range must be [lo, hi] with 0 < lo <= hi <= 1")
    if not s.categories or any(c not in BY_ID for c in s.categories):
        problems.append("categories must be challenge category ids 1..10")
    if s.tied_updates < 0 or s.untied_updates < 0:
        problems.append("update counts must be >= 0")
    if problems:
        raise PipelineError(f"{where}: {'; '.join(problems)}")
