import numpy as np
from hypothesis import given, strategies as st

from common.categories import CATEGORIES, infer_categories
from preprocess.titles import ALPHABET, MAX_TITLE_CHARS, normalize_title, title_chars, title_key


def test_normalize_case_punctuation_whitespace():
    assert normalize_title("  Road   Trip!! ") == "road trip"
    assert normalize_title("Chill:Vibes (2017)") == "chill vibes 2017"
    assert normalize_title("R&B\tJams") == "r&b jams"
    assert normalize_title("~~~") == ""


def test_emoji_kept_in_normalised_title_but_dropped_from_key():
    assert normalize_title("🔥 Lit 🔥") == "🔥 lit 🔥"
    assert title_key("🔥 Lit 🔥") == "lit"
    assert title_key("🔥🔥🔥") == ""


def test_key_alphabet_accents_and_length():
    assert title_key("Été Hits") == "etehits"
    assert title_key("rap/hip-hop <3 +") == "rap/hip-hop<3+"
    assert title_key("x" * 100) == "x" * MAX_TITLE_CHARS


def test_title_chars_indices_and_padding():
    chars = title_chars(["ab", "", "🔥", "z9"])
    assert chars.shape == (4, MAX_TITLE_CHARS) and chars.dtype == np.uint8
    assert chars[0, :3].tolist() == [1, 2, 0]
    assert not chars[1].any() and not chars[2].any()
    assert chars[3, :2].tolist() == [ALPHABET.index("z") + 1, ALPHABET.index("9") + 1]


@given(st.text(max_size=200))
def test_key_properties(title):
    key = title_key(title)
    assert len(key) <= MAX_TITLE_CHARS and set(key) <= set(ALPHABET)
    assert title_key(key) == key
    row = title_chars([title])[0]
    assert (row[: len(key)] > 0).all() and not row[len(key):].any()


def test_infer_categories_round_trip():
    n = np.array([c.n_seeds for c in CATEGORIES])
    has = np.array([c.has_title for c in CATEGORIES])
    in_order = np.array([not c.random for c in CATEGORIES])
    assert infer_categories(n, has, in_order).tolist() == [c.id for c in CATEGORIES]
    assert infer_categories(np.array([3]), np.array([True]), np.array([True])).tolist() == [0]
