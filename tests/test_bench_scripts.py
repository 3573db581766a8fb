"""The GPU machine's prepared checks, run on CPU with tiny settings, so a lent GPU's few minutes are not
spent finding that a script is broken. bench/gpu_lease.sh runs the other two (bench/gpu_full.sh, then
bench/gpu_pipeline.sh), so one call covers all three; its pipeline resumes a copy of the session's smoke
run, whose stages are skipped, so the test pays for the speed check and not for a second pipeline."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_lease_runs_both_checks_and_gathers_their_reports(smoke_run, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    shutil.copytree(smoke_run, work / "run")
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE": "cpu", "WORK": str(work),
           "BENCH_ARGS": "--scale 0.001 --updates 2 --device cpu"}
    done = subprocess.run(["bash", "bench/gpu_lease.sh", str(out), "configs/smoke.toml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"gpu_lease.sh failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert "gpu_full: exit 0" in done.stdout and "gpu_pipeline: exit 0" in done.stdout

    full = (out / "gpu_full.md").read_text()
    for scheme, phases in {"0to1_inorder": ["tied"], "5_inorder": ["tied", "untied"],
                           "10to100_inorder": ["tied", "untied"], "25to100_random": ["tied", "untied"]}.items():
        for phase in phases:
            assert f"| {scheme} | {phase} | fp32 |" in full
    assert "2,262 tracks + 1,000 artists" in full  # the full catalogue's counts, scaled
    assert "Title model" in full and "dense budget of configs/full_mpd.toml" in full

    pipeline, log = (out / "gpu_pipeline.md").read_text(), (out / "run.log").read_text()
    for stage in ("data", "artifacts", "baselines", "mmcf", "charcnn", "ensemble"):
        assert f"- {stage}: done in" in pipeline, f"stage {stage} missing from the report"
        assert f"- {stage}: done in" in done.stdout  # the stage lines, read back from the gathered log
        assert f"stages: {stage}: up to date, skipped" in log, f"stage {stage} ran again: WORK's run not resumed"
    gpu = shutil.which("nvidia-smi") is not None
    assert ("peak GPU memory (nvidia-smi, whole device): no GPU" in pipeline) != gpu
    assert "| **all** |" in pipeline  # run.py's metrics table
    assert (out / "gpu_memory.csv").exists()


def test_cut_to_drops_tracks_outside_the_vocabulary_and_moves_the_rest_up_in_order():
    sys.path.insert(0, str(ROOT / "bench"))
    from dense_reach import cut_to

    keep = np.array([True, False, True, True, False])
    ids = np.array([[1, 3, 4, 0, -1], [2, 0, 3, 1, 4]])
    assert cut_to(ids, keep).tolist() == [[3, 0, -1, -1, -1], [2, 0, 3, -1, -1]]


def test_dense_reach_scores_a_runs_list_whole_and_cut_per_category(smoke_run):
    done = subprocess.run([sys.executable, "bench/dense_reach.py", str(smoke_run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "category" not in line]
    assert len(rows) == 10
    values = [[float(v) for v in row[1:]] for row in rows]
    assert all(0.0 <= v <= 1.0 for row in values for v in row)
    assert min(row[2] for row in values) < 1.0  # the smoke budget narrows the vocabulary below the catalogue
    assert "top 500:" in done.stdout


def test_long_input_hits_takes_each_playlists_first_r_and_counts_its_seed_artists_tracks():
    sys.path.insert(0, str(ROOT / "bench"))
    import scipy.sparse as sp
    from long_input_hits import by_seed_artist, top_r

    listed = top_r(np.array([[3, 1, 0], [2, -1, 4]]), np.array([2, 3]), 5)
    assert listed.toarray().tolist() == [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1]]
    track_artist = np.array([0, 0, 1, 1, -1])  # track 4's artist not kept
    seed_artists = sp.csr_matrix(np.array([[1, 0], [0, 1]], dtype=np.float32))  # playlist 0: artist 0; 1: artist 1
    # playlist 0 lists tracks 1 (artist 0: yes) and 3 (artist 1: no); playlist 1 tracks 2 (yes) and 4 (no artist)
    assert by_seed_artist(listed, seed_artists, track_artist) == 2


def test_long_input_hits_splits_each_models_hits_by_count_within_the_withheld(smoke_run):
    done = subprocess.run([sys.executable, "bench/long_input_hits.py", str(smoke_run), "--models", "als", "dae"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "category" not in line]
    withheld = {r[0].strip(): [float(v) for v in r[2:]] for r in rows if r[1].strip() == "withheld"}
    assert len(withheld) == 10
    for r in rows:
        c, values = r[0].strip(), [float(v) for v in r[2:]]
        assert sum(values[2:]) == values[0]  # the bands split the hits whole
        assert all(v <= w for v, w in zip(values[2:], withheld[c][2:]))  # no band hits more than it withholds
        assert 0.0 <= values[1] <= 1.0
    assert {r[1].strip() for r in rows} == {"withheld", "als", "dae"}
