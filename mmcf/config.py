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
LOSSES = ("auto", "full", "sampled")


@dataclass
class SchemeConfig:
    """One denoising scheme: which categories it serves, how its training inputs are cut, how long it trains.

    first_n = "fraction": the input is the first floor(f * num_tracks) tracks, f ~ U(first_n_range);
    first_n = "count": the first n tracks, n an integer drawn uniformly from first_n_range (inclusive).
    Either way at least one track is fed, as in the published code. The whole playlist is
    "fraction" with range [1, 1]. Phases are counted in epochs (passes over the training playlists),
    so the training length follows the data: SPEC's 20 tied epochs, then 20 untied epochs started
    from the best tied weights (untied_epochs = 0: tied only).
    """

    name: str
    categories: list[int]
    first_n: str = "fraction"
    first_n_range: list[float] = field(default_factory=lambda: [1.0, 1.0])
    keep_range: list[float] = field(default_factory=lambda: [0.75, 0.75])  # input keep prob ~ U(range) per batch
    tied_epochs: int = 20
    untied_epochs: int = 20
    hide_and_seek: bool = True  # per batch a coin feeds tracks or artists; False feeds tracks every batch


def default_schemes() -> list[SchemeConfig]:
    """SPEC section 2's table, with the published code's 20 + 20 epochs."""
    return [
        SchemeConfig("0to1_inorder", [1, 2], "fraction", [0.0, 0.3], [0.75, 0.75], untied_epochs=0),
        SchemeConfig("5_inorder", [3, 4], "count", [1, 50], [0.75, 0.75]),
        SchemeConfig("10to100_inorder", [5, 6, 7, 9], "fraction", [0.3, 0.6], [0.75, 0.75]),
        SchemeConfig("25to100_random", [8, 10], "fraction", [1.0, 1.0], [0.5, 0.8]),
    ]


