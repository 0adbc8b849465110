"""One generation request: every control of drawing items (or searching the most likely ones), checked once.

`Run.generate(request)` is the one public door to generation; the command line's `sample` and the API's
`POST /api/sample` build a `GenerateRequest` from what they were given and hand it over. Every value is
held to its bound in `makemore.bounds` (the command line parses with the same table), then the values are
checked against each other, here and nowhere else. The default `max_len` rule lives here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Union

from .. import bounds
from ..errors import ParameterError
from .constraints import MAX_DRAWS, Constraint, check_constraint

MAX_EXPANSIONS = 100_000  # the search's default budget: prefixes it may expand before it stops
RANDOM_ONLY = ("temperature", "top_k", "top_p", "seed")  # controls that only shape random draws
LabelNames = Union[str, Sequence[str], None]


@dataclass(frozen=True)
class GenerateRequest:
    """Every control of one generation call. The defaults draw 10 items from the model's own distribution."""

    n: int = 10  # items to draw (with most_likely, that count is taken instead)
    seed: Optional[int] = None  # the random stream: the same seed gives the same items; None draws a fresh one
    temperature: float = 1.0  # logits are divided by it before the softmax (< 1 sharper, > 1 flatter)
    top_k: Optional[int] = None  # only the k most likely next characters can be drawn
    top_p: Optional[float] = None  # nucleus: the fewest most likely characters whose mass reaches p
    prefix: str = ""  # every item starts with it (conditioning: generation continues from it)
    suffix: Optional[str] = None  # every item ends with it (exact rejection: the conditioned distribution); None: no rule
    contains: Optional[str] = None  # every item contains it, anywhere, the prefix included; None: no rule
    min_len: int = 0  # below this many characters the end token cannot be drawn
    max_len: Optional[int] = None  # an item reaching it ends there; None: `default_max_len` of the run
    novel: bool = False  # only items absent from the run's training file, and new to each other
    exclude: tuple[str, ...] = ()  # items never to give (with novel, the training items are added to them)
    label: LabelNames = None  # a labelled run: the label(s) to draw for (None: every label, by its share)
    most_likely: Optional[int] = None  # instead of drawing: this many most probable items, exactly, best first
    max_expansions: Optional[int] = None  # the search's budget (prefixes expanded); None: MAX_EXPANSIONS
    max_draws: int = MAX_DRAWS  # items a request with rules (suffix, contains, avoid, ...) may draw before giving up
    avoid: tuple[str, ...] = ()  # no item contains any of these (case-folded, after the run's text options)
    unique: bool = False  # no item twice in one output (novel implies it)
    keys: tuple[str, ...] = ()  # one item per key, a function of the run, the request and the key alone; n is unused
    blend: tuple[tuple[str, float], ...] = ()  # a labelled run: (label, weight) pairs; each next character is drawn
    # from the weighted mixture of those labels' next-character distributions (weights scaled to sum to 1)
    min_log_prob: Optional[float] = None  # only items whose log-probability under the model is at least this
    max_nll_per_char: Optional[float] = None  # only items whose NLL per character (-log_prob / (len + 1)) is at most this

    @property
    def constraint(self) -> Constraint:
        """The suffix/contains rule (None: no such rule; "" is refused by `check`)."""
        return Constraint(self.suffix, self.contains)

    @property
    def count(self) -> int:
        """How many items the request asks for: most_likely's count, else one per key, else n."""
        return self.most_likely if self.most_likely is not None else len(self.keys) if self.keys else self.n

    @property
    def distinct(self) -> bool:
        """Whether no item may come twice (unique, or novel, which implies it)."""
        return self.unique or self.novel

    @property
    def thresholds(self) -> bool:
        """Whether min_log_prob or max_nll_per_char filters the items."""
        return self.min_log_prob is not None or self.max_nll_per_char is not None

    @property
    def budget(self) -> int:
        """The search's budget, its default filled in."""
        return self.max_expansions if self.max_expansions is not None else MAX_EXPANSIONS

    def check(self) -> None:
        """Refuse impossible settings with one ParameterError naming the parameter, before any work."""
        if self.most_likely is not None:
            bounds.check("n", self.most_likely, key="most_likely.n")
            bounds.check_optional("max_expansions", self.max_expansions)
            for name in RANDOM_ONLY:
                default = GenerateRequest.__dataclass_fields__[name].default
                if getattr(self, name) != default:
                    raise ParameterError(name, "does not apply with most_likely: the search ranks items by the "
                                               "model's own probabilities, and temperature, top_k, top_p and seed "
                                               "only shape random draws; leave it out",
                                     related=("most_likely", *RANDOM_ONLY))
        elif self.max_expansions is not None:
            raise ParameterError("max_expansions", "is only used with most_likely; leave it out",
                                 related=("most_likely",))
        bounds.check_optional("seed", self.seed)
        bounds.check("max_draws", self.max_draws)
        check_shipping(self)
        check_controls(n=self.n, max_len=self.max_len, temperature=self.temperature, top_k=self.top_k,
                       top_p=self.top_p, min_len=self.min_len, prefix_len=len(self.prefix))
        check_constraint(None, self.constraint, prefix=self.prefix, min_len=self.min_len,
                         max_len=self.max_len if self.max_len is not None else bounds.MAX_LEN)

    def resolved(self, max_item_len: int, cap: int = bounds.MAX_LEN) -> "GenerateRequest":
        """The request with its max_len filled in (`default_max_len`) and checked again with it."""
        if self.max_len is not None:
            return self
        done = replace(self, max_len=default_max_len(max_item_len, self.min_len, len(self.prefix), cap))
        done.check()
        return done


