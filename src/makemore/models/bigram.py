"""The two bigram models of the essay: counting, and the same model found by gradient descent.

Both predict the next character from the previous one only, so they look at the
last index of the context window (block_size 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import cross_entropy, embed
from .registry import register


@dataclass
class BigramCountsConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 1  # context length; a bigram sees one character
    smoothing: float = 1.0  # added to every count ("+1 smoothing") so no bigram has probability 0


@register("bigram-counts", config=BigramCountsConfig, essay_val_nll=2.45,
          mechanism="V×V count matrix, +1 smoothing")
class BigramCounts(nn.Module):
    """N[i, j] = how often character j follows character i in the training data; P = rows of N + k, normalised."""

    trainable = False  # fitted by counting (`fit`), not by gradient descent

    def __init__(self, config: BigramCountsConfig):
        super().__init__()
        self.config = config
        V = config.vocab_size
        self.register_buffer("counts", torch.zeros((V, V), dtype=torch.int64))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Count every (previous, next) pair at once: bincount over the flattened pair index."""
        V = self.config.vocab_size
        pair = x[:, -1].long() * V + y.long()
        self.counts.copy_(torch.bincount(pair, minlength=V * V).view(V, V))

    def probs(self) -> torch.Tensor:
        P = self.counts.double() + self.config.smoothing  # (V, V)
        return (P / P.sum(dim=1, keepdim=True)).float()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.probs().log()[idx[:, -1].long()]  # (B, V): log P[prev], already normalised
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss


@dataclass
class BigramNNConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 1  # context length; a bigram sees one character


@register("bigram-nn", config=BigramNNConfig, essay_val_nll=2.46,
          mechanism="one-hot → V logits, softmax, gradient descent")
class BigramNN(nn.Module):
    """logits = one_hot(prev) @ W; softmax(W) learns the row-normalised count matrix, W ≈ log N + const."""

    def __init__(self, config: BigramNNConfig):
        super().__init__()
        self.config = config
        self.W = nn.Parameter(torch.randn(config.vocab_size, config.vocab_size))  # (V, V) log-counts to be

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        # one_hot(prev) @ W picks row prev of W; indexing is the same product without the zeros.
        logits = embed(self.W, idx[:, -1])  # (B, V): row prev of W
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss
