"""What a drawn item must pass to be returned, besides how it was drawn: the request's rules, in one place.

- suffix / contains (`constraints`): the item ends with / contains a string;
- avoid (`avoid`): it contains no entry (the sampler has already dropped those that do: they come as None);
- novel: it is not one of the run's training items; exclude: not one of the request's items;
- unique (novel implies it): it has not been returned already in this output;
- min_log_prob / max_nll_per_char: it is at least that likely under the model.

Each rule is a plain filter on drawn items, so the items that pass follow the sampler's distribution
conditioned on passing (exact, by rejection: `constraints`). The thresholds are such a filter too, and
so they change which items come out: the distribution is the sampler's given that the item is likely.
`Rules` counts what each rule rejected, so that a request that cannot be met names the rule that
stood in the way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import ParameterError
from .request import GenerateRequest

ORDER = ("avoid", "suffix", "contains", "novel", "exclude", "unique", "min_log_prob", "max_nll_per_char")


@dataclass
class Rules:
    """The rules of one request, and the items returned so far (for unique)."""

    request: GenerateRequest
    training: frozenset[str] = frozenset()  # novel: the run's training items
    seen: set[str] | None = None  # unique: the items returned so far (shared by every label's draws); None: no rule
    rejected: Counter = field(default_factory=Counter)  # items each rule turned down

    def __post_init__(self) -> None:
        self.excluded = frozenset(self.request.exclude)
        if self.seen is None and self.request.distinct:
            self.seen = set()

    def fails(self, item: str | None, log_prob: float, *, repeats: bool = True) -> str | None:
        """The first rule the item fails (a name of ORDER), or None; `repeats=False` leaves unique out."""
        r = self.request
        if item is None:
            return "avoid"
        if r.suffix is not None and not item.endswith(r.suffix):
            return "suffix"
        if r.contains is not None and r.contains not in item:
            return "contains"
        if item in self.training:
            return "novel"
        if item in self.excluded:
            return "exclude"
        if repeats and self.seen is not None and item in self.seen:
            return "unique"
        if r.min_log_prob is not None and log_prob < r.min_log_prob:
            return "min_log_prob"
        if r.max_nll_per_char is not None and -log_prob / (len(item) + 1) > r.max_nll_per_char:
            return "max_nll_per_char"
        return None

    def accept(self, item: str | None, log_prob: float) -> bool:
        """Whether the item passes every rule; a passing item is then taken (unique: it cannot come again)."""
        failed = self.fails(item, log_prob)
        if failed is not None:
            self.rejected[failed] += 1
            return False
        if self.seen is not None:
            self.seen.add(item)  # type: ignore[arg-type]
        return True

    def blame(self) -> str:
        """The rule that turned down the most items (the one to loosen)."""
        return max(ORDER, key=lambda name: (self.rejected[name], -ORDER.index(name)))

    def short_of(self, n: int, found: int, drawn: int) -> ParameterError:
        """The error when n items could not be found: how many passed, and which rule turned down most."""
        blamed = name = self.blame()
        if name == "unique" and self.request.novel and not self.request.unique:
            name = "novel"  # what was asked for: novel implies unique (the advice stays unique's)
        rejected = ", ".join(f"{k} {v:,}" for k, v in sorted(self.rejected.items(), key=lambda kv: -kv[1]))
        advice = {"avoid": "shorten the avoid list",
                  "unique": "widen the sampling (a higher temperature, a larger top-k, top-p or maximum length): the "
                            "model does not give that many different items",
                  "novel": "widen the sampling: the model mostly repeats its training items",
                  "exclude": "widen the sampling: the model mostly gives excluded items",
                  "min_log_prob": "lower the threshold", "max_nll_per_char": "raise the threshold"}.get(
            blamed, "loosen the constraint or raise the temperature")
        if self.rejected["unique"] and name in ("unique", "novel"):
            what = f"only {found:,} distinct item{'s were' if found != 1 else ' was'} found"
        else:
            what = f"only {found:,} of {n:,} items passed"
        return ParameterError(name, f"stood in the way: {what} in {drawn:,} draws (rejected: {rejected or 'none'}), "
                                    f"and {n:,} were asked for. Ask for fewer, or {advice}",
                              related=tuple(k for k in self.rejected if k != name))


__all__ = ["Rules", "ORDER"]
