"""Data-parallel training (common/distributed.py): 2 gloo processes on the CPU against 1 process.

Both runs see the same global batches and random masks, so the only difference is the order of
float sums (two partial gradient sums of the shards instead of one over the batch, ~1e-7
relative). Adam normalises each step by the gradient's own scale, so such differences stay at
that relative size over a few updates; the tolerances below (1e-4 relative on losses, 1e-5 on
weights of size ~0.1..3) are ~100x above what that predicts and far below what one different
mask or batch row would cause (loss changes of ~1e-2).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import charcnn.train as cct
import mmcf.train as mt
from charcnn.config import TitleConfig
from charcnn.model import TitleModel
from common import distributed
from common.errors import PipelineError
from common.io import load_npz, write_json
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.model import DAE
from mmcf.predict import MMCFModels
from preprocess.artifacts import FORMAT_VERSION, Artifacts, load_artifacts, save_playlists, save_vocab
from tests.psfake import make_set, make_vocab, whole_dense

WORLD = 2
N_TRACKS = 80  # artist = track // 4
TITLES = ["rock", "chill", "party", "sleep"]  # a playlist titled TITLES[g] draws from tracks 20 g .. 20 g + 19
SCHEME = "25to100_random"  # random input keep probability: the most random draws per batch


def _playlists(n: int, seed: int) -> tuple[list[list[int]], list[str]]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    lists = [[int(t) for t in rng.choice(np.arange(20 * g, 20 * g + 20), int(rng.integers(8, 16)), replace=False)]
             for g in group]
    return lists, [TITLES[g] for g in group]


def _write_artifacts(folder: Path) -> None:
    vocab = make_vocab(N_TRACKS)
    lists, titles = _playlists(200, 0)
    train = make_set(lists, vocab, titles=titles)
    vocab.track_count = np.bincount(train.tracks.indices, minlength=N_TRACKS).astype(np.int64)
    vlists, vtitles = _playlists(40, 1)
    cats = [1, 2, 3, 8, 10] * 8
    n_seeds = [{1: 0, 2: 1, 3: 5, 8: 5, 10: 5}[c] for c in cats]
    val = make_set([v[:n] for v, n in zip(vlists, n_seeds)], vocab, titles=vtitles,
                   holdouts=[v[n:] for v, n in zip(vlists, n_seeds)], category=cats)
    save_vocab(folder / "vocab.npz", vocab)
    save_playlists(folder / "train.npz", train)
    save_playlists(folder / "val.npz", val)
    save_playlists(folder / "val_full.npz", make_set(vlists, vocab, titles=vtitles))
    write_json(folder / "manifest.json", {"format_version": FORMAT_VERSION, "fingerprint": vocab.fingerprint})


def _dae_cfg() -> MMCFConfig:
    """Batch 33: the shards differ in size (17 + 16); 7 updates an epoch over the 200 playlists, 5 tied
    and 4 untied epochs: 9 checks. The full loss: the sampled one trains in one process."""
    scheme = SchemeConfig(SCHEME, [8, 10], "fraction", [1.0, 1.0], [0.5, 0.8], tied_epochs=5, untied_epochs=4)
    return MMCFConfig(hidden=8, batch_size=33, loss="full", val_playlists=40, precision="fp32", schemes=[scheme],
                      max_epochs=0)


def _title_cfg() -> TitleConfig:
    """Batch 67: unequal shards (34 + 33), 3 updates an epoch over the 200 playlists; 6 epochs: 6 checks.
    The sampled loss with few columns: every rank must score the same ones."""
    return TitleConfig(embed_dim=8, widths=[3, 5], filters=12, batch=67, epochs=6, lr=0.01, loss="sampled", head=10,
                       negatives=20, input_keep=0.3, predict_batch=16, train_scheme="s", precision="fp32")


def _frozen_dae(art: Artifacts) -> MMCFModels:
    n_out = N_TRACKS + art.vocab.n_artists
    dae = DAE(n_out, N_TRACKS, hidden=8)
    dae.init_weights(torch.Generator().manual_seed(0), np.full(n_out, 0.05))
    cfg = MMCFConfig(hidden=8, schemes=[SchemeConfig("s", list(range(1, 11)))])
    return MMCFModels(cfg=cfg, models={"s": dae.eval()}, fingerprint=art.vocab.fingerprint, dense=whole_dense(art.vocab, 200))


def _train_both(folder: Path, out: Path) -> dict:
    """Train the DAE (one scheme, tied then untied) and the title model in this process, alone or
    as one rank of the current group; returns per-update losses and the weights it ends with."""
    art = load_artifacts(folder)
    live: dict[str, torch.nn.Module] = {}
    phase_model = mt._phase_model

    def keep_dae(*args, **kw) -> DAE:
        live["dae"] = phase_model(*args, **kw)
        return live["dae"]

    def keep_title(*args, **kw) -> TitleModel:
        live["title"] = TitleModel(*args, **kw)
        return live["title"]

    with mock.patch.object(mt, "_phase_model", keep_dae), mock.patch.object(mt, "LOSS_EVERY", 1), \
            mock.patch.object(cct, "TitleModel", keep_title):
        dae = mt.train_all(art, out / "dae", _dae_cfg(), "cpu")
        title = cct.train_title_model(art, _frozen_dae(art), out / "title", _title_cfg(), "cpu")
    return {"dae_loss": [h["loss"] for h in dae["schemes"][SCHEME]["history"]],
            "title_loss": [h["loss"] for h in title["history"]],
            "dae": {k: v.detach().clone() for k, v in live["dae"].state_dict().items()},
            "title": {k: v.detach().clone() for k, v in live["title"].state_dict().items()}}


def _worker(rank: int, folder: Path, out: Path, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    with distributed.session(torch.device("cpu")):
        assert distributed.world_size() == WORLD
        result = _train_both(folder, out)
    torch.save(result, out / f"rank{rank}.pt")
    distributed.leave_worker(0)  # as the command-line entry points do


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("art")
    _write_artifacts(folder)
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = _train_both(folder, one)
    finally:
        torch.set_num_threads(threads)
    mp.spawn(_worker, args=(folder, two, _free_port()), nprocs=WORLD, join=True)
    ranks = [torch.load(two / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    return {"one": one, "two": two, "alone": alone, "ranks": ranks, "folder": folder}


@pytest.mark.parametrize("model", ["dae", "title"])
def test_two_processes_follow_the_one_process_loss_curve(runs, model):
    ref = np.array(runs["alone"][f"{model}_loss"], dtype=float)
    assert len(ref) == {"dae": 9, "title": 6}[model] and np.isfinite(ref).all()
    for r in runs["ranks"]:  # every rank reports the global batch's loss
        np.testing.assert_allclose(r[f"{model}_loss"], ref, rtol=1e-4)
    assert np.abs(np.diff(ref)).max() > 1e-2  # the curve moves: matching it is not trivially true


@pytest.mark.parametrize("model", ["dae", "title"])
def test_ranks_end_with_identical_weights_equal_to_one_process(runs, model):
    rank0, rank1 = (r[model] for r in runs["ranks"])
    assert rank0.keys() == rank1.keys() == runs["alone"][model].keys()
    for k, ref in runs["alone"][model].items():
        assert torch.equal(rank0[k], rank1[k]), k
        torch.testing.assert_close(rank0[k], ref, rtol=1e-5, atol=1e-5)


def test_rank_zero_alone_writes_what_one_process_writes(runs):
    for sub, name in [("dae", f"{SCHEME}.pt"), ("dae", "summary.json"), ("title", "title_model.pt")]:
        assert (runs["two"] / sub / name).exists(), name
    a = torch.load(runs["one"] / "dae" / f"{SCHEME}.pt", weights_only=True)
    b = torch.load(runs["two"] / "dae" / f"{SCHEME}.pt", weights_only=True)
    assert a["tied"] == b["tied"]
    for k in a["state"]:
        torch.testing.assert_close(b["state"][k], a["state"][k], rtol=1e-5, atol=1e-5)
    assert not list((runs["two"] / "dae").glob("*.ckpt.pt"))


def test_torchrun_entry_point(runs, tmp_path):
    """`torchrun -m mmcf` end to end: two processes, one table, the scheme selected and refit, lists written."""
    (tmp_path / "cfg.toml").write_text(
        "[mmcf]\nhidden = 8\nbatch_size = 50\nloss = \"full\"\nval_playlists = 20\nprecision = \"fp32\"\n"
        f"[[mmcf.schemes]]\nname = \"{SCHEME}\"\ncategories = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
        "tied_epochs = 2\nuntied_epochs = 1\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
                           "-m", "mmcf", "--artifacts", str(runs["folder"]), "--out", str(tmp_path / "out"),
                           "--config", str(tmp_path / "cfg.toml"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=120, env=env,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-8000:]
    assert proc.stdout.count("all ") == 1  # rank 0 alone prints the table
    for folder in ("models", "refit"):
        assert (tmp_path / "out" / folder / f"{SCHEME}.pt").exists()
    assert set(load_npz(tmp_path / "out" / "dae.npz")) == {"val_ids", "val_scores"}  # no challenge set built


def test_shards_cover_the_batch_and_differ_by_at_most_one():
    for n, world in [(250, 4), (33, 2), (7, 7), (150, 3)]:
        parts = [distributed.bounds(n, r, world) for r in range(world)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        sizes = [hi - lo for lo, hi in parts]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(PipelineError, match="cannot be split over 4 processes"):
        distributed.bounds(3, 0, 4)


def test_without_torchrun_nothing_is_initialised(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    with distributed.session(torch.device("cpu")) as device:
        assert device == torch.device("cpu") and not distributed.active()
        assert (distributed.world_size(), distributed.rank(), distributed.shard(250)) == (1, 0, (0, 250))
        assert distributed.broadcast_from_main("x") == "x" and distributed.all_reduce_loss(2.5, 0.5) == 2.5
