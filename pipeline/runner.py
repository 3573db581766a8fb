"""Stage order and bookkeeping. Each stage writes into its own folder under OUT and records a
key of its config and inputs; an unchanged stage is skipped on re-run (`--force` re-runs)."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from common.errors import PipelineError
from common.config import to_dict
from common.io import load_npz, read_json, save_npz
from common.stages import run_stage, stage_key
from pipeline.config import MODEL_STAGES, PipelineConfig
from preprocess.artifacts import Artifacts, load_artifacts

log = logging.getLogger("run")
LIST_DEPTH = 1000  # model lists kept this deep: the reranker draws candidates from them (metrics read the top 500)
SOURCES = ("item_knn", "artist_knn", "als", "title_popularity", "popularity", "mmcf")  # the reranker's, in feature order


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

    def run(self, mpd: Path | None, challenge: Path | None, truth: Path | None) -> dict:
        """All stages in order; returns the metric tables (validation, and test when truth is known)."""
        if mpd is None:
            mpd, challenge, truth = self.data()
        art = self.preprocess(mpd, challenge)
        lists: dict[str, Path] = {}
        stages = self.cfg.run.stages
        if "baselines" in stages:
            lists |= self.baselines(art)
        if "mmcf" in stages:
            lists |= self.mmcf(art)
        if "charcnn" in stages:
            lists |= self.charcnn(art)
        if "rerank" in stages:
            lists |= self.rerank(art, lists)
        final = self.cfg.run.final
        submission = self.submission(art, lists[final], challenge)
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
        inputs = (_files_signature(mpd), _files_signature(challenge), self.keys.get("data"))
        self._stage("artifacts", (inputs, self.cfg.sections.get("preprocess")),
                    lambda: build(mpd, folder, self.cfg.preprocess, challenge=challenge).manifest["counts"])
        return load_artifacts(folder)

    # ---- models -----------------------------------------------------------------------
    # Every model is fit twice: on the training playlists, selected on the validation playlists, for
    # the validation lists (the reranker learns from those: their answers were never seen); then,
    # with the settings selection kept, on every playlist (training + validation) for the challenge
    # lists. `[run] refit = false` serves the challenge from the first fit.
    def fit_sets(self, art: Artifacts) -> dict:
        """split -> the playlists that train the models serving that split."""
        train = art.playlists("train")
        return {"val": train, "challenge": art.playlists("all") if self.cfg.run.refit else train}

    def baselines(self, art: Artifacts) -> dict[str, Path]:
        """Popularity, title popularity, item kNN and ALS over the whole catalogue."""
        from baselines.als import ALS, select_factors
        from baselines.models import ItemKNN, Popularity, TitlePopularity, recommend

        folder = self.out / "baselines"
        cfg, als_cfg = self.cfg.baselines, self.cfg.als

        def fit_and_predict() -> dict:
            fits, lists = self.fit_sets(art), {}
            result = {"config": to_dict(cfg), "als_config": to_dict(als_cfg), "refit": self.cfg.run.refit}
            for split, train in fits.items():
                ps = art.playlists(split)
                pop = Popularity(train)
                if split == "val":
                    als, result["als_selection"] = select_factors(train, ps, art.vocab.track_artist, als_cfg, cfg.batch)
                    factors = als.factors
                elif fits["challenge"] is not fits["val"]:
                    als = ALS.fit(train, factors, als_cfg)
                als.save(folder / f"als_{split}.npz")
                for m in (pop, TitlePopularity(train, pop, cfg), ItemKNN(train, pop, cfg), als):
                    start = time.perf_counter()
                    ids, scores = recommend(m, ps, k=LIST_DEPTH, batch=cfg.batch)
                    lists.setdefault(m.name, {}).update({f"{split}_ids": ids, f"{split}_scores": scores})
                    log.info("%s: %d %s playlists in %.1f s (fit on %d playlists)", m.name, len(ps), split,
                             time.perf_counter() - start, len(train))
            for name, arrays in lists.items():
                save_npz(folder / f"{name}.npz", **arrays)
            result["als_factors"] = factors
            return result  # recommend.py serves with the same settings

        self._stage("baselines", (self.keys["artifacts"], self.cfg.run.refit, self.cfg.sections.get("baselines"),
                                  self.cfg.sections.get("als")), fit_and_predict)
        return {n: folder / f"{n}.npz" for n in MODEL_STAGES["baselines"]}

    def mmcf(self, art: Artifacts) -> dict[str, Path]:
        """The four denoising autoencoders; 'dae' lists route each playlist to its scheme."""
        from mmcf.predict import load_models, predict
        from mmcf.train import train_all

        folder = self.out / "mmcf"

        def train_and_predict() -> dict:
            summary = train_all(art, folder / "models", self.cfg.mmcf, device=self.device)
            seconds = summary["train_seconds"]
            if self.cfg.run.refit:
                seconds += train_all(art, folder / "refit", self.cfg.mmcf, device=self.device,
                                     refit_from=folder / "models")["train_seconds"]
            lists = {}
            for split in ("val", "challenge"):
                models = load_models(self.models_dir("mmcf", split), self.device)
                ids, scores = predict(models, art.playlists(split), art.vocab, k=LIST_DEPTH)
                lists |= {f"{split}_ids": ids, f"{split}_scores": scores}
            save_npz(folder / "dae.npz", **lists)
            return {"train_seconds": seconds, "dense": summary["dense"]}

        self._stage("mmcf", (self.keys["artifacts"], self.cfg.run.refit, self.cfg.sections.get("mmcf")),
                    train_and_predict)
        return {"dae": folder / "dae.npz"}

    def models_dir(self, stage: str, split: str) -> Path:
        """Where a neural stage keeps the models serving `split`: selected on validation ('val'),
        or refit on every playlist ('challenge', unless refit is off)."""
        name = {"mmcf": ("models", "refit"), "charcnn": ("model", "refit")}[stage]
        return self.out / stage / name[int(split == "challenge" and self.cfg.run.refit)]

    def charcnn(self, art: Artifacts) -> dict[str, Path]:
        """The title model trained against the frozen autoencoders, then MMCF's count-dependent mix."""
        from baselines.models import Popularity
        from charcnn.train import load_title_model, train_title_model
        from ensemble.mixing import mmcf_lists
        from mmcf.predict import load_models

        folder = self.out / "charcnn"

        def train_and_mix() -> dict:
            seconds, lists = 0.0, {}
            for split, train in self.fit_sets(art).items():
                models = load_models(self.models_dir("mmcf", split), self.device)
                out = self.models_dir("charcnn", split)
                refit_from = folder / "model" if out != folder / "model" else None
                seconds += train_title_model(art, models, out, self.cfg.charcnn, device=self.device,
                                             refit_from=refit_from).get("train_seconds", 0.0)
                title = load_title_model(out, self.device, art.vocab.fingerprint)
                ids, scores = mmcf_lists(art.playlists(split), title, models, art.vocab, Popularity(train).order(),
                                         k=LIST_DEPTH, batch=self.cfg.charcnn.predict_batch, device=title_device(title))
                lists |= {f"{split}_ids": ids, f"{split}_scores": scores}
            save_npz(folder / "mmcf.npz", **lists)
            return {"train_seconds": seconds}

        self._stage("charcnn", (self.keys["mmcf"], self.cfg.sections.get("charcnn")), train_and_mix)
        return {"mmcf": folder / "mmcf.npz"}

    def rerank(self, art: Artifacts, lists: dict[str, Path]) -> dict[str, Path]:
        """Beyond MMCF: candidates from every model, reordered by a LightGBM lambdarank model trained
        on the validation playlists (never the challenge playlists). The validation features come
        from models fit on the training playlists only; the challenge features from the refit ones."""
        from ensemble.features import FeatureContext
        from ensemble.ranker import load_reranker, rerank_with, train_reranker

        folder = self.out / "rerank"
        cfg = self.cfg.rerank

        def train_and_rerank() -> dict:
            saved = {n: lists[n] for n in SOURCES if n in lists}  # lists the earlier stages already wrote
            out, summary = {}, {}
            for split, train in self.fit_sets(art).items():
                fixed = fixed_sources(train, self.cfg.baselines, cfg, skip=set(saved))
                sources = {name: fixed[name] if name in fixed else _split_lists(saved[name], split)
                           for name in SOURCES if name in fixed or name in saved}
                ctx = FeatureContext.build(train, art.vocab, cfg.cooc_max_playlists, cfg.seed,
                                           dense_tracks=self.dense_tracks(split))
                if split == "val":
                    summary = train_reranker(art, sources, folder / "model", cfg, ctx=ctx)
                    model = load_reranker(folder / "model")
                ids, scores = rerank_with(model, ctx, art.playlists(split), sources, cfg)
                out |= {f"{split}_ids": ids, f"{split}_scores": scores}
            save_npz(folder / "rerank.npz", **out)
            return {"train_seconds": summary.get("seconds", 0.0)}

        upstream = (self.keys["artifacts"], self.keys.get("charcnn"), self.keys.get("baselines"),
                    self.cfg.sections.get("baselines"), self.cfg.run.refit)
        self._stage("rerank", (upstream, self.cfg.sections.get("rerank")), train_and_rerank)
        return {"rerank": folder / "rerank.npz"}

    def dense_tracks(self, split: str) -> np.ndarray | None:
        """Catalogue ids of the autoencoders' vocabulary serving `split` (None without them)."""
        from mmcf.dense import FILE, DenseVocab

        folder = self.models_dir("mmcf", split)
        return DenseVocab.load(folder).tracks if (folder / FILE).exists() and "mmcf" in self.cfg.run.stages else None

    # ---- submission and evaluation ---------------------------------------------------
    def submission(self, art: Artifacts, lists: Path, challenge: Path) -> Path:
        from baselines.models import Popularity
        from submission.verify import find_problems, format_report
        from submission.csvio import read_submission
        from preprocess.mpd import read_challenge
        from submission.writer import write_submission

        run = self.cfg.run
        path = self.out / "submission.csv"
        ps = art.playlists("challenge")
        start = time.perf_counter()
        write_submission(path, ps.pid, load_lists(lists, "challenge"), art.vocab.track_uri, ps.tracks,
                         Popularity(self.fit_sets(art)["challenge"]).order(), run.team_name, run.email)
        findings = find_problems(read_submission(path), read_challenge(challenge))
        if findings:
            raise PipelineError(f"{path}: the written submission breaks the rules: {format_report(read_submission(path), findings)}")
        self.timings["submission"] = time.perf_counter() - start
        log.info("submission %s verified: %d playlists x 500 tracks", path, len(ps))
        return path

    def evaluate(self, art: Artifacts, lists: dict[str, Path], truth: Path | None) -> dict[str, dict]:
        from report.evaluation import attach_truth, evaluate_ids

        val = art.playlists("val")
        tables = {"val": {name: evaluate_ids(load_lists(p, "val"), val, art.vocab) for name, p in lists.items()}}
        if truth is not None:
            test = attach_truth(art.playlists("challenge"), truth, art.vocab)
            tables["test"] = {name: evaluate_ids(load_lists(p, "challenge"), test, art.vocab) for name, p in lists.items()}
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
        history = self.out / "charcnn" / "model" / "history.json"
        if history.exists():
            curves["title model"] = [{"step": h["updates"],  # cumulative updates at the end of the period
                                      "loss": h["loss"], "val_r_precision": h["val_r_precision"]}
                                     for h in read_json(history)["history"]]
        return curves

    def _importance(self) -> dict[str, float]:
        path = self.out / "rerank" / "model" / "importance.json"
        if not path.exists():
            return {}
        gain = read_json(path)["gain"]
        return dict(sorted(gain.items(), key=lambda kv: -kv[1])[:30])  # the plot stays readable

    def _recall(self) -> str:
        path = self.out / "rerank" / "model" / "train_summary.json"
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

    ks = [k for k in recall if k.startswith("recall@")]
    rows = [[f"{c} {v['name']}", *(f"{v[k]:.4f}" for k in ks)] for c, v in recall["per_category"].items()]
    rows.append(["**all**", *(f"{recall[k]:.4f}" for k in ks)])
    return simple_table(["category", *ks], rows)


