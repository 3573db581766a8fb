"""Fixtures shared by the test files: one finished smoke run per test session."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.toml"  # every stage, with budgets small enough for seconds


@pytest.fixture(scope="session")
def smoke_run_process(tmp_path_factory) -> subprocess.CompletedProcess:
    """`run.py --out DIR --config configs/smoke.toml`, run once per session: its printed metrics table
    is in .stdout, its log in .stderr."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    proc = subprocess.run([sys.executable, "run.py", "--out", str(out), "--config", str(SMOKE)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="session")
def smoke_run(smoke_run_process) -> Path:
    """The folder of a finished `configs/smoke.toml` run (`run.py --out DIR --config configs/smoke.toml`).
    Read-only by contract: every test of the session sees the same folder, so a test that changes
    anything in it copies it first (`shutil.copytree(smoke_run, tmp_path / "run")`)."""
    args = smoke_run_process.args
    return Path(args[args.index("--out") + 1])
