"""Every registered source keeps the contract of sources/base.py, checked the way implicit checks every
model through one test mixin: list shapes, seeds never returned, save/load round trip, determinism,
an empty playlist, and a refit with what validation chose. A new source is covered by registering it
(its settings here are configs/smoke.toml's: small and fast)."""
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_pipeline_config
from sources import REGISTRY
from sources.base import FitContext
from tests.psfake import make_set, make_vocab

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = load_pipeline_config(ROOT / "configs" / "smoke.toml")
N_GROUPS, PER_GROUP = 6, 15
VOCAB = make_vocab(N_GROUPS * PER_GROUP)
TITLES = ["rock", "chill", "party", "sleep", "gym", "road trip"]


def grouped(n: int, seed: int) -> tuple[list[list[int]], list[str]]:
    """Playlists of 10 tracks from one group each, in a group-specific order, titled by their group."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, N_GROUPS, n)
    return [list(g * PER_GROUP + rng.choice(PER_GROUP, 10, replace=False)) for g in groups], [TITLES[g] for g in groups]


LISTS, NAMES = grouped(240, 0)
TRAIN = make_set(LISTS, VOCAB, titles=NAMES)
V_LISTS, V_NAMES = grouped(60, 1)
N_SEEDS = [[0, 1, 5, 10][i % 4] for i in range(60)]
VAL = make_set([v[:n] for v, n in zip(V_LISTS, N_SEEDS)], VOCAB, titles=V_NAMES,
               holdouts=[v[n:] for v, n in zip(V_LISTS, N_SEEDS)], category=[[1, 2, 3, 5][i % 4] for i in range(60)])
ALL = TRAIN.concat(make_set(V_LISTS, VOCAB, titles=V_NAMES))
K = 40


def _ctx(tmp: Path, **kw) -> FitContext:
    return FitContext(VOCAB.track_artist, work=tmp, device="cpu", **kw)


@pytest.fixture(scope="module", params=list(REGISTRY))
def fitted(request, tmp_path_factory):
    source = REGISTRY[request.param]
    settings = SETTINGS.settings(source.section)
    work = tmp_path_factory.mktemp(request.param)
    return source, settings, source.fit(TRAIN, settings, _ctx(work, val=VAL)), work


def test_lists_have_the_contract_shape_and_never_a_seed(fitted):
    _, _, model, _ = fitted
    ids, scores = model.top(VAL, K)
    assert ids.shape == scores.shape == (len(VAL), K) and ids.dtype == np.int32 and scores.dtype == np.float32
    assert ids.min() >= -1 and ids.max() < VOCAB.n_tracks
    for i in range(len(VAL)):
        row = ids[i][ids[i] >= 0]
        assert len(row) == len(set(row.tolist())) and not set(row.tolist()) & set(VAL.tracks[i].indices.tolist())
        assert (np.diff(scores[i][ids[i] >= 0]) <= 1e-6).all()  # best first
    assert (ids >= 0).sum() > 0.9 * ids.size  # a source answers, it does not leave its lists empty


def test_save_and_load_give_the_same_lists(fitted, tmp_path):
    source, settings, model, _ = fitted
    model.save(tmp_path)
    back = source.load(tmp_path, TRAIN, settings, _ctx(tmp_path))
    assert np.array_equal(back.top(VAL, K)[0], model.top(VAL, K)[0])


def test_fitting_twice_gives_the_same_lists(fitted, tmp_path):
    source, settings, model, _ = fitted
    again = source.fit(TRAIN, settings, _ctx(tmp_path, val=VAL))
    assert np.array_equal(again.top(VAL, K)[0], model.top(VAL, K)[0])


def test_an_empty_playlist_is_answered(fitted):
    _, _, model, _ = fitted
    ids, _ = model.top(make_set([[]], VOCAB, titles=[""]), K)
    assert ids.shape == (1, K) and len(set(ids[0][ids[0] >= 0].tolist())) == (ids[0] >= 0).sum()


def test_refit_on_every_playlist_with_what_validation_chose(fitted, tmp_path):
    source, settings, model, _ = fitted
    json.dumps(model.selected)  # recorded in the stage's record
    refit = source.fit(ALL, settings, _ctx(tmp_path, selected=model.selected))
    assert refit.selected == model.selected
    ids, _ = refit.top(VAL, K)
    assert ids.shape == (len(VAL), K)


def test_the_registry_holds_every_baseline_and_knows_their_stages():
    assert {"popularity", "title_popularity", "item_knn", "artist_knn", "als"} <= set(REGISTRY)
    for name, source in REGISTRY.items():
        assert source.name == name and source.stage in ("baselines", name)
        assert source.Config is None or SETTINGS.settings(source.section).__class__ is source.Config
