"""Val NLL of the `ngram` model by order, Kneser-Ney discount and add-k, on the essay split.

Counting does not depend on the discount, so each order is fitted once and every
discount is scored on the same tables. Per-order discounts are then tuned at the best
order by coordinate descent (one context length at a time, over the same grid).
The defaults of NGramConfig come from this table. Example:

    MAKEMORE_DATA=../shared/data python benchmarks/ngram_search.py
"""

from __future__ import annotations

import argparse
import os

import torch

from makemore.data.items import make_splits, read_items
from makemore.data.builtin import locate_input
from makemore.models import build_model
from makemore.training.loop import evaluate

DISCOUNTS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
KS = (0.01, 0.03, 0.1, 0.3, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, nargs="+", default=list(range(2, 9)), help="n of the n-grams")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-i", "--input", default="names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = locate_input(args.input, os.environ)
    items = read_items(path)
    print(f"{'n':>2} " + " ".join(f"D={d:<5g}" for d in DISCOUNTS) + "  " + " ".join(f"k={k:<5g}" for k in KS))
    best: dict[int, tuple[float, float]] = {}  # n -> (val NLL, D)
    models = {}
    for n in args.orders:
        splits = make_splits(items, n - 1)  # default seed: the essay's split
        model = build_model("ngram", vocab_size=splits.vocab.size, block_size=n - 1)
        model.fit(*splits.train)
        kn = []
        for d in DISCOUNTS:
            model.config.discount = d
            kn.append(evaluate(model, splits.val))
        addk = []
        model.config.smoothing = "add-k"
        for k in KS:
            model.config.k = k
            addk.append(evaluate(model, splits.val))
        model.config.smoothing = "kneser-ney"
        best[n] = min(zip(kn, DISCOUNTS))
        models[n] = (model, splits)
        print(f"{n:>2} " + " ".join(f"{v:<7.4f}" for v in kn) + "  " + " ".join(f"{v:<7.4f}" for v in addk), flush=True)
    stop = next((n for n in args.orders[1:] if best[n][0] >= best[n - 1][0]), None)
    n_best = min(best, key=lambda n: best[n][0])
    print(f"\nbest single D per order: " + ", ".join(f"n={n}: {v:.4f} (D={d:g})" for n, (v, d) in best.items()))
    print(f"stops improving at n={stop} (no better than n={stop - 1})" if stop else "improves up to the largest n tried")
    model, splits = models[n_best]
    discounts = [best[n_best][1]] * n_best
    for _ in range(2):  # two sweeps of coordinate descent over context lengths 0..n-1
        for j in range(n_best):
            scores = []
            for d in DISCOUNTS:
                model.config.discount = discounts[:j] + [d] + discounts[j + 1:]
                scores.append((evaluate(model, splits.val), d))
            discounts[j] = min(scores)[1]
    model.config.discount = discounts
    print(f"n={n_best}, per-order D {discounts}: val {evaluate(model, splits.val):.4f}")
    for label, ds in (("single", [best[n_best][1]] * n_best), ("per-order", discounts)):
        model.config.discount = ds
        print(f"n={n_best}, {label} D: train {evaluate(model, splits.train):.4f}  test {evaluate(model, splits.test):.4f}")


if __name__ == "__main__":
    main()
