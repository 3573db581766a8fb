"""Stage order and bookkeeping. Each stage writes into its own folder under OUT and records a
key of its config and inputs; an unchanged stage is skipped on re-run (`--force` re-runs)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from common.io import read_json
from common.stages import run_stage, stage_key
from pipeline import stages
from pipeline.config import PipelineConfig, stage_models
from pipeline.recommend import write_run_config
from preprocess.artifacts import FORMAT_VERSION, Artifacts, load_artifacts
from sources import REGISTRY

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
        log.info("seed %d, config %s", self.cfg.run.seed, self.cfg.path)
        return path

    def _stage(self, name: str, key_parts: tuple, fn) -> dict:
        key = stage_key(name, *key_parts)
        self.keys[name] = key
        result = run_stage(self.out / name, key, fn, force=self.force)
        self.timings[name] = result["seconds"]
        return result

    def run(self, mpd: Path | None, challenge: Path | None, truth: Path | None) -> dict:
        """All stages in order; returns the metric tables (validation, and test when truth is known)."""
        if mpd is None:
            mpd, challenge, truth = self.data()
        art = self.preprocess(mpd, challenge)
        write_run_config(self.out, self.cfg)  # recommend.py serves with the run's own settings
        self.models(art)
        lists = stages.list_files(self.out, self.cfg)
        final = self.cfg.run.final
        start = time.perf_counter()
        submission = stages.write_submission(art, lists[final], challenge, self.out / "submission.csv", self.cfg)
        self.timings["submission"] = time.perf_counter() - start
        tables = self.evaluate(art, lists, truth)
        self.report(art, tables, final)
        print(_print_tables(tables, final, submission))
        return tables

    # ---- data -------------------------------------------------------------------------
    def data(self) -> tuple[Path, Path, Path]:
        """The embedded default: synthetic MPD plus a local challenge set held out of it."""
        from preprocess.challenge import make_challenge
        from preprocess.synthetic import synth_config, write_mpd

        run = self.cfg.run
        folder = self.out / "data"

        def make() -> dict:
            write_mpd(folder / "mpd", run.synthetic_playlists, run.seed, config=synth_config(run.synthetic_profile))
            return make_challenge(folder / "mpd", folder / "local", run.test_per_category, run.seed,
                                  title_only=run.test_title_only)

        self._stage("data", (run.synthetic_playlists, run.synthetic_profile, run.test_per_category,
                             run.test_title_only, run.seed), make)
        local = folder / "local"
        return local / "train", local / "challenge_set.json", local / "truth.json"

    # ---- artifacts --------------------------------------------------------------------
    def preprocess(self, mpd: Path, challenge: Path) -> Artifacts:
        from preprocess.build import build

        folder = self.out / "artifacts"
        inputs = _inputs_signature(mpd, challenge, self.keys.get("data"))
        self._stage("artifacts", (inputs, self.cfg.section("preprocess"), FORMAT_VERSION),
                    lambda: build(mpd, folder, self.cfg.preprocess, challenge=challenge).manifest["counts"])
        return load_artifacts(folder)

    # ---- models -----------------------------------------------------------------------
    def models(self, art: Artifacts) -> None:
        """The model stages the config names (pipeline/stages.py), each skipped when its inputs and
        settings are unchanged. Stage keys hash the resolved settings, not the file's text."""
        run, refit = self.cfg.run.stages, self.cfg.run.refit
        up = (self.keys["artifacts"], refit)
        if "baselines" in run:
            fitted = stage_models(self.cfg.run, "baselines")
            sections = sorted({REGISTRY[n].section for n in fitted})
            self._stage("baselines", (up, fitted, [self.cfg.section(s) for s in sections]),
                        lambda: stages.baselines(art, self.out / "baselines", self.cfg, resume=not self.force))
        if "mmcf" in run:
            self._stage("mmcf", (up, self.cfg.section("mmcf")),
                        lambda: stages.mmcf(art, self.out / "mmcf", self.cfg, self.device))
        if "charcnn" in run:
            self._stage("charcnn", (self.keys["mmcf"], self.cfg.section("charcnn")),
                        lambda: stages.charcnn(art, self.out / "mmcf", self.out / "charcnn", self.cfg, self.device))
        for name in (s for s in run if s in REGISTRY):  # registered sources with a stage of their own
            self._stage(name, (up, self.cfg.section(REGISTRY[name].section)),
                        lambda name=name: stages.source_stage(name, art, self.out / name, self.cfg, self.device))
        if "charcnn" in run or "rerank" in run:
            upstream = (up, [self.keys.get(s) for s in run if s != "rerank"], run)
            self._stage("ensemble", (upstream, self.cfg.section("rerank")),
                        lambda: stages.ensemble(art, self.out, self.cfg, self.device))

    # ---- submission and evaluation ---------------------------------------------------
    def evaluate(self, art: Artifacts, lists: dict[str, Path], truth: Path | None) -> dict[str, dict]:
        from report.evaluation import attach_truth, evaluate_ids

        val = art.playlists("val")
        tables = {"val": {name: evaluate_ids(stages.load_lists(p, "val")[0], val, art.vocab)
                          for name, p in lists.items()}}
        if truth is not None:
            test = attach_truth(art.playlists("challenge"), truth, art.vocab)
            tables["test"] = {name: evaluate_ids(stages.load_lists(p, "challenge")[0], test, art.vocab)
                              for name, p in lists.items()}
        from common.io import write_json
        write_json(self.out / "metrics.json", tables)
        return tables

    def report(self, art: Artifacts, tables: dict, final: str) -> Path:
        from report.write import ReportInputs, write_report

        inputs = ReportInputs(
            title="Playlist continuation run", config_path=str(self.cfg.path), dataset=art.manifest,
            val=tables["val"], test=tables.get("test", {}), timings=dict(self.timings), final=final,
            curves=self._curves(), importance=self._importance(), recall=self._recall(), notes=REPORT_NOTES,
        )
        path = write_report(self.out / "report", inputs)
        log.info("report %s", path)
        return path


    def _curves(self) -> dict[str, list[dict]]:
        """Training curves per DAE scheme (tied then untied updates laid end to end) and title model."""
        curves = {}
        summary = self.out / "mmcf" / "models" / "summary.json"
        if summary.exists():
            for name, s in read_json(summary)["schemes"].items():
                offset, points, last_phase, last_update = 0, [], None, 0
                for h in s["history"]:
                    if last_phase is not None and h["phase"] != last_phase:
                        offset += last_update
                    points.append({"step": offset + h["update"], "loss": h["loss"], "val_r_precision": h["val_r_precision"]})
                    last_phase, last_update = h["phase"], h["update"]
                curves[f"dae {name}"] = points
        from charcnn.train import HISTORY_FILE, read_history

        title_run = self.out / "charcnn" / "model"
        if (title_run / HISTORY_FILE).exists():
            curves["title model"] = [{"step": h["update"], "loss": h["loss"], "val_r_precision": h["val_r_precision"]}
                                     for h in read_history(title_run)["history"]]
        return curves

    def _importance(self) -> dict[str, float]:
        path = self.out / "ensemble" / "rerank" / "importance.json"
        if not path.exists():
            return {}
        gain = read_json(path)["gain"]
        return dict(sorted(gain.items(), key=lambda kv: -kv[1])[:30])  # the plot stays readable

    def _recall(self) -> str:
        path = self.out / "ensemble" / "rerank" / "train_summary.json"
        if not path.exists():
            return ""
        recall = read_json(path).get("candidate_recall")
        return recall_table(recall) if recall else ""


