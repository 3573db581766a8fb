"""The MMCF denoising autoencoder: model, loss, batches, training with resume, prediction."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from common.errors import PipelineError
from common import trainer
from mmcf import train as train_mod
from common.config import from_dict
from pipeline.config import load_pipeline_config
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.model import DAE, Bag, Target, weighted_bce_with_logits
from mmcf.predict import encode_inputs, load_models, predict, route
from mmcf.train import Batcher, principal_directions, select_gains, train_all, val_rows
from mmcf.predict import recommend
from common.metrics import list_metrics
from preprocess.artifacts import Artifacts, PlaylistSet, save_playlists
from common.categories import BY_ID
from tests.psfake import make_set, make_vocab

N_CLUSTERS, PER_CLUSTER = 8, 40  # tracks 0..319; artist = track // 4, so each cluster owns 10 artists
N_TRACKS = N_CLUSTERS * PER_CLUSTER


def clustered_playlists(n: int, seed: int, min_len: int = 12, max_len: int = 36) -> list[list[int]]:
    """Playlists drawn from one cluster each (skewed inside it), plus one globally popular track: a
    co-occurrence signal a model can learn and popularity cannot."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        c = rng.integers(N_CLUSTERS)
        length = int(rng.integers(min_len, max_len + 1))
        p = 1.0 / np.arange(1, PER_CLUSTER + 1) ** 0.7
        tracks = (c * PER_CLUSTER + rng.choice(PER_CLUSTER, size=min(length, PER_CLUSTER), replace=False,
                                               p=p / p.sum())).tolist()
        tracks.insert(int(rng.integers(len(tracks))), int(rng.integers(4)) * PER_CLUSTER)  # a popular head track
        out.append(list(dict.fromkeys(tracks)))
    return out


def tiny_cfg(**kw) -> MMCFConfig:
    """6 updates an epoch over the 600 training playlists; the CPU's sampled loss over 40 whole
    columns (positives aside) and 40 draws of the ~400 outputs, so the mean field is exercised."""
    schemes = [
        SchemeConfig("0to1_inorder", [1, 2], "fraction", [0.0, 0.3], [0.75, 0.75], tied_epochs=3, untied_epochs=0),
        SchemeConfig("5_inorder", [3, 4], "count", [1, 50], [0.75, 0.75], tied_epochs=2, untied_epochs=2),
        SchemeConfig("10to100_inorder", [5, 6, 7, 9], "fraction", [0.3, 0.6], [0.75, 0.75], tied_epochs=2,
                     untied_epochs=1),
        SchemeConfig("25to100_random", [8, 10], "fraction", [1.0, 1.0], [0.5, 0.8], tied_epochs=2,
                     untied_epochs=1),
    ]
    base = dict(hidden=16, batch_size=100, head=40, negatives=40, val_playlists=50, precision="fp32", schemes=schemes,
                max_epochs=0)
    base.update(kw)
    return MMCFConfig(**base)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster, and immune to stalls when other processes load the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Artifacts:
    """A train set of clustered playlists and a validation set with challenge-like seeds per category."""
    folder = tmp_path_factory.mktemp("art")
    vocab = make_vocab(N_TRACKS)
    train = make_set(clustered_playlists(600, seed=1), vocab)
    seeds, holds, cats = [], [], []
    for i, pl in enumerate(clustered_playlists(160, seed=2, min_len=30, max_len=40)):
        cat = BY_ID[1 + i % 10]
        n = min(cat.n_seeds, len(pl) - 5)
        idx = (np.random.default_rng(i).permutation(len(pl)) if cat.random else np.arange(len(pl)))
        seeds.append([pl[j] for j in sorted(idx[:n])])
        holds.append([pl[j] for j in sorted(idx[n:])])
        cats.append(cat.id)
    val = make_set(seeds, vocab, holdouts=holds, category=cats)
    save_playlists(folder / "train.npz", train)
    save_playlists(folder / "val.npz", val)
    save_playlists(folder / "val_full.npz", make_set([s + h for s, h in zip(seeds, holds)], vocab))
    vocab.track_count = np.bincount(train.tracks.indices, minlength=N_TRACKS).astype(np.int64)
    return Artifacts(folder=folder, manifest={}, vocab=vocab)


