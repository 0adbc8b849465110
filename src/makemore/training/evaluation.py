"""Mean NLL of a model over a split, costing what the data is, not what it repeats.

Windows (Y (N,)): most windows of a list repeat a context another window has ("em" -> "m" in every
Emma, Emily, Emmett...), and many repeat the whole (context, next character) pair. Each distinct
context is run through the model once, and each distinct pair weighs by how often it occurs, so the
sum is the plain sum over every window (to float rounding) at the cost of the distinct ones. A model
that can score given targets more cheaply than it can give whole distributions (the n-gram: a few
count look-ups per pair instead of per pair and character) says so with `target_log_probs`.

Sequences (Y (N, L), padding -1): items are taken shortest first and each batch is cut to its own
longest item, so a list of mostly short items with a few long ones does not pay for padding.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.items import Splits, row_keys
from ..device import model_device
from ..models.layers import eval_mode
from .torchrun import Parallel

Progress = Callable[[int, int], None]  # (rows done, rows in all): long evaluations report as they go
EvalProgress = Callable[[str, int, int], None]  # (split, rows done, rows in all) during a final evaluation


@dataclass(frozen=True)
class DistinctPairs:
    """The distinct (context, next character) pairs of windows, grouped by context."""

    contexts: torch.Tensor  # (K, T) the distinct contexts, in sorted order
    context_of: torch.Tensor  # (P,) which context each pair has; non-decreasing
    targets: torch.Tensor  # (P,) the pair's next character
    counts: torch.Tensor  # (P,) how many windows have this pair
    starts: torch.Tensor  # (K + 1,) pairs of context k are [starts[k], starts[k + 1])


def distinct_pairs(X: torch.Tensor, Y: torch.Tensor) -> DistinctPairs:
    """Group windows X (N, T), Y (N,) into distinct pairs; sum(counts) == N."""
    base = max(int(X.max()) if X.numel() else 0, int(Y.max()) if Y.numel() else 0) + 1
    if base ** (X.shape[1] + 1) < 2 ** 62:  # each row as one integer (base-`base` digits): a 1-D sort, fast
        keys = row_keys(X, base, last=Y)  # oldest character the most significant digit: sorted by context first
        keys, counts = torch.unique(keys, return_counts=True)
        targets, context_keys = keys % base, keys // base
        context_keys, context_of, per_context = torch.unique_consecutive(context_keys, return_inverse=True,
                                                                         return_counts=True)
        contexts = torch.empty((context_keys.shape[0], X.shape[1]), dtype=torch.int64, device=X.device)
        for col in range(X.shape[1] - 1, -1, -1):  # the digits back, newest first
            contexts[:, col] = context_keys % base
            context_keys = context_keys // base
    else:  # too many symbols x positions for one integer: rows sorted as rows (slower, same result)
        pairs, counts = torch.unique(torch.cat([X.long(), Y.long()[:, None]], dim=1), dim=0, return_counts=True)
        targets = pairs[:, -1]
        contexts, context_of, per_context = torch.unique_consecutive(pairs[:, :-1], dim=0, return_inverse=True,
                                                                     return_counts=True)
    starts = torch.zeros(contexts.shape[0] + 1, dtype=torch.int64, device=contexts.device)
    starts[1:] = torch.cumsum(per_context, 0)
    return DistinctPairs(contexts, context_of, targets, counts, starts)


_PAIRS: dict[int, tuple[weakref.ref, weakref.ref, "DistinctPairs"]] = {}  # id(X) -> (X, Y, pairs) while X lives


def _pairs_of(X: torch.Tensor, Y: torch.Tensor) -> DistinctPairs:
    """`distinct_pairs(X, Y)`, remembered for as long as X exists: training evaluates the same val split
    every eval_interval steps, and its grouping does not change (data tensors are never written to).
    Keyed by identity (a tensor's == is elementwise), and forgotten when X is freed."""
    seen = _PAIRS.get(id(X))
    if seen is not None and seen[0]() is X and seen[1]() is Y:
        return seen[2]
    pairs = distinct_pairs(X, Y)
    if seen is None:
        weakref.finalize(X, _PAIRS.pop, id(X), None)
    _PAIRS[id(X)] = (weakref.ref(X), weakref.ref(Y), pairs)
    return pairs


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], batch_size: int = 65_536,
             parallel: Parallel | None = None, on_progress: Progress | None = None) -> float:
    """Mean NLL per predicted character over (X, Y), in eval mode (BatchNorm uses running stats).

    Windows (Y (N,)): one predicted character per row; each distinct context is run once
    (`distinct_pairs`), batch_size of them at a time. Sequences (Y (N, L), -1 = padding): every real
    target counts once; batch_size counts positions. With `parallel`, each rank scores its share of
    the rows and the sums are reduced: every rank gets the NLL of all of (X, Y).
    """
    X, Y = data
    if parallel is not None:
        X, Y = parallel.shard(X), parallel.shard(Y)
    with eval_mode(model):
        if Y.dim() == 2:
            total = _sequence_total(model, X, Y, batch_size, on_progress)
        else:
            total = _window_total(model, X, Y, batch_size, on_progress)
    if parallel is not None:
        parallel.all_sum(total)
    return (total[0] / total[1]).item()


