"""The order-aware sequence model (sources/sequence.py): it reads order, never peeks ahead, and its
selection and refit follow the budgeted-updates contract. The source contract itself is
tests/test_sources.py's."""
import numpy as np
import pytest
import torch

from common import trainer
from common.errors import PipelineError
from sources._sequence_data import SequenceConfig, crops, sequences
from sources._sequence_net import SequenceNet
from sources.base import FitContext
from sources.item_knn import ItemKNN
from sources.sequence import SequenceSource
from sources.sparse import BaselineConfig, Popularity, recommend
from tests.psfake import make_set, make_vocab

N_TRACKS = 60
VOCAB = make_vocab(N_TRACKS)


def cycles(n: int, seed: int, length: int = 12) -> list[list[int]]:
    """Walks along one of three rings of 20 tracks, from a random start: the next track is fixed by
    the current one, which a model of sets cannot know (every track of a ring co-occurs alike)."""
    rng = np.random.default_rng(seed)
    out = []
    for ring, start in zip(rng.integers(0, 3, n), rng.integers(0, 20, n)):
        out.append([int(ring * 20 + (start + i) % 20) for i in range(length)])
    return out


def small(**kw) -> SequenceConfig:
    base = dict(dim=32, max_len=12, negatives=40, batch=32, lr=0.01, updates=300, eval_every=100, dropout=0.0)
    return SequenceConfig(**(base | kw))


@pytest.mark.parametrize("arch", ["gru", "sasrec"])
def test_it_learns_the_next_track_where_a_set_model_cannot(arch):
    train = make_set(cycles(300, 0), VOCAB)
    test_lists = cycles(40, 1)
    ps = make_set([t[:5] for t in test_lists], VOCAB)
    torch.manual_seed(0)
    model = SequenceSource.fit(train, small(arch=arch), FitContext(VOCAB.track_artist))
    ids, _ = model.top(ps, 3)
    next_track = np.array([t[5] for t in test_lists])
    assert (ids[:, 0] == next_track).mean() > 0.8
    knn, _ = recommend(ItemKNN(train, Popularity(train), BaselineConfig()), ps, k=3)
    assert (knn[:, 0] == next_track).mean() < 0.5  # the same ring, in no particular order


@pytest.mark.parametrize("arch", ["gru", "sasrec"])
def test_a_state_never_sees_later_tracks(arch):
    torch.manual_seed(0)
    net = SequenceNet(30, SequenceConfig(arch=arch, dim=16, max_len=8, dropout=0.0)).eval()
    a = torch.tensor([[3, 7, 1, 9, 4, 0, 0, 0]])
    b = torch.tensor([[3, 7, 1, 22, 5, 8, 2, 0]])
    with torch.no_grad():
        sa, sb = net(a), net(b)
    assert torch.allclose(sa[0, :3], sb[0, :3], atol=1e-6) and not torch.allclose(sa[0, 3], sb[0, 3])


def test_sequences_follow_positions_and_crops_take_windows_or_the_last_tracks():
    ps = make_set([[5, 2, 9, 7], [1]], VOCAB)
    indptr, items = sequences(ps)
    assert (items[indptr[0]:indptr[1]] - 1).tolist() == [5, 2, 9, 7]  # position order, not id order
    last = crops(indptr, items, np.array([0, 1]), 3, None, last=True) - 1
    assert last.tolist() == [[2, 9, 7], [1, -1, -1]]
    window = crops(indptr, items, np.array([0] * 50), 2, np.random.default_rng(0))
    assert {tuple(w - 1) for w in window} <= {(5, 2), (2, 9), (9, 7)}
    assert (5, 2) in {tuple(w - 1) for w in window}


def test_selection_keeps_the_best_check_and_the_refit_trains_that_many_updates(monkeypatch):
    train = make_set(cycles(200, 0), VOCAB)
    val_lists = cycles(30, 2)
    val = make_set([t[:4] for t in val_lists], VOCAB, holdouts=[t[4:] for t in val_lists], category=[5] * 30)
    chosen = SequenceSource.fit(train, small(updates=120, eval_every=40), FitContext(VOCAB.track_artist, val=val))
    assert chosen.selected["updates"] in (40, 80, 120) and 0 < chosen.selected["val_r_precision"] <= 1
    budgets, run = [], trainer.run
    monkeypatch.setattr(trainer, "run", lambda loop, *args: budgets.append(loop.updates) or run(loop, *args))
    # the refit's own budget is one the selection cannot have kept: it must train the selected count
    SequenceSource.fit(train, small(updates=160, eval_every=40), FitContext(VOCAB.track_artist, selected=chosen.selected))
    assert budgets == [chosen.selected["updates"]]  # one run, of the updates selection kept


def test_bad_settings_are_refused():
    for bad in ({"arch": "lstm"}, {"dim": 3}, {"max_len": 1}):
        with pytest.raises(PipelineError, match=r"\[sequence\]"):
            SequenceConfig(**bad)
