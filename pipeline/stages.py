"""The model stages as functions over one folder layout: run.py chains them (with stage records, so an
unchanged stage is skipped), and each stage's own command (`python -m sources --stage baselines`, `mmcf`, `charcnn`,
`ensemble`, `submission.write`) calls one of them, so both ways give the same files.

    RUN/artifacts/   python -m preprocess.build: vocabulary (the catalogue) and playlist matrices
    RUN/baselines/   each registered baseline source's lists (<name>.npz) and models (<name>/<split>/)
    RUN/<source>/    a registered source with its own stage: <source>.npz lists, val/ and challenge/ models
    RUN/mmcf/        models/ (selected on validation), refit/ (every playlist), dae.npz lists
    RUN/charcnn/     model/ (selected on validation), refit/ (every playlist)
                     (refit/ is a copy of the selected models where validation is a small share of the
                     training playlists: [mmcf] refit_min_share)
    RUN/ensemble/    mmcf.npz (MMCF's count-dependent mixing), rerank/ (LightGBM model), rerank.npz
    RUN/submission.csv, metrics.json, report/, run.log

A lists file holds `<split>_ids` and `<split>_scores` ([P, LIST_DEPTH], -1 = empty) for the splits
"val" and "challenge". Every model is fit twice: on the training playlists, selected on the
validation playlists, for the validation lists (the reranker learns from those: their answers were
never seen); then, with the settings selection kept, on every playlist (training + validation) for
the challenge lists. `[run] refit = false` serves the challenge from the first fit.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from common.errors import PipelineError
from common.io import load_npz, read_json, save_npz, write_json
from common.memory import release_free_memory
from common.stages import stage_key
from pipeline.config import PipelineConfig, stage_models
from preprocess.artifacts import Artifacts, PlaylistSet
from sources import REGISTRY
from sources.base import FitContext

log = logging.getLogger("run")
LIST_DEPTH = 1000  # model lists kept this deep: the reranker draws candidates from them (metrics read the top 500)


def fit_splits(art: Artifacts) -> list[str]:
    """The splits models are fit for: validation, and the challenge unless the artifacts were built
    without a challenge set."""
    return ["val", "challenge"] if (art.folder / "challenge.npz").exists() else ["val"]


def fit_set(art: Artifacts, split: str, refit: bool) -> PlaylistSet:
    """The playlists that train the models serving `split`."""
    return art.playlists("all" if refit and split == "challenge" else "train")


def fit_sets(art: Artifacts, refit: bool) -> dict[str, PlaylistSet]:
    """split -> fit_set, both at once (without a refit the two splits share one training set). The
    MMCF stages, whose models are gigabytes at 1M playlists, load one split's at a time instead."""
    train = art.playlists("train")
    return {split: train if split == "val" or not refit else fit_set(art, split, refit) for split in fit_splits(art)}


def dae_dir(stage_dir: Path, split: str, refit: bool) -> Path:
    """Where the autoencoder stage keeps the models serving `split`: selected on validation
    (models/), or refit on every playlist (refit/: the challenge, unless refit is off)."""
    return Path(stage_dir) / ("refit" if split == "challenge" and refit else "models")


def title_dir(stage_dir: Path, split: str, refit: bool) -> Path:
    """The same for the title model stage: model/ or refit/."""
    return Path(stage_dir) / ("refit" if split == "challenge" and refit else "model")


def list_files(run: Path, cfg: PipelineConfig) -> dict[str, Path]:
    """Model name -> its lists file, for the models the config's stages make (in report order)."""
    fixed = {"dae": run / "mmcf" / "dae.npz", "mmcf": run / "ensemble" / "mmcf.npz",
             "rerank": run / "ensemble" / "rerank.npz"}
    return {name: fixed.get(name) or source_dir(run, name) / f"{name}.npz"
            for stage in cfg.run.stages for name in stage_models(cfg.run, stage)}


def source_dir(run: Path, name: str) -> Path:
    """The folder of a registered source's stage: RUN/baselines, or RUN/<name> for its own stage."""
    return Path(run) / REGISTRY[name].stage


