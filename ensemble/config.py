"""The reranker's settings, filled from the `[rerank]` section (kept apart from ensemble.ranker so
that reading a config does not import LightGBM)."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.errors import PipelineError

CANDIDATE_KEYS = ("depth", "default_depth", "cold_depth", "candidates", "list_depth")


@dataclass
class RerankConfig:
    # candidate sources by name (the lists the run's stages make; pipeline.config checks the names);
    # empty: every one of them
    sources: list[str] = field(default_factory=list)
    # N: the top N of each named source join the union (picked from the candidate recall table of
    # bench/results/rerank.md); default_depth for a source not named
    depth: dict[str, int] = field(default_factory=lambda: {"title_popularity": 500, "title_knn": 500, "popularity": 100})
    default_depth: int = 1000
    # N per source for playlists without a seed in the catalogue (title only, or every seed unknown)
    cold_depth: dict[str, int] = field(default_factory=lambda: {"popularity": 500})
    # the source whose list serves a playlist with a title and no seed in the catalogue, as MMCF serves
    # title-only playlists with its title model alone ("": the ranker serves them too). With a title
    # alone the ranker learns from a few hundred validation playlists and ranked below title kNN's own
    # list on both synthetic profiles (bench/RESULTS.md, "Right on real data")
    cold_source: str = "title_knn"
    candidates: int = 1000  # candidates per playlist after the union, all of them reranked
    list_depth: int = 1000  # top-k taken from scorer sources (deeper lists cover more candidates with scores)
    valid_fraction: float = 0.2  # share of the validation playlists kept for early stopping
    negatives: int = 300  # random non-withheld candidates kept per training playlist (0 = all)
    seed: int = 0
    num_threads: int = 2
    rounds: int = 600
    early_stopping: int = 40
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    lambda_l2: float = 1.0
    truncation_level: int = 100  # lambdarank looks at pairs reaching the top this many places
    eval_at: int = 500  # NDCG@k for early stopping: the challenge scores 500 places
    cooc_cells: int = 20_000_000  # dense seed x candidate block size for co-occurrence features
    cooc_max_playlists: int = 1000  # co-occurrence features read at most this many playlists per seed (0 = all)
    chunk: int = 2000  # playlists reranked at a time (bounds memory)

    def __post_init__(self) -> None:
        for name in ("depth", "cold_depth"):
            bad = {k: v for k, v in getattr(self, name).items()
                   if not isinstance(v, int) or isinstance(v, bool) or v < 0}
            if bad:
                raise PipelineError(f"[rerank].{name}: expected non-negative integers, got {bad}")
        if self.candidates < 1 or not 0.0 < self.valid_fraction < 1.0:
            raise PipelineError("[rerank]: candidates must be >= 1 and valid_fraction in (0, 1)")
