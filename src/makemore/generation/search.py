"""The most likely items under a model, exactly: best-first search over prefixes.

An item's log-probability is the sum of its characters' and its end token's log-probabilities, each
at most 0, so a prefix is at least as likely as anything that continues it. The search keeps a
frontier of prefixes ordered by log-probability and always expands the most likely ones: reading a
prefix gives the log-probability of each one-character extension and, through the end token, of the
prefix as a complete item. Once n complete items are known, a prefix no more likely than the n-th of
them cannot lead to a better one and is dropped; the search ends when no prefix in the frontier is
more likely than the n-th item, and the n items are then exactly the n most likely (ties in order
of discovery). Prefixes are expanded EXPAND_BATCH at a time, in one model call: a few more
expansions than strictly needed, never a different answer.

Length bounds, the prefix, novelty and the constraints (`makemore.generation.constraints`) restrict which
complete items count; log-probabilities are the model's own (temperature 1, no masks), the numbers
`score` prints, so `temperature`, `top_k` and `top_p` have no meaning here.

A search may need many expansions (a flat model, a long maximum length, a rare suffix):
`max_expansions` bounds them, and a search stopped by it returns the best items found with
`exact=False`: they are complete items with their true log-probabilities, but better ones may exist.

Why each prefix is read whole rather than from a cache (`makemore.models.decoding`): the search jumps from
branch to branch, so each frontier prefix would need its own cache, kept until it is expanded (for
the names transformer, 14 KB for a prefix of 7 characters, and the frontier holds tens of
thousands); reading a prefix of a dozen characters in one parallel pass costs little more than one
cached step.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, replace
from typing import Iterable

import torch
import torch.nn as nn

from .constraints import check_constraint
from ..models.reading import next_logits
from ..data.items import BOUNDARY, Vocab
from ..device import model_device
from ..errors import ParameterError
from ..models.layers import eval_mode
from .request import GenerateRequest
from .avoid import AvoidList
from .rules import Rules
from .sampler import Sample, compile_avoid, encode_prefix, prefix_log_prob

EXPAND_BATCH = 128  # prefixes read in one model call


@dataclass(frozen=True)
class MostLikely:
    """The result of a most-likely search: items highest first, and whether they are certainly the best."""

    items: list[Sample]  # at most n, by log-probability, highest first
    exact: bool  # False: the expansion budget ran out first; better items may exist
    expansions: int  # prefixes expanded


def most_likely(model: nn.Module, vocab: Vocab, request: GenerateRequest,
                exclude: Iterable[str] | None = None) -> MostLikely:
    """The `request.most_likely` most probable complete items (end token included) of at most request.max_len
    characters under the model, within `request.budget` prefixes expanded.

    Every item starts with the request's prefix and has at least min_len characters; only items that pass the
    request's rules count (`rules`: none in `exclude` (with novel, the run's training items) or request.exclude,
    with suffix / contains only items that end with / contain it, none containing an avoid entry, and at least
    as likely as the thresholds say). A prefix that holds an avoid entry is not expanded.
    Fewer items come back only when fewer exist (e.g. a short max_len over a small vocabulary).
    """
    request = replace(request, most_likely=request.count)
    request.check()
    if request.max_len is None:
        raise ParameterError("max_len", "is needed for a search: the longest item it may rank")
    check_constraint(vocab, request.constraint, prefix=request.prefix, min_len=request.min_len,
                     max_len=request.max_len)
    codes = encode_prefix(vocab, request.prefix)
    judge = _Judge(vocab, request, Rules(request, frozenset(exclude or ())), compile_avoid(vocab, request, "cpu"))
    with eval_mode(model):
        start = prefix_log_prob(model, codes, model_device(model)) if codes else 0.0
        return _search(model, vocab, request.count, tuple(codes), start, request.max_len, judge, request.budget)


class _Judge:
    """Which complete items count (the request's rules) and which prefixes may grow (no avoid entry yet)."""

    def __init__(self, vocab: Vocab, request: GenerateRequest, rules: Rules, avoid: AvoidList | None):
        self.vocab, self.min_len, self.rules, self.avoid = vocab, request.min_len, rules, avoid
        self.states: dict[tuple[int, ...], int] = {}  # each prefix's avoid state, filled as prefixes grow

    def counts(self, ix: tuple[int, ...], log_prob: float) -> bool:
        return len(ix) >= self.min_len and self.rules.fails(self.vocab.decode(list(ix)), log_prob, repeats=False) is None

    def alive(self, ix: tuple[int, ...]) -> bool:
        if self.avoid is None:
            return True
        state = self.states.get(ix[:-1])
        state = self.avoid.state_after(ix) if state is None else int(self.avoid.table[state, ix[-1]])
        self.states[ix] = state
        return state != self.avoid.dead


@torch.no_grad()
def _search(model: nn.Module, vocab: Vocab, n: int, prefix: tuple[int, ...], start: float, max_len: int,
            judge: _Judge, max_expansions: int) -> MostLikely:
    order = itertools.count()  # ties broken by discovery: the same answer every time
    frontier = [(-start, next(order), prefix)]  # heap of (-log p, order, prefix): the most likely first
    best: list[tuple[float, int, tuple[int, ...]]] = []  # heap of the n best complete items: the n-th first
    expansions = 0
    while frontier:
        bar = best[0][0] if len(best) == n else -math.inf  # the n-th best item so far: nothing below it counts
        batch = []
        while frontier and len(batch) < min(EXPAND_BATCH, max_expansions - expansions) and -frontier[0][0] > bar:
            batch.append(heapq.heappop(frontier))
        if not batch:
            break  # every prefix left is below the n-th item (exact), or the budget is spent (not)
        expansions += len(batch)
        logp = _next_log_probs(model, [p for _, _, p in batch])  # (K, V) float64
        for (neg, _, p), row in zip(batch, logp.tolist()):
            after = [lp - neg for lp in row]  # log p of each one-character extension, and of ending here
            if after[BOUNDARY] > bar and judge.counts(p, after[BOUNDARY]):
                item = (after[BOUNDARY], next(order), p)
                if len(best) < n:
                    heapq.heappush(best, item)
                else:
                    heapq.heappushpop(best, item)
                bar = best[0][0] if len(best) == n else bar
            if len(p) < max_len:
                for c, lp in enumerate(after):
                    if lp > bar and c != BOUNDARY and judge.alive(p + (c,)):
                        heapq.heappush(frontier, (-lp, next(order), p + (c,)))
    exact = not any(-neg > (best[0][0] if len(best) == n else -math.inf) for neg, _, _ in frontier)
    ranked = sorted(best, key=lambda b: (-b[0], b[1]))
    return MostLikely([Sample(vocab.decode(list(p)), lp) for lp, _, p in ranked], exact, expansions)


def _next_log_probs(model: nn.Module, prefixes: list[tuple[int, ...]]) -> torch.Tensor:
    """log p(next | [0] + prefix) for each prefix, (K, V) float64 on the CPU; prefixes of one length read together."""
    device = model_device(model)
    out = torch.empty((len(prefixes), model.config.vocab_size), dtype=torch.float64)
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prefixes):
        by_length.setdefault(len(p), []).append(i)
    for rows in by_length.values():
        seqs = torch.tensor([[BOUNDARY, *prefixes[i]] for i in rows], dtype=torch.long, device=device)
        logits = next_logits(model, seqs).float()  # as the sampler and scoring compute them: float32 softmax
        out[rows] = torch.log_softmax(logits, dim=-1).double().cpu()
    return out
