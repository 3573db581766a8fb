import numpy as np
import pytest

from common.config import from_dict
from common.errors import PipelineError
from ensemble.candidates import as_source, is_member, merge_candidates
from ensemble.features import FeatureContext
from sources.item_knn import ItemKNN
from sources.sparse import BaselineConfig, Popularity
from sources.title_popularity import TitlePopularity
from ensemble.ranker import (IMPORTANCE_FILE, MODEL_FILE, RerankConfig, fill_popular, fit, load_reranker, prepare,
                             rerank, rerank_with, stratified_share, train_reranker)
from preprocess.artifacts import Artifacts, save_playlists
from report.evaluation import evaluate_ids
from tests.psfake import make_set, make_vocab

N_TRACKS, N_GROUPS = 800, 20
VOCAB = make_vocab(N_TRACKS)
SEEDS_BY_CATEGORY = {1: 0, 2: 1, 3: 5, 4: 5, 5: 10, 6: 10, 7: 25, 8: 25, 9: 30, 10: 30}


def _playlists(rng, n, with_categories):
    """Each playlist mostly draws from one group of 40 tracks (Zipf inside the group) plus noise;
    the title names the group except in the no-title categories."""
    seeds, holds, titles, cats = [], [], [], []
    for i in range(n):
        g = int(rng.integers(N_GROUPS))
        inside = g * 40 + np.minimum(rng.zipf(1.6, 200) - 1, 39)
        noise = rng.integers(0, N_TRACKS, 15)
        tracks = list(dict.fromkeys(np.concatenate([inside[:60], noise]).tolist()))
        tracks = [tracks[j] for j in rng.permutation(len(tracks))][: int(rng.integers(20, 45))]
        cat = 1 + i % 10 if with_categories else 0
        n_seeds = min(SEEDS_BY_CATEGORY[cat], len(tracks) - 5) if with_categories else len(tracks)
        seeds.append(tracks[:n_seeds])
        holds.append(tracks[n_seeds:])
        titles.append("" if cat in (4, 6) else f"group {g}")
        cats.append(cat)
    return make_set(seeds, VOCAB, titles=titles, holdouts=holds if with_categories else None, category=cats)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    train = _playlists(rng, 900, False)
    val = _playlists(rng, 700, True)
    pop = Popularity(train)
    sources = {"item_knn": ItemKNN(train, pop, BaselineConfig()),
               "title_popularity": TitlePopularity(train, pop, BaselineConfig()), "popularity": pop}
    ctx = FeatureContext.build(train, VOCAB)
    return train, val, sources, ctx


CFG = RerankConfig(depth={"item_knn": 80, "title_popularity": 40, "popularity": 10}, cold_depth={"popularity": 60},
                   candidates=100, list_depth=150, rounds=40, early_stopping=10, min_data_in_leaf=20, num_leaves=15,
                   num_threads=1)


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    _, val, sources, ctx = world
    out = tmp_path_factory.mktemp("rerank")
    fit_part = val.subset(np.arange(500))
    summary = fit(ctx, fit_part, sources, out, CFG)
    return out, summary


def test_output_is_the_candidates_in_model_order_then_popularity(world, trained):
    _, val, sources, ctx = world
    test = val.subset(np.arange(500, 700))
    model = load_reranker(trained[0])
    ids, scores = rerank_with(model, ctx, test, sources, CFG)
    assert ids.shape == (200, 500) and ids.dtype == np.int32 and (ids >= 0).all()
    assert not is_member(np.arange(200)[:, None], ids, test.tracks).any()
    assert all(len(set(r)) == 500 for r in ids.tolist())
    assert np.all(np.diff(scores, axis=1) <= 0)
    srcs = [as_source(n, sources[n], test, CFG.list_depth) for n in model.sources]
    cands = merge_candidates(srcs, test, CFG.depth, CFG.candidates, CFG.cold_depth, CFG.default_depth)
    counts = cands.counts()
    for i in range(200):
        mine = cands.track[cands.row == i]
        assert sorted(ids[i, :counts[i]].tolist()) == sorted(mine.tolist())
    fill = np.arange(500)[None, :] >= counts[:, None]
    assert not is_member(np.repeat(np.arange(200), 500).reshape(200, 500)[fill], ids[fill],
                         _pairs_matrix(cands, test)).any()


def _pairs_matrix(cands, ps):
    import scipy.sparse as sp
    return sp.csr_matrix((np.ones(len(cands.row)), (cands.row, cands.track)), shape=(len(ps), N_TRACKS))


def test_reranker_beats_the_best_single_source_on_held_out_playlists(world, trained):
    _, val, sources, ctx = world
    test = val.subset(np.arange(500, 700))
    ids, _ = rerank_with(load_reranker(trained[0]), ctx, test, sources, CFG)
    ours = evaluate_ids(ids, test, VOCAB)
    knn = evaluate_ids(as_source("item_knn", sources["item_knn"], test, 500).ids, test, VOCAB)
    assert ours["r_precision"] > knn["r_precision"] and ours["ndcg"] > knn["ndcg"]
    curve, best = trained[1]["curve"], trained[1]["best_iteration"]  # early stopping kept the best round
    assert best == int(np.argmax(curve)) + 1 and trained[1][f"valid_ndcg_at_{CFG.eval_at}"] == pytest.approx(max(curve))
    assert trained[1]["candidate_recall"]["recall@100"] > 0.3


def test_training_is_deterministic_and_saves_importances(world, trained, tmp_path):
    _, val, sources, ctx = world
    fit(ctx, val.subset(np.arange(500)), sources, tmp_path, CFG)
    assert (tmp_path / MODEL_FILE).read_text() == (trained[0] / MODEL_FILE).read_text()
    import json
    gain = json.loads((tmp_path / IMPORTANCE_FILE).read_text())["gain"]
    model = load_reranker(tmp_path)
    assert set(gain) == set(model.features) and sum(gain.values()) > 0 and min(gain.values()) >= 0
    # each feature's gain is the saved trees' total split gain on that feature, read from the model file
    splits = dict(zip(model.features, model.booster.feature_importance(importance_type="split")))
    assert all((gain[f] > 0) == (splits[f] > 0) for f in model.features)
    assert len({round(g, 6) for g in gain.values()}) > 2  # gains, not split counts or a constant
    by_hand = dict.fromkeys(model.features, 0.0)

    def walk(node):
        if "split_feature" in node:
            by_hand[model.features[node["split_feature"]]] += node["split_gain"]
            walk(node["left_child"])
            walk(node["right_child"])
    for tree in model.booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    assert all(np.isclose(gain[f], by_hand[f], rtol=1e-5, atol=1e-6) for f in model.features)


def test_train_reranker_reads_only_the_validation_split(world, tmp_path):
    train, val, sources, ctx = world
    save_playlists(tmp_path / "train.npz", train)
    save_playlists(tmp_path / "val.npz", val.subset(np.arange(300)))
    art = Artifacts(folder=tmp_path, manifest={}, vocab=VOCAB)  # no challenge.npz: reading it would fail
    small = RerankConfig(**{**CFG.__dict__, "rounds": 5})
    summary = train_reranker(art, sources, tmp_path / "model", small)
    part = val.subset(np.arange(300))  # what it learns from: those with a withheld track among their candidates
    _, cands = prepare(ctx, part, sources, small)
    learns = np.bincount(cands.row, weights=is_member(cands.row, cands.track, part.holdout), minlength=300) > 0
    held = stratified_share(part.category, small.valid_fraction, small.seed)
    assert 200 < learns.sum() < 300  # the candidates miss some playlists' withheld tracks
    assert summary["train_playlists"] == (learns & ~held).sum() and summary["valid_playlists"] == (learns & held).sum()
    ps = val.subset(np.arange(300, 320))
    ids, _ = rerank(load_reranker(tmp_path / "model"), art, ps, sources)
    assert ids.shape == (20, 500) and not is_member(np.arange(20)[:, None], ids, ps.tracks).any()


