"""Incremental decoding: the next-character logits of a batch of items that grow one character at a time.

Without a cache, every new character means reading the whole item so far again (`contexts.next_logits`):
position t costs t positions of work, so an item of L characters costs about L²/2. A sequence model may
instead carry what it has computed so far and read only the newest character. It does so by offering
two optional methods beside its one contract, `forward(idx, targets=None) -> (logits, loss)`:

- `init_state(batch_size) -> state`: the state before any position has been read;
- `step(idx, state) -> (logits, state)`: read one more position, idx (B,), and give the logits (B, V) for
  the character after it, exactly what `forward` gives at that position (in eval mode).

A state is a tuple of tensors, each with the batch first, so that this module can keep, drop or repeat
rows of it for any model (`select_rows`) without knowing what the tensors hold: a transformer's keys and
values per layer, a recurrent model's hidden state, the convolutional WaveNet's queues per level.

A model whose cached step can only read a bounded number of positions (a transformer has a position
table of block_size) says so through `step_limit`; past it, as for every model without `step` (the
windowed models, which read a fixed window anyway), the `Decoder` falls back to the uncached path, the
one sampling has always used, so both paths live here once rather than in each sampler.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .reading import crop, max_context, next_logits
from ..device import model_device

State = tuple[torch.Tensor, ...]  # every tensor (B, ...): the batch first, so rows are selected together


def has_steps(model: nn.Module) -> bool:
    """Whether the model can decode incrementally (has `init_state` and `step`)."""
    return callable(getattr(model, "init_state", None)) and callable(getattr(model, "step", None))


def step_limit(model: nn.Module) -> int | None:
    """The most positions the model's cached step can read (None: no bound).

    A model whose window slides by itself (`window_slides`, the convolutional WaveNet: each output
    reads its last block_size inputs however long the item) has none; a transformer has its
    block_size (positions past it would need position embeddings it does not have; the uncached path
    then reads the last block_size positions, renumbered from 0).
    """
    return None if getattr(model, "window_slides", False) else max_context(model)


def select_rows(state: State, rows: torch.Tensor) -> State:
    """The state of the given rows (indices into the batch; repeats allowed) or of a boolean mask: a copy."""
    if rows.dtype == torch.bool:
        rows = rows.nonzero().squeeze(1)
    return tuple(t.index_select(0, rows) for t in state)  # not t[rows]: index_select copies 4-d caches quicker on the CPU


COMPACT_BELOW = 0.5  # the cache is compacted to the live prefixes when they fall below this share of its rows
SHARED_UNTIL = 0.9  # rows stop being grouped by prefix once the distinct prefixes reach this share of them


class Decoder:
    """Logits for the next character of B items that grow together (model in eval mode, no gradients).

    `logits` (B, V) are for the character after the rows' current contents; `advance(rows, nxt)` keeps
    the given rows (a boolean mask, or indices, which may repeat a row to branch it) and appends one
    character to each. With `cache=False`, or for a model without `step`, every call reads each row's
    whole sequence again through forward (its last max_context positions).

    With the cache, the model reads each distinct prefix once, however many rows share it: the rows
    point at cache rows ("nodes"), and a step reads one new character per distinct (node, character)
    pair. Items of a large batch share their first characters (4,096 names have 26 distinct first
    letters and about 400 distinct first two), so this reads 40% of the positions the rows hold at
    batch 4,096, 26% at 16,384. A row's logits do not depend on the other rows, so this changes nothing
    but the work. When no node branches, the step runs in place: the nodes whose items ended stay in
    the cache, computed but unread, until the live ones fall below COMPACT_BELOW of it (copying every
    cache tensor whenever an item ends, nearly every step of a large batch, cost more than that).
    """

    def __init__(self, model: nn.Module, start: Sequence[int], batch_size: int, cache: bool = True):
        self.model = model
        device = model_device(model)
        self.limit = step_limit(model)
        self.cached = cache and has_steps(model) and (self.limit is None or len(start) <= self.limit)
        # the tokens so far (B, t), read by the uncached path; kept while cached only where it may fall back to it
        self.seq = crop(model, torch.tensor([list(start)], dtype=torch.long, device=device).expand(batch_size, -1))
        if self.cached and self.limit is None:
            self.seq = None  # a cache without a bound never needs them
        self.length = len(start)  # positions read so far, [0] + prefix included
        if self.cached:  # the start ([0] + prefix) is one node that every row points at
            self.state = model.init_state(1)
            for token in start:
                node_logits, self.state = model.step(torch.tensor([token], dtype=torch.long, device=device), self.state)
            self.node = torch.zeros(batch_size, dtype=torch.long, device=device)  # each row's cache row (None: its own)
            self.shared = True  # rows may share a node (while the items are short, many do)
            self.logits = node_logits[self.node]
        else:
            self.state, self.logits = (), next_logits(model, self.seq)

    def advance(self, rows: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Keep `rows`, append nxt (one index per kept row) and return the new logits (B', V)."""
        self.length += 1
        keep_all = rows.dtype == torch.bool and bool(rows.all())
        if self.cached and self.limit is not None and self.length > self.limit:
            self.cached, self.state = False, ()  # past the position table: the uncached path from here on
        if self.seq is not None:  # the tokens are needed, now or later
            seq = self.seq if keep_all else self.seq[rows]
            self.seq = crop(self.model, torch.cat([seq, nxt[:, None]], dim=1))
        if not self.cached:
            self.logits = next_logits(self.model, self.seq)
            return self.logits
        if keep_all and not self.shared and self.node is None:  # each row its own cache row, all live: just step
            self.logits, self.state = self.model.step(nxt, self.state)
            return self.logits
        node = self.node if self.node is not None else torch.arange(nxt.numel() if keep_all else rows.numel(),
                                                                    device=nxt.device)
        self.logits = self._step_nodes(node if keep_all else node[rows], nxt, rows.dtype != torch.bool)
        return self.logits

    def _step_nodes(self, node: torch.Tensor, nxt: torch.Tensor, branching_rows: bool) -> torch.Tensor:
        """Read nxt after each kept row's node (node: the kept rows' cache rows); the rows' new logits."""
        self.shared = self.shared or branching_rows  # repeated rows share a node until they differ
        if self.shared:  # read each distinct (node, next) pair once
            V = self.logits.shape[-1]
            children, row_child = torch.unique(node * V + nxt, return_inverse=True)  # sorted by node, then next
            if children.numel() >= SHARED_UNTIL * node.numel():
                # nearly every row has a prefix of its own: give each its own cache row (one copy, before the
                # step, where a node branching now would have cost a second) and stop looking for shared ones
                self.state, self.node, self.shared = select_rows(self.state, node), None, False
                node_logits, self.state = self.model.step(nxt, self.state)
                return node_logits
            parents, chars = children // V, children % V
            branching = bool((parents[1:] == parents[:-1]).any())  # a node with two children needs two cache rows
        else:  # one node per row, and it has one child
            parents, chars, row_child, branching = node, nxt, None, False
        if branching or parents.numel() < COMPACT_BELOW * self.state[0].shape[0]:
            self.state = select_rows(self.state, parents)  # one cache row per child, in order
            node_logits, self.state = self.model.step(chars, self.state)
            node = torch.arange(parents.numel(), device=parents.device) if row_child is None else row_child
        else:  # one child per live node: step in place, the ended nodes reading a boundary, unread
            tokens = chars.new_zeros(self.state[0].shape[0]).index_copy_(0, parents, chars)
            node_logits, self.state = self.model.step(tokens, self.state)
            node = parents if row_child is None else parents[row_child]
        identity = row_child is None and node.numel() == self.state[0].shape[0]  # compacted: row i is cache row i
        self.node = None if identity else node  # None: row i is cache row i
        return node_logits if identity else node_logits[node]
