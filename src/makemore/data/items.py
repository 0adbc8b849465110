"""Items, vocabulary, split and context windows.

An *item* is one line of the input file (a name, a word...). Index 0 of the
vocabulary is the boundary token that starts and ends every item; it is an
index, not a character, so it can never collide with a real character of the
data (a file whose items contain "." works and round-trips). It is *shown* as
"." in tables, as in the essay.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import bounds
from ..errors import MakemoreError, ParameterError

BOUNDARY = 0  # index of the start/end token
BOUNDARY_DISPLAY = "."  # how the essay writes it
MIN_ITEMS = 10  # fewer cannot be split 80/10/10 with something in every part


MAX_ITEM_LEN = 1000  # characters; longer lines are refused (or skipped, if asked) rather than truncated


@dataclass(frozen=True)
class TextOptions:
    """How lines become items. The defaults change nothing but line ends and a leading byte-order mark."""

    lowercase: bool = False  # lower-case every item (str.lower)
    nfc: bool = False  # Unicode NFC normalisation: "e" + combining accent becomes one "é"
    max_item_len: int = MAX_ITEM_LEN  # longest item accepted, in characters
    skip_long: bool = False  # skip longer items (and say how many) instead of refusing the file

    def __post_init__(self) -> None:
        bounds.check("max_item_len", self.max_item_len)

    def apply(self, item: str) -> str:
        if self.nfc:
            item = unicodedata.normalize("NFC", item)
        return item.lower() if self.lowercase else item


def read_text(path: Path, expected: str, what: str) -> str:
    """A UTF-8 input file's text, a leading byte-order mark dropped; one-line refusals of a missing file, a
    folder, a pipe or device, and bytes that are not UTF-8. `expected` says what to give instead ("a text
    file with one item per line"), `what` what the file holds ("the items")."""
    if not path.exists():
        raise MakemoreError(f"input file not found: {path} (give {expected})")
    if path.is_dir():
        raise MakemoreError(f"input is a directory, not a file: {path}")
    if not path.is_file():  # a pipe or a device (/dev/zero) may never end, and could not be read again
        raise MakemoreError(f"{path} is not a regular file (a pipe, device or socket); save {what} to a file and give that")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MakemoreError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise MakemoreError(
            f"{path} is not UTF-8 text (bad byte 0x{raw[e.start]:02x} on line {line}); re-save it as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def refuse_long_items(path: Path, too_long: list[int], kept: int, options: TextOptions,
                      on_note: Callable[[str], None] | None) -> None:
    """Items over max_item_len (their line numbers `too_long`; `kept` items were not): the file refused, or,
    with skip_long, the items skipped and said so through `on_note`."""
    if too_long and not options.skip_long:
        raise ParameterError("max_item_len", f"is exceeded in {path}: line {too_long[0]} is longer than "
                                             f"{options.max_item_len} characters ({len(too_long)} such line(s)); "
                                             f"remove them, raise max_item_len, or skip them with skip_long",
                             related=("max_item_len", "skip_long"))
    if not kept and too_long:
        raise ParameterError("max_item_len", f"is exceeded in {path}: every item is longer than "
                                             f"{options.max_item_len} characters ({len(too_long)} skipped); raise it")
    if too_long and on_note is not None:
        on_note(f"skipped {len(too_long)} item(s) longer than {options.max_item_len} characters (first on line {too_long[0]})")


def read_items(path: str | Path, options: TextOptions = TextOptions(),
               on_note: Callable[[str], None] | None = None) -> list[str]:
    """Read one item per line: strip a trailing CR, skip blank lines, keep everything else.

    A UTF-8 byte-order mark at the start of the file is not part of the first item. `on_note`
    hears about anything skipped (items over the length bound, with skip_long).
    """
    path = Path(path)
    text = read_text(path, "a text file with one item per line", "the items")
    if "\n" not in text and sum(1 for part in text.split("\r") if part.strip()) > 1:
        raise MakemoreError(f"{path} separates its lines with a bare CR (old Mac line ends), so it reads as one line; "
                            f"convert it to LF line ends (e.g. tr '\\r' '\\n' < old.txt > new.txt)")
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    items, too_long = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = options.apply(line)
        if len(item) > options.max_item_len:
            too_long.append(number)
            continue
        items.append(item)
    refuse_long_items(path, too_long, len(items), options, on_note)
    if not items:
        raise MakemoreError(f"{path} has no items (it is empty or only blank lines); put one item per line")
    return items


@dataclass(frozen=True)
class Vocab:
    """Characters of the data in sorted order; index i+1 is chars[i], index 0 is the boundary."""

    chars: tuple[str, ...]

    @classmethod
    def from_items(cls, items: list[str]) -> "Vocab":
        return cls(tuple(sorted(set("".join(items)))))

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    @property
    def stoi(self) -> dict[str, int]:
        return {ch: i + 1 for i, ch in enumerate(self.chars)}

    @property
    def itos(self) -> dict[int, str]:
        return {i + 1: ch for i, ch in enumerate(self.chars)}

    def display(self, index: int) -> str:
        return BOUNDARY_DISPLAY if index == BOUNDARY else self.chars[index - 1]

    def encode(self, item: str) -> list[int]:
        stoi = self.stoi
        unknown = sorted({ch for ch in item if ch not in stoi})
        if unknown:
            raise MakemoreError(f"characters not in the model's vocabulary: {''.join(unknown)!r}")
        return [stoi[ch] for ch in item]

    def decode(self, indices) -> str:
        """Indices to text; boundary tokens are dropped."""
        return "".join(map(("", *self.chars).__getitem__, indices))  # index 0, the boundary, reads as ""


def check_splittable(items: list[str]) -> None:
    if len(items) < MIN_ITEMS:
        raise MakemoreError(f"only {len(items)} items; need at least {MIN_ITEMS} to split into train/val/test")


def split_items(items: list[str], seed: int = 42) -> tuple[list[str], list[str], list[str]]:
    """80/10/10 split by item after the essay's shuffle: random.seed(seed); random.shuffle(items)."""
    check_splittable(items)
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)  # same sequence as random.seed(seed); random.shuffle(...)
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


