"""The title model's settings, filled from the `[charcnn]` section of a pipeline TOML."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.errors import PipelineError

LOSSES = ("auto", "full", "sampled")


@dataclass
class TitleConfig:
    arch: str = "cnn"  # "cnn" (published model) or "lstm" (the published, weaker alternative)
    embed_dim: int = 50
    widths: list[int] = field(default_factory=lambda: [3, 5, 7, 9])
    filters: int = 100  # per width; the CNN's title vector has len(widths) * filters dims
    lstm_hidden: int = 200  # per direction; the bidirectional LSTM's title vector has 2x this
    keep_prob: float = 0.8  # dropout keep on the title vector
    # Keep probability of each entry (track or artist, anywhere in the playlist) fed to the frozen
    # autoencoder while training; the published 0.01 leaves most playlists to the title alone.
    input_keep: float = 0.01
    neg_weight: float = 0.55  # weight of the y = 0 term in the BCE, as in the autoencoder
    lr: float = 0.001
    batch: int = 150
    # Passes over the titled training playlists (ceil(playlists / batch) updates each), one
    # validation check per epoch, the best epoch kept, so the length follows the data. SPEC's 20 in
    # configs/mmcf.toml; the default's 3 are its compute budget, as [mmcf] max_epochs (20K: 11 s each).
    epochs: int = 3
    # Time budget of one training run (seconds; 0: none): it stops at the first epoch end after
    # which another epoch would overrun it, and the log and history.json say so. The default's binds
    # only near the MPD's size, as [mmcf] train_seconds does.
    train_seconds: float = 600.0
    patience: int = 0  # stop after this many epochs without improvement (0 = never)
    # The output layer's loss in training, as [mmcf] loss: "full" scores every output unit each
    # update; "sampled" the batch's positives and the `head` most frequent items whole plus
    # `negatives` uniform draws from the rest, reweighted to an unbiased estimate of the full loss;
    # "auto": full on CUDA, sampled on CPU. Prediction always scores the full output.
    loss: str = "auto"
    head: int = 4096
    negatives: int = 2048
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
                  "lr": self.lr > 0, "batch": self.batch > 0, "epochs": self.epochs >= 0,
                  "train_seconds": self.train_seconds >= 0, "patience": self.patience >= 0,
                  "loss": self.loss in LOSSES, "head": self.head >= 0, "negatives": self.negatives > 0,
                  "predict_batch": self.predict_batch > 0, "val_playlists": self.val_playlists > 0,
                  "widths": len(self.widths) > 0 and min(self.widths) > 0,
                  "precision": self.precision in ("auto", "fp32", "bf16")}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise PipelineError(f"[charcnn]: out-of-range value(s) for {', '.join(bad)}")
