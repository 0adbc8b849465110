"""Batched drawing: all items of a batch grow together, one model call per character position.

Controls (all optional, all applied while sampling, never by filtering afterwards):

- temperature: logits are divided by it before the softmax (< 1 sharper, > 1 flatter);
- top_k: only the k most likely next characters can be drawn;
- top_p: nucleus sampling, only the smallest set of most likely characters whose probabilities
  add up to at least p can be drawn (the most likely one always can);
- prefix: every item starts with these characters; the context is seeded with them and
  generation continues from there (conditioning, not filtering);
- min_len / max_len: bounds on the item's length in characters, prefix included. Below
  min_len the end token cannot be drawn; an item that reaches max_len is ended there;
- avoid (`avoid.AvoidList`): an item is dropped the moment it contains an entry.

Each row draws with one uniform number per character from a source of its own choosing: one
generator for the whole batch (`generator_uniforms`), or a stream per row that depends on nothing
but that row (`keys`: the same key gives the same item in any batch).

Every item also gets its log-probability under the model itself: the natural log of its
probability at temperature 1 without any of the masks above, summed over its characters
(prefix included) and the end token. It is the number `scoring.score_items` gives the same item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple, Optional, Sequence

import numpy
import torch
import torch.nn as nn

from ..data.items import BOUNDARY, Vocab
from ..device import model_device
from ..models.decoding import Decoder
from ..models.layers import eval_mode
from ..models.reading import target_log_probs
from .avoid import AvoidList
from .request import GenerateRequest

BATCH_SIZE = 16_384  # items drawn together; larger requests are drawn in batches of this size
BATCH_CHARS = 2 ** 25  # at most this many characters (items x max_len) of a batch in memory at once

Uniforms = Callable[[torch.Tensor, int], torch.Tensor]  # (rows still growing (B,), characters so far) -> (B, 1) in [0, 1)


class Sample(NamedTuple):
    """One generated item, its log-probability under the model (nats, characters + end token) and, on a
    labelled run, the label it was drawn for. A named tuple: cheap to make by the ten thousand."""

    item: str
    log_prob: float  # log p(item | label) on a labelled run
    label: Optional[str] = None
    key: Optional[str] = None  # the key it was drawn for (a request's keys)


def truncate_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to -inf every logit outside the top k, then outside the nucleus of mass top_p. logits: (B, V)."""
    if top_k is not None and top_k < logits.shape[-1]:
        top = torch.topk(logits, top_k, dim=-1)  # exactly k survive, even with ties
        logits = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # probability of the more likely characters
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))  # the first always stays
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.no_grad()
def draw(probs: torch.Tensor, source: torch.Generator | torch.Tensor) -> torch.Tensor:
    """One index per row of probs (B, V), drawn with the row's probabilities: (B,).

    By the inverse of the cumulative distribution: one uniform number per row (from the generator, or
    given: (B, 1) in [0, 1)), found among the row's running sums. Exact (up to float32 rounding of the
    sums), and one random number per row where torch.multinomial draws one per row and character: at
    batch 1,024 over 27 characters about 6x faster, which is most of what a cheap model's sampling step
    costs. A character of probability 0 (cut by top-k or top-p) is never drawn: its running sum equals
    the one before it, and the search takes the first sum strictly above the uniform number.
    """
    cdf = probs.cumsum(dim=-1)  # (B, V)
    if isinstance(source, torch.Generator):
        source = torch.rand((probs.shape[0], 1), generator=source, device=probs.device, dtype=cdf.dtype)
    u = source.to(cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)  # (B,)


def generator_uniforms(generator: torch.Generator) -> Uniforms:
    """Uniforms for a whole batch from one generator: the rows' numbers depend on the batch."""
    return lambda rows, t: torch.rand((rows.numel(), 1), generator=generator, device=rows.device)


