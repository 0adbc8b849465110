"""Which list an item sounds like: Bayes' rule over a labelled run's labels, and how well that works.

p(label | item) = p(label) p(item | label) / sum over labels of the same, where p(label) is the label's
share of the training items and p(item | label) the model's probability of the whole item, end token
included, read as that label's (`labels.WithLabel`). Computed from log-probabilities (log-sum-exp), so
long items whose probabilities underflow still get their posteriors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from ..data.items import Splits, Vocab, split_labelled
from ..training.evaluation import evaluate
from ..data.labels import LabelSet, for_label, require_labels
from .scoring import ItemScore, score_items


@dataclass(frozen=True)
class Classified:
    """One item, its most probable label and every label's posterior probability."""

    item: str
    label: str  # the label of highest posterior (the first of them on a tie)
    probs: dict[str, float]  # label name -> p(label | item), in label order; they sum to 1


def label_log_likelihoods(model: nn.Module, vocab: Vocab, items: Sequence[str], labels: LabelSet) -> torch.Tensor:
    """log p(item | label) for every item and label: float64 (N, n_labels)."""
    columns = [torch.tensor([s.log_prob for s in score_items(for_label(model, k), vocab, items)], dtype=torch.float64)
               for k in range(len(labels.names))]
    return torch.stack(columns, dim=1)


def posteriors(model: nn.Module, vocab: Vocab, items: Sequence[str], labels: LabelSet) -> torch.Tensor:
    """p(label | item) by Bayes' rule with the training priors: float64 (N, n_labels), rows summing to 1."""
    joint = label_log_likelihoods(model, vocab, items, labels) + labels.priors.log()  # log p(label) p(item | label)
    return torch.softmax(joint, dim=1)


def classify_items(model: nn.Module, vocab: Vocab, items: Sequence[str], labels: LabelSet | None = None) -> list[Classified]:
    """Each item's posterior over the run's labels, in input order (labels: the run's; by default the model's own)."""
    labels = require_labels(labels if labels is not None else getattr(model, "label_set", None))
    items = list(items)
    if not items:
        return []
    probs = posteriors(model, vocab, items, labels)
    best = probs.argmax(dim=1).tolist()
    return [Classified(item, labels.names[b], dict(zip(labels.names, row)))
            for item, b, row in zip(items, best, probs.tolist())]


@dataclass(frozen=True)
class LabelReport:
    """A labelled run on one split: NLL per label, and classification of the split's items."""

    part: str  # "test" (or "val")
    nll: dict[str, float]  # label -> mean NLL per predicted character of that label's items
    items: dict[str, int]  # label -> items of the split
    accuracy: float  # share of the split's items whose most probable label is their own
    macro_f1: float  # F1 per label, averaged with equal weight
    baseline_label: str  # the majority label of the training split
    baseline_accuracy: float  # accuracy of always answering it
    baseline_macro_f1: float


def macro_f1(truth: Sequence[int], predicted: Sequence[int], n_labels: int) -> float:
    """The mean over labels of 2 TP / (2 TP + FP + FN) (0 for a label never true nor predicted)."""
    scores = []
    for k in range(n_labels):
        tp = sum(1 for t, p in zip(truth, predicted) if t == k and p == k)
        fp = sum(1 for t, p in zip(truth, predicted) if t != k and p == k)
        fn = sum(1 for t, p in zip(truth, predicted) if t == k and p != k)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / n_labels


def row_labels(splits: Splits, part: str) -> torch.Tensor:
    """The label of every row of a split part, read from its indices (the last of a window, the first of a sequence)."""
    X = splits.part(part)[0]
    column = X[:, 0] if splits.layout == "sequence" else X[:, -1]
    return column.long() // splits.vocab.size


def label_report(model: nn.Module, splits: Splits, items: list[str], item_labels: list[int], labels: LabelSet,
                 split_seed: int, part: str = "test") -> LabelReport:
    """NLL per label on a split, and the accuracy and macro-F1 of classifying its items, beside always
    answering the training split's majority label."""
    X, Y = splits.part(part)
    rows = row_labels(splits, part)
    nll = {name: evaluate(model, (X[rows == k], Y[rows == k])) for k, name in enumerate(labels.names) if (rows == k).any()}
    part_items, truth = split_labelled(items, item_labels, split_seed)[("train", "val", "test").index(part)]
    predicted = posteriors(model, splits.vocab, part_items, labels).argmax(dim=1).tolist()
    majority = max(range(len(labels.names)), key=lambda k: labels.train_counts[k])
    n = len(labels.names)
    return LabelReport(
        part=part, nll=nll, items={name: truth.count(k) for k, name in enumerate(labels.names)},
        accuracy=sum(t == p for t, p in zip(truth, predicted)) / len(truth),
        macro_f1=macro_f1(truth, predicted, n),
        baseline_label=labels.names[majority],
        baseline_accuracy=truth.count(majority) / len(truth),
        baseline_macro_f1=macro_f1(truth, [majority] * len(truth), n),
    )


def score_labelled(model: nn.Module, vocab: Vocab, items: Sequence[str], labels: LabelSet | None = None,
                   label: int | None = None) -> list[ItemScore]:
    """Each item's log-probability: under one label (`label`, a number), or, for a labelled run asked for
    none, under the run as a whole, log sum over labels of p(label) p(item | label); an unlabelled run's
    is `score_items`' own."""
    labels = labels if labels is not None else getattr(model, "label_set", None)
    items = list(items)
    if labels is None or label is not None or not items:
        return score_items(for_label(model, label), vocab, items)
    total = torch.logsumexp(label_log_likelihoods(model, vocab, items, labels) + labels.priors.log(), dim=1)
    return [ItemScore(item, lp, len(item) + 1) for item, lp in zip(items, total.tolist())]
