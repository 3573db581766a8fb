import numpy as np
import scipy.sparse as sp

from ensemble.candidates import SourceList, merge_candidates
from ensemble.features import PLAYLIST_FEATURES, RECENT_SEEDS, FeatureContext, build_features, feature_names
from tests.psfake import make_set, make_vocab

VOCAB = make_vocab(60)


def _data(seed=0, n_train=80, n_val=12):
    rng = np.random.default_rng(seed)
    train = [rng.choice(60, size=int(rng.integers(5, 20)), replace=False).tolist() for _ in range(n_train)]
    titles = [["rock", "chill", "", "party"][i % 4] for i in range(n_train)]
    seeds = [rng.choice(60, size=n, replace=False).tolist() for n in rng.integers(0, 12, n_val)]
    holds = [[t for t in rng.choice(60, size=8, replace=False).tolist() if t not in s] for s in seeds]
    val_titles = [["rock", "", "unknown", "chill"][i % 4] for i in range(n_val)]
    tr = make_set(train, VOCAB, titles=titles)
    val = make_set(seeds, VOCAB, titles=val_titles, holdouts=holds, category=[1 + i % 10 for i in range(n_val)])
    return tr, val, rng


def _sources(val, rng, k=25):
    out = []
    for name in ("a", "b"):
        ids = np.stack([rng.permutation(60)[:k] for _ in range(len(val))]).astype(np.int32)
        scores = np.sort(rng.random((len(val), k)).astype(np.float32), axis=1)[:, ::-1].copy()
        out.append(SourceList(name, ids, scores))
    seeds = val.tracks.toarray() > 0
    for s in out:  # as as_source would: seeds never listed
        s.ids[np.take_along_axis(seeds, s.ids.astype(np.int64), axis=1)] = -1
    return out


def _features(tr, val, srcs, cells=20_000_000):
    ctx = FeatureContext.build(tr, VOCAB)
    cands = merge_candidates(srcs, val, {}, total=30, default_depth=20)
    x, names = build_features(ctx, val, cands, srcs, cooc_cells=cells)
    return ctx, cands, x, names


def test_shapes_names_and_no_nan_where_defined():
    tr, val, rng = _data()
    srcs = _sources(val, rng)
    _, cands, x, names = _features(tr, val, srcs)
    assert x.shape == (len(cands.row), len(names)) and x.dtype == np.float32
    assert names == feature_names(["a", "b"]) and len(set(names)) == len(names)
    col = {n: x[:, j] for j, n in enumerate(names)}
    warm = np.diff(val.tracks.indptr)[cands.row] > 0
    assert not np.isnan(col["cooc_max"][warm]).any() and np.isnan(col["cooc_max"][~warm]).all()
    first = cands.indptr[:-1][cands.row]  # each candidate's playlist's first candidate
    for name in PLAYLIST_FEATURES:  # a playlist's features: one value over all its candidates
        assert np.array_equal(col[name], col[name][first], equal_nan=True), name
    # merge_rank is the position in the playlist's merged list, which follows the best source rank
    assert np.array_equal(col["merge_rank"], np.arange(len(cands.row)) - first)
    best = np.fmin(col["a_rank"], col["b_rank"])
    assert all((np.diff(best[a:b]) >= 0).all() for a, b in zip(cands.indptr[:-1], cands.indptr[1:]))


