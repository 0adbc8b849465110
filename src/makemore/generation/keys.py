"""One item per key: the same key gives the same item, whatever else is asked at the same time.

A game that names each planet by its id wants "planet 4711" to get the same name on every machine and
every run, however many other planets are named with it, in whatever order, in batches of any size.
So each key draws from a random stream of its own, made from the request's seed and the key alone:

    key seed   = the first 8 bytes of sha256(seed, key)
    attempt a  = splitmix64(key seed + a * golden)            (a = 0, 1, 2, ...)
    uniform t  = splitmix64(attempt a + (t + 1) * golden)      the number that draws character t

`batches.draw` turns each uniform into a character (the inverse of the row's cumulative distribution),
so a row's characters depend on its own stream and its own logits only, not on the other rows. A
key's label (a labelled run asked for several labels) is drawn from its key seed too.

The item of a key is its first attempt that passes the request's rules (`rules`: suffix, contains,
avoid, novel, exclude, thresholds). With unique (or novel), two keys may want the same item; then the
keys, taken in code-point order, each keep their first passing attempt that no earlier key holds.
That depends on which keys are asked together (as it must), never on their order, n or the batch size.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy
import torch

from ..data.items import Vocab
from ..data.labels import LabelSet
from ..models.layers import eval_mode
from .batches import BATCH_SIZE, Drawing, Sample, Uniforms, sample_batch, texts
from .request import GenerateRequest
from .rules import Rules

GOLDEN = numpy.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: splitmix64's step
LABEL_SALT = numpy.uint64(0x6C6162656C736565)  # a key's label is drawn from its key seed mixed with this
MAX_ROUND = 1024  # most attempts one key draws in one round (rounds double from 1)


def splitmix64(x: numpy.ndarray) -> numpy.ndarray:
    """The splitmix64 finaliser of uint64 values (element-wise, wrapping arithmetic): a well-mixed 64-bit hash."""
    with numpy.errstate(over="ignore"):
        z = x + GOLDEN
        z = (z ^ (z >> numpy.uint64(30))) * numpy.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> numpy.uint64(27))) * numpy.uint64(0x94D049BB133111EB)
        return z ^ (z >> numpy.uint64(31))


def key_seed(seed: int, key: str) -> int:
    """The key's own seed: the request's seed and the key, hashed (the same on every machine)."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "little")


def attempt_seeds(seeds: numpy.ndarray, attempts: numpy.ndarray) -> numpy.ndarray:
    """The stream seed of each (key seed, attempt) pair (uint64 arrays)."""
    with numpy.errstate(over="ignore"):
        return splitmix64(seeds + attempts.astype(numpy.uint64) * GOLDEN)


def unit(z: numpy.ndarray) -> numpy.ndarray:
    """uint64 hashes as float32 uniforms in [0, 1): their top 24 bits, exact in float32 (never 1.0)."""
    return (z >> numpy.uint64(40)).astype(numpy.float32) / numpy.float32(2 ** 24)


def row_uniforms(streams: numpy.ndarray) -> Uniforms:
    """Uniforms of a batch whose row r draws from stream streams[r]: character t's is a hash of (stream, t)."""
    def uniforms(rows: torch.Tensor, t: int) -> torch.Tensor:
        with numpy.errstate(over="ignore"):
            z = splitmix64(streams[rows.cpu().numpy()] + numpy.uint64(t + 1) * GOLDEN)
        return torch.from_numpy(unit(z)).to(rows.device)[:, None]  # (B, 1)
    return uniforms


def key_labels(seeds: Sequence[int], labels: LabelSet | None, chosen: list[int] | None) -> list[int]:
    """Each key's label: the one asked for, else drawn among those asked for (or all) by their share of the
    training items, with a uniform from the key's seed (so it does not depend on the other keys)."""
    if labels is None:
        return [0] * len(seeds)
    pool = chosen if chosen is not None else list(range(len(labels.names)))
    if len(pool) == 1:
        return [pool[0]] * len(seeds)
    weights = numpy.array([labels.train_counts[i] for i in pool], dtype=numpy.float64)
    edges = numpy.cumsum(weights) / weights.sum()
    u = unit(splitmix64(numpy.array(seeds, dtype=numpy.uint64) ^ LABEL_SALT)).astype(numpy.float64)
    return [pool[min(int(i), len(pool) - 1)] for i in numpy.searchsorted(edges, u, side="right")]


