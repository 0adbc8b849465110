"""Batched sampling with controls: all items of a batch grow together, one model call per character position.

Controls (all optional, all applied while sampling, never by filtering afterwards):

- temperature: logits are divided by it before the softmax (< 1 sharper, > 1 flatter);
- top_k: only the k most likely next characters can be drawn;
- top_p: nucleus sampling, only the smallest set of most likely characters whose probabilities
  add up to at least p can be drawn (the most likely one always can);
- prefix: every item starts with these characters; the context is seeded with them and
  generation continues from there (conditioning, not filtering);
- min_len / max_len: bounds on the item's length in characters, prefix included. Below
  min_len the end token cannot be drawn; an item that reaches max_len is ended there;
- novel (`generate(..., exclude=...)`): only items outside a given set, without duplicates.

Every item also gets its log-probability under the model itself: the natural log of its
probability at temperature 1 without any of the masks above, summed over its characters
(prefix included) and the end token. It is the number `scoring.score_items` gives the same item.
"""

from __future__ import annotations

from itertools import repeat
from typing import Iterable, NamedTuple, Optional, Sequence

import numpy
import torch
import torch.nn as nn

from ..models.reading import target_log_probs
from .constraints import (ESTIMATE_WALKS, check_constraint, draw_satisfying, estimate_probability,
                          too_unlikely)
from ..data.items import BOUNDARY, Vocab
from ..data.labels import LabelSet, WithLabel, draw_labels, for_label, label_numbers
from ..models.decoding import Decoder
from ..device import model_device
from ..bounds import MAX_SAMPLES
from ..models.layers import eval_mode
from .request import GenerateRequest
from ..errors import ParameterError

BATCH_SIZE = 16_384  # items drawn together; larger requests are drawn in batches of this size
BATCH_CHARS = 2 ** 25  # at most this many characters (items x max_len) of a batch in memory at once
NOVEL_MAX_BATCHES = 50  # tries before generate(exclude=...) gives up


class Sample(NamedTuple):
    """One generated item, its log-probability under the model (nats, characters + end token) and, on a
    labelled run, the label it was drawn for. A named tuple: cheap to make by the ten thousand."""

    item: str
    log_prob: float  # log p(item | label) on a labelled run
    label: Optional[str] = None


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
def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row of probs (B, V), drawn with the row's probabilities: (B,).

    By the inverse of the cumulative distribution: one uniform number per row, found among the row's
    running sums. Exact (up to float32 rounding of the sums), and one random number per row where
    torch.multinomial draws one per row and character: at batch 1,024 over 27 characters about 6x
    faster, which is most of what a cheap model's sampling step costs. A character of probability 0
    (cut by top-k or top-p) is never drawn: its running sum equals the one before it, and the search
    takes the first sum strictly above the uniform number.
    """
    cdf = probs.cumsum(dim=-1)  # (B, V)
    u = torch.rand((probs.shape[0], 1), generator=generator, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)  # (B,)


@torch.no_grad()
def _sample_batch(model: nn.Module, n: int, max_len: int, generator: torch.Generator, prefix: Sequence[int],
                  request: GenerateRequest, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch of n items: what was drawn after the prefix (n, steps), each row ending at its first boundary,
    and the items' log-probabilities (n,). The request's temperature, top_k, top_p and min_len shape the draws."""
    temperature, top_k, top_p, min_len = request.temperature, request.top_k, request.top_p, request.min_len
    device = model_device(model)
    P = len(prefix)
    # the item so far, [0] + prefix + what was drawn; the decoder gives the logits of its next character
    # (the model reads its last max_context positions, or carries a cache: makemore.models.decoding)
    decoder = Decoder(model, [BOUNDARY, *prefix], n, cache=cache)
    # what each step drew, for which rows, and its log-probability, kept as the step made them and written
    # into the (items, positions) tables once at the end: no scatter per step
    drawn: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    active = torch.arange(n, device=device)  # rows still growing; only they go through the model
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
            nxt = draw(probs, generator)
        if probs is not None and z is logits:  # drawn from the model's own distribution: its probability is there
            lp = probs.gather(1, nxt[:, None]).squeeze(1).log()
        else:
            lp = torch.log_softmax(logits, dim=-1).gather(1, nxt[:, None]).squeeze(1)
        drawn.append((active, nxt, lp))
        keep = nxt != BOUNDARY
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
    return out, log_prob


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


