"""Items per second and seconds per request: batched sampling, cached decoding, most-likely search, constraints.

Three tables, on one dataset (names by default):

1. essay: for each of the essay's five models, batched sampling (`generate`, all items advancing
   together, one model call per position) against the lecture's one-item-at-a-time loop, timed on
   --loop-n items and scaled to items per second.
2. decoding: for each sequence model, items per second with the model's cache (`makemore.models.decoding`:
   a transformer's keys and values, a recurrent state, the convolutional WaveNet's queues) and
   without it (every step reads each item whole again, as sampling did before caches), at batch
   sizes 1, 64 and 1,024: -n items each, --batch1-n at batch 1 (a Python loop per item: slow, and
   the rate does not depend on the count).
3. search: seconds for `--most-likely 100`, for 100 items `--suffix ella` and 100 `--contains qu`
   (exact rejection: about 100 / P(constraint) draws; the estimated P is printed beside it), from a
   names WaveNet and transformer (and wavenet-conv).

Models come from --runs DIR (DIR/<model>/, e.g. a `makemore reproduce` or `leaderboard` output) when
there, else they are trained here, once for all tables: the essay's models --steps steps of their
"fast" recipe, the sequence models --seq-steps steps at batch --seq-batch (short recipes: the speed of
sampling depends only on how long the items are, the constraints' rates on how well names were learnt).

    MAKEMORE_DATA=../shared/data python benchmarks/sampling.py
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from makemore.training.run_folder import load_run
from makemore.generation.constraints import Constraint, estimate_probability
from makemore.data.items import BOUNDARY, read_items
from makemore.data.builtin import locate_input
from makemore.models import build_model
from makemore.training.recipes import get_recipe
from makemore.studies.reproduce import ESSAY_MODELS
from makemore.training.pipeline import default_block_size, splits_for
from makemore.generation.request import GenerateRequest
from makemore.generation.sampler import generate, sample_indices
from makemore.generation.search import most_likely
from makemore.training.loop import train

SEQUENCE_MODELS = ["rnn", "gru", "lstm", "transformer", "wavenet-conv"]
SEARCH_MODELS = ["wavenet", "transformer", "wavenet-conv"]
EMPTY = '""'  # how the empty item is shown


@torch.no_grad()
def one_at_a_time(model, n: int, max_len: int, seed: int) -> list[list[int]]:
    """The lecture's sampling loop: one item, one character, one model call at a time."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    block_size = model.config.block_size
    items = []
    for _ in range(n):
        context, out = [BOUNDARY] * block_size, []
        while len(out) < max_len:
            logits, _ = model(torch.tensor([context]))
            ix = torch.multinomial(torch.softmax(logits, dim=1), num_samples=1, generator=g).item()
            if ix == BOUNDARY:
                break
            out.append(ix)
            context = context[1:] + [ix]
        items.append(out)
    return items


