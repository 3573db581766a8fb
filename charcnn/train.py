"""Training of the title model on MMCF's mixed output, with the autoencoder frozen.

Each batch imitates a challenge playlist: the first U(0, seed_frac_max) of the playlist is the
seed part, the frozen autoencoder sees it almost fully hidden (input keep 0.01), and the loss is
the autoencoder's weighted BCE on p = w_t * title + w_p * dae against the full track + artist
vector, so the title model learns to carry playlists the autoencoder knows little about.
Every `eval_every` updates ("a period") the model is scored on the title-heavy validation
categories and the weights are kept only if R-precision improved; a checkpoint after each
period lets a killed run resume where it stopped and end with the same weights.

Several processes (torchrun, common/distributed.py): every rank draws the same global batch and
the same title dropout noise, and trains on its shard of the rows. The encoder runs under
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
from common.errors import PipelineError
from common.io import atomic_path, read_json, write_json
from common.metrics import list_metrics, summarize, validation_rows
from common.sparse import column_counts, popularity_order
from mmcf.mixing import DaeFn, mmcf_lists, usable_title
from mmcf.predict import MMCFModels, check_vocab, predict
from mmcf.train import item_frequency, use_bf16
from preprocess.artifacts import Artifacts, PlaylistSet, Vocab

log = logging.getLogger("charcnn")

_CHUNK = 64  # rows per softplus block of the loss: keeps its temporaries small
MODEL_FILE = "title_model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.json"


def mixed_bce(z: torch.Tensor, d: torch.Tensor | None, w_t: torch.Tensor, w_p: torch.Tensor,
              pos: torch.Tensor, neg_weight: float) -> torch.Tensor:
    """-sum[y log p + neg_weight (1 - y) log(1 - p)], batch mean, for p = w_t sigmoid(z) + w_p d.

    The plain autograd formulation, which the tests hold `head_grad_` to. Worked in log space
    (log p = logaddexp(log w_t + logsigmoid(z), log w_p + log d)) so saturated sigmoids keep
    their gradient; pos holds the flat indices of the y = 1 entries; d None means w_p = 0.
    """
    lt = torch.log(w_t)[:, None]
    log1mp = -F.softplus(z) + lt
    logp_pos = -F.softplus(-z.reshape(-1)[pos]) + lt.reshape(-1)[pos // z.shape[1]]
    if d is not None:
        lp = torch.log(w_p)[:, None]  # -inf on rows without autoencoder weight: logaddexp ignores them
        log1mp = torch.logaddexp(log1mp, lp + torch.log1p(-d))
        logp_pos = torch.logaddexp(logp_pos, (lp + torch.log(d)).reshape(-1)[pos])
    pos_term = (logp_pos - neg_weight * log1mp.reshape(-1)[pos]).sum()
    return -(neg_weight * log1mp.sum() + pos_term) / z.shape[0]


@torch.no_grad()
def head_grad_(z: torch.Tensor, n_plain: int, d: torch.Tensor | None, w_t: torch.Tensor, w_p: torch.Tensor,
               pos_r: torch.Tensor, pos_c: torch.Tensor, neg_weight: float) -> float:
    """Overwrite the logits z [B, N] with dL/dz of `mixed_bce` and return the loss.

    Rows [:n_plain] are title only (w_t = 1, w_p = 0): there dL/dz = a s at negatives and s - 1
    at positives (a = neg_weight, s = sigmoid(z)), a dense sigmoid plus a sparse correction.
    Rows [n_plain:] mix in the autoencoder's d [B - n_plain, N]: dL/dz = a w_t s (1 - s) / (1 - p)
    at negatives and -w_t s (1 - s) / p at positives, the ratios taken in log space. Written by
    hand because autograd would keep half a dozen [B, N] temporaries alive for this one layer.
    """
    a, n_rows = neg_weight, z.shape[0]
    zp = z[pos_r, pos_c]
    plain_pos = pos_r < n_plain
    zp_plain = zp[plain_pos]
    neg_part = sum(F.softplus(z[i:min(i + _CHUNK, n_plain)]).sum() for i in range(0, n_plain, _CHUNK))
    loss = float(a * neg_part + (F.softplus(-zp_plain) - a * F.softplus(zp_plain)).sum())
    g_pos = torch.empty_like(zp)
    g_pos[plain_pos] = torch.sigmoid(zp_plain) - 1.0
    if n_plain < n_rows:
        zm = z[n_plain:]
        lt, lp = torch.log(w_t[n_plain:])[:, None], torch.log(w_p[n_plain:])[:, None]
        log1mp = torch.logaddexp(lt - F.softplus(zm), lp + torch.log1p(-d))
        r, c = pos_r[~plain_pos] - n_plain, pos_c[~plain_pos]
        zpm = zp[~plain_pos]
        logp = torch.logaddexp(lt[r, 0] - F.softplus(-zpm), lp[r, 0] + torch.log(d[r, c]))
        loss += float(-a * log1mp.sum() + (-logp + a * log1mp[r, c]).sum())
        # s (1 - s) / p = sigmoid(z) exp(logsigmoid(-z) - log p)
        g_pos[~plain_pos] = -w_t[n_plain:][r] * torch.sigmoid(zpm) * torch.exp(-F.softplus(zpm) - logp)
        zm.copy_(a * lt.exp() * torch.sigmoid(zm) * torch.exp(-F.softplus(zm) - log1mp))
    zpl = z[:n_plain]
    torch.sigmoid(zpl, out=zpl).mul_(a)
    z[pos_r, pos_c] = g_pos
    z.div_(n_rows)
    return loss / n_rows


@dataclass
class _Batch:
    rows: np.ndarray  # training playlist indices; rows[:n_plain] have nothing fed to the autoencoder
    x: sp.csr_matrix  # the autoencoder's (corrupted, weighted) input
    c: np.ndarray  # weighted seed count fed to the autoencoder
    n_plain: int
    pos_r: np.ndarray  # coordinates of the target's positives
    pos_c: np.ndarray

    def rows_between(self, lo: int, hi: int) -> "_Batch":
        """Rows lo..hi-1, renumbered from 0: one process's shard of a batch drawn whole (the
        title-only rows stay one leading block)."""
        if lo == 0 and hi == len(self.rows):
            return self
        a, b = np.searchsorted(self.pos_r, [lo, hi])
        return _Batch(self.rows[lo:hi], self.x[lo:hi], self.c[lo:hi], min(max(self.n_plain - lo, 0), hi - lo),
                      self.pos_r[a:b] - lo, self.pos_c[a:b])


class _Batches:
    """Training batches of one period, drawn from a generator seeded by (seed, period) so a
    resumed run draws exactly what an uninterrupted one would have drawn."""

    def __init__(self, train: PlaylistSet, rows: np.ndarray, cfg: TitleConfig, track_weight: float,
                 artist_weight: float):
        self.train, self.rows, self.cfg = train, rows, cfg
        self.track_weight, self.artist_weight = track_weight, artist_weight
        self.n_tracks = train.tracks.shape[1]
        self.target = sp.hstack([train.tracks, train.artists], format="csr")

    def period(self, period: int, n_updates: int):
        rng = np.random.default_rng([self.cfg.seed, period])
        need = n_updates * self.cfg.batch
        perm = np.concatenate([rng.permutation(self.rows) for _ in range(-(-need // len(self.rows)))])[:need]
        for i in range(n_updates):
            yield self._batch(perm[i * self.cfg.batch:(i + 1) * self.cfg.batch], rng)

    def _batch(self, rows: np.ndarray, rng: np.random.Generator) -> _Batch:
        t = self.train
        cut = np.floor(rng.random(len(rows)) * self.cfg.seed_frac_max * t.num_tracks[rows]).astype(np.int64)
        x = sp.hstack([t.tracks[rows], t.artists[rows]], format="csr").astype(np.float32)
        r = np.repeat(np.arange(len(rows)), np.diff(x.indptr))
        keep = (x.data <= cut[r]) & (rng.random(x.nnz) < self.cfg.input_keep)
        x.data = np.where(x.indices < self.n_tracks, self.track_weight, self.artist_weight).astype(np.float32) * keep
        x.eliminate_zeros()
        c = np.asarray(x[:, :self.n_tracks].sum(axis=1)).ravel().astype(np.float32)
        total = np.asarray(x.sum(axis=1)).ravel()  # rows sum to 1, as the autoencoder was trained
        x.data /= np.repeat(np.where(total > 0, total, 1.0), np.diff(x.indptr)).astype(np.float32)
        order = np.argsort(c > 0, kind="stable")  # title-only rows first: head_grad_ wants them as one block
        rows, x, c = rows[order], x[order], c[order]
        y = self.target[rows]
        pos_r = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(y.indptr))
        return _Batch(rows, x, c, int((c == 0).sum()), pos_r, y.indices.astype(np.int64))


def train_title_model(art: Artifacts, models: MMCFModels, out_dir: str | Path, cfg: TitleConfig,
                      device: str | torch.device = "auto", refit_from: str | Path | None = None) -> dict:
    """Train (or resume) the title model into out_dir/title_model.pt; returns a JSON-able summary.

    models: the frozen autoencoders (mmcf.predict.load_models); the `train_scheme` one is mixed
    in during training, all of them serve the validation lists. The title model's outputs are
    their dense vocabulary. refit_from: a title model folder selected on validation; then every
    playlist (training + validation) trains it for the updates kept there, without validation
    (pass the autoencoders refit the same way).
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
        cfg = dataclasses.replace(cfg, updates=selected_updates(distributed.broadcast_from_main(history), cfg))
    rows = np.flatnonzero(usable_title(train) & (np.diff(train.tracks.indptr) > 0))
    if rows.size == 0:
        raise PipelineError(f"{art.folder / 'train.npz'}: no training playlist has a usable title")
    fill = popularity_order(column_counts(train.tracks))
    dense_train = models.dense.view(train)
    n_out = models.dense.n_items
    dae = models.models[cfg.train_scheme].forward_sparse
    key = _run_key(cfg, vocab, dae, dense_train)
    batches = _Batches(dense_train, rows, cfg, models.cfg.track_weight, models.cfg.artist_weight)
    chars_all = torch.from_numpy(np.ascontiguousarray(train.title_chars))

    bf16 = use_bf16(cfg.precision, dev)
    torch.manual_seed(cfg.seed)
    model = TitleModel(cfg, n_out)
    with torch.no_grad():  # start from popularity so the updates go to what the title adds
        f = np.clip(item_frequency(dense_train), 1e-6, 1 - 1e-6)
        model.dense.bias.copy_(torch.from_numpy(np.log(f / (1 - f)).astype(np.float32)))
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)  # fused: a third of foreach's time on CPU
    distributed.broadcast_params(model)
    encoder = distributed.wrap_ddp(model.encoder, dev)
    validated = val is not None and len(val) > 0
    log.info("title model (%s, %d outputs, %s) on %d titled training playlists, %s, %d updates on %s",
             cfg.arch, n_out, "bf16" if bf16 else "fp32", rows.size,
             f"{len(val)} validation playlists (categories {cfg.select_categories})" if val is not None
             else "refit without validation", cfg.updates, dev)
    periods: dict = {}  # the current period's batches

    def step(u: int) -> float:
        """Update u; each period of eval_every updates draws its batches and dropout from its own
        seeds, so a run resumed at a check draws what an uninterrupted one would."""
        period = u // cfg.eval_every
        if u % cfg.eval_every == 0:
            torch.manual_seed(cfg.seed * 1_000_003 + period + 1)  # dropout stream of this period
            periods.clear()
            periods[period] = iter(batches.period(period, min(cfg.eval_every, cfg.updates - u)))
        return _step(model, encoder, opt, dae, chars_all, next(periods[period]), cfg, dev, bf16)

    loop = trainer.Loop(cfg.updates, cfg.eval_every, "title model", out_dir / CHECKPOINT_FILE, key,
                        patience=cfg.patience)
    model.train()
    selection = trainer.run(loop, model, [opt], step, (lambda: {"r_precision": _validate(
        model, val, vocab, models, fill, cfg, dev)}) if validated else None, trainer.Selection())
    if distributed.is_main():
        with atomic_path(out_dir / MODEL_FILE) as tmp:
            torch.save({"config": to_dict(cfg), "n_out": n_out, "fingerprint": vocab.fingerprint,
                        "state": selection.best_state, "val_r_precision": selection.best}, tmp)
    history = selection.history
    summary = {"arch": cfg.arch, "checks": len(history), "updates": history[-1]["update"] if history else 0,
               "best_val_r_precision": selection.best if math.isfinite(selection.best) else None,
               "train_playlists": int(rows.size), "refit": refit_from is not None,
               "train_seconds": round(selection.train_seconds, 2), "history": history}
    if distributed.is_main():
        write_json(out_dir / HISTORY_FILE, summary)
    return summary


