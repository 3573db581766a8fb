"""Vectorised draws, hashes and counts shared by the world, the playlists, the titles and the
renderer: written once, so the selection rules and the slice files count alike, and bench/calibrate.py
counts real and synthetic data with the same distinct_per_row."""
from __future__ import annotations

import numpy as np


def cum(w: np.ndarray) -> np.ndarray:
    c = np.cumsum(w, dtype=np.float64)
    return c / c[-1]


def mix64(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64: a random-looking but fixed 64-bit code per id."""
    z = x.astype(np.uint64) ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def zipf_total(n: np.ndarray, q: np.ndarray, s: float) -> np.ndarray:
    """Integral of (x + q) ** -s over [0, n): the normaliser of the continuous track Zipf."""
    return (q ** (1 - s) - (n + q) ** (1 - s)) / (s - 1)


def zipf_rank(n: np.ndarray, q: np.ndarray, s: float, u: np.ndarray) -> np.ndarray:
    """Rank k in [0, n) with density ~ (k + q) ** -s, by inverting the continuous CDF."""
    a = q ** (1 - s)
    x = (a - u * (a - (n + q) ** (1 - s))) ** (1 / (1 - s)) - q
    return np.minimum(x.astype(np.int64), n - 1)


def pick(cw: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index in [lo, hi) drawn by the weights whose global cumulative sum is `cw`.

    Queries are searched in sorted order: far faster on a large array (cache locality)."""
    base = np.where(lo > 0, cw[np.maximum(lo - 1, 0)], 0.0)
    target = base + u * (cw[hi - 1] - base)
    order = np.argsort(target)
    out = np.empty(len(target), dtype=np.int64)
    out[order] = np.searchsorted(cw, target[order], side="right")
    return np.clip(out, lo, hi - 1)


def rows_pick(cw_rows: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column drawn from each given row of a row-wise cumulative matrix."""
    return np.minimum((cw_rows[rows] < u[:, None]).sum(axis=1), cw_rows.shape[1] - 1)


def distinct_per_row(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Distinct values per row (sorting beats np.unique's hashing on wide int keys)."""
    width = int(values.max(initial=0)) + 1
    key = np.sort(rows * width + values)
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return np.bincount(key[first] // width, minlength=n)