@dataclass(frozen=True)
class Drawing:
    """What every batch of one request is drawn with: the model, the request's controls, its prefix and avoid list."""

    model: nn.Module  # in eval mode while drawing
    request: GenerateRequest  # resolved: its max_len is set
    prefix: tuple[int, ...]  # the request's prefix, as indices
    cache: bool = True  # decode with the model's cache (`makemore.models.decoding`); False reads items whole
    avoid: AvoidList | None = None  # on the model's device; None: no avoid list
    avoid_start: int = 0  # the avoid automaton's state after the prefix

    def batch_size(self, batch_size: int) -> int:
        """At most batch_size rows, fewer for long items: a batch holds at most BATCH_CHARS characters."""
        return max(1, min(batch_size, BATCH_CHARS // self.request.max_len))

    def batches(self, n: int, uniforms: Uniforms, batch_size: int = BATCH_SIZE) -> Iterable["Batch"]:
        """n items, drawn `batch_size` at a time, in eval mode (BatchNorm uses its running statistics)."""
        size = self.batch_size(batch_size)
        with eval_mode(self.model):
            for done in range(0, n, size):
                yield sample_batch(self, min(size, n - done), uniforms)


class Batch(NamedTuple):
    """One batch of drawn items."""

    out: torch.Tensor  # (n, steps): what was drawn after the prefix, each row ending at its first boundary
    log_prob: torch.Tensor  # (n,) float64: each item's log-probability under the model
    dead: torch.Tensor | None  # (n,) bool: the rows dropped for containing an avoided entry (None: no avoid list)


@torch.no_grad()
def sample_batch(drawing: Drawing, n: int, uniforms: Uniforms) -> Batch:
    """One batch of n items. The request's temperature, top_k, top_p and min_len shape the draws; a row that reads
    an avoided entry stops there (marked dead: its characters so far stay in `out`, unterminated)."""
    model, request, prefix = drawing.model, drawing.request, list(drawing.prefix)
    temperature, top_k, top_p, min_len, max_len = (request.temperature, request.top_k, request.top_p, request.min_len,
                                                   request.max_len)
    device = model_device(model)
    P = len(prefix)
    # the item so far, [0] + prefix + what was drawn; the decoder gives the logits of its next character
    # (the model reads its last max_context positions, or carries a cache: makemore.models.decoding)
    decoder = Decoder(model, [BOUNDARY, *prefix], n, cache=drawing.cache)
    # what each step drew, for which rows, and its log-probability, kept as the step made them and written
    # into the (items, positions) tables once at the end: no scatter per step
    drawn: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    active = torch.arange(n, device=device)  # rows still growing; only they go through the model
    avoid = drawing.avoid
    state = torch.full((n,), drawing.avoid_start, dtype=torch.long, device=device) if avoid is not None else None
    dead = torch.zeros(n, dtype=torch.bool, device=device) if avoid is not None else None
    for t in range(P, max_len + 1):  # t: characters in the item so far
        logits = decoder.logits.float()  # (B, V)
        if t == max_len:  # the length bound: this item ends here
            nxt = torch.full((active.numel(),), BOUNDARY, dtype=torch.long, device=device)
            probs = None
        else:
            z = logits / temperature if temperature != 1.0 else logits
            if t < min_len:
                z = z.clone()
                z[:, BOUNDARY] = float("-inf")
            z = truncate_logits(z, top_k, top_p)
            probs = torch.softmax(z, dim=-1)
            nxt = draw(probs, uniforms(active, t))
        if probs is not None and z is logits:  # drawn from the model's own distribution: its probability is there
            lp = probs.gather(1, nxt[:, None]).squeeze(1).log()
        else:
            lp = torch.log_softmax(logits, dim=-1).gather(1, nxt[:, None]).squeeze(1)
        drawn.append((active, nxt, lp))
        keep = nxt != BOUNDARY
        if avoid is not None:  # every row's automaton reads its character; a row that completes an entry stops
            state = avoid.table[state, nxt]  # (B,)
            hit = state == avoid.dead
            dead[active[hit]] = True
            keep &= ~hit
            state = state[keep]
        if not bool(keep.any()):
            break
        active = active[keep]
        decoder.advance(keep, nxt[keep])
    rows_of = torch.cat([a for a, _, _ in drawn])
    cols = torch.repeat_interleave(torch.arange(len(drawn), device=device),
                                   torch.tensor([a.numel() for a, _, _ in drawn], device=device))
    out = torch.zeros((n, len(drawn)), dtype=torch.long, device=device)  # characters after the prefix, then 0s
    out[rows_of, cols] = torch.cat([x for _, x, _ in drawn])
    step_lp = torch.zeros((n, len(drawn)), dtype=torch.float32, device=device)
    step_lp[rows_of, cols] = torch.cat([lp for _, _, lp in drawn])
    log_prob = step_lp.double().sum(dim=1)
    if P:
        log_prob += prefix_log_prob(model, prefix, device)
    return Batch(out, log_prob, dead)


def index_lists(out: torch.Tensor, prefix: Sequence[int]) -> list[list[int]]:
    """The drawn table (n, steps) as index lists: the prefix, then each row up to its first boundary (its end)."""
    lengths = (out == BOUNDARY).int().argmax(dim=1).tolist()  # max_len's boundary is forced: every row has one
    return [list(prefix) + row[:k] for row, k in zip(out.tolist(), lengths)]


def texts(vocab: Vocab, out: torch.Tensor, prefix: str = "") -> list[str]:
    """The drawn table (n, steps) as text, the prefix first: `vocab.decode` of each row, for a whole batch at once.

    Each index becomes its character's code point and each row one fixed-width numpy string, which ends at
    its first NUL: the boundary's code point is 0, and after an item's end its row holds only boundaries.
    One numpy view for the whole batch instead of a Python loop per row (which a vocabulary holding NUL
    itself still takes)."""
    if "\0" in vocab.chars:
        return [prefix + vocab.decode(ix) for ix in index_lists(out, ())]
    points = numpy.array([0, *map(ord, vocab.chars)], dtype=numpy.uint32)[out.cpu().numpy()]  # (n, steps)
    rows = numpy.ascontiguousarray(points).view(f"<U{max(out.shape[1], 1)}").ravel().tolist()
    return [prefix + row for row in rows] if prefix else rows


@torch.no_grad()
def prefix_log_prob(model: nn.Module, prefix: Sequence[int], device) -> float:
    """log p(prefix) under the model: the same for every item, so computed once, all positions in one call."""
    X = torch.tensor([[BOUNDARY, *prefix[:-1]]], dtype=torch.long, device=device)  # (1, P): what precedes each
    Y = torch.tensor([list(prefix)], dtype=torch.long, device=device)
    return float(target_log_probs(model, X, Y).sum())


def sample_indices(model: nn.Module, n: int, max_len: int, generator: torch.Generator, *,
                   prefix: Sequence[int] = (), cache: bool = True) -> list[list[int]]:
    """n items from the model's own distribution (temperature 1, no masks) as index lists, boundary removed,
    prefix included: the walks that estimate a constraint's probability (`constraints.estimate_probability`)."""
    out: list[list[int]] = []
    drawing = Drawing(model, GenerateRequest(n=n, max_len=max_len), tuple(prefix), cache)
    for batch in drawing.batches(n, generator_uniforms(generator)):
        out += index_lists(batch.out, prefix)
    return out


def encode_prefix(vocab: Vocab, prefix: str) -> list[int]:
    """The prefix's indices; characters the model has never seen are named in a MakemoreError."""
    from .scoring import encode_known

    return encode_known(vocab, prefix, "the prefix")


