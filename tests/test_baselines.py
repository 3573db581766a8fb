import threading

import numpy as np
import pytest
import scipy.sparse as sp

from common.sparse import sample_rows
from common.topk import batched_topk, topk_excluding
from sources.item_knn import ItemKNN
from sources.sparse import BaselineConfig, Popularity, recommend
from sources.title_popularity import TitlePopularity
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


def test_popularity_shortcut_equals_topk_over_scores():
    rng = np.random.default_rng(3)
    train = make_set([rng.choice(12, size=rng.integers(1, 6), replace=False).tolist() for _ in range(40)], VOCAB)
    pop = Popularity(train)
    ps = make_set([rng.choice(12, size=n, replace=False).tolist() for n in (0, 1, 3, 11, 12)], VOCAB)
    for k in (1, 5, 12, 15):
        fast_ids, fast_scores = pop.top(ps, k)
        ids, scores = batched_topk(lambda rows: pop.score(ps, rows), ps.tracks, k, batch=2)
        assert np.array_equal(fast_ids, ids)
        assert np.array_equal(fast_scores[ids >= 0], scores[ids >= 0])
        assert np.isneginf(fast_scores[ids < 0]).all()


def test_batched_topk_shrinks_the_batch_to_the_cell_budget():
    seen = []
    scores = np.random.default_rng(0).random((10, 50)).astype(np.float32)

    def score(rows):
        seen.append(len(rows))
        return scores[rows]

    full = batched_topk(score, sp.csr_matrix((10, 50)), 5, batch=512)[0]
    assert seen == [10]
    seen.clear()
    assert np.array_equal(batched_topk(score, sp.csr_matrix((10, 50)), 5, batch=512, cells=150)[0], full)
    assert seen == [3, 3, 3, 1]


def test_sample_rows_keeps_short_rows_and_caps_long_ones_without_bias():
    rng = np.random.default_rng(1)
    m = sp.random(30, 400, density=0.3, format="csr", random_state=2, dtype=np.float32)
    m.data[:] = 1.0
    kept = sample_rows(m, 400, seed=0)  # no row over the cap: m itself
    assert kept.shape == m.shape and (kept != m).nnz == 0 and np.array_equal(kept.data, m.data)
    capped = sample_rows(m, 20, seed=0)
    counts = np.diff(m.indptr)
    assert np.array_equal(np.diff(capped.indptr), np.minimum(counts, 20))
    assert (capped - capped.multiply(m > 0)).nnz == 0  # only entries of m
    assert np.allclose(np.asarray(capped.sum(axis=1)).ravel(), counts)  # scaled to the row's total
    assert np.array_equal(capped.indices, sample_rows(m, 20, seed=0).indices)  # seeded
    v = rng.random(400).astype(np.float32)
    estimates = np.mean([sample_rows(m, 20, seed=s) @ v for s in range(300)], axis=0)
    assert np.allclose(estimates, m @ v, rtol=0.1)


def test_item_knn_sample_bounds_the_playlists_read_per_seed():
    """A seed in 50 playlists (with 11 other tracks) is read through 10 of them: only the tracks of
    those 10 score, and the sample is scaled so that the seed's evidence totals what all 50 give."""
    train = make_set([[0, i % 11 + 1] for i in range(50)] + [[1, 2]], VOCAB)
    pop = Popularity(train)
    exact = ItemKNN(train, pop, BaselineConfig(knn_max_playlists=0))
    sampled = ItemKNN(train, pop, BaselineConfig(knn_max_playlists=10))
    assert np.diff(exact.xt.indptr)[0] == 50 and np.diff(sampled.xt.indptr)[0] == 10
    seed = make_set([[0]], VOCAB)
    read = set(train.tracks[sampled.xt[0].indices].indices.tolist()) - {0}  # the tracks of the 10 kept
    raw = sampled.raw_scores(seed, np.array([0]))[0]
    assert set(np.flatnonzero(raw > 0).tolist()) - {0} == read  # (recommend drops the seed itself)
    ids, _ = recommend(sampled, seed, k=11)
    assert set(ids[0, :len(read)].tolist()) == read  # the kNN tracks first, popularity after them
    evidence = [m.raw_scores(seed, np.array([0]))[0] / m.cand_w for m in (sampled, exact)]
    assert np.isclose(evidence[0].sum(), evidence[1].sum())


def test_topk_breaks_ties_at_the_cut_by_column_id_so_lists_are_prefixes():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(50, 300)).astype(np.float32)  # heavy ties
    excl = sp.random(50, 300, density=0.05, format="csr", random_state=3)
    deep = topk_excluding(scores, excl, 200)[0]
    for k in (1, 17, 100, 199):
        assert np.array_equal(topk_excluding(scores, excl, k)[0], deep[:, :k])
    s = scores.copy()
    s[excl.nonzero()] = -np.inf
    order = np.lexsort((np.tile(np.arange(300), (50, 1)), -s), axis=1)  # best first, ties by id
    assert np.array_equal(deep, order[:, :200])