def check_inputs(run: Path, cfg: PipelineConfig, stage: str) -> None:
    """One line naming the first missing input of a stage command, and the command that makes it."""
    need = [(run / "artifacts" / "manifest.json", "python -m preprocess.build")]
    made_by = {"baselines": "python -m sources --stage baselines", "mmcf": "python -m mmcf", "charcnn": "python -m charcnn",
               "rerank": "python -m ensemble"}
    wanted = [s for s in cfg.run.stages if s != "rerank"] if stage == "ensemble" else cfg.run.stages
    files = list_files(run, cfg)
    for s in wanted:
        if s == "charcnn":
            marker = title_dir(run / "charcnn", "challenge", cfg.run.refit) / "title_model.pt"
        else:
            marker = files[stage_models(cfg.run, s)[-1]]
        need.append((marker, made_by.get(s, f"python -m sources --source {s}")))
    if stage == "submission" and "charcnn" in cfg.run.stages:
        need.append((files["mmcf"], "python -m ensemble"))
    for path, command in need:
        if not path.exists():
            raise PipelineError(f"{path}: missing; run `{command}` for this run folder first")


def load_lists(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    z = load_npz(path)
    return z[f"{split}_ids"], z[f"{split}_scores"]


def _save(path: Path, per_split: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    save_npz(path, **{f"{s}_{k}": v for s, (ids, scores) in per_split.items() for k, v in (("ids", ids), ("scores", scores))})


# ---- registered sources ------------------------------------------------------------------------
def baselines(art: Artifacts, out: Path, cfg: PipelineConfig, resume: bool = True) -> dict:
    """Every registered source of the baselines stage (popularity, title popularity, item and artist
    kNN, ALS with its rank chosen on validation) over the catalogue, from one load of the playlists.
    At 1M playlists the stage runs for an hour or more, so a source whose lists were written with
    the same settings and artifacts is kept (`resume`; run.py --force turns it off): a run killed
    in it refits only the sources it had not finished."""
    data, selected = None, {}
    for name in stage_models(cfg.run, "baselines"):
        key, record = _source_key(name, art, cfg), out / f"{name}.done.json"
        done = _finished_source(record, out / f"{name}.npz", key) if resume else None
        if done is not None:
            log.info("%s: lists up to date (%s), kept", name, out / f"{name}.npz")
            selected[name] = done
            continue
        data = data or SourceData.load(art, cfg.run.refit)
        selected[name] = fit_source(name, art, out, cfg, data=data)
        write_json(record, {"key": key, "selected": selected[name]})  # after the lists: they are complete
    return {"refit": cfg.run.refit, "selected": selected}


def _source_key(name: str, art: Artifacts, cfg: PipelineConfig) -> str:
    return stage_key(name, cfg.section(REGISTRY[name].section), art.manifest, cfg.run.refit, LIST_DEPTH)


def _finished_source(record: Path, lists: Path, key: str) -> dict | None:
    """What validation chose for a source whose lists and record (written after them) match, else None."""
    if not (record.exists() and lists.exists()):
        return None
    done = read_json(record)
    return done.get("selected") if done.get("key") == key else None


@dataclasses.dataclass
class SourceData:
    """The playlists fitting and listing a source reads: split -> the training playlists of the models
    serving it (fit_sets), and split -> the playlists listed (the validation ones also choose settings)."""

    fits: dict[str, PlaylistSet]
    listed: dict[str, PlaylistSet]

    @classmethod
    def load(cls, art: Artifacts, refit: bool) -> "SourceData":
        fits = fit_sets(art, refit)
        return cls(fits, {split: art.playlists(split) for split in fits})


def fit_source(name: str, art: Artifacts, out: Path, cfg: PipelineConfig, device: str = "cpu",
               data: SourceData | None = None) -> dict:
    """One registered source, as every model is fit: on the training playlists choosing its settings
    on the validation playlists (their lists), then refit with those settings on every playlist (the
    challenge lists). Models go to OUT/<name>/<split>/, lists to OUT/<name>.npz; returns what
    validation chose."""
    source, settings = REGISTRY[name], cfg.settings(REGISTRY[name].section)
    data = data or SourceData.load(art, cfg.run.refit)
    lists, model = {}, None
    for split, train in data.fits.items():
        start = time.perf_counter()
        ctx = FitContext(art.vocab.track_artist, work=out / name / split, device=device)
        if model is None:  # the validation split comes first: settings are chosen on it
            model = source.fit(train, settings, dataclasses.replace(ctx, val=data.listed["val"]))
        elif train is not data.fits["val"]:  # every playlist, with what validation chose
            # the validation model goes before the refit allocates its own: at 1M playlists ALS's
            # item factors are 4 GB, held through the refit's start, the run's peak (18.7 GB)
            selected, model = model.selected, None
            model = source.fit(train, settings, dataclasses.replace(ctx, selected=selected))
        model.save(out / name / split)
        ps = data.listed[split]
        lists[split] = model.top(ps, LIST_DEPTH)
        log.info("%s: fit on %d playlists, %d %s playlists listed in %.1f s", name, len(train), len(ps), split,
                 time.perf_counter() - start)
    _save(out / f"{name}.npz", lists)
    return model.selected


def source_stage(name: str, art: Artifacts, out: Path, cfg: PipelineConfig, device: str = "auto") -> dict:
    """The stage of a registered source that has its own: its folder RUN/<name>."""
    return {"refit": cfg.run.refit, "selected": fit_source(name, art, out, cfg, device)}


# ---- autoencoders and title model --------------------------------------------------------------
def mmcf(art: Artifacts, out: Path, cfg: PipelineConfig, device: str = "auto") -> dict:
    """The four denoising autoencoders, selected on validation then refit; dae.npz routes each
    playlist to its scheme."""
    from common import distributed
    from mmcf.predict import load_models, predict
    from mmcf.train import train_all

    summary = train_all(art, out / "models", cfg.mmcf, device=device)
    seconds = summary["train_seconds"]
    if cfg.run.refit and _mmcf_refits(art, cfg):
        seconds += train_all(art, out / "refit", cfg.mmcf, device=device, refit_from=out / "models")["train_seconds"]
    elif cfg.run.refit and distributed.is_main():
        _copy_folder(out / "models", out / "refit")
    if distributed.is_main():  # under torchrun rank 0 alone predicts and writes
        lists = {}
        for split in fit_splits(art):
            models = None  # one split's models at a time
            models = load_models(dae_dir(out, split, cfg.run.refit), device)
            lists[split] = predict(models, art.playlists(split), art.vocab, k=LIST_DEPTH)
        _save(out / "dae.npz", lists)
    return {"train_seconds": seconds, "dense": summary["dense"]}


def charcnn(art: Artifacts, dae: Path, out: Path, cfg: PipelineConfig, device: str = "auto") -> dict:
    """The title model trained against the frozen autoencoders (each split's), selected then refit."""
    from charcnn.train import frozen_schemes, train_title_model
    from mmcf.predict import load_models

    seconds = 0.0
    for split in fit_splits(art):
        folder = title_dir(out, split, cfg.run.refit)
        if split == "challenge" and folder == title_dir(out, "val", cfg.run.refit):
            break  # no refit: the selected model serves both
        if split == "challenge" and not _mmcf_refits(art, cfg):
            _copy_folder(title_dir(out, "val", cfg.run.refit), folder)
            break
        models = None  # one split's models at a time
        models = load_models(dae_dir(dae, split, cfg.run.refit), device, frozen_schemes(cfg.mmcf, cfg.charcnn))
        refit_from = title_dir(out, "val", cfg.run.refit) if split == "challenge" else None
        seconds += train_title_model(art, models, folder, cfg.charcnn, device=device,
                                     refit_from=refit_from).get("train_seconds", 0.0)
    return {"train_seconds": seconds}


def _mmcf_refits(art: Artifacts, cfg: PipelineConfig) -> bool:
    """Whether MMCF's refit trains again ([mmcf] refit_min_share); logged when it does not."""
    n_train, n_val = len(art.playlists("train")), len(art.playlists("val"))
    if cfg.mmcf.refits(n_train, n_val):
        return True
    log.info("MMCF refit skipped: %d validation playlists are %.1f%% of %d training playlists (under [mmcf] "
             "refit_min_share = %g); the selected models serve the challenge", n_val, 100 * n_val / max(n_train, 1),
             n_train, cfg.mmcf.refit_min_share)
    return False


def _copy_folder(src: Path, dst: Path) -> None:
    """dst becomes a copy of src, whole or not at all (made beside it, then renamed over it). Files are
    hard links where the filesystem allows (the 1M models are gigabytes): every writer of these
    folders renames a new file over the old name (common.io.atomic_path), so no write reaches both."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=_link_or_copy)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# ---- ensemble ----------------------------------------------------------------------------------
def ensemble(art: Artifacts, run: Path, cfg: PipelineConfig, device: str = "auto") -> dict:
    """MMCF's count-dependent mixing of the title model and the autoencoders (ensemble/mmcf.npz), then,
    when the config has the rerank stage, candidates from every source reordered by a LightGBM model
    trained on the validation playlists (ensemble/rerank.npz)."""
    result = {}
    if "charcnn" in cfg.run.stages:
        result["mixing"] = mixing(art, run / "mmcf", run / "charcnn", run / "ensemble", cfg, device)
        release_free_memory()  # glibc kept what mixing freed (1.9 GB at 100K) beneath the ranker's peak
    if "rerank" in cfg.run.stages:
        result["rerank"] = rerank(art, run, cfg)
    return result


def mixing(art: Artifacts, dae: Path, title: Path, out: Path, cfg: PipelineConfig, device: str = "auto") -> dict:
    from sources.sparse import Popularity
    from charcnn.train import load_title_model
    from mmcf.mixing import mmcf_lists
    from mmcf.predict import load_models

    lists = {}
    for split in fit_splits(art):
        fill = Popularity(fit_set(art, split, cfg.run.refit)).order()
        models = None  # one split's models at a time
        models = load_models(dae_dir(dae, split, cfg.run.refit), device)
        model = load_title_model(title_dir(title, split, cfg.run.refit), device, art.vocab.fingerprint)
        lists[split] = mmcf_lists(art.playlists(split), model, models, art.vocab, fill,
                                  k=LIST_DEPTH, batch=cfg.charcnn.predict_batch,
                                  device=str(next(model.parameters()).device))
    _save(out / "mmcf.npz", lists)
    return {"playlists": {split: len(ids) for split, (ids, _) in lists.items()}}


def rerank(art: Artifacts, run: Path, cfg: PipelineConfig) -> dict:
    """The reranker learns on the validation playlists with features from models fit on the training
    playlists only, and serves the challenge with the refit ones."""
    from ensemble.features import FeatureContext
    from ensemble.ranker import load_reranker, rerank_with, train_reranker

    out = run / "ensemble"
    files = list_files(run, cfg)
    summary, lists = {}, {}
    for split, train in fit_sets(art, cfg.run.refit).items():
        sources = {n: load_lists(files[n], split) for n in cfg.rerank_sources()}
        ctx = FeatureContext.build(train, art.vocab, cfg.rerank.cooc_max_playlists, cfg.rerank.seed,
                                   dense_tracks=dense_tracks(run / "mmcf", split, cfg))
        if split == "val":
            summary = train_reranker(art, sources, out / "rerank", cfg.rerank, ctx=ctx)
            model = load_reranker(out / "rerank")
        lists[split] = rerank_with(model, ctx, art.playlists(split), sources, cfg.rerank)
    _save(out / "rerank.npz", lists)
    return {"train_seconds": summary.get("seconds", 0.0)}


def dense_tracks(dae: Path, split: str, cfg: PipelineConfig) -> np.ndarray | None:
    """Catalogue ids of the autoencoders' vocabulary serving `split` (None without them)."""
    from mmcf.dense import FILE, DenseVocab

    folder = dae_dir(dae, split, cfg.run.refit)
    return DenseVocab.load(folder).tracks if "mmcf" in cfg.run.stages and (folder / FILE).exists() else None


# ---- submission --------------------------------------------------------------------------------
def write_submission(art: Artifacts, lists: Path, challenge: Path, path: Path, cfg: PipelineConfig) -> Path:
    """The challenge lists as the official CSV (popularity pads short lists), verified against the
    challenge set: a submission that breaks a rule is an error, never a file left to upload."""
    from sources.sparse import Popularity
    from preprocess.challenge_file import read_challenge
    from submission.csvio import read_submission
    from submission.verify import find_problems, format_report
    from submission.writer import write_submission as write_csv

    ps = art.playlists("challenge")
    write_csv(path, ps.pid, load_lists(lists, "challenge")[0], art.vocab.track_uri, ps.tracks,
              Popularity(fit_sets(art, cfg.run.refit)["challenge"]).order(), cfg.run.team_name, cfg.run.email)
    findings = find_problems(read_submission(path), read_challenge(challenge))
    if findings:
        raise PipelineError(f"{path}: the written submission breaks the rules: "
                            f"{format_report(read_submission(path), findings)}")
    log.info("submission %s verified: %d playlists x 500 tracks", path, len(ps))
    return path
