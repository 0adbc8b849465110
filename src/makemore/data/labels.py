"""Labels: one model for several lists (girls' and boys' names, words of five languages), told apart.

How a label travels. A labelled run's index tensors carry each item's label in every index:
label * V + character, V the vocabulary size (characters + the boundary token). Its windows, padded
items, the boundaries in front, the soft-target contexts, evaluation's distinct contexts, the
decoders' caches: everything that moves indices around moves the label with them, and nothing of
it needs to know. Targets stay plain characters: a model predicts the next character, not a label.
Each model takes the index apart (`models.layers.split_labels`) and reads the label through a
learned label embedding (the count models: a table per label); each model's docstring says where.
An unlabelled run is the one-label case: every index is label 0's, i.e. the character itself.

Sampling, scoring and search are written for plain character indices. `WithLabel(model, label)` is
the model seen from one label: it adds label * V to every index it is given, so all of them work
for a labelled run unchanged, one label at a time.

Classifying an item is Bayes' rule over the labels: p(label | item) ∝ p(label) p(item | label), with
p(label) each label's share of the training items and p(item | label) the model's probability of the
whole item (end token included) given the label.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ..errors import MakemoreError, ParameterError



@dataclass(frozen=True)
class LabelSet:
    """The labels of a run: their names (index = label number), training shares and source files."""

    names: tuple[str, ...]  # label number -> name; one entry for an unlabelled run is never stored
    counts: tuple[int, ...]  # items of each label in the whole list (before the split)
    train_counts: tuple[int, ...]  # items of each label in the training split: the priors p(label)
    files: tuple[tuple[str, ...], ...] = ()  # the files each label's items came from

    @property
    def priors(self) -> torch.Tensor:
        """p(label): each label's share of the training items, float64 (n_labels,)."""
        counts = torch.tensor(self.train_counts, dtype=torch.float64)
        return counts / counts.sum()

    def index(self, name: str) -> int:
        """A label's number, or a one-line error naming the labels there are."""
        if name not in self.names:
            raise ParameterError("label", f"{name!r} is not a label of this run; its labels are: {', '.join(self.names)}")
        return self.names.index(name)

    def to_meta(self) -> list[dict[str, Any]]:
        """What run.json records under "labels": one object per label, in label order."""
        return [{"name": n, "items": c, "train_items": t, "files": list(f)}
                for n, c, t, f in zip(self.names, self.counts, self.train_counts, self.files or [()] * len(self.names))]

    @classmethod
    def from_meta(cls, entries: list[dict[str, Any]] | None) -> "LabelSet | None":
        if not entries:
            return None
        return cls(names=tuple(e["name"] for e in entries), counts=tuple(e["items"] for e in entries),
                   train_counts=tuple(e["train_items"] for e in entries),
                   files=tuple(tuple(e.get("files", ())) for e in entries))


@dataclass(frozen=True)
class ItemLabels:
    """What a labelled list brings to a run: each item's label, and the labels' names and files."""

    of_item: list[int]  # label number of each item, parallel to the items
    names: list[str]  # label number -> name
    files: dict[str, list[str]]  # label name -> the files its items came from

    def counts(self, of: list[int] | None = None) -> list[int]:
        """Items of each label, in label order: among all items, or among the label numbers `of`."""
        counts = [0] * len(self.names)
        for label in self.of_item if of is None else of:
            counts[label] += 1
        return counts

    def label_set(self, train_labels: list[int]) -> LabelSet:
        """The run's LabelSet, its priors counted on the training split's labels."""
        return LabelSet(names=tuple(self.names), counts=tuple(self.counts()), train_counts=tuple(self.counts(train_labels)),
                        files=tuple(tuple(self.files.get(name, ())) for name in self.names))


def require_labels(labels: LabelSet | None) -> LabelSet:
    if labels is None:
        raise ParameterError("label", "was given, but this run has no labels (it was trained on one unlabelled list)")
    return labels


def label_numbers(labels: LabelSet | None, names: list[str] | str | None) -> list[int] | None:
    """The numbers of the labels asked for by name (None: none asked); one-line errors for the rest."""
    if names is None or names == []:
        return None
    names = [names] if isinstance(names, str) else list(names)
    labels = require_labels(labels)
    return [labels.index(n) for n in names]


def draw_labels(n: int, labels: LabelSet | None, chosen: list[int] | None, seed: int | None) -> list[int]:
    """The label of each of n items to sample: the one asked for, else drawn among those asked for (or all)
    by their share of the training data, with a generator of its own (the seed's), so the items drawn
    for a label do not depend on how many the other labels got."""
    if labels is None:
        return [0] * n
    pool = chosen if chosen is not None else list(range(len(labels.names)))
    if len(pool) == 1:
        return [pool[0]] * n
    weights = [labels.train_counts[i] for i in pool]
    rng = random.Random(seed)
    return rng.choices(pool, weights=weights, k=n)


class WithLabel(nn.Module):
    """A model seen from one label: given plain character indices, it reads them as that label's.

    It keeps the one contract, `forward(idx, targets=None) -> (logits, loss)`, and the decoding methods
    (`init_state`, `step`) of the model when it has them, so sampling, scoring and search take it as
    they take any model. Other attributes (config, registry_name, ...) are the model's own.
    """

    def __init__(self, model: nn.Module, label: int):
        super().__init__()
        n_labels = getattr(model.config, "n_labels", 1)
        if not 0 <= label < n_labels:
            raise MakemoreError(f"label {label} is out of range for a model of {n_labels} label(s)")
        self.model = model
        self.label = label
        self.offset = label * model.config.vocab_size  # label * V: added to every index

    def labelled(self, idx: torch.Tensor) -> torch.Tensor:
        return idx if self.offset == 0 else idx.long() + self.offset

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        return self.model(self.labelled(idx), targets)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # parameters, buffers, submodules, and self.model itself
        except AttributeError:
            pass
        model = super().__getattr__("model")
        attr = getattr(model, name)
        if name == "init_state":
            return lambda batch_size, label=None: attr(batch_size, label=self.label)  # a view's label is its own
        if name == "step":
            return lambda idx, state: attr(self.labelled(idx), state)
        if name == "target_log_probs":
            return lambda idx, targets: attr(self.labelled(idx), targets)
        return attr


def for_label(model: nn.Module, label: int | None) -> nn.Module:
    """The model as `label` sees it (itself for label None or 0 of an unlabelled model)."""
    if label is None or (label == 0 and getattr(model.config, "n_labels", 1) == 1):
        return model
    return WithLabel(model, label)
