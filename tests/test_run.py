"""The stage runner end to end on a tiny synthetic MPD with every stage (baselines, autoencoders,
title model, reranker): determinism, skipping, kill mid-training and resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.toml"  # every stage, with budgets small enough for seconds


def run(out: Path, cfg: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "run.py", "--out", str(out), "--config", str(cfg), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("run") / "a"
    proc = run(out, SMOKE)
    return SMOKE, out, proc


def test_default_run_writes_submission_report_and_table(tiny):
    cfg, out, proc = tiny
    assert (out / "submission.csv").exists() and (out / "report" / "report.md").exists()
    assert "R-prec: category" in proc.stdout
    assert all(name in proc.stdout for name in ("item_knn", "dae", "mmcf", "rerank"))
    lines = (out / "submission.csv").read_text().splitlines()
    assert lines[0].startswith("team_info,") and len(lines) == 1 + 80
    assert all(len(line.split(",")) == 501 for line in lines[1:])
    verify = subprocess.run([sys.executable, "-m", "submission.verify", "--submission", str(out / "submission.csv"),
                             "--challenge", str(out / "data/local/challenge_set.json")], cwd=ROOT, capture_output=True)
    assert verify.returncode == 0


def test_report_metrics_agree_with_the_official_scorer_of_the_submission(tiny):
    cfg, out, _ = tiny
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


def test_rerun_skips_finished_stages_and_is_byte_identical(tiny, tmp_path):
    cfg, out, _ = tiny
    before = (out / "submission.csv").read_bytes()
    proc = run(out, cfg)
    assert proc.stderr.count("up to date, skipped") == 6  # data, artifacts, baselines, mmcf, charcnn, rerank
    assert (out / "submission.csv").read_bytes() == before
    fresh = tmp_path / "b"
    run(fresh, cfg)
    assert (fresh / "submission.csv").read_bytes() == before


def test_killed_mid_training_resumes_to_the_same_submission(tiny, tmp_path):
    """SIGKILL once the autoencoders have written a mid-training checkpoint: the re-run skips the
    finished stages, resumes training from the checkpoint and ends byte-identical."""
    cfg, out, _ = tiny
    target = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "run.py", "--out", str(target), "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    models = target / "mmcf" / "models"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (models.is_dir() and any(models.glob("*.ckpt.pt"))):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (target / "mmcf" / "stage.json").exists() and not (target / "submission.csv").exists()
    resumed = run(target, cfg)
    assert "baselines: up to date, skipped" in resumed.stderr and "mmcf: up to date" not in resumed.stderr
    assert "tied: resuming at update" in resumed.stderr
    assert (target / "submission.csv").read_bytes() == (out / "submission.csv").read_bytes()


def test_stage_commands_in_order_give_run_py_submission_byte_for_byte(tiny, tmp_path):
    cfg, out, _ = tiny
    local, run_dir = out / "data" / "local", tmp_path / "stages"
    steps = [
        ["preprocess.build", "--mpd", local / "train", "--challenge", local / "challenge_set.json",
         "--out", run_dir / "artifacts"],
        ["baselines", "--artifacts", run_dir / "artifacts", "--out", run_dir / "baselines"],
        ["mmcf", "--artifacts", run_dir / "artifacts", "--out", run_dir / "mmcf"],
        ["charcnn", "--artifacts", run_dir / "artifacts", "--dae", run_dir / "mmcf", "--out", run_dir / "charcnn"],
        ["ensemble", "--run", run_dir],
        ["submission.write", "--run", run_dir, "--challenge", local / "challenge_set.json"],
    ]
    for step in steps:
        proc = subprocess.run([sys.executable, "-m", *map(str, step), "--config", str(cfg)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (step[0], proc.stderr[-2000:])
    assert (run_dir / "submission.csv").read_bytes() == (out / "submission.csv").read_bytes()


def test_a_stage_command_without_its_inputs_names_the_missing_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ensemble", "--run", str(tmp_path), "--config", str(SMOKE)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "manifest.json: missing" in proc.stderr


ENTRY_POINTS = {
    "run.py": ["run.py", "--out", "{tmp}/o"],
    "preprocess.build": ["-m", "preprocess.build", "--mpd", "{tmp}", "--out", "{tmp}/a"],
    "baselines": ["-m", "baselines", "--artifacts", "{tmp}", "--out", "{tmp}/b"],
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


def test_one_playlist_and_batch_paths_give_the_reranker_the_same_feature_rows(tiny):
    """recommend.py's path (a challenge entry -> challenge_set -> every model's list -> features) and the
    ensemble stage's (saved challenge lists) agree row for row on the reranker's inputs: the same
    candidates in the same order, and the same features up to float32 rounding (a matrix product over
    one row and over a batch of rows round differently, ~2e-6 relative in the autoencoders' scores)."""
    from ensemble.features import build_features
    from ensemble.ranker import prepare
    from pipeline import stages
    from pipeline.recommend import Recommender, playlist_set

    _, out, _ = tiny
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


def test_recommend_one_playlist_from_a_finished_run(tiny):
    import json

    _, out, _ = tiny
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


def test_a_baselines_stage_killed_half_way_refits_only_its_unfinished_sources(tiny, tmp_path, monkeypatch):
    import shutil

    from pipeline import stages
    from pipeline.config import MODEL_STAGES, load_pipeline_config
    from preprocess.artifacts import load_artifacts

    cfg, out, _ = tiny
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


def test_a_source_refits_after_its_validation_model_is_let_go(tiny, tmp_path, monkeypatch):
    """Holding the validation model through the refit doubles a source's memory at its peak (ALS's
    item factors: 4 GB at 1M playlists); only what validation chose may cross over."""
    import gc
    import weakref

    from pipeline import stages
    from pipeline.config import REGISTRY, load_pipeline_config
    from preprocess.artifacts import load_artifacts

    cfg, out, _ = tiny
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


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_its_final_is_made(path):
    """A user's first contact with a config is run.py refusing it: each file in configs/ must pass the
    checks (known keys, stages, a final list its stages make) that run.py applies before any work,
    which raise on the first problem."""
    from pipeline.config import load_pipeline_config
    assert load_pipeline_config(path).path == path


def test_rerank_limits_refits_the_runs_own_ranker(tiny, tmp_path):
    """bench/rerank_limits.py's figures are offline refits of the ranker: with no override it must
    score the run's own reranker to the digit, or its curves measure some other model."""
    cfg, out, _ = tiny
    proc = subprocess.run([sys.executable, "bench/rerank_limits.py", "settings", "--run", str(out), "--config", str(cfg),
                           "--overrides", "", "--work", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("as configured"))
    test = json.loads((out / "metrics.json").read_text())["test"]["rerank"]["category_mean"]
    assert f"R {test['r_precision']:.4f} NDCG {test['ndcg']:.4f}" in line
