"""Batched sampling: all items grow together, one model call per character position."""

from __future__ import annotations

import torch
import torch.nn as nn

from .data import BOUNDARY, Vocab
from .device import model_device


@torch.no_grad()
def sample_indices(model: nn.Module, n: int, max_len: int, generator: torch.Generator) -> list[list[int]]:
    """Draw n items as index lists (boundary removed).

    Each step feeds the last block_size indices of every unfinished item to the
    model and draws the next index from softmax(logits). An item ends when it
    draws the boundary; one that reaches max_len characters is ended there.
    """
    device = model_device(model)
    block_size = model.config.block_size
    was_training = model.training
    model.eval()  # BatchNorm must use its running statistics, not this batch's
    context = torch.full((n, block_size), BOUNDARY, dtype=torch.long, device=device)
    out = torch.zeros((n, max_len), dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for t in range(max_len):
        logits, _ = model(context)  # (n, V)
        probs = torch.softmax(logits.float(), dim=-1)
        nxt = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)  # (n,)
        nxt = nxt.masked_fill(done, BOUNDARY)  # finished items stay finished
        out[:, t] = nxt
        done |= nxt == BOUNDARY
        if bool(done.all()):
            break
        context = torch.cat([context[:, 1:], nxt[:, None]], dim=1)
    model.train(was_training)
    rows = out.tolist()
    return [row[: row.index(BOUNDARY)] if BOUNDARY in row else row for row in rows]


def sample_items(model: nn.Module, vocab: Vocab, n: int, max_len: int, seed: int, device: str | torch.device = "cpu") -> list[str]:
    """n new items as text; the same seed gives the same items."""
    generator = torch.Generator(device=device).manual_seed(seed)
    return [vocab.decode(ix) for ix in sample_indices(model, n, max_len, generator)]
