"""Title encoders (character CNN, character LSTM) with one dense sigmoid layer to tracks + artists.

Both read `PlaylistSet.title_chars` (uint8 [B, 25], 0 = padding) so the model sees exactly the
characters the preprocessing kept; a title with no usable character is the caller's business
(the mixing gives it no weight), the model itself never divides by its length.
"""
from __future__ import annotations

import torch
from torch import nn

from charcnn.config import TitleConfig
from preprocess.titles import ALPHABET

N_CHARS = len(ALPHABET) + 1  # index 0 is padding


class CharCNN(nn.Module):
    """Embedding -> parallel convolutions (one per width) -> ReLU -> max over time -> concat."""

    def __init__(self, cfg: TitleConfig):
        super().__init__()
        self.embed = nn.Embedding(N_CHARS, cfg.embed_dim, padding_idx=0)
        # padding = width - 1 lets every width see titles shorter than itself
        self.convs = nn.ModuleList(nn.Conv1d(cfg.embed_dim, cfg.filters, w, padding=w - 1) for w in cfg.widths)
        self.out_dim = cfg.filters * len(cfg.widths)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        e = self.embed(chars.long()).transpose(1, 2)  # [B, E, L]
        return torch.cat([torch.relu(c(e)).amax(dim=2) for c in self.convs], dim=1)


class CharLSTM(nn.Module):
    """Bidirectional LSTM over the characters; the last state of each direction, concatenated."""

    def __init__(self, cfg: TitleConfig):
        super().__init__()
        self.embed = nn.Embedding(N_CHARS, cfg.embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.lstm_hidden, batch_first=True, bidirectional=True)
        self.out_dim = 2 * cfg.lstm_hidden

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        lengths = (chars > 0).sum(dim=1).clamp(min=1).cpu()  # titles are left-aligned
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(chars.long()), lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return torch.cat([h[0], h[1]], dim=1)


class TitleModel(nn.Module):
    """Title encoder + dropout + dense layer to every track and artist (logits; `probs` applies sigmoid)."""

    def __init__(self, cfg: TitleConfig, n_out: int):
        super().__init__()
        self.encoder = CharCNN(cfg) if cfg.arch == "cnn" else CharLSTM(cfg)
        self.dropout = nn.Dropout(1.0 - cfg.keep_prob)
        self.dense = nn.Linear(self.encoder.out_dim, n_out)
        self.n_out = n_out

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        return self.dense(self.dropout(self.encoder(chars)))

    @torch.no_grad()
    def probs(self, chars: torch.Tensor) -> torch.Tensor:
        """Sigmoid outputs [B, n_out] in eval mode (callers switch the module to eval first)."""
        return torch.sigmoid(self.forward(chars))
