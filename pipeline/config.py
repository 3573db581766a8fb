"""The pipeline's configuration: one typed dataclass per stage, each from its TOML section."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from baselines.als import ALSConfig
from baselines.models import BaselineConfig
from charcnn.config import TitleConfig
from common.config import from_dict, load_toml
from common.errors import PipelineError
from ensemble.ranker import RerankConfig, rerank_config
from mmcf.config import MMCFConfig, config_from_section
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
    synthetic_profile: str = "mpd"  # its generator setting (preprocess.synthetic.PROFILES)
    test_per_category: int = 100  # local challenge playlists per category (embedded default only) ...
    test_title_only: int = 1000  # ... except title-only: with 100, one standard error is ~0.008
    stages: list[str] = field(default_factory=lambda: list(MODEL_STAGES))
    final: str = "item_knn"  # the model whose lists become the submission
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
    sections: dict  # the raw TOML, hashed into stage keys


def load_pipeline_config(path: Path) -> PipelineConfig:
    raw = load_toml(path)
    known = {"run", "preprocess", "baselines", "als", "mmcf", "charcnn", "rerank"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PipelineError(f"{path}: unknown section(s) {', '.join(unknown)}")
    run = from_dict(RunConfig, raw.get("run"), f"{path} [run]")
    bad = [s for s in run.stages if s not in MODEL_STAGES]
    if bad:
        raise PipelineError(f"{path} [run].stages: unknown stage(s) {', '.join(bad)}; known: {', '.join(MODEL_STAGES)}")
    if "charcnn" in run.stages and "mmcf" not in run.stages:
        raise PipelineError(f"{path} [run].stages: charcnn mixes with the autoencoder, so it needs the mmcf stage")
    offered = [m for s in run.stages for m in MODEL_STAGES[s]]
    if run.final not in offered:
        raise PipelineError(f"{path} [run].final: {run.final!r} is not made by the stages {run.stages}; "
                            f"choose one of {', '.join(offered)}")
    return PipelineConfig(
        path=path, run=run,
        preprocess=from_dict(BuildConfig, raw.get("preprocess"), f"{path} [preprocess]"),
        baselines=from_dict(BaselineConfig, raw.get("baselines"), f"{path} [baselines]"),
        als=from_dict(ALSConfig, raw.get("als"), f"{path} [als]"),
        mmcf=config_from_section(raw.get("mmcf"), f"{path} [mmcf]"),
        charcnn=from_dict(TitleConfig, raw.get("charcnn"), f"{path} [charcnn]"),
        rerank=rerank_config(raw.get("rerank"), f"{path} [rerank]"),
        sections=raw,
    )