def test_cooccurrence_matches_dense_reference_in_any_block_size():
    tr, val, rng = _data(1)
    srcs = _sources(val, rng)
    ctx, cands, x, names = _features(tr, val, srcs)
    _, _, x_small, _ = _features(tr, val, srcs, cells=7)  # forces one playlist per block
    assert np.array_equal(x, x_small, equal_nan=True)
    xb = (tr.tracks.toarray() > 0).astype(np.float64)
    cooc = xb.T @ xb
    pop = np.maximum(xb.sum(axis=0), 1)
    norm = cooc / np.sqrt(pop[:, None] * pop[None, :])
    seeds = val.tracks.toarray()
    col = {n: x[:, j] for j, n in enumerate(names)}
    for i in np.flatnonzero(np.diff(val.tracks.indptr) > 0)[:6]:
        s = np.flatnonzero(seeds[i])
        last = s[np.argmax(seeds[i, s])]
        recent = s[np.argsort(-seeds[i, s])[:RECENT_SEEDS]]
        for p in np.flatnonzero(cands.row == i):
            t = cands.track[p]
            assert np.isclose(col["cooc_max"][p], cooc[s, t].max() * ctx.per_million)
            assert np.isclose(col["cooc_min"][p], cooc[s, t].min() * ctx.per_million)
            assert np.isclose(col["cooc_mean"][p], cooc[s, t].mean() * ctx.per_million)
            assert np.isclose(col["cooc_nonzero"][p], (cooc[s, t] > 0).mean())
            assert np.isclose(col["cooc_norm_max"][p], norm[s, t].max())
            assert np.isclose(col["cooc_norm_mean"][p], norm[s, t].mean())
            assert np.isclose(col["cooc_last"][p], cooc[last, t] * ctx.per_million)
            assert np.isclose(col["cooc_norm_recent"][p], norm[recent, t].mean())


def test_artist_cooccurrence_uses_all_seed_artists():
    tr, val, rng = _data(3)
    srcs = _sources(val, rng)
    ctx, cands, x, names = _features(tr, val, srcs)
    xa = (tr.artists.toarray() > 0).astype(np.float64)
    cooc = xa.T @ xa
    pop = np.maximum(xa.sum(axis=0), 1)
    norm = cooc / np.sqrt(pop[:, None] * pop[None, :])
    seed_art = val.artists.toarray()
    col = {n: x[:, j] for j, n in enumerate(names)}
    for i in np.flatnonzero(np.diff(val.artists.indptr) > 0)[:5]:
        s = np.flatnonzero(seed_art[i])
        last = s[np.argmax(seed_art[i, s])]
        for p in np.flatnonzero(cands.row == i):
            a = VOCAB.track_artist[cands.track[p]]
            assert np.isclose(col["artist_cooc_max"][p], cooc[s, a].max() * ctx.per_million)
            assert np.isclose(col["artist_cooc_norm_mean"][p], norm[s, a].mean())
            assert np.isclose(col["artist_cooc_last"][p], cooc[last, a] * ctx.per_million)
            assert col["artist_in_seeds"][p] == float(a in s)


def test_artist_album_title_and_source_features_by_hand():
    # artist = track // 4, album = track // 2
    tr = make_set([[0, 1, 8], [0, 9], [4, 5]], VOCAB, titles=["rock", "rock", "jazz"])
    val = make_set([[1, 2, 9]], VOCAB, titles=["Rock"], holdouts=[[3]], category=[3])  # last seed: 9 (artist 2)
    src = SourceList("m", np.array([[0, 3, 10, -1]], np.int32), np.array([[4.0, 2.0, 1.0, -np.inf]], np.float32))
    ctx = FeatureContext.build(tr, VOCAB)
    cands = merge_candidates([src], val, {"m": 4}, total=4)
    x, names = build_features(ctx, val, cands, [src])
    f = {n: dict(zip(cands.track.tolist(), x[:, j].tolist())) for j, n in enumerate(names)}
    assert f["artist_count"] == {0: 2.0, 3: 2.0, 10: 1.0}
    assert np.isclose(f["artist_frac"][0], 2 / 3)
    assert f["album_count"] == {0: 1.0, 3: 1.0, 10: 0.0}
    assert f["same_artist_last"] == {0: 0.0, 3: 0.0, 10: 1.0}
    assert f["same_album_last"] == {0: 0.0, 3: 0.0, 10: 0.0}
    pm = 1e6 / 3  # counts are per million training playlists
    assert ctx.per_million == pm
    assert np.allclose([f["title_count"][t] for t in (0, 3, 10)], [2 * pm, 0, 0]) and np.isclose(f["title_n"][0], 2 * pm)
    assert np.isclose(f["title_frac"][0], 1.0)
    assert f["m_score"] == {0: 4.0, 3: 2.0, 10: 1.0}
    assert f["m_rank"] == {0: 0.0, 3: 1.0, 10: 2.0}
    assert np.isclose(f["m_ratio"][3], 0.5)
    assert f["seed_artists"][0] == 2.0 and f["seed_albums"][0] == 3.0 and f["in_order"][0] == 1.0
    assert f["category"] == {0: 3.0, 3: 3.0, 10: 3.0}
    # track 0 with seed 1 (playlist 0) and seed 9 (playlist 1)
    assert np.allclose([f["cooc_max"][t] for t in (0, 3, 10)], [pm, 0, 0])
    assert np.isclose(f["cooc_mean"][0], 2 / 3 * pm) and f["cooc_nonzero"][3] == 0.0
    assert f["n_withheld"][0] == 1.0 and np.isclose(f["pop_log"][0], np.log1p(2 * pm))


