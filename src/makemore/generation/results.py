"""What a `Run` answers (`makemore.trained`): generated items, scores, next characters, each with the JSON that
both front ends give (`makemore ... --format json` and the API) from `to_json`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .batches import Sample
from .request import GenerateRequest

LISTS = ("avoid", "exclude", "keys")  # request fields echoed in JSON as their lengths: they may hold thousands


@dataclass(frozen=True)
class Generated:
    """What `Run.generate` gives: the items and the resolved request (its seed and max_len filled in)."""

    request: GenerateRequest  # as resolved: seed and max_len are what was used
    items: list[Sample]  # drawn order; with most_likely, highest log-probability first
    exact: bool | None = None  # most_likely: False when the budget stopped the search (better items may exist)
    expansions: int | None = None  # most_likely: prefixes the search expanded

    def to_json(self, run: str) -> dict[str, Any]:
        r = self.request
        settings = {f.name: getattr(r, f.name) for f in fields(r) if f.name not in LISTS + ("max_draws",)}
        settings.update({name: len(getattr(r, name)) for name in LISTS})  # how many, not the lists themselves
        settings["label"] = list(r.label) if isinstance(r.label, (list, tuple)) else r.label
        settings["blend"] = {name: weight for name, weight in r.blend} or None
        settings["max_expansions"] = r.budget if r.most_likely is not None else None
        body: dict[str, Any] = {"run": run, "seed": r.seed, "max_len": r.max_len, "settings": settings}
        if r.most_likely is not None:
            body.update(exact=self.exact, expansions=self.expansions, max_expansions=r.budget)
        body["items"] = [{**({} if s.key is None else {"key": s.key}), "item": s.item, "log_prob": s.log_prob,
                          **({} if s.label is None else {"label": s.label})} for s in self.items]
        return body


@dataclass(frozen=True)
class Step:
    """One predicted character of an explained item: its probability given what came before."""

    context: str  # what the model read, as shown (the boundary as the run's symbol)
    char: str  # the character predicted, or "<end>" for the end token
    end: bool  # the end token
    prob: float


@dataclass(frozen=True)
class Scored:
    """One item's score under the run (or under one label of a labelled run)."""

    item: str
    log_prob: float  # natural log of its probability: characters and the end token
    nll_per_char: float  # -log_prob / predicted
    predicted: int  # characters + the end token
    percentile: float | None  # percent of the training-split items with a lower log_prob; None if not found
    explain: list[Step] | None = None  # each character's probability, when asked


@dataclass(frozen=True)
class Scores:
    """What `Run.score` gives: the items' scores in input order, and why percentiles are missing, if they are."""

    items: list[Scored]
    label: str | None  # the label scored under (None: the whole run)
    percentile_note: str | None  # why every percentile is None (the training file was not found), else None

    def to_json(self, run: str) -> dict[str, Any]:
        rows = []
        for s in self.items:
            row = {"item": s.item, "log_prob": s.log_prob, "nll_per_char": s.nll_per_char, "predicted": s.predicted,
                   "percentile": s.percentile}
            if s.explain is not None:
                row["explain"] = [{"context": t.context, "char": t.char, "end": t.end, "prob": t.prob}
                                  for t in s.explain]
            rows.append(row)
        return {"run": run, "label": self.label, "percentile_note": self.percentile_note, "items": rows}


@dataclass(frozen=True)
class NextChar:
    char: str  # the character, or "<end>" for the end token
    end: bool
    prob: float


@dataclass(frozen=True)
class Next:
    """What `Run.next` gives: the most likely next characters after a prefix, most likely first."""

    prefix: str  # as the model read it (the run's text options applied)
    label: str | None
    next: list[NextChar]

    def to_json(self, run: str) -> dict[str, Any]:
        return {"run": run, "prefix": self.prefix, "label": self.label,
                "next": [{"char": c.char, "end": c.end, "prob": c.prob} for c in self.next]}


__all__ = ["Generated", "Step", "Scored", "Scores", "NextChar", "Next"]