Part = tuple[list[str], list[int]]  # a split part's items and each one's label (0 for an unlabelled list)


def split_labelled(items: list[str], labels: list[int] | None, seed: int = 42) -> tuple[Part, Part, Part]:
    """The train/val/test split of a list whose items may carry labels: stratified, each label's items split
    80/10/10 by `split_items` with the same seed, the parts then joined label by label. Without labels (or
    with one) it is `split_items` itself, so an unlabelled run's split never changed."""
    if labels is None:
        return tuple((part, [0] * len(part)) for part in split_items(items, seed))  # type: ignore[return-value]
    groups: dict[int, list[str]] = {}
    for item, label in zip(items, labels, strict=True):
        groups.setdefault(label, []).append(item)
    parts: tuple[Part, Part, Part] = (([], []), ([], []), ([], []))
    for label in sorted(groups):
        for (part_items, part_labels), chosen in zip(parts, split_items(groups[label], seed)):
            part_items.extend(chosen)
            part_labels.extend([label] * len(chosen))
    return parts


def drop_duplicates(items: list) -> tuple[list, int]:
    """Each item (any hashable: a text, an (item, label) pair) once, at its first occurrence, in file order;
    and how many repeats were dropped."""
    kept = list(dict.fromkeys(items))
    return kept, len(items) - len(kept)


def duplicate_figures(items: list[str], seed: int = 42, labels: list[int] | None = None) -> dict[str, int]:
    """How much a list repeats itself, for run.json's "dataset": its distinct items, and the val items
    (of the split `split_labelled(items, labels, seed)` makes) that also occur in the training split,
    which a model is scored on as if unseen although it trained on them."""
    figures = {"distinct_items": len(set(items))}
    if len(items) >= MIN_ITEMS:
        (train, _), (val, _), _ = split_labelled(items, labels, seed)
        seen = set(train)
        figures["val_items_in_train"] = sum(1 for item in val if item in seen)
    return figures


def describe_duplicates(dataset: dict) -> str:
    """One line on a dataset's repeats from its run.json record, for under the reproduce and leaderboard tables."""
    name, n, distinct = dataset.get("name", "the data"), dataset["items"], dataset.get("distinct_items")
    if distinct is None:
        return f"{name}: {n:,} items (repeats not counted)"
    text = f"{name}: {n:,} items, {distinct:,} distinct"
    if dataset.get("duplicates_dropped") is not None:
        text += f" ({dataset['duplicates_dropped']:,} repeats dropped before the split by --dedupe)"
    leak = dataset.get("val_items_in_train")
    if leak is not None:
        text += f"; {leak:,} val items also occur in train" + ("" if leak == 0 or dataset.get("duplicates_dropped")
                                                               is not None else " (--dedupe removes repeats)")
    return text


def index_dtype(vocab_size: int) -> torch.dtype:
    """The smallest signed integer type that holds every index of the vocabulary.

    Signed on purpose: PyTorch reads a uint8 index tensor as a boolean mask, while an int8/int16
    one used as an index fails loudly, so a forgotten `.long()` can never index silently wrong.
    """
    for dtype in (torch.int8, torch.int16, torch.int32):
        if vocab_size - 1 <= torch.iinfo(dtype).max:
            return dtype
    return torch.int64


