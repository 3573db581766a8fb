"""The denoising autoencoder over tracks + artists (SPEC section 2) and its hand-written training step.

Inputs are sparse (a playlist touches ~100 of 10^5..10^6 columns), so the encoder is an
EmbeddingBag sum over the input's nonzeros; only the [B, tracks + artists] output is dense.
The training step computes loss and gradients by hand instead of through autograd: the
gradient of the weighted cross-entropy w.r.t. the logits is 0.55 * sigmoid(z) everywhere
except at the few positives, so it overwrites the logits' buffer in place, and the big
[B, N] and [N, H] tensors are written once into reused buffers. That roughly triples the
updates a CPU run can afford, which is what the model's quality depends on. `reference_loss`
is the plain autograd formulation the tests check the hand-written gradients against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

_LOSS_CHUNK_ROWS = 64  # rows per softplus block: keeps the loss's temporaries small


@dataclass
class Bag:
    """A sparse input batch as EmbeddingBag arguments: row i is idx[offsets[i]:offsets[i+1]] with weights."""

    idx: torch.Tensor  # int64 [nnz] item columns
    offsets: torch.Tensor  # int64 [B] start of each row in idx
    weights: torch.Tensor  # float32 [nnz]
    n_rows: int

    @staticmethod
    def from_csr(x: sp.csr_matrix, device: torch.device | str = "cpu") -> "Bag":
        x = x.tocsr()
        return Bag(idx=torch.from_numpy(x.indices.astype(np.int64)).to(device),
                   offsets=torch.from_numpy(x.indptr[:-1].astype(np.int64)).to(device),
                   weights=torch.from_numpy(x.data.astype(np.float32)).to(device), n_rows=x.shape[0])

    def row_of_entry(self) -> torch.Tensor:
        """The batch row of every nonzero, for scattering per-row gradients back to the entries."""
        counts = torch.diff(self.offsets, append=self.offsets.new_tensor([self.idx.numel()]))
        return torch.repeat_interleave(torch.arange(self.n_rows, device=self.idx.device), counts)


@dataclass
class Target:
    """The positives (y = 1) of a batch: coordinates into the [B, N] output."""

    rows: torch.Tensor  # int64 [npos]
    cols: torch.Tensor  # int64 [npos]


class DAE(nn.Module):
    """One hidden layer of sigmoid units between a sparse input and a sigmoid output over tracks + artists.

    Tied: the decoder weight is the encoder weight `W` itself (one parameter). Untied: a second
    parameter `W_dec`, created by `untied_copy` from the tied weights.
    """

    def __init__(self, n_items: int, n_tracks: int, hidden: int = 256, tied: bool = True) -> None:
        super().__init__()
        self.n_items, self.n_tracks, self.hidden = n_items, n_tracks, hidden
        self.W = nn.Parameter(torch.empty(n_items, hidden))  # row i: item i's encoder (and tied decoder) weights
        self.b_enc = nn.Parameter(torch.zeros(hidden))
        self.W_dec = nn.Parameter(torch.empty(n_items, hidden)) if not tied else None
        self.b_dec = nn.Parameter(torch.zeros(n_items))
        self._buffers_cache: dict[str, torch.Tensor] = {}

    @classmethod
    def from_state(cls, state: dict, n_items: int, n_tracks: int, hidden: int, tied: bool,
                   device: torch.device | str = "cpu") -> "DAE":
        """A trained model ready to score: the one way training (its kept epoch) and prediction load weights.
        The model holds `state`'s tensors themselves (on the CPU; no copy): at 1M playlists a copy
        is gigabytes held beside the loaded file. The caller leaves `state` unchanged."""
        model = cls(n_items, n_tracks, hidden, tied=tied)
        model.load_state_dict(state, assign=True)
        return model.to(device).eval()

    @property
    def tied(self) -> bool:
        return self.W_dec is None

    def init_weights(self, generator: torch.Generator, item_freq: np.ndarray | None = None) -> None:
        """Glorot-uniform weights; the output bias starts at the log-odds of each item's training
        frequency so that the first updates are spent on co-occurrence, not on learning popularity."""
        bound = float(np.sqrt(6.0 / (self.n_items + self.hidden)))
        with torch.no_grad():
            self.W.copy_(torch.rand(self.W.shape, generator=generator) * 2 * bound - bound)
            self.b_enc.zero_()
            if item_freq is not None:
                f = np.clip(np.asarray(item_freq, dtype=np.float64), 1e-6, 1 - 1e-6)
                self.b_dec.copy_(torch.from_numpy(np.log(f / (1 - f)).astype(np.float32)))
            if self.W_dec is not None:
                self.W_dec.copy_(self.W)

    def init_principal(self, directions: np.ndarray, row_norm: float) -> None:
        """Start W in the principal subspace of the inputs: `directions` [n_items, hidden] with
        orthonormal columns, scaled to an RMS row norm of `row_norm`. The output bias is shifted so
        that the output for an average input is still the items' training frequency.

        Why: with row-normalised inputs the hidden pre-activation is an average of W rows, so a
        random W tells playlists apart only once its rows have aligned and grown; from Glorot
        weights that takes ~600 updates at lr 0.03 on 20K playlists. Rows of co-occurring items
        are already aligned here, so training starts where that plateau would have ended.
        """
        scale = row_norm / np.sqrt(self.hidden / self.n_items)
        with torch.no_grad():
            self.W.copy_(torch.from_numpy(np.ascontiguousarray(directions, dtype=np.float32)) * scale)
            self.b_dec.sub_(self.W @ torch.sigmoid(self.b_enc))
            if self.W_dec is not None:
                self.W_dec.copy_(self.W)

    def untied_copy(self) -> "DAE":
        """An untied model computing exactly what this tied one computes (W_dec starts as W)."""
        out = DAE(self.n_items, self.n_tracks, self.hidden, tied=False).to(self.W.device)
        with torch.no_grad():
            out.W.copy_(self.W)
            out.W_dec.copy_(self.W if self.tied else self.W_dec)
            out.b_enc.copy_(self.b_enc)
            out.b_dec.copy_(self.b_dec)
        return out

    @property
    def decoder_weight(self) -> torch.Tensor:
        return self.W if self.W_dec is None else self.W_dec

    def hidden_units(self, bag: Bag) -> torch.Tensor:
        pre = F.embedding_bag(bag.idx, self.W, bag.offsets, mode="sum", per_sample_weights=bag.weights)
        return torch.sigmoid(pre + self.b_enc)

    def logits(self, bag: Bag) -> torch.Tensor:
        """[B, n_items] pre-sigmoid outputs (inference: no dropout)."""
        return torch.addmm(self.b_dec, self.hidden_units(bag), self.decoder_weight.t())

    def forward_sparse(self, x: sp.csr_matrix) -> torch.Tensor:
        """Output probabilities [B, tracks + artists] for a prepared input block (see predict.encode_inputs)."""
        with torch.no_grad():
            return torch.sigmoid(self.logits(Bag.from_csr(x, self.W.device)))

    def reference_loss(self, bag: Bag, target: Target, neg_weight: float, mask: torch.Tensor) -> torch.Tensor:
        """The training loss through autograd (slow, for tests): hidden dropout given as a scaled 0/1 mask."""
        z = torch.addmm(self.b_dec, self.hidden_units(bag) * mask, self.decoder_weight.t())
        y = torch.zeros_like(z)
        y[target.rows, target.cols] = 1.0
        return weighted_bce_with_logits(z, y, neg_weight)

    def dropout_mask(self, n_rows: int, keep: float, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand((n_rows, self.hidden), generator=generator, device=self.W.device)
        return (u < keep).float() / keep

    def loss_and_grad(self, bag: Bag, target: Target, neg_weight: float, mask: torch.Tensor,
                      bf16: bool = False, with_loss: bool = True) -> float:
        """One training step: sets .grad of every parameter (no autograd graph); returns the loss
        (NaN when with_loss is False: the exact loss is a full softplus pass, so callers sample it).

        z = h W_dec^T + b_dec with h = dropout(sigmoid(x W + b_enc)). dL/dz = neg_weight * G / B
        with G = sigmoid(z) at negatives and (sigmoid(z) - 1) / neg_weight at the positives, so G is
        written over the logits' buffer in place and every decoder gradient is one dense matmul.
        bf16 runs those matmuls in bfloat16 (fast on AMX CPUs and recent GPUs); the loss, the
        sparse parts and the accumulated gradients stay in float32.
        """
        n_rows, n_items = bag.n_rows, self.n_items
        dt = torch.bfloat16 if bf16 else torch.float32
        with torch.no_grad():
            h = self.hidden_units(bag)
            hd = h * mask
            w_dec = self.decoder_weight.detach().to(dt)
            z = self._buffer("z", (n_rows, n_items), dt)
            torch.addmm(self.b_dec.detach().to(dt), hd.to(dt), w_dec.t(), out=z)

            zp = z[target.rows, target.cols].float()
            loss = float("nan")
            if with_loss:
                neg_part = sum(F.softplus(z[i:i + _LOSS_CHUNK_ROWS].float()).sum(dtype=torch.float64)
                               for i in range(0, n_rows, _LOSS_CHUNK_ROWS))
                pos_part = (F.softplus(-zp) - neg_weight * F.softplus(zp)).sum(dtype=torch.float64)
                loss = float((neg_weight * neg_part + pos_part) / n_rows)

            g = z.sigmoid_()
            g[target.rows, target.cols] = ((torch.sigmoid(zp) - 1.0) / neg_weight).to(dt)
            a = neg_weight / n_rows

            g_hd = torch.mm(g, w_dec).float().mul_(a)
            g_wdec = self._buffer("g_wdec", (n_items, self.hidden), torch.float32)
            if bf16:
                g_wdec.copy_(torch.mm(g.t(), (hd * a).to(dt)))
            else:
                torch.mm(g.t(), hd * a, out=g_wdec)
            g_bdec = g.sum(0).float().mul_(a)  # bf16 sums accumulate in float32; converting g first costs a pass

            g_pre = g_hd.mul_(mask).mul_(h * (1.0 - h))
            g_enc_rows = bag.weights[:, None] * g_pre[bag.row_of_entry()]
            if self.tied:
                self.W.grad = g_wdec.index_put_((bag.idx,), g_enc_rows, accumulate=True)  # rows repeat across the batch's inputs
            else:
                g_w = self._buffer("g_w", (n_items, self.hidden), torch.float32).zero_()
                self.W.grad = g_w.index_put_((bag.idx,), g_enc_rows, accumulate=True)
                self.W_dec.grad = g_wdec
            self.b_enc.grad = g_pre.sum(0)
            self.b_dec.grad = g_bdec
        return loss

    def sampled_loss_and_grad(self, bag: Bag, target: Target, neg_weight: float, mask: torch.Tensor,
                              cols: torch.Tensor, col_scale: torch.Tensor, n_whole: int, bf16: bool = False,
                              with_loss: bool = True) -> float:
        """The CPU training step: `loss_and_grad` with the [B, N] output replaced by a few thousand of
        its columns and a rank-one stand-in for the rest; returns the loss estimate (NaN when
        with_loss is False).

        cols[:n_whole] are taken whole: every positive of the batch and the most frequent items
        (target.cols index into them). Every other column j enters through its mean field: each
        row's sigmoid(z_ij) is taken as s_j = sigmoid(w_j . mean_i(h_i) + b_j), whose gradient is
        one product over the rows' sum. cols[n_whole:] are draws from those columns, col_scale
        (times drawn / (K p_j) for K draws of probability p_j) weighing each one's correction sigmoid(z_ij) - s_j,
        so the gradient is an unbiased estimate of the full loss's with a small variance.
        Why not the draws alone: Adam moves every row of the full model each update, however small
        its gradient, and rows that only a draw reached now and then fell behind (0.03 against
        0.09 validation R-precision after one epoch at 20K playlists, the draws or not). The cost
        per update is a few passes over the [N, hidden] weights (Adam makes them anyway), not the
        full loss's [B, N] products; prediction still scores every output unit.
        """
        n_rows = bag.n_rows
        dt = torch.bfloat16 if bf16 else torch.float32
        with torch.no_grad():
            h = self.hidden_units(bag)
            hd = h * mask
            b_all = self.b_dec.detach()
            w_all = self.decoder_weight.detach()
            if bf16:  # one conversion pass, then both mean-field products and the gather read half the bytes
                w_all = self._buffer("w_dt", w_all.shape, dt).copy_(w_all)
            z_mean = torch.mv(w_all, hd.mean(0).to(dt)).float().add_(b_all)  # every column's logit at the batch's mean hidden vector
            mean_field = torch.sigmoid(z_mean)
            rest = mean_field.clone()
            rest[cols[:n_whole]] = 0.0
            w_dt = w_all[cols]
            z = torch.addmm(b_all[cols].to(dt), hd.to(dt), w_dt.t()).float()
            zp = z[target.rows, target.cols]
            drawn = slice(n_whole, None)
            loss = float("nan")
            if with_loss:
                plain = F.softplus(z_mean)
                plain[cols[:n_whole]] = 0.0
                neg = (F.softplus(z[:, :n_whole]).sum(dtype=torch.float64) - F.softplus(zp).sum(dtype=torch.float64)
                       + n_rows * plain.sum(dtype=torch.float64)
                       + ((F.softplus(z[:, drawn]) - plain[cols[drawn]]) * col_scale[drawn]).sum(dtype=torch.float64))
                loss = float((neg_weight * neg + F.softplus(-zp).sum(dtype=torch.float64)) / n_rows)
            a = neg_weight / n_rows
            g = z.sigmoid_()
            g[:, drawn] = (g[:, drawn] - mean_field[cols[drawn]]) * col_scale[drawn]
            g[target.rows, target.cols] = (torch.sigmoid(zp) - 1.0) / neg_weight
            g_dt = g.to(dt)
            g_hd = torch.mm(g_dt, w_dt).float().add_(torch.mv(w_all.t(), rest.to(dt)).float()).mul_(a)
            g_wdec = torch.mm(g_dt.t(), (hd * a).to(dt)).float()
            g_pre = g_hd.mul_(mask).mul_(h * (1.0 - h))
            enc_vals = bag.weights[:, None] * g_pre[bag.row_of_entry()]
            g_rest = self._buffer("g_rest", (self.n_items, self.hidden), torch.float32)
            torch.mul(rest[:, None], (hd * a).sum(0)[None, :], out=g_rest)  # the mean field's decoder gradient
            g_rest.index_add_(0, cols, g_wdec)
            self.b_dec.grad = (rest * (a * n_rows)).index_add_(0, cols, g.sum(0).mul_(a))
            if self.tied:
                self.W.grad = g_rest.index_add_(0, bag.idx, enc_vals)
            else:
                self.W.grad = self._buffer("g_w", (self.n_items, self.hidden), torch.float32).zero_()
                self.W.grad.index_add_(0, bag.idx, enc_vals)
                self.W_dec.grad = g_rest
            self.b_enc.grad = g_pre.sum(0)
        return loss

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A tensor reused across steps: allocating ~50 MB blocks anew each step costs page faults."""
        buf = self._buffers_cache.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != self.W.device:
            buf = torch.empty(shape, dtype=dtype, device=self.W.device)
            self._buffers_cache[name] = buf
        return buf


def weighted_bce_with_logits(z: torch.Tensor, y: torch.Tensor, neg_weight: float) -> torch.Tensor:
    """-sum[y log p + neg_weight (1 - y) log(1 - p)] per row, batch mean; p = sigmoid(z).

    Stable form: -log p = softplus(-z), -log(1 - p) = softplus(z).
    """
    per_row = (y * F.softplus(-z) + neg_weight * (1.0 - y) * F.softplus(z)).sum(dim=1)
    return per_row.mean()