def test_features_do_not_see_withheld_tracks():
    tr, val, rng = _data(2)
    srcs = _sources(val, rng)
    _, cands, x, _ = _features(tr, val, srcs)
    other = val.subset(np.arange(len(val)))
    shuffled = sp.csr_matrix(val.holdout.toarray()[rng.permutation(len(val))])
    other.holdout = shuffled.astype(np.int8)
    other.holdout_artists = sp.csr_matrix(np.ones_like(val.holdout_artists.toarray()))
    other.n_holdouts = np.full(len(val), 77, dtype=np.int32)
    x_other = build_features(FeatureContext.build(tr, VOCAB), other, cands, srcs)[0]
    assert np.array_equal(x, x_other, equal_nan=True)


def test_sampled_seed_side_estimates_the_cooccurrence_without_bias():
    tr, val, rng = _data(4)
    srcs = _sources(val, rng)
    ctx_exact, cands, x, names = _features(tr, val, srcs)
    j = names.index("cooc_mean")
    runs = []
    for seed in range(100):
        ctx = FeatureContext.build(tr, VOCAB, max_playlists=5, seed=seed)
        assert np.diff(ctx.xt_seed.indptr).max() == 5 and ctx.xt is not ctx.xt_seed
        runs.append(build_features(ctx, val, cands, srcs)[0])
    other = [n for n in names if not n.startswith(("cooc_", "artist_cooc_"))]
    keep = [names.index(n) for n in other]
    assert np.array_equal(runs[0][:, keep], x[:, keep], equal_nan=True)  # only co-occurrence is sampled
    assert not np.allclose(runs[0][:, j], x[:, j], equal_nan=True)
    warm = ~np.isnan(x[:, j])
    mean = np.mean([r[warm, j] for r in runs], axis=0)
    assert np.allclose(mean.mean(), x[warm, j].mean(), rtol=0.03)
    assert np.corrcoef(mean, x[warm, j])[0, 1] > 0.95


def test_a_playlist_has_the_same_features_over_twice_the_training_playlists():
    """The ranker learns with counts over the training playlists and serves with counts over every
    playlist (about 12% more at 20K): a feature must mean the same in both. Training playlists
    counted twice give every count twice over twice the playlists: nothing may change."""
    tr, val, rng = _data(5)
    srcs = _sources(val, rng)
    lists = [tr.tracks[i].indices[np.argsort(tr.tracks[i].data)].tolist() for i in range(len(tr))]
    twice = make_set(lists + lists, VOCAB, titles=list(tr.title) * 2)
    cands = merge_candidates(srcs, val, {}, total=30, default_depth=20)
    x, names = build_features(FeatureContext.build(tr, VOCAB, max_playlists=0), val, cands, srcs)
    x2, _ = build_features(FeatureContext.build(twice, VOCAB, max_playlists=0), val, cands, srcs)
    assert np.allclose(x, x2, rtol=1e-5, equal_nan=True), [n for j, n in enumerate(names)
                                                           if not np.allclose(x[:, j], x2[:, j], rtol=1e-5, equal_nan=True)]
