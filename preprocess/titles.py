"""Title normalisation (SPEC section 2) and character tensors for the title model."""
from __future__ import annotations

import re
import unicodedata

import numpy as np

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789/<>+-"
MAX_TITLE_CHARS = 25
_PUNCT = str.maketrans({c: " " for c in ".,#!$%^*;:{}=_`~()@"})
_SPACES = re.compile(r"\s+")
_NOT_ALPHABET = re.compile(f"[^{re.escape(ALPHABET)}]")
_CHAR_INDEX = np.zeros(128, dtype=np.uint8)
_CHAR_INDEX[[ord(c) for c in ALPHABET]] = np.arange(1, len(ALPHABET) + 1)


def normalize_title(title: str) -> str:
    """Lower-case, punctuation to spaces, whitespace collapsed: the MPD's normalised title."""
    return _SPACES.sub(" ", title.lower().translate(_PUNCT)).strip()


def title_key(title: str) -> str:
    """The normalised title in the title model's alphabet: other characters (spaces, emoji) dropped."""
    """Accents are decomposed first so that "été" keeps its letters as "ete"."""
    plain = unicodedata.normalize("NFKD", normalize_title(title))
    return _NOT_ALPHABET.sub("", plain)[:MAX_TITLE_CHARS]


def title_chars(titles: list[str]) -> np.ndarray:
    """uint8 [len(titles), 25]: 1-based alphabet indices, 0 = padding (also for an empty key)."""
    keys = [title_key(t) for t in titles]
    out = np.zeros((len(keys), MAX_TITLE_CHARS), dtype=np.uint8)
    joined = "".join(keys).encode("ascii")
    if joined:
        lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
        rows = np.repeat(np.arange(len(keys)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        cols = np.arange(len(joined)) - starts
        out[rows, cols] = _CHAR_INDEX[np.frombuffer(joined, dtype=np.uint8)]
    return out
