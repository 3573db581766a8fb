"""How long and on what MMCF's autoencoders train (issue: trained as its authors trained them):
phases in epochs with the best epoch kept, a stated time budget, MMCF's vocabulary rule within a
memory budget, the first-n cut that always feeds a track, the mixing count with seed artists, and
the CPU method's loss against the full output layer."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from common.config import from_dict
from common.errors import PipelineError
from mmcf import dense as dense_vocab
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.mixing import mixing_weights
from mmcf.model import DAE, Bag, Target
from mmcf.predict import encode_inputs
from mmcf.train import Batcher, scored_columns, train_all, updates_per_epoch
from tests.psfake import make_set, make_vocab
from tests.test_mmcf import data, one_thread  # noqa: F401  (fixtures: clustered playlists, one torch thread)


def _cfg(**kw) -> MMCFConfig:
    scheme = SchemeConfig("25to100_random", list(range(1, 11)), "fraction", [1.0, 1.0], [0.5, 0.8],
                          tied_epochs=kw.pop("tied_epochs", 3), untied_epochs=kw.pop("untied_epochs", 2))
    return MMCFConfig(**{"hidden": 16, "batch_size": 64, "val_playlists": 60, "precision": "fp32",
                         "schemes": [scheme], "max_epochs": 0, **kw})


def test_phases_train_their_epochs_with_one_check_each_and_keep_the_best(data, tmp_path):
    result = train_all(data, tmp_path, _cfg(), "cpu")["schemes"]["25to100_random"]
    per_epoch = updates_per_epoch(len(data.playlists("train")), 64)
    assert result["updates_per_epoch"] == per_epoch == 10  # 600 playlists, batch 64
    history = result["history"]
    assert [(h["phase"], h["update"]) for h in history] == \
        [("tied", per_epoch * e) for e in (1, 2, 3)] + [("untied", per_epoch * e) for e in (1, 2)]
    best = max(h["val_r_precision"] for h in history)
    assert result["best_val_r_precision"] == pytest.approx(best)
    kept = [h for h in history if h["improved"]][-1]
    assert result["best_phase"] == kept["phase"] and kept["val_r_precision"] == pytest.approx(best)
    assert result["stopped"] == {"tied": "all 30 updates trained", "untied": "all 20 updates trained"}


def test_the_defaults_epoch_cap_shortens_every_phase_and_zero_keeps_the_table(data, tmp_path):
    assert [(s.tied_epochs, s.untied_epochs) for s in MMCFConfig().schemes] == [(3, 0), (3, 3), (3, 3), (3, 3)]
    assert [(s.tied_epochs, s.untied_epochs) for s in MMCFConfig(max_epochs=0).schemes] == \
        [(20, 0), (20, 20), (20, 20), (20, 20)]
    capped = _cfg(tied_epochs=5, untied_epochs=1, max_epochs=2)
    assert from_dict(MMCFConfig, capped.to_dict(), "x").to_dict() == capped.to_dict()  # a saved config reloads as is
    history = train_all(data, tmp_path, capped, "cpu")["schemes"]["25to100_random"]["history"]
    assert [(h["phase"], h["update"]) for h in history] == [("tied", 10), ("tied", 20), ("untied", 10)]


def test_a_time_budget_stops_a_phase_and_says_so(data, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mmcf"):
        result = train_all(data, tmp_path, _cfg(tied_epochs=50, untied_epochs=0, train_seconds=1e-9), "cpu")
    scheme = result["schemes"]["25to100_random"]
    assert len(scheme["history"]) == 1 and scheme["history"][0]["update"] == 1  # one update, its check
    assert "time budget" in scheme["stopped"]["tied"] and "time budget" in caplog.text


def test_the_refit_trains_the_selected_epochs_on_longer_epochs(data, tmp_path):
    from mmcf.train import refit_config, selected_epochs

    summary = {"schemes": {"25to100_random": {"history": [
        {"phase": "tied", "update": 10, "val_r_precision": 0.1}, {"phase": "tied", "update": 20, "val_r_precision": 0.3},
        {"phase": "tied", "update": 30, "val_r_precision": 0.2}, {"phase": "untied", "update": 10, "val_r_precision": 0.4},
        {"phase": "untied", "update": 20, "val_r_precision": 0.35}], "best_phase": "untied", "updates_per_epoch": 10}}}
    assert selected_epochs(summary["schemes"]["25to100_random"], (3, 2)) == (2, 1)
    refit = refit_config(_cfg(), summary, tmp_path)
    assert (refit.schemes[0].tied_epochs, refit.schemes[0].untied_epochs) == (2, 1)


def test_vocabulary_follows_mmcfs_counts():
    assert MMCFConfig().min_counts == (5, 3)  # the published rule, at every size
    assert MMCFConfig(min_track_count=2, min_artist_count=4).min_counts == (2, 4)
    vocab = make_vocab(12)  # artist = track // 4
    # track counts: 0: 6, 1: 4, 2: 3, 3: 2, 5: 2, 7: 1, 9: 1; artist counts: 0: 6, 1: 3, 2: 1
    train = make_set([[0, 1, 2, 3], [0, 1, 2, 5], [0, 1, 2], [0, 1, 3, 5], [0, 7], [0, 9]], vocab)
    chosen = dense_vocab.choose(train, (2, 2), memory_mb=1.0, per_item=100)
    assert chosen.tracks.tolist() == [0, 1, 2, 3, 5] and chosen.artists.tolist() == [0, 1]
    assert (chosen.min_count, chosen.artist_min_count) == (2, 2)


def test_a_vocabulary_past_the_memory_budget_is_narrowed_or_refused(caplog):
    vocab = make_vocab(12)
    train = make_set([[0, 1, 2, 3], [0, 1, 2, 5], [0, 1, 2], [0, 1, 3, 5], [0, 7], [0, 9]], vocab)
    per_item = 2**20 // 4  # four items fit a 1 MB budget: three tracks (3/4 of it), then one artist
    with caplog.at_level(logging.INFO, logger="mmcf"):
        narrowed = dense_vocab.choose(train, (1, 1), memory_mb=1.0, per_item=per_item)
    assert narrowed.tracks.tolist() == [0, 1, 2] and narrowed.artists.tolist() == [0]
    assert "past the budget of 1 MB" in caplog.text
    with pytest.raises(PipelineError, match="raise dense_memory_mb"):
        dense_vocab.choose(train, (1, 1), memory_mb=1.0, per_item=2**21)


def test_the_memory_a_rule_needs_is_counted_per_loss():
    assert dense_vocab.bytes_per_item(256, 250, sampled=False) == 8 * 256 * 4 + 250 * 6
    assert dense_vocab.bytes_per_item(256, 250, sampled=True) == 8 * 256 * 4  # no [batch, items] logits


@pytest.mark.parametrize("first_n, bounds", [("fraction", [0.0, 0.3]), ("count", [0, 3])])
def test_the_first_n_cut_always_feeds_a_track(first_n, bounds):
    """With a zero cut the published code still feeds the first track; ours fed nothing."""
    vocab = make_vocab(40)
    ps = make_set([list(range(i, i + 10)) for i in range(0, 30, 3)], vocab)
    scheme = SchemeConfig("s", [1], first_n, bounds, [1.0, 1.0], hide_and_seek=False)
    batcher = Batcher(ps, scheme, batch_size=len(ps), seed=0, key=(0, 0))
    for u in range(20):
        b = batcher.batch(u)
        assert (np.diff(b.x.indptr) >= 1).all()  # keep 1.0: every row is fed its first track at least
        first = np.array([ps.tracks[r].indices[ps.tracks[r].data == 1][0] for r in batcher.rows(u)])
        assert (b.x.toarray()[np.arange(len(first)), first] > 0).all()


def test_the_mixing_count_weighs_seed_artists_as_the_published_code():
    """One seed track and its artist: c = 1 + 0.5, so w_t = 1 / 2.5 = 0.4 for a titled playlist."""
    vocab = make_vocab(8)
    ps = make_set([[3], [1, 5], []], vocab)
    _, c = encode_inputs(ps, np.arange(3), MMCFConfig())
    assert c.tolist() == pytest.approx([1.5, 3.0, 0.0])  # two tracks of two artists: 2 + 2 x 0.5
    w_t, w_p = mixing_weights(np.array([True, True, True]), c)
    assert w_t.tolist() == pytest.approx([0.4, 0.25, 1.0]) and w_p.tolist() == pytest.approx([0.6, 0.75, 0.0])


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("n_whole", [60, 20])
def test_the_sampled_loss_over_every_column_is_the_full_loss(tied, n_whole):
    """Every column whole, or 20 whole and the other 40 each drawn once (weight R / K = 1): the mean
    field and its corrections must add up to the full loss's gradient exactly."""
    gen = torch.Generator().manual_seed(0)
    model = DAE(60, 40, hidden=8, tied=True)
    model.init_weights(gen, np.linspace(0.01, 0.3, 60))
    model = model if tied else model.untied_copy()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3, generator=gen)  # away from the start, tied and untied alike
    x = sp.random(6, 60, density=0.1, format="csr", random_state=3, dtype=np.float32)
    y = sp.random(6, 20, density=0.3, format="coo", random_state=4)  # positives among the whole columns
    bag = Bag.from_csr(x)
    target = Target(torch.from_numpy(y.row.astype(np.int64)), torch.from_numpy(y.col.astype(np.int64)))
    mask = model.dropout_mask(6, 0.8, torch.Generator().manual_seed(2))
    full = model.loss_and_grad(bag, target, 0.55, mask)
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    sampled = model.sampled_loss_and_grad(bag, target, 0.55, mask, torch.arange(60), torch.ones(60), n_whole)
    assert sampled == pytest.approx(full, rel=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, want[n], rtol=1e-4, atol=1e-6)


