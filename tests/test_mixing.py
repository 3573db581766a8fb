import numpy as np
import pytest
import scipy.sparse as sp
import torch

from common.errors import PipelineError
from common.topk import fill_from_order
from mmcf.mixing import mixing_weights, mmcf_lists, recommend_mixed, usable_title
from mmcf.config import MMCFConfig
from mmcf.dense import DenseVocab
from mmcf.model import DAE
from mmcf.predict import MMCFModels, encode_inputs
from tests.psfake import make_set, make_vocab, one_thread, whole_dense  # noqa: F401 (autouse fixture)


N_TRACKS = 800
VOCAB = make_vocab(N_TRACKS)
N_OUT = N_TRACKS + VOCAB.n_artists
SCHEMES = {1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c", 7: "c", 9: "c", 8: "d", 10: "d"}
FILL = np.arange(N_TRACKS, dtype=np.int32)[::-1].copy()  # "popularity": highest id first


class FakeTitle:
    """Deterministic title scores: track j scores high when j's residue matches the first character."""

    def probs(self, chars: torch.Tensor) -> torch.Tensor:
        first = chars[:, :1].long()
        cols = torch.arange(N_OUT)[None, :]
        return torch.where(cols % 42 == first, 0.9, 0.1) * (1.0 - cols / (10 * N_OUT))


def fake_dae(x: sp.csr_matrix) -> torch.Tensor:
    """Neighbours of the seeds (j -> j + 1 .. j + 3) score high; everything else low, falling with the id."""
    x = sp.csr_matrix(x)
    shift = sum(sp.eye(N_OUT, N_OUT, k=s, format="csr") for s in (1, 2, 3))
    prior = 0.01 * (1.0 - np.arange(N_OUT) / (2 * N_OUT))
    return torch.from_numpy((prior + 0.9 * np.minimum((x @ shift).toarray(), 1.0)).astype(np.float32))


def seed_inputs(ps):
    x = sp.hstack([ps.tracks, ps.artists], format="csr").astype(np.float32)
    x.data = np.where(x.indices < N_TRACKS, 1.0, 0.5).astype(np.float32)
    return x, np.asarray(x[:, :N_TRACKS].sum(axis=1)).ravel()


def mixed_filled(ps, title, daes, scheme, x, c, batch=256):
    """recommend_mixed, then popularity (FILL) in the empty slots, as mmcf_lists does."""
    ids, scores = recommend_mixed(ps, title, daes, scheme, x, c, k=500, batch=batch)
    fill_from_order(ids, scores, ps.tracks, FILL)
    return ids, scores


def recommend(ps, title=FakeTitle(), daes=None):
    daes = daes if daes is not None else {s: fake_dae for s in set(SCHEMES.values())}
    x, c = seed_inputs(ps)
    scheme = np.array([SCHEMES[int(cat)] for cat in ps.category])
    return mixed_filled(ps, title, daes, scheme, x, c, batch=3)


@pytest.mark.parametrize("title,c,expect", [
    (False, 0.0, (0.0, 0.0)), (False, 1.0, (0.0, 1.0)), (False, 5.0, (0.0, 1.0)), (False, 100.0, (0.0, 1.0)),
    (True, 0.0, (1.0, 0.0)), (True, 1.0, (0.5, 0.5)), (True, 5.0, (1 / 6, 5 / 6)), (True, 100.0, (1 / 101, 100 / 101)),
    (True, 27.75, (1 / 28.75, 27.75 / 28.75)),  # 100 in-order seeds: 85 x 0.15 + 15 x 1.0
])
def test_mixing_weights_hand_values(title, c, expect):
    w_t, w_p = mixing_weights(np.array([title]), np.array([c]))
    assert np.allclose([w_t[0], w_p[0]], expect, atol=1e-6)  # (fails on NaN or inf as well)


def test_mixing_weights_are_vectorised_and_reject_negative_counts():
    w_t, w_p = mixing_weights(np.array([True, False, True]), np.array([0.0, 0.0, 3.0]))
    assert np.allclose(w_t, [1.0, 0.0, 0.25]) and np.allclose(w_p, [0.0, 0.0, 0.75])
    with pytest.raises(ValueError):
        mixing_weights(np.array([True]), np.array([-1.0]))


def test_title_only_playlists_get_500_unique_tracks_from_the_title_model():
    ps = make_set([[], [], [3, 4]], VOCAB, titles=["rock", "chill", "rock"], category=[1, 1, 3])
    ids, scores = recommend(ps)
    assert ids.shape == (3, 500) and ids.dtype == np.int32 and scores.dtype == np.float32
    for row in range(3):
        assert (ids[row] >= 0).all() and len(set(ids[row].tolist())) == 500
    assert not np.isin([3, 4], ids[2]).any()
    # title only: the list is the title model's ranking (char 'r' = 18 -> tracks 18, 60, 102, ...)
    first = ps.title_chars[0, 0]
    assert (ids[0, :10] % 42 == first).all()
    assert np.all(np.diff(scores[0]) <= 0)


def test_seeds_never_listed_and_dae_dominates_with_many_seeds():
    seeds = list(range(100, 200))
    ps = make_set([seeds, [500]], VOCAB, titles=["rock", ""], category=[10, 6])
    ids, _ = recommend(ps)
    assert not np.isin(seeds, ids[0]).any() and 500 not in ids[1]
    # with 100 seeds w_p = 100/101: the autoencoder's neighbours (200..202) outrank title matches
    assert set(ids[0, :3].tolist()) == {200, 201, 202}
    # no title: the autoencoder alone (neighbours of 500 first)
    assert ids[1, :3].tolist() == [501, 502, 503]


def test_emoji_only_title_falls_back_cleanly():
    ps = make_set([[], [7], [], []], VOCAB, titles=["🔥🔥", "💯", "rock", "✨"], category=[1, 2, 1, 3])
    assert ps.has_title.all() and not ps.title_chars[[0, 1, 3]].any()
    assert usable_title(ps).tolist() == [False, False, True, False]
    ids, scores = recommend(ps, daes={"a": fake_dae})  # no autoencoder for scheme "b" (category 3)
    assert (ids >= 0).all() and all(len(set(r.tolist())) == 500 for r in ids)
    assert np.isfinite(scores).all()
    # no usable title, no seed (with or without an autoencoder for its scheme): popularity
    assert np.array_equal(ids[0], FILL[:500]) and np.array_equal(ids[3], FILL[:500])
    # one seed and no usable title: the autoencoder alone
    assert ids[1, :3].tolist() == [8, 9, 10]


def test_without_title_model_every_playlist_gets_the_autoencoder_alone():
    ps = make_set([[], [5]], VOCAB, titles=["rock", "rock"], category=[1, 2])
    x, c = seed_inputs(ps)
    ids, _ = mixed_filled(ps, None, {"a": fake_dae}, np.array(["a", "a"]), x, c)
    assert np.array_equal(ids[0], FILL[:500])  # title ignored, no seed: popularity
    assert ids[1, :3].tolist() == [6, 7, 8]
    ids, _ = mixed_filled(ps, None, {}, np.array(["a", "a"]), x, np.zeros(2))
    assert np.array_equal(ids, np.tile(FILL[:500], (2, 1)))  # no model at all: popularity


def test_missing_autoencoder_is_a_clear_error():
    ps = make_set([[1, 2, 3, 4, 5]], VOCAB, titles=[""], category=[4])
    with pytest.raises(PipelineError, match="'b'"):
        recommend(ps, daes={"a": fake_dae})


def test_fill_from_order_skips_seeds_and_listed_tracks():
    ids = np.array([[5, -1, -1, -1], [-1, -1, -1, -1], [1, 2, 3, 4]], dtype=np.int32)
    scores = np.where(ids >= 0, 1.0, -np.inf).astype(np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0, 0, 1], [0] * 8]))
    order = np.array([7, 6, 5, 4, 3, 2, 1, 0])
    assert fill_from_order(ids, scores, exclude, order) == 7
    assert ids.tolist() == [[5, 7, 4, 3], [6, 5, 4, 3], [1, 2, 3, 4]]
    assert np.isfinite(scores).all()


