"""Stage order and bookkeeping. Each stage writes into its own folder under OUT and records a
key of its config and inputs; an unchanged stage is skipped on re-run (`--force` re-runs)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from common.io import load_npz, save_npz
from common.stages import run_stage, stage_key
from pipeline.config import PipelineConfig
from preprocess.artifacts import Artifacts, load_artifacts

log = logging.getLogger("run")


class Runner:
    def __init__(self, cfg: PipelineConfig, out: Path, device: str = "auto", force: bool = False):
        self.cfg, self.out, self.device, self.force = cfg, Path(out), device, force
        self.timings: dict[str, float] = {}
        self.keys: dict[str, str] = {}

    def add_log_file(self) -> Path:
        """Every run appends to OUT/run.log: counts, timings, config and seed."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "run.log"
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        log.info("seed %d, config sections %s", self.cfg.run.seed, sorted(self.cfg.sections))
        return path

    def _stage(self, name: str, key_parts: tuple, fn) -> dict:
        key = stage_key(name, *key_parts)
        self.keys[name] = key
        result = run_stage(self.out / name, key, fn, force=self.force)
        self.timings[name] = result["seconds"]
        return result

    # ---- data -------------------------------------------------------------------------
    def data(self) -> tuple[Path, Path, Path]:
        """The embedded default: synthetic MPD plus a local challenge set held out of it."""
        from preprocess.challenge import build_challenge
        from preprocess.synthetic import write_mpd

        run = self.cfg.run
        folder = self.out / "data"

        def make() -> dict:
            write_mpd(folder / "mpd", run.synthetic_playlists, run.seed)
            build_challenge(folder / "mpd", folder / "local", run.test_per_category, run.seed)
            return {}

        self._stage("data", (run.synthetic_playlists, run.test_per_category, run.seed), make)
        local = folder / "local"
        return local / "train", local / "challenge_set.json", local / "truth.json"

    # ---- artifacts --------------------------------------------------------------------
    def preprocess(self, mpd: Path, challenge: Path) -> Artifacts:
        from preprocess.build import build

        folder = self.out / "artifacts"
        inputs = (_files_signature(mpd), _files_signature(challenge), self.keys.get("data"))
        self._stage("artifacts", (inputs, self.cfg.sections.get("preprocess")),
                    lambda: build(mpd, folder, self.cfg.preprocess, challenge=challenge).manifest)
        return load_artifacts(folder)

    # ---- models -----------------------------------------------------------------------
    def baselines(self, art: Artifacts) -> dict[str, Path]:
        from baselines.models import ItemKNN, Popularity, TitlePopularity, recommend

        folder = self.out / "baselines"
        names = ("popularity", "title_popularity", "item_knn")

        def fit_and_predict() -> dict:
            train = art.playlists("train")
            pop = Popularity(train)
            cfg = self.cfg.baselines
            models = [pop, TitlePopularity(train, pop, cfg), ItemKNN(train, pop, cfg)]
            splits = {s: art.playlists(s) for s in ("val", "challenge")}
            for m in models:
                lists = {}
                for split, ps in splits.items():
                    start = time.perf_counter()
                    ids, scores = recommend(m, ps, k=500, batch=cfg.batch)
                    lists |= {f"{split}_ids": ids, f"{split}_scores": scores}
                    log.info("%s: %d %s playlists in %.1f s", m.name, len(ps), split, time.perf_counter() - start)
                save_npz(folder / f"{m.name}.npz", **lists)
            return {}

        self._stage("baselines", (self.keys["artifacts"], self.cfg.sections.get("baselines")), fit_and_predict)
        return {n: folder / f"{n}.npz" for n in names}


def load_lists(path: Path, split: str) -> np.ndarray:
    return load_npz(path)[f"{split}_ids"]


def _files_signature(path: Path) -> list:
    """Names, sizes and modification times: enough to notice changed inputs without hashing GBs."""
    path = Path(path)
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [(p.name, os.stat(p).st_size, int(os.stat(p).st_mtime)) for p in files if p.is_file()]