def test_title_popularity_shortcut_gives_the_dense_scorers_lists():
    """TitlePopularity.top (sparse rows) against top-k over its dense scores: the same ids and scores,
    with ties (equal counts) broken by id, seeds removed, and popularity after the title's tracks."""
    rng = np.random.default_rng(5)
    vocab = make_vocab(60)
    titles = ["rock", "chill", "party", "rock", ""]
    train = make_set([sorted(rng.choice(60, 8, replace=False).tolist()) for _ in range(40)], vocab,
                     titles=[titles[i % 5] for i in range(40)])
    model = TitlePopularity(train, Popularity(train), BaselineConfig())
    ps = make_set([[], [int(train.tracks[0].indices[0])], [3, 4], []], vocab, titles=["rock", "Rock", "chill", "unseen"])
    for k in (5, 40, 60):
        want = batched_topk(lambda rows: model.score(ps, rows), ps.tracks, k)
        got = model.top(ps, k)
        assert np.array_equal(got[0], want[0]), k
        assert np.allclose(got[1], want[1], equal_nan=True), k


def test_artist_knn_uses_seed_artists_even_without_known_seed_tracks():
    from sources.artist_knn import ArtistKNN

    # artist = track // 4: playlists with artist 1 (tracks 4..7) also hold 12 and 13
    vocab = make_vocab(20)
    train = make_set([[4, 12, 13], [5, 12], [6, 13, 0], [16, 17, 18], [16, 0, 1]], vocab)
    ps = make_set([[7], [0]], vocab)
    ps.tracks = ps.tracks.multiply(np.array([[0], [1]])).tocsr()  # row 0: its seed track is outside the catalogue
    ps.tracks.eliminate_zeros()
    ids, _ = recommend(ArtistKNN(train, Popularity(train), BaselineConfig()), ps, k=6)
    assert set(ids[0, :5].tolist()) == {4, 5, 6, 12, 13}  # everything from playlists sharing artist 1
    assert 0 not in ids[1] and 1 in ids[1, :4]


def test_threaded_blocks_give_the_same_lists():
    rng = np.random.default_rng(4)
    scores = rng.random((23, 50)).astype(np.float32)
    excl = sp.random(23, 50, density=0.1, format="csr", random_state=2)
    seen = []

    def score(rows):
        seen.append(rows[0])
        return scores[rows]

    one = batched_topk(score, excl, 7, batch=512, cells=100)
    three = batched_topk(score, excl, 7, batch=512, cells=100, threads=3)
    assert sorted(seen) == sorted(2 * list(range(0, 23, 2)))  # the same 2-row blocks, each once per call
    assert np.array_equal(one[0], three[0]) and np.array_equal(one[1], three[1])


def test_threads_score_blocks_at_the_same_time():
    """Each block waits for the other at a barrier: scored one after the other, both time out."""
    meet = threading.Barrier(2, timeout=10)

    def score(rows):
        meet.wait()
        return np.ones((len(rows), 5), dtype=np.float32)

    ids, _ = batched_topk(score, sp.csr_matrix((2, 5)), 2, batch=1, threads=2)
    assert ids.tolist() == [[0, 1], [0, 1]]


def test_a_failing_block_fails_the_threaded_listing():
    def score(rows):
        if 5 in rows:
            raise ValueError("block with row 5")
        return np.ones((len(rows), 10), dtype=np.float32)

    with pytest.raises(ValueError, match="row 5"):
        batched_topk(score, sp.csr_matrix((12, 10)), 3, batch=2, threads=2)


def test_item_knn_lists_do_not_depend_on_threads():
    rng = np.random.default_rng(5)
    train = make_set([rng.choice(12, size=rng.integers(2, 7), replace=False).tolist() for _ in range(60)], VOCAB)
    ps = make_set([rng.choice(12, size=2, replace=False).tolist() for _ in range(9)], VOCAB)
    model = ItemKNN(train, Popularity(train), BaselineConfig())
    one, many = recommend(model, ps, k=6, batch=2, threads=1), recommend(model, ps, k=6, batch=2, threads=4)
    assert np.array_equal(one[0], many[0]) and np.array_equal(one[1], many[1])


def test_topk_ties_straddling_the_cut_keep_the_lowest_ids_and_nan_is_never_listed():
    """Rows where the k-th value ties the (k + 1)-th (many equal scores spread over the row) and rows
    holding NaN, against a full sort: best first, ties by column id, NaN and excluded columns last."""
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 3, size=(40, 2000)).astype(np.float32)
    scores[5:10] = rng.random((5, 2000), dtype=np.float32)  # rows without ties
    scores[rng.random(scores.shape) < 0.01] = np.nan
    scores[20] = np.nan
    excl = sp.random(40, 2000, density=0.02, format="csr", random_state=4)
    ids, vals = topk_excluding(scores, excl, 300)
    s = np.where(np.isnan(scores), -np.inf, scores)
    s[excl.nonzero()] = -np.inf
    order = np.lexsort((np.tile(np.arange(2000), (40, 1)), -s), axis=1)[:, :300]
    want = np.where(np.isfinite(np.take_along_axis(s, order, axis=1)), order, -1)
    assert np.array_equal(ids, want)
    assert (ids[20] == -1).all() and not np.isnan(vals).any()