def test_fill_from_order_leaves_slots_empty_when_the_vocabulary_runs_out():
    ids = np.full((1, 4), -1, dtype=np.int32)
    scores = np.full((1, 4), -np.inf, dtype=np.float32)
    assert fill_from_order(ids, scores, sp.csr_matrix(np.array([[1, 0, 0]])), np.array([0, 1, 2])) == 2
    assert ids.tolist() == [[1, 2, -1, -1]]


def tiny_models(dense=None) -> MMCFModels:
    """Real (randomly initialised) autoencoders for the four default schemes, over `dense` (default:
    the whole catalogue)."""
    dense = dense or whole_dense(VOCAB, 100)
    cfg = MMCFConfig(hidden=8)
    gen = torch.Generator().manual_seed(0)
    models = {}
    for s in cfg.schemes:
        dae = DAE(dense.n_items, dense.n_tracks, hidden=8)
        dae.init_weights(gen, np.full(dense.n_items, 0.05))
        models[s.name] = dae.eval()
    return MMCFModels(cfg=cfg, models=models, fingerprint=VOCAB.fingerprint, dense=dense)


def test_weighted_seed_counts_of_the_autoencoder_inputs_give_the_published_weights():
    seeds = [[], [0], list(range(5)), list(range(100)), list(range(100))]
    ps = make_set(seeds, VOCAB, titles=["rock"] * 5, category=[1, 2, 3, 9, 10])
    _, c = encode_inputs(ps, np.arange(5), MMCFConfig())
    w_t, w_p = mixing_weights(usable_title(ps), c)
    # c sums every input weight, seed artists at 0.5 as the published code counts them (artist = track // 4):
    # one seed 1 + 0.5; five seeds of two artists 5 + 1; in-order 100 seeds: 85 early ones at 0.15, the
    # last 15 at 1.0, and 25 artists 12.5; 100 random seeds all at 1.0, and 12.5
    assert np.allclose(w_t, [1.0, 1 / 2.5, 1 / 7, 1 / 41.25, 1 / 113.5], atol=1e-6)