# --- model and loss ---------------------------------------------------------------------------------

def test_loss_matches_hand_computation():
    z = torch.tensor([[0.0, 2.0, -1.0], [3.0, -2.0, 0.5]])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    row0 = -(math.log(sig(0.0)) + 0.55 * math.log(1 - sig(2.0)) + math.log(sig(-1.0)))
    row1 = -(0.55 * math.log(1 - sig(3.0)) + 0.55 * math.log(1 - sig(-2.0)) + math.log(sig(0.5)))
    assert float(weighted_bce_with_logits(z, y, 0.55)) == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # stable for extreme logits, where log(sigmoid) would underflow to -inf
    big = weighted_bce_with_logits(torch.tensor([[200.0, -200.0]]), torch.tensor([[0.0, 1.0]]), 0.55)
    assert float(big) == pytest.approx(0.55 * 200 + 200, rel=1e-5)


def _random_batch(n_items: int, rows: int, seed: int) -> tuple[Bag, Target]:
    x = sp.random(rows, n_items, density=0.08, format="csr", random_state=seed, dtype=np.float32)
    x = sp.csr_matrix(sp.diags(1 / np.maximum(x.sum(1).A1, 1e-9)) @ x)
    y = sp.random(rows, n_items, density=0.1, format="coo", random_state=seed + 1)
    return Bag.from_csr(x), Target(torch.from_numpy(y.row.astype(np.int64)), torch.from_numpy(y.col.astype(np.int64)))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("bf16", [False, True])
def test_hand_written_gradients_match_autograd(tied, bf16):
    model = DAE(120, 90, hidden=8, tied=True)
    model.init_weights(torch.Generator().manual_seed(0), np.linspace(0.01, 0.3, 120))
    if not tied:
        model = model.untied_copy()
        with torch.no_grad():
            model.W_dec.add_(0.05 * torch.randn(model.W_dec.shape, generator=torch.Generator().manual_seed(1)))
    bag, target = _random_batch(120, 7, seed=3)
    mask = model.dropout_mask(7, 0.8, torch.Generator().manual_seed(2))
    loss = model.loss_and_grad(bag, target, 0.55, mask, bf16=bf16)
    fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = None
    ref = model.reference_loss(bag, target, 0.55, mask)
    ref.backward()
    ref = ref.detach()
    tol = 2e-2 if bf16 else 1e-5
    assert loss == pytest.approx(float(ref), rel=tol)
    for n, p in model.named_parameters():
        assert torch.allclose(fast[n], p.grad, rtol=tol, atol=tol * float(p.grad.abs().max())), n
    assert math.isnan(model.loss_and_grad(bag, target, 0.55, mask, with_loss=False))


def test_tied_weights_are_one_parameter_and_untied_copy_starts_equal():
    model = DAE(50, 40, hidden=6, tied=True)
    model.init_weights(torch.Generator().manual_seed(0))
    params = dict(model.named_parameters())
    assert set(params) == {"W", "b_enc", "b_dec"} and model.decoder_weight is model.W
    bag, _ = _random_batch(50, 4, seed=5)
    before = model.logits(bag).detach()
    with torch.no_grad():
        model.W[7].add_(1.0)  # one parameter: the change reaches the decoder's row 7 as well
    after = model.logits(bag).detach()
    assert not torch.allclose(before[:, 7], after[:, 7])
    untied = model.untied_copy()
    assert set(dict(untied.named_parameters())) == {"W", "b_enc", "W_dec", "b_dec"}
    assert untied.W_dec.data_ptr() != untied.W.data_ptr()
    assert torch.allclose(untied.logits(bag), after)