def selected_updates(history: dict, cfg: TitleConfig) -> int:
    """Updates up to the best validation check of a selected run (the configured budget when
    nothing was scored)."""
    best = trainer.best_update(history.get("history", []))
    return cfg.updates if best is None else best


def read_history(folder: str | Path) -> dict:
    """A title model run's history.json; one written before the shared trainer counted "updates"
    where checks now record "update"."""
    summary = read_json(Path(folder) / HISTORY_FILE)
    summary["history"] = [h if "update" in h else {**h, "update": h["updates"]} for h in summary.get("history", [])]
    return summary


def load_title_model(out_dir: str | Path, device: str | torch.device = "cpu",
                     expect_fingerprint: str | None = None) -> TitleModel:
    """The selected title model from out_dir, in eval mode, refusing another vocabulary's model."""
    path = Path(out_dir) / MODEL_FILE
    if not path.exists():
        raise PipelineError(f"{path}: missing; train the title model first (python -m charcnn)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        cfg = TitleConfig(**{k: v for k, v in blob["config"].items()})
        model = TitleModel(cfg, int(blob["n_out"]))
        model.load_state_dict(blob["state"])
    except (RuntimeError, KeyError, TypeError, EOFError) as exc:
        raise PipelineError(f"{path}: not a title model file ({exc})") from None
    if expect_fingerprint is not None and blob["fingerprint"] != expect_fingerprint:
        raise PipelineError(f"{path}: trained on vocabulary {blob['fingerprint']}, artifacts have "
                            f"{expect_fingerprint}; retrain the title model")
    return model.to(resolve_device(device)).eval()


def _dropout_noise(n_rows: int, model: TitleModel) -> torch.Tensor | None:
    """The title vector's dropout noise for a whole global batch, from the global CPU generator.
    On one CPU process this is exactly nn.Dropout's draw; drawing it for the whole batch and
    slicing gives every process count the same masks (None: no dropout)."""
    p = model.dropout.p
    if p == 0:
        return None
    return torch.empty(n_rows, model.encoder.out_dim).bernoulli_(1 - p).div_(1 - p)


def _step(model: TitleModel, encoder: torch.nn.Module, opt: torch.optim.Optimizer, dae: DaeFn,
          chars_all: torch.Tensor, batch: _Batch, cfg: TitleConfig, dev: torch.device, bf16: bool = False) -> float:
    """One Adam update on this process's shard of the global batch: autograd through the encoder
    (under DDP with several processes), the dense layer's gradient by hand; returns the global
    batch's loss. bf16: the dense layer's three matmuls in bfloat16 (the loss and its gradient, and
    the accumulated weights, stay float32). Measured per update at 42K outputs on 2 cores, casts
    included: 111 ms fp32, 45 ms bf16 on an AMD EPYC with AVX-512 BF16; on a 2-core AMX CPU an
    earlier session found the casts cost what the matmuls saved, so `precision` decides."""
    noise = _dropout_noise(len(batch.rows), model)
    lo, hi = distributed.shard(len(batch.rows))
    share = (hi - lo) / len(batch.rows)
    b = batch.rows_between(lo, hi)
    w_t = torch.from_numpy(1.0 / (1.0 + b.c)).to(dev)  # every training playlist has a title: u = 1
    hd = encoder(chars_all[b.rows].to(dev))
    if noise is not None:
        hd = hd * noise[lo:hi].to(dev)
    dense = model.dense
    dt = torch.bfloat16 if bf16 else torch.float32
    w, h = dense.weight.detach().to(dt), hd.detach().to(dt)
    z = torch.addmm(dense.bias.detach().to(dt), h, w.t()).float()
    d = None
    if b.n_plain < len(b.rows):
        d = dae(b.x[b.n_plain:]).to(dev, torch.float32)
    loss = head_grad_(z, b.n_plain, d, w_t, 1.0 - w_t, torch.from_numpy(b.pos_r).to(dev),
                      torch.from_numpy(b.pos_c).to(dev), cfg.neg_weight)
    if share != 1.0:
        z.mul_(share)  # this shard's part of the gradient of the global batch's mean
    opt.zero_grad(set_to_none=True)
    dense.bias.grad = z.sum(dim=0)
    g = z.to(dt)
    dense.weight.grad = torch.mm(g.t(), h).float()
    hd.backward(torch.mm(g, w).float())  # under DDP this also sums the encoder's gradients over the processes
    distributed.all_reduce_grads(dense.parameters())
    opt.step()
    return distributed.all_reduce_loss(loss, share)


def _validate(model: TitleModel, val: PlaylistSet, vocab: Vocab, models: MMCFModels, fill: np.ndarray,
              cfg: TitleConfig, dev: torch.device) -> float:
    """Mean R-precision of the mixed lists over the selection categories (the trainer calls it, in
    eval mode, only when there are validation playlists)."""
    ids, _ = mmcf_lists(val, model, models, vocab, fill, batch=cfg.predict_batch, device=dev)
    per = list_metrics(ids, val, vocab.track_artist)
    return float(np.nan_to_num(summarize(per, np.asarray(val.category))["r_precision"]))


def _run_key(cfg: TitleConfig, vocab: Vocab, dae: DaeFn, train: PlaylistSet) -> str:
    """Identifies what a checkpoint was trained on: config, vocabulary, training set size and the
    frozen autoencoder (through its output on a fixed probe), so a resume never mixes two runs."""
    probe = sp.hstack([train.tracks[:4], train.artists[:4]], format="csr").astype(np.float32)
    probe.data[:] = 1.0 / np.repeat(np.maximum(np.diff(probe.indptr), 1), np.diff(probe.indptr))
    with torch.no_grad():
        out = dae(probe).detach().cpu().numpy().astype(np.float32)
    h = hashlib.sha256(repr(sorted(to_dict(cfg).items())).encode() + vocab.fingerprint.encode()
                       + str(len(train)).encode())
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
