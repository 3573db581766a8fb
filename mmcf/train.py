"""Training of the four denoising schemes: batches, tied then untied phases, model selection, resume.

Reproducibility without saved RNG streams: every random draw of update u (its playlists, first-N
cut, hide-and-seek coin, input keep probability and mask, hidden dropout) comes from a generator
seeded with (seed, scheme, phase, u). A run resumed from a checkpoint therefore makes exactly the
draws the uninterrupted run would have made; the checkpoint only has to hold the weights, the
Adam state, the best weights so far and the counters.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from common.io import atomic_path, write_json
from common.metrics import playlist_metrics, summarize
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.model import DAE, Bag, Target
from mmcf.predict import CONFIG_FILE, load_models, model_path, predict, recommend, resolve_device
from preprocess.artifacts import Artifacts, PlaylistSet, Vocab

log = logging.getLogger("mmcf")
LOSS_EVERY = 10  # updates between exact loss evaluations (a full softplus pass over the output)
SUMMARY_FILE = "summary.json"
PHASES = ("tied", "untied")


@dataclass
class TrainBatch:
    x: sp.csr_matrix  # [B, tracks + artists] float32 input, rows summing to 1 (or empty)
    target_rows: np.ndarray  # int64: the full playlist's tracks + artists, as (row, column) pairs
    target_cols: np.ndarray
    part: str  # "tracks" or "artists": the half fed this batch (hide and seek)
    keep: float  # input keep probability drawn for this batch


class Batcher:
    """Batches of one scheme's phase: update u's batch is a pure function of (seed, key, u)."""

    def __init__(self, ps: PlaylistSet, scheme: SchemeConfig, batch_size: int, seed: int, key: tuple[int, ...]):
        self.items = sp.hstack([ps.tracks, ps.artists], format="csr")  # value = position + 1
        self.length = ps.num_tracks.astype(np.int64)
        self.n_tracks = ps.tracks.shape[1]
        self.scheme, self.batch_size, self.seed, self.key = scheme, batch_size, seed, key
        self._perms: dict[int, np.ndarray] = {}

    def rows(self, update: int) -> np.ndarray:
        """Consecutive slices of a stream of per-epoch permutations of the training playlists."""
        n = len(self.length)
        pos = np.arange(update * self.batch_size, (update + 1) * self.batch_size, dtype=np.int64)
        epoch, offset = pos // n, pos % n
        out = np.empty(len(pos), dtype=np.int64)
        for e in np.unique(epoch):
            sel = epoch == e
            out[sel] = self._perm(int(e))[offset[sel]]
        return out

    def batch(self, update: int) -> TrainBatch:
        rows = self.rows(update)
        rng = np.random.default_rng([self.seed, *self.key, 1, update])
        sub = self.items[rows]
        n_rows = len(rows)
        entry_row = np.repeat(np.arange(n_rows), np.diff(sub.indptr))
        lo, hi = self.scheme.first_n_range
        if self.scheme.first_n == "count":
            first_n = rng.integers(int(lo), int(hi) + 1, size=n_rows)
        else:
            first_n = np.floor(rng.uniform(lo, hi, size=n_rows) * self.length[rows]).astype(np.int64)
        part = "tracks" if rng.random() < 0.5 else "artists"
        keep = float(rng.uniform(*self.scheme.keep_range))
        is_track = sub.indices < self.n_tracks
        fed = (sub.data <= first_n[entry_row]) & (is_track if part == "tracks" else ~is_track)
        fed &= rng.random(sub.nnz) < keep
        counts = np.bincount(entry_row[fed], minlength=n_rows)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        weights = (1.0 / counts[entry_row[fed]]).astype(np.float32)
        x = sp.csr_matrix((weights, sub.indices[fed], indptr), shape=sub.shape)
        return TrainBatch(x=x, target_rows=entry_row, target_cols=sub.indices.astype(np.int64), part=part, keep=keep)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = np.random.default_rng([self.seed, *self.key, 0, epoch]).permutation(len(self.length))
        return self._perms[epoch]


def use_bf16(precision: str, device: torch.device) -> bool:
    """'auto' uses bf16 only where matmuls in it are fast: CUDA with bf16 support, CPUs with AMX tiles."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(amx and amx())


