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

from dataclasses import dataclass
from typing import Iterable, NamedTuple, Sequence

import numpy
import torch
import torch.nn as nn

from ..models.reading import target_log_probs
from .constraints import (ESTIMATE_WALKS, MAX_DRAWS, Constraint, check_constraint, draw_satisfying,
                          estimate_probability, too_unlikely)
from ..data.items import BOUNDARY, Vocab
from ..data.labels import LabelSet, draw_labels, for_label, label_numbers
from ..models.decoding import Decoder
from .. import bounds
from ..device import model_device
from ..bounds import MAX_LEN, MAX_SAMPLES
from ..errors import ParameterError

BATCH_SIZE = 16_384  # items drawn together; larger requests are drawn in batches of this size
BATCH_CHARS = 2 ** 25  # at most this many characters (items x max_len) of a batch in memory at once
NOVEL_MAX_BATCHES = 50  # tries before generate(exclude=...) gives up


class Sample(NamedTuple):
    """One generated item and its log-probability under the model (nats, characters + end token).

    A named tuple: 10,000 of them are made in 2.5 ms, against 4 ms for a frozen dataclass."""

    item: str
    log_prob: float


def check_controls(*, n: int | None = None, max_len: int | None = None, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float | None = None, min_len: int = 0, prefix_len: int = 0) -> None:
    """Refuse impossible sampling settings with a one-line ParameterError naming the parameter, before any work.

    Each value is held to its bound in `bounds.BOUNDS` (the command line parses with the same ones);
    then the values are checked against each other.
    """
    for name, value in (("n", n), ("max_len", max_len), ("top_k", top_k), ("top_p", top_p)):
        bounds.check_optional(name, value)
    bounds.check("temperature", temperature)
    bounds.check("min_len", min_len)
    if max_len is not None:
        if min_len > max_len:
            raise ParameterError("min_len", f"({min_len}) is greater than max_len ({max_len})", related=("max_len",))
        if prefix_len > max_len:
            raise ParameterError("max_len", f"({max_len}) is shorter than the prefix ({prefix_len} characters)")


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
                  temperature: float, top_k: int | None, top_p: float | None,
                  min_len: int, cache: bool = True) -> tuple[list[list[int]], list[float]]:
    """One batch of n items: (index lists without the boundary, prefix included; log-probs)."""
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
    10x faster than decoding row by row (which a vocabulary holding NUL itself still takes)."""
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


def _batches(model, n, max_len, generator, prefix, temperature, top_k, top_p, min_len, batch_size, cache):
    done = 0
    batch_size = max(1, min(batch_size, BATCH_CHARS // max_len))  # long items: fewer at once, memory stays bounded
    while done < n:
        m = min(batch_size, n - done)
        yield _sample_batch(model, m, max_len, generator, prefix, temperature, top_k, top_p, min_len, cache)
        done += m


def draw_batches(model: nn.Module, n: int, max_len: int, generator: torch.Generator, *, prefix: Sequence[int] = (),
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, min_len: int = 0,
                 batch_size: int = BATCH_SIZE, cache: bool = True) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """n items, drawn batch_size at a time: for each batch, (what was drawn after the prefix (m, steps), each
    row ending at its first boundary; log-probabilities under the model (m,)), as `sample_with_log_probs` says."""
    check_controls(max_len=max_len, temperature=temperature, top_k=top_k, top_p=top_p, min_len=min_len,
                   prefix_len=len(prefix))
    was_training = model.training
    model.eval()
    try:
        yield from _batches(model, n, max_len, generator, list(prefix), temperature, top_k, top_p, min_len,
                            batch_size, cache)
    finally:
        model.train(was_training)


def sample_with_log_probs(model: nn.Module, n: int, max_len: int, generator: torch.Generator, *,
                          prefix: Sequence[int] = (), **controls) -> tuple[list[list[int]], list[float]]:
    """n items as index lists (boundary removed, prefix included) and their log-probabilities under the model.

    Each step gives the model every unfinished item's newest character at once (`decoding.Decoder`: a
    sequence model carries its cache; a windowed model, or any model with cache=False, reads each item's
    last block_size indices again, `contexts.next_logits`) and draws the next index from the controlled
    softmax. The cache changes how the logits are computed, not what they are: the same seed gives the
    same items either way (up to float rounding in the last digits of the logits). Model in eval mode while
    sampling (BatchNorm uses its running statistics), then restored. Keyword controls: temperature, top_k,
    top_p, min_len, batch_size (memory: it does not change the items) and cache.
    """
    return _collected(draw_batches(model, n, max_len, generator, prefix=prefix, **controls),
                      lambda out: index_lists(out, prefix))


def sample_texts(model: nn.Module, vocab: Vocab, n: int, max_len: int, generator: torch.Generator, *,
                 prefix: Sequence[int] = (), **controls) -> tuple[list[str], list[float]]:
    """`sample_with_log_probs` with the items as text (`texts`: decoded a batch at a time)."""
    start = vocab.decode(prefix)
    return _collected(draw_batches(model, n, max_len, generator, prefix=prefix, **controls),
                      lambda out: texts(vocab, out, start))


def _collected(batches, items_of) -> tuple[list, list[float]]:
    """The batches' items (`items_of` each drawn table) and log-probabilities, in order, as two lists."""
    items: list = []
    log_probs: list[float] = []
    for out, lp in batches:
        items += items_of(out)
        log_probs += lp.tolist()
    return items, log_probs


