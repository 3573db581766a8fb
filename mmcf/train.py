"""Training of the four denoising schemes: batches, tied then untied phases, model selection, resume.

Reproducibility without saved RNG streams: every random draw of update u (its playlists, first-N
cut, hide-and-seek coin, input keep probability and mask, hidden dropout) comes from a generator
seeded with (seed, scheme, phase, u). A run resumed from a checkpoint therefore makes exactly the
draws the uninterrupted run would have made; the checkpoint only has to hold the weights, the
Adam state, the best weights so far and the counters.

Several processes (torchrun, common/distributed.py): the same pure function of (seed, ..., u)
gives every rank the same global batch and hidden dropout mask; each rank takes its shard of the
rows, and the hand-written gradients (mmcf/model.py, outside autograd, so DDP's hooks cannot
reduce them) are summed with an explicit all_reduce before Adam, as DDP's bucketed all_reduce
would. Rank 0 validates and writes checkpoints and models; the others receive its metrics, so
their model selection, and hence the untied phase's starting weights, are the same.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from common import distributed, trainer
from common.device import resolve_device, torch_threads
from common.epochs import EpochStream
from common.errors import PipelineError
from common.io import atomic_path, read_json, write_json
from common.metrics import list_metrics, summarize, validation_rows
from mmcf import dense as dense_vocab
from mmcf.config import MMCFConfig, SchemeConfig
from mmcf.dense import DenseVocab
from mmcf.model import DAE, Bag, Target
from mmcf.predict import CONFIG_FILE, load_models, model_path, predict, recommend
from preprocess.artifacts import Artifacts, PlaylistSet, Vocab

log = logging.getLogger("mmcf")
LOSS_EVERY = 10  # updates between exact loss evaluations (a full softplus pass over the output)
SUMMARY_FILE = "summary.json"


@dataclass
class TrainBatch:
    x: sp.csr_matrix  # [B, tracks + artists] float32 input, rows summing to 1 (or empty)
    target_rows: np.ndarray  # int64: the full playlist's tracks + artists, as (row, column) pairs
    target_cols: np.ndarray
    part: str  # "tracks" or "artists": the half fed this batch (hide and seek)
    keep: float  # input keep probability drawn for this batch
    cols: np.ndarray | None = None  # sampled loss: the output columns this update scores (target_cols index them)
    col_scale: np.ndarray | None = None  # ... the weight of each one's correction
    n_whole: int = 0  # ... and how many of them are taken whole (the rest are draws)

    def rows_between(self, lo: int, hi: int) -> "TrainBatch":
        """Rows lo..hi-1, renumbered from 0: one process's shard of a batch drawn whole."""
        if lo == 0 and hi == self.x.shape[0]:
            return self
        a, b = np.searchsorted(self.target_rows, [lo, hi])
        return dataclasses.replace(self, x=self.x[lo:hi], target_rows=self.target_rows[a:b] - lo,
                                   target_cols=self.target_cols[a:b])


class Batcher:
    """Batches of one scheme's phase: update u's batch is a pure function of (seed, key, u).

    With the sampled loss each batch also names the output columns its update scores: every
    positive of the batch and the `head` most frequent items whole (where the full loss's negative
    gradient, sigmoid(z), is largest), and `negatives` draws from the rest, uniform or by training
    count ([mmcf] draw_power), each weighing 1 / (negatives x its draw probability) (scored_columns)."""

    def __init__(self, ps: PlaylistSet, scheme: SchemeConfig, batch_size: int, seed: int, key: tuple[int, ...],
                 sampled: bool = False, head: int = 0, negatives: int = 0, draw_power: float = 0.0):
        self.items = sp.hstack([ps.tracks, ps.artists], format="csr")  # value = position + 1
        self.length = ps.num_tracks.astype(np.int64)
        self.n_tracks = ps.tracks.shape[1]
        self.scheme, self.batch_size, self.seed, self.key = scheme, batch_size, seed, key
        self.sampled, self.negatives = sampled, negatives
        frequency = item_frequency(ps)
        self.head = np.sort(np.argsort(-frequency, kind="stable")[:head]) if sampled else None
        self.draw_weight = (frequency * len(ps) + 1.0) ** draw_power if sampled and draw_power else None
        self.stream = EpochStream(np.arange(len(self.length)), batch_size, [seed, *key, 0])

    def rows(self, update: int) -> np.ndarray:
        return self.stream.rows(update)

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
        first_n = np.maximum(first_n, 1)  # at least one track, as the published code cuts
        part = "tracks" if rng.random() < 0.5 or not self.scheme.hide_and_seek else "artists"
        keep = float(rng.uniform(*self.scheme.keep_range))
        is_track = sub.indices < self.n_tracks
        fed = (sub.data <= first_n[entry_row]) & (is_track if part == "tracks" else ~is_track)
        fed &= rng.random(sub.nnz) < keep
        counts = np.bincount(entry_row[fed], minlength=n_rows)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        weights = (1.0 / counts[entry_row[fed]]).astype(np.float32)
        x = sp.csr_matrix((weights, sub.indices[fed], indptr), shape=sub.shape)
        out = TrainBatch(x=x, target_rows=entry_row, target_cols=sub.indices.astype(np.int64), part=part, keep=keep)
        if self.sampled:
            out.cols, out.col_scale, out.n_whole, out.target_cols = scored_columns(
                self.head, out.target_cols, self.items.shape[1], self.negatives, rng, self.draw_weight)
        return out


def scored_columns(head: np.ndarray, positives: np.ndarray, n_items: int, negatives: int, rng: np.random.Generator,
                   draw_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The output columns a sampled-loss update scores, for the autoencoders and the title model alike:
    (cols, col_scale, n_whole, the positives as positions in cols). The batch's positives and `head`
    come first, whole (weight 1); then `negatives` draws from the other columns, uniform or in
    proportion to draw_weight (one per column), each weighing times drawn / (negatives x its draw
    probability), so the y = 0 terms estimate the full loss's without bias."""
    whole = np.union1d(head, positives)
    rest = n_items - len(whole)
    cols, scale = whole, np.ones(len(whole), dtype=np.float32)
    if rest > 0 and negatives:
        free = np.ones(n_items, dtype=bool)
        free[whole] = False
        free = np.flatnonzero(free)
        if draw_weight is None:
            drawn, times = np.unique(free[rng.integers(0, rest, size=negatives)], return_counts=True)
            inverse_p = np.full(len(drawn), float(rest))
        else:
            weight = draw_weight[free]
            cdf = np.cumsum(weight, dtype=np.float64)
            picks = np.minimum(np.searchsorted(cdf, rng.random(negatives) * cdf[-1], side="right"), rest - 1)
            at, times = np.unique(picks, return_counts=True)
            drawn, inverse_p = free[at], cdf[-1] / weight[at]
        cols = np.concatenate([whole, drawn])
        scale = np.concatenate([scale, (times * inverse_p / negatives).astype(np.float32)])
    return cols, scale, len(whole), np.searchsorted(whole, positives)


def use_bf16(precision: str, device: torch.device) -> bool:
    """'auto' uses bf16 only where matmuls in it are fast: CUDA with bf16 support, and CPUs with AMX
    tiles or AVX-512 BF16 instructions (an AMD EPYC with AVX-512 BF16 runs the [250, 256] x [256, 42K]
    product 4x faster in bf16 than in fp32; CPUs without either emulate bf16 and gain nothing)."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = (getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return any(bool(check and check()) for check in checks)


def item_frequency(ps: PlaylistSet) -> np.ndarray:
    """Fraction of training playlists containing each track / artist (the output bias's starting point)."""
    n_items = ps.tracks.shape[1] + ps.artists.shape[1]
    cols = np.concatenate([ps.tracks.indices, ps.artists.indices + ps.tracks.shape[1]])
    return np.bincount(cols, minlength=n_items) / max(len(ps), 1)


def principal_directions(ps: PlaylistSet, k: int, seed: int, power_iters: int = 4) -> np.ndarray:
    """Top-k right singular vectors [tracks + artists, k] of the row-normalised training inputs.

    Randomised SVD with sparse products against an [items, k + 16] block; the tall blocks are
    orthonormalised through their small Gram matrices (Cholesky QR, twice), since LAPACK's QR and
    SVD of the tall blocks took seconds each here. Columns beyond the data's rank stay zero.
    """
    x = sp.hstack([ps.tracks, ps.artists], format="csr").astype(np.float32)
    x.data[:] = 1.0
    x = sp.csr_matrix(sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)) @ x, dtype=np.float32)
    xt = x.T.tocsr()
    rank = min(k, *x.shape)
    y = x @ np.random.default_rng([seed, 4]).standard_normal((x.shape[1], min(rank + 16, *x.shape))).astype(np.float32)
    for _ in range(power_iters):
        y = x @ (xt @ _orthonormal(y))
    b = xt @ _orthonormal(y)  # [items, l] = X^T Q, the transposed small factor
    bt = torch.from_numpy(b)
    evals, u = torch.linalg.eigh((bt.T @ bt).double())  # (Q^T X)(Q^T X)^T = U S^2 U^T, ascending
    u, sv = u.flip(1)[:, :rank], evals.flip(0)[:rank].clamp_min(1e-24).sqrt()
    out = np.zeros((x.shape[1], k), dtype=np.float32)
    out[:, :rank] = (bt @ (u / sv).float()).numpy()
    return out


