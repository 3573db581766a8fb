"""The stage runner end to end on a tiny synthetic MPD with every stage (baselines, autoencoders,
title model, reranker): determinism, skipping, kill mid-training and resume."""
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
    assert "resuming tied phase at update" in resumed.stderr
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
    assert {"popularity", "item_knn", "title_popularity", "dae", "mmcf", "rerank"} <= set(answer["tracks"][0])
    assert answer["final"] == "rerank"  # the run's final model
    ranked = [t["rerank"] for t in answer["tracks"]]
    assert ranked == sorted(ranked, reverse=True) and np.isfinite(ranked).all()
    bad = subprocess.run([sys.executable, "recommend.py", "--run", str(out / "nope"), "--title", "x"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