def check_shipping(request: GenerateRequest) -> None:
    """The rules of `avoid`, `exclude`, `unique`, `keys`, `blend` and the thresholds that need no model."""
    bounds.check_optional("min_log_prob", request.min_log_prob)
    bounds.check_optional("max_nll_per_char", request.max_nll_per_char)
    for name in ("avoid", "exclude", "keys"):
        most = bounds.bound(f"{name}.count").high
        if len(getattr(request, name)) > most:
            raise ParameterError(name, f"holds {len(getattr(request, name)):,} entries; at most {most:,} are allowed")
    for i, entry in enumerate(request.avoid):
        if not entry:
            raise ParameterError(f"avoid[{i}]", "is empty: every entry needs at least one character (an empty entry "
                                                "would forbid every item); leave it out")
    check_keys(request.keys)
    check_blend(request.blend, request.label)
    if request.most_likely is not None and request.keys:
        raise ParameterError("keys", "do not apply with most_likely: the search gives the most probable items, the "
                                     "same whatever the key; leave one of them out", related=("most_likely",))


def check_keys(keys: Sequence[str]) -> None:
    """Refuse an empty key and a key given twice (each key gets one item: a repeat is a mistake, not merged)."""
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if not key:
            raise ParameterError(f"keys[{i}]", "is empty: every key needs at least one character")
        if key in first:
            raise ParameterError(f"keys[{i}]", f"{key[:50]!r} was already given as keys[{first[key]}]: each key gets "
                                               f"one item, so give each key once", related=(f"keys[{first[key]}]",))
        first[key] = i


def check_blend(blend: Sequence[tuple[str, float]], label: LabelNames = None) -> None:
    """Refuse a blend naming a label twice, a negative or non-finite weight, weights that add up to nothing, and a
    blend beside a label (both say which labels to draw from). Whether the labels exist is the run's to say."""
    if not blend:
        return
    if label:
        raise ParameterError("blend", "and label both choose what to draw from; give a blend of labels, or one label",
                             related=("label",))
    names = [name for name, _ in blend]
    for name, weight in blend:
        if names.count(name) > 1:
            raise ParameterError("blend", f"names the label {name!r} twice; give each label once")
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise ParameterError("blend", f"weight of {name!r} is {weight!r}: weights are finite numbers of at least 0")
    if not sum(w for _, w in blend) > 0:
        raise ParameterError("blend", "weights add up to 0: give at least one label a positive weight")


def parse_blend(text: str) -> tuple[tuple[str, float], ...]:
    """"girls=0.5,boys=0.5" as ((label, weight), ...); a ParameterError of `blend` for anything else."""
    pairs = []
    for part in text.split(","):
        name, eq, weight = part.strip().rpartition("=")
        try:
            value = float(weight)
        except ValueError:
            value = None
        if not eq or not name.strip() or value is None:
            raise ParameterError("blend", f"{part.strip()!r} is not LABEL=WEIGHT: write it as girls=0.5,boys=0.5")
        pairs.append((name.strip(), value))
    return tuple(pairs)


def default_max_len(max_item_len: int, min_len: int = 0, prefix_len: int = 0, cap: int = bounds.MAX_LEN) -> int:
    """The max_len a request that names none gets: twice the run's longest training item (room for
    longer inventions, a bound on runaway ones), at most `cap`, and never below min_len or the prefix."""
    return max(min(2 * int(max_item_len), cap), min_len, prefix_len, 1)


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
