"""Same seed, same bits, at what cost: the table lookup as `C[idx]` (advanced indexing) against `F.embedding`.

For every model that looks its inputs up in a table, at its default recipe and batch size and at
PyTorch's default thread count, train twice from the same seed with each lookup, side by side in
one process, and print the milliseconds per step and whether the two runs ended with the same bits.

    MAKEMORE_DATA=../shared/data python benchmarks/determinism.py            # ~2 minutes on 2 cores
    MAKEMORE_DATA=../shared/data python benchmarks/determinism.py --steps 100 --models wavenet
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import torch

from makemore.data.items import read_items
from makemore.data.builtin import locate_input
from makemore.models import bigram, build_model, mlp, wavenet, wavenet_conv
from makemore.training.recipes import get_recipe
from makemore.training.pipeline import default_block_size, splits_for
from makemore.training.loop import train

MODULES = (bigram, mlp, wavenet, wavenet_conv)  # the model files that call layers.embed


def indexing(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The old lookup: its backward accumulates with index_put_, in an order that varies with threads."""
    return table[idx.long()]


def use_lookup(lookup) -> None:
    for module in MODULES:
        module.embed = lookup


def train_once(name: str, items: list[str], steps: int, seed: int) -> tuple[str, float]:
    recipe = get_recipe(name)
    recipe.steps = steps
    splits = splits_for(items, name, default_block_size(name))
    torch.manual_seed(seed)
    model = build_model(name, vocab_size=splits.vocab.size)
    start = time.perf_counter()
    train(model, splits.train, recipe, seed=seed)
    ms = (time.perf_counter() - start) / steps * 1000
    digest = hashlib.sha256(b"".join(t.detach().contiguous().numpy().tobytes() for t in model.state_dict().values()))
    return digest.hexdigest()[:12], ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", default="names")
    parser.add_argument("--models", default="bigram-nn,mlp,mlp-bn,wavenet,wavenet-conv")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    items = read_items(locate_input(args.input, os.environ))
    original = mlp.embed
    print(f"threads: {torch.get_num_threads()}; {args.steps} steps of each model's default recipe, twice per lookup")
    print(f"{'model':<14} {'C[idx] ms/step':>15} {'embedding ms/step':>18} {'ratio':>6}  {'C[idx] same bits':>16}  "
          f"{'embedding same bits':>19}")
    for name in args.models.split(","):
        row = {}
        for label, lookup in (("index", indexing), ("embed", original)):
            use_lookup(lookup)
            runs = [train_once(name, items, args.steps, args.seed) for _ in range(2)]
            row[label] = (min(ms for _, ms in runs), runs[0][0] == runs[1][0])
        use_lookup(original)
        (ms_i, same_i), (ms_e, same_e) = row["index"], row["embed"]
        print(f"{name:<14} {ms_i:>15.2f} {ms_e:>18.2f} {ms_e / ms_i:>6.2f}  {str(same_i):>16}  {str(same_e):>19}")


if __name__ == "__main__":
    main()