def item_frequency(ps: PlaylistSet) -> np.ndarray:
    """Fraction of training playlists containing each track / artist (the output bias's starting point)."""
    n_items = ps.tracks.shape[1] + ps.artists.shape[1]
    cols = np.concatenate([ps.tracks.indices, ps.artists.indices + ps.tracks.shape[1]])
    return np.bincount(cols, minlength=n_items) / max(len(ps), 1)


def val_rows(val: PlaylistSet, scheme: SchemeConfig, cfg: MMCFConfig) -> np.ndarray:
    """A fixed seeded subset (at most cfg.val_playlists) of the validation playlists the scheme serves."""
    rows = np.flatnonzero(np.isin(val.category, scheme.categories) & (val.n_holdouts > 0))
    if len(rows) > cfg.val_playlists:
        rows = np.sort(np.random.default_rng([cfg.seed, 2]).choice(rows, cfg.val_playlists, replace=False))
    return rows


def evaluate(model: DAE, val: PlaylistSet, rows: np.ndarray, vocab: Vocab, cfg: MMCFConfig) -> dict[str, float]:
    """Mean R-precision and NDCG of the model's top 500 on validation playlists `rows`."""
    rec, _ = recommend(model, val, rows, cfg)
    sub = val.subset(rows)
    m = playlist_metrics(rec, _artists_of(rec, vocab), sub.holdout, sub.holdout_artists, sub.n_holdouts)
    return {"r_precision": float(np.nanmean(m["r_precision"])), "ndcg": float(np.nanmean(m["ndcg"]))}


def train_scheme(train: PlaylistSet, val: PlaylistSet, vocab: Vocab, scheme_index: int, cfg: MMCFConfig,
                 out_dir: Path, device: torch.device) -> dict:
    """Train one scheme (tied, then untied where configured), resuming from its checkpoint if any,
    and write its best weights to `<out>/<scheme>.pt`. Returns the scheme's training summary."""
    scheme = cfg.schemes[scheme_index]
    final, ckpt_path = model_path(out_dir, scheme.name), Path(out_dir) / f"{scheme.name}.ckpt.pt"
    signature = json.dumps({"cfg": _training_settings(cfg), "scheme": scheme.__dict__, "index": scheme_index,
                            "fingerprint": vocab.fingerprint, "n_train": len(train)}, sort_keys=True)
    if final.exists():
        blob = torch.load(final, map_location="cpu", weights_only=True)
        if blob.get("signature") == signature:
            log.info("%s: already trained (%s), skipping", scheme.name, final)
            return json.loads(blob["summary"])
    bf16 = use_bf16(cfg.precision, device)
    phases = [("tied", scheme.tied_updates, cfg.tied_lr)]
    if scheme.untied:
        phases.append(("untied", scheme.untied_updates, cfg.untied_lr))
    rows = val_rows(val, scheme, cfg)
    if len(rows) == 0:
        log.warning("%s: no validation playlists of categories %s; keeping the latest weights", scheme.name,
                    scheme.categories)
    st = _load_checkpoint(ckpt_path, signature)
    n_items = vocab.n_tracks + vocab.n_artists
    log.info("%s: %d training playlists, %d validation playlists per check, %s, %s%s", scheme.name, len(train),
             len(rows), device, "bf16" if bf16 else "fp32",
             f", resuming {PHASES[st['phase']]} phase at update {st['update']}" if st["model"] is not None else "")
    t0 = time.perf_counter() - st["seconds"]
    for pi, (phase, n_updates, lr) in enumerate(phases):
        if st["phase"] > pi:
            continue
        model = _phase_model(st, pi, n_items, vocab.n_tracks, cfg, train, device)
        opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        if st["optimizer"] is not None:
            opt.load_state_dict(st["optimizer"])
        st.update(model=None, optimizer=None)  # live in `model` and `opt` from here on
        batcher = Batcher(train, scheme, cfg.batch_size, cfg.seed, (scheme_index, pi))
        gen = torch.Generator(device=device)
        losses: list[float] = []
        bar = tqdm(total=n_updates, initial=st["update"], desc=f"{scheme.name} {phase}", unit="upd", leave=False)
        while st["update"] < n_updates:
            u = st["update"]
            b = batcher.batch(u)
            gen.manual_seed(int(np.random.SeedSequence([cfg.seed, scheme_index, pi, 3, u]).generate_state(1)[0]))
            mask = model.dropout_mask(b.x.shape[0], cfg.hidden_keep, gen)
            target = Target(torch.from_numpy(b.target_rows).to(device), torch.from_numpy(b.target_cols).to(device))
            loss = model.loss_and_grad(Bag.from_csr(b.x, device), target, cfg.neg_weight, mask, bf16=bf16,
                                       with_loss=u % LOSS_EVERY == 0)
            opt.step()
            if not np.isnan(loss):
                losses.append(loss)
            st["update"] = u + 1
            bar.update(1)
            if st["update"] % cfg.eval_every == 0 or st["update"] == n_updates:
                _check(model, st, phase, losses, val, rows, vocab, cfg, t0)
                bar.set_postfix(val_rprec=f"{st['history'][-1]['val_r_precision']:.4f}", best=f"{st['best']:.4f}")
                losses = []
                st["seconds"] = time.perf_counter() - t0
                _save_checkpoint(ckpt_path, st, model, opt, signature)
        bar.close()
        st.update(phase=pi + 1, update=0)
    best_state, best_tied = st["best_state"], st["best_tied"]
    if best_state is None:  # no update at all: the initial weights
        best_model = _phase_model(st, 0, n_items, vocab.n_tracks, cfg, train, device)
        best_state, best_tied = _cpu_state(best_model), True
    summary = {"scheme": scheme.name, "categories": scheme.categories,
               "best_val_r_precision": st["best"] if np.isfinite(st["best"]) else None,
               "best_phase": "tied" if best_tied else "untied", "history": st["history"],
               "seconds": round(time.perf_counter() - t0, 2), "precision": "bf16" if bf16 else "fp32"}
    with atomic_path(final) as tmp:
        torch.save({"state": best_state, "tied": best_tied, "fingerprint": vocab.fingerprint,
                    "signature": signature, "summary": json.dumps(summary)}, tmp)
    ckpt_path.unlink(missing_ok=True)
    log.info("%s: best val R-precision %.4f (%s), %.1f s", scheme.name, st["best"], summary["best_phase"],
             summary["seconds"])
    return summary


