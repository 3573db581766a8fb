"""Tastes (genres, and moods that mix genres) turn the tables into the weights that the world, the
playlists and the titles all draw from; cached per config, since every slice of every worker needs them."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from preprocess.synthetic.arrays import cum
from preprocess.synthetic.config import SynthConfig
from preprocess.synthetic.tables import GENRES, MOODS


@dataclass(frozen=True)
class Tastes:
    names: tuple[str, ...]
    weight: np.ndarray  # float [K] share of playlists with this main taste
    profile_cw: np.ndarray  # float [K, G] cumulative genre profile per taste
    affinity_cw: np.ndarray  # float [K, K] cumulative secondary-taste choice given the main one
    titles: tuple[tuple[str, ...], ...]
    title_cw: tuple[np.ndarray, ...]
    emojis: tuple[tuple[str, ...], ...]
    genre_weight: np.ndarray  # float [G]
    naming: np.ndarray  # float [K] chance of a title from the taste's vocabulary
    loose_cw: np.ndarray  # float [K] cumulative choice of a loose title's taste: moods by title popularity


@functools.lru_cache(maxsize=4)
def tastes(config: SynthConfig = SynthConfig()) -> Tastes:
    """Genre tastes first (taste g is genre g, with a little of its family), then mood tastes."""
    g_index = {g[0]: i for i, g in enumerate(GENRES)}
    n_g = len(GENRES)
    families = np.array([g[1] for g in GENRES] + ["mood"] * len(MOODS))
    profiles = np.zeros((n_g + len(MOODS), n_g))
    for i in range(n_g):
        kin = (families[:n_g] == families[i]) & (np.arange(n_g) != i)
        profiles[i, i] = 0.85 if kin.any() else 1.0
        profiles[i, kin] = 0.15 / max(1, kin.sum())
    for i, mood in enumerate(MOODS, start=n_g):
        for part in mood[4].split(","):
            genre, share = part.split(":")
            profiles[i, g_index[genre]] = float(share)
    profiles /= profiles.sum(axis=1, keepdims=True)
    rows = [(g[0], g[2], g[3], g[4], g[5]) for g in GENRES] + [(m[0], m[1], m[2], m[3], m[5]) for m in MOODS]
    names, weights, naming, emojis, vocab_specs = zip(*rows)
    weight = np.asarray(weights) / np.sum(weights)
    # the secondary taste: by popularity, with extra chance for the main taste's family
    k = len(names)
    other = ~np.eye(k, dtype=bool)
    base = np.broadcast_to(weight, (k, k)) * other
    kin = np.where((families[:, None] == families[None, :]) & other, base, 0.0)
    kin_sum = kin.sum(axis=1, keepdims=True)
    p = config.p_same_family
    aff = (1 - p) * base / base.sum(axis=1, keepdims=True) + p * kin / np.maximum(kin_sum, 1e-12)
    aff /= aff.sum(axis=1, keepdims=True)
    vocabs = [_vocabulary(v, config.title_zipf) for v in vocab_specs]
    genre_weight = weight @ profiles
    naming = np.minimum(1.0, config.title_naming * np.asarray(naming))
    loose_cw = cum(np.where(families == "mood", weight * naming, 0.0))
    return Tastes(tuple(names), weight, np.cumsum(profiles, axis=1), np.cumsum(aff, axis=1),
                  tuple(v[0] for v in vocabs), tuple(v[1] for v in vocabs), tuple(_emoji_split(e) for e in emojis),
                  genre_weight / genre_weight.sum(), naming, loose_cw)


def _emoji_split(text: str) -> tuple[str, ...]:
    """Emojis of a string, a variation selector staying with its emoji ("❤️" is two code points)."""
    out: list[str] = []
    for ch in text:
        if ch == "\ufe0f" and out:
            out[-1] += ch
        else:
            out.append(ch)
    return tuple(out)


def _vocabulary(spec: str, zipf: float) -> tuple[tuple[str, ...], np.ndarray]:
    """Titles with Zipf weights by position, or an explicit "=w" weight (relative to the first)."""
    titles, weights = [], []
    for i, part in enumerate(spec.split("|")):
        title, _, w = part.partition("=")
        titles.append(title)
        weights.append(float(w) if w else (i + 1.0) ** -zipf)
    return tuple(titles), cum(np.asarray(weights))
