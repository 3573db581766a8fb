"""Every form a title takes, in one place: the MPD's normalised title (SPEC section 2), the title
model's character key and tensors, and the tokens title kNN compares (one spelling for the forms
users write the same title in)."""
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
    """The normalised title in the title model's alphabet: other characters (spaces, emoji) dropped,
    accents decomposed first so that "été" keeps its letters as "ete"."""
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


_YEAR = re.compile(r"(?:\b2k ?|'|\b)(1\d)\b")  # "2k17", "'17", "17" -> "2017" (the MPD's years: 2010-2017)
_POSSESSIVE = re.compile(r"(?<=[a-z])'s\b")  # "sarah's" -> "sarah"; "80's" stays a decade
_TOKEN = re.compile(r"[a-z0-9]+|\S")
_STRETCH = re.compile(r"(.)\1{2,}")  # "chilll" -> "chill": a run of three or more letters is a stretch
_RUN = re.compile(r"(.)\1+")
_AND = {"n": "and", "&": "and"}


def title_tokens(title: str) -> tuple[str, ...]:
    """The words of a stored (lower-case, punctuation-stripped) title in one spelling, then its
    symbols (emoji, non-Latin characters) once each, as their own tokens: 1.4% of real titles carry
    them and a symbol such as a flame says something about the tracks."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", title.replace("’", "'")) if not unicodedata.combining(c))
    plain = _POSSESSIVE.sub("", _YEAR.sub(r"20\1", plain)).replace("'", "")
    words, symbols = [], []
    for tok in _TOKEN.findall(plain):
        if tok in _AND:
            words.append("and")
        elif tok.isascii() and tok[0].isalnum():
            words.append(_stem(_STRETCH.sub(r"\1\1", tok)))
        elif not tok.isascii() and unicodedata.category(tok)[0] in "LSN" and unicodedata.category(tok) != "Sk":
            symbols.append(tok)
    return tuple(words) + tuple(dict.fromkeys(symbols))


def _stem(word: str) -> str:
    """Light plural stemming ("throwbacks" -> "throwback", "memories" -> "memory"): the forms are
    as common as each other among real titles."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def char_grams(tokens: tuple[str, ...]) -> list[str]:
    """Character 3-grams of the title's words glued together, letter runs collapsed, padded: glued
    words ("#chillvibes"), stretched letters and one-letter typos share most of their 3-grams."""
    glued = _RUN.sub(r"\1", "".join(t for t in tokens if t.isascii()))
    if not glued:
        return []
    padded = f"^{glued}$"
    return [padded[i:i + 3] for i in range(max(1, len(padded) - 2))]