def train_all(artifacts: Artifacts, out_dir: str | Path, cfg: MMCFConfig, device: str | torch.device = "auto",
              schemes: list[str] | None = None) -> dict:
    """Train every scheme (or those named), then score the validation playlists they serve.

    Returns (and writes to `<out>/summary.json`) per-scheme training summaries and the validation
    metrics overall and per category.
    """
    out_dir = Path(out_dir)
    device = resolve_device(device)
    names = schemes or [s.name for s in cfg.schemes]
    for name in names:
        cfg.scheme(name)
    train, val, vocab = artifacts.playlists("train"), artifacts.playlists("val"), artifacts.vocab
    write_json(out_dir / CONFIG_FILE, {"config": cfg.to_dict(), "fingerprint": vocab.fingerprint,
                                       "n_tracks": vocab.n_tracks, "n_items": vocab.n_tracks + vocab.n_artists})
    t0 = time.perf_counter()
    result: dict = {"schemes": {}}
    for name in names:
        index = [s.name for s in cfg.schemes].index(name)
        result["schemes"][name] = train_scheme(train, val, vocab, index, cfg, out_dir, device)
    result["train_seconds"] = round(time.perf_counter() - t0, 2)
    models = load_models(out_dir, device, names)
    served = [c for n in names for c in cfg.scheme(n).categories]
    rows = np.flatnonzero(np.isin(val.category, served))
    sub = val.subset(rows)
    t1 = time.perf_counter()
    rec, _ = predict(models, sub, vocab)
    result["predict_seconds"] = round(time.perf_counter() - t1, 2)
    result["predict_playlists"] = len(rows)
    m = playlist_metrics(rec, _artists_of(rec, vocab), sub.holdout, sub.holdout_artists, sub.n_holdouts)
    result["val"] = summarize(m, sub.category)
    write_json(out_dir / SUMMARY_FILE, result)
    return result


