"""Substrings no item may contain (`avoid`): one Aho–Corasick automaton over every entry, run along the items
as they grow, so that a partial item is dropped the moment it contains an entry.

Matching is on case-folded text: the entries are read as the run reads its items (its text options),
then case-folded, and so is each character of an item (`str.casefold` maps character by character, so
the case-folded item is the case-folded characters joined). "Ass" is then avoided in "CASSIE" and
"ß" as "ss".

The automaton. Its states are the prefixes of the entries (a trie); reading a character moves to the
longest entry prefix that the text read so far ends with (the trie's edge where there is one, else the
failure link's move, computed once for every state and character: a full transition table). A state
whose prefix ends with a whole entry is a match; every move into one goes to a single absorbing DEAD
state instead. The table is built breadth-first one trie level at a time, each level in a few array
operations, so a list of a thousand entries compiles in milliseconds. The sampler then keeps one state
per growing item and moves every item's state with one gather per step (`table[state, next]`): a
blocklist of any length costs the same per character.

Exactness. An item is dropped exactly when its text contains an entry, whenever that is found: dropping
it at the character that completes the entry rather than at its end changes the work, not which items
pass. Items that pass are the sampler's own, conditioned on avoiding every entry (`constraints`
explains why rejection is the exact way to condition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy
import torch

from ..data.items import Vocab
from ..errors import ParameterError


@dataclass(frozen=True)
class AvoidList:
    """A compiled avoid list: the entries as matched and the automaton's table over the run's characters."""

    entries: tuple[str, ...]  # as matched: text options applied, case-folded, without repeats, in the order given
    table: torch.Tensor  # (S, V) long: the state after reading vocabulary index v in state s (boundary: stays)
    dead: int  # the absorbing state: an entry has been read

    @classmethod
    def build(cls, entries: Sequence[str], vocab: Vocab) -> "AvoidList":
        """Compile `entries` (already read with the run's text options) for a run's vocabulary.

        An entry with a character that no character of the run case-folds to can never match, and costs
        nothing. A ParameterError of `avoid[i]` for an empty entry."""
        folded: dict[str, None] = {}  # an ordered set
        for i, entry in enumerate(entries):
            if not entry:
                raise ParameterError(f"avoid[{i}]", "is empty: every entry needs at least one character (an empty "
                                                    "entry would forbid every item); leave it out")
            folded[entry.casefold()] = None
        folds = [ch.casefold() for ch in vocab.chars]
        alphabet = sorted({c for f in folds for c in f})
        known = set(alphabet)
        table = _compile([e for e in folded if set(e) <= known], alphabet)  # (S + 1, A), DEAD last
        dead = table.shape[0] - 1
        code = {c: a for a, c in enumerate(alphabet)}
        states = numpy.arange(table.shape[0])
        columns = [states]  # the boundary: no character is read
        for f in folds:
            s = states
            for c in f:  # a character that folds to several ("ß" -> "ss") reads each in turn
                s = table[s, code[c]]
            columns.append(s)
        return cls(tuple(folded), torch.from_numpy(numpy.stack(columns, axis=1)).long(), dead)

    def state_after(self, codes: Sequence[int], state: int = 0) -> int:
        """The state after reading `codes` (vocabulary indices) from `state`."""
        for c in codes:
            state = int(self.table[state, c])
        return state

    def found_in(self, text: str) -> str | None:
        """The first entry `text` contains (case-folded), or None: for messages and checks, not for sampling."""
        folded = text.casefold()
        return next((e for e in self.entries if e in folded), None)

    def to(self, device) -> "AvoidList":
        return AvoidList(self.entries, self.table.to(device), self.dead)

    def check_possible(self, start: int, length: int, shortest: int, max_len: int) -> None:
        """Refuse (a ParameterError of `avoid`) when no item of `shortest`..max_len characters can avoid every
        entry, from `state` after the first `length` characters: e.g. every character of the run is an entry."""
        frontier = numpy.array([start])
        table = self.table.numpy()
        seen: set[bytes] = set()
        target = max(shortest, length, 1)  # an empty item is no item
        while length < target:
            nxt = numpy.unique(table[frontier, 1:])  # every character (not the boundary)
            frontier = nxt[nxt != self.dead]
            length += 1
            key = frontier.tobytes()
            if frontier.size == 0 or length > max_len:
                raise ParameterError("avoid", f"leaves no possible item: every item of {target:,} to {max_len:,} "
                                              f"characters contains an entry (the list forbids too much: e.g. "
                                              f"every character the run has); shorten the list")
            if key in seen:  # the reachable states repeat from here on: longer items are possible too
                return
            seen.add(key)


def _compile(entries: list[str], alphabet: list[str]) -> numpy.ndarray:
    """The Aho–Corasick transition table (S + 1, A) of `entries`, every move into a match sent to DEAD (row S)."""
    code = {c: a for a, c in enumerate(alphabet)}
    A = len(alphabet)
    children: list[dict[int, int]] = [{}]
    terminal = [False]
    depth = [0]
    for entry in entries:  # the trie: state 0 is the empty prefix
        s = 0
        for ch in entry:
            a = code[ch]
            if a not in children[s]:
                children[s][a] = len(children)
                children.append({})
                terminal.append(False)
                depth.append(depth[s] + 1)
            s = children[s][a]
        terminal[s] = True
    S = len(children)
    child = numpy.full((S, A), -1, dtype=numpy.int64)
    for s, kids in enumerate(children):
        for a, c in kids.items():
            child[s, a] = c
    delta = numpy.zeros((S, A), dtype=numpy.int64)  # the full move from each state on each character
    fail = numpy.zeros(S, dtype=numpy.int64)  # the longest proper suffix of the state's prefix that is a state
    match = numpy.array(terminal)  # the state's prefix ends with an entry
    depth_of = numpy.array(depth)
    for d in range(int(depth_of.max()) + 1):  # one trie level at a time: failure links point to shallower states
        level = numpy.nonzero(depth_of == d)[0]
        if d == 0:
            delta[0] = numpy.where(child[0] >= 0, child[0], 0)
        else:
            delta[level] = numpy.where(child[level] >= 0, child[level], delta[fail[level]])
        parents, chars = numpy.nonzero(child[level] >= 0)
        kids = child[level[parents], chars]
        fail[kids] = 0 if d == 0 else delta[fail[level[parents]], chars]
        match[kids] |= match[fail[kids]]
    dead = S
    table = numpy.where(match[delta], dead, delta)  # a move that completes an entry ends in DEAD
    return numpy.vstack([table, numpy.full((1, A), dead, dtype=numpy.int64)])


__all__ = ["AvoidList"]
