"""Training of the title model on MMCF's mixed output, with the autoencoder frozen, as the published
code trains it.

Each batch imitates a challenge playlist the autoencoder knows little about: every entry of the
whole playlist (its tracks at track_weight, its artists at artist_weight) is fed to the frozen
autoencoder with probability input_keep (0.01), the autoencoder's hidden dropout stays on as in its
own training, and the loss is the autoencoder's weighted BCE on p = w_t * title + w_p * dae against
the full track + artist vector, w_t = 1 / (1 + c) with c the sum of the fed weights (as at
inference, mmcf.predict.encode_inputs). Most rows get nothing fed and train the title alone.

Training length follows the data: `epochs` passes of ceil(titled playlists / batch) updates, one
validation check on the title-heavy categories per epoch, the best epoch's weights kept, an optional
time budget; a checkpoint after each epoch lets a killed run resume where it stopped and end with
the same weights (every draw of update u is a pure function of (seed, u)).

On the CPU ("sampled" loss) an update scores only some output columns, as the autoencoder's does
(mmcf.train.Batcher): the batch's positives and the most frequent items whole, plus uniform draws
from the rest reweighted to an unbiased estimate of the full loss; both the title model's dense
layer and the frozen autoencoder's output are computed at those columns only.

Several processes (torchrun, common/distributed.py): every rank draws the same global batch and
the same dropout noise, and trains on its shard of the rows. The encoder runs under
DistributedDataParallel; the dense layer's hand-written gradient is summed with an explicit
all_reduce. Rank 0 validates and writes; the others receive its score, so patience and model
selection agree everywhere.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from charcnn.config import TitleConfig
from charcnn.model import TitleModel
from common import distributed, trainer
from common.config import to_dict
from common.device import resolve_device
from common.epochs import EpochStream
from common.errors import PipelineError
from common.io import atomic_path, read_json, write_json
from common.metrics import list_metrics, summarize, validation_rows
from common.sparse import column_counts, popularity_order
from mmcf.config import MMCFConfig
from mmcf.mixing import mixing_weights, mmcf_lists, usable_title
from mmcf.model import DAE, Bag
from mmcf.predict import MMCFModels, check_vocab, predict
from mmcf.train import item_frequency, sampled_loss, scored_columns, updates_per_epoch, use_bf16
from preprocess.artifacts import Artifacts, PlaylistSet, Vocab

log = logging.getLogger("charcnn")

_CHUNK = 64  # rows per softplus block of the loss: keeps its temporaries small
MODEL_FILE = "title_model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"


def mixed_bce(z: torch.Tensor, d: torch.Tensor | None, w_t: torch.Tensor, w_p: torch.Tensor,
              pos: torch.Tensor, neg_weight: float, col_scale: torch.Tensor | None = None) -> torch.Tensor:
    """-sum[y log p + neg_weight s (1 - y) log(1 - p)], batch mean, for p = w_t sigmoid(z) + w_p d.

    The plain autograd formulation, which the tests hold `head_grad_` to. Worked in log space
    (log p = logaddexp(log w_t + logsigmoid(z), log w_p + log d)) so saturated sigmoids keep
    their gradient; pos holds the flat indices of the y = 1 entries; d None means w_p = 0;
    col_scale: s, the weight of each column's y = 0 terms (None: 1, the full loss).
    """
    lt = torch.log(w_t)[:, None]
    log1mp = -F.softplus(z) + lt
    logp_pos = -F.softplus(-z.reshape(-1)[pos]) + lt.reshape(-1)[pos // z.shape[1]]
    if d is not None:
        lp = torch.log(w_p)[:, None]  # -inf on rows without autoencoder weight: logaddexp ignores them
        log1mp = torch.logaddexp(log1mp, lp + torch.log1p(-d))
        logp_pos = torch.logaddexp(logp_pos, (lp + torch.log(d)).reshape(-1)[pos])
    scale = torch.ones(z.shape[1], dtype=z.dtype, device=z.device) if col_scale is None else col_scale.to(z.dtype)
    pos_term = (logp_pos - neg_weight * scale[pos % z.shape[1]] * log1mp.reshape(-1)[pos]).sum()
    return -(neg_weight * (log1mp * scale).sum() + pos_term) / z.shape[0]


@torch.no_grad()
def head_grad_(z: torch.Tensor, n_plain: int, d: torch.Tensor | None, w_t: torch.Tensor, w_p: torch.Tensor,
               pos_r: torch.Tensor, pos_c: torch.Tensor, neg_weight: float,
               col_scale: torch.Tensor | None = None) -> float:
    """Overwrite the logits z [B, C] with dL/dz of `mixed_bce` and return the loss.

    Rows [:n_plain] are title only (w_t = 1, w_p = 0): there dL/dz = a s_j sigmoid(z) at negatives
    and sigmoid(z) - 1 at positives (a = neg_weight, s_j = col_scale of column j, 1 when None), a
    dense sigmoid plus a sparse correction. Rows [n_plain:] mix in the autoencoder's d
    [B - n_plain, C]: dL/dz = a s_j w_t q (1 - q) / (1 - p) at negatives and -w_t q (1 - q) / p at
    positives (q = sigmoid(z)), the ratios taken in log space. Written by hand because autograd
    would keep half a dozen [B, C] temporaries alive for this one layer.
    """
    a, n_rows = neg_weight, z.shape[0]
    s = torch.ones(z.shape[1], dtype=z.dtype, device=z.device) if col_scale is None else col_scale.to(z.dtype)
    zp = z[pos_r, pos_c]
    sp_ = s[pos_c]
    plain_pos = pos_r < n_plain
    zp_plain = zp[plain_pos]
    neg_part = sum((F.softplus(z[i:min(i + _CHUNK, n_plain)]) * s).sum() for i in range(0, n_plain, _CHUNK))
    loss = float(a * neg_part + (F.softplus(-zp_plain) - a * sp_[plain_pos] * F.softplus(zp_plain)).sum())
    g_pos = torch.empty_like(zp)
    g_pos[plain_pos] = torch.sigmoid(zp_plain) - 1.0
    if n_plain < n_rows:
        zm = z[n_plain:]
        lt, lp = torch.log(w_t[n_plain:])[:, None], torch.log(w_p[n_plain:])[:, None]
        log1mp = torch.logaddexp(lt - F.softplus(zm), lp + torch.log1p(-d))
        r, c = pos_r[~plain_pos] - n_plain, pos_c[~plain_pos]
        zpm = zp[~plain_pos]
        logp = torch.logaddexp(lt[r, 0] - F.softplus(-zpm), lp[r, 0] + torch.log(d[r, c]))
        loss += float(-a * (log1mp * s).sum() + (-logp + a * sp_[~plain_pos] * log1mp[r, c]).sum())
        # q (1 - q) / p = sigmoid(z) exp(logsigmoid(-z) - log p)
        g_pos[~plain_pos] = -w_t[n_plain:][r] * torch.sigmoid(zpm) * torch.exp(-F.softplus(zpm) - logp)
        zm.copy_(a * s * lt.exp() * torch.sigmoid(zm) * torch.exp(-F.softplus(zm) - log1mp))
    zpl = z[:n_plain]
    torch.sigmoid(zpl, out=zpl).mul_(s).mul_(a)
    z[pos_r, pos_c] = g_pos
    z.div_(n_rows)
    return loss / n_rows


@dataclass
class _Batch:
    rows: np.ndarray  # training playlist indices; rows[:n_plain] have nothing fed to the autoencoder
    x: sp.csr_matrix  # the autoencoder's input: the fed entries at their weights, rows summing to 1
    c: np.ndarray  # float32: the sum of the fed weights (tracks and artists) before that normalisation
    w_t: np.ndarray  # float32: the title's mixing weight u / (u + c), u = 1
    n_plain: int
    pos_r: np.ndarray  # coordinates of the target's positives (pos_c: positions in cols when sampled)
    pos_c: np.ndarray
    title_noise: np.ndarray | None  # float32 [B, title dims]: the title vector's scaled dropout mask
    dae_mask: np.ndarray  # float32 [B, hidden]: the frozen autoencoder's scaled hidden dropout mask
    cols: np.ndarray | None = None  # sampled loss: the output columns this update scores
    col_scale: np.ndarray | None = None  # ... and the weight of each one's y = 0 terms

    def rows_between(self, lo: int, hi: int) -> "_Batch":
        """Rows lo..hi-1, renumbered from 0: one process's shard of a batch drawn whole (the
        title-only rows stay one leading block; every shard scores the same columns)."""
        if lo == 0 and hi == len(self.rows):
            return self
        a, b = np.searchsorted(self.pos_r, [lo, hi])
        return dataclasses.replace(
            self, rows=self.rows[lo:hi], x=self.x[lo:hi], c=self.c[lo:hi], w_t=self.w_t[lo:hi],
            n_plain=min(max(self.n_plain - lo, 0), hi - lo), pos_r=self.pos_r[a:b] - lo, pos_c=self.pos_c[a:b],
            title_noise=None if self.title_noise is None else self.title_noise[lo:hi], dae_mask=self.dae_mask[lo:hi])


class _Batches:
    """The training batches: update u's is a pure function of (seed, u), so a resumed run draws
    exactly what an uninterrupted one would have drawn.

    Its rows are consecutive slices of a stream of per-epoch permutations of the titled training
    playlists (every batch full; an epoch is ceil(playlists / batch) updates); its dropout masks
    (the title vector's, the frozen autoencoder's hidden layer's) are drawn for the whole global
    batch, so every process count trains on the same noise. head (sampled loss only): the
    output columns every update scores whole, None for the full loss."""

    def __init__(self, train: PlaylistSet, rows: np.ndarray, cfg: TitleConfig, dae_cfg: MMCFConfig,
                 title_dims: int, dae_hidden: int, head: np.ndarray | None = None):
        self.rows, self.cfg, self.head = rows, cfg, head
        self.items = sp.hstack([train.tracks, train.artists], format="csr")
        n_tracks = train.tracks.shape[1]
        self.weight = np.where(np.arange(self.items.shape[1]) < n_tracks, dae_cfg.track_weight,
                               dae_cfg.artist_weight).astype(np.float32)
        self.hidden, self.hidden_keep, self.title_dims = dae_hidden, dae_cfg.hidden_keep, title_dims
        self.per_epoch = updates_per_epoch(len(rows), cfg.batch)
        self.stream = EpochStream(self.rows, cfg.batch, [cfg.seed, 0])

    def batch(self, update: int) -> _Batch:
        cfg = self.cfg
        rows = self.stream.rows(update)
        rng = np.random.default_rng([cfg.seed, 1, update])
        sub = self.items[rows]
        fed = rng.random(sub.nnz) < cfg.input_keep
        x = sp.csr_matrix((self.weight[sub.indices] * fed, sub.indices.copy(), sub.indptr.copy()), shape=sub.shape)
        x.eliminate_zeros()  # in place: the copies keep the target (sub) whole
        c = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
        x.data /= np.repeat(np.where(c > 0, c, 1.0), np.diff(x.indptr)).astype(np.float32)
        order = np.argsort(c > 0, kind="stable")  # title-only rows first: head_grad_ wants them as one block
        rows, x, c, sub = rows[order], x[order], c[order], sub[order]
        w_t, _ = mixing_weights(np.ones(len(rows), dtype=bool), c)
        pos_r = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(sub.indptr))
        noise = None
        if cfg.keep_prob < 1:
            noise = ((rng.random((len(rows), self.title_dims)) < cfg.keep_prob) / cfg.keep_prob).astype(np.float32)
        mask = ((rng.random((len(rows), self.hidden)) < self.hidden_keep) / self.hidden_keep).astype(np.float32)
        out = _Batch(rows, x, c, w_t, int((c == 0).sum()), pos_r, sub.indices.astype(np.int64), noise, mask)
        if self.head is not None:
            out.cols, out.col_scale, _, out.pos_c = scored_columns(self.head, out.pos_c, self.items.shape[1],
                                                                   cfg.negatives, rng)
        return out


def frozen_schemes(dae_cfg: MMCFConfig, cfg: TitleConfig) -> list[str]:
    """The autoencoders the title model's training reads: the one it is trained against and those
    serving its selection categories (validation mixes their lists). Loading only these keeps the
    stage's frozen weights at 3 of the four schemes' 7 [items, hidden] matrices at most."""
    return [s.name for s in dae_cfg.schemes
            if s.name == cfg.train_scheme or set(s.categories) & set(cfg.select_categories)]


def train_title_model(art: Artifacts, models: MMCFModels, out_dir: str | Path, cfg: TitleConfig,
                      device: str | torch.device = "auto", refit_from: str | Path | None = None) -> dict:
    """Train (or resume) the title model into out_dir/title_model.pt; returns a JSON-able summary.

    models: the frozen autoencoders (mmcf.predict.load_models); the `train_scheme` one is mixed
    in during training, all of them serve the validation lists. The title model's outputs are
    their dense vocabulary. refit_from: a title model folder selected on validation; then every
    playlist (training + validation) trains it for the epochs kept there, without validation
    (pass the autoencoders refit the same way). Epochs, not updates: every playlist makes longer
    epochs than the training playlists did.
    """
    out_dir = Path(out_dir)
    dev = resolve_device(device)
    vocab = art.vocab
    check_vocab(models, vocab)
    if cfg.train_scheme not in models.models:
        raise PipelineError(f"[charcnn].train_scheme {cfg.train_scheme!r}: no such autoencoder "
                            f"(have {', '.join(sorted(models.models)) or 'none'})")
    if refit_from is None:
        train, val = art.playlists("train"), art.playlists("val")
        val = val.subset(validation_rows(val.category, val.n_holdouts > 0, cfg.select_categories,
                                         cfg.val_playlists, cfg.seed))
    else:
        train, val = art.playlists("all"), None
        history = read_history(refit_from) if distributed.is_main() else None
        cfg = dataclasses.replace(cfg, epochs=selected_epochs(distributed.broadcast_from_main(history), cfg,
                                                              Path(refit_from) / HISTORY_FILE))
    rows = np.flatnonzero(usable_title(train) & (np.diff(train.tracks.indptr) > 0))
    if rows.size == 0:
        raise PipelineError(f"{art.folder / 'train.npz'}: no training playlist has a usable title")
    fill = popularity_order(column_counts(train.tracks))
    dense_train = models.dense.view(train)
    n_out = models.dense.n_items
    dae = models.models[cfg.train_scheme]
    sampled = sampled_loss(cfg.loss, dev)
    key = _run_key(cfg, vocab, dae, models.cfg, dense_train, sampled)
    freq = item_frequency(dense_train)
    bf16 = use_bf16(cfg.precision, dev)
    torch.manual_seed(cfg.seed)
    model = TitleModel(cfg, n_out)
    with torch.no_grad():  # start from popularity so the updates go to what the title adds
        f = np.clip(freq, 1e-6, 1 - 1e-6)
        model.dense.bias.copy_(torch.from_numpy(np.log(f / (1 - f)).astype(np.float32)))
    model.to(dev)
    head = np.sort(np.argsort(-freq, kind="stable")[:cfg.head]) if sampled else None
    batches = _Batches(dense_train, rows, cfg, models.cfg, model.encoder.out_dim, dae.hidden, head)
    chars_all = torch.from_numpy(np.ascontiguousarray(train.title_chars))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)  # fused: a third of foreach's time on CPU
    distributed.broadcast_params(model)
    encoder = distributed.wrap_ddp(model.encoder, dev)
    validated = val is not None and len(val) > 0
    per_epoch = batches.per_epoch
    log.info("title model (%s, %d outputs, %s, %s loss) on %d titled training playlists: %d epochs of %d updates, "
             "%s, on %s", cfg.arch, n_out, "bf16" if bf16 else "fp32", "sampled" if sampled else "full", rows.size,
             cfg.epochs, per_epoch, f"{len(val)} validation playlists (categories {cfg.select_categories})"
             if val is not None else "refit without validation", dev)

    def step(u: int) -> float:
        return _step(model, encoder, opt, dae, chars_all, batches.batch(u), cfg, dev, bf16)

    loop = trainer.Loop(cfg.epochs * per_epoch, per_epoch, "title model", out_dir / CHECKPOINT_FILE, key,
                        patience=cfg.patience, seconds=cfg.train_seconds)
    model.train()
    selection = trainer.run(loop, model, [opt], step, (lambda: {"r_precision": _validate(
        model, val, vocab, models, fill, cfg, dev)}) if validated else None, trainer.Selection())
    history = selection.history
    trained = history[-1]["update"] if history else 0
    best = trainer.best_update(history)
    log.info("title model: %.1f of %d epochs trained (%d updates an epoch), best epoch %s; %s", trained / per_epoch,
             cfg.epochs, per_epoch, "-" if best is None else -(-best // per_epoch), selection.stop_reason)
    if distributed.is_main():
        with atomic_path(out_dir / MODEL_FILE) as tmp:
            torch.save({"config": to_dict(cfg), "n_out": n_out, "fingerprint": vocab.fingerprint,
                        "state": selection.best_state, "val_r_precision": selection.best}, tmp)
    summary = {"arch": cfg.arch, "checks": len(history), "updates": trained, "updates_per_epoch": per_epoch,
               "epochs": -(-trained // per_epoch), "best_epoch": None if best is None else -(-best // per_epoch),
               "stopped": selection.stop_reason, "loss": "sampled" if sampled else "full",
               "best_val_r_precision": selection.best if math.isfinite(selection.best) else None,
               "train_playlists": int(rows.size), "refit": refit_from is not None,
               "train_seconds": round(selection.train_seconds, 2), "history": history}
    if distributed.is_main():
        write_json(out_dir / HISTORY_FILE, summary)
    return summary


def selected_epochs(history: dict, cfg: TitleConfig, where: Path | str = HISTORY_FILE) -> int:
    """Epochs up to the best validation check of a selected run, rounded up (the configured epochs
    when nothing was scored)."""
    best = trainer.best_update(history.get("history", []))
    if best is None:
        return cfg.epochs
    per_epoch = history.get("updates_per_epoch")
    if not per_epoch:
        raise PipelineError(f"{where}: written before the title model counted epochs; retrain the selected model")
    return -(-best // int(per_epoch))


def read_history(folder: str | Path) -> dict:
    """A title model run's history.json; one written before the shared trainer counted "updates"
    where checks now record "update"."""
    summary = read_json(Path(folder) / HISTORY_FILE)
    summary["history"] = [h if "update" in h else {**h, "update": h["updates"]} for h in summary.get("history", [])]
    return summary


def load_title_model(out_dir: str | Path, device: str | torch.device = "cpu",
                     expect_fingerprint: str | None = None) -> TitleModel:
    """The selected title model from out_dir, in eval mode, refusing another vocabulary's model.
    Settings the file holds that TitleConfig no longer has only ever steered training: ignored."""
    path = Path(out_dir) / MODEL_FILE
    if not path.exists():
        raise PipelineError(f"{path}: missing; train the title model first (python -m charcnn)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        known = {f.name for f in dataclasses.fields(TitleConfig)}
        cfg = TitleConfig(**{k: v for k, v in blob["config"].items() if k in known})
        model = TitleModel(cfg, int(blob["n_out"]))
        model.load_state_dict(blob["state"])
    except (RuntimeError, KeyError, TypeError, EOFError) as exc:
        raise PipelineError(f"{path}: not a title model file ({exc})") from None
    if expect_fingerprint is not None and blob["fingerprint"] != expect_fingerprint:
        raise PipelineError(f"{path}: trained on vocabulary {blob['fingerprint']}, artifacts have "
                            f"{expect_fingerprint}; retrain the title model")
    return model.to(resolve_device(device)).eval()


@torch.no_grad()
def frozen_dae_probs(dae: DAE, x: sp.csr_matrix, mask: torch.Tensor, cols: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """The frozen autoencoder's output while the title model trains: its hidden dropout on (mask,
    scaled), at the scored columns only when cols is given: sigmoid(h W_dec[cols]^T + b_dec[cols])."""
    h = dae.hidden_units(Bag.from_csr(x, dae.W.device)) * mask
    w, b = dae.decoder_weight, dae.b_dec
    if cols is not None:
        w, b = w[cols], b[cols]
    return torch.sigmoid(torch.addmm(b, h, w.t()))


def _gradients(model: TitleModel, encoder: torch.nn.Module, dae: DAE, chars_all: torch.Tensor, batch: _Batch,
               cfg: TitleConfig, dev: torch.device, bf16: bool = False) -> float:
    """Set .grad of every parameter for this process's shard of the global batch and return the
    shard's share of the global batch's loss: autograd through the encoder (under DDP with several
    processes), the dense layer's gradient by hand. With the batch's scored columns (sampled loss)
    the dense layer's logits and the autoencoder's output are computed there only, and the dense
    layer's gradient is scattered into zeros for the same fused Adam as the full loss. bf16: the
    dense layer's three matmuls in bfloat16 (the loss and its gradient, and the accumulated weights,
    stay float32). Measured per update at 42K outputs on 2 cores (full loss), casts included: 111 ms
    fp32, 45 ms bf16 on an AMD EPYC with AVX-512 BF16; on a 2-core AMX CPU an earlier session found
    the casts cost what the matmuls saved, so `precision` decides."""
    lo, hi = distributed.shard(len(batch.rows))
    share = (hi - lo) / len(batch.rows)
    b = batch.rows_between(lo, hi)
    w_t = torch.from_numpy(b.w_t).to(dev)  # every training playlist has a title: u = 1
    hd = encoder(chars_all[b.rows].to(dev))
    if b.title_noise is not None:
        hd = hd * torch.from_numpy(b.title_noise).to(dev)
    dense = model.dense
    dt = torch.bfloat16 if bf16 else torch.float32
    cols = None if b.cols is None else torch.from_numpy(b.cols).to(dev)
    w, bias = dense.weight.detach(), dense.bias.detach()
    if cols is not None:
        w, bias = w[cols], bias[cols]
    w, h = w.to(dt), hd.detach().to(dt)
    z = torch.addmm(bias.to(dt), h, w.t()).float()
    d = None
    if b.n_plain < len(b.rows):
        d = frozen_dae_probs(dae, b.x[b.n_plain:], torch.from_numpy(b.dae_mask[b.n_plain:]).to(dev), cols)
    scale = None if b.col_scale is None else torch.from_numpy(b.col_scale).to(dev)
    loss = head_grad_(z, b.n_plain, d, w_t, 1.0 - w_t, torch.from_numpy(b.pos_r).to(dev),
                      torch.from_numpy(b.pos_c).to(dev), cfg.neg_weight, scale)
    if share != 1.0:
        z.mul_(share)  # this shard's part of the gradient of the global batch's mean
    g = z.to(dt)
    g_w, g_b = torch.mm(g.t(), h).float(), z.sum(dim=0)
    model.encoder.zero_grad(set_to_none=True)
    if cols is None:
        dense.weight.grad, dense.bias.grad = g_w, g_b
    else:
        _scatter_grad(dense.weight, cols, g_w)
        _scatter_grad(dense.bias, cols, g_b)
    hd.backward(torch.mm(g, w).float())  # under DDP this also sums the encoder's gradients over the processes
    return loss * share


def _scatter_grad(param: torch.nn.Parameter, cols: torch.Tensor, values: torch.Tensor) -> None:
    """param.grad = values at rows cols, zero elsewhere, written over the previous update's buffer
    (a fresh [outputs, dims] block each update costs page faults)."""
    if param.grad is None or param.grad.shape != param.shape:
        param.grad = torch.zeros_like(param)
    else:
        param.grad.zero_()
    param.grad.index_add_(0, cols, values)  # cols are distinct: the same sums as index_put_'s, 4x faster on CPU


def _step(model: TitleModel, encoder: torch.nn.Module, opt: torch.optim.Optimizer, dae: DAE,
          chars_all: torch.Tensor, batch: _Batch, cfg: TitleConfig, dev: torch.device, bf16: bool = False) -> float:
    """One Adam update on this process's shard of the global batch; returns the global batch's loss."""
    loss = _gradients(model, encoder, dae, chars_all, batch, cfg, dev, bf16)
    distributed.all_reduce_grads(model.dense.parameters())
    opt.step()
    return distributed.all_reduce_loss(loss, 1.0)


def _validate(model: TitleModel, val: PlaylistSet, vocab: Vocab, models: MMCFModels, fill: np.ndarray,
              cfg: TitleConfig, dev: torch.device) -> float:
    """Mean R-precision of the mixed lists over the selection categories (the trainer calls it, in
    eval mode, only when there are validation playlists)."""
    ids, _ = mmcf_lists(val, model, models, vocab, fill, batch=cfg.predict_batch, device=dev)
    per = list_metrics(ids, val, vocab.track_artist)
    return float(np.nan_to_num(summarize(per, np.asarray(val.category))["r_precision"]))


def _run_key(cfg: TitleConfig, vocab: Vocab, dae: DAE, dae_cfg: MMCFConfig, train: PlaylistSet,
             sampled: bool) -> str:
    """Identifies what a checkpoint was trained on: config, the loss "auto" resolved to, vocabulary,
    training set size and the frozen autoencoder (its input weights and hidden dropout, and its
    output on a fixed probe), so a resume never mixes two runs."""
    probe = sp.hstack([train.tracks[:4], train.artists[:4]], format="csr").astype(np.float32)
    probe.data[:] = 1.0 / np.repeat(np.maximum(np.diff(probe.indptr), 1), np.diff(probe.indptr))
    out = dae.forward_sparse(probe).detach().cpu().numpy().astype(np.float32)
    dae_settings = (dae_cfg.track_weight, dae_cfg.artist_weight, dae_cfg.hidden_keep, sampled)
    h = hashlib.sha256(repr(sorted(to_dict(cfg).items())).encode() + repr(dae_settings).encode()
                       + vocab.fingerprint.encode() + str(len(train)).encode())
    h.update(np.round(out, 5).tobytes())
    return h.hexdigest()[:16]


def compare_on_val(art: Artifacts, models: MMCFModels, out_dir: str | Path, cfg: TitleConfig,
                   device: str | torch.device = "cpu") -> dict:
    """Validation metrics (overall and per category) of the autoencoders alone (their own
    predictions) and of MMCF's mixture with the trained title model."""
    val, vocab = art.playlists("val"), art.vocab
    title = load_title_model(out_dir, device, expect_fingerprint=vocab.fingerprint)
    dae_ids, _ = predict(models, val, vocab)
    mixed_ids, _ = mmcf_lists(val, title, models, vocab, popularity_order(column_counts(art.playlists("train").tracks)),
                              batch=cfg.predict_batch,
                              device=device)
    cat = np.asarray(val.category)
    return {"dae": summarize(list_metrics(dae_ids, val, vocab.track_artist), cat),
            "mmcf": summarize(list_metrics(mixed_ids, val, vocab.track_artist), cat)}
