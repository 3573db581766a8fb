"""The sequence source's network, training and scoring (sources/sequence.py says what it is); torch
lives here so that reading the registry does not import it."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common import trainer
from common.config import from_dict
from common.device import resolve_device, torch_threads
from common.errors import PipelineError
from common.io import atomic_path
from common.metrics import list_metrics, validation_rows
from common.sparse import column_counts, popularity_order
from common.topk import batched_topk, fill_from_order
from mmcf.dense import DenseVocab, choose
from preprocess.artifacts import PlaylistSet
from sources._sequence_data import SequenceConfig, crops, sequences
from sources.base import FitContext

log = logging.getLogger("sequence")
FILE = "sequence.pt"


class SequenceNet(nn.Module):
    """Track ids (1..n_items, 0 = padding) -> a state per position; scores are state . embedding."""

    def __init__(self, n_items: int, cfg: SequenceConfig):
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0, sparse=True)  # an update touches few rows
        nn.init.normal_(self.emb.weight, std=cfg.dim ** -0.5)
        with torch.no_grad():
            self.emb.weight[0].zero_()
        self.drop = nn.Dropout(cfg.dropout)
        self.arch = cfg.arch
        if cfg.arch == "gru":
            self.rnn = nn.GRU(cfg.dim, cfg.dim, batch_first=True)
        else:
            self.pos = nn.Embedding(cfg.max_len, cfg.dim)
            layer = nn.TransformerEncoderLayer(cfg.dim, nhead=2, dim_feedforward=2 * cfg.dim, dropout=cfg.dropout,
                                               batch_first=True, norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """seq int64 [B, L], right-padded with 0 -> states [B, L, dim]; a position sees only itself and
        the positions before it (padding comes after every real track, so it changes nothing)."""
        x = self.drop(self.emb(seq))
        if self.arch == "gru":
            out, _ = self.rnn(x)
        else:
            length = seq.shape[1]
            x = x + self.pos(torch.arange(length, device=seq.device))[None]
            causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), 1)
            out = self.blocks(x, mask=causal)
        return self.norm(out)

    def scores(self, states: torch.Tensor) -> torch.Tensor:
        """[B, dim] states -> [B, n_items] scores of every track (dense id order)."""
        return states @ self.emb.weight[1:].t()


class SequenceModel:
    """A fitted sequence source (sources/base.py's contract): its lists, save and selected."""

    def __init__(self, net: SequenceNet, dense: DenseVocab, cfg: SequenceConfig, selected: dict,
                 popularity: np.ndarray, device: torch.device):
        self.net, self.dense, self.cfg, self.selected = net.eval(), dense, cfg, selected
        self.popularity, self.device = popularity, device
        # playlists without a known seed: popularity, scaled below any model score's spread
        self.cold_scores = (popularity / max(float(popularity.max(initial=0.0)), 1.0))[dense.tracks]
        self.fill_order = popularity_order(popularity)  # short lists are filled in this order

    def top(self, ps: PlaylistSet, k: int) -> tuple[np.ndarray, np.ndarray]:
        view = self.dense.view(ps)
        indptr, items = sequences(view)
        cold = np.diff(indptr) == 0

        def score(rows: np.ndarray) -> np.ndarray:
            seq = torch.from_numpy(crops(indptr, items, rows, self.cfg.max_len, None, last=True)).to(self.device)
            last = (seq > 0).sum(dim=1).clamp_min(1) - 1
            with torch.no_grad():
                states = self.net(seq)[torch.arange(len(rows), device=self.device), last]
                out = self.net.scores(states).float().cpu().numpy()
            out[cold[rows]] = self.cold_scores[None, :]
            return out

        ids, scores = batched_topk(score, view.tracks, k)
        ids = self.dense.catalogue_ids(ids)
        listed = scores[ids >= 0]
        below = np.float32(listed.min() - 1.0) if listed.size else np.float32(0.0)  # filled slots rank last
        fill_from_order(ids, scores, ps.tracks, self.fill_order, below)
        return ids, scores

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        self.dense.save(folder)
        with atomic_path(folder / FILE) as tmp:
            torch.save({"state": self.net.state_dict(), "config": asdict(self.cfg), "selected": self.selected,
                        "popularity": torch.from_numpy(self.popularity)}, tmp)


def fit(train: PlaylistSet, settings: SequenceConfig, ctx: FitContext) -> SequenceModel:
    with torch_threads(settings.threads):
        return _train(train, settings, ctx, resolve_device(ctx.device))


def load(folder: Path, train: PlaylistSet, settings: SequenceConfig, ctx: FitContext) -> SequenceModel:
    path = Path(folder) / FILE
    if not path.exists():
        raise PipelineError(f"{path}: missing; run the sequence stage (python -m sources --source sequence)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    cfg = from_dict(SequenceConfig, blob["config"], f"{path} config")
    dense = DenseVocab.load(folder)
    net = SequenceNet(dense.n_tracks, cfg)
    net.load_state_dict(blob["state"])
    device = resolve_device(ctx.device)
    return SequenceModel(net.to(device), dense, cfg, blob["selected"], blob["popularity"].numpy(), device)


def _train(train: PlaylistSet, cfg: SequenceConfig, ctx: FitContext, device: torch.device) -> SequenceModel:
    """Budgeted Adam updates; with validation playlists the best check's weights are kept and their
    update count is `selected`, without them (a refit) `selected["updates"]` updates are trained."""
    updates = int(ctx.selected.get("updates", cfg.updates))
    per_item = cfg.dim * 4 * 3  # an embedding row and Adam's two moments, in fp32 (the gradient is sparse)
    dense = dataclasses.replace(choose(train, (1, 1), cfg.memory_mb, per_item, track_share=1.0),  # tracks only
                                artists=np.zeros(0, np.int32))
    popularity = column_counts(train.tracks).astype(np.float32)
    indptr, items = sequences(dense.view(train))
    rows = np.flatnonzero(np.diff(indptr) >= 2)  # a next track to predict
    if rows.size == 0:
        raise PipelineError("sequence: no training playlist has two tracks in the vocabulary")
    torch.manual_seed(cfg.seed)
    net = SequenceNet(dense.n_tracks, cfg).to(device)
    source = SequenceModel(net, dense, cfg, {}, popularity, device)  # what validation scores
    # the embedding's gradient is sparse (the batch's tracks and negatives), so its Adam state is updated
    # only there: an update costs the same for 20K or 2M tracks
    opts = [torch.optim.SparseAdam([net.emb.weight], lr=cfg.lr),
            torch.optim.Adam([p for n, p in net.named_parameters() if n != "emb.weight"], lr=cfg.lr)]
    cum, log_q = _negative_distribution(popularity[dense.tracks])
    noise = (cum, log_q.to(device))
    val_rows = None if ctx.val is None else validation_rows(  # title-only playlists get popularity: not scored
        ctx.val.category, (np.diff(ctx.val.tracks.indptr) > 0) & (ctx.val.n_holdouts > 0), None, cfg.val_playlists,
        cfg.seed)
    log.info("sequence (%s): %d tracks (in >= %d training playlists), %d training playlists, %d updates%s",
             cfg.arch, dense.n_tracks, dense.min_count, rows.size, updates,
             f", selection on {len(val_rows)} validation playlists" if val_rows is not None else ", refit")

    def step(u: int) -> float:
        rng = np.random.default_rng([cfg.seed, u])
        torch.manual_seed(cfg.seed * 1_000_003 + u)  # dropout of update u: a resumed run draws what a whole one does
        return _step(net, opts, crops(indptr, items, rng.choice(rows, cfg.batch), cfg.max_len, rng), noise,
                     cfg.negatives, rng, device)

    data = hashlib.sha1(indptr.tobytes() + items.tobytes()).hexdigest()  # the sequences trained on
    key = json.dumps({"cfg": asdict(cfg), "updates": updates, "data": data})
    checkpoint = Path(ctx.work) / "checkpoint.pt" if ctx.work is not None else None
    loop = trainer.Loop(updates, cfg.eval_every, f"sequence {cfg.arch}", checkpoint, key)
    net.train()
    checked = ctx.val.subset(val_rows) if val_rows is not None else None  # the same playlists every check
    validate = (lambda: {"r_precision": _validate(source, checked, ctx.track_artist)}) if checked is not None else None
    selection = trainer.run(loop, net, opts, step, validate, trainer.Selection())
    net.load_state_dict(selection.best_state)
    trainer.drop_checkpoints(checkpoint)
    best = trainer.best_update(selection.history)  # the kept check's update, when one was scored
    if ctx.selected:
        selected = dict(ctx.selected)
    elif best is None:
        selected = {"updates": updates}
    else:
        selected = {"updates": best, "val_r_precision": round(selection.best, 4)}
    log.info("sequence: %s; %.0f training playlists/s in update steps", selected,
             updates * cfg.batch / max(selection.train_seconds, 1e-9))
    return SequenceModel(net, dense, cfg, selected, popularity, device)


def _negative_distribution(counts: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """(cumulative probabilities, log-probabilities) of drawing each track as a negative: count^0.75,
    as word2vec draws its noise. Popular tracks are the hard negatives a next-track ranking must beat;
    the logQ correction below keeps the sampled softmax an estimate of the full one."""
    p = np.maximum(counts, 1.0) ** 0.75
    p /= p.sum()
    return np.cumsum(p), torch.from_numpy(np.log(p).astype(np.float32))


def _step(net: SequenceNet, opts: list, batch: np.ndarray, noise: tuple[np.ndarray, torch.Tensor], n_neg: int,
          rng: np.random.Generator, device: torch.device) -> float:
    """Next-track sampled softmax: every position predicts the next track against the batch's shared
    negatives, each logit less the log-probability of drawing that track (a negative that is the
    target itself is masked out)."""
    cum, log_q = noise
    seq = torch.from_numpy(batch).to(device)
    inputs, target = seq[:, :-1], seq[:, 1:]
    mask = target > 0
    states = net(inputs)[mask]  # [T, dim]
    target = target[mask]
    negs = torch.from_numpy(np.minimum(np.searchsorted(cum, rng.random(n_neg)), len(cum) - 1) + 1).to(device)
    pos = (states * net.emb(target)).sum(dim=1, keepdim=True) - log_q[target - 1][:, None]
    neg = states @ net.emb(negs).t() - log_q[negs - 1][None, :]
    neg = neg.masked_fill(negs[None, :] == target[:, None], float("-inf"))
    loss = F.cross_entropy(torch.cat([pos, neg], dim=1), torch.zeros(len(target), dtype=torch.long, device=device))
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in opts:
        opt.step()
    return float(loss.detach())


def _validate(source: SequenceModel, val: PlaylistSet, track_artist: np.ndarray) -> float:
    ids, _ = source.top(val, 500)
    return float(np.nanmean(list_metrics(ids, val, track_artist)["r_precision"]))


