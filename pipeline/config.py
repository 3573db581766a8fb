"""The pipeline's configuration: one typed dataclass per stage, each from its TOML section."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from baselines.models import BaselineConfig
from common.config import from_dict, load_toml
from common.errors import PipelineError
from preprocess.build import BuildConfig

MODEL_STAGES = ("baselines",)


@dataclass
class RunConfig:
    team_name: str = "mmcf-open"
    email: str = "mmcf-open@example.com"
    seed: int = 0
    synthetic_playlists: int = 20000  # size of the embedded synthetic MPD
    test_per_category: int = 100  # local challenge playlists per category (embedded default only)
    stages: list[str] = field(default_factory=lambda: list(MODEL_STAGES))
    final: str = "item_knn"  # the model whose lists become the submission


@dataclass
class PipelineConfig:
    path: Path
    run: RunConfig
    preprocess: BuildConfig
    baselines: BaselineConfig
    sections: dict  # the raw TOML, hashed into stage keys


def load_pipeline_config(path: Path) -> PipelineConfig:
    raw = load_toml(path)
    known = {"run", "preprocess", "baselines"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PipelineError(f"{path}: unknown section(s) {', '.join(unknown)}")
    run = from_dict(RunConfig, raw.get("run"), f"{path} [run]")
    bad = [s for s in run.stages if s not in MODEL_STAGES]
    if bad:
        raise PipelineError(f"{path} [run].stages: unknown stage(s) {', '.join(bad)}; known: {', '.join(MODEL_STAGES)}")
    return PipelineConfig(
        path=path, run=run,
        preprocess=from_dict(BuildConfig, raw.get("preprocess"), f"{path} [preprocess]"),
        baselines=from_dict(BaselineConfig, raw.get("baselines"), f"{path} [baselines]"),
        sections=raw,
    )