@pytest.mark.parametrize("tied", [True, False])
def test_a_loaded_model_holds_the_state_it_was_given_without_a_copy(tied):
    """At 1M playlists a copy of a model's weights is gigabytes held beside the loaded file."""
    trained = DAE(50, 40, hidden=6, tied=True)
    trained.init_weights(torch.Generator().manual_seed(0))
    trained = (trained if tied else trained.untied_copy()).eval()
    state = {k: v.detach().clone() for k, v in trained.state_dict().items()}
    loaded = DAE.from_state(state, 50, 40, 6, tied)
    assert all(p.data_ptr() == state[k].data_ptr() for k, p in loaded.named_parameters())
    bag, _ = _random_batch(50, 4, seed=5)
    assert torch.equal(loaded.logits(bag), trained.logits(bag)) and not loaded.training


def test_forward_sparse_is_the_dense_formula():
    """The sparse path (an EmbeddingBag sum over the input's weighted nonzeros) computes SPEC's
    sigmoid(sigmoid(x W + b_enc) W_dec^T + b_dec), with the decoder's own weights when untied."""
    gen = torch.Generator().manual_seed(0)
    model = DAE(30, 20, hidden=4, tied=False)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    x = sp.random(5, 30, density=0.2, format="csr", random_state=0, dtype=np.float32)
    w, b_enc, w_dec, b_dec = (t.detach().double().numpy() for t in (model.W, model.b_enc, model.W_dec, model.b_dec))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    want = sigmoid(sigmoid(x.toarray() @ w + b_enc) @ w_dec.T + b_dec)
    np.testing.assert_allclose(model.forward_sparse(x).double().numpy(), want, rtol=1e-5, atol=1e-6)


def test_principal_directions_match_a_dense_svd_and_init_scales_rows(data):
    train = data.playlists("train")
    dirs = principal_directions(train, 8, seed=0)
    x = sp.hstack([train.tracks, train.artists]).toarray().astype(np.float64)
    x = (x > 0) / (x > 0).sum(axis=1, keepdims=True)
    v_ref = np.linalg.svd(x, full_matrices=False)[2][:6].T
    assert np.allclose(dirs.T @ dirs, np.eye(8), atol=1e-4)
    assert np.allclose(np.linalg.svd(v_ref.T @ dirs[:, :6])[1], 1.0, atol=1e-3)  # same top subspace
    model = DAE(dirs.shape[0], N_TRACKS, hidden=8)
    model.init_weights(torch.Generator().manual_seed(0), np.full(dirs.shape[0], 0.05))
    model.init_principal(dirs, row_norm=2.0)
    assert float(model.W.detach().pow(2).sum(1).mean().sqrt()) == pytest.approx(2.0, rel=1e-4)
    # the output bias absorbs the average hidden state: an input whose pre-activation is zero scores 0.05
    h0 = torch.sigmoid(model.b_enc)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.W @ h0 + model.b_dec), torch.full((dirs.shape[0],), 0.05), atol=1e-5)


# --- batches ----------------------------------------------------------------------------------------

def _batches(ps: PlaylistSet, scheme: SchemeConfig, n: int = 40):
    b = Batcher(ps, scheme, 25, seed=0, key=(0, 0))
    return b, [(b.rows(u), b.batch(u)) for u in range(n)]


def test_hide_and_seek_feeds_one_half_and_targets_the_full_vector(data):
    ps = data.playlists("train")
    scheme = SchemeConfig("s", [8], "fraction", [1.0, 1.0], [0.75, 0.75])
    _, batches = _batches(ps, scheme)
    parts = {b.part for _, b in batches}
    assert parts == {"tracks", "artists"}
    for rows, b in batches:
        if b.part == "tracks":
            assert b.x.indices.max() < N_TRACKS
        else:
            assert b.x.indices.min() >= N_TRACKS
        full = sp.hstack([ps.tracks, ps.artists], format="csr")[rows]
        assert len(b.target_cols) == full.nnz
        got = sp.csr_matrix((np.ones(len(b.target_cols)), (b.target_rows, b.target_cols)), shape=full.shape)
        assert (got != (full > 0)).nnz == 0
    off = SchemeConfig("s", [8], "fraction", [1.0, 1.0], [0.75, 0.75], hide_and_seek=False)
    _, batches = _batches(ps, off)
    assert {b.part for _, b in batches} == {"tracks"} and all(b.x.indices.max() < N_TRACKS for _, b in batches)


