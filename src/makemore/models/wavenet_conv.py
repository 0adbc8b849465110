"""`wavenet` run over whole items at once: a causal dilated convolution (van den Oord et al. 2016, "WaveNet").

The windowed wavenet fuses the 8 characters before a target in pairs (dilation 1), pairs of
pairs (2), then (4). Sliding that tree along an item is a stack of causal convolutions of kernel
size 2 and dilations 1, 2, 4: level k joins position p with position p + 2^k. Left-padding each
item [0] + chars with block_size - 1 more boundary tokens makes position t see exactly the
window the windowed model sees for the same target, so with the same weights (same parameters,
same state-dict keys: a `wavenet` run loads into it) the two give the same logits in eval mode.
The tree's inner nodes are shared by neighbouring targets: each is computed once per item.

Labels (makemore.data.labels) enter as in `wavenet`; the boundaries padded in front carry the item's label
(its start token's), as the windows of a labelled run do.

In train mode BatchNorm's statistics are over every position of the batch (padding included),
not over the windows' tree nodes, so training differs a little from the windowed model's.
"""

from __future__ import annotations

import torch

from .layers import cross_entropy
from .registry import register
from .wavenet import WaveNet, WaveNetConfig


@register("wavenet-conv", config=WaveNetConfig, layout="sequence",
          mechanism="wavenet as a causal dilated conv over whole items")
class WaveNetConv(WaveNet):
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = self.config.block_size
        V = self.config.vocab_size
        start = idx[:, :1].long() // V * V  # (B, 1): each row's boundary token (its label's: label * V + 0)
        x = self.embedding(torch.cat([start.expand(-1, T - 1), idx.long()], dim=1))  # (B, T-1+L, E): T-1 in front
        dilation = 1
        for level in self.levels:  # each level is one position shorter per step of dilation
            x = level.fuse(torch.cat([x[:, :-dilation], x[:, dilation:]], dim=-1))  # (B, L', 2C) -> (B, L', H)
            dilation *= 2
        logits = self.out(x)  # (B, L, V): T-1 = 1 + 2 + 4 + ... positions consumed, L left
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    # Each output reads exactly its last block_size inputs however long the item, so a forward over a longer
    # sequence needs no cropping (contexts.target_log_probs) and the cached step below has no position bound.
    window_slides = True

    # Incremental decoding (makemore.models.decoding), the "fast WaveNet" idea (Paine et al. 2016): level k joins
    # its newest input with the one 2^k positions back, so it keeps a queue of its last 2^k inputs. A new
    # character then costs one fusion per level instead of the whole tree over the window.

    def init_state(self, batch_size: int, label: int = 0) -> tuple[torch.Tensor, ...]:
        """The queues after the block_size - 1 boundaries forward pads with: level k's last 2^k inputs, (B, 2^k, C_k).

        Every padded position holds the same boundary (the label's), so each level's queue is one vector repeated.
        """
        start = torch.full((1,), label * self.config.vocab_size, dtype=torch.long, device=self.C.device)
        x = self.embedding(start)  # (1, E): the boundary
        queues = []
        for k, level in enumerate(self.levels):
            queues.append(x[:, None].expand(batch_size, 2 ** k, x.shape[-1]))  # (B, 2^k, C_k)
            x = level.fuse(torch.cat([x, x], dim=-1))  # this level's output over the padding, (1, H)
        return tuple(queues)

    def step(self, idx: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """Read one more position idx (B,): (logits (B, V), the queues moved on by one)."""
        x = self.embedding(idx)  # (B, E)
        queues = []
        for level, queue in zip(self.levels, state):
            y = level.fuse(torch.cat([queue[:, 0], x], dim=-1))  # (B, 2C) -> (B, H): oldest queued, then newest
            queues.append(torch.cat([queue[:, 1:], x[:, None]], dim=1))  # drop the oldest, queue the newest
            x = y
        return self.out(x), tuple(queues)  # (B, V)
