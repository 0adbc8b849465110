"""How likely a model finds items and next characters: log-probabilities, NLL, percentiles, bigram counts.

An item's log-probability is the natural log of its probability under the model: the sum,
over its characters and the end token, of log p(next | the block_size indices before it)
(contexts start with boundary tokens, exactly as in training); for a sequence model, of
log p(next | [0] + the item so far) (`contexts.target_log_probs`). Its NLL per character is
minus that divided by the number of predicted characters, len(item) + 1, which is the
training loss averaged over the item's windows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from ..models.layers import eval_mode
from ..models.reading import layout_of, max_context, next_logits, target_log_probs
from ..data.items import BOUNDARY, BOUNDARY_DISPLAY, Vocab, build_sequences, build_windows
from .. import bounds
from ..device import model_device
from ..errors import MakemoreError

END_DISPLAY = "<end>"


@dataclass(frozen=True)
class ItemScore:
    item: str
    log_prob: float  # nats, summed over the characters and the end token
    predicted: int  # characters predicted: len(item) + 1 (the end token)

    @property
    def nll_per_char(self) -> float:
        return -self.log_prob / self.predicted


@dataclass(frozen=True)
class CharStep:
    """One predicted character of an item: what the model saw, what came, how likely it found it."""

    context: tuple[int, ...]  # the block_size indices the model saw (boundaries at the start)
    index: int  # the character that came (BOUNDARY for the end token)
    prob: float  # p(index | context)


def char_name(ch: str) -> str:
    """A character as shown in tables: quoted, so '.', ' ' and the like are unambiguous."""
    return repr(ch) if ch.isprintable() or ch == " " else f"{ch!r} (U+{ord(ch):04X})"


def token_display(vocab: Vocab, index: int) -> str:
    """'a', '.', ' ' for characters; <end> for the end token."""
    return END_DISPLAY if index == BOUNDARY else char_name(vocab.chars[index - 1])


def boundary_symbol(vocab: Vocab) -> str:
    """How a boundary is drawn inside a context or a plot: '.' as in the essay, '∅' if '.' is a real character."""
    return "∅" if BOUNDARY_DISPLAY in vocab.chars else BOUNDARY_DISPLAY


def context_display(vocab: Vocab, context: Sequence[int]) -> str:
    b = boundary_symbol(vocab)
    return "".join(b if i == BOUNDARY else vocab.chars[i - 1] for i in context)


def unknown_chars(vocab: Vocab, texts: Sequence[str]) -> list[str]:
    known = set(vocab.chars)
    return sorted({ch for text in texts for ch in text if ch not in known})


def check_known(vocab: Vocab, texts: Sequence[str], what: str = "the items") -> None:
    """A one-line MakemoreError naming every character of `texts` the model never saw in training."""
    unknown = unknown_chars(vocab, texts)
    if unknown:
        raise MakemoreError(f"{what} {never_seen(unknown, plural=what.endswith('s'))}")


def never_seen(unknown: Sequence[str], plural: bool = False) -> str:
    """"contains character(s) the model has never seen: 'é', 'ß'" (at most 20 named), for every such message."""
    shown = ", ".join(char_name(ch) for ch in unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
    return f"{'contain' if plural else 'contains'} character(s) the model has never seen: {shown}"


def encode_known(vocab: Vocab, text: str, what: str = "the item") -> list[int]:
    check_known(vocab, [text], what)
    return vocab.encode(text)


@torch.no_grad()
def score_items(model: nn.Module, vocab: Vocab, items: Sequence[str], batch_size: int = 65_536) -> list[ItemScore]:
    """Every item's log-probability under the model, all windows of all items in batched model calls."""
    items = list(items)
    if not items:
        return []
    check_known(vocab, items)
    predicted = torch.tensor([len(it) + 1 for it in items])
    owner = torch.repeat_interleave(torch.arange(len(items)), predicted)
    if layout_of(model) == "sequence":
        per_window = _sequence_log_probs(model, *build_sequences(items, vocab), batch_size)
    else:
        X, Y = build_windows(items, vocab, model.config.block_size)
        per_window = _window_log_probs(model, X, Y, batch_size)
    totals = torch.zeros(len(items), dtype=torch.float64).index_add_(0, owner, per_window)
    return [ItemScore(it, lp, n) for it, lp, n in zip(items, totals.tolist(), predicted.tolist())]