def keyed_items(drawing: Callable[[int], tuple[Drawing, str | None]], vocab: Vocab, request: GenerateRequest,
                rules: Rules, labels: LabelSet | None, chosen: list[int] | None,
                batch_size: int = BATCH_SIZE) -> list[Sample]:
    """One Sample per key of request.keys (in their order, each carrying its key); a ParameterError naming the rule
    in the way when some key finds no passing item within request.max_draws draws in all.

    `drawing(k)` gives label k's Drawing and name. Keys draw attempts in rounds (1, 2, 4, ... attempts per key still
    without an item): how many are drawn at once changes the work, not any key's attempts."""
    keys = list(request.keys)
    seeds = [key_seed(request.seed, key) for key in keys]
    label_of = dict(zip(keys, key_labels(seeds, labels, chosen)))
    seed_of = dict(zip(keys, seeds))
    passing: dict[str, list[Sample]] = {key: [] for key in keys}  # each key's passing attempts, in attempt order
    tried = dict.fromkeys(keys, 0)  # attempts drawn per key
    order = sorted(keys)
    drawn = 0
    while True:
        chosen_items, lacking = assign(order, passing, unique=rules.seen is not None)
        if not lacking:
            return [chosen_items[key] for key in keys]
        if drawn >= request.max_draws:
            raise rules.short_of(len(keys), len(keys) - len(lacking), drawn)
        rows = []  # (key, attempt) to draw now: each lacking key its next round
        for key in lacking:
            more = min(max(tried[key], 1), MAX_ROUND)
            rows += [(key, a) for a in range(tried[key], tried[key] + more)]
            tried[key] += more
        drawn += len(rows)
        for key, sample in _draw_rows(rows, drawing, label_of, seed_of, vocab, rules, batch_size):
            passing[key].append(sample)


def assign(order: list[str], passing: dict[str, list[Sample]], unique: bool) -> tuple[dict[str, Sample], list[str]]:
    """Each key's item from its passing attempts, keys in `order`; with unique, an item already held by an earlier key
    is skipped. The keys left without one (they need more attempts) come second."""
    held: set[str] = set()
    chosen: dict[str, Sample] = {}
    lacking: list[str] = []
    for key in order:
        pick = next((s for s in passing[key] if not (unique and s.item in held)), None)
        if pick is None:
            lacking.append(key)
            continue
        chosen[key] = pick
        if unique:
            held.add(pick.item)
    return chosen, lacking


def _draw_rows(rows: list[tuple[str, int]], drawing, label_of, seed_of, vocab: Vocab, rules: Rules,
               batch_size: int) -> list[tuple[str, Sample]]:
    """Draw each (key, attempt) row from its own stream; the rows that pass the rules (unique aside), in row order."""
    out: list[tuple[int, str, Sample]] = []
    by_label: dict[int, list[int]] = {}
    for i, (key, _) in enumerate(rows):
        by_label.setdefault(label_of[key], []).append(i)
    for k, members in by_label.items():
        plan, name = drawing(k)
        size = plan.batch_size(batch_size)
        with eval_mode(plan.model):
            for start in range(0, len(members), size):
                chunk = members[start:start + size]
                streams = attempt_seeds(numpy.array([seed_of[rows[i][0]] for i in chunk], dtype=numpy.uint64),
                                        numpy.array([rows[i][1] for i in chunk], dtype=numpy.int64))
                batch = sample_batch(plan, len(chunk), row_uniforms(streams))
                items = texts(vocab, batch.out, plan.request.prefix)
                dead = batch.dead.tolist() if batch.dead is not None else [False] * len(chunk)
                for i, item, lp, gone in zip(chunk, items, batch.log_prob.tolist(), dead):
                    failed = rules.fails(None if gone else item, lp, repeats=False)
                    if failed is None:
                        out.append((i, rows[i][0], Sample(item, lp, name, rows[i][0])))
                    else:
                        rules.rejected[failed] += 1
    out.sort(key=lambda t: t[0])  # attempt order within each key
    return [(key, sample) for _, key, sample in out]


__all__ = ["keyed_items", "key_seed", "splitmix64"]
