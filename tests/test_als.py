"""implicit's ALS as a baseline and source (sources/als.py): fold-in of new playlists, cold playlists,
seeds, save/load, and the choice of rank on validation playlists."""
import numpy as np
import pytest

from common.errors import PipelineError
from sources.als import ALS, ALSConfig, select_factors
from sources.sparse import Popularity, recommend
from tests.psfake import make_set, make_vocab

N_GROUPS, PER_GROUP = 6, 15
VOCAB = make_vocab(N_GROUPS * PER_GROUP)
CFG = ALSConfig(factors=[2, 8], iterations=10, threads=1)


def grouped(n: int, seed: int) -> list[list[int]]:
    """Playlists of 8 tracks from one group each: what a low-rank model should recover."""
    rng = np.random.default_rng(seed)
    return [list(g * PER_GROUP + rng.choice(PER_GROUP, 8, replace=False)) for g in rng.integers(0, N_GROUPS, n)]


TRAIN = make_set(grouped(300, 0), VOCAB)


@pytest.fixture(scope="module")
def model() -> ALS:
    return ALS.fit(TRAIN, 8, CFG)


def test_folded_in_playlists_get_their_group_and_never_their_seeds(model):
    val = grouped(40, 1)
    ps = make_set([v[:3] for v in val], VOCAB)
    ids, scores = recommend(model, ps, k=20)
    groups = np.array([v[0] // PER_GROUP for v in val])
    assert (ids[:, :10] // PER_GROUP == groups[:, None]).mean() > 0.9  # the seeds' group first
    for i, v in enumerate(val):
        assert not set(v[:3]) & set(ids[i].tolist())
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_a_playlist_without_known_seeds_gets_popularity(model):
    ps = make_set([[], [0, 1]], VOCAB)
    ids, _ = recommend(model, ps, k=VOCAB.n_tracks)
    pop_ids, _ = recommend(Popularity(TRAIN), make_set([[]], VOCAB), k=VOCAB.n_tracks)
    assert np.array_equal(ids[0], pop_ids[0])
    assert not np.array_equal(ids[1, :10], pop_ids[0, :10])


def test_save_and_load_give_the_same_lists(model, tmp_path):
    model.save(tmp_path / "als.npz")
    back = ALS.load(tmp_path / "als.npz", CFG)
    ps = make_set([v[:5] for v in grouped(10, 2)], VOCAB)
    assert back.factors == 8
    assert np.array_equal(recommend(model, ps, k=30)[0], recommend(back, ps, k=30)[0])


def test_rank_is_chosen_on_validation_r_precision():
    val_lists = grouped(60, 3)
    val = make_set([v[:2] for v in val_lists], VOCAB, holdouts=[v[2:] for v in val_lists], category=[5] * 60)
    chosen, table = select_factors(TRAIN, val, VOCAB.track_artist, CFG)
    assert [row["factors"] for row in table] == [2, 8]
    best = max(table, key=lambda r: r["r_precision"])
    assert chosen.factors == best["factors"] == 8  # 6 groups need more than 2 factors
    assert table[1]["r_precision"] > table[0]["r_precision"] + 0.1


class _Clock:
    """A fake clock and fit: a rank-f fit takes f seconds and scores QUALITY[f] on validation."""

    def __init__(self, quality: dict[int, float]):
        self.now, self.quality, self.fitted = 0.0, quality, []

    def perf_counter(self) -> float:
        return self.now

    def fit(self, train, factors, cfg):
        self.now += factors
        self.fitted.append(factors)
        return type("Fitted", (), {"factors": factors})()

    def metrics(self, ids, val, track_artist):
        return {"r_precision": np.array([self.quality[self.fitted[-1]]]), "ndcg": np.array([0.0])}


@pytest.fixture
def clock(monkeypatch):
    import sources.als as als

    fake = _Clock({8: 0.10, 16: 0.12, 32: 0.15, 64: 0.14, 128: 0.20, 256: 0.21})
    monkeypatch.setattr(als.time, "perf_counter", fake.perf_counter)
    monkeypatch.setattr(als.ALS, "fit", classmethod(lambda cls, t, f, c: fake.fit(t, f, c)))
    monkeypatch.setattr(als, "recommend", lambda model, val, k, batch: (None, None))
    monkeypatch.setattr(als, "list_metrics", fake.metrics)
    return fake


def test_the_rank_search_stops_at_the_first_rank_that_does_not_gain(clock):
    chosen, table = select_factors(None, None, None, ALSConfig(factors=[256, 8, 16, 32, 64, 128]))
    assert clock.fitted == [8, 16, 32, 64]  # 64 loses to 32: 128 and 256 are never fit
    assert chosen.factors == 32 and [row["factors"] for row in table] == [8, 16, 32, 64]


def test_the_rank_search_stops_before_a_rank_that_would_overrun_its_budget(clock):
    clock.quality = {f: f / 1000 for f in clock.quality}  # every rank gains
    chosen, _ = select_factors(None, None, None, ALSConfig(factors=[8, 16, 32, 64, 128, 256], search_seconds=130))
    assert clock.fitted == [8, 16, 32, 64]  # 8+16+32+64 = 120 s spent; 128 would reach 248 s
    assert chosen.factors == 64
    select_factors(None, None, None, ALSConfig(factors=[8, 16, 32, 64, 128, 256], search_seconds=1e6))
    assert clock.fitted[4:] == [8, 16, 32, 64, 128, 256]


def test_bad_settings_are_refused():
    for bad in ({"factors": []}, {"alpha": 0.0}, {"iterations": 0}, {"search_seconds": 0.0}):
        with pytest.raises(PipelineError, match=r"\[als\]"):
            ALSConfig(**bad)


def test_the_factors_start_as_implicit_starts_them():
    """ALS.fit draws the starting factors itself (in place, without implicit's second copy): the fit
    must be implicit's own, to the bit."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from common.sparse import binary

    ours = ALS.fit(TRAIN, 8, CFG)
    theirs = AlternatingLeastSquares(factors=8, regularization=CFG.regularization, alpha=CFG.alpha,
                                     iterations=CFG.iterations, num_threads=1, random_state=CFG.seed,
                                     calculate_training_loss=False)
    with threadpool_limits(1, "blas"):
        theirs.fit(binary(TRAIN.tracks), show_progress=False)
    assert np.array_equal(ours._model.item_factors, theirs.item_factors)
