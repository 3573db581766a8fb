"""The title model's settings, filled from the `[charcnn]` section of a pipeline TOML."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.errors import PipelineError


@dataclass
class TitleConfig:
    arch: str = "cnn"  # "cnn" (published model) or "lstm" (the published, weaker alternative)
    embed_dim: int = 50
    widths: list[int] = field(default_factory=lambda: [3, 5, 7, 9])
    filters: int = 100  # per width; the CNN's title vector has len(widths) * filters dims
    lstm_hidden: int = 200  # per direction; the bidirectional LSTM's title vector has 2x this
    keep_prob: float = 0.8  # dropout keep on the title vector
    input_keep: float = 0.01  # keep probability of the frozen autoencoder's input while training
    seed_frac_max: float = 1.0  # simulated seeds: the first U(0, max) fraction of the playlist
    neg_weight: float = 0.55  # weight of the y = 0 term in the BCE, as in the autoencoder
    lr: float = 0.001
    batch: int = 150
    updates: int = 500  # total Adam updates: budget updates, not epochs (~3 min on 2 CPU cores at 20K playlists)
    eval_every: int = 100  # updates between validation / checkpoint ("an epoch")
    patience: int = 0  # stop after this many evaluations without improvement (0 = never)
    train_scheme: str = "0to1_inorder"  # the frozen autoencoder mixed in during training
    select_categories: list[int] = field(default_factory=lambda: [1, 2, 3])  # model selection
    predict_batch: int = 256  # playlists per dense [B, tracks + artists] block at inference
    precision: str = "auto"  # the dense layer's training matmuls: "fp32", "bf16", or "auto" as in [mmcf]
    val_playlists: int = 1000  # validation playlists per check (a fixed seeded subset of select_categories)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.arch not in ("cnn", "lstm"):
            raise PipelineError(f"[charcnn].arch: expected 'cnn' or 'lstm', got {self.arch!r}")
        checks = {"keep_prob": 0 < self.keep_prob <= 1, "input_keep": 0 <= self.input_keep <= 1,
                  "seed_frac_max": 0 <= self.seed_frac_max <= 1, "lr": self.lr > 0, "batch": self.batch > 0,
                  "updates": self.updates >= 0, "eval_every": self.eval_every > 0,
                  "predict_batch": self.predict_batch > 0, "val_playlists": self.val_playlists > 0,
                  "widths": len(self.widths) > 0 and min(self.widths) > 0,
                  "precision": self.precision in ("auto", "fp32", "bf16")}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PipelineError(f"[charcnn]: out-of-range value(s) for {', '.join(bad)}")
