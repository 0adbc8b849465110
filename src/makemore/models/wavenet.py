"""A WaveNet-style hierarchical model (after van den Oord et al. 2016, "WaveNet"), as the essay draws it.

Instead of flattening the whole context into one vector, adjacent positions are
fused in pairs, then pairs of pairs, and so on: with 8 characters, three levels
8 -> 4 -> 2 -> 1, each `(B, T/2, 2C) -> (B, T/2, C)` Linear + BatchNorm + tanh.

Labels (makemore.data.labels): each label's learned vector (E wide) is added to every character's
embedding before the first fusion, so every node of the tree sees the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import ParameterError
from .layers import BatchNorm, LabelEmbedding, cross_entropy, embed, kaiming_, split_labels
from .registry import register


@dataclass
class WaveNetConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 8  # T: context length; a power of 2, one fusion level per halving
    n_embd: int = 24  # E: size of each character's embedding
    n_hidden: int = 128  # H: width of every fusion level
    output_scale: float = 0.1  # the output layer starts small so the initial loss is near -log(1/V)
    bn_momentum: float = 0.1  # weight of each batch in BatchNorm's running statistics
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


class FuseLevel(nn.Module):
    """One level of the tree: concatenate neighbours in pairs, then Linear (no bias) + BatchNorm + tanh."""

    def __init__(self, n_in: int, n_out: int, bn_momentum: float):
        super().__init__()
        self.weight = nn.Parameter(kaiming_(torch.empty(2 * n_in, n_out), fan_in=2 * n_in))
        self.bn = BatchNorm(n_out, momentum=bn_momentum)
        self.act = nn.Tanh()  # a module, so diagnostics can hook it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return self.fuse(x.reshape(B, T // 2, 2 * C))  # (B, T/2, 2C): neighbours side by side -> (B, T/2, H)

    def fuse(self, pairs: torch.Tensor) -> torch.Tensor:
        """(..., 2C) pairs already side by side -> (..., H); `wavenet-conv` pairs them its own way."""
        if self.training:
            return self.act(self.bn(pairs @ self.weight))
        # eval: BatchNorm with its running statistics is an affine map, folded into the weight (one matmul
        # with a bias instead of a matmul and a pass of BatchNorm over the whole (..., H) tensor)
        scale = self.bn.gain / torch.sqrt(self.bn.running_var + self.bn.eps)  # (H,)
        shift = self.bn.bias - self.bn.running_mean * scale  # (H,)
        flat = pairs.reshape(-1, pairs.shape[-1])  # (N, 2C)
        return self.act(torch.addmm(shift, flat, self.weight * scale)).view(*pairs.shape[:-1], -1)  # (..., H)


@register("wavenet", config=WaveNetConfig, essay_val_nll=1.99,
          mechanism="hierarchical pairwise fusion, 8-char context")
class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig):
        super().__init__()
        T = config.block_size
        if T < 2 or T & (T - 1):
            raise ParameterError("block_size", f"must be a power of 2 (2, 4, 8, 16...) in a wavenet, got {T}")
        self.config = config
        V, E, H = config.vocab_size, config.n_embd, config.n_hidden
        n_levels = T.bit_length() - 1
        self.C = nn.Parameter(torch.randn(V, E))  # character embedding table
        self.label_emb = LabelEmbedding(config.n_labels, E)
        self.levels = nn.ModuleList(
            FuseLevel(E if i == 0 else H, H, config.bn_momentum) for i in range(n_levels)
        )
        self.out = nn.Linear(H, V)
        with torch.no_grad():
            self.out.weight.mul_(config.output_scale)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.embedding(idx)  # (B, T, E)
        for level in self.levels:
            x = level(x)  # (B, T/2, H), then T/4...
        logits = self.out(x.squeeze(1))  # (B, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    def embedding(self, idx: torch.Tensor) -> torch.Tensor:
        """Label-carrying indices (...) -> (..., E): C[char], plus the label's vector."""
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)
        return self.label_emb.add(embed(self.C, chars), labels)