def _artists_of(rec: np.ndarray, vocab: Vocab) -> np.ndarray:
    return np.where(rec >= 0, vocab.track_artist[np.maximum(rec, 0)], -1)


def _training_settings(cfg: MMCFConfig) -> dict:
    """The settings that can change the kept weights (seed weights included: model selection uses them)."""
    keys = ("hidden", "hidden_keep", "neg_weight", "batch_size", "tied_lr", "untied_lr", "eval_every",
            "val_playlists", "precision", "seed", "track_weight", "artist_weight", "long_seeds", "recent_seeds",
            "early_weight")
    return {k: getattr(cfg, k) for k in keys}


def _phase_model(st: dict, phase: int, n_items: int, n_tracks: int, cfg: MMCFConfig, train: PlaylistSet,
                 device: torch.device) -> DAE:
    """The model a phase (re)starts from: the checkpoint's, else a fresh tied model, else the best
    weights so far made untied."""
    if st["model"] is not None:
        model = DAE(n_items, n_tracks, cfg.hidden, tied=st["model_tied"])
        model.load_state_dict(st["model"])
        return model.to(device)
    if phase == 0 or st["best_state"] is None:
        model = DAE(n_items, n_tracks, cfg.hidden, tied=True)
        model.init_weights(torch.Generator().manual_seed(cfg.seed), item_frequency(train))
        return model.to(device) if phase == 0 else model.to(device).untied_copy()
    model = DAE(n_items, n_tracks, cfg.hidden, tied=st["best_tied"])
    model.load_state_dict(st["best_state"])
    return model.to(device).untied_copy()


def _check(model: DAE, st: dict, phase: str, losses: list[float], val: PlaylistSet, rows: np.ndarray,
           vocab: Vocab, cfg: MMCFConfig, t0: float) -> None:
    """Model selection: keep the weights only if validation R-precision improved."""
    metrics = evaluate(model, val, rows, vocab, cfg) if len(rows) else {"r_precision": float("nan"),
                                                                          "ndcg": float("nan")}
    r = metrics["r_precision"]
    improved = np.isnan(r) or r > st["best"]
    if improved:
        st["best"] = r if not np.isnan(r) else st["best"]
        st["best_state"], st["best_tied"] = _cpu_state(model), model.tied
    st["history"].append({"phase": phase, "update": st["update"], "loss": float(np.mean(losses)) if losses else None,
                          "val_r_precision": r, "val_ndcg": metrics["ndcg"], "improved": bool(improved),
                          "seconds": round(time.perf_counter() - t0, 2)})
    log.info("%s update %d: loss %s, val R-precision %.4f NDCG %.4f%s", phase, st["update"],
             f"{np.mean(losses):.2f}" if losses else "-", r, metrics["ndcg"], " (kept)" if improved else "")


def _cpu_state(model: DAE) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _load_checkpoint(path: Path, signature: str) -> dict:
    fresh = {"phase": 0, "update": 0, "model": None, "model_tied": True, "optimizer": None, "best": -np.inf,
             "best_state": None, "best_tied": True, "history": [], "seconds": 0.0}
    if not path.exists():
        return fresh
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("signature") != signature:
        log.warning("%s: written with other settings or data; starting this scheme afresh", path)
        return fresh
    st = blob["state"]
    if st.pop("best_is_current"):
        st["best_state"] = st["model"]
    return st


def _save_checkpoint(path: Path, st: dict, model: DAE, opt: torch.optim.Optimizer, signature: str) -> None:
    """Atomically: weights, Adam state, best weights (not stored twice when they are the current
    ones), counters and history."""
    state = dict(st)
    state["model"], state["model_tied"], state["optimizer"] = _cpu_state(model), model.tied, opt.state_dict()
    best_is_current = st["history"][-1]["improved"]
    state["best_is_current"] = best_is_current
    if best_is_current:
        state["best_state"] = None
    with atomic_path(path) as tmp:
        torch.save({"signature": signature, "state": state}, tmp)