REPORT_NOTES = [
    "Validation playlists select the weights of every model (after each check) and train the reranker, so "
    "validation figures flatter those models; the test table (local challenge set) is the honest comparison.",
    "R-precision and NDCG count every withheld track, also those outside the vocabulary, which no model can "
    "recommend: on small datasets with a long tail that caps every figure well below 1.",
]


def recall_table(recall: dict) -> str:
    from report.tables import simple_table

    # JSON files keep keys sorted as text ("10" before "2", "recall@1000" before "recall@250"): order by number
    ks = sorted((k for k in recall if k.startswith("recall@")), key=lambda k: int(k.split("@")[1]))
    cats = sorted(recall["per_category"].items(), key=lambda kv: int(kv[0]))
    rows = [[f"{c} {v['name']}", *(f"{v[k]:.4f}" for k in ks)] for c, v in cats]
    rows.append(["**all**", *(f"{recall[k]:.4f}" for k in ks)])
    return simple_table(["category", *ks], rows)


def _print_tables(tables: dict, final: str, submission: Path) -> str:
    from report.tables import metrics_table

    split = "test" if "test" in tables else "val"
    what = "local challenge set (test)" if split == "test" else "validation playlists (no truth for the challenge set)"
    return (f"\nMetrics on the {what}, per category; submission from {final!r}: {submission}\n\n"
            + metrics_table(tables[split]) + "\n")


def _inputs_signature(mpd: Path, challenge: Path, data_key: str | None) -> tuple:
    """What the artifacts are built from. The embedded default's data are the data stage's, named by
    its key: their files' times change when a run folder is copied (cp -r), and keying on those
    would rebuild the artifacts and re-run every model stage of a copy. A user's MPD and challenge
    set lie outside the run folder and are named by their files."""
    if data_key is not None:
        return None, None, data_key
    return _files_signature(mpd), _files_signature(challenge), None


def _files_signature(path: Path) -> list:
    """Names, sizes and modification times: enough to notice changed inputs without hashing GBs."""
    path = Path(path)
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [(p.name, os.stat(p).st_size, int(os.stat(p).st_mtime)) for p in files if p.is_file()]