def _draw_batches(model: nn.Module, n: int, max_len: int, generator: torch.Generator, request: GenerateRequest,
                  prefix: Sequence[int], batch_size: int, cache: bool) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """n items, drawn batch_size at a time: for each batch, (what was drawn after the prefix (m, steps), each
    row ending at its first boundary; log-probabilities under the model (m,)). The model is in eval mode
    while drawing (BatchNorm uses its running statistics), then back in its own mode."""
    batch_size = max(1, min(batch_size, BATCH_CHARS // max_len))  # long items: fewer at once, memory stays bounded
    with eval_mode(model):
        done = 0
        while done < n:
            m = min(batch_size, n - done)
            yield _sample_batch(model, m, max_len, generator, list(prefix), request, cache)
            done += m


def sample_indices(model: nn.Module, n: int, max_len: int, generator: torch.Generator, *,
                   prefix: Sequence[int] = (), cache: bool = True) -> list[list[int]]:
    """n items from the model's own distribution (temperature 1, no masks) as index lists, boundary removed,
    prefix included: the walks that estimate a constraint's probability (`constraints.estimate_probability`)."""
    out: list[list[int]] = []
    plain = GenerateRequest(n=n, max_len=max_len)
    for drawn, _ in _draw_batches(model, n, max_len, generator, plain, prefix, BATCH_SIZE, cache):
        out += index_lists(drawn, prefix)
    return out


def encode_prefix(vocab: Vocab, prefix: str) -> list[int]:
    """The prefix's indices; characters the model has never seen are named in a MakemoreError."""
    from .scoring import encode_known

    return encode_known(vocab, prefix, "the prefix")


def generate(model: nn.Module, vocab: Vocab, request: GenerateRequest, *, exclude: Iterable[str] | None = None,
             batch_size: int = BATCH_SIZE, cache: bool = True) -> list[Sample]:
    """request.n items drawn from the model with the request's controls; the same seed gives the same items.

    The request must be resolved (a seed and a max_len: `GenerateRequest.resolved`; `Run.generate` does it).
    Each item's label (a labelled run: the model carries its `label_set`) is the request's label, or drawn
    among those named (all by default) by their share of the training items; each label's items are drawn
    together, from the model seen as that label's (`labels.WithLabel`), and put back in the drawn order.

    Novelty: with request.novel, request.exclude or `exclude` (the run's training items), only items outside
    them and new to each other come back; batches of twice the missing count are drawn until there are n,
    and after NOVEL_MAX_BATCHES batches without enough, a ParameterError (of `exclude`) says how many were
    found. With a suffix and/or contains, every item ends with / contains it: the same distribution conditioned
    on it, by exact rejection within request.max_draws draws (`makemore.generation.constraints`).
    batch_size (memory) and cache (`makemore.models.decoding`; False reads every item whole again) change how
    the items are computed, not which.
    """
    request.check()
    if request.seed is None or request.max_len is None:
        raise ParameterError("request", "needs a seed and a max_len: resolve it first (GenerateRequest.resolved)")
    check_constraint(vocab, request.constraint, prefix=request.prefix, min_len=request.min_len,
                     max_len=request.max_len)
    # a labelled run's model (a view of one label, `WithLabel`, is already that label's)
    labels: LabelSet | None = None if isinstance(model, WithLabel) else getattr(model, "label_set", None)
    chosen = label_numbers(labels, request.label)
    drawn = draw_labels(request.n, labels, chosen, request.seed)
    novel = request.novel or bool(request.exclude) or exclude is not None
    taken = set(request.exclude) | set(exclude or ()) if novel else None

    def drawer(k: int) -> _Drawer:
        # each label its own random stream (label 0's is the seed itself: an unlabelled run's stream)
        label_seed = request.seed if k == 0 else (request.seed + 7_919 * k) % 2 ** 64
        if labels is None:
            return _Drawer(model, vocab, request, label_seed, None, batch_size, cache)
        return _Drawer(for_label(model, k), vocab, request, label_seed, labels.names[k], batch_size, cache)

    groups = sorted(set(drawn))
    if len(groups) == 1:  # an unlabelled run, or one label: the items come in the order drawn
        return drawer(groups[0]).items(request.n, taken)
    out: list[Sample | None] = [None] * request.n
    for k in groups:
        places = [i for i, lb in enumerate(drawn) if lb == k]
        for i, s in zip(places, drawer(k).items(len(places), taken)):
            out[i] = s
    return out  # type: ignore[return-value]


class _Drawer:
    """One label's items (or an unlabelled run's): plain draws, novel ones, or ones meeting a constraint."""

    def __init__(self, model: nn.Module, vocab: Vocab, request: GenerateRequest, seed: int, label: str | None,
                 batch_size: int, cache: bool):
        self.model, self.vocab, self.request, self.seed, self.label = model, vocab, request, seed, label
        self.batch_size, self.cache = batch_size, cache
        self.device = model_device(model)  # the random stream lives where the model does
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.prefix = encode_prefix(vocab, request.prefix)

    def draw(self, m: int) -> tuple[list[str], list[float]]:
        """m items as text (decoded a batch at a time) and their log-probabilities."""
        items: list[str] = []
        log_probs: list[float] = []
        for out, lp in _draw_batches(self.model, m, self.request.max_len, self.generator, self.request, self.prefix,
                                     self.batch_size, self.cache):
            items += texts(self.vocab, out, self.request.prefix)
            log_probs += lp.tolist()
        return items, log_probs

    def samples(self, items: list[str], log_probs: list[float]) -> list[Sample]:
        """The items as Samples of this drawer's label, made in one pass (`_make`: no keyword handling per item)."""
        return list(map(Sample._make, zip(items, log_probs, repeat(self.label))))

    def walks(self) -> list[list[int]]:
        """Unconstrained items (temperature 1, no masks): where a constraint's probability is estimated."""
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        return sample_indices(self.model, ESTIMATE_WALKS, self.request.max_len, generator, prefix=self.prefix,
                              cache=self.cache)

    def items(self, n: int, taken: set[str] | None) -> list[Sample]:
        """n items; outside `taken` and new to each other when it is a set (which grows with them)."""
        if self.request.constraint:
            return self._constrained(n, taken)
        if taken is None:
            return self.samples(*self.draw(n))
        return self._novel(n, taken)

    def _novel(self, n: int, taken: set[str]) -> list[Sample]:
        found: list[Sample] = []
        drawn = 0
        for _ in range(NOVEL_MAX_BATCHES):
            m = min(max(2 * (n - len(found)), 64), MAX_SAMPLES)  # a margin for repeats, not far more than needed
            items, log_probs = self.draw(m)
            drawn += m
            for item, lp in zip(items, log_probs):
                if item not in taken:
                    taken.add(item)
                    found.append(Sample(item, lp, self.label))
                    if len(found) == n:
                        return found
        raise ParameterError(
            "exclude", f"left only {len(found):,} of {n:,} new items after {NOVEL_MAX_BATCHES} batches ({drawn:,} "
                       f"draws): the model mostly repeats the excluded items or itself. Ask for fewer, or widen the "
                       f"sampling (a higher temperature, a larger top-k, top-p or maximum length)")

    def _constrained(self, n: int, taken: set[str] | None) -> list[Sample]:
        """n items satisfying the constraint (and new, with `taken`), by rejection; an error past the budget."""
        constraint = self.request.constraint

        def accept(item: str) -> bool:
            if not constraint.holds(item) or (taken is not None and item in taken):
                return False
            if taken is not None:
                taken.add(item)
            return True

        def estimate() -> float | None:
            return estimate_probability(self.model, self.vocab, self.request.prefix, constraint, self.walks())

        drawn = draw_satisfying(self.draw, n, accept, self.request.max_draws, self.batch_size, estimate)
        if len(drawn.found) < n:
            raise too_unlikely(constraint, n, drawn, self.request.max_draws, estimate, novel=taken is not None)
        return self.samples(*zip(*drawn.found)) if drawn.found else []