@dataclass
class MMCFConfig:
    hidden: int = 256
    hidden_keep: float = 0.8  # dropout keep on the hidden layer while training
    neg_weight: float = 0.55  # weight of the y = 0 term of the binary cross-entropy
    batch_size: int = 250
    tied_lr: float = 0.01  # SPEC
    untied_lr: float = 0.005  # SPEC
    # The output layer's loss in training. "full": every output unit each update (the published model;
    # its cost per update grows with the vocabulary). "sampled": the batch's positives and the `head`
    # most frequent items whole plus `negatives` draws from the other units, reweighted to an
    # unbiased estimate of the full loss (mmcf/model.py sampled_loss_and_grad); prediction always
    # scores the full output. "auto": full on CUDA, sampled on CPU.
    loss: str = "auto"
    head: int = 4096
    negatives: int = 2048
    # Where the `negatives` draws fall: in proportion to (training count + 1) ** draw_power over the
    # columns not taken whole (0: uniform), reweighted so that the estimate stays unbiased. Why: the
    # mean-field term errs most at the popular columns the head leaves out, so drawing them more often
    # lowers the estimate's variance at the same number of columns; at SPEC's 20 + 20 epochs that
    # variance, not a bias, held the sampled loss at 98% of the full layer (configs/mmcf.toml sets 0.5;
    # bench/RESULTS.md, "The sampled loss's floor"). The default trains 3 epochs and keeps uniform draws.
    draw_power: float = 0.0
    # The default's compute budget, in epochs so that it follows the data and the run stays reproducible:
    # every phase of the scheme table stops after at most this many epochs (0: the table's, SPEC's 20 +
    # 20; configs/mmcf.toml). Why 3: in the default MMCF is a reranker source inside a 10-minute 20K run,
    # where an epoch of one scheme takes 4.5 s on 2 cores (bench/RESULTS.md, "MMCF back in the default").
    max_epochs: int = 3
    # The time the stage's training may take (seconds; 0: no cap), split between the schemes' phases by
    # their epochs: a phase whose share is spent stops there, validated once more, and the log says
    # so. Without a cap (or under it) the training is reproducible to the bit. The default's cap binds
    # only near the MPD's size (1M playlists: an epoch of a phase is 12-20 min on 2 cores; the stage
    # adds ~580 s of its own, the inputs' principal directions 355 s of it), where it keeps the run
    # within its 3-hour target (bench/RESULTS.md); at 20K and 100K the epochs end first (100K: an epoch
    # of a phase 37-48 s on 2 cores against its share of 71 s, so a machine 1.5x slower meets the cap).
    train_seconds: float = 1500.0
    patience: int = 0  # a phase stops after this many epochs without improvement (0: SPEC's whole phase)
    val_playlists: int = 1000  # validation playlists per check (a fixed seeded subset of the scheme's categories)
    # With [run] refit, MMCF's models (the autoencoders and the title model) train a second time on every
    # playlist. That adds the validation playlists to their data; where those are under this share of the
    # training playlists (100K: 2.3%, 1M: 0.2%) the second training would cost as much as the first for
    # almost nothing, so the selected models serve the challenge and the time goes to their epochs.
    # The default (1.0: never) trains once: there MMCF is a reranker source, the same models give the
    # reranker's validation rows and the challenge their features, and at 20K a refit (12% more playlists)
    # would cost 2 of the run's 10 minutes. configs/mmcf.toml refits at 0.05 (20K: +2%).
    refit_min_share: float = 1.0
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
    # Inference: the normalised input of each category is multiplied by the gain from this grid that
    # scores best on its validation playlists (ties: the earlier one; [1.0]: SPEC's input). Why: the
    # hidden pre-activation is an average of the seeds' embeddings, and the average of 100 seeds is
    # short, so a model trained for a few epochs answers long playlists near its popularity prior
    # (100K, 2 epochs: 0.65x ALS at 100 seeds, 0.89x at 10; x3 lifts 100 seeds 16%, bench/RESULTS.md).
    # Selected per category like the best epoch; not in the published code.
    input_gains: list[float] = field(default_factory=lambda: [1.0, 1.5, 2.0, 3.0, 4.0])
    # The dense vocabulary (mmcf/dense.py): MMCF's rule, every track in >= 5 and every artist in >= 3
    # training playlists, at every size (dense.py says why the counts do not shrink with the data) ...
    min_track_count: int = 5
    min_artist_count: int = 3
    # ... within the training memory the dense models may hold (weights, Adam state, the output block).
    # The rule's memory is computed before training; past this budget the counts rise until it fits,
    # and the log says so. 100K realistic playlists: 126K items, 0.98 GB sampled. Why 4,000 on a CPU:
    # the stages hold more than the trained model (the frozen autoencoders beside the title model,
    # the inputs' principal directions); at 1M playlists the rule's 902K items (7.0 GB by this count)
    # took the autoencoders' stage to 19.4 GB and the title model's past 24 GB. A GPU config states its own.
    dense_memory_mb: float = 4000.0
    schemes: list[SchemeConfig] = field(default_factory=default_schemes)

    def __post_init__(self) -> None:
        checks = {"hidden": self.hidden > 0, "hidden_keep": 0 < self.hidden_keep <= 1,
                  "neg_weight": self.neg_weight > 0, "batch_size": self.batch_size > 0,
                  "tied_lr": self.tied_lr > 0, "untied_lr": self.untied_lr > 0, "loss": self.loss in LOSSES,
                  "negatives": self.negatives >= 0, "head": self.head >= 0,
                  "draw_power": self.draw_power >= 0, "train_seconds": self.train_seconds >= 0,
                  "max_epochs": self.max_epochs >= 0,
                  "patience": self.patience >= 0, "refit_min_share": self.refit_min_share >= 0,
                  "val_playlists": self.val_playlists > 0, "precision": self.precision in PRECISIONS,
                  "init": self.init in INITS, "init_row_norm": self.init_row_norm > 0, "threads": self.threads >= 0,
                  "long_seeds": self.long_seeds >= 0, "recent_seeds": self.recent_seeds >= 0,
                  "predict_batch": self.predict_batch > 0,
                  "input_gains": len(self.input_gains) > 0 and all(g > 0 for g in self.input_gains),
                  "dense_memory_mb": self.dense_memory_mb > 0,
                  "min_track_count": self.min_track_count >= 1, "min_artist_count": self.min_artist_count >= 1,
                  "schemes": len(self.schemes) > 0}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PipelineError(f"[mmcf]: out-of-range value(s) for {', '.join(bad)}")
        self.schemes = [s if isinstance(s, SchemeConfig) else from_dict(SchemeConfig, s, f"[mmcf.schemes.{i}]")
                        for i, s in enumerate(self.schemes)]
        for s in self.schemes:
            _check_scheme(s)
        if self.max_epochs:
            self.schemes = [dataclasses.replace(s, tied_epochs=min(s.tied_epochs, self.max_epochs),
                                                untied_epochs=min(s.untied_epochs, self.max_epochs))
                            for s in self.schemes]
        names = [s.name for s in self.schemes]
        if len(set(names)) != len(names):
            raise PipelineError("[mmcf.schemes]: scheme names must be unique")
        served = [c for s in self.schemes for c in s.categories]
        if len(set(served)) != len(served):
            raise PipelineError("[mmcf.schemes]: a category is served by more than one scheme")

    @property
    def min_counts(self) -> tuple[int, int]:
        """MMCF's (track, artist) min counts."""
        return self.min_track_count, self.min_artist_count

    def refits(self, n_train: int, n_val: int) -> bool:
        """Whether a refit on every playlist adds enough playlists to pay for a second training."""
        return n_val >= self.refit_min_share * n_train

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
    if s.tied_epochs < 0 or s.untied_epochs < 0:
        problems.append("epochs must be >= 0")
    if problems:
        raise PipelineError(f"{where}: {'; '.join(problems)}")
