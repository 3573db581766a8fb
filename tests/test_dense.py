"""The dense models' budgeted vocabulary (mmcf/dense.py): the count threshold a budget gives, the
column view, id mapping back to the catalogue, holdout coverage, save/load."""
import numpy as np
import pytest
import scipy.sparse as sp

from common.errors import PipelineError
from mmcf.dense import DenseVocab, bytes_per_item, choose, coverage
from tests.psfake import make_set, make_vocab

VOCAB = make_vocab(12)  # artists = track // 4: 3 artists
# track counts over 6 playlists: 0 -> 6, 1 -> 4, 2 -> 3, 3 -> 2, 5 -> 2, 7 -> 1, 9 -> 1; artists 0: 6, 1: 3, 2: 1
TRAIN = make_set([[0, 1, 2, 3], [0, 1, 2, 5], [0, 1, 2], [0, 1, 3, 5], [0, 7], [0, 9]], VOCAB)


def _held_per_item(n_items: int, hidden: int, batch: int) -> dict[str, float]:
    """Bytes per output unit that a full-loss update of the untied autoencoder leaves held, by kind:
    [items, hidden] tensors (weights, gradients, Adam's moments) and [batch, items] ones (logits)."""
    import torch

    from mmcf.model import DAE, Bag, Target

    model = DAE(n_items, n_items - 10, hidden=hidden, tied=False)
    model.init_weights(torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)  # as mmcf/train.py trains each phase
    x = sp.random(batch, n_items, density=0.05, format="csr", random_state=0, dtype=np.float32)
    rows, cols = (torch.from_numpy(a.astype(np.int64)) for a in x.nonzero())
    model.loss_and_grad(Bag.from_csr(x), Target(rows, cols), 0.55, torch.ones(batch, hidden))
    optimizer.step()
    params = list(model.parameters())
    tensors = [*params, *(p.grad for p in params), *model._buffers_cache.values(),
               *(v for state in optimizer.state.values() for v in state.values())]
    dense = {t.data_ptr(): t for t in tensors if torch.is_tensor(t) and t.layout == torch.strided}
    size = {shape: sum(t.numel() * t.element_size() for t in dense.values() if tuple(t.shape) == shape) / n_items
            for shape in ((n_items, hidden), (batch, n_items))}
    return {"weights": size[(n_items, hidden)], "logits": size[(batch, n_items)]}


def test_bytes_per_item_counts_what_an_update_of_the_untied_autoencoder_holds():
    """The budget turns megabytes into items with bytes_per_item, so it must count what an update of
    the largest dense model holds per output unit: every [items, hidden] tensor exactly, and room
    for the full loss's [batch, items] logits. (The output bias with its gradient and Adam state,
    16 bytes an item, is within the margin.)"""
    hidden, batch = 16, 20
    held = _held_per_item(300, hidden, batch)
    assert bytes_per_item(hidden, 0, sampled=False) == held["weights"]
    assert bytes_per_item(hidden, batch, sampled=False) - bytes_per_item(hidden, 0, sampled=False) >= held["logits"]


@pytest.mark.parametrize("items,c,c_artists", [(10, 1, 1), (9, 2, 1), (7, 2, 2), (5, 3, 2), (4, 3, 4), (3, 4, 4),
                                              (2, 5, 4), (1, None, None)])
def test_tracks_take_their_share_of_the_budget_and_artists_the_rest(items, c, c_artists):
    # tracks with count >= c: c=1: 7, c=2: 5, c=3: 3, c=4: 2, c=5, 6: 1; artists: c'=1: 3, c'=2, 3: 2, c'=4..6: 1.
    # Tracks get floor(0.75 x items) (10 -> 7, 9 -> 6, 7 -> 5, 5 -> 3, 4 -> 3, 3 -> 2, 2 -> 1, 1 -> 0) ...
    if c is None:
        with pytest.raises(PipelineError, match="raise dense_memory_mb"):
            choose(TRAIN, (1, 1), memory_mb=items * 100 / 2**20, per_item=100)
        return
    dense = choose(TRAIN, (1, 1), memory_mb=items * 100 / 2**20, per_item=100)
    assert (dense.min_count, dense.artist_min_count) == (c, c_artists) and dense.n_items <= items
    counts = np.diff(TRAIN.tracks.tocsc().indptr)
    assert set(dense.tracks.tolist()) == set(np.flatnonzero(counts >= c).tolist())
    artist_counts = np.diff(TRAIN.artists.tocsc().indptr)
    assert set(dense.artists.tolist()) == set(np.flatnonzero(artist_counts >= c_artists).tolist())
    assert (np.diff(counts[dense.tracks]) <= 0).all()  # most frequent first
    assert dense.track_count.tolist() == counts[dense.tracks].tolist() and dense.n_train == len(TRAIN)


def test_a_track_only_vocabulary_spends_the_whole_budget_on_tracks():
    dense = choose(TRAIN, (1, 1), memory_mb=5 * 100 / 2**20, per_item=100, track_share=1.0)
    assert dense.min_count == 2 and dense.n_tracks == 5  # the share would have kept 3


def test_view_renumbers_columns_and_keeps_positions_and_counts():
    dense = choose(TRAIN, (1, 1), memory_mb=7 * 100 / 2**20, per_item=100)  # c = 2: tracks 0, 1, 2, 3, 5; artists 0, 1
    ps = make_set([[7, 3, 0], [9]], VOCAB, holdouts=[[5, 11], [1]], category=[4, 2])
    view = dense.view(ps)
    assert view.tracks.shape == (2, 5) and view.artists.shape == (2, 2)
    new = {int(t): i for i, t in enumerate(dense.tracks)}
    assert dict(zip(view.tracks[0].indices.tolist(), view.tracks[0].data.tolist())) == {new[3]: 2, new[0]: 3}
    assert view.tracks[1].nnz == 0 and view.holdout[0].indices.tolist() == [new[5]]
    assert view.n_holdouts.tolist() == [2, 1] and view.n_seeds.tolist() == ps.n_seeds.tolist()
    assert dense.catalogue_ids(np.array([[new[5], -1, new[0]]])).tolist() == [[5, -1, 0]]
    # withheld 5, 11, 1: training holds 5 and 1, the dense vocabulary too
    assert coverage(dense, ps, TRAIN) == {"trained": round(2 / 3, 4), "dense": round(2 / 3, 4)}
    assert coverage(choose(TRAIN, (1, 1), memory_mb=3 * 100 / 2**20, per_item=100), ps, TRAIN)["dense"] == round(1 / 3, 4)
    with pytest.raises(PipelineError, match="retrain"):
        dense.view(make_set([[0]], make_vocab(16)))


def test_save_and_load_round_trip(tmp_path):
    dense = choose(TRAIN, (1, 1), memory_mb=1.0, per_item=100)
    dense.save(tmp_path)
    back = DenseVocab.load(tmp_path)
    for field in ("tracks", "artists", "track_count"):
        assert np.array_equal(getattr(back, field), getattr(dense, field))
    assert (back.n_catalogue_tracks, back.n_catalogue_artists, back.min_count, back.n_train) == (12, 3, 1, 6)
    assert back.artist_min_count == dense.artist_min_count == 1
    assert np.allclose(back.track_prior, dense.track_count / 6)
