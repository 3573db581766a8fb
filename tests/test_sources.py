"""Every registered source keeps the contract of sources/base.py, checked the way implicit checks every
model through one test mixin: list shapes, seeds never returned, save/load round trip, determinism,
an empty playlist, and a refit with what validation chose. A new source is covered by registering it
(its settings here are configs/smoke.toml's: small and fast)."""
import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from common.errors import PipelineError
from pipeline.config import load_pipeline_config
from sources import REGISTRY
from sources.base import FitContext
from tests.psfake import make_set, make_vocab

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = load_pipeline_config(ROOT / "configs" / "smoke.toml")
N_GROUPS, PER_GROUP = 6, 15
VOCAB = make_vocab(N_GROUPS * PER_GROUP)
TITLES = ["rock", "chill", "party", "sleep", "gym", "road trip"]
SUFFIXES = ["", " mix", " 2017", " vibes"]  # shared across groups: similar titles of other groups


def grouped(n: int, seed: int) -> tuple[list[list[int]], list[str]]:
    """Playlists of 10 tracks from one group each, in a group-specific order, titled by their group
    (and one of a few words every group's titles share)."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, N_GROUPS, n)
    suffixes = rng.integers(0, len(SUFFIXES), n)
    return ([list(g * PER_GROUP + rng.choice(PER_GROUP, 10, replace=False)) for g in groups],
            [TITLES[g] + SUFFIXES[x] for g, x in zip(groups, suffixes)])


LISTS, NAMES = grouped(240, 0)
TRAIN = make_set(LISTS, VOCAB, titles=NAMES)
V_LISTS, V_NAMES = grouped(60, 1)
N_SEEDS = [[0, 1, 5, 10][i % 4] for i in range(60)]
VAL = make_set([v[:n] for v, n in zip(V_LISTS, N_SEEDS)], VOCAB, titles=V_NAMES,
               holdouts=[v[n:] for v, n in zip(V_LISTS, N_SEEDS)], category=[[1, 2, 3, 5][i % 4] for i in range(60)])
OTHER = make_set(V_LISTS, VOCAB, titles=V_NAMES)  # playlists the fixture's models never saw
ALL = TRAIN.concat(OTHER)
K = 40


def _fixed(settings, choice: dict):
    """The settings with what a choice names fixed by hand: a list of candidates becomes the one chosen."""
    names = {f.name for f in fields(settings)}
    return replace(settings, **{k: [v] if isinstance(getattr(settings, k), list) else v
                                for k, v in choice.items() if k in names})


def _others(settings, choice: dict) -> list[dict]:
    """The choice with one setting moved, for each setting it names: to another listed candidate,
    or a count (updates) halved."""
    out = []
    for k, v in choice.items():
        value = getattr(settings, k, None) if k in {f.name for f in fields(settings)} else None
        if isinstance(value, list) and len(value) > 1:
            out.append({**choice, k: next(c for c in value if c != v)})
        elif type(value) is int and v > 1:
            out.append({**choice, k: v // 2})
    return out


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
    """A source that saves its state loads it from the files, whatever playlists load is given, and
    needs every file it wrote; one that saves nothing (the baselines) builds again from the playlists
    it is given."""
    source, settings, model, _ = fitted
    ids = model.top(VAL, K)[0]
    model.save(tmp_path / "saved")
    saved = sorted(p.name for p in (tmp_path / "saved").iterdir()) if (tmp_path / "saved").exists() else []
    if not saved:  # nothing kept: load builds from the training playlists it is passed
        assert np.array_equal(source.load(tmp_path / "saved", TRAIN, settings, _ctx(tmp_path)).top(VAL, K)[0], ids)
        built = source.load(tmp_path / "saved", OTHER, settings, _ctx(tmp_path)).top(VAL, K)[0]
        assert np.array_equal(built, source.fit(OTHER, settings, _ctx(tmp_path)).top(VAL, K)[0])
        assert not np.array_equal(built, ids)  # the playlists passed made a difference
        return
    back = source.load(tmp_path / "saved", OTHER, settings, _ctx(tmp_path))  # other playlists: the state is the files'
    assert np.array_equal(back.top(VAL, K)[0], ids)
    assert bool(back.selected) == bool(model.selected)  # the choice comes back (ALS keeps only its rank)
    assert all(model.selected[k] == v for k, v in back.selected.items())
    for name in saved:  # load reads every file save wrote
        path = tmp_path / "saved" / name
        kept = path.read_bytes()
        path.unlink()
        with pytest.raises(PipelineError):
            source.load(tmp_path / "saved", OTHER, settings, _ctx(tmp_path))
        path.write_bytes(kept)


def test_fitting_twice_gives_the_same_lists(fitted, tmp_path):
    source, settings, model, _ = fitted
    again = source.fit(TRAIN, settings, _ctx(tmp_path, val=VAL))
    assert np.array_equal(again.top(VAL, K)[0], model.top(VAL, K)[0])


def test_an_empty_playlist_is_answered(fitted):
    _, _, model, _ = fitted
    ids, _ = model.top(make_set([[]], VOCAB, titles=[""]), K)
    assert ids.shape == (1, K) and len(set(ids[0][ids[0] >= 0].tolist())) == (ids[0] >= 0).sum()


def test_refit_on_every_playlist_with_what_validation_chose(fitted, tmp_path):
    """The refit learns from every playlist, and with the choice validation made: its lists are those
    of a fit whose settings fix that choice by hand, and a refit given another choice differs."""
    source, settings, model, _ = fitted
    json.dumps(model.selected)  # recorded in the stage's record
    refit = source.fit(ALL, settings, _ctx(tmp_path / "refit", selected=model.selected))
    ids = refit.top(VAL, K)[0]
    assert ids.shape == (len(VAL), K)
    assert not np.array_equal(ids, model.top(VAL, K)[0])  # fit on ALL, not on the training playlists
    if not model.selected:  # nothing to choose (the baselines): fixed settings
        assert refit.selected == {}
        return
    assert {f.name for f in fields(settings)} & set(model.selected), "a choice names the settings it fixes"
    chosen = source.fit(ALL, _fixed(settings, model.selected), _ctx(tmp_path / "chosen"))
    assert np.array_equal(ids, chosen.top(VAL, K)[0])
    moved = []  # another choice refits another model: the choice is what the refit follows
    for alt in _others(settings, model.selected):
        other = source.fit(ALL, settings, _ctx(tmp_path / "alt", selected=alt)).top(VAL, K)[0]
        assert np.array_equal(other, source.fit(ALL, _fixed(settings, alt), _ctx(tmp_path / "fixed")).top(VAL, K)[0])
        moved.append(not np.array_equal(other, ids))
    assert any(moved), f"no other choice than {model.selected} changed the refit's lists"
    if source.name == "als":  # the refit model's own rank, read from its fitted factors
        assert refit.model._model.item_factors.shape[1] == refit.model.factors == model.selected["factors"]


# the reranker's feature order that shipped rankers were trained on: new sources go after these
FEATURE_ORDER = ("als", "popularity", "title_popularity", "item_knn", "artist_knn", "sequence", "title_knn")


def test_the_registry_holds_every_source_module_in_the_feature_order():
    """sources/__init__.py's rule: a module of sources/ is a registered source (MODULES), a shared
    piece (SHARED) or a helper starting with "_"; a source module left out of MODULES would silently
    be no source at all. The registry's order is the reranker's feature order, so re-sorting
    MODULES would feed a trained ranker its features in another order."""
    import sources

    modules = {p.stem for p in Path(sources.__file__).parent.glob("*.py")} - {"__init__"}
    assert {m for m in modules if not m.startswith("_")} - set(sources.MODULES) - set(sources.SHARED) == set()
    assert tuple(REGISTRY)[:len(FEATURE_ORDER)] == FEATURE_ORDER
    for name, source in REGISTRY.items():
        assert source.stage in ("baselines", name)  # the baselines stage, or a stage of its own