def best_of(repeats: int, fn):
    """The fastest of `repeats` timed calls (the machine is shared: the minimum is the least disturbed)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


BUILT: dict[str, tuple] = {}  # name -> (model, vocab, how): each model is made once for all tables


def build(name: str, items: list[str], args):
    """(model, vocab, how it was made): loaded from --runs DIR/<name> when there, else trained here (once)."""
    if name not in BUILT:
        BUILT[name] = _build(name, items, args)
    return BUILT[name]


def _build(name: str, items: list[str], args):
    if args.runs is not None and (args.runs / name / "run.json").exists():
        model, vocab, meta = load_run(args.runs / name)
        return model.eval(), vocab, f"{meta.get('recipe', {}).get('steps', '?'):,} steps, val {meta['metrics']['val_nll']:.3f}"
    splits = splits_for(items, name, default_block_size(name))  # windows, or whole items for a sequence model
    torch.manual_seed(args.seed)
    model = build_model(name, vocab_size=splits.vocab.size)
    recipe = get_recipe(name)
    start = time.perf_counter()
    if not getattr(model, "trainable", True):
        train(model, splits.train, recipe, seed=args.seed)  # fits the counts
        return model.eval(), splits.vocab, "fitted (counts)"
    sequence = name in SEQUENCE_MODELS
    recipe.steps, recipe.eval_interval = (args.seq_steps if sequence else args.steps), 0
    recipe.warmup_steps = min(recipe.warmup_steps, recipe.steps // 10)
    recipe.batch_size = args.seq_batch if sequence else recipe.batch_size
    train(model, splits.train, recipe, seed=args.seed)
    return model.eval(), splits.vocab, f"trained {recipe.steps:,} steps, {time.perf_counter() - start:.0f} s"


def essay_table(args, items, max_len) -> None:
    print(f"\nbatched n={args.n:,}, loop n={args.loop_n:,}")
    print(f"{'model':<14} {'built':<28} {'batched items/s':>16} {'len':>5} {'loop items/s':>13} {'len':>5} {'speedup':>8}")
    for name in args.models.split(","):
        model, vocab, how = build(name, items, args)
        generate(model, vocab, GenerateRequest(n=100, max_len=max_len, seed=args.seed))  # warm-up
        batched_s, batched = best_of(args.repeats, lambda: generate(model, vocab, GenerateRequest(n=args.n, max_len=max_len,
                                                                                   seed=args.seed)))
        loop_s, looped = best_of(args.repeats, lambda: one_at_a_time(model, args.loop_n, max_len, args.seed))
        batched_rate, loop_rate = args.n / batched_s, args.loop_n / loop_s
        batched_len = sum(len(s.item) for s in batched) / len(batched)
        loop_len = sum(len(ix) for ix in looped) / len(looped)
        print(f"{name:<14} {how:<28} {batched_rate:>16,.0f} {batched_len:>5.1f} {loop_rate:>13,.0f} {loop_len:>5.1f} "
              f"{batched_rate / loop_rate:>7.0f}x", flush=True)


def decoding_table(args, items, max_len) -> None:
    print(f"\ncached vs uncached decoding: {args.n:,} items per rate ({args.batch1_n:,} at batch 1, scaled)")
    print(f"{'model':<14} {'built':<28} {'batch':>6} {'uncached items/s':>17} {'cached items/s':>15} "
          f"{'speedup':>8} {'len':>5}")
    for name in SEQUENCE_MODELS:
        model, vocab, how = build(name, items, args)
        generate(model, vocab, GenerateRequest(n=100, max_len=max_len, seed=args.seed))  # warm-up
        for batch in (1, 64, 1024):
            n = args.batch1_n if batch == 1 else args.n
            rates = []
            for cache in (False, True):
                seconds, drawn = best_of(args.repeats, lambda: generate(model, vocab, GenerateRequest(n=n, max_len=max_len, seed=args.seed),
                                                                        batch_size=batch, cache=cache))
                rates.append(n / seconds)
            mean_len = sum(len(s.item) for s in drawn) / len(drawn)
            print(f"{name:<14} {how:<28} {batch:>6,} {rates[0]:>17,.0f} {rates[1]:>15,.0f} {rates[1] / rates[0]:>7.1f}x "
                  f"{mean_len:>5.1f}", flush=True)


def search_table(args, items, max_len) -> None:
    print(f"\nsearch and constraints: 100 items each, max_len {max_len}, seed {args.seed}")
    print(f"{'model':<14} {'built':<28} {'request':<18} {'seconds':>8}  detail")
    for name in SEARCH_MODELS:
        model, vocab, how = build(name, items, args)
        generate(model, vocab, GenerateRequest(n=100, max_len=max_len, seed=args.seed))  # warm-up
        seconds, found = best_of(1, lambda: most_likely(model, vocab, GenerateRequest(most_likely=100, max_len=max_len)))
        print(f"{name:<14} {how:<28} {'--most-likely 100':<18} {seconds:>8.2f}  {found.expansions:,} prefixes expanded, "
              f"exact: {found.exact}; first {', '.join(s.item or EMPTY for s in found.items[:4])}", flush=True)
        for flag, constraint in (("--suffix ella", Constraint(suffix="ella")), ("--contains qu", Constraint(contains="qu"))):
            seconds, drawn = best_of(args.repeats, lambda: generate(model, vocab, GenerateRequest(
                n=100, max_len=max_len, seed=args.seed, suffix=constraint.suffix, contains=constraint.contains)))
            walks = sample_indices(model, 2000, max_len, torch.Generator().manual_seed(args.seed))
            p = estimate_probability(model, vocab, "", constraint, walks)
            print(f"{name:<14} {how:<28} {flag:<18} {seconds:>8.2f}  P = {p:.4f}, ~{100 / p:,.0f} draws; "
                  f"first {', '.join(s.item for s in drawn[:4])}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    parser.add_argument("--tables", default="essay,decoding,search", help="which tables (default: all three)")
    parser.add_argument("--models", default=",".join(ESSAY_MODELS), help="essay table's models (default: the essay's five)")
    parser.add_argument("--runs", type=Path, default=None, help="folder of trained runs, DIR/<model> (default: train here)")
    parser.add_argument("-n", type=int, default=10_000, help="items per batched rate (default: 10,000)")
    parser.add_argument("--batch1-n", type=int, default=1_000, help="items drawn at batch 1 (default: 1,000)")
    parser.add_argument("--loop-n", type=int, default=200, help="items drawn one at a time (default: 200)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of the essay's models (default: 1000)")
    parser.add_argument("--seq-steps", type=int, default=1500, help="training steps of the sequence models (default: 1500)")
    parser.add_argument("--seq-batch", type=int, default=128, help="their batch size, in items (default: 128)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each, fastest kept (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = locate_input(args.input, os.environ)
    items = read_items(path)
    max_len = 2 * max(len(it) for it in items)
    print(f"{path.name}: {len(items):,} items; max_len {max_len}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); best of {args.repeats}")
    tables = {"essay": essay_table, "decoding": decoding_table, "search": search_table}
    for table in args.tables.split(","):
        tables[table](args, items, max_len)


if __name__ == "__main__":
    main()
