"""Generation with every control: what `Run.generate` draws, label by label, keeping the items that pass the rules.

Items are drawn in batches (`batches`: temperature, top-k/top-p, prefix, length bounds, avoid lists),
one label at a time on a labelled run; the request's rules (`rules`: suffix/contains, avoid, novel,
exclude, unique, the thresholds) keep the items that pass, drawing more until there are n (exact
rejection: `constraints`). With keys, each key draws from a stream of its own (`keys`).
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Iterable

import torch
import torch.nn as nn

from ..bounds import MAX_SAMPLES
from ..data.items import Vocab
from ..data.labels import LabelSet, WithLabel, draw_labels, for_label, label_numbers
from ..device import model_device
from ..errors import ParameterError
from .avoid import AvoidList
from .batches import (BATCH_CHARS, BATCH_SIZE, Drawing, Sample, draw, encode_prefix, generator_uniforms, index_lists,
                      prefix_log_prob, sample_indices, texts, truncate_logits)
from .constraints import (ESTIMATE_WALKS, FIRST_DRAW, check_constraint, draw_satisfying, estimate_probability, too_unlikely)
from .keys import keyed_items
from .request import GenerateRequest
from .rules import Rules

NOVEL_MAX_BATCHES = 50  # batches without enough new items before a request for distinct items gives up


def generate(model: nn.Module, vocab: Vocab, request: GenerateRequest, *, exclude: Iterable[str] | None = None,
             batch_size: int = BATCH_SIZE, cache: bool = True) -> list[Sample]:
    """request.n items drawn from the model with the request's controls; the same seed gives the same items.

    The request must be resolved (a seed and a max_len: `GenerateRequest.resolved`; `Run.generate` does it).
    Each item's label (a labelled run: the model carries its `label_set`) is the request's label, or drawn
    among those named (all by default) by their share of the training items; each label's items are drawn
    together, from the model seen as that label's (`labels.WithLabel`), and put back in the drawn order.

    Rules (`rules`): with a suffix, contains, avoid list, `exclude` (the run's training items, for novel),
    request.exclude, unique or a threshold, only the drawn items that pass come back, more being drawn until
    there are n: the same distribution conditioned on passing, by exact rejection within request.max_draws
    draws (`makemore.generation.constraints`); past it, a ParameterError names the rule that stood in the way.
    Items that only need to be new (novel, exclude, unique) are drawn in batches of twice the missing count,
    and after NOVEL_MAX_BATCHES batches without enough the error says how many distinct items were found.
    With request.keys, one item per key (`keys.keyed_items`).
    cache (`makemore.models.decoding`; False reads every item whole again) changes how the items are computed,
    not which; batch_size bounds memory (the same seed and batch_size give the same items; with keys, any batch
    size does).
    """
    request.check()
    if request.seed is None or request.max_len is None:
        raise ParameterError("request", "needs a seed and a max_len: resolve it first (GenerateRequest.resolved)")
    check_constraint(vocab, request.constraint, prefix=request.prefix, min_len=request.min_len,
                     max_len=request.max_len)
    avoid = compile_avoid(vocab, request, model_device(model))
    # a labelled run's model (a view of one label, `WithLabel`, is already that label's)
    labels: LabelSet | None = None if isinstance(model, WithLabel) else getattr(model, "label_set", None)
    chosen = label_numbers(labels, request.label)
    rules = Rules(request, frozenset(exclude or ()), set() if request.distinct or exclude is not None else None)
    prefix = tuple(encode_prefix(vocab, request.prefix))

    def drawing(k: int) -> tuple[Drawing, str | None]:  # label k's model and name
        view = model if labels is None else for_label(model, k)
        start = avoid.state_after(prefix) if avoid is not None else 0
        return Drawing(view, request, prefix, cache, avoid, start), None if labels is None else labels.names[k]

    if request.keys:
        return keyed_items(drawing, vocab, request, rules, labels, chosen, batch_size)
    drawn = draw_labels(request.n, labels, chosen, request.seed)

    def drawer(k: int) -> _Drawer:
        # each label its own random stream (label 0's is the seed itself: an unlabelled run's stream)
        label_seed = request.seed if k == 0 else (request.seed + 7_919 * k) % 2 ** 64
        return _Drawer(*drawing(k), vocab, label_seed, batch_size, rules)

    groups = sorted(set(drawn))
    if len(groups) == 1:  # an unlabelled run, or one label: the items come in the order drawn
        return drawer(groups[0]).items(request.n)
    out: list[Sample | None] = [None] * request.n
    for k in groups:
        places = [i for i, lb in enumerate(drawn) if lb == k]
        for i, s in zip(places, drawer(k).items(len(places))):
            out[i] = s
    return out  # type: ignore[return-value]


def compile_avoid(vocab: Vocab, request: GenerateRequest, device) -> AvoidList | None:
    """The request's avoid list compiled for the vocabulary (None without one); a ParameterError of `avoid` when
    the prefix, suffix or contains holds an entry, or when no item of the allowed lengths can avoid them all."""
    if not request.avoid:
        return None
    avoid = AvoidList.build(request.avoid, vocab)
    for name in ("prefix", "suffix", "contains"):
        text = getattr(request, name)
        entry = avoid.found_in(text) if text else None
        if entry is not None:
            raise ParameterError("avoid", f"entry {entry!r} is in the {name} {text!r}: no item could avoid it; take "
                                          f"it out of one of them", related=(name,))
    start = avoid.state_after(vocab.encode(request.prefix))
    shortest = max(request.min_len, len(request.suffix or ""), len(request.contains or ""))
    avoid.check_possible(start, len(request.prefix), shortest, request.max_len)
    return avoid.to(device)


class _Drawer:
    """One label's items (or an unlabelled run's): plain draws, or the drawn items that pass the request's rules."""

    def __init__(self, drawing: Drawing, label: str | None, vocab: Vocab, seed: int, batch_size: int, rules: Rules):
        self.drawing, self.label, self.vocab, self.seed, self.rules = drawing, label, vocab, seed, rules
        self.request, self.batch_size = drawing.request, batch_size
        self.device = model_device(drawing.model)  # the random stream lives where the model does
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def draw(self, m: int) -> tuple[list[str | None], list[float]]:
        """m items as text (decoded a batch at a time; None for an item dropped for an avoided entry) and their
        log-probabilities."""
        items: list[str | None] = []
        log_probs: list[float] = []
        for batch in self.drawing.batches(m, generator_uniforms(self.generator), self.batch_size):
            text = texts(self.vocab, batch.out, self.request.prefix)
            if batch.dead is not None and bool(batch.dead.any()):
                text = [None if d else t for t, d in zip(text, batch.dead.tolist())]
            items += text
            log_probs += batch.log_prob.tolist()
        return items, log_probs

    def samples(self, items: list[str], log_probs: list[float]) -> list[Sample]:
        """The items as Samples of this drawer's label, made in one pass (no keyword handling per item)."""
        return [Sample(*row) for row in zip(items, log_probs, repeat(self.label))]

    def walks(self) -> list[list[int]]:
        """Unconstrained items (temperature 1, no masks): where a constraint's probability is estimated."""
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        return sample_indices(self.drawing.model, ESTIMATE_WALKS, self.request.max_len, generator,
                              prefix=self.drawing.prefix, cache=self.drawing.cache)

    def items(self, n: int) -> list[Sample]:
        """n items that pass the request's rules."""
        r = self.request
        if r.constraint or r.avoid or r.thresholds:
            return self._filtered(n)
        if self.rules.seen is None and not self.rules.training and not r.exclude:
            return self.samples(*self.draw(n))
        return self._new(n)

    def _new(self, n: int) -> list[Sample]:
        """n items outside the training items / exclude list, and new to each other when they must be."""
        found: list[Sample] = []
        drawn = 0
        for _ in range(NOVEL_MAX_BATCHES):
            m = min(max(2 * (n - len(found)), 64), MAX_SAMPLES)  # a margin for repeats, not far more than needed
            items, log_probs = self.draw(m)
            drawn += m
            for item, lp in zip(items, log_probs):
                if self.rules.accept(item, lp):
                    found.append(Sample(item, lp, self.label))
                    if len(found) == n:
                        return found
        raise self.rules.short_of(n, len(found), drawn)

    def _filtered(self, n: int) -> list[Sample]:
        """n items that pass every rule, by rejection; an error past the budget naming the rule in the way."""
        constraint = self.request.constraint

        def estimate() -> float | None:  # P(constraint): an upper bound on the rate with the other rules too
            return estimate_probability(self.drawing.model, self.vocab, self.request.prefix, constraint, self.walks())

        # a suffix or contains may be rare: thousands first; the other rules pass most items: a margin over n
        first = FIRST_DRAW if constraint else math.ceil(1.25 * n) + 16
        drawn = draw_satisfying(self.draw, n, self.rules.accept, self.request.max_draws, self.batch_size,
                                estimate if constraint else None, first)
        if len(drawn.found) < n:
            if constraint and self.rules.blame() in ("suffix", "contains"):
                raise too_unlikely(constraint, n, drawn, self.request.max_draws, estimate,
                                   novel=self.rules.seen is not None)
            raise self.rules.short_of(n, len(drawn.found), drawn.drawn)
        return self.samples(*zip(*drawn.found)) if drawn.found else []


__all__ = ["generate", "Sample", "truncate_logits", "draw", "encode_prefix", "sample_indices", "texts", "index_lists",
           "prefix_log_prob", "BATCH_SIZE", "BATCH_CHARS", "NOVEL_MAX_BATCHES", "compile_avoid"]
