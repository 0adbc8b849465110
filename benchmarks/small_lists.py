"""Small lists: every model's default recipe, the n-gram, `--model auto` and `--init-from` a base, by list size.

The data is built by benchmarks/small_lists_data.py (Faker's locale first names, Debian's word lists; its
SOURCES says exactly which), never committed. Bases: names.txt for the name targets (the very run
`--init-from names` uses, kept in the cache folder), and a multilingual word list (English, German, French,
Portuguese and Dutch words, none of them a target language's) for the word targets.

For each target list: test NLL of bigram-counts, the Kneser-Ney n-gram, each model's default recipe
sized to the list (`recipes.recipe_for`, what `makemore train --model M` runs), the fast recipe unsized
(names.txt's, as `train` ran it before recipes were sized; --unsized), `--model auto` (`studies.auto`),
and `--init-from` the base for each model in --init-models (its finetune recipe). Then the targets of the
small-lists issue, each with its margin.

    python benchmarks/small_lists.py                                   # the full grid: hours on 2 cores
    python benchmarks/small_lists.py --names 300 --words 100,300,1000,5000 --seeds 1 --languages spanish,italian
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import small_lists_data as data  # noqa: E402

import makemore as mm  # noqa: E402
from makemore.data.items import split_items  # noqa: E402
from makemore.studies.auto import AutoSpec, train_auto  # noqa: E402
from makemore.training.bases import base_folder, ensure_base, is_complete  # noqa: E402
from makemore.training.recipes import recipe_for  # noqa: E402

COUNTS = ("bigram-counts", "ngram")
NEURAL = ("bigram-nn", "mlp", "mlp-bn", "mlp-deep", "wavenet", "wavenet-conv", "rnn", "gru", "lstm", "transformer")
WORD_BASE_ITEMS = 100_000  # the multilingual base: a seeded sample of the 1.5M-word list (its windows fit in memory)


def train(items: list[str], model: str, folder: Path, *, preset: str = "fast", seed: int = 1,
          init_from: Path | None = None, sized: bool = True) -> tuple[float, float]:
    """(test NLL, seconds) of one run trained the way `makemore train` trains it."""
    train_items = split_items(items)[0]
    if sized:
        recipe = recipe_for(model, preset, train_items, {})
    else:  # the fast recipe as names.txt has it, ten val checks, best weights kept
        recipe = mm.get_recipe(model, preset)
        recipe.eval_interval = recipe.steps // 10 if recipe.steps >= 10 else 0
    start = time.perf_counter()
    meta = mm.run(items, mm.RunSpec(model=model, recipe=recipe, seed=seed,
                                    init_from=None if init_from is None else str(init_from)), folder)
    return meta["metrics"]["test_nll"], time.perf_counter() - start


def base_for(kind: str, model: str, cache: Path, names_path: Path, base_words: Path) -> Path:
    """The base run for a target kind: names.txt's (the very run `--init-from names` uses) or the word list's."""
    folder = base_folder(cache.parent, kind, model)  # cache.parent: makemore's own cache folder
    if is_complete(folder):
        return folder
    if kind == "names":
        items, name = mm.read_items(names_path), "names"
    else:
        items, name = data.shuffled(data.read_lines(base_words), 0)[:WORD_BASE_ITEMS], "base_words"
    print(f"# training the {kind} base for {model} ({len(items):,} items) into {folder}", file=sys.stderr, flush=True)
    return ensure_base(folder, model, items, dataset={"name": name, "items": len(items)})


def targets(args, cache: Path) -> list[tuple[str, str, int, int, list[str]]]:
    """(kind, name, N, seed, items) for every target list asked for."""
    out = []
    names = data.name_targets(cache, args.names_path) if args.names else {}
    for seed in args.seeds:
        for country, items in names.items():
            for n in args.names:
                out.append(("names", country, n, seed, data.shuffled(items, seed)[:n]))  # N asked (a list may hold fewer)
        words = data.word_targets(cache, args.words, seed=seed, languages=args.languages) if args.words else {}
        for language, by_size in words.items():
            for n, items in by_size.items():
                out.append(("words", language, n, seed, items))
    return out


def novel_failures(folder: Path, seed: int, list_file: Path) -> int:
    """0 if `sample RUN --novel -n 20` gives 20 items, 1 if it fails (the model only repeats its list)."""
    try:
        got = mm.Run.load(folder, "cpu", inputs=[str(list_file)]).generate(mm.GenerateRequest(n=20, seed=seed, novel=True))
        return int(len(got.items) < 20)
    except mm.MakemoreError as e:
        print(f"# {folder}: sample --novel -n 20 failed: {e}", file=sys.stderr)
        return 1


def run_target(kind, name, n, seed, items, args, cache: Path, base_words: Path, work: Path) -> dict[str, float]:
    row: dict[str, float] = {}
    failed = 0
    list_file = data.write_list(work / "list.txt", items)  # what --novel leaves out is read from the list's file
    slowest = (0.0, "")
    for model in COUNTS + tuple(args.models):
        row[model], seconds = train(items, model, work / model, seed=seed)
        slowest = max(slowest, (seconds, model))
        failed += novel_failures(work / model, seed, list_file)
        if model in args.unsized and model not in COUNTS:
            row[f"{model} unsized"], _ = train(items, model, work / f"{model}-unsized", seed=seed, sized=False)
    start = time.perf_counter()
    meta = train_auto(items, AutoSpec(budget=args.budget, seed=seed), work / "auto")
    row["auto"], row["_auto_seconds"] = meta["metrics"]["test_nll"], time.perf_counter() - start
    failed += novel_failures(work / "auto", seed, list_file)
    for model in args.init_models:
        base = base_for(kind, model, cache, args.names_path, base_words)
        row[f"{model} init-from"], _ = train(items, model, work / f"{model}-ft", preset="finetune", seed=seed,
                                             init_from=base)
        failed += novel_failures(work / f"{model}-ft", seed, list_file)
        if model not in row:
            row[model], _ = train(items, model, work / model, seed=seed)
    row["_novel_failed"] = failed  # runs whose `sample --novel -n 20` failed ("_": not an NLL column)
    row["_slowest"] = slowest  # (seconds, model) of the slowest default recipe
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", type=lambda s: [int(x) for x in s.split(",") if x], default=[300],
                   help="sizes of the name targets (each country's list cut to N; default 300; '' for none)")
    p.add_argument("--words", type=lambda s: [int(x) for x in s.split(",") if x], default=list(data.WORD_SIZES),
                   help="sizes of the word targets ('' for none)")
    p.add_argument("--languages", type=lambda s: s.split(","), default=list(data.TARGET_LANGUAGES))
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    p.add_argument("--models", type=lambda s: [m for m in s.split(",") if m], default=list(NEURAL))
    p.add_argument("--unsized", type=lambda s: [m for m in s.split(",") if m], default=["wavenet", "mlp", "lstm"],
                   help="models also trained by the unsized fast recipe, for comparison")
    p.add_argument("--init-models", type=lambda s: [m for m in s.split(",") if m], default=["wavenet", "lstm", "gru"])
    p.add_argument("--budget", type=float, default=60.0, help="--model auto's budget in seconds")
    p.add_argument("--names-path", type=Path, default=data.DEFAULT_NAMES)
    p.add_argument("--cache", type=Path, default=data.DEFAULT_CACHE)
    p.add_argument("--work", type=Path, default=Path("/tmp/makemore-small-lists"))
    args = p.parse_args()
    torch.set_num_threads(1)
    print(data.SOURCES, file=sys.stderr)
    base_words = data.word_base(args.cache) if args.words else None
    rows = []
    work = args.work / f"{os.getpid()}"  # two runs of the benchmark at once keep apart
    for kind, name, n, seed, items in targets(args, args.cache):
        row = run_target(kind, name, n, seed, items, args, args.cache, base_words, work)
        rows.append(((kind, name, n, seed, len(items)), row))
        cells = "  ".join(f"{k} {v:.3f}" for k, v in row.items() if not k.startswith("_"))
        print(f"{kind} {name} N={len(items)} seed {seed}: {cells}  (auto {row['_auto_seconds']:.1f} s, slowest default "
              f"{row['_slowest'][1]} {row['_slowest'][0]:.1f} s, --novel failed on {row['_novel_failed']} runs)",
              file=sys.stderr, flush=True)
    report(rows, args)


def report(rows, args) -> None:
    columns = [c for c in rows[0][1] if not c.startswith("_")]
    print("| target | N | seed | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for (kind, name, n, seed, size), row in rows:
        print(f"| {kind} {name} | {size:,} | {seed} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    print("\ntargets (margins: negative is better than the target)")
    worse = [(key, m, row[m] - row["bigram-counts"]) for key, row in rows for m in args.models if row[m] > row["bigram-counts"]]
    print(f"- every model's default at or below bigram-counts: {len(rows) * len(args.models) - len(worse)} of "
          f"{len(rows) * len(args.models)} runs; above it: "
          + (", ".join(f"{m} on {k[1]} N={k[2]} seed {k[3]} (+{d:.3f})" for k, m, d in worse) or "none"))
    margins = [row["auto"] - (row["ngram"] + 0.02) for _, row in rows]
    print(f"- the default command (auto) at or below the n-gram + 0.02: {sum(m <= 0 for m in margins)} of {len(rows)}; "
          f"worst margin {max(margins):+.3f}")
    failed = sum(row["_novel_failed"] for _, row in rows)
    print(f"- `sample --novel -n 20`: failed on {failed} runs; `auto` took {max(r['_auto_seconds'] for _, r in rows):.1f} s "
          f"at most")
    for n in sorted({key[2] for key, _ in rows}):
        seconds, model = max(row["_slowest"] for key, row in rows if key[2] == n)
        print(f"- the slowest default recipe at N={n:,}: {model}, {seconds:.1f} s (one thread)")
    gains = defaultdict(list)
    for (kind, name, n, seed, size), row in rows:
        for model in args.init_models:
            gains[(n, model)].append(row[model] - row[f"{model} init-from"])
    for (n, model), g in sorted(gains.items()):
        print(f"- {model} init-from at N={n:,}: mean gain over scratch {statistics.mean(g):+.3f} nats/char over {len(g)} runs "
              f"(min {min(g):+.3f}, max {max(g):+.3f})")


if __name__ == "__main__":
    main()
