"""Train one model under one or more recipes and seeds; print val NLL and training time.

The "fast" recipes in src/makemore/recipes.py were chosen with runs like these
(see NOTES in benchmarks/README.md). Example:

    MAKEMORE_DATA=../shared/data python benchmarks/recipe_search.py mlp-bn \
        '{"steps":20000,"batch_size":1024,"optimizer":"adamw","lr":0.004,"schedule":"cosine","min_lr_ratio":0.01,"weight_decay":0.1}' \
        --seeds 42 1 2
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from makemore.data.items import make_splits, read_items
from makemore.data.builtin import locate_input
from makemore.models import build_model
from makemore.training.pipeline import default_block_size
from makemore.training.loop import Recipe, evaluate, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("recipes", nargs="+", help="Recipe fields as JSON, one per recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-i", "--input", default="names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = locate_input(args.input, os.environ)
    splits = make_splits(read_items(path), default_block_size(args.model))
    print(f"{'recipe':<60} {'seed':>5} {'train':>7} {'val':>7} {'seconds':>8}")
    for fields in args.recipes:
        recipe = Recipe(**json.loads(fields))
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = build_model(args.model, vocab_size=splits.vocab.size)
            result = train(model, splits.train, recipe, seed=seed)
            print(f"{fields[:60]:<60} {seed:>5} {evaluate(model, splits.train):>7.4f} "
                  f"{evaluate(model, splits.val):>7.4f} {result.seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