def test_mmcf_lists_end_to_end_with_real_autoencoders():
    seeds = [[], [3], list(range(10, 15)), list(range(20, 45)), [], [9]]
    ps = make_set(seeds, VOCAB, titles=["rock", "chill", "", "party", "💯", ""], category=[1, 2, 4, 7, 1, 0])
    ids, scores = mmcf_lists(ps, FakeTitle(), tiny_models(), VOCAB, FILL, k=500, batch=4)
    for row, s in enumerate(seeds):
        assert len(set(ids[row].tolist())) == 500 and (ids[row] >= 0).all()
        assert not np.isin(s, ids[row]).any()
    assert np.isfinite(scores).all()
    assert (ids[0, :10] % 42 == ps.title_chars[0, 0]).all()  # title only: the title model's ranking
    # emoji title, no seeds: nothing to mix, so popularity (the fill order) alone
    assert np.array_equal(ids[4], FILL[:500]) and (scores[4] == 0).all()
    with pytest.raises(PipelineError, match="vocabulary"):
        mmcf_lists(ps, FakeTitle(), tiny_models(), make_vocab(N_TRACKS + 4), FILL)


def test_mmcf_lists_over_a_budgeted_vocabulary_return_catalogue_ids():
    """Autoencoders over 300 of the 800 tracks (in their own order): their evidence is mapped back to
    catalogue ids, seeds outside their vocabulary are still never listed, and the fill does the rest."""
    whole = whole_dense(VOCAB, 100)
    dense = DenseVocab(tracks=np.arange(500, 200, -1, dtype=np.int32), artists=whole.artists,
                       track_count=np.ones(300, dtype=np.int64), n_catalogue_tracks=N_TRACKS,
                       n_catalogue_artists=VOCAB.n_artists, min_count=1, n_train=100)
    seeds = [[], [3, 250], list(range(480, 510)), list(range(600, 630))]
    ps = make_set(seeds, VOCAB, titles=["rock", "", "party", "party"], category=[1, 4, 7, 7])
    ids, scores = mmcf_lists(ps, None, tiny_models(dense), VOCAB, FILL, k=500)
    scored = np.isfinite(scores) & (scores != 0)
    # every dense track but the dense seeds; no dense seed at all: the seeds' artists still feed it
    assert scored[1:].sum(axis=1).tolist() == [299, 300 - 21, 300]
    assert np.isin(ids[scored], dense.tracks).all()
    for row, s in enumerate(seeds):
        assert len(set(ids[row].tolist())) == 500 and not np.isin(s, ids[row]).any()
    assert np.array_equal(ids[0], FILL[:500])  # no title model, no seed: popularity
