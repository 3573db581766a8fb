import numpy as np
import pytest
import scipy.sparse as sp

from common.errors import PipelineError
from ensemble.candidates import SourceList, as_source, candidate_recall, is_member, lookup_csr, merge_candidates
from sources.item_knn import ItemKNN
from sources.sparse import BaselineConfig, Popularity, recommend
from tests.psfake import make_set, make_vocab

VOCAB = make_vocab(20)


def _src(name, rows):
    ids = np.full((len(rows), max(len(r) for r in rows)), -1, dtype=np.int32)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
    scores = np.where(ids >= 0, 1.0 / (1 + np.arange(ids.shape[1]))[None, :], -np.inf).astype(np.float32)
    return SourceList(name, ids, scores)


def test_lookup_csr_matches_dense_indexing():
    rng = np.random.default_rng(0)
    m = sp.random(30, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    rows = rng.integers(0, 30, 500)
    cols = rng.integers(-1, 40, 500)
    got = lookup_csr(m, rows, cols, missing=np.nan)
    dense = m.toarray()
    want = np.where(cols >= 0, dense[rows, np.maximum(cols, 0)], np.nan)
    want[(want == 0)] = np.nan  # unstored entries are "missing"
    assert np.allclose(got, want, equal_nan=True)
    assert is_member(rows[:, None], cols[:, None], m).ravel().tolist() == (~np.isnan(want)).tolist()


def test_merge_orders_by_best_rank_then_source_and_caps_total():
    ps = make_set([[0], [1]], VOCAB)
    a = _src("a", [[5, 6, 7, 8], [2, 3]])
    b = _src("b", [[7, 9, 5, 10], [4]])
    c = merge_candidates([a, b], ps, {"a": 3, "b": 2}, total=4)
    dense = c.to_dense(6)
    # rank 0: a5, b7; rank 1: a6, b9; rank 2: a7 (dup of b7, best rank 0 kept)
    assert dense[0].tolist() == [5, 7, 6, 9, -1, -1]
    assert dense[1].tolist() == [2, 4, 3, -1, -1, -1]
    assert c.n_sources[(c.row == 0) & (c.track == 7)].tolist() == [2]
    capped = merge_candidates([a, b], ps, {"a": 4, "b": 4}, total=3)
    assert capped.counts().tolist() == [3, 3]
    assert np.all(np.diff(capped.row) >= 0)
    assert np.array_equal(capped.merge_rank, [0, 1, 2, 0, 1, 2])


def test_cold_depth_applies_only_to_playlists_without_seeds():
    ps = make_set([[0], []], VOCAB)
    pop = _src("popularity", [[3, 4, 5, 6], [3, 4, 5, 6]])
    knn = _src("knn", [[9, 10], [11]])
    c = merge_candidates([knn, pop], ps, {"knn": 5, "popularity": 1}, total=10, cold_depth={"popularity": 4})
    assert sorted(c.track[c.row == 0].tolist()) == [3, 9, 10]
    assert sorted(c.track[c.row == 1].tolist()) == [3, 4, 5, 6, 11]


def test_precomputed_lists_lose_their_seeds_and_scorers_match_recommend():
    train = make_set([[0, 1, 2], [0, 1, 3], [2, 3, 4], [5, 6]], VOCAB)
    ps = make_set([[0, 1], [5]], VOCAB)
    leaky = _src("leaky", [[0, 2, 1, 3], [5, 6]])
    clean = as_source("leaky", (leaky.ids, leaky.scores), ps, 10)
    assert clean.ids[0].tolist() == [-1, 2, -1, 3] and clean.ids[1].tolist() == [-1, 6, -1, -1]
    cands = merge_candidates([clean], ps, {}, total=10, default_depth=10)
    assert not is_member(cands.row, cands.track, ps.tracks).any()
    pop = Popularity(train)
    knn = ItemKNN(train, pop, BaselineConfig())
    src = as_source("item_knn", knn, ps, 7)
    want_ids, want_scores = recommend(knn, ps, 7)
    assert np.array_equal(src.ids, want_ids) and np.allclose(src.scores, want_scores)


def test_as_source_rejects_bad_shapes():
    ps = make_set([[0], [1]], VOCAB)
    with pytest.raises(PipelineError, match="source bad"):
        as_source("bad", (np.zeros((3, 4), np.int32), np.zeros((3, 4))), ps, 4)
    with pytest.raises(PipelineError, match="outside"):
        as_source("bad", (np.full((2, 4), 99), np.zeros((2, 4))), ps, 4)
    with pytest.raises(PipelineError, match="scorer"):
        as_source("bad", 42, ps, 4)


def test_candidate_recall_per_category_counts_unknown_holdouts():
    ps = make_set([[0], [1], [2]], VOCAB, holdouts=[[3, 4], [5, 6, 7, 8], []], category=[2, 2, 3])
    ps.n_holdouts[1] = 8  # four withheld tracks outside the vocabulary still count in |G|
    ids = np.array([[3, 9, 4, 10], [5, 9, 10, 6], [11, 12, 13, 14]])
    table = candidate_recall(ids, ps, ks=(1, 3, 4))
    assert table["recall@1"] == pytest.approx((0.5 + 1 / 8) / 2)
    assert table["recall@3"] == pytest.approx((1.0 + 1 / 8) / 2)
    assert table["recall@4"] == pytest.approx((1.0 + 2 / 8) / 2)
    assert table["per_category"]["2"]["playlists"] == 2 and "3" not in table["per_category"]


def test_rows_slice_renumbers():
    ps = make_set([[0], [1], [2]], VOCAB)
    c = merge_candidates([_src("a", [[5, 6], [7], [8, 9]])], ps, {"a": 5}, total=5)
    part = c.rows_slice(1, 3)
    assert part.row.tolist() == [0, 1, 1] and part.track.tolist() == [7, 8, 9]
    assert part.indptr.tolist() == [0, 1, 3]


def test_a_list_saved_deeper_gives_what_the_scorer_gives_at_the_depth_asked():
    class Noise:  # distinct scores, so no tie sits at the cut
        def __init__(self):
            self.s = np.random.default_rng(5).random((6, 20)).astype(np.float32)

        def score(self, ps, rows):
            return self.s[rows]

    ps = make_set([[0, 1], [], [2], [3, 4, 5], [6], [7]], VOCAB)
    deep = as_source("n", Noise(), ps, 15)
    cut = as_source("n", (deep.ids, deep.scores), ps, 8)
    direct = as_source("n", Noise(), ps, 8)
    assert cut.ids.shape == (6, 8)
    assert np.array_equal(cut.ids, direct.ids) and np.array_equal(cut.scores, direct.scores)
