"""An n-gram count model of any order, with interpolated Kneser-Ney (or add-k) smoothing.

The bigram of the essay, widened to a context of n-1 characters. Counting is done
with tensor ops: each n-gram becomes one integer (its characters as base-V digits),
and torch.unique / searchsorted do the rest. Only the n-grams that occur are stored,
so memory grows with the data, not with V^n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import MakemoreError
from .layers import cross_entropy, split_labels
from .registry import register

SMOOTHINGS = ("kneser-ney", "add-k")
_TABLES = ("ctx_keys", "ctx_total", "ctx_types", "gram_keys", "gram_counts")  # per order, see NGram.fit


@dataclass
class NGramConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 5  # n - 1 characters of context; 6-grams are best on names.txt (benchmarks/ngram_search.py)
    smoothing: str = "kneser-ney"  # "kneser-ney" (interpolated, Chen & Goodman 1998) or "add-k" (highest order only)
    # KN's D in (0, 1]: one for all orders (0.85 is best at n=6), or one per context length 0..n-1 (gains
    # 0.0004 val NLL and nothing on test at n=6, so not the default)
    discount: float | Sequence[float] = 0.85
    k: float = 0.1  # add-k's pseudo-count per n-gram; 0.1 is its best at n=3..8 (k=1, n=2 is bigram-counts)
    n_labels: int = 1  # labels the items carry (makemore.data.labels): one more, per-label order on top; 1 = unlabelled
    prior_weight: float = 0.0  # a run started from another (init_from): the base's n-gram counts, times this and
    # rounded to whole counts (so Kneser-Ney's discounts keep their meaning), added to the list's own when
    # counting; chosen on val (training.init_from.choose_prior_weight). 0: none


@register("ngram", config=NGramConfig, mechanism="n-gram counts, interpolated Kneser-Ney smoothing")
class NGram(nn.Module):
    """P(w | h) from counts of the characters that followed h, smoothed by interpolation.

    Interpolated Kneser-Ney (Kneser & Ney 1995, "Improved backing-off for m-gram language
    modeling"; in the interpolated form of Chen & Goodman 1998, "An Empirical Study of
    Smoothing Techniques for Language Modeling"):

        P_j(w | h) = max(c_j(h w) - D, 0) / c_j(h) + D * N1+(h .) / c_j(h) * P_{j-1}(w | h')

    with h the last j characters and h' = h without its oldest one. At the highest order c is the
    raw count; below it, the continuation count N1+(. h w): how many distinct characters came
    before h w. Why: a lower order only speaks when the longer context is rare, so it should
    favour characters that follow many contexts, not a few frequent ones. Below order 0 is the
    uniform 1/V, so every character keeps some probability; a context never seen at order j
    hands its whole mass to order j-1. The result sums to 1 over the vocabulary for any context.

    Labels (makemore.data.labels): the orders above are counted over every label's items pooled, and the
    label is one more, outermost symbol of context on top of them, (label, h) at length n: the same
    formula with raw per-label counts and the top order's D, over the pooled P_{n-1}(w | h). So a label
    keeps its own counts where it has them and backs off to the pooled ones where they are thin (a
    context the label never saw hands all its mass to the pooled model). With one label that level
    would only repeat the pooled top order, so it is not there; add-k smooths the per-label counts.
    """

    trainable = False  # fitted by counting (`fit`), not by gradient descent

    def __init__(self, config: NGramConfig):
        super().__init__()
        V, m = config.vocab_size, config.block_size
        if config.smoothing not in SMOOTHINGS:
            raise MakemoreError(f"ngram smoothing must be one of {', '.join(SMOOTHINGS)}, got {config.smoothing!r}")
        if not isinstance(m, int) or m < 1:
            raise MakemoreError(f"ngram block size (n - 1) must be a positive integer, got {m}")
        if V < 2 or V ** (m + 1) >= 2 ** 62:  # an n-gram is one int64: V^n must fit
            raise MakemoreError(f"ngram: {m + 1}-grams over {V} symbols do not fit in 64-bit keys; use a smaller block size")
        if not 0 < config.k < float("inf"):
            raise MakemoreError(f"ngram k must be a positive number, got {config.k}")
        if V ** (m + 1) * config.n_labels >= 2 ** 62:
            raise MakemoreError(f"ngram: {m + 1}-grams over {V} symbols and {config.n_labels} labels do not fit in "
                                f"64-bit keys; use a smaller block size")
        self.config = config
        self.discounts()  # checks them
        for j in range(self.top + 1):  # empty until fit: an unfitted model is uniform
            for name in _TABLES:
                self.register_buffer(f"{name}{j}", torch.zeros(0, dtype=torch.int64))

    def discounts(self) -> list[float]:
        """D for each context length 0..n-1, read from the config (so it can change after fitting)."""
        D, m = self.config.discount, self.config.block_size
        try:
            discounts = [float(d) for d in D] if isinstance(D, (list, tuple)) else [float(D)] * (m + 1)
        except (TypeError, ValueError):
            raise MakemoreError(f"ngram discount must be a number or a list of numbers, got {D!r}") from None
        if len(discounts) != m + 1:
            raise MakemoreError(f"ngram needs one discount per context length 0..{m} ({m + 1}), got {len(discounts)}")
        if not all(0 < d <= 1 for d in discounts):  # over 1 would take more than a singleton's count
            raise MakemoreError(f"ngram discounts must be in (0, 1], got {D}")
        return discounts

    @property
    def top(self) -> int:
        """The highest table: block_size, or block_size + 1 (the per-label level) when there are labels."""
        return self.config.block_size + (self.config.n_labels > 1)

    def table(self, j: int) -> list[torch.Tensor]:
        return [getattr(self, f"{name}{j}") for name in _TABLES]

    @torch.no_grad()
    def fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Count every n-gram at once; then each lower order from the distinct n-grams of the order above.

        Per context length j (0..n-1), sorted by key: ctx_keys (distinct contexts h), ctx_total (c_j(h)),
        ctx_types (N1+(h .)), gram_keys (distinct h w), gram_counts (c_j(h w): raw at the top, continuation below).
        With labels, table block_size + 1 holds the per-label counts, the label the most significant digit.
        """
        V, m = self.config.vocab_size, self.config.block_size
        chars, labels = split_labels(x[:, -m:], V, self.config.n_labels)  # (N, m) each: the label of a window is that of its last index
        grams = encode(torch.cat([chars, y.long()[:, None]], dim=1), V)  # (N,) keys of the n-grams
        if self.top > m:  # the per-label level: raw counts of (label, h w)
            self._store(self.top, *torch.unique(labels[:, -1] * V ** (m + 1) + grams, return_counts=True))
        keys, counts = self._with_prior(*torch.unique(grams, return_counts=True))  # sorted
        for j in range(m, -1, -1):
            self._store(j, keys, counts)
            # order j-1: drop the oldest character; how many distinct n-grams collapse onto a key is N1+(. h w)
            keys, counts = torch.unique(keys % V ** j, return_counts=True)

    def _with_prior(self, keys: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The list's n-gram counts plus the prior's (`set_prior`) times prior_weight, rounded: sorted, distinct."""
        prior = getattr(self, "prior_keys", None)
        if prior is None or self.config.prior_weight <= 0:
            return keys, counts
        weighted = (self.prior_counts.double() * self.config.prior_weight).round().long()
        kept = weighted > 0
        merged, inverse = torch.unique(torch.cat([keys, prior[kept].to(keys.device)]), return_inverse=True)
        total = torch.zeros(merged.shape[0], dtype=torch.int64, device=keys.device)
        total.index_add_(0, inverse, torch.cat([counts, weighted[kept].to(keys.device)]))
        return merged, total

    def set_prior(self, base: "NGram", char_map: list[int]) -> None:
        """The base's pooled top-order n-gram counts, in this model's characters (char_map[i]: the base index of
        character i, -1 where the base lacks it; an n-gram with a character this list lacks is dropped).
        Not saved: only counted in by `fit`. The base must read as many characters (block_size)."""
        V, Vb, m = self.config.vocab_size, base.config.vocab_size, self.config.block_size
        if base.config.block_size != m:
            raise MakemoreError(f"ngram: the base reads {base.config.block_size} characters, this model {m}")
        keys, counts = base.table(m)[3:]
        to_new = torch.full((Vb,), -1, dtype=torch.int64)
        for new, old in enumerate(char_map):
            if old >= 0:
                to_new[old] = new
        digits = torch.stack([(keys // Vb ** (m - col)) % Vb for col in range(m + 1)], dim=1)  # (K, n), oldest first
        mapped = to_new[digits]
        keep = (mapped >= 0).all(dim=1)
        new_keys = encode(mapped[keep], V)
        order = torch.argsort(new_keys)
        self.register_buffer("prior_keys", new_keys[order], persistent=False)
        self.register_buffer("prior_counts", counts[keep][order].clone(), persistent=False)

    def prior_total(self) -> int:
        """How many n-grams the prior counted (0 without one)."""
        counts = getattr(self, "prior_counts", None)
        return 0 if counts is None else int(counts.sum())

    def _store(self, j: int, keys: torch.Tensor, counts: torch.Tensor) -> None:
        """Table j from its sorted distinct n-gram keys and their counts."""
        ctx, inverse, types = torch.unique_consecutive(keys // self.config.vocab_size, return_inverse=True,
                                                       return_counts=True)
        total = torch.zeros_like(ctx).index_add_(0, inverse, counts)
        for name, value in zip(_TABLES, (ctx, total, types, keys, counts)):
            setattr(self, f"{name}{j}", value.clone())  # own storage each: safetensors refuses shared ones

    def _contexts(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Contexts idx (B, >= block_size) -> (their last m characters (B, m), the key of each table's context)."""
        V, m = self.config.vocab_size, self.config.block_size
        chars, labels = split_labels(idx[:, -m:], V, self.config.n_labels)
        keys = [encode(chars[:, m - j:], V) for j in range(m + 1)]
        if self.top > m:
            keys.append(labels[:, -1] * V ** m + keys[m])
        return chars, keys

    def probs(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, V) float64 distributions of the next character for contexts idx (B, block_size)."""
        V, m = self.config.vocab_size, self.config.block_size
        _, keys = self._contexts(idx)
        chars = torch.arange(V, device=idx.device)
        if self.config.smoothing == "add-k":  # unseen context: k / kV, uniform
            _, c, total, _ = self._lookup(self.top, keys[self.top], chars)
            k = self.config.k
            return (c.double() + k) / (total.double()[:, None] + k * V)
        discounts = self.discounts() + [self.discounts()[m]]  # the per-label level takes the top order's D
        p = torch.full((idx.shape[0], V), 1.0 / V, dtype=torch.float64, device=idx.device)
        for j in range(self.top + 1):
            found, c, total, types = self._lookup(j, keys[j], chars)
            D = discounts[j]
            kept = (c.double() - D).clamp(min=0)  # each seen h w gives up D, which goes to the lower order
            interpolated = (kept + D * types.double()[:, None] * p) / total.double().clamp(min=1)[:, None]
            p = torch.where(found[:, None], interpolated, p)  # an unseen context: the lower order, whole
        return p

    def target_log_probs(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B,) float64 log P(target | context) for contexts idx (B, block_size): `probs` at the targets alone.

        The interpolation at each order mixes P(w | h) with the lower order's P(w | h') for the same w,
        so scoring given targets needs n look-ups per row where `probs` needs n per row and character:
        evaluation (`evaluation.evaluate`) uses this."""
        V, m = self.config.vocab_size, self.config.block_size
        _, keys = self._contexts(idx)
        w = targets.long()
        if self.config.smoothing == "add-k":
            c, total = self._lookup_one(self.top, keys[self.top], w)[1:3]
            return ((c.double() + self.config.k) / (total.double() + self.config.k * V)).log()
        discounts = self.discounts() + [self.discounts()[m]]
        p = torch.full((idx.shape[0],), 1.0 / V, dtype=torch.float64, device=idx.device)
        for j in range(self.top + 1):
            found, c, total, types = self._lookup_one(j, keys[j], w)
            D = discounts[j]
            interpolated = ((c.double() - D).clamp(min=0) + D * types.double() * p) / total.double().clamp(min=1)
            p = torch.where(found, interpolated, p)
        return p.log()

    def _lookup_one(self, j: int, ctx: torch.Tensor, w: torch.Tensor):
        """`_lookup` for one character per context: (seen?, c_j(h w), c_j(h), N1+(h .)), each (B,)."""
        ctx_keys, ctx_total, ctx_types, gram_keys, gram_counts = self.table(j)
        found, at = _find(ctx_keys, ctx)
        gfound, gat = _find(gram_keys, ctx * self.config.vocab_size + w)
        return found, _take(gram_counts, gat, gfound), _take(ctx_total, at, found), _take(ctx_types, at, found)

    def _lookup(self, j: int, ctx: torch.Tensor, chars: torch.Tensor):
        """For contexts ctx (B,) of length j: (seen?, counts (B, V), c_j(h), N1+(h .)), zeros where unseen."""
        ctx_keys, ctx_total, ctx_types, gram_keys, gram_counts = self.table(j)
        found, at = _find(ctx_keys, ctx)
        grams = ctx[:, None] * len(chars) + chars  # (B, V) keys of h w for every w
        gfound, gat = _find(gram_keys, grams)
        return found, _take(gram_counts, gat, gfound), _take(ctx_total, at, found), _take(ctx_types, at, found)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.probs(idx).float().log()  # (B, V) log-probabilities: already normalised
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # The tables' sizes depend on the data: take the saved sizes, so a freshly built model accepts them.
        for name, buf in self._buffers.items():
            saved = state_dict.get(prefix + name)
            if isinstance(saved, torch.Tensor) and saved.dim() == 1 and buf is not None:
                self._buffers[name] = torch.empty(saved.shape, dtype=buf.dtype, device=buf.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


def encode(idx: torch.Tensor, V: int) -> torch.Tensor:
    """(B, j) indices -> (B,) integers, the characters as base-V digits, oldest first; 0 for j = 0."""
    key = torch.zeros(idx.shape[0], dtype=torch.int64, device=idx.device)
    for col in range(idx.shape[1]):  # one step per context position, not per character
        key = key * V + idx[:, col].long()
    return key


def _take(values: torch.Tensor, at: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
    return torch.where(found, values[at], 0) if values.numel() else torch.zeros_like(at)


def _find(sorted_keys: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(found, position) of each query in sorted_keys; position is clamped, valid where found."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(queries, dtype=torch.bool), torch.zeros_like(queries)
    at = torch.searchsorted(sorted_keys, queries).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[at] == queries, at
