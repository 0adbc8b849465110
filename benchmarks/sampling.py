"""Items per second: batched sampling (makemore.sample) against a one-item-at-a-time Python loop.

For each of the essay's five models, on one dataset: bigram-counts is fitted (counting, exact);
the four neural models are trained briefly (--steps AdamW steps of their "fast" recipe, a few
seconds each) so that they end items at realistic lengths — the speed of sampling does not depend
on how well a model is trained, only on how long its items are. Then, on the same model, side by side:

- batched: `generate(model, vocab, -n)`, all items advancing together, one model call per position;
- loop: the lecture's loop, one item at a time, one model call per character of each item, timed on
  --loop-n items and scaled to items per second.

Both draw from the same distribution (temperature 1, max_len = twice the longest training item);
the mean length of the items is printed beside each rate so the two are seen to do the same work.

    MAKEMORE_DATA=../shared/data python benchmarks/sampling.py
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from makemore.data import BOUNDARY, make_splits, read_items
from makemore.datasets import locate_input
from makemore.models import build_model
from makemore.recipes import get_recipe
from makemore.reproduce import ESSAY_MODELS
from makemore.runs import default_block_size
from makemore.sample import generate
from makemore.train import train


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


def build(name: str, items: list[str], steps: int, seed: int):
    splits = make_splits(items, default_block_size(name))
    torch.manual_seed(seed)
    model = build_model(name, vocab_size=splits.vocab.size)
    recipe = get_recipe(name)
    start = time.perf_counter()
    if getattr(model, "trainable", True):
        recipe.steps = steps
        recipe.eval_interval = 0
        train(model, splits.train, recipe, seed=seed)
        how = f"trained {steps:,} steps"
    else:
        train(model, splits.train, recipe, seed=seed)  # fits the counts
        how = "fitted (counts)"
    model.eval()
    return model, splits.vocab, f"{how}, {time.perf_counter() - start:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    parser.add_argument("--models", default=",".join(ESSAY_MODELS), help="comma-separated (default: the essay's five)")
    parser.add_argument("-n", type=int, default=10_000, help="items drawn batched (default: 10,000)")
    parser.add_argument("--loop-n", type=int, default=200, help="items drawn one at a time (default: 200)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of the neural models (default: 1000)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each, fastest kept (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = locate_input(args.input, os.environ)
    items = read_items(path)
    max_len = 2 * max(len(it) for it in items)
    print(f"{path.name}: {len(items):,} items; max_len {max_len}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); batched n={args.n:,}, loop n={args.loop_n:,}; best of {args.repeats}")
    print(f"{'model':<14} {'built':<28} {'batched items/s':>16} {'len':>5} {'loop items/s':>13} {'len':>5} {'speedup':>8}")
    for name in args.models.split(","):
        model, vocab, how = build(name, items, args.steps, args.seed)
        generate(model, vocab, 100, max_len=max_len, seed=args.seed)  # warm-up
        batched_s, batched = best_of(args.repeats, lambda: generate(model, vocab, args.n, max_len=max_len, seed=args.seed))
        loop_s, looped = best_of(args.repeats, lambda: one_at_a_time(model, args.loop_n, max_len, args.seed))
        batched_rate, loop_rate = args.n / batched_s, args.loop_n / loop_s
        batched_len = sum(len(s.item) for s in batched) / len(batched)
        loop_len = sum(len(ix) for ix in looped) / len(looped)
        print(f"{name:<14} {how:<28} {batched_rate:>16,.0f} {batched_len:>5.1f} {loop_rate:>13,.0f} {loop_len:>5.1f} "
              f"{batched_rate / loop_rate:>7.0f}x", flush=True)


if __name__ == "__main__":
    main()
