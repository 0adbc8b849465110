"""Items that must end with a string (`suffix`) or contain one (`contains`): the sampler's own distribution,
conditioned on the constraint.

What is sampled. The distribution of `sample.generate` with the same controls (prefix, temperature,
top-k/top-p, length bounds), given that the item satisfies the constraint: an item's probability is
its probability under the sampler divided by the probability of the constraint, and zero if it fails.

How: exact rejection from large batches. Items are drawn as usual, thousands advancing together with
the model's cache (`decoding.Decoder`, which also reads the prefixes items share only once), and
those that fail the constraint are dropped. This is exact by construction, and no exact method we
know does better per item drawn, for a reason worth spelling out. Any sampler that walks the model
from the start reaches a prefix w with probability p(w), and the items it may then accept, w +
suffix, have probability p(w) * p(suffix, end | w): summed over w, at most P(constraint) accepted
items per walk, whatever it does at w. Going faster means walking elsewhere than the model does,
e.g. forcing the suffix where the model would have ended (p(w) p(end | w) instead of p(w)
p(suffix, end | w)), and then only importance weights can correct the result, without a bound
(p(suffix, end | w) / p(end | w) has none) and so with a bias for any finite number of draws.
Rejection's cost is plain instead: about n / P(constraint) draws, 17,000 for 100 names ending in
-ella (0.6% of names); `benchmarks/sampling.py` times it.

The budget: at most `max_draws` draws, and fewer when even an optimistic rate (the "rule of three",
(found + 3) / drawn) could not meet n within them. Then a ParameterError says how unlikely the
constraint is under the model: from the draws when some satisfied it, else from a Rao-Blackwellised
estimate (`estimate_probability`) that sees probabilities far below 1 / draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn as nn

from .. import bounds
from ..models.layers import eval_mode
from ..models.reading import target_log_probs
from ..data.items import BOUNDARY, Vocab
from ..device import model_device
from ..errors import ParameterError
from .scoring import check_known

MAX_DRAWS = 1_000_000  # default budget of items drawn for one constrained request
FIRST_DRAW = 4096  # items drawn before anything is known of the constraint's rate
ESTIMATE_WALKS = 1000  # unconstrained items whose prefixes estimate an unmet constraint's probability
HOPELESS = 10  # stop at once when the estimate says n would take this many times the budget

Draw = Callable[[int], tuple[list, list[float]]]  # m -> (items or None, log-probs), as the sampler gives


@dataclass(frozen=True)
class Constraint:
    """What every item must satisfy besides its prefix: end with `suffix`, contain `contains` (None: no such rule)."""

    suffix: str | None = None  # every item ends with it
    contains: str | None = None  # every item contains it (anywhere, the prefix included)

    def __bool__(self) -> bool:
        return self.suffix is not None or self.contains is not None

    def holds(self, item: str) -> bool:
        return (self.suffix is None or item.endswith(self.suffix)) and (self.contains is None or self.contains in item)

    def describe(self) -> str:
        parts = [f"suffix {self.suffix!r}" if self.suffix is not None else "",
                 f"contains {self.contains!r}" if self.contains is not None else ""]
        return " and ".join(p for p in parts if p)

    @property
    def parameter(self) -> str:
        """The library parameter an error about the constraint names."""
        return "suffix" if self.suffix is not None else "contains"


def check_constraint(vocab: Vocab | None, constraint: Constraint, *, prefix: str = "", min_len: int = 0,
                     max_len: int | None = None) -> None:
    """Refuse an empty suffix/contains, a character the model never saw (named), or lengths no item can have.

    With vocab None only what needs no model is checked (the command line does so before loading a run).
    """
    for name, text in (("suffix", constraint.suffix), ("contains", constraint.contains)):
        if text == "":
            raise ParameterError(name, "is empty: give at least one character, or leave it out for no constraint")
        if text is not None and vocab is not None:
            check_known(vocab, [text], f"the {name}")
    if max_len is not None and shortest_length(prefix, constraint, min_len, max_len) is None:
        wanted = ", ".join(f"{k} {v!r}" for k, v in (("prefix", prefix), ("suffix", constraint.suffix),
                                                    ("contains", constraint.contains)) if v)
        raise ParameterError("max_len", f"({max_len}) leaves no room for an item with {wanted}"
                                        f"{f' of at least {min_len} characters' if min_len else ''}; raise it",
                             related=("max_len",))


def shortest_length(prefix: str, constraint: Constraint, min_len: int = 0, max_len: int = bounds.MAX_LEN) -> int | None:
    """The shortest length in [min_len, max_len] that an item with the prefix and the constraint can have, or None."""
    suffix, contains = constraint.suffix or "", constraint.contains or ""
    longest_needed = len(prefix) + len(contains) + len(suffix)  # from here on, every length fits
    for length in range(max(min_len, len(prefix), len(suffix), len(contains)), max_len + 1):
        if length >= longest_needed or _fits(prefix, suffix, contains, length):
            return length
    return None


def _fits(prefix: str, suffix: str, contains: str, length: int) -> bool:
    """Whether some string of `length` characters starts with prefix, ends with suffix and contains `contains`."""
    fixed: list[str | None] = [None] * length
    for start, text in ((0, prefix), (length - len(suffix), suffix)):
        for i, ch in enumerate(text, start):
            if fixed[i] not in (None, ch):
                return False
            fixed[i] = ch
    return not contains or any(all(fixed[i + j] in (None, ch) for j, ch in enumerate(contains))
                               for i in range(length - len(contains) + 1))


def draw_satisfying(draw: Draw, n: int, accept: Callable[[str | None, float], bool], max_draws: int = MAX_DRAWS,
                    batch_size: int = 16_384, estimate: Callable[[], float | None] | None = None,
                    first: int = FIRST_DRAW) -> Drawn:
    """Draw batches until n items pass `accept(item, log_prob)` or the budget says stop (an item may be None: a
    draw dropped on the way, e.g. for an avoided entry, which counts as drawn and never passes).

    Batch sizes follow the rate seen so far, aiming at the missing count with a 20% margin; they depend
    only on what was drawn, so the same seed gives the same items. The first batch is `first` items (a rare
    suffix wants thousands; rules that most items pass, e.g. an avoid list, a little more than n). When it has none,
    `estimate` (the constraint's probability) is asked once: far too rare to meet n within the budget
    (HOPELESS times over), the search stops there instead of drawing on to the rule of three.
    """
    bounds.check("max_draws", max_draws)
    result = Drawn([], 0, None)
    found = result.found
    while len(found) < n:
        need, drawn = n - len(found), result.drawn
        if drawn and drawn + need * drawn / (len(found) + 3) > max_draws:
            break  # even at an optimistic rate the budget would run out first
        if drawn and not found and estimate is not None and result.estimate is None:
            result.estimate = estimate()
            if result.estimate is not None and need > HOPELESS * max_draws * result.estimate:
                break
        rate = len(found) / drawn if found else 0.0
        m = math.ceil(1.2 * need / rate) if rate else (first if not drawn else 4 * drawn)
        m = max(1, min(m, batch_size, max_draws - drawn))
        items, log_probs = draw(m)
        result.drawn += m
        for item, lp in zip(items, log_probs):
            if accept(item, lp):
                found.append((item, lp))
                if len(found) == n:
                    break
    return result


@dataclass
class Drawn:
    """What `draw_satisfying` drew: the accepted items, how many were drawn, the estimate if one was made."""

    found: list[tuple[str, float]]  # (item, log-prob) of each accepted item, in order
    drawn: int  # items drawn in all
    estimate: float | None  # the constraint's estimated probability, when it was asked for


def too_unlikely(constraint: Constraint, n: int, drawn: Drawn, max_draws: int,
                 estimate: Callable[[], float | None], novel: bool = False) -> ParameterError:
    """The error when the budget ran out: how many were found, and how likely the constraint is under the model."""
    found, draws = len(drawn.found), f"{drawn.drawn:,} draws"
    if found:
        seen = f"{found:,} of {n:,} {'new ' if novel else ''}items satisfied it in {draws} (a probability of about " \
               f"{found / drawn.drawn:.2g})"
    else:
        p = drawn.estimate if drawn.estimate is not None else estimate()
        seen = f"none of {draws} satisfied it" + (f", and the model gives it a probability of about {p:.2g}"
                                                  if p is not None else f" (a probability below {3 / drawn.drawn:.2g})")
    value = constraint.suffix if constraint.parameter == "suffix" else constraint.contains
    related = ("contains",) if constraint.suffix is not None and constraint.contains is not None else ()
    return ParameterError(
        constraint.parameter,
        f"{value!r}{' with contains ' + repr(constraint.contains) if related else ''} is too unlikely under the "
        f"model: {seen}, too low for {n:,} items within {max_draws:,} draws. Ask for fewer items, loosen the "
        f"constraint, or raise the temperature", related=related)


@torch.no_grad()
def estimate_probability(model: nn.Module, vocab: Vocab, prefix: str, constraint: Constraint,
                         walks: Sequence[Sequence[int]]) -> float | None:
    """P(constraint | prefix) under the model (temperature 1, no masks), from unconstrained items `walks`.

    Rao-Blackwellised: instead of counting the walks that satisfy it, each walk adds, at every prefix
    w it passed through, the exact probability that the constraint is first met right after w (the
    suffix then the end; or `contains` completed there for the first time), so a probability of 1e-9
    shows in a thousand walks. Unbiased: a walk passes through w with probability p(w). None for a
    suffix and a contains together (the first meeting of both has no such simple form).
    """
    if constraint.suffix is not None and constraint.contains is not None:
        return None
    with eval_mode(model):
        return _estimate(model, vocab, prefix, constraint, walks)


def _estimate(model: nn.Module, vocab: Vocab, prefix: str, constraint: Constraint,
              walks: Sequence[Sequence[int]]) -> float:
    text = constraint.suffix if constraint.suffix is not None else constraint.contains
    if constraint.contains is not None and constraint.contains in prefix:
        return 1.0
    P, tail = vocab.encode(prefix), vocab.encode(text) + ([BOUNDARY] if constraint.suffix is not None else [])
    # where the constraint overlaps the prefix's end: the same for every walk, counted once
    overlaps = [P[:j] for j in range(max(0, len(P) - len(text)), len(P)) if prefix[j:] == text[:len(P) - j]]
    along = [walk[:j] for walk in walks for j in range(len(P), len(walk) + 1)]  # every prefix each walk went through
    sequences, weights = [], []  # (candidate item's codes, where its constraint's probability starts); its weight
    for w, weight in [*((w, 1.0) for w in overlaps), *((w, 1.0 / max(len(walks), 1)) for w in along)]:
        if constraint.contains is not None and constraint.contains in vocab.decode(list(w)) + text[:-1]:
            continue  # `contains` met before: not its first meeting
        sequences.append((list(w) + tail, max(len(w), len(P))))
        weights.append(weight)
    return sum(p * weight for p, weight in zip(_probs_from(model, sequences), weights)) if sequences else 0.0


def _probs_from(model: nn.Module, sequences: list[tuple[list[int], int]], rows: int = 4096) -> list[float]:
    """The probability of each sequence's characters from position `start` on, given those before ([0] first)."""
    device = model_device(model)
    out: list[float] = []
    for i in range(0, len(sequences), rows):
        chunk = sequences[i:i + rows]
        L = max(len(s) for s, _ in chunk)
        X = torch.zeros((len(chunk), L), dtype=torch.long)
        Y = torch.full((len(chunk), L), -1, dtype=torch.long)
        for r, (s, start) in enumerate(chunk):
            X[r, 1:len(s)] = torch.tensor(s[:-1], dtype=torch.long)
            Y[r, start:len(s)] = torch.tensor(s[start:], dtype=torch.long)
        out += target_log_probs(model, X.to(device), Y.to(device)).sum(1).exp().tolist()
    return out
