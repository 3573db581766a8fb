"""Which playlists an update trains on, for the torch models that count their training in epochs.

Update u takes the u-th slice of a stream of per-epoch permutations of the training rows, each
permutation seeded by (seed..., epoch): a pure function of u, so a run resumed at any update draws
the rows an uninterrupted one would have drawn, and every process of a torchrun job the same."""
from __future__ import annotations

import numpy as np


class EpochStream:
    def __init__(self, rows: np.ndarray, batch: int, seed: list[int]):
        self.items, self.batch, self.seed = np.asarray(rows), batch, list(seed)
        self._perms: dict[int, np.ndarray] = {}

    def rows(self, update: int) -> np.ndarray:
        """Update u's rows: consecutive slices of the stream, an epoch's last batch running into the next."""
        n = len(self.items)
        pos = np.arange(update * self.batch, (update + 1) * self.batch, dtype=np.int64)
        epoch, offset = pos // n, pos % n
        out = np.empty(len(pos), dtype=self.items.dtype)
        for e in np.unique(epoch):
            sel = epoch == e
            out[sel] = self._perm(int(e))[offset[sel]]
        return out

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = np.random.default_rng([*self.seed, epoch]).permutation(self.items)
        return self._perms[epoch]
