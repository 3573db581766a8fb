"""The GPU machine's prepared checks (bench/gpu_full.sh, bench/gpu_pipeline.sh, and bench/gpu_lease.sh,
which runs both), run on CPU with tiny settings, so a lent GPU's few minutes are not spent finding
that a script is broken."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, **env: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "bench" / script), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, **env}, timeout=600)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def test_gpu_full_runs_every_scheme_phase_and_the_title_model(tmp_path):
    out = _run("gpu_full.sh", str(tmp_path), BENCH_ARGS="--scale 0.001 --updates 2 --device cpu")
    for scheme, phases in {"0to1_inorder": ["tied"], "5_inorder": ["tied", "untied"],
                           "10to100_inorder": ["tied", "untied"], "25to100_random": ["tied", "untied"]}.items():
        for phase in phases:
            assert f"| {scheme} | {phase} | fp32 |" in out
    assert "2,262 tracks + 1,000 artists" in out  # the full catalogue's counts, scaled
    assert "Title model" in out and "dense budget of configs/full_mpd.toml (dense_memory_mb = 60000)" in out
    assert (tmp_path / "gpu_full.md").read_text() == out


def test_gpu_pipeline_runs_every_stage_and_reports_them(tmp_path):
    out = _run("gpu_pipeline.sh", str(tmp_path), "configs/smoke.toml", DEVICE="cpu")
    for stage in ("data", "artifacts", "baselines", "mmcf", "charcnn", "ensemble"):
        assert f"- {stage}: done in" in out, f"stage {stage} missing from the report"
    gpu = shutil.which("nvidia-smi") is not None
    assert ("peak GPU memory (nvidia-smi, whole device): no GPU" in out) != gpu
    assert "| **all** |" in out  # run.py's metrics table
    assert (tmp_path / "run" / "submission.csv").exists()


def test_gpu_lease_runs_both_checks_and_gathers_their_reports(tmp_path):
    out = _run("gpu_lease.sh", str(tmp_path), "configs/smoke.toml", DEVICE="cpu",
               BENCH_ARGS="--scale 0.001 --updates 2 --device cpu")
    assert "gpu_full: exit 0" in out and "gpu_pipeline: exit 0" in out
    assert "| 25to100_random | untied | fp32 |" in (tmp_path / "gpu_full.md").read_text()
    for name in ("gpu_pipeline.md", "run.log", "gpu_memory.csv"):
        assert (tmp_path / name).exists(), name
    assert "- charcnn: done in" in out  # the stage lines, read back from the run's log