def test_corruption_keeps_the_drawn_fraction_and_rows_sum_to_one(data):
    ps = data.playlists("train")
    scheme = SchemeConfig("s", [8], "fraction", [1.0, 1.0], [0.5, 0.8])
    _, batches = _batches(ps, scheme, n=60)
    kept, eligible, keeps = 0, 0, []
    for rows, b in batches:
        half = ps.tracks[rows] if b.part == "tracks" else ps.artists[rows]
        assert 0.5 <= b.keep <= 0.8
        keeps.append(b.keep)
        kept += b.x.nnz
        eligible += half.nnz * b.keep
        sums = np.asarray(b.x.sum(axis=1)).ravel()
        assert np.allclose(sums[sums > 0], 1.0, atol=1e-5)
    assert kept / eligible == pytest.approx(1.0, abs=0.03)
    assert np.std(keeps) > 0.05  # drawn per batch, not fixed


@pytest.mark.parametrize("kind,lo,hi", [("count", 1, 5), ("fraction", 0.3, 0.6), ("fraction", 0.0, 0.3)])
def test_first_n_truncation(data, kind, lo, hi):
    ps = data.playlists("train")
    scheme = SchemeConfig("s", [5], kind, [lo, hi], [1.0, 1.0])
    _, batches = _batches(ps, scheme, n=30)
    empty = 0
    for rows, b in batches:
        if b.part != "tracks":
            continue
        pos = ps.tracks[rows].tocsr()
        for i in range(len(rows)):
            fed = set(b.x.indices[b.x.indptr[i]:b.x.indptr[i + 1]])
            start, stop = pos.indptr[i], pos.indptr[i + 1]
            n = len(fed)
            assert fed == set(pos.indices[start:stop][pos.data[start:stop] <= n])  # exactly the first n
            if kind == "count":
                assert lo <= n <= hi
            else:  # at least one track, as the published code cuts
                length = ps.num_tracks[rows[i]]
                assert max(1, math.floor(lo * length)) <= n <= max(1, math.floor(hi * length))
            empty += n == 0
    assert empty == 0