def sample_indices(model: nn.Module, n: int, max_len: int, generator: torch.Generator, **controls) -> list[list[int]]:
    """Draw n items as index lists (boundary removed); keyword controls as in `sample_with_log_probs`."""
    return sample_with_log_probs(model, n, max_len, generator, **controls)[0]


def encode_prefix(vocab: Vocab, prefix: str) -> list[int]:
    """The prefix's indices; characters the model has never seen are named in a MakemoreError."""
    from .scoring import encode_known

    return encode_known(vocab, prefix, "the prefix")


def generate(model: nn.Module, vocab: Vocab, n: int, *, max_len: int, seed: int = 0,
             device: str | torch.device | None = None, prefix: str = "", temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, min_len: int = 0,
             exclude: Iterable[str] | None = None, max_batches: int = NOVEL_MAX_BATCHES,
             batch_size: int = BATCH_SIZE, suffix: str | None = None, contains: str | None = None,
             max_draws: int = MAX_DRAWS, cache: bool = True) -> list[Sample]:
    """n items with their log-probabilities; the same seed (and settings) gives the same items.

    With `exclude` (e.g. the training items), only novel items are kept: none in `exclude`, no
    duplicates. Batches of twice the missing count (at least 64) are drawn until there are exactly
    n; after `max_batches` batches without enough, a ParameterError (of `exclude`) says how many were found.
    Batches are drawn `batch_size` items at a time (memory), which does not change the items.

    With `suffix` and/or `contains`, every item ends with / contains that string: the same distribution
    conditioned on it, by exact rejection within `max_draws` draws (`makemore.generation.constraints`).
    `cache=False` decodes without the sequence models' caches (`makemore.models.decoding`): slower, same items.
    """
    check_controls(n=n, max_len=max_len, temperature=temperature, top_k=top_k, top_p=top_p, min_len=min_len,
                   prefix_len=len(prefix))
    bounds.check("seed", seed)
    bounds.check("max_draws", max_draws)
    constraint = Constraint(suffix, contains)
    check_constraint(vocab, constraint, prefix=prefix, min_len=min_len, max_len=max_len)
    device = torch.device(device) if device is not None else model_device(model)
    generator = torch.Generator(device=device).manual_seed(seed)
    controls = dict(prefix=encode_prefix(vocab, prefix), temperature=temperature, top_k=top_k, top_p=top_p,
                    min_len=min_len, batch_size=batch_size, cache=cache)

    def draw(m: int) -> tuple[list[str], list[float]]:
        return sample_texts(model, vocab, m, max_len, generator, **controls)

    def walks() -> list[list[int]]:  # unconstrained items (temperature 1, no masks): the constraint's probability
        return sample_indices(model, ESTIMATE_WALKS, max_len, torch.Generator(device=device).manual_seed(seed),
                              prefix=controls["prefix"], cache=cache)

    if constraint:
        return _constrained(model, vocab, n, draw, constraint, exclude, max_draws, batch_size, walks, prefix)
    if exclude is None:
        return list(map(Sample._make, zip(*draw(n))))
    return _novel(n, draw, set(exclude), max_batches)


