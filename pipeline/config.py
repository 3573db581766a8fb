"""The pipeline's configuration: one typed dataclass per stage, each from its TOML section."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from baselines.als import ALSConfig
from baselines.models import BaselineConfig
from charcnn.config import TitleConfig
from common.config import load_config, to_dict
from common.errors import PipelineError
from ensemble.config import RerankConfig
from mmcf.config import MMCFConfig
from preprocess.build import BuildConfig

# stage -> the lists it adds (run.final picks one of them for the submission)
MODEL_STAGES = {
    "baselines": ("popularity", "title_popularity", "item_knn", "als"),
    "mmcf": ("dae",),
    "charcnn": ("mmcf",),
    "rerank": ("rerank",),
}


@dataclass
class RunConfig:
    team_name: str = "mmcf-open"
    email: str = "mmcf-open@example.com"
    seed: int = 0
    synthetic_playlists: int = 20000  # size of the embedded synthetic MPD
    # its generator setting (preprocess.synthetic.PROFILES): "realistic" predicts real outcomes at this size
    # better than "mpd" (bench/calibration.md: seen shares of withheld tracks, ALS gaining with rank)
    synthetic_profile: str = "realistic"
    test_per_category: int = 100  # local challenge playlists per category (embedded default only) ...
    test_title_only: int = 1000  # ... except title-only: with 100, one standard error is ~0.008
    stages: list[str] = field(default_factory=lambda: list(MODEL_STAGES))
    final: str = "rerank"  # the model whose lists become the submission
    refit: bool = True  # once validation has chosen their settings, every playlist trains the final models


@dataclass
class PipelineConfig:
    path: Path
    run: RunConfig
    preprocess: BuildConfig
    baselines: BaselineConfig
    als: ALSConfig
    mmcf: MMCFConfig
    charcnn: TitleConfig
    rerank: RerankConfig

    def section(self, name: str) -> dict:
        """A section's resolved settings (defaults included): what stage keys hash, so a config that
        states a default and one that leaves it out give the same key."""
        return to_dict(getattr(self, name))


SCHEMA = {"run": RunConfig, "preprocess": BuildConfig, "baselines": BaselineConfig, "als": ALSConfig,
          "mmcf": MMCFConfig, "charcnn": TitleConfig, "rerank": RerankConfig}


def load_pipeline_config(path: Path | str | None) -> PipelineConfig:
    """The one config loader of every entry point: every section of a config (common.config.load_config:
    base configs merged, every layer's sections and keys checked naming the file) plus the checks
    across sections; None gives the defaults."""
    sections = load_config(path, SCHEMA)
    where = Path(path) if path is not None else Path("(defaults)")
    run = sections["run"]
    bad = [s for s in run.stages if s not in MODEL_STAGES]
    if bad:
        raise PipelineError(f"{where} [run].stages: unknown stage(s) {', '.join(bad)}; known: {', '.join(MODEL_STAGES)}")
    if "charcnn" in run.stages and "mmcf" not in run.stages:
        raise PipelineError(f"{where} [run].stages: charcnn mixes with the autoencoder, so it needs the mmcf stage")
    offered = [m for s in run.stages for m in MODEL_STAGES[s]]
    if run.final not in offered:
        raise PipelineError(f"{where} [run].final: {run.final!r} is not made by the stages {run.stages}; "
                            f"choose one of {', '.join(offered)}")
    return PipelineConfig(path=where, **sections)
