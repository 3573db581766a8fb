"""The title model trains as the published code does: epochs with one check each and the best kept,
a time budget, the whole playlist fed to the frozen autoencoder almost fully hidden with its hidden
dropout on, c counting artists, and a sampled CPU loss that is the full one at full columns."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

import charcnn.train as cct
from charcnn.config import TitleConfig
from charcnn.model import TitleModel
from common import trainer
from common.errors import PipelineError
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.model import DAE
from mmcf.predict import MMCFModels, encode_inputs
from mmcf.train import scored_columns
from preprocess.artifacts import Artifacts, save_playlists, save_vocab
from tests.psfake import make_set, make_vocab, one_thread, whole_dense  # noqa: F401 (autouse fixture)

N_TRACKS = 120
VOCAB = make_vocab(N_TRACKS)  # artist = track // 4
N_OUT = N_TRACKS + VOCAB.n_artists
TITLES = ["rock", "chill", "party", "sleep"]  # playlist of title i draws from tracks 30 i .. 30 i + 29
N_TRAIN = 200  # titled training playlists: 13 updates an epoch at batch 16


def _playlists(n: int, seed: int) -> tuple[list[list[int]], list[str]]:
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    lists = [list(rng.choice(np.arange(30 * g, 30 * g + 30), int(rng.integers(8, 20)), replace=False)) for g in group]
    return lists, [TITLES[g] for g in group]


def _models(hidden_keep: float = 0.8) -> MMCFModels:
    cfg = MMCFConfig(hidden=8, hidden_keep=hidden_keep, schemes=[SchemeConfig("s", list(range(1, 11)))])
    dae = DAE(N_OUT, N_TRACKS, hidden=8)
    dae.init_weights(torch.Generator().manual_seed(0), np.full(N_OUT, 0.05))
    return MMCFModels(cfg=cfg, models={"s": dae.eval()}, fingerprint=VOCAB.fingerprint, dense=whole_dense(VOCAB, 100))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Artifacts:
    folder = tmp_path_factory.mktemp("art")
    lists, titles = _playlists(N_TRAIN, 0)
    vlists, vtitles = _playlists(30, 1)
    n_seeds = [0, 1, 5] * 10
    save_vocab(folder / "vocab.npz", VOCAB)
    save_playlists(folder / "train.npz", make_set(lists, VOCAB, titles=titles))
    save_playlists(folder / "val.npz", make_set([v[:n] for v, n in zip(vlists, n_seeds)], VOCAB, titles=vtitles,
                                                holdouts=[v[n:] for v, n in zip(vlists, n_seeds)],
                                                category=[1, 2, 3] * 10))
    save_playlists(folder / "val_full.npz", make_set(vlists, VOCAB, titles=vtitles))
    return Artifacts(folder=folder, manifest={}, vocab=VOCAB)


def _cfg(**kw) -> TitleConfig:
    base = dict(embed_dim=8, widths=[3, 5], filters=12, batch=16, epochs=3, lr=0.01, input_keep=0.3,
                predict_batch=7, train_scheme="s", precision="fp32")
    return TitleConfig(**(base | kw))


def _batches(art: Artifacts, cfg: TitleConfig, models: MMCFModels, head: np.ndarray | None = None) -> cct._Batches:
    train = art.playlists("train")
    return cct._Batches(train, np.arange(len(train)), cfg, models.cfg, len(cfg.widths) * cfg.filters, 8, head)


def test_training_runs_the_stated_epochs_and_keeps_the_best_check(artifacts, tmp_path, monkeypatch):
    scores, states = iter([0.1, 0.5, 0.2]), []

    def scripted(model, *args):
        states.append(trainer.cpu_state(model))
        return next(scores)

    monkeypatch.setattr(cct, "_validate", scripted)
    summary = cct.train_title_model(artifacts, _models(), tmp_path, _cfg(), "cpu")
    per_epoch = -(-N_TRAIN // 16)
    assert summary["updates_per_epoch"] == per_epoch and summary["epochs"] == 3 and summary["best_epoch"] == 2
    assert [h["update"] for h in summary["history"]] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert summary["stopped"] == f"all {3 * per_epoch} updates trained"
    kept = torch.load(tmp_path / cct.MODEL_FILE, weights_only=True)["state"]
    assert all(torch.equal(kept[k], states[1][k]) for k in kept)
    assert not all(torch.equal(kept[k], states[2][k]) for k in kept)


def test_refit_trains_the_selected_epochs_on_every_playlist(artifacts, tmp_path, monkeypatch):
    scores = iter([0.1, 0.5, 0.2])
    monkeypatch.setattr(cct, "_validate", lambda *args: next(scores))
    cct.train_title_model(artifacts, _models(), tmp_path / "sel", _cfg(), "cpu")
    refit = cct.train_title_model(artifacts, _models(), tmp_path / "refit", _cfg(), "cpu", refit_from=tmp_path / "sel")
    per_epoch = -(-(N_TRAIN + 30) // 16)  # the validation playlists are titled too
    assert refit["refit"] and refit["updates_per_epoch"] == per_epoch
    assert [h["update"] for h in refit["history"]] == [per_epoch, 2 * per_epoch]


def test_selected_epochs_round_the_best_check_up():
    hist = {"updates_per_epoch": 15, "history": [{"update": 15, "val_r_precision": 0.1},
                                                 {"update": 31, "val_r_precision": 0.3},
                                                 {"update": 45, "val_r_precision": 0.3}]}
    assert cct.selected_epochs(hist, _cfg()) == 3
    assert cct.selected_epochs({"history": [{"update": 15, "val_r_precision": None}]}, _cfg(epochs=7)) == 7
    with pytest.raises(PipelineError, match="epochs"):
        cct.selected_epochs({"history": hist["history"]}, _cfg())


def test_time_budget_stops_training_and_says_so(artifacts, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="charcnn"):
        summary = cct.train_title_model(artifacts, _models(), tmp_path, _cfg(epochs=5, train_seconds=1e-3), "cpu")
    assert len(summary["history"]) == 1 and summary["epochs"] == 1
    assert "time budget" in summary["stopped"]
    assert any("1 of 5 epochs" in r.message and "time budget" in r.message for r in caplog.records)


def test_one_seed_track_and_its_artist_give_the_title_weight_0_4(tmp_path):
    single = make_set([[7], [3, 9]], VOCAB, titles=["rock", "chill"])
    cfg = _cfg(input_keep=1.0, batch=2)
    models = _models()
    batches = cct._Batches(single, np.arange(2), cfg, models.cfg, 24, 8)
    b = batches.batch(0)
    one = int(np.flatnonzero(b.rows == 0)[0])
    assert b.c[one] == pytest.approx(1.5) and b.w_t[one] == pytest.approx(0.4)
    two = int(np.flatnonzero(b.rows == 1)[0])
    assert b.c[two] == pytest.approx(3.0)  # tracks 3 and 9: artists 0 and 2
    _, c_inference = encode_inputs(single, np.arange(2), models.cfg)
    np.testing.assert_allclose(b.c[np.argsort(b.rows)], c_inference)  # the same count as at inference
    row = b.x[one]
    assert dict(zip(row.indices.tolist(), row.data.tolist())) == pytest.approx({7: 1 / 1.5, N_TRACKS + 1: 0.5 / 1.5})


def test_training_input_is_drawn_from_the_whole_playlist(artifacts):
    train = artifacts.playlists("train")
    items = train.tracks.tocsr().astype(np.int64)
    for keep in (0.3, 0.01):
        batches = _batches(artifacts, _cfg(input_keep=keep, batch=50), _models())
        fed, total, fed_tracks, late, last = 0, 0, 0, 0, 0
        for u in range(40):
            b = batches.batch(u)
            for i, r in enumerate(b.rows):
                cols = b.x[i].indices
                tracks, artists = cols[cols < N_TRACKS], cols[cols >= N_TRACKS] - N_TRACKS
                assert set(tracks) <= set(train.tracks[r].indices) and set(artists) <= set(train.artists[r].indices)
                pos = items[r, tracks].toarray().ravel()  # 1-based positions of the fed tracks
                fed_tracks += len(pos)
                late += int((pos > train.num_tracks[r] // 2).sum())
                last += int((pos == train.num_tracks[r]).sum())
                fed += len(cols)
                total += train.tracks[r].nnz + train.artists[r].nnz
            assert np.allclose(np.asarray(b.x.sum(axis=1)).ravel()[b.n_plain:], 1.0)
        assert fed / total == pytest.approx(keep, rel=0.25)
        if keep == 0.3:  # the second half of a playlist is fed as often as the first, its last track too
            assert 0.4 < late / fed_tracks < 0.7 and last > 0


def test_the_target_is_the_whole_playlist(artifacts):
    train = artifacts.playlists("train")
    b = _batches(artifacts, _cfg(batch=50), _models()).batch(0)
    for i, r in enumerate(b.rows):
        want = np.concatenate([train.tracks[r].indices, train.artists[r].indices + N_TRACKS])
        np.testing.assert_array_equal(np.sort(b.pos_c[b.pos_r == i]), np.sort(want))


def test_frozen_autoencoder_keeps_its_hidden_dropout_while_training(artifacts):
    models = _models(hidden_keep=0.8)
    b = _batches(artifacts, _cfg(batch=64), models).batch(0)
    np.testing.assert_allclose(np.unique(b.dae_mask), [0.0, 1 / 0.8])
    assert (b.dae_mask > 0).mean() == pytest.approx(0.8, abs=0.05)
    dae, x = models.models["s"], b.x[b.n_plain:]
    mask = torch.from_numpy(b.dae_mask[b.n_plain:])
    assert not torch.allclose(cct.frozen_dae_probs(dae, x, mask), dae.forward_sparse(x))
    assert torch.allclose(cct.frozen_dae_probs(dae, x, torch.ones_like(mask)), dae.forward_sparse(x), atol=1e-6)
    cols = torch.tensor([3, 50, 140])
    assert torch.allclose(cct.frozen_dae_probs(dae, x, mask, cols), cct.frozen_dae_probs(dae, x, mask)[:, cols],
                          atol=1e-6)


def test_scaled_head_gradient_matches_autograd():
    torch.manual_seed(0)
    n_rows, n_cols, n_plain = 7, 40, 3
    z = torch.randn(n_rows, n_cols, dtype=torch.float64) * 3
    d = torch.rand(n_rows - n_plain, n_cols, dtype=torch.float64)
    w_t = 1 / (1 + torch.tensor([0, 0, 0, 0.5, 1.5, 2, 4], dtype=torch.float64))
    pos = torch.from_numpy(np.unique(np.random.default_rng(1).integers(0, n_rows * n_cols, 50)))
    scale = torch.ones(n_cols, dtype=torch.float64)
    scale[25:] = torch.rand(15, dtype=torch.float64) * 30 + 1  # sampled columns (no positives there in use)
    d_full = torch.full((n_rows, n_cols), 0.5, dtype=torch.float64)
    d_full[n_plain:] = d
    zz = z.clone().requires_grad_(True)
    ref = cct.mixed_bce(zz, d_full, w_t, 1 - w_t, pos, 0.55, scale)
    ref.backward()
    g = z.clone()
    loss = cct.head_grad_(g, n_plain, d, w_t, 1 - w_t, pos // n_cols, pos % n_cols, 0.55, scale)
    assert loss == pytest.approx(float(ref.detach()), rel=1e-10)
    assert torch.allclose(g, zz.grad, atol=1e-12)


def _grads(model: TitleModel, models: MMCFModels, art: Artifacts, batch: cct._Batch, cfg: TitleConfig
           ) -> tuple[float, dict[str, torch.Tensor]]:
    chars = torch.from_numpy(np.ascontiguousarray(art.playlists("train").title_chars))
    loss = cct._gradients(model, model.encoder, models.models["s"], chars, batch, cfg, torch.device("cpu"))
    return loss, {k: p.grad.clone() for k, p in model.named_parameters()}


def test_sampled_gradient_at_every_column_equals_the_full_one(artifacts):
    cfg, models = _cfg(batch=40), _models()
    full = _batches(artifacts, cfg, models).batch(0)
    assert 0 < full.n_plain < len(full.rows)  # title-only rows and rows mixing in the autoencoder
    every = dataclasses.replace(full, cols=np.arange(N_OUT), col_scale=np.ones(N_OUT, dtype=np.float32))
    torch.manual_seed(0)
    model = TitleModel(cfg, N_OUT).train()
    loss_full, g_full = _grads(model, models, artifacts, full, cfg)
    loss_sampled, g_sampled = _grads(model, models, artifacts, every, cfg)
    assert loss_sampled == pytest.approx(loss_full, rel=1e-6)
    assert g_full.keys() == g_sampled.keys()
    for k in g_full:
        torch.testing.assert_close(g_sampled[k], g_full[k], rtol=1e-5, atol=1e-7)


def test_sampled_columns_hold_the_positives_and_estimate_the_full_loss(artifacts):
    cfg, models = _cfg(batch=6, negatives=30, input_keep=0.05), _models()
    head = np.arange(5)
    full = _batches(artifacts, cfg, models).batch(0)
    assert 0 < full.n_plain < len(full.rows)
    torch.manual_seed(0)
    model = TitleModel(cfg, N_OUT).train()
    exact, _ = _grads(model, models, artifacts, full, cfg)
    estimates = []
    for u in range(300):
        b = dataclasses.replace(full)
        b.cols, b.col_scale, _, b.pos_c = scored_columns(head, full.pos_c, N_OUT, cfg.negatives,
                                                         np.random.default_rng([9, u]))
        assert np.isin(full.pos_c, b.cols).all() and np.isin(head, b.cols).all()
        np.testing.assert_array_equal(b.cols[b.pos_c], full.pos_c)
        assert len(b.cols) < N_OUT and (b.col_scale >= 1).all()
        estimates.append(_grads(model, models, artifacts, b, cfg)[0])
    assert np.mean(estimates) == pytest.approx(exact, rel=0.01)
    assert np.std(estimates) > 0


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_both_losses_learn_titles(artifacts, tmp_path, loss):
    summary = cct.train_title_model(artifacts, _models(), tmp_path, _cfg(epochs=4, loss=loss, head=10, negatives=20),
                                    "cpu")
    assert summary["loss"] == loss and all(np.isfinite(h["loss"]) for h in summary["history"])
    assert summary["best_val_r_precision"] > 0.3  # popularity scores about 0.1


def test_removed_settings_are_refused():
    for key in ("updates", "eval_every", "seed_frac_max"):
        with pytest.raises(TypeError):
            TitleConfig(**{key: 1})
    with pytest.raises(PipelineError, match="loss"):
        TitleConfig(loss="approx")


def test_the_stage_loads_only_the_autoencoders_the_title_model_reads():
    """The one it trains against and those serving its selection categories, whatever their order."""
    dae_cfg = MMCFConfig()
    assert cct.frozen_schemes(dae_cfg, TitleConfig()) == ["0to1_inorder", "5_inorder"]  # categories 1-3
    cfg = dataclasses.replace(TitleConfig(), train_scheme="25to100_random", select_categories=[1])
    assert cct.frozen_schemes(dae_cfg, cfg) == ["0to1_inorder", "25to100_random"]