def encode_all(items: list[str], vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Every character of every item as vocabulary indices, flat, and each item's length: (codes, lengths (N,)).

    The text is encoded once as UTF-32 (one 32-bit code point per character) and each code point is
    looked up among the vocabulary's sorted ones: no Python loop over characters, so millions of items
    take seconds, and the codes are int32 (a quarter of the memory of Python ints in a list, or int64).
    A character outside the vocabulary is refused, as `Vocab.encode` does."""
    lengths = torch.tensor([len(it) for it in items], dtype=torch.int64)
    text = "".join(items)
    if not text:
        return torch.zeros(0, dtype=torch.int32), lengths
    points = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)
    del text
    known, index = torch.sort(torch.tensor([ord(ch) for ch in vocab.chars], dtype=torch.int32))
    at = torch.searchsorted(known, points, out_int32=True).clamp_(max=max(len(known) - 1, 0))
    if len(known) == 0 or not bool((known[at] == points).all()):
        vocab.encode("".join(items))  # raises, naming the unknown characters
    del points
    return (index.to(torch.int32) + 1)[at], lengths  # index 0 is the boundary


def _characters(items: list[str], vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every character of every item, flat: (lengths (N,), codes, the item of each, its offset in that item)."""
    codes, lengths = encode_all(items, vocab)
    item_of_char = torch.repeat_interleave(torch.arange(len(items)), lengths)
    offset = torch.arange(len(codes)) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    return lengths, codes, item_of_char, offset


def build_windows(items: list[str], vocab: Vocab, block_size: int,
                  dtype: torch.dtype = torch.int64) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (context, next character) pair of every item, built with tensor ops.

    Each item becomes [0]*block_size + chars + [0]; the targets are its characters and
    the final boundary, and the context of a target is the block_size indices before it.
    Returns X (N, block_size) and Y (N,) in `dtype`, N = sum(len(item) + 1).

    Memory: besides X and Y, a few flat arrays of one entry per character (a stream of the items in
    `dtype`, and int64 positions into it), never (N, block_size) of int64: millions of items fit.
    """
    if block_size < 1:
        raise MakemoreError(f"block size must be at least 1, got {block_size}")
    codes, lengths = encode_all(items, vocab)
    # Lay all items out in one flat stream, each preceded by block_size boundaries and followed by
    # one: item k starts at sum(len_i, i < k) + k * (block_size + 1), so character g of the whole text,
    # in item k, sits at g + k * (block_size + 1) + block_size.
    stride = block_size + 1
    total = int(lengths.sum()) + stride * len(items)
    stream = torch.zeros(total, dtype=dtype)
    shift = torch.repeat_interleave(torch.arange(len(items), dtype=torch.int64) * stride + block_size, lengths)
    shift += torch.arange(codes.shape[0], dtype=torch.int64)  # now each character's place in the stream
    stream[shift] = codes.to(dtype)
    del shift, codes
    # Targets: every place but the block_size leading boundaries of each item (its characters and its end).
    is_target = torch.ones(total, dtype=torch.bool)
    starts = torch.cumsum(lengths + stride, 0) - (lengths + stride)  # (N,) where each item's leading boundaries begin
    for j in range(block_size):
        is_target[starts + j] = False
    target_pos = is_target.nonzero().squeeze(1)  # (M,) int64
    del is_target
    windows = stream.unfold(0, block_size, 1)  # windows[p] = stream[p : p + block_size], a view
    X = windows[target_pos - block_size]  # (M, block_size) in dtype: a copy of just the windows
    Y = stream[target_pos]
    return X, Y


PAD_TARGET = -1  # the target of a padding position of a sequence: no character, left out of the loss


def build_sequences(items: list[str], vocab: Vocab,
                    dtype: torch.dtype = torch.int64) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item whole, for the sequence models: one row per item, padded to the longest.

    Row k of X is [0] + item k's characters, then 0s; row k of Y is its characters + [0] (the end
    token), then PAD_TARGET (-1): position t of X is everything before target t, so the targets
    are exactly those of `build_windows` (every character and the end token), in the same order
    row by row. Returns X, Y (N, L) in `dtype` (signed, so -1 fits), L = longest item + 1.
    """
    lengths, codes, row, col = _characters(items, vocab)
    codes = codes.to(dtype)
    N, L = len(items), int(lengths.max()) + 1 if items else 1
    X = torch.zeros((N, L), dtype=dtype)
    Y = torch.full((N, L), PAD_TARGET, dtype=dtype)
    X[row, col + 1] = codes  # position 0 is the start boundary
    Y[row, col] = codes
    Y[torch.arange(N), lengths] = BOUNDARY  # the end token
    return X, Y


@dataclass
class Splits:
    """Train/val/test data of one dataset: windows at one block size, or whole items (layout "sequence")."""

    vocab: Vocab
    block_size: int | None  # the windows' context length; for sequences only recorded (None: no bound)
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    train_items: list[str]
    layout: str = "windows"  # "windows": X (N, block_size), Y (N,); "sequence": X, Y (items, L), see build_sequences
    n_labels: int = 1  # labels the items carry; X's indices are label * vocab.size + character (makemore.data.labels)
    train_labels: list[int] | None = None  # each training item's label (None: unlabelled)

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return {"train": self.train, "val": self.val, "test": self.test}[name]


def row_keys(X: torch.Tensor, base: int, last: torch.Tensor | None = None) -> torch.Tensor:
    """Each row of index rows X (N, T) as one int64, its indices as base-`base` digits, the first column the
    most significant (so the keys sort as the rows do); `last` (N,) appends one more digit. Built column
    by column: one int64 per row, never (N, T) of them. The caller checks that base^digits fits."""
    keys = torch.zeros(X.shape[0], dtype=torch.int64, device=X.device)
    for col in range(X.shape[1]):
        keys.mul_(base).add_(X[:, col])
    return keys if last is None else keys.mul_(base).add_(last)


def unique_rows(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`torch.unique(X, dim=0, return_inverse=True)` for index rows, as a 1-D sort where each row fits in
    one integer (its indices as digits): a few seconds for tens of millions of windows."""
    base = int(X.max()) + 1 if X.numel() else 1
    if X.dim() != 2 or base ** X.shape[1] >= 2 ** 62:
        return torch.unique(X, dim=0, return_inverse=True)
    keys = row_keys(X, base)
    keys, inverse = torch.unique(keys, return_inverse=True)
    rows = torch.empty((keys.shape[0], X.shape[1]), dtype=X.dtype, device=X.device)
    for col in range(X.shape[1] - 1, -1, -1):
        rows[:, col] = (keys % base).to(X.dtype)
        keys = keys // base
    return rows, inverse


SOFT_TARGET_LIMIT = 1 << 26  # most cells (distinct contexts x characters) of a soft-target table: 256 MB


def next_char_distributions(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """For each window, which distinct context it has, and what follows each distinct context.

    Returns (context_of, dist): context_of (N,) numbers the distinct rows of X, and dist (K, V')
    holds, in row k, the empirical distribution of Y over the windows with context k (V' = the
    largest target + 1). None when that table would pass SOFT_TARGET_LIMIT cells. names.txt with
    3 characters of context has 182,625 training windows but only 5,438 distinct contexts.
    """
    contexts, context_of = unique_rows(X)
    n_classes = int(Y.max()) + 1
    if contexts.shape[0] * n_classes > SOFT_TARGET_LIMIT:
        return None
    counts = torch.zeros(contexts.shape[0], n_classes, device=X.device)
    counts.index_put_((context_of, Y.long()), torch.ones(Y.shape[0], device=X.device), accumulate=True)
    return context_of, counts / counts.sum(dim=1, keepdim=True)


def make_splits(items: list[str], block_size: int | None, seed: int = 42, vocab: Vocab | None = None,
                layout: str = "windows", labels: list[int] | None = None) -> Splits:
    """Vocabulary from all items (unless given), seeded item split, then windows (or, with layout
    "sequence", whole padded items: `build_sequences`) for each part. The split is the same for both.

    With `labels` (each item's label number), the split is stratified (`split_labelled`) and every index
    of an item's windows or sequence carries its label: label * vocab.size + character (makemore.data.labels).

    Windows are stored in the smallest integer type the vocabulary allows (int8 for names.txt):
    an eighth of int64's memory; models convert batches with `.long()`.
    """
    vocab = vocab or Vocab.from_items(items)
    if layout not in ("windows", "sequence"):
        raise MakemoreError(f"unknown data layout {layout!r}; choose windows or sequence")
    n_labels = max(labels) + 1 if labels else 1
    parts = split_labelled(items, labels, seed)
    dtype = index_dtype(vocab.size * n_labels)

    def build(part: Part) -> tuple[torch.Tensor, torch.Tensor]:
        part_items, part_labels = part
        if layout == "sequence":
            X, Y = build_sequences(part_items, vocab, dtype)
            if n_labels > 1:  # every position of a row, padding included, carries the row's label
                X += (torch.tensor(part_labels, dtype=dtype) * vocab.size)[:, None]
            return X, Y
        if n_labels == 1:
            return build_windows(part_items, vocab, block_size, dtype)
        pieces = []  # the items of a part are grouped by label (split_labelled): one block of windows per label
        for label in sorted(set(part_labels)):
            X, Y = build_windows([it for it, lb in zip(*part) if lb == label], vocab, block_size, dtype)
            pieces.append((X + label * vocab.size, Y))
        return torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces])

    return Splits(
        vocab=vocab,
        block_size=block_size,
        train=build(parts[0]),
        val=build(parts[1]),
        test=build(parts[2]),
        train_items=parts[0][0],
        layout=layout,
        n_labels=n_labels,
        train_labels=parts[0][1] if labels is not None else None,
    )
