"""`wavenet` run over whole items at once: a causal dilated convolution (van den Oord et al. 2016, "WaveNet").

The windowed wavenet fuses the 8 characters before a target in pairs (dilation 1), pairs of
pairs (2), then (4). Sliding that tree along an item is a stack of causal convolutions of kernel
size 2 and dilations 1, 2, 4: level k joins position p with position p + 2^k. Left-padding each
item [0] + chars with block_size - 1 more boundary tokens makes position t see exactly the
window the windowed model sees for the same target, so with the same weights (same parameters,
same state-dict keys: a `wavenet` run loads into it) the two give the same logits in eval mode.
The tree's inner nodes are shared by neighbouring targets: each is computed once per item.

In train mode BatchNorm's statistics are over every position of the batch (padding included),
not over the windows' tree nodes, so training differs a little from the windowed model's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layers import cross_entropy, embed
from .registry import register
from .wavenet import WaveNet, WaveNetConfig


@register("wavenet-conv", config=WaveNetConfig, layout="sequence",
          mechanism="wavenet as a causal dilated conv over whole items")
class WaveNetConv(WaveNet):
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = self.config.block_size
        x = embed(self.C, F.pad(idx.long(), (T - 1, 0), value=0))  # (B, T-1+L, E): T-1 more boundaries in front
        dilation = 1
        for level in self.levels:  # each level is one position shorter per step of dilation
            x = level.fuse(torch.cat([x[:, :-dilation], x[:, dilation:]], dim=-1))  # (B, L', 2C) -> (B, L', H)
            dilation *= 2
        logits = self.out(x)  # (B, L, V): T-1 = 1 + 2 + 4 + ... positions consumed, L left
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss
