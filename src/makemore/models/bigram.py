"""The two bigram models of the essay: counting, and the same model found by gradient descent.

Both predict the next character from the previous one only, so they look at the
last index of the context window (block_size 1). With labels (`makemore.data.labels`) that index
carries its item's label too: label * V + character.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import LabelEmbedding, cross_entropy, embed, split_labels
from .registry import register


@dataclass
class BigramCountsConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 1  # context length; a bigram sees one character
    smoothing: float = 1.0  # added to every count ("+1 smoothing") so no bigram has probability 0
    n_labels: int = 1  # labels the items carry (makemore.data.labels): one count table per label; 1 = unlabelled
    prior_weight: float = 0.0  # a run started from another (init_from): the base's counts, times this, rounded,
    # added to every label's own when counting; chosen on val (training.init_from.choose_prior_weight). 0: none


@register("bigram-counts", config=BigramCountsConfig, essay_val_nll=2.45,
          mechanism="V×V count matrix, +1 smoothing")
class BigramCounts(nn.Module):
    """N[i, j] = how often character j follows character i in the training data; P = rows of N + k, normalised.

    With labels, one table N_l per label, and where a label's row is thin it backs off to the other
    labels' counts: P_l(j | i) = (N_l[i, j] + kV * Q_l(j | i)) / (N_l[i] + kV), where Q_l is the +k smoothed
    table of every other label's counts pooled. kV pseudo-counts, as many as +k smoothing adds, spread as the
    other labels spread them instead of evenly: a label that has seen row i often keeps its own counts, one
    that has barely seen it borrows the rest's. With one label there is no other label: Q is uniform, k / kV,
    and P is the essay's +k smoothing exactly.
    """

    trainable = False  # fitted by counting (`fit`), not by gradient descent

    def __init__(self, config: BigramCountsConfig):
        super().__init__()
        self.config = config
        V = config.vocab_size
        # (n_labels * V, V): row label * V + i holds label's counts after character i
        self.register_buffer("counts", torch.zeros((config.n_labels * V, V), dtype=torch.int64))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Count every (previous, next) pair at once: bincount over the flattened pair index."""
        V, L = self.config.vocab_size, self.config.n_labels
        pair = x[:, -1].long() * V + y.long()  # the previous index carries the label: one table per label
        counts = torch.bincount(pair, minlength=L * V * V).view(L, V, V)
        prior = getattr(self, "prior", None)
        if prior is not None and self.config.prior_weight > 0:  # whole counts, so the table stays one of counts
            counts = counts + (prior.to(counts.device).double() * self.config.prior_weight).round().long()
        self.counts.copy_(counts.view(L * V, V))

    def set_prior(self, base: "BigramCounts", char_map: list[int]) -> None:
        """The base's counts, pooled over its labels, in this model's characters (char_map[i]: the base index of
        character i, -1 for one the base lacks): not saved, only counted in by `fit` (config.prior_weight)."""
        Vb = base.config.vocab_size
        pooled = base.counts.view(-1, Vb, Vb).sum(dim=0)  # (Vb, Vb)
        mapped = torch.tensor(char_map)
        known = torch.nonzero(mapped >= 0).squeeze(1)  # this model's characters the base has
        prior = torch.zeros(self.config.vocab_size, self.config.vocab_size, dtype=torch.int64)
        prior[known[:, None], known[None, :]] = pooled[mapped[known][:, None], mapped[known][None, :]]
        self.register_buffer("prior", prior, persistent=False)

    def prior_total(self) -> int:
        """How many bigrams the prior counted (0 without one)."""
        prior = getattr(self, "prior", None)
        return 0 if prior is None else int(prior.sum())

    def probs(self) -> torch.Tensor:
        """(n_labels * V, V) float32: row label * V + i is P_l(next | i)."""
        V, L, k = self.config.vocab_size, self.config.n_labels, self.config.smoothing
        N = self.counts.double().view(L, V, V)  # (L, V, V)
        others = N.sum(dim=0) - N  # (L, V, V): every other label's counts
        # kV * Q_l, written so that with no other counts it is k * 1.0 = k exactly (+k smoothing, bit for bit)
        prior = (others + k) * (k * V / (others.sum(dim=2, keepdim=True) + k * V))  # (L, V, V)
        P = N + prior
        return (P / P.sum(dim=2, keepdim=True)).float().view(L * V, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.probs().log()[idx[:, -1].long()]  # (B, V): log P[prev], already normalised
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss


@dataclass
class BigramNNConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 1  # context length; a bigram sees one character
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


@register("bigram-nn", config=BigramNNConfig, essay_val_nll=2.46,
          mechanism="one-hot → V logits, softmax, gradient descent")
class BigramNN(nn.Module):
    """logits = one_hot(prev) @ W; softmax(W) learns the row-normalised count matrix, W ≈ log N + const.

    With labels, each label adds its own learned vector of V logits: logits = W[prev] + b_label, a
    per-label shift of how likely each next character is, shared by every previous character.
    """

    def __init__(self, config: BigramNNConfig):
        super().__init__()
        self.config = config
        self.W = nn.Parameter(torch.randn(config.vocab_size, config.vocab_size))  # (V, V) log-counts to be
        self.label_bias = LabelEmbedding(config.n_labels, config.vocab_size)  # (n_labels, V) b_label

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        prev, label = split_labels(idx[:, -1], self.config.vocab_size, self.config.n_labels)  # (B,) each
        # one_hot(prev) @ W picks row prev of W; indexing is the same product without the zeros.
        logits = self.label_bias.add(embed(self.W, prev), label)  # (B, V): row prev of W (+ b_label)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss
