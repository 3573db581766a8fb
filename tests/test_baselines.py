import numpy as np
import scipy.sparse as sp

from baselines.models import BaselineConfig, ItemKNN, Popularity, TitlePopularity, recommend
from common.topk import batched_topk, topk_excluding
from tests.psfake import make_set, make_vocab

VOCAB = make_vocab(12)
# tracks 0,1,2 always together; 3,4 together; 5 is the most popular on its own
TRAIN = make_set([[0, 1, 2], [0, 1, 2, 5], [3, 4, 5], [3, 4, 5], [5, 6], [5, 7], [0, 1]], VOCAB,
                 titles=["rock", "rock", "chill", "Chill!", "", "party", "rock"])


def test_topk_excludes_and_orders():
    scores = np.array([[0.1, 0.9, 0.5, 0.5, 0.2]], dtype=np.float32)
    ids, vals = topk_excluding(scores, sp.csr_matrix(np.array([[0, 1, 0, 0, 0]])), 7)
    assert ids.tolist() == [[2, 3, 4, 0, -1, -1, -1]]
    assert np.isneginf(vals[0, 4:]).all()


def test_batched_topk_matches_unbatched():
    rng = np.random.default_rng(0)
    scores = rng.random((37, 50)).astype(np.float32)
    excl = sp.random(37, 50, density=0.1, format="csr", random_state=1)
    full = topk_excluding(scores, excl, 10)[0]
    batched = batched_topk(lambda rows: scores[rows], excl, 10, batch=8)[0]
    assert np.array_equal(full, batched)


def test_popularity_order_and_seed_removal():
    pop = Popularity(TRAIN)
    assert pop.order()[0] == 5
    ps = make_set([[5], []], VOCAB)
    ids, _ = recommend(pop, ps, k=12)
    assert 5 not in ids[0] and ids[1, 0] == 5
    assert (ids[0] >= 0).sum() == 11 and ids[0, -1] == -1


def test_title_popularity_uses_normalised_title_then_popularity():
    pop = Popularity(TRAIN)
    model = TitlePopularity(TRAIN, pop, BaselineConfig())
    ps = make_set([[], [], []], VOCAB, titles=["CHILL", "unknown title", ""])
    ids, _ = recommend(model, ps, k=5)
    assert set(ids[0, :3]) == {3, 4, 5}  # the two "chill" playlists
    assert ids[1, 0] == 5 and ids[2, 0] == 5  # popularity fallback


def test_item_knn_recovers_cooccurring_tracks():
    pop = Popularity(TRAIN)
    model = ItemKNN(TRAIN, pop, BaselineConfig())
    ids, _ = recommend(model, make_set([[0], [3]], VOCAB), k=4)
    assert set(ids[0, :2]) == {1, 2}
    assert ids[1, 0] == 4
    assert 0 not in ids[0] and 3 not in ids[1]
