"""The pipeline's configuration: one typed dataclass per stage, each from its TOML section; the
registered sources (sources/) bring their own sections."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charcnn.config import TitleConfig
from common.config import load_config, to_dict
from common.errors import PipelineError
from ensemble.config import RerankConfig
from mmcf.config import MMCFConfig
from preprocess.build_config import BuildConfig
from sources import REGISTRY
from sources.sparse import BaselineConfig

# stage -> the lists it adds (run.final picks one of them for the submission). The baselines stage
# fits every registered source of stage "baselines"; a source with its own stage is a stage too.
MODEL_STAGES = {
    "baselines": tuple(name for name, s in REGISTRY.items() if s.stage == "baselines"),
    "mmcf": ("dae",),
    "charcnn": ("mmcf",),
    **{name: (name,) for name, s in REGISTRY.items() if s.stage == name},
    "rerank": ("rerank",),
}
# the reranker's possible sources, in feature order: the registered ones, then MMCF's mixed lists
RERANK_SOURCES = (*REGISTRY, "mmcf")


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
    # MMCF's autoencoders and title model ("mmcf", "charcnn") are reranker sources: on a real 8K-playlist
    # excerpt their lists gained +1.9% R-precision (paired, 5 SE; the synthetic profiles show none), and
    # within [mmcf] max_epochs and [charcnn] epochs they fit the 20K run's 10 minutes (bench/RESULTS.md,
    # "MMCF back in the default")
    stages: list[str] = field(default_factory=lambda: ["baselines", "mmcf", "charcnn", "rerank"])
    # the sources the baselines stage fits (empty: every registered one); a run that only needs ALS as
    # its yardstick (configs/mmcf.toml) leaves out the kNN lists it would not use (350 s at 100K)
    baselines: list[str] = field(default_factory=list)
    final: str = "rerank"  # the model whose lists become the submission
    refit: bool = True  # once validation has chosen their settings, every playlist trains the final models


@dataclass
class PipelineConfig:
    path: Path
    run: RunConfig
    preprocess: BuildConfig
    baselines: BaselineConfig
    mmcf: MMCFConfig
    charcnn: TitleConfig
    rerank: RerankConfig
    owned: dict[str, Any] = field(default_factory=dict)  # sections the registered sources bring ([als], ...)

    @classmethod
    def from_sections(cls, path: Path, sections: dict[str, Any]) -> "PipelineConfig":
        """The pipeline's own sections as fields, the registered sources' in `owned`."""
        return cls(path=path, **{k: sections[k] for k in CORE}, owned={k: v for k, v in sections.items() if k not in CORE})

    def settings(self, name: str) -> Any:
        """A section's dataclass: the pipeline's own, or a registered source's."""
        return self.owned[name] if name in self.owned else getattr(self, name)

    def section(self, name: str) -> dict:
        """A section's resolved settings (defaults included): what stage keys hash, so a config that
        states a default and one that leaves it out give the same key."""
        return to_dict(self.settings(name))

    def rerank_sources(self) -> list[str]:
        """The reranker's sources in feature order: those [rerank].sources names, or every list the
        run's stages make."""
        made = {name for stage in self.run.stages for name in stage_models(self.run, stage)}
        wanted = self.rerank.sources or [n for n in RERANK_SOURCES if n in made]
        return [n for n in RERANK_SOURCES if n in wanted]


def stage_models(run: RunConfig, stage: str) -> tuple[str, ...]:
    """The lists a stage makes under this run's settings, in registry order."""
    if stage == "baselines" and run.baselines:
        return tuple(n for n in MODEL_STAGES["baselines"] if n in run.baselines)
    return MODEL_STAGES[stage]


CORE = {"run": RunConfig, "preprocess": BuildConfig, "baselines": BaselineConfig, "mmcf": MMCFConfig,
        "charcnn": TitleConfig, "rerank": RerankConfig}
SCHEMA = CORE | {s.section: s.Config for s in REGISTRY.values() if s.Config is not None}


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
    known = set(MODEL_STAGES["baselines"])
    if not set(run.baselines) <= known or len(set(run.baselines)) != len(run.baselines):
        raise PipelineError(f"{where} [run].baselines: {run.baselines} must name distinct sources of the baselines "
                            f"stage ({', '.join(MODEL_STAGES['baselines'])})")
    offered = [m for s in run.stages for m in stage_models(run, s)]
    if run.final not in offered:
        raise PipelineError(f"{where} [run].final: {run.final!r} is not made by the stages {run.stages}; "
                            f"choose one of {', '.join(offered)}")
    rankable = [n for n in RERANK_SOURCES if n in offered]  # what PipelineConfig.rerank_sources can use
    unknown = sorted(set(sections["rerank"].sources) - set(rankable))
    if unknown:
        raise PipelineError(f"{where} [rerank].sources: {', '.join(unknown)} not made by the stages {run.stages} "
                            f"as reranker sources; choose from {', '.join(rankable)}")
    cold, ranked = sections["rerank"].cold_source, sections["rerank"].sources or rankable
    if "rerank" in run.stages and cold and cold not in ranked:
        raise PipelineError(f"{where} [rerank].cold_source: {cold!r} is not among the reranker's sources "
                            f"({', '.join(ranked)}); name one of them or \"\"")
    return PipelineConfig.from_sections(where, sections)