def test_batches_cover_every_playlist_once_per_epoch(data):
    ps = data.playlists("train")
    b = Batcher(ps, SchemeConfig("s", [8]), 50, seed=0, key=(0, 0))
    rows = np.concatenate([b.rows(u) for u in range(len(ps) // 50)])
    assert np.array_equal(np.sort(rows), np.arange(len(ps)))


# --- inference inputs and routing -------------------------------------------------------------------

def test_encode_inputs_weights_long_in_order_seeds_and_normalises():
    vocab = make_vocab(200)
    seeds = [list(range(100)), list(range(100, 200)), [3, 4]]
    ps = make_set(seeds, vocab, category=[9, 10, 3])
    cfg = MMCFConfig()
    x, c = encode_inputs(ps, np.arange(3), cfg)
    assert np.allclose(np.asarray(x.sum(axis=1)).ravel(), 1.0)
    # c: every input weight, the artists' too (25, 25 and 2 of them at 0.5)
    assert c.tolist() == pytest.approx([85 * 0.15 + 15 + 12.5, 100.0 + 12.5, 2.0 + 1.0])
    row0 = x[0].toarray().ravel()
    # in order (category 9): the last 15 seeds weigh 1.0, earlier 0.15, artists 0.5, before normalising
    total = 85 * 0.15 + 15 + 0.5 * 25
    assert row0[99] == pytest.approx(1.0 / total) and row0[0] == pytest.approx(0.15 / total)
    assert row0[200 + 0] == pytest.approx(0.5 / total)
    row1 = x[1].toarray().ravel()  # random seeds (category 10): all 1.0
    assert row1[100] == pytest.approx(row1[199])


def test_input_gain_scales_the_normalised_rows_and_leaves_the_count_alone():
    vocab = make_vocab(200)
    ps = make_set([list(range(100)), [3, 4], []], vocab, category=[9, 3, 1])
    cfg = MMCFConfig()
    x1, c1 = encode_inputs(ps, np.arange(3), cfg)
    x3, c3 = encode_inputs(ps, np.arange(3), cfg, np.array([3.0, 1.5, 2.0]))
    assert np.asarray(x3.sum(axis=1)).ravel() == pytest.approx([3.0, 1.5, 0.0])  # the empty row stays empty
    assert np.allclose(x3[0].toarray(), 3.0 * x1[0].toarray()) and c3.tolist() == pytest.approx(c1.tolist())


def test_route_by_category_and_uncategorised_by_seed_count():
    vocab = make_vocab(40)
    ps = make_set([[], [1], [1, 2, 3, 4, 5], list(range(10)), list(range(30))], vocab,
                  category=[1, 2, 4, 0, 0])
    cfg = MMCFConfig()
    names = [cfg.schemes[i].name for i in route(ps, cfg)]
    assert names == ["0to1_inorder", "0to1_inorder", "5_inorder", "10to100_inorder", "10to100_inorder"]
    partial = MMCFConfig(schemes=[SchemeConfig("only", [1, 2])])
    with pytest.raises(PipelineError, match="no scheme serves"):
        route(ps, partial)


# --- training, resume, prediction -------------------------------------------------------------------

def _weights(out: Path, schemes: list[str] | None = None) -> dict[str, torch.Tensor]:
    models = load_models(out, schemes=schemes)
    return {f"{s}.{k}": v for s, m in models.models.items() for k, v in m.state_dict().items()}


def test_training_is_reproducible_and_resumes_after_interruption(data, tmp_path, monkeypatch):
    cfg = tiny_cfg()
    first = train_all(data, tmp_path / "a", cfg, "cpu")
    ref = _weights(tmp_path / "a")
    assert {k.split(".")[0] for k in ref} == {s.name for s in cfg.schemes}
    phases = {name: {h["phase"] for h in s["history"]} for name, s in first["schemes"].items()}
    assert phases == {"0to1_inorder": {"tied"}, "5_inorder": {"tied", "untied"},
                      "10to100_inorder": {"tied", "untied"}, "25to100_random": {"tied", "untied"}}

    saves = {"n": 0}
    real_save = trainer._save

    def crash_mid_run(*args, **kw):
        real_save(*args, **kw)
        saves["n"] += 1
        if saves["n"] == 6:  # after the first of 5_inorder's two untied epochs
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_save", crash_mid_run)
    with pytest.raises(KeyboardInterrupt):
        train_all(data, tmp_path / "b", cfg, "cpu")
    assert (tmp_path / "b" / "5_inorder.untied.ckpt.pt").exists() and not (tmp_path / "b" / "5_inorder.pt").exists()
    monkeypatch.setattr(trainer, "_save", real_save)
    built, real_model = [], train_mod._phase_model
    monkeypatch.setattr(train_mod, "_phase_model", lambda *a: built.append(a[0] is None) or real_model(*a))
    summary = train_all(data, tmp_path / "b", cfg, "cpu")
    # 0to1 was kept before the crash; 5_inorder's finished tied phase is not rebuilt, only its untied one
    assert built == [False, True, False, True, False]
    resumed = _weights(tmp_path / "b")
    assert ref.keys() == resumed.keys()
    for k in ref:
        assert torch.equal(ref[k], resumed[k]), k
    assert not list((tmp_path / "b").glob("*.ckpt.pt"))
    assert [h["update"] for h in summary["schemes"]["5_inorder"]["history"]] == [6, 12, 6, 12]  # an epoch each

    train_all(data, tmp_path / "c", tiny_cfg(seed=1), "cpu", schemes=["0to1_inorder"])
    other = _weights(tmp_path / "c", ["0to1_inorder"])
    assert not torch.equal(other["0to1_inorder.W"], ref["0to1_inorder.W"])


def test_model_selection_keeps_only_improvements(data, tmp_path):
    cfg = tiny_cfg()
    summary = train_all(data, tmp_path, cfg, "cpu", schemes=["25to100_random"])
    hist = summary["schemes"]["25to100_random"]["history"]
    best = -1.0
    for h in hist:
        assert h["improved"] == (h["val_r_precision"] > best)
        best = max(best, h["val_r_precision"])
    assert summary["schemes"]["25to100_random"]["best_val_r_precision"] == pytest.approx(best)


def test_prediction_excludes_seeds_and_pads_short_lists(data, tmp_path):
    cfg = tiny_cfg()
    train_all(data, tmp_path, cfg, "cpu")
    models = load_models(tmp_path)
    val = data.playlists("val")
    rec, scores = predict(models, val, data.vocab, k=500)
    assert rec.shape == (len(val), 500) and rec.dtype == np.int32 and scores.dtype == np.float32
    seeds = val.tracks.tocsr()
    for i in range(len(val)):
        got = rec[i][rec[i] >= 0]
        assert not set(got) & set(seeds.indices[seeds.indptr[i]:seeds.indptr[i + 1]])
        assert len(got) == len(set(got)) == N_TRACKS - seeds.indptr[i + 1] + seeds.indptr[i]
        assert np.all(np.diff(scores[i][: len(got)]) <= 0)
    assert np.all(rec[:, N_TRACKS:] == -1)


def test_input_gains_are_chosen_per_category_on_validation_and_served(data, tmp_path):
    cfg = tiny_cfg(input_gains=[1.0, 4.0, 0.25], schemes=[tiny_cfg().scheme("10to100_inorder")])
    summary = train_all(data, tmp_path / "a", cfg, "cpu", schemes=["10to100_inorder"])
    chosen = {int(c): g for c, g in summary["schemes"]["10to100_inorder"]["input_gains"].items()}
    models = load_models(tmp_path / "a", schemes=["10to100_inorder"])
    assert models.gains == chosen and set(chosen) == {5, 6, 7, 9}
    assert any(g != 1.0 for g in chosen.values())  # else the serving check below proves nothing
    val, scheme = data.playlists("val"), cfg.scheme("10to100_inorder")
    sub = val.subset(val_rows(val, scheme, cfg))
    model, view = models.models["10to100_inorder"], models.dense.view(sub)
    per_gain = []  # each category's mean R-precision at each gain, recomputed here
    for g in cfg.input_gains:
        rec, _ = recommend(model, view, np.arange(len(sub)), cfg, models.dense.track_prior, gain=np.full(len(sub), g))
        r = list_metrics(models.dense.catalogue_ids(rec), sub, data.vocab.track_artist)["r_precision"]
        per_gain.append({c: np.nanmean(r[sub.category == c]) for c in chosen})
    for c, g in chosen.items():
        assert per_gain[cfg.input_gains.index(g)][c] == max(p[c] for p in per_gain)
        assert all(p[c] < per_gain[cfg.input_gains.index(g)][c] for p in per_gain[:cfg.input_gains.index(g)])
    # prediction applies each playlist's category gain
    want = np.concatenate([recommend(model, view, np.flatnonzero(sub.category == c), cfg, models.dense.track_prior,
                                     gain=np.full(int((sub.category == c).sum()), chosen[c]))[0] for c in chosen])
    got, _ = predict(models, sub, data.vocab)
    order = np.concatenate([np.flatnonzero(sub.category == c) for c in chosen])
    assert np.array_equal(models.dense.catalogue_ids(want), got[order])
    assert select_gains(model, val, val_rows(val, scheme, cfg), models.dense, data.vocab,
                        tiny_cfg(input_gains=[2.0, 2.0])) == {c: 2.0 for c in chosen}  # ties: the first
    refit = train_all(data, tmp_path / "b", cfg, "cpu", schemes=["10to100_inorder"], refit_from=tmp_path / "a")
    assert load_models(tmp_path / "b", schemes=["10to100_inorder"]).gains == chosen  # the refit serves them too
    assert refit["schemes"]["10to100_inorder"]["input_gains"] == summary["schemes"]["10to100_inorder"]["input_gains"]


def test_spec_gain_alone_is_not_a_selection(data, tmp_path):
    summary = train_all(data, tmp_path, tiny_cfg(input_gains=[1.0]), "cpu", schemes=["5_inorder"])
    assert summary["schemes"]["5_inorder"]["input_gains"] == {}
    assert load_models(tmp_path, schemes=["5_inorder"]).gains == {}


def test_dae_beats_popularity_on_clustered_playlists(data, tmp_path):
    schemes = [SchemeConfig("25to100_random", list(range(1, 11)), "fraction", [1.0, 1.0], [0.5, 0.8],
                            tied_epochs=8, untied_epochs=0)]
    cfg = tiny_cfg(hidden=32, batch_size=32, schemes=schemes)  # 19 updates an epoch: 152 updates
    result = train_all(data, tmp_path, cfg, "cpu")
    val = data.playlists("val")
    has_seeds = val.category != 1
    pop = np.argsort(-data.vocab.track_count, kind="stable")
    from common.metrics import playlist_metrics
    rec_pop = np.stack([[t for t in pop if t not in set(val.tracks[i].indices)][:100] for i in range(len(val))])
    m = playlist_metrics(rec_pop, data.vocab.track_artist[rec_pop], val.holdout, val.holdout_artists, val.n_holdouts)
    dae = {int(k): v["r_precision"] for k, v in result["val"]["per_category"].items()}
    dae_mean = np.mean([dae[c] for c in range(2, 11)])
    assert dae_mean > 1.5 * np.nanmean(m["r_precision"][has_seeds])


def test_refit_trains_every_playlist_for_the_epochs_selection_kept(data, tmp_path):
    cfg = tiny_cfg()
    first = train_all(data, tmp_path / "a", cfg, "cpu")
    refit = train_all(data, tmp_path / "b", cfg, "cpu", refit_from=tmp_path / "a")
    assert refit["refit"] and "val" not in refit
    for s in cfg.schemes:
        hist, per_epoch = first["schemes"][s.name]["history"], first["schemes"][s.name]["updates_per_epoch"]
        tied = [h for h in hist if h["phase"] == "tied"]
        want_tied = max(tied, key=lambda h: (h["val_r_precision"], -h["update"]))["update"] // per_epoch
        untied = [h for h in hist if h["phase"] == "untied"]
        want_untied = 0
        if first["schemes"][s.name]["best_phase"] == "untied":
            want_untied = max(untied, key=lambda h: (h["val_r_precision"], -h["update"]))["update"] // per_epoch
        got, refit_epoch = refit["schemes"][s.name]["history"], refit["schemes"][s.name]["updates_per_epoch"]
        assert refit_epoch == 8  # 600 + 160 playlists at batch 100: longer epochs
        assert max((h["update"] for h in got if h["phase"] == "tied"), default=0) == want_tied * refit_epoch
        assert max((h["update"] for h in got if h["phase"] == "untied"), default=0) == want_untied * refit_epoch
        assert all(np.isnan(h["val_r_precision"]) for h in got)
    meta = json.loads((tmp_path / "b" / "config.json").read_text())
    assert meta["n_train"] == len(data.playlists("train")) + len(data.playlists("val_full"))
    models = load_models(tmp_path / "b")
    assert models.dense.n_train == meta["n_train"]
    rec, _ = predict(models, data.playlists("val"), data.vocab)
    assert (rec[:, :10] >= 0).all()


def test_selected_epochs_hand_cases():
    epochs = (3, 2)
    hist = [{"phase": "tied", "update": 10, "val_r_precision": 0.1}, {"phase": "tied", "update": 20, "val_r_precision": 0.3},
            {"phase": "tied", "update": 30, "val_r_precision": 0.3}, {"phase": "untied", "update": 10, "val_r_precision": 0.35},
            {"phase": "untied", "update": 15, "val_r_precision": 0.2}]
    summary = {"history": hist, "best_phase": "untied", "updates_per_epoch": 10}
    assert train_mod.selected_epochs(summary, epochs) == (2, 1)  # the earliest of equal scores
    assert train_mod.selected_epochs(dict(summary, history=hist[:3], best_phase="tied"), epochs) == (2, 0)
    stopped = dict(summary, history=hist[:3] + [{"phase": "untied", "update": 4, "val_r_precision": 0.4}])
    assert train_mod.selected_epochs(stopped, epochs) == (2, 1)  # a budget's mid-epoch stop: rounded up
    unscored = [dict(h, val_r_precision=float("nan")) for h in hist]
    assert train_mod.selected_epochs(dict(summary, history=unscored), epochs) == (3, 2)


def test_other_epochs_train_anew_in_the_same_folder(data, tmp_path):
    one = train_all(data, tmp_path, tiny_cfg(), "cpu", schemes=["5_inorder"])["schemes"]["5_inorder"]["history"]
    assert [(h["phase"], h["update"]) for h in one] == [("tied", 6), ("tied", 12), ("untied", 6), ("untied", 12)]
    cfg = tiny_cfg()
    cfg.scheme("5_inorder").untied_epochs = 1
    again = train_all(data, tmp_path, cfg, "cpu", schemes=["5_inorder"])["schemes"]["5_inorder"]["history"]
    assert [(h["phase"], h["update"]) for h in again] == [("tied", 6), ("tied", 12), ("untied", 6)]


def test_refit_needs_a_selected_run(data, tmp_path):
    train_all(data, tmp_path / "a", tiny_cfg(), "cpu", schemes=["0to1_inorder"])
    with pytest.raises(PipelineError, match="no scheme '5_inorder'"):
        train_all(data, tmp_path / "b", tiny_cfg(), "cpu", refit_from=tmp_path / "a")


# --- config and CLI ---------------------------------------------------------------------------------

def test_config_section_with_scheme_table(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[mmcf]\nhead = 7\nmax_epochs = 0\n[[mmcf.schemes]]\nname = "a"\ncategories = [1, 2, 3, 4, 5]\n'
                    'tied_epochs = 3\n[[mmcf.schemes]]\nname = "b"\ncategories = [6, 7, 8, 9, 10]\n'
                    'first_n = "count"\nfirst_n_range = [1, 50]\n')
    cfg = load_pipeline_config(toml).mmcf
    assert cfg.head == 7 and [s.name for s in cfg.schemes] == ["a", "b"]
    assert cfg.schemes[1].first_n_range == [1, 50] and cfg.schemes[0].tied_epochs == 3
    assert (cfg.schemes[0].untied_epochs, cfg.schemes[1].tied_epochs) == (20, 20)  # SPEC's, where unstated
    assert [s.name for s in load_pipeline_config(None).mmcf.schemes] == ["0to1_inorder", "5_inorder", "10to100_inorder",
                                                           "25to100_random"]
    for bad, msg in [({"schemes": [{"name": "a", "categories": [1]}, {"name": "b", "categories": [1]}]},
                      "more than one scheme"),
                     ({"schemes": [{"name": "a", "categories": [1], "first_n": "last"}]}, "first_n must be"),
                     ({"hidden_keep": 0}, "hidden_keep"), ({"init": "xavier"}, "init"), ({"epochs": 3}, "unknown key")]:
        with pytest.raises(PipelineError, match=msg):
            from_dict(MMCFConfig, bad, "[mmcf]")
    toml.write_text('[mmcf]\n[[mmcf.schemes]]\nname = "a"\ncategories = [1]\ntied_updates = 3\n')
    with pytest.raises(PipelineError, match=r"schemes\[0\]: unknown key\(s\) tied_updates") as err:
        load_pipeline_config(toml).mmcf
    assert str(toml) in str(err.value)


def test_cli_help_and_one_line_error(tmp_path):
    root = Path(__file__).resolve().parents[1]
    ok = subprocess.run([sys.executable, "-m", "mmcf", "--help"], cwd=root, capture_output=True, text=True)
    assert ok.returncode == 0 and "--artifacts" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "mmcf", "--artifacts", str(tmp_path / "none"), "--out",
                          str(tmp_path / "o")], cwd=root, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "manifest.json" in bad.stderr