def _print_tables(tables: dict, final: str, submission: Path) -> str:
    from report.tables import metrics_table

    split = "test" if "test" in tables else "val"
    what = "local challenge set (test)" if split == "test" else "validation playlists (no truth for the challenge set)"
    return (f"\nMetrics on the {what}, per category; submission from {final!r}: {submission}\n\n"
            + metrics_table(tables[split]) + "\n")


def title_device(model) -> str:
    return str(next(model.parameters()).device)


def fixed_sources(train, baselines, rerank, skip: set[str] = frozenset()) -> dict:
    """The reranker's candidate sources besides MMCF, as scorers, leaving out those in `skip` (their
    lists come from the baselines stage). Built once per run: kNN holds the training matrix and its
    transpose."""
    from baselines.models import ItemKNN, Popularity, TitlePopularity
    from ensemble.ranker import own_sources

    pop = Popularity(train)
    make = {"item_knn": lambda: ItemKNN(train, pop, baselines),
            "artist_knn": lambda: own_sources(train, rerank)["artist_knn"],
            "title_popularity": lambda: TitlePopularity(train, pop, baselines), "popularity": lambda: pop}
    return {name: build() for name, build in make.items() if name not in skip}


def load_lists(path: Path, split: str) -> np.ndarray:
    return load_npz(path)[f"{split}_ids"]


def _split_lists(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    z = load_npz(path)
    return z[f"{split}_ids"], z[f"{split}_scores"]


def _files_signature(path: Path) -> list:
    """Names, sizes and modification times: enough to notice changed inputs without hashing GBs."""
    path = Path(path)
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [(p.name, os.stat(p).st_size, int(os.stat(p).st_mtime)) for p in files if p.is_file()]