def _window_total(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, batch_size: int,
                  on_progress: Progress | None) -> torch.Tensor:
    """(summed NLL, windows) in float64 on the model's device, from each distinct pair once."""
    device = model_device(model)
    total = torch.zeros(2, dtype=torch.float64, device=device)
    if X.shape[0] == 0:
        return total
    d = _pairs_of(X, Y)
    direct = getattr(model, "target_log_probs", None)  # (idx (B, T), targets (B,)) -> (B,) log P
    K = d.contexts.shape[0]
    for a in range(0, K, batch_size):
        b = min(a + batch_size, K)
        lo, hi = int(d.starts[a]), int(d.starts[b])
        targets, counts = d.targets[lo:hi].to(device), d.counts[lo:hi].to(device, torch.float64)
        if direct is not None:
            log_p = direct(d.contexts[d.context_of[lo:hi]].to(device), targets)  # (P_b,)
        else:
            logits, _ = model(d.contexts[a:b].to(device))  # (K_b, V): each context once
            log_p = F.log_softmax(logits.double(), dim=-1)[(d.context_of[lo:hi] - a).to(device), targets]  # (P_b,)
        total[0] -= (log_p.double() * counts).sum()
        total[1] += counts.sum()
        if on_progress is not None:
            on_progress(b, K)
    return total


def _sequence_total(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, batch_size: int,
                    on_progress: Progress | None) -> torch.Tensor:
    """(summed NLL, targets) in float64, items shortest first, each batch cut to its own longest item.

    Cutting the padding off the end changes nothing a model predicts at a real position: every
    sequence model here reads only positions before the one it predicts (causal)."""
    device = model_device(model)
    total = torch.zeros(2, dtype=torch.float64, device=device)
    lengths = (Y >= 0).sum(dim=1)  # (N,) real targets per item: its characters and the end token
    order = torch.argsort(lengths, stable=True)
    N, i = X.shape[0], 0
    while i < N:
        # rows sorted by length: as many as fit at the first row's length, then as many as fit at the length
        # of the last of those (never more positions than batch_size, unless one item alone is longer)
        j = min(N, i + max(1, batch_size // max(1, int(lengths[order[i]]))))
        j = min(j, i + max(1, batch_size // max(1, int(lengths[order[j - 1]]))))
        longest = max(1, int(lengths[order[j - 1]]))
        ix = order[i:j]
        xb, yb = X[ix, :longest].to(device), Y[ix, :longest].to(device)  # (B, L_b)
        _, loss = model(xb, yb)
        n = int((yb >= 0).sum())
        total += torch.tensor([loss.item() * n, n], dtype=torch.float64, device=device)
        i = j
        if on_progress is not None:
            on_progress(i, N)
    return total


def evaluate_part(model: nn.Module, splits: Splits, part: str, parallel: Parallel | None = None,
                  on_eval: EvalProgress | None = None) -> float:
    """The mean NLL of one split ("train", "val", "test"), telling `on_eval` how far it has got."""
    report = None if on_eval is None else (lambda done, total: on_eval(part, done, total))
    return evaluate(model, splits.part(part), parallel=parallel, on_progress=report)
