"""The MLP of Bengio et al. 2003 ("A Neural Probabilistic Language Model"), twice:

- `mlp`: as the essay first writes it, every tensor drawn from N(0, 1). The three
  init bugs (exploded initial loss, saturated tanh, no gain) are kept on purpose:
  they are what the next model fixes and what `diagnose` measures.
- `mlp-bn`: the same network with Kaiming init (gain 5/3 for tanh), the output
  layer scaled down, and batch normalisation of the hidden pre-activations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import BatchNorm, kaiming_
from .registry import register


@dataclass
class MLPConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 3  # T: how many previous characters the model sees
    n_embd: int = 10  # E: size of each character's embedding (a row of C)
    n_hidden: int = 200  # H: tanh units in the hidden layer


@register("mlp", config=MLPConfig, essay_val_nll=2.10,
          mechanism="3-char context, 10-d embedding, 200 tanh hidden")
class MLP(nn.Module):
    """emb = C[idx]; h = tanh(flatten(emb) @ W1 + b1); logits = h @ W2 + b2, naive N(0, 1) init."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        V, T, E, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))  # character embedding table
        self.W1 = nn.Parameter(torch.randn(T * E, H))
        self.b1 = nn.Parameter(torch.randn(H))
        self.W2 = nn.Parameter(torch.randn(H, V))
        self.b2 = nn.Parameter(torch.randn(V))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B = idx.shape[0]
        emb = self.C[idx]  # (B, T, E)
        h = torch.tanh(emb.view(B, -1) @ self.W1 + self.b1)  # (B, H)
        logits = h @ self.W2 + self.b2  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


@dataclass
class MLPBNConfig(MLPConfig):
    output_scale: float = 0.01  # W2 starts this small so the initial logits are near 0: loss ≈ -log(1/V)
    bn_momentum: float = 0.1  # weight of each batch in BatchNorm's running statistics


@register("mlp-bn", config=MLPBNConfig, essay_val_nll=2.05,
          mechanism="same + Kaiming init + batch norm")
class MLPBN(nn.Module):
    """h = tanh(BN(flatten(C[idx]) @ W1)); logits = h @ W2 + b2, Kaiming-initialised.

    W1 has no bias: BatchNorm subtracts the batch mean, which would cancel it; BN's own bias takes its place.
    """

    def __init__(self, config: MLPBNConfig):
        super().__init__()
        self.config = config
        V, T, E, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        self.W1 = nn.Parameter(kaiming_(torch.empty(T * E, H), fan_in=T * E))
        self.bn = BatchNorm(H, momentum=config.bn_momentum)
        self.W2 = nn.Parameter(torch.randn(H, V) * config.output_scale)
        self.b2 = nn.Parameter(torch.zeros(V))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B = idx.shape[0]
        emb = self.C[idx]  # (B, T, E)
        hpreact = self.bn(emb.view(B, -1) @ self.W1)  # (B, H), normalised over the batch
        h = torch.tanh(hpreact)  # (B, H)
        logits = h @ self.W2 + self.b2  # (B, V)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss
