"""The stage runner end to end on a tiny synthetic MPD with every stage (baselines, autoencoders,
title model, reranker): determinism, skipping and --force, kill mid-training and resume, the stage
commands, the report, recommend.py. Tests that only read a finished run share the session's
`smoke_run` (tests/conftest.py); a test that changes a run works on a copy of it."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.toml"  # every stage, with budgets small enough for seconds
SKIPPED = "up to date, skipped"  # the stage log's line for a stage whose record matches


def run(out: Path, cfg: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "run.py", "--out", str(out), "--config", str(cfg), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def module(*args) -> subprocess.CompletedProcess:
    """`python -m ARGS` from the repository root, which must succeed."""
    proc = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (args[0], proc.stderr[-2000:])
    return proc


def test_default_run_writes_submission_report_and_table(smoke_run_process, smoke_run):
    out, proc = smoke_run, smoke_run_process
    assert (out / "submission.csv").exists() and (out / "report" / "report.md").exists()
    assert "R-prec: category" in proc.stdout
    assert all(name in proc.stdout for name in ("item_knn", "dae", "mmcf", "rerank"))
    lines = (out / "submission.csv").read_text().splitlines()
    assert lines[0].startswith("team_info,") and len(lines) == 1 + 80
    assert all(len(line.split(",")) == 501 for line in lines[1:])
    verify = subprocess.run([sys.executable, "-m", "submission.verify", "--submission", str(out / "submission.csv"),
                             "--challenge", str(out / "data/local/challenge_set.json")], cwd=ROOT, capture_output=True)
    assert verify.returncode == 0


def test_report_metrics_agree_with_the_official_scorer_of_the_submission(smoke_run):
    out = smoke_run
    local = out / "data" / "local"
    proc = subprocess.run([sys.executable, "-m", "submission.evaluate", "--submission", str(out / "submission.csv"),
                           "--challenge", str(local / "challenge_set.json"), "--truth", str(local / "truth.json"),
                           "--mpd", str(local / "train"), "--json"], cwd=ROOT, capture_output=True, text=True)
    official = json.loads(proc.stdout)
    report = json.loads((out / "metrics.json").read_text())["test"]["rerank"]
    for metric in ("r_precision", "ndcg", "clicks"):
        assert abs(official[metric] - report[metric]) < 1e-6, metric
        for c, row in official["per_category"].items():
            assert abs(row[metric] - report["per_category"][c][metric]) < 1e-6, (metric, c)


def test_the_report_holds_a_valid_png_for_every_promised_plot(smoke_run):
    """INTERFACE.md promises OUT/report/ PNG plots of validation metrics per category and model,
    training curves and timings (the smoke run, with truth and a reranker, adds test metrics and
    feature importance): each decodes as a PNG of real size that is not one flat colour, and
    report.md shows it."""
    from PIL import Image

    report = smoke_run / "report"
    md = (report / "report.md").read_text()
    for name in ("val_metrics.png", "training_curves.png", "timings.png", "test_metrics.png",
                 "feature_importance.png"):
        with Image.open(report / name) as im:
            im.load()  # decodes every row: a truncated or corrupt file raises here
            assert im.format == "PNG" and im.width > 50 and im.height > 50, name
            assert im.getcolors(maxcolors=1) is None, name  # more than one colour: something is drawn
        assert f"]({name})" in md, name


def test_rerun_skips_finished_stages_and_force_reruns_them(smoke_run, tmp_path):
    """A second run with the same config skips every finished stage and writes the same submission.
    `--force` runs every stage of its config again (the stage log says so, their files are rewritten)
    and writes the same submission byte for byte; shown on the run without MMCF's stages (the
    baselines and the reranker), which a copy of the finished run makes in seconds."""
    from pipeline.config import load_pipeline_config
    from pipeline.stages import list_files

    out = tmp_path / "run"
    shutil.copytree(smoke_run, out)
    again = run(out, SMOKE)
    assert again.stderr.count(SKIPPED) == 6  # data, artifacts, baselines, mmcf, charcnn, ensemble
    assert (out / "submission.csv").read_bytes() == (smoke_run / "submission.csv").read_bytes()
    cfg = tmp_path / "sparse.toml"
    cfg.write_text(f'base = "{SMOKE}"\n[run]\nstages = ["baselines", "rerank"]\n')
    assert run(out, cfg).stderr.count(SKIPPED) == 3  # the same data, artifacts and baselines; a new ranker
    before = (out / "submission.csv").read_bytes()
    stages = ["data", "artifacts", "baselines", "ensemble"]
    made = [*(out / stage / "stage.json" for stage in stages), out / "data/local/challenge_set.json",
            out / "artifacts/manifest.json", *list_files(out, load_pipeline_config(cfg)).values()]
    written = {p: p.stat().st_mtime_ns for p in made}
    forced = run(out, cfg, "--force")
    assert SKIPPED not in forced.stderr and all(f" {stage}: done in" in forced.stderr for stage in stages)
    assert all(p.stat().st_mtime_ns > t for p, t in written.items())  # records, data, artifacts, lists
    assert (out / "submission.csv").read_bytes() == before


def test_a_run_folder_copied_with_new_file_times_skips_every_finished_stage(smoke_run, tmp_path):
    """cp -r gives every file of the copy a new modification time; the embedded default's data are
    named by the data stage's key, so the copy's stages are all still finished."""
    out = tmp_path / "run"
    shutil.copytree(smoke_run, out, copy_function=shutil.copy)
    train = "data/local/train"
    first = sorted((out / train).iterdir())[0].name
    assert (out / train / first).stat().st_mtime_ns != (smoke_run / train / first).stat().st_mtime_ns
    again = run(out, SMOKE)
    assert again.stderr.count(SKIPPED) == 6, again.stderr
    assert (out / "submission.csv").read_bytes() == (smoke_run / "submission.csv").read_bytes()


def test_a_forced_stage_killed_half_way_leaves_no_record_to_skip_it_by(tmp_path):
    """--force re-runs a finished stage into its own folder; killed half-way, the old record must not
    survive, or the next run takes the half-rewritten folder for finished (the record is written last
    so that a killed stage has none)."""
    from common.stages import run_stage

    folder = tmp_path / "stage"
    run_stage(folder, "key", lambda: {"made": "first"})

    def killed() -> dict:
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        run_stage(folder, "key", killed, force=True)
    again = run_stage(folder, "key", lambda: {"made": "again"})
    assert again["made"] == "again" and not again["skipped"]


def test_killed_mid_training_resumes_to_the_same_submission(smoke_run, tmp_path):
    """SIGKILL once the autoencoders have written a mid-training checkpoint: the re-run skips the
    finished stages, resumes training from the checkpoint and ends byte-identical to the session's
    run, made in another folder (so a fresh folder gives the same bytes too)."""
    target = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "run.py", "--out", str(target), "--config", str(SMOKE)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    models = target / "mmcf" / "models"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (models.is_dir() and any(models.glob("*.ckpt.pt"))):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (target / "mmcf" / "stage.json").exists() and not (target / "submission.csv").exists()
    resumed = run(target, SMOKE)
    assert "baselines: up to date, skipped" in resumed.stderr and "mmcf: up to date" not in resumed.stderr
    assert "tied: resuming at update" in resumed.stderr
    assert (target / "submission.csv").read_bytes() == (smoke_run / "submission.csv").read_bytes()


def test_stage_commands_in_order_give_run_py_submission_byte_for_byte(smoke_run, tmp_path):
    """The README's stage commands, one after the other in a fresh folder, give run.py's submission
    byte for byte, with the autoencoders trained as the README offers for several GPUs: first
    `python -m mmcf --scheme NAME`, which trains only that scheme into OUT/models, then a plain
    `python -m mmcf`, which finds it trained and does the rest."""
    from pipeline.config import load_pipeline_config

    first, *others = [s.name for s in load_pipeline_config(SMOKE).mmcf.schemes]
    local, run_dir = smoke_run / "data" / "local", tmp_path / "stages"
    art, mmcf, config = run_dir / "artifacts", run_dir / "mmcf", ("--config", SMOKE)
    module("preprocess.build", "--mpd", local / "train", "--challenge", local / "challenge_set.json", "--out", art,
           *config)
    module("sources", "--stage", "baselines", "--artifacts", art, "--out", run_dir / "baselines", *config)
    assert ({p.name for p in (run_dir / "baselines").glob("*.npz")}
            == {p.name for p in (smoke_run / "baselines").glob("*.npz")})  # run.py's layout
    module("mmcf", "--artifacts", art, "--out", mmcf, "--scheme", first, *config)
    assert {p.name.split(".")[0] for p in (mmcf / "models").glob("*.pt")} == {first}  # its model, no other's
    rest = module("mmcf", "--artifacts", art, "--out", mmcf, *config)
    assert f"{first}: already trained" in rest.stderr
    assert not any(f"{name}: already trained" in rest.stderr for name in others)
    module("charcnn", "--artifacts", art, "--dae", mmcf, "--out", run_dir / "charcnn", *config)
    module("ensemble", "--run", run_dir, *config)
    module("submission.write", "--run", run_dir, "--challenge", local / "challenge_set.json", *config)
    assert (run_dir / "submission.csv").read_bytes() == (smoke_run / "submission.csv").read_bytes()


def test_a_run_with_the_sequence_stage(smoke_run, tmp_path):
    """`sequence` added to a finished run's [run] stages runs only what that changes (its own stage,
    and the reranker, which takes it as one more source); `python -m sources --source sequence`
    alone writes the same lists into the same layout."""
    from ensemble.ranker import load_reranker
    from pipeline.stages import load_lists

    cfg = tmp_path / "sequence.toml"
    cfg.write_text(f'base = "{SMOKE}"\n[run]\nstages = ["baselines", "mmcf", "charcnn", "sequence", "rerank"]\n'
                   "[sequence]\nupdates = 20\neval_every = 10\n")
    out = tmp_path / "run"
    shutil.copytree(smoke_run, out)
    proc = run(out, cfg)
    assert proc.stderr.count(SKIPPED) == 5  # data, artifacts, baselines, mmcf, charcnn
    assert " sequence: done in" in proc.stderr and " ensemble: done in" in proc.stderr
    assert "sequence" in load_reranker(out / "ensemble" / "rerank").sources
    assert "sequence" in json.loads((out / "metrics.json").read_text())["test"]
    alone = tmp_path / "alone"
    module("sources", "--source", "sequence", "--artifacts", out / "artifacts", "--out", alone, "--config", cfg)
    staged = out / "sequence"
    assert ({p.relative_to(alone) for p in alone.rglob("*")}
            == {p.relative_to(staged) for p in staged.rglob("*") if p.name != "stage.json"})
    for split in ("val", "challenge"):
        for mine, runs in zip(load_lists(alone / "sequence.npz", split), load_lists(staged / "sequence.npz", split)):
            assert np.array_equal(mine, runs), split


def test_a_stage_command_without_its_inputs_names_the_missing_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ensemble", "--run", str(tmp_path), "--config", str(SMOKE)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "manifest.json: missing" in proc.stderr


ENTRY_POINTS = {
    "run.py": ["run.py", "--out", "{tmp}/o"],
    "preprocess.build": ["-m", "preprocess.build", "--mpd", "{tmp}", "--out", "{tmp}/a"],
    "sources": ["-m", "sources", "--stage", "baselines", "--artifacts", "{tmp}", "--out", "{tmp}/b"],
    "mmcf": ["-m", "mmcf", "--artifacts", "{tmp}", "--out", "{tmp}/m"],
    "charcnn": ["-m", "charcnn", "--artifacts", "{tmp}", "--dae", "{tmp}", "--out", "{tmp}/c"],
    "ensemble": ["-m", "ensemble", "--run", "{tmp}"],
    "submission.write": ["-m", "submission.write", "--run", "{tmp}", "--challenge", "{tmp}/c.json"],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("text,what", [("[mmfc]\nhidden = 3\n", "unknown section(s) mmfc"),
                                       ("[mmcf]\nhiden = 3\n", "unknown key(s) hiden")])
def test_every_entry_point_refuses_a_misspelt_section_or_key_naming_the_file(entry, text, what, tmp_path):
    bad = tmp_path / "typo.toml"
    bad.write_text('base = "' + str(SMOKE) + '"\n' + text)
    args = [a.format(tmp=tmp_path) for a in ENTRY_POINTS[entry]]
    proc = subprocess.run([sys.executable, *args, "--config", str(bad)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert what in proc.stderr and str(bad) in proc.stderr


def test_one_playlist_and_batch_paths_give_the_reranker_the_same_feature_rows(smoke_run):
    """recommend.py's path (a challenge entry -> challenge_set -> every model's list -> features) and the
    ensemble stage's (saved challenge lists) agree row for row on the reranker's inputs: the same
    candidates in the same order, and the same features up to float32 rounding (a matrix product over
    one row and over a batch of rows round differently, ~2e-6 relative in the autoencoders' scores)."""
    from ensemble.features import build_features
    from ensemble.ranker import prepare
    from pipeline import stages
    from pipeline.recommend import Recommender, playlist_set

    out = smoke_run
    rec = Recommender.load(out)
    art, cfg, model = rec.art, rec.cfg, rec.models["reranker"]
    ps = art.playlists("challenge")
    files = stages.list_files(out, cfg)
    batch_sources = {n: stages.load_lists(files[n], "challenge") for n in model.sources}
    srcs, cands = prepare(rec.models["context"], ps, batch_sources, cfg.rerank, model.sources)
    x_batch, names = build_features(rec.models["context"], ps, cands, srcs)
    entries = json.loads((out / "data/local/challenge_set.json").read_text())["playlists"]
    for i in range(0, len(entries), 9):  # one playlist of every category
        one, _ = playlist_set(entries[i], art)
        assert int(one.pid[0]) == int(ps.pid[i]) and int(one.category[0]) == int(ps.category[i])
        _, ctx, sources = rec.reranker_inputs(one, rec.lists(one))
        srcs1, cands1 = prepare(ctx, one, sources, cfg.rerank, model.sources)
        x_one, names_one = build_features(ctx, one, cands1, srcs1)
        a, b = int(cands.indptr[i]), int(cands.indptr[i + 1])
        assert names_one == names and np.array_equal(cands1.track, cands.track[a:b])
        np.testing.assert_allclose(x_one, x_batch[a:b], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_bad_config_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nfinal = 3\n")
    proc = run(tmp_path / "o", bad, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:") and "bad.toml" in proc.stderr


def test_recommend_one_playlist_from_a_finished_run(smoke_run):
    out = smoke_run
    challenge = json.loads((out / "data/local/challenge_set.json").read_text())
    seeds = [t["track_uri"] for p in challenge["playlists"] if p["num_samples"] == 10 for t in p["tracks"]][:10]
    proc = subprocess.run([sys.executable, "recommend.py", "--run", str(out), "--title", "chill", "--seeds", *seeds,
                           "-n", "7", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    uris = [t["uri"] for t in answer["tracks"]]
    assert len(uris) == 7 == len(set(uris)) and not set(uris) & set(seeds)
    assert answer["final"] == "rerank"  # the run's final model
    ranked = [t["models"]["rerank"] for t in answer["tracks"]]
    assert [r["rank"] for r in ranked] == list(range(1, 8))
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True) and np.isfinite(scores).all()
    assert answer["taken_as"]["category"] == "5 title + first 10"  # as a challenge entry would be
    table = subprocess.run([sys.executable, "recommend.py", "--run", str(out), "--seeds", *seeds[:5],
                            "spotify:track:" + "Z" * 22, "-n", "5"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and lines[0].startswith("warning: ") and "Z" * 22 in lines[0]
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("#"))
    assert "title_popularity" in lines[header] and lines[header + 1].lstrip().startswith("1 ")
    assert "rank of the track" in table.stdout and "co-occurrence" in table.stdout  # the legend
    bad = subprocess.run([sys.executable, "recommend.py", "--run", str(out / "nope"), "--title", "x"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_recommend_takes_a_playlist_file_and_the_length_to_reach(smoke_run, tmp_path):
    """`--playlist FILE` (an MPD playlist object) asks what its title and seeds given as flags ask, and
    `--length N` is the length the playlist is taken to reach (the reranker learnt with real lengths);
    a length below the seed count is refused in one line."""
    from pipeline.recommend import typical_length

    entries = json.loads((smoke_run / "data/local/challenge_set.json").read_text())["playlists"]
    entry = next(p for p in entries if p["num_samples"] == 10 and p.get("name"))
    playlist = tmp_path / "playlist.json"
    playlist.write_text(json.dumps({"name": entry["name"], "tracks": entry["tracks"]}))
    length = typical_length(10, True) + 7  # not the length taken without the flag

    def ask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "recommend.py", "--run", str(smoke_run), "-n", "10", "--json", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    by_file = json.loads(ask("--playlist", str(playlist), "--length", str(length)).stdout)
    seeds = [t["track_uri"] for t in entry["tracks"]]
    by_flags = json.loads(ask("--title", entry["name"], "--seeds", *seeds, "--length", str(length)).stdout)
    assert [t["uri"] for t in by_file["tracks"]] == [t["uri"] for t in by_flags["tracks"]]
    assert len(by_file["tracks"]) == 10 and not {t["uri"] for t in by_file["tracks"]} & set(seeds)
    assert by_file["taken_as"] == by_flags["taken_as"] and by_file["taken_as"]["num_tracks"] == length
    short = ask("--playlist", str(playlist), "--length", "5")
    assert short.returncode == 2 and short.stderr.count("\n") == 1 and "--length 5" in short.stderr


def test_a_baselines_stage_killed_half_way_refits_only_its_unfinished_sources(smoke_run, tmp_path, monkeypatch):
    from pipeline import stages
    from pipeline.config import MODEL_STAGES, load_pipeline_config
    from preprocess.artifacts import load_artifacts

    cfg, out = SMOKE, smoke_run
    conf, art = load_pipeline_config(cfg), load_artifacts(out / "artifacts")
    work = tmp_path / "baselines"
    shutil.copytree(out / "baselines", work)
    (work / "als.done.json").unlink()  # killed while ALS was listing: its record is written after its lists
    lists = {p.name: p.read_bytes() for p in work.glob("*.npz")}
    fitted, real = [], stages.fit_source
    monkeypatch.setattr(stages, "fit_source", lambda name, *a, **k: fitted.append(name) or real(name, *a, **k))
    result = stages.baselines(art, work, conf)
    assert fitted == ["als"]
    whole = json.loads((out / "baselines" / "stage.json").read_text())["result"]["selected"]
    assert json.loads(json.dumps(result["selected"])) == whole
    assert {p.name: p.read_bytes() for p in work.glob("*.npz")} == lists  # ALS's refit is byte-identical
    stages.baselines(art, work, conf, resume=False)  # run.py --force
    assert fitted[1:] == list(MODEL_STAGES["baselines"])


def test_a_baselines_subset_fits_and_lists_only_the_sources_it_names(smoke_run, tmp_path, monkeypatch):
    from pipeline import stages
    from pipeline.config import MODEL_STAGES, load_pipeline_config
    from common.errors import PipelineError
    from preprocess.artifacts import load_artifacts

    path = tmp_path / "als_only.toml"
    path.write_text(f'base = "{SMOKE}"\n[run]\nstages = ["baselines"]\nfinal = "als"\nbaselines = ["als", "popularity"]\n')
    conf, art = load_pipeline_config(path), load_artifacts(smoke_run / "artifacts")
    fitted = []
    monkeypatch.setattr(stages, "fit_source", lambda name, *a, **k: fitted.append(name) or {})
    stages.baselines(art, tmp_path / "baselines", conf, resume=False)
    assert fitted == [n for n in MODEL_STAGES["baselines"] if n in ("als", "popularity")] and len(fitted) == 2
    assert set(stages.list_files(tmp_path, conf)) == {"als", "popularity"}
    path.write_text(f'base = "{SMOKE}"\n[run]\nbaselines = ["als", "knn"]\n')
    with pytest.raises(PipelineError, match=r"\[run\].baselines") as err:
        load_pipeline_config(path)
    assert "als_only.toml" in str(err.value) and "\n" not in str(err.value)
    path.write_text(f'base = "{SMOKE}"\n[run]\nbaselines = ["als"]\n')  # the reranker's title kNN cold start is gone
    with pytest.raises(PipelineError, match="cold_source"):
        load_pipeline_config(path)


def test_a_source_refits_after_its_validation_model_is_let_go(smoke_run, tmp_path, monkeypatch):
    """Holding the validation model through the refit doubles a source's memory at its peak (ALS's
    item factors: 4 GB at 1M playlists); only what validation chose may cross over."""
    import gc
    import weakref

    from pipeline import stages
    from pipeline.config import REGISTRY, load_pipeline_config
    from preprocess.artifacts import load_artifacts

    cfg, out = SMOKE, smoke_run
    conf, art = load_pipeline_config(cfg), load_artifacts(out / "artifacts")
    source, made, alive_at_fit = REGISTRY["popularity"], [], []
    real = source.fit.__func__

    def fit(cls, *a, **k):
        gc.collect()
        alive_at_fit.append(sum(r() is not None for r in made))
        model = real(cls, *a, **k)
        made.append(weakref.ref(model))
        return model

    monkeypatch.setattr(source, "fit", classmethod(fit))
    stages.fit_source("popularity", art, tmp_path, conf)
    assert alive_at_fit == [0, 0]


def _assert_stated(value, resolved, where: str) -> None:
    """A config file's value is the resolved one; in a table of tables ([[mmcf.schemes]]) each entry's
    stated keys are, the defaults filling what an entry leaves out."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        assert len(resolved) == len(value), where
        for i, (entry, got) in enumerate(zip(value, resolved)):
            for key, v in entry.items():
                _assert_stated(v, got[key], f"{where}[{i}].{key}")
    else:
        assert (list(resolved) if isinstance(resolved, tuple) else resolved) == value, (where, value, resolved)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_its_own_values_are_the_runs(path):
    """A user's first contact with a config is run.py refusing it: each file in configs/ must pass the
    checks (known keys, stages, a final list its stages make) that run.py applies before any work;
    and what the file states must be what the stages get, over its base and the code's defaults
    (a registered source's own section included)."""
    import tomllib

    from pipeline.config import load_pipeline_config

    cfg = load_pipeline_config(path)
    stated = tomllib.loads(path.read_text())
    stated.pop("base", None)
    for section, values in stated.items():
        resolved = cfg.section(section)
        for key, value in values.items():
            _assert_stated(value, resolved[key], f"{path.name} [{section}] {key}")


def test_rerank_limits_refits_the_runs_own_ranker(smoke_run, tmp_path):
    """bench/rerank_limits.py's figures are offline refits of the ranker: with no override it must
    score the run's own reranker to the digit, or its curves measure some other model."""
    cfg, out = SMOKE, smoke_run
    proc = subprocess.run([sys.executable, "bench/rerank_limits.py", "settings", "--run", str(out), "--config", str(cfg),
                           "--overrides", "", "--work", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("as configured"))
    test = json.loads((out / "metrics.json").read_text())["test"]["rerank"]["category_mean"]
    assert f"R {test['r_precision']:.4f} NDCG {test['ndcg']:.4f}" in line


def test_mmcf_skips_its_refit_where_validation_adds_too_few_playlists(smoke_run, tmp_path, monkeypatch):
    """Under [mmcf] refit_min_share the autoencoders and the title model train once: refit/ is the
    selected models' copy and serves the challenge; at or above it they train again on every playlist."""
    import dataclasses

    from mmcf import train as mmcf_train
    from pipeline import stages
    from pipeline.config import load_pipeline_config
    from preprocess.artifacts import load_artifacts

    art = load_artifacts(smoke_run / "artifacts")
    conf = load_pipeline_config(SMOKE)
    share = len(art.playlists("val")) / len(art.playlists("train"))
    assert conf.mmcf.refits(len(art.playlists("train")), len(art.playlists("val")))  # the smoke run refits
    conf = dataclasses.replace(conf, mmcf=dataclasses.replace(conf.mmcf, refit_min_share=share * 1.01))
    calls, real = [], mmcf_train.train_all
    monkeypatch.setattr(mmcf_train, "train_all", lambda *a, **k: calls.append(k.get("refit_from")) or real(*a, **k))
    out = tmp_path / "mmcf"
    stages.mmcf(art, out, conf)
    assert calls == [None]  # the selection only
    for f in (out / "models").iterdir():
        assert (out / "refit" / f.name).read_bytes() == f.read_bytes()
    lists = np.load(out / "dae.npz")
    assert lists["challenge_ids"].shape[0] == len(art.playlists("challenge"))
    title = tmp_path / "charcnn"
    stages.charcnn(art, out, title, conf)
    assert (title / "refit" / "title_model.pt").read_bytes() == (title / "model" / "title_model.pt").read_bytes()


def test_paired_comparison_matches_the_runs_metrics_and_pairs_only_the_same_playlists(smoke_run):
    """bench/compare_runs.py --paired: A - B over the same challenge playlists, categories equal, is
    the difference of the two models' category means in metrics.json; a run against itself is 0 +- 0."""
    out = subprocess.run([sys.executable, "bench/compare_runs.py", "--paired", f"a={smoke_run}:rerank",
                          f"b={smoke_run}:als"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    test = json.loads((smoke_run / "metrics.json").read_text())["test"]
    row = next(line for line in out.stdout.splitlines() if line.startswith("| r_precision"))
    diff = float(row.split("|")[3].split("+-")[0])
    want = test["rerank"]["category_mean"]["r_precision"] - test["als"]["category_mean"]["r_precision"]
    assert abs(diff - want) < 1e-4 and abs(float(row.split("|")[2]) - test["als"]["category_mean"]["r_precision"]) < 1e-4
    same = subprocess.run([sys.executable, "bench/compare_runs.py", "--paired", f"a={smoke_run}:als",
                           f"b={smoke_run}:als"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "| r_precision |" in same.stdout and "+0.0000 +- 0.0000" in same.stdout
