"""Title kNN: variants of a title fold together, a title never seen still finds its nearest titles'
tracks, and on a split with noisy, mostly one-of-a-kind titles it beats exact-title popularity."""
import numpy as np

from common.metrics import list_metrics
from preprocess.titles import normalize_title, title_tokens
from sources.base import FitContext
from sources.sparse import BaselineConfig, Popularity, recommend
from sources.title_knn import TitleKNN, TitleKNNConfig, TitleKNNSource, _Titles
from sources.title_popularity import TitlePopularity
from tests.psfake import make_set, make_vocab

TASTES = ["chill", "workout", "party", "sleep", "country", "worship", "rap", "rock", "summer", "study", "love", "oldies"]
PER_TASTE = 20
VOCAB = make_vocab(len(TASTES) * PER_TASTE)
NAMES = ["sarah", "jake", "emily", "josh", "hannah", "tyler", "madison", "ryan", "ashley", "kyle", "megan", "nick",
         "rachel", "alex", "katie", "jordan", "kayla", "austin", "amanda", "zach"]


def tokens(raw: str) -> tuple[str, ...]:
    return title_tokens(normalize_title(raw))


def test_variants_of_a_title_share_one_form():
    assert tokens("Chill Vibes!!") == tokens("chilll vibes") == tokens("CHILL VIBES") == ("chill", "vibe")
    assert tokens("summer '17") == tokens("Summer 2k17") == tokens("summer 2017") == tokens("summer 17")
    assert tokens("Sarah's Throwbacks") == tokens("sarah throwback")
    assert tokens("Été") == tokens("ete") and tokens("80's") == tokens("80s")
    assert tokens("rock n roll") == tokens("rock & roll") == tokens("rock and roll")
    assert tokens("🔥🔥🔥 rap") == ("rap", "🔥")  # a symbol is a token of its own, once


def test_a_glued_hashtag_title_is_near_its_spaced_form():
    lists = [[0, 1, 2]] * 3 + [[3, 4, 5]] * 3
    model = TitleKNN.build(make_set(lists, VOCAB, titles=["chill vibes 2017"] * 3 + ["workout"] * 3), TitleKNNConfig())
    sim = model.similarity(_Titles.of(np.array([normalize_title("#chillvibes 2k17")])), char_weight=0.7).toarray()[0]
    near = model.keys.tolist().index("chill vibe 2017")
    assert sim.argmax() == near and sim[near] > 0.6


def test_a_title_never_seen_gets_the_tracks_of_its_nearest_titles():
    chill, gym = list(range(0, 10)), list(range(10, 20))
    lists = [chill] * 4 + [gym] * 6  # gym tracks are the more popular
    train = make_set(lists, VOCAB, titles=["chill vibes"] * 2 + ["chill mix"] * 2 + ["workout"] * 6)
    source = TitleKNNSource.fit(train, TitleKNNConfig(), FitContext(VOCAB.track_artist))
    query = make_set([[]], VOCAB, titles=["#CHILLLL vibez"])
    ids = source.top(query, 10)[0][0]
    assert set(ids.tolist()) == set(chill)
    exact = recommend(TitlePopularity(train, Popularity(train), BaselineConfig()), query, k=10)[0][0]
    assert set(exact.tolist()) == set(gym)  # exact titles know nothing of it: popularity


def _split(n: int, seed: int) -> tuple[list[list[int]], list[str]]:
    """Playlists of one taste (tracks by a Zipf-like preference inside it) and noisy titles: the
    taste's word, a two-word variant, or a personal title around it ("kyle's chill"), with stretched
    letters, glued hashtags and years, so most titles are seen once or never."""
    rng = np.random.default_rng(seed)
    pref = 1.0 / np.arange(1, PER_TASTE + 1)
    lists, titles = [], []
    for t in rng.integers(0, len(TASTES), n):
        lists.append((t * PER_TASTE + rng.choice(PER_TASTE, 12, replace=False, p=pref / pref.sum())).tolist())
        word = TASTES[t]
        kind = rng.random()
        title = word if kind < 0.2 else f"{word} {rng.choice(['vibes', 'mix', 'songs', 'jams'])}" if kind < 0.5 \
            else f"{rng.choice(NAMES)}'s {word}"
        noise = rng.random()
        title = title + title[-1] * 2 if noise < 0.2 else "#" + title.replace(" ", "") if noise < 0.3 \
            else f"{title} '1{rng.integers(4, 8)}" if noise < 0.5 else title
        titles.append(title)
    return lists, titles


def _title_only(lists: list[list[int]], titles: list[str]):
    return make_set([[] for _ in lists], VOCAB, titles=titles, holdouts=lists, category=[1] * len(lists))


def test_it_beats_exact_title_popularity_on_noisy_title_only_playlists():
    lists, titles = _split(400, 0)
    train = make_set(lists, VOCAB, titles=titles)
    val, test = _title_only(*_split(150, 1)), _title_only(*_split(300, 2))
    source = TitleKNNSource.fit(train, TitleKNNConfig(), FitContext(VOCAB.track_artist, val=val))
    knn = np.nanmean(list_metrics(source.top(test, 100)[0], test, VOCAB.track_artist)["r_precision"])
    exact_model = TitlePopularity(train, Popularity(train), BaselineConfig())
    exact = np.nanmean(list_metrics(recommend(exact_model, test, k=100)[0], test, VOCAB.track_artist)["r_precision"])
    assert knn > 1.3 * exact, (knn, exact)


_LISTS_IN_A_PROCESS = """
import hashlib, numpy as np
from sources.base import FitContext
from sources.title_knn import TitleKNNConfig, TitleKNNSource
from tests.psfake import make_set
from tests.test_title_knn import VOCAB, _split, _title_only
train = make_set(*_split(400, 0)[:1], VOCAB, titles=_split(400, 0)[1])
source = TitleKNNSource.fit(train, TitleKNNConfig(), FitContext(VOCAB.track_artist, val=_title_only(*_split(150, 1))))
ids, scores = source.top(_title_only(*_split(300, 2)), 100)
print(hashlib.sha256(ids.tobytes() + scores.tobytes()).hexdigest())
"""


def test_lists_are_the_same_whatever_the_process_string_hashing():
    """Python salts string hashes per process: a token order taken from a set would change the
    TF-IDF columns, the float sums and so the ties between runs (same data + seed = same submission)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digests = {subprocess.run([sys.executable, "-c", _LISTS_IN_A_PROCESS], cwd=root, capture_output=True, text=True,
                              check=True, env=os.environ | {"PYTHONHASHSEED": str(h)}).stdout.strip()
               for h in (1, 2, 3, 4)}
    assert len(digests) == 1, digests