def _window_log_probs(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """log p(Y[i] | X[i]) for every window, float64 on the CPU; model in eval mode meanwhile."""
    device = model_device(model)
    parts = []
    with eval_mode(model):
        for i in range(0, X.shape[0], batch_size):
            logits, _ = model(X[i:i + batch_size].to(device))
            lp = torch.log_softmax(logits.float(), dim=-1).gather(1, Y[i:i + batch_size, None].to(device))
            parts.append(lp.squeeze(1).double().cpu())
    return torch.cat(parts)


def _sequence_log_probs(model: nn.Module, X: torch.Tensor, Y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Sequences (N, L): log p of every real target, flat in item order (as the windows are), float64 on the CPU.

    batch_size counts positions; model in eval mode meanwhile.
    """
    device = model_device(model)
    rows = max(1, batch_size // X.shape[1])
    parts = []
    with eval_mode(model):
        for i in range(0, X.shape[0], rows):
            xb, yb = X[i:i + rows].to(device), Y[i:i + rows].to(device)
            parts.append(target_log_probs(model, xb, yb)[yb >= 0].cpu())  # row by row: item order
    return torch.cat(parts)


@torch.no_grad()
def explain_item(model: nn.Module, vocab: Vocab, item: str) -> list[CharStep]:
    """Each predicted character of the item (and the end token) with its context and probability.

    The context is what the model read: a window for the windowed models, [0] + the item so far
    (its last block_size positions, where the model has a bound) for the sequence models.
    """
    check_known(vocab, [item], "the item")
    if layout_of(model) == "sequence":
        X, Y = build_sequences([item], vocab)
        probs = _sequence_log_probs(model, X, Y, 65_536).exp().tolist()
        ctx = max_context(model) or X.shape[1]
        seq = X[0].tolist()
        return [CharStep(tuple(seq[max(0, t + 1 - ctx):t + 1]), y, p)
                for t, (y, p) in enumerate(zip(Y[0].tolist(), probs))]
    X, Y = build_windows([item], vocab, model.config.block_size)
    probs = _window_log_probs(model, X, Y, 65_536).exp().tolist()
    return [CharStep(tuple(x), y, p) for x, y, p in zip(X.tolist(), Y.tolist(), probs)]


@torch.no_grad()
def next_char_probs(model: nn.Module, vocab: Vocab, prefix: str) -> torch.Tensor:
    """p(next | prefix) over the vocabulary, shape (V,), index 0 the end token; float64 on the CPU."""
    codes = encode_known(vocab, prefix, "the prefix")
    with eval_mode(model):
        logits = next_logits(model, torch.tensor([[BOUNDARY, *codes]], dtype=torch.long, device=model_device(model)))
    return torch.softmax(logits.float(), dim=-1)[0].double().cpu()


def top_next_chars(model: nn.Module, vocab: Vocab, prefix: str, k: int = 10) -> list[tuple[int, float]]:
    """The k most likely next indices after prefix, most likely first: (index, probability)."""
    k = bounds.check("k", k, key="next.k")
    probs = next_char_probs(model, vocab, prefix)
    top = torch.topk(probs, min(k, probs.numel()))
    return list(zip(top.indices.tolist(), top.values.tolist()))


def percentile_of(value: float, population_sorted: Sequence[float]) -> float:
    """Percent of the population below value (ties count half): 0 = lowest, 100 = highest."""
    if not population_sorted:
        raise ValueError("empty population")
    below = bisect.bisect_left(population_sorted, value)
    equal = bisect.bisect_right(population_sorted, value) - below
    return 100.0 * (below + 0.5 * equal) / len(population_sorted)


def bigram_count_matrix(items: Sequence[str], vocab: Vocab | None = None) -> tuple[torch.Tensor, Vocab]:
    """N[i, j]: how often index j follows index i, boundaries included (the essay's 27x27 matrix for names)."""
    items = list(items)
    vocab = vocab or Vocab.from_items(items)
    check_known(vocab, items)
    X, Y = build_windows(items, vocab, 1)
    V = vocab.size
    return torch.bincount(X[:, 0] * V + Y, minlength=V * V).view(V, V), vocab