def _orthonormal(y: np.ndarray, block: int = 8192) -> np.ndarray:
    """An orthonormal basis of y's columns (Cholesky QR twice; a tiny ridge guards rank deficiency).
    The triangular solves run in place on blocks of rows, each row its own right-hand side, so the
    result is the whole solve's bit for bit without its two [playlists, k + 16] float64 temporaries
    (4.4 GB at 1M playlists)."""
    t = torch.from_numpy(y).double()
    for _ in range(2):
        g = t.T @ t
        chol = torch.linalg.cholesky(g + 1e-12 * torch.trace(g) * torch.eye(len(g), dtype=g.dtype))
        for lo in range(0, len(t), block):
            t[lo:lo + block] = torch.linalg.solve_triangular(chol, t[lo:lo + block].T, upper=False).T
    return t.float().numpy()


def val_rows(val: PlaylistSet, scheme: SchemeConfig, cfg: MMCFConfig) -> np.ndarray:
    """The validation playlists the scheme serves that selection scores (a fixed seeded subset)."""
    return validation_rows(val.category, val.n_holdouts > 0, scheme.categories, cfg.val_playlists, cfg.seed)


def evaluate(model: DAE, val: PlaylistSet, rows: np.ndarray, dense: DenseVocab, vocab: Vocab, cfg: MMCFConfig
             ) -> dict[str, float]:
    """Mean R-precision and NDCG of the model's top 500 on validation playlists `rows` (catalogue
    columns), scored in the catalogue: withheld tracks outside the dense vocabulary count as misses."""
    m = _val_metrics(model, val.subset(rows), dense, vocab, cfg, 1.0)
    return {"r_precision": float(np.nanmean(m["r_precision"])), "ndcg": float(np.nanmean(m["ndcg"]))}


def select_gains(model: DAE, val: PlaylistSet, rows: np.ndarray, dense: DenseVocab, vocab: Vocab, cfg: MMCFConfig
                 ) -> dict[int, float]:
    """Per category of the validation playlists `rows`, the input gain of cfg.input_gains whose top 500
    scores the best mean R-precision (MMCFConfig.input_gains says why; ties go to the earlier gain)."""
    sub = val.subset(rows)
    cats = np.unique(sub.category)
    scores = []
    for g in cfg.input_gains:
        r = _val_metrics(model, sub, dense, vocab, cfg, g)["r_precision"]
        scores.append([np.nanmean(r[sub.category == c]) for c in cats])
    best = np.nanargmax(np.nan_to_num(np.array(scores), nan=-1.0), axis=0)
    return {int(c): float(cfg.input_gains[i]) for c, i in zip(cats, best)}


