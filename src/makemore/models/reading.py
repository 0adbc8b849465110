"""What a model reads to predict a character, for both layouts of the registry (models/registry.py).

Sampling, scoring and `next` hold the item so far as one sequence: [0] + its characters (the
start boundary, then the text; no extra leading boundaries, no padding). These helpers turn it
into what the model reads, keyed on the model's registered layout, never on its name:

- a windowed model reads the last block_size indices, boundaries in front when the item is shorter
  (exactly the windows it was trained on);
- a sequence model reads the whole sequence and predicts at its last position; one whose config
  has a block_size (a transformer's position table, wavenet-conv's window) reads its last
  block_size positions only. A model whose window slides by itself (`window_slides`: wavenet-conv,
  each output reading exactly its last block_size inputs) is given longer sequences whole when
  scoring, every position in one call, since cropping would not change what any position reads.

Generating one character after another reads these one position at a time instead, through the
models' caches: `makemore.models.decoding`.
"""

from __future__ import annotations

import torch
import torch.nn as nn



def layout_of(model: nn.Module) -> str:
    """"windows" or "sequence": what the model's forward reads (its registry entry says: models/registry.py)."""
    return model.layout


def max_context(model: nn.Module) -> int | None:
    """The most positions the model reads: its config's block_size, or None (no bound: recurrent models)."""
    return getattr(model.config, "block_size", None)


def crop(model: nn.Module, seqs: torch.Tensor) -> torch.Tensor:
    """The last max_context positions of (B, t) sequences (all of them when there is no bound)."""
    ctx = max_context(model)
    return seqs if ctx is None else seqs[:, -ctx:]


def next_logits(model: nn.Module, seqs: torch.Tensor) -> torch.Tensor:
    """Logits (B, V) for the character after each row of seqs (B, t): [0] + the item so far, t >= 1."""
    seqs = crop(model, seqs)
    if layout_of(model) == "windows":
        T = model.config.block_size
        # (B, T), as in training: padded in front with the row's own boundary (a labelled row's is its label's,
        # label * V: a mixture reads its members with the labels already in the indices)
        window = torch.cat([seqs[:, :1].expand(-1, T - seqs.shape[1]), seqs], dim=1).contiguous()
        logits, _ = model(window)  # (B, V)
        return logits
    logits, _ = model(seqs.contiguous())  # (B, t', V)
    return logits[:, -1]


def position_logits(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Logits (N, L, V) for the character after each position of sequences X (N, L) (data.build_sequences).

    Position t sees what `next_logits` would give it: for a windowed model the window before the
    target (boundaries in front, each row's own start token: a labelled item's boundary is its label's),
    for a sequence model the whole prefix, or its last block_size positions when longer.
    """
    N, L = X.shape
    X = X.long()
    ctx = max_context(model)
    if layout_of(model) == "windows":
        start = X[:, :1].expand(N, ctx - 1)  # the boundaries in front of the first character
        windows = torch.cat([start, X], dim=1).unfold(1, ctx, 1)  # (N, L, T): the window before each target
        return model(windows.reshape(N * L, ctx).contiguous())[0].view(N, L, -1)
    if ctx is None or L <= ctx or getattr(model, "window_slides", False):
        return model(X)[0]  # (N, L, V): every position in one call (a sliding window reads its last ctx by itself)
    # longer than the model reads: the first ctx positions at once, then one cropped call per position
    rest = [model(X[:, t - ctx + 1:t + 1])[0][:, -1:] for t in range(ctx, L)]
    return torch.cat([model(X[:, :ctx])[0], *rest], dim=1)


def target_log_probs(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """log p(Y[n, t] | X[n, :t+1]) for sequences X, Y (N, L), float64 (N, L), 0 at padding (`position_logits`)."""
    logits = position_logits(model, X)
    lp = torch.log_softmax(logits.float(), dim=-1).gather(2, Y.long().clamp(min=0)[..., None]).squeeze(2)
    return lp.double().masked_fill(Y < 0, 0.0)
