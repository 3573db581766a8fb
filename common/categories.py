"""The 10 challenge categories (SPEC section 1): seeds, title, seed order and length window."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    n_seeds: int
    has_title: bool
    random: bool  # seeds drawn at random positions instead of the first n
    min_len: int
    max_len: int


CATEGORIES: tuple[Category, ...] = (
    Category(1, "title only", 0, True, False, 10, 50),
    Category(2, "title + first 1", 1, True, False, 10, 78),
    Category(3, "title + first 5", 5, True, False, 10, 100),
    Category(4, "first 5, no title", 5, False, False, 40, 100),
    Category(5, "title + first 10", 10, True, False, 40, 100),
    Category(6, "first 10, no title", 10, False, False, 40, 100),
    Category(7, "title + first 25", 25, True, False, 101, 250),
    Category(8, "title + 25 random", 25, True, True, 101, 250),
    Category(9, "title + first 100", 100, True, False, 150, 250),
    Category(10, "title + 100 random", 100, True, True, 150, 250),
)
BY_ID = {c.id: c for c in CATEGORIES}


def infer_categories(n_seeds: np.ndarray, has_title: np.ndarray, in_order: np.ndarray) -> np.ndarray:
    """Category id per playlist from what a challenge entry shows; 0 where no category fits.

    Seeds are `in_order` when their positions are exactly 0..n-1.
    """
    out = np.zeros(len(n_seeds), dtype=np.int8)
    for c in CATEGORIES:
        match = (n_seeds == c.n_seeds) & (has_title == c.has_title)
        if c.n_seeds > 1:
            match &= in_order != c.random
        out[match & (out == 0)] = c.id
    return out