def _val_metrics(model: DAE, sub: PlaylistSet, dense: DenseVocab, vocab: Vocab, cfg: MMCFConfig, gain: float
                 ) -> dict[str, np.ndarray]:
    """Per-playlist metrics of the model's top 500 for validation playlists, every input times `gain`."""
    rec, _ = recommend(model, dense.view(sub), np.arange(len(sub)), cfg, dense.track_prior,
                       gain=np.full(len(sub), gain) if gain != 1.0 else None)
    return list_metrics(dense.catalogue_ids(rec), sub, vocab.track_artist)


def sampled_loss(loss: str, device: torch.device) -> bool:
    """Whether a model trains with the sampled loss (its [mmcf] or [charcnn] `loss`; "auto": on CPU only)."""
    return loss == "sampled" or (loss == "auto" and device.type != "cuda")


def updates_per_epoch(n_train: int, batch_size: int) -> int:
    return max(1, -(-n_train // batch_size))


def train_scheme(train: PlaylistSet, val: PlaylistSet | None, dense: DenseVocab, vocab: Vocab, scheme_index: int,
                 cfg: MMCFConfig, out_dir: Path, device: torch.device,
                 directions: Callable[[], np.ndarray] | None = None, gains: dict[int, float] | None = None) -> dict:
    """Train one scheme (tied, then untied where configured), resuming from its checkpoint if any,
    and write its best weights to `<out>/<scheme>.pt`. Returns the scheme's training summary.

    train: the training playlists in the dense vocabulary's columns (dense.view); val: validation
    playlists in catalogue columns, or None to keep the last weights (a refit on every playlist).
    A phase is its epochs of ceil(playlists / batch) updates, validated (and checkpointed) at each
    epoch's end; its time budget is [mmcf] train_seconds shared out over every scheme's epochs
    (0: none). directions: supplies `principal_directions(train, ...)` for
    cfg.init == "svd" (computed here when not given; train_all shares one computation). The input gains
    (select_gains) are chosen on `val` for the kept weights; without it they are `gains` (a refit: the
    selected run's)."""
    scheme = cfg.schemes[scheme_index]
    final = model_path(out_dir, scheme.name)
    sampled = sampled_loss(cfg.loss, device)
    signature = json.dumps({"cfg": _training_settings(cfg), "scheme": scheme.__dict__, "index": scheme_index,
                            "fingerprint": vocab.fingerprint, "n_train": len(train), "dense_items": dense.n_items,
                            "sampled": sampled, "validated": val is not None}, sort_keys=True)
    if final.exists():
        blob = torch.load(final, map_location="cpu", weights_only=True)
        if blob.get("signature") == signature:
            log.info("%s: already trained (%s), skipping", scheme.name, final)
            return json.loads(blob["summary"])
    bf16 = use_bf16(cfg.precision, device)
    per_epoch = updates_per_epoch(len(train), cfg.batch_size)
    phases = [(name, epochs, lr) for name, epochs, lr in (("tied", scheme.tied_epochs, cfg.tied_lr),
                                                         ("untied", scheme.untied_epochs, cfg.untied_lr)) if epochs]
    seconds_per_epoch = cfg.train_seconds / (sum(s.tied_epochs + s.untied_epochs for s in cfg.schemes) or 1)
    rows = val_rows(val, scheme, cfg) if val is not None else np.zeros(0, dtype=np.int64)
    if len(rows) == 0 and val is not None:
        log.warning("%s: no validation playlists of categories %s; keeping the latest weights", scheme.name,
                    scheme.categories)
    if directions is None:
        directions = _Once(lambda: principal_directions(train, cfg.hidden, cfg.seed))
    log.info("%s: %d training playlists (%d updates an epoch), %d validation playlists per check, %s, %s, %s loss",
             scheme.name, len(train), per_epoch, len(rows), device, "bf16" if bf16 else "fp32",
             "sampled" if sampled else "full")
    validate = (lambda m: lambda: evaluate(m, val, rows, dense, vocab, cfg)) if len(rows) else (lambda m: None)
    selection, checkpoints, stops = trainer.Selection(), [], {}
    for pi, (phase, epochs, lr) in enumerate(phases):
        checkpoints.append(Path(out_dir) / f"{scheme.name}.{phase}.ckpt.pt")
        loop = trainer.Loop(epochs * per_epoch, per_epoch, f"{scheme.name} {phase}", checkpoints[-1],
                            f"{signature} {phase}", tag={"phase": phase}, patience=cfg.patience,
                            seconds=seconds_per_epoch * epochs)
        done = trainer.finished(loop)  # a resumed run: this phase ended before; no model, SVD or batches
        selection = done if done is not None else _train_phase(
            loop, selection, (scheme_index, pi), lr, train, dense, cfg, sampled, bf16, device, directions, validate)
        stops[phase] = selection.stop_reason
        log.info("%s %s: %s", scheme.name, phase, selection.stop_reason)
    best_tied = selection.best_tag.get("phase", "tied") == "tied"
    if len(rows) and len(cfg.input_gains) > 1 and selection.best_state is not None:
        kept = DAE.from_state(selection.best_state, dense.n_items, dense.n_tracks, cfg.hidden, best_tied, device)
        gains = select_gains(kept, val, rows, dense, vocab, cfg)
        log.info("%s: input gains chosen on validation (category: gain): %s", scheme.name, gains)
    gains = {int(c): float(g) for c, g in (gains or {}).items()}
    summary = {"scheme": scheme.name, "categories": scheme.categories,
               "best_val_r_precision": selection.best if np.isfinite(selection.best) else None,
               "best_phase": "tied" if best_tied else "untied", "updates_per_epoch": per_epoch, "stopped": stops,
               "history": selection.history, "seconds": round(selection.seconds, 2),
               "precision": "bf16" if bf16 else "fp32", "loss": "sampled" if sampled else "full",
               "input_gains": {str(c): g for c, g in gains.items()}}
    if distributed.is_main():
        with atomic_path(final) as tmp:
            torch.save({"state": selection.best_state, "tied": best_tied, "gains": gains,
                        "fingerprint": vocab.fingerprint, "signature": signature, "summary": json.dumps(summary)}, tmp)
    trainer.drop_checkpoints(*checkpoints)
    log.info("%s: best val R-precision %s (%s), %.1f s", scheme.name, selection.score_text(), summary["best_phase"],
             summary["seconds"])
    return summary


def _train_phase(loop: trainer.Loop, selection: trainer.Selection, key: tuple[int, int], lr: float,
                 train: PlaylistSet, dense: DenseVocab, cfg: MMCFConfig, sampled: bool, bf16: bool,
                 device: torch.device, directions: Callable[[], np.ndarray],
                 validate: Callable[[DAE], Callable[[], dict] | None]) -> trainer.Selection:
    """Phase key[1] of scheme key[0] (0: tied from the start; 1: untied from the best tied weights).
    Its model, Adam state and batches (at 1M playlists several GB) are let go when it returns,
    before the next phase allocates its own or the kept weights are scored."""
    model = _phase_model(selection.best_state if key[1] else None, dense, cfg, train, device, directions)
    distributed.broadcast_params(model)
    scheme = cfg.schemes[key[0]]
    batcher = Batcher(train, scheme, cfg.batch_size, cfg.seed, key, sampled, cfg.head, cfg.negatives, cfg.draw_power)
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    step = _step_fn(model, opt, batcher, cfg, key, bf16, device)
    return trainer.run(loop, model, [opt], step, validate(model), selection)


def _step_fn(model: DAE, opt: torch.optim.Optimizer, batcher: Batcher, cfg: MMCFConfig, key: tuple[int, int],
             bf16: bool, device: torch.device) -> Callable[[int], float]:
    """Update u of one phase: its batch and hidden dropout are pure functions of (seed, key, u); under
    torchrun every rank draws the whole batch and trains its shard, gradients summed before Adam."""
    gen = torch.Generator(device=device)
    lo, hi = distributed.shard(cfg.batch_size)
    share = (hi - lo) / cfg.batch_size
    if batcher.sampled and distributed.world_size() > 1:
        raise PipelineError("[mmcf] loss = \"sampled\" trains in one process; use loss = \"full\" under torchrun")

    def step(u: int) -> float:
        b = batcher.batch(u)
        gen.manual_seed(int(np.random.SeedSequence([cfg.seed, *key, 3, u]).generate_state(1)[0]))
        mask = model.dropout_mask(b.x.shape[0], cfg.hidden_keep, gen)[lo:hi]
        b = b.rows_between(lo, hi)
        target = Target(torch.from_numpy(b.target_rows).to(device), torch.from_numpy(b.target_cols).to(device))
        if b.cols is not None:
            loss = model.sampled_loss_and_grad(Bag.from_csr(b.x, device), target, cfg.neg_weight, mask,
                                               torch.from_numpy(b.cols).to(device),
                                               torch.from_numpy(b.col_scale).to(device), b.n_whole, bf16,
                                               u % LOSS_EVERY == 0)
        else:
            loss = model.loss_and_grad(Bag.from_csr(b.x, device), target, cfg.neg_weight, mask, bf16=bf16,
                                       with_loss=u % LOSS_EVERY == 0)
            distributed.all_reduce_grads(model.parameters(), share)
            if not np.isnan(loss):
                loss = distributed.all_reduce_loss(loss, share)
        opt.step()
        return loss

    return step


def train_all(artifacts: Artifacts, out_dir: str | Path, cfg: MMCFConfig, device: str | torch.device = "auto",
              schemes: list[str] | None = None, refit_from: str | Path | None = None) -> dict:
    """Train every scheme (or those named) on the training playlists with model selection on the
    validation playlists, then score the validation playlists they serve.

    refit_from: the folder of such a run. Then every playlist (training + validation: the final
    models lose nothing) trains each scheme for the updates that selection kept there (`refit_config`),
    without validation. Returns (and writes to `<out>/summary.json`) per-scheme training summaries,
    the dense vocabulary and, when validated, the metrics overall and per category. Under torchrun
    every rank trains its shard of each batch; rank 0 alone writes and validates.
    """
    with torch_threads(cfg.threads):
        return _train_all(artifacts, Path(out_dir), cfg, resolve_device(device), schemes, refit_from)


def _train_all(artifacts: Artifacts, out_dir: Path, cfg: MMCFConfig, device: torch.device,
               schemes: list[str] | None, refit_from: str | Path | None) -> dict:
    names = schemes or [s.name for s in cfg.schemes]
    for name in names:
        cfg.scheme(name)
    vocab = artifacts.vocab
    if refit_from is None:
        train, val = artifacts.playlists("train"), artifacts.playlists("val")
    else:
        train, val = artifacts.playlists("all"), None
        path = Path(refit_from) / SUMMARY_FILE  # rank 0 writes it last: the others wait for its copy
        selected = distributed.broadcast_from_main(read_json(path) if distributed.is_main() else None)
        cfg = refit_config(cfg, selected, path)
    per_item = dense_vocab.bytes_per_item(cfg.hidden, cfg.batch_size, sampled_loss(cfg.loss, device))
    dense = dense_vocab.choose(train, cfg.min_counts, cfg.dense_memory_mb, per_item)
    info = {"tracks": dense.n_tracks, "artists": len(dense.artists), "min_count": dense.min_count,
            "artist_min_count": dense.artist_min_count, "rule_min_counts": list(cfg.min_counts),
            "catalogue_tracks": vocab.n_tracks, "catalogue_artists": vocab.n_artists,
            "training_mb": round(dense.n_items * per_item / 2**20)}
    if val is not None:
        info["val_holdout_coverage"] = dense_vocab.coverage(dense, val, train)
    log.info("dense vocabulary: %s", info)
    if distributed.is_main():
        dense.save(out_dir)
        write_json(out_dir / CONFIG_FILE, {"config": cfg.to_dict(), "fingerprint": vocab.fingerprint,
                                           "n_tracks": dense.n_tracks, "n_items": dense.n_items,
                                           "n_train": len(train)})
    t0 = time.perf_counter()
    result: dict = {"schemes": {}, "dense": info, "refit": refit_from is not None}
    train = dense.view(train)
    directions = _Once(lambda: principal_directions(train, cfg.hidden, cfg.seed))
    for name in names:
        index = [s.name for s in cfg.schemes].index(name)
        gains = selected["schemes"][name].get("input_gains") if refit_from is not None else None
        result["schemes"][name] = train_scheme(train, val, dense, vocab, index, cfg, out_dir, device, directions, gains)
    result["train_seconds"] = round(time.perf_counter() - t0, 2)
    if distributed.is_main() and val is not None:
        result |= _validate(out_dir, device, names, cfg, val, vocab)
    if distributed.is_main():
        write_json(out_dir / SUMMARY_FILE, result)
    return result


def _validate(out_dir: Path, device: torch.device, names: list[str], cfg: MMCFConfig, val: PlaylistSet,
              vocab: Vocab) -> dict:
    """Metrics of the selected models on the validation playlists their schemes serve."""
    models = load_models(out_dir, device, names)
    served = [c for n in names for c in cfg.scheme(n).categories]
    sub = val.subset(np.flatnonzero(np.isin(val.category, served)))
    t1 = time.perf_counter()
    rec, _ = predict(models, sub, vocab)
    m = list_metrics(rec, sub, vocab.track_artist)
    return {"predict_seconds": round(time.perf_counter() - t1, 2), "predict_playlists": len(sub),
            "val": summarize(m, sub.category)}


def refit_config(cfg: MMCFConfig, summary: dict, where: Path) -> MMCFConfig:
    """cfg with each scheme's epochs replaced by what model selection kept in `summary`: the tied
    epochs up to the best tied check, and the untied epochs up to the best untied check when an
    untied model won (that phase started from the best tied weights). Epochs, not updates: every
    playlist makes longer epochs than the training playlists did."""
    schemes = []
    for s in cfg.schemes:
        if s.name not in summary.get("schemes", {}):
            raise PipelineError(f"{where}: no scheme {s.name!r} to refit from; train it first")
        tied, untied = selected_epochs(summary["schemes"][s.name], (s.tied_epochs, s.untied_epochs))
        schemes.append(dataclasses.replace(s, tied_epochs=tied, untied_epochs=untied))
    return dataclasses.replace(cfg, schemes=schemes)


def selected_epochs(scheme_summary: dict, epochs: tuple[int, int]) -> tuple[int, int]:
    """(tied, untied) epochs of the selected model; the configured epochs when nothing was scored."""
    history, per_epoch = scheme_summary["history"], scheme_summary["updates_per_epoch"]
    tied = trainer.best_update(history, "tied")
    if tied is None:
        return epochs
    untied = trainer.best_update(history, "untied") if scheme_summary["best_phase"] == "untied" else 0
    return -(-tied // per_epoch), -(-untied // per_epoch)


def _training_settings(cfg: MMCFConfig) -> dict:
    """The settings that can change the kept weights (seed weights included: model selection uses them)."""
    keys = ("hidden", "hidden_keep", "neg_weight", "batch_size", "tied_lr", "untied_lr", "loss", "head", "negatives", "draw_power", "patience", "train_seconds",
            "val_playlists", "init", "init_row_norm", "precision", "seed", "track_weight", "artist_weight",
            "long_seeds", "recent_seeds", "early_weight", "input_gains")
    return {k: getattr(cfg, k) for k in keys}


def _phase_model(best_state: dict | None, dense: DenseVocab, cfg: MMCFConfig, train: PlaylistSet,
                 device: torch.device, directions: Callable[[], np.ndarray]) -> DAE:
    """A fresh tied model (the first phase), or an untied copy of the best tied weights (the second)."""
    model = DAE(dense.n_items, dense.n_tracks, cfg.hidden, tied=True)
    if best_state is None:
        model.init_weights(torch.Generator().manual_seed(cfg.seed), item_frequency(train))
        if cfg.init == "svd":
            model.init_principal(directions(), cfg.init_row_norm)
        return model.to(device)
    model.load_state_dict(best_state)
    return model.to(device).untied_copy()


class _Once:
    """A value computed on first use and kept (the principal directions, shared by the schemes)."""

    def __init__(self, compute: Callable[[], np.ndarray]) -> None:
        self._compute, self._value = compute, None

    def __call__(self) -> np.ndarray:
        if self._value is None:
            t0 = time.perf_counter()
            self._value = self._compute()
            log.info("principal directions of the training inputs: %.1f s", time.perf_counter() - t0)
        return self._value