def _novel(n: int, draw, taken: set[str], max_batches: int) -> list[Sample]:
    """Draw batches until n items outside `taken` (and new to each other) are found."""
    found: list[Sample] = []
    drawn = 0
    for _ in range(max_batches):
        need = n - len(found)
        m = min(max(2 * need, 64), MAX_SAMPLES)  # a margin for repeats, without drawing far more than needed
        items, log_probs = draw(m)
        drawn += m
        for item, lp in zip(items, log_probs):
            if item not in taken:
                taken.add(item)
                found.append(Sample(item, lp))
                if len(found) == n:
                    return found
    raise ParameterError(
        "exclude", f"left only {len(found):,} of {n:,} new items after {max_batches} batches ({drawn:,} draws): the "
                   f"model mostly repeats the excluded items or itself. Ask for fewer, or widen the sampling "
                   f"(a higher temperature, a larger top-k, top-p or maximum length)")


def _constrained(model, vocab: Vocab, n: int, draw, constraint: Constraint, exclude, max_draws: int,
                 batch_size: int, walks, prefix: str) -> list[Sample]:
    """n items satisfying the constraint (and new, with `exclude`), by rejection; an error past the budget."""
    taken = None if exclude is None else set(exclude)

    def accept(item: str) -> bool:
        if not constraint.holds(item) or (taken is not None and item in taken):
            return False
        if taken is not None:
            taken.add(item)
        return True

    def estimate() -> float | None:
        return estimate_probability(model, vocab, prefix, constraint, walks())

    drawn = draw_satisfying(draw, n, accept, max_draws, batch_size, estimate)
    if len(drawn.found) < n:
        raise too_unlikely(constraint, n, drawn, max_draws, estimate, novel=taken is not None)
    return list(map(Sample._make, drawn.found))


@dataclass(frozen=True)
class LabelledSample:
    """A generated item of a labelled run, with the label it was drawn for (None for an unlabelled run)."""

    item: str
    log_prob: float  # log p(item | label): nats, characters + end token
    label: str | None


def generate_labelled(model: nn.Module, vocab: Vocab, n: int, *, seed: int = 0, labels: LabelSet | None = None,
                      label: str | Sequence[str] | None = None, **controls) -> list[LabelledSample]:
    """`generate` for a run that may have labels: each item's label is `label` (one name), or drawn among those
    named (all by default) by their share of the training items; then each label's items are generated
    together, from the model seen as that label's (`labels.WithLabel`), and put back in the drawn order.
    Every control of `generate` applies to each label (with `exclude`, novel across all of them)."""
    labels = labels if labels is not None else getattr(model, "label_set", None)
    chosen = label_numbers(labels, label)
    bounds.check("n", n)
    bounds.check("seed", seed)
    drawn = draw_labels(n, labels, chosen, seed)
    exclude = controls.pop("exclude", None)
    taken = None if exclude is None else set(exclude)
    out: list[LabelledSample | None] = [None] * n
    for k in sorted(set(drawn)):
        places = [i for i, lb in enumerate(drawn) if lb == k]
        # each label its own random stream (label 0's is the seed itself, so an unlabelled run's items never changed)
        label_seed = seed if k == 0 else (seed + 7_919 * k) % 2 ** 64
        samples = generate(for_label(model, k), vocab, len(places), seed=label_seed, exclude=taken, **controls)
        name = None if labels is None else labels.names[k]
        for i, s in zip(places, samples):
            out[i] = LabelledSample(s.item, s.log_prob, name)
            if taken is not None:
                taken.add(s.item)
    return out  # type: ignore[return-value]


def sample_items(model: nn.Module, vocab: Vocab, n: int, max_len: int, seed: int,
                 device: str | torch.device = "cpu", label: str | Sequence[str] | None = None,
                 labels: LabelSet | None = None, **controls) -> list[str]:
    """n new items as text; the same seed gives the same items. Keyword controls as in `generate`
    (prefix, temperature, top_k, top_p, min_len, exclude, suffix, contains). For a labelled run,
    `label` picks the label (or labels) to sample (`generate_labelled`; `labels` defaults to the
    run's, which `load_run` attaches to its model)."""
    if label is None and labels is None and getattr(model, "label_set", None) is None:
        return [s.item for s in generate(model, vocab, n, max_len=max_len, seed=seed, device=device, **controls)]
    return [s.item for s in generate_labelled(model, vocab, n, seed=seed, labels=labels, label=label, max_len=max_len,
                                              device=device, **controls)]