def test_rerank_refuses_other_sources_and_bad_config(world, trained):
    _, val, sources, ctx = world
    model = load_reranker(trained[0])
    with pytest.raises(PipelineError, match="trained with sources"):
        rerank_with(model, ctx, val.subset(np.arange(5)), {"item_knn": sources["item_knn"]}, CFG)
    with pytest.raises(PipelineError, match="depth"):
        from_dict(RerankConfig, {"depth": {"item_knn": -3}}, "[rerank]")
    with pytest.raises(PipelineError, match="unknown key"):
        from_dict(RerankConfig, {"candidate": 10}, "[rerank]")
    with pytest.raises(PipelineError, match="missing"):
        load_reranker(trained[0] / "nowhere")


def test_fill_popular_skips_seeds_and_candidates():
    ps = make_set([[0, 1], []], VOCAB)
    pop = np.zeros(N_TRACKS, np.float32)
    pop[:6] = [9, 8, 7, 6, 5, 4]
    cands = merge_candidates([as_source("x", (np.array([[2, -1], [5, 3]]), np.ones((2, 2))), ps, 2)], ps, {"x": 2}, 2)
    ids = np.full((2, 4), -1, np.int32)
    ids[0, 0], ids[1, :2] = 2, [5, 3]
    scores = np.where(ids >= 0, 1.0, -np.inf).astype(np.float32)
    out, sc = fill_popular(ids, scores, ps, cands, pop)
    assert out.tolist() == [[2, 3, 4, 5], [5, 3, 0, 1]]
    assert np.all(np.diff(sc, axis=1) <= 0) and sc[0, 1] < sc[0, 0] and sc[1, 2] < sc[1, 1]


def test_stratified_share_holds_out_the_rounded_fraction_of_every_category():
    # categories of 10, 7, 1 and 4 playlists, interleaved
    category = np.array([1, 2, 1, 5, 1, 2, 3, 1, 2, 5, 1, 1, 2, 5, 1, 2, 1, 5, 2, 1, 2, 1])
    size = {1: 10, 2: 7, 3: 1, 5: 4}
    # by hand: 0.2 of each (10 -> 2, 7 -> 1.4 -> 1, 1 -> 0.2 -> 0, 4 -> 0.8 -> 1); 0.3 of each (3, 2.1 -> 2, 0, 1.2 -> 1)
    for fraction, want in ((0.2, {1: 2, 2: 1, 3: 0, 5: 1}), (0.3, {1: 3, 2: 2, 3: 0, 5: 1})):
        shares = [stratified_share(category, fraction, seed) for seed in range(6)]
        for held in shares:
            assert held.dtype == bool and held.shape == category.shape
            assert {c: int(held[category == c].sum()) for c in size} == want
            assert all((~held[category == c]).sum() == size[c] - want[c] >= 1 for c in size)  # every category trains
        assert len({h.tobytes() for h in shares}) > 1  # the seed draws which playlists
        assert np.array_equal(stratified_share(category, fraction, 3), shares[3])  # and the same seed the same ones


def test_cold_titled_playlists_take_the_cold_source_list_and_the_rest_the_ranker(world, trained):
    import dataclasses

    _, val, sources, ctx = world
    test = val.subset(np.arange(500, 700))
    model = load_reranker(trained[0])
    ranked, _ = rerank_with(model, ctx, test, sources, dataclasses.replace(CFG, cold_source=""))
    served, scores = rerank_with(model, ctx, test, sources, dataclasses.replace(CFG, cold_source="title_popularity"))
    cold = (np.diff(test.tracks.indptr) == 0) & test.has_title
    assert cold.sum() == (test.category == 1).sum() > 10
    title = as_source("title_popularity", sources["title_popularity"], test, 500).ids
    assert np.array_equal(served[cold], title[cold]) and not np.array_equal(ranked[cold], title[cold])
    assert np.array_equal(served[~cold], ranked[~cold]) and np.all(np.diff(scores, axis=1) <= 0)


def test_a_cold_source_must_be_a_reranker_source(tmp_path):
    from pipeline.config import load_pipeline_config

    path = tmp_path / "c.toml"
    path.write_text('[rerank]\nsources = ["als", "item_knn"]\n')
    with pytest.raises(PipelineError, match="cold_source: 'title_knn' is not among"):
        load_pipeline_config(path)
    path.write_text('[rerank]\nsources = ["als", "item_knn"]\ncold_source = ""\n')
    assert load_pipeline_config(path).rerank.cold_source == ""