def test_sampled_columns_hold_every_positive_and_weigh_the_rest_unbiased():
    vocab = make_vocab(400)
    rng = np.random.default_rng(0)
    ps = make_set([sorted(rng.choice(400, 12, replace=False).tolist()) for _ in range(50)], vocab)
    batcher = Batcher(ps, SchemeConfig("s", [1]), batch_size=20, seed=0, key=(0, 0), sampled=True, head=10,
                      negatives=30)
    n_items = 400 + vocab.n_artists
    for u in range(5):
        b = batcher.batch(u)
        whole = np.flatnonzero(b.col_scale == 1.0)
        positives = np.unique(b.cols[b.target_cols])
        assert set(positives) <= set(b.cols[whole]) and len(np.unique(b.cols)) == len(b.cols)
        assert set(batcher.head) <= set(b.cols[whole])
        rest = n_items - len(whole)
        assert b.col_scale[len(whole):].sum() == pytest.approx(rest)  # the draws stand for every other column


def test_weighted_draws_stay_unbiased_and_cut_the_variance_where_the_terms_follow_the_weights():
    n_items, head, positives = 300, np.arange(5), np.array([7, 40, 41])
    weight = np.arange(n_items)[::-1] + 1.0
    terms = weight / weight.sum() + 1e-4  # the y = 0 terms of popular columns are the larger ones
    free = np.setdiff1d(np.arange(n_items), np.union1d(head, positives))
    sums = {}
    for name, w in (("uniform", None), ("weighted", weight)):
        draws = [scored_columns(head, positives, n_items, 20, np.random.default_rng([3, u]), w) for u in range(4000)]
        assert all(np.isin(positives, c[:n]).all() and not np.isin(c[n:], c[:n]).any() for c, _, n, _ in draws)
        sums[name] = np.array([(terms[c[n:]] * s[n:]).sum() for c, s, n, _ in draws])
        se = sums[name].std() / np.sqrt(len(draws))
        assert abs(sums[name].mean() - terms[free].sum()) < 4 * se
    assert sums["weighted"].std() < 0.5 * sums["uniform"].std()
