"""How makemore's costs grow with the list: about 32k, 350k and 3.5M items, side by side in one run.

The lists (built here, never committed; kept in --data-dir between runs):
- names: names.txt, the essay's 32,033 names (found as `-i names` finds it: $MAKEMORE_DATA, the cache, a download).
- words: Debian's wamerican-huge word list (/usr/share/dict/american-english-huge, about 350k words;
  installed with apt-get when missing and this process may, else the script says how to get it).
- words10: ten times as many items: `words`, then nine copies of it, each with its letters a..z
  swapped by its own seeded permutation (the same lengths; few shared contexts: the hard case for
  evaluation, which runs each distinct context once).

For each list, in a fresh process (so that peak memory is that list's):
- prep s: reading the file, the vocabulary, the seeded split and the windows (block 8) and whole items
  of every split, as `makemore train` makes them (the faster of 2 runs);
- peak RSS: the process's peak resident memory at the end of everything below;
- ms/step: training milliseconds per step of mlp, wavenet, gru and transformer at their default recipe's
  batch size and default size (the transformer's position table from the data), after warm-up steps;
- eval s/M chars: seconds to evaluate the val split (`makemore.training.evaluation.evaluate`, grouping of its
  distinct contexts included), per million predicted characters (characters and end tokens), per
  model; the fastest of 3 runs;
- sample items/s: `generate` of --sample-n items by each model after its short training, at most the
  list's longest item long (a model trained a few steps has not learnt to end items yet).
Then, per list, `makemore train --model wavenet` at the default recipe is run as a user runs it
(another process), with its wall seconds and peak RSS (`--train-steps` steps on words10 unless --full-recipe:
4,000 steps and their evaluations of a 3.5M list take a while on 2 cores).

It prints the table and the growth ratio of each size over the one before (items, prep, eval), and
checks that preparation and evaluation grow at most linearly: 10x the items at most ~11x the time.

    MAKEMORE_DATA=../shared/data python benchmarks/scale.py
    python benchmarks/scale.py --sizes names,words --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from makemore.data.items import read_items
from makemore.data.builtin import locate_input
from makemore.training.evaluation import evaluate
from makemore.models import build_model, get_spec
from makemore.training.recipes import get_recipe
from makemore.training.pipeline import default_block_size, splits_for
from makemore.generation.request import GenerateRequest
from makemore.generation.sampler import generate
from makemore.training.loop import Recipe, TrainHooks, train

WORDS = Path("/usr/share/dict/american-english-huge")
MODELS = ["mlp", "wavenet", "gru", "transformer"]
SIZES = ["names", "words", "words10"]


# ----------------------------------------------------------------------------- the lists

def build_lists(data_dir: Path) -> dict[str, Path]:
    """The three lists as files; words and words10 are made once and kept in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {"names": locate_input("names", os.environ)}
    if not WORDS.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wamerican-huge"], check=False, capture_output=True)
    if not WORDS.exists():
        sys.exit(f"{WORDS} is missing: install Debian's wamerican-huge (apt-get install wamerican-huge)")
    words = read_items(WORDS)
    paths["words"] = data_dir / "words.txt"
    if not paths["words"].exists():
        paths["words"].write_text("\n".join(words) + "\n", encoding="utf-8")
    paths["words10"] = data_dir / "words10.txt"
    if not paths["words10"].exists():
        with open(paths["words10"], "w", encoding="utf-8") as f:
            for k in range(10):  # the list itself, then nine times with its letters swapped by a seeded permutation
                f.write("\n".join(word.translate(dialect(k)) for word in words) + "\n")
    return paths


def dialect(k: int) -> dict[int, int]:
    """A seeded permutation of a..z (and A..Z alike); k = 0 is the identity. Words keep their lengths and
    shapes, so the ten copies have the words' length distribution, but share few contexts with each other."""
    lower = list("abcdefghijklmnopqrstuvwxyz")
    swapped = lower[:] if k == 0 else random.Random(k).sample(lower, len(lower))
    table = {ord(a): ord(b) for a, b in zip(lower, swapped)}
    table.update({ord(a.upper()): ord(b.upper()) for a, b in zip(lower, swapped)})
    return table


# ----------------------------------------------------------------------------- one list, in its own process

PREP_REPEATS = 2  # preparation (reading, split, windows, whole items) timed twice, the faster kept
EVAL_REPEATS = 3  # each evaluation timed three times, the fastest kept: a single reading of a short one is mostly noise


def time_steps(model, splits, recipe: Recipe, steps: int, warmup: int) -> float:
    """Milliseconds per training step, from the steps after `warmup` (the first ones allocate)."""
    seen: list[float] = []
    r = Recipe(**{**vars(recipe), "steps": warmup + steps, "eval_interval": 0, "warmup_steps": 0})
    hooks = TrainHooks(on_progress=lambda _progress: seen.append(time.perf_counter()), report_every=1)
    start = time.perf_counter()
    train(model, splits.train, r, seed=0, hooks=hooks)
    marks = [start, *seen]
    return 1000 * (marks[-1] - marks[warmup]) / steps


def prepare(path: Path) -> tuple[list[str], dict]:
    items = read_items(path)
    return items, {layout: splits_for(items, model, default_block_size(model, items)) for model, layout in
                   (("wavenet", "windows"), ("gru", "sequence"))}


def best_of(repeats: int, work) -> tuple[float, object]:
    """The least wall seconds of `repeats` runs of work() (a shared machine only ever adds time), and its result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None  # the last run's result let go first: peak memory stays that of one run
        t = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - t)
    return best, result


def measure_list(path: Path, steps: int, warmup: int, sample_n: int) -> dict:
    prep, (items, splits) = best_of(PREP_REPEATS, lambda: prepare(path))
    row = {"items": len(items), "chars": sum(len(it) for it in items), "longest": max(map(len, items)),
           "vocab": splits["windows"].vocab.size, "prep_s": prep, "models": {}}
    for name in MODELS:
        block_size = default_block_size(name, items)
        data = splits_for(items, name, block_size, vocab=splits["windows"].vocab) if name == "mlp" else \
            splits[get_spec(name).layout]
        torch.manual_seed(0)
        sizes = {"vocab_size": data.vocab.size} | ({} if block_size is None else {"block_size": block_size})
        model = build_model(name, **sizes)
        ms = time_steps(model, data, get_recipe(name, "fast"), steps, warmup)
        # fresh copies each time: evaluation groups the split's distinct contexts once per tensor and keeps them,
        # and a user's `makemore eval` pays for that grouping too
        eval_s, _ = best_of(EVAL_REPEATS, lambda: evaluate(model, (data.val[0].clone(), data.val[1].clone())))
        val_chars = int((data.val[1] >= 0).sum())  # predicted characters: every character and end token
        t = time.perf_counter()
        max_len = row["longest"]  # a few steps do not teach a model to end items: bound them by the list's longest
        generate(model, data.vocab, GenerateRequest(n=sample_n, max_len=max_len, seed=0))
        rate = sample_n / (time.perf_counter() - t)
        row["models"][name] = {"ms_per_step": ms, "eval_s_per_m": eval_s / val_chars * 1e6, "eval_s": eval_s,
                               "items_per_s": rate}
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def cli_train(path: Path, steps: int | None, threads: int | None) -> dict:
    """`makemore train --model wavenet` as a user runs it: wall seconds and the child's peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "makemore", "train", "-i", str(path), "--model", "wavenet", "-o", tmp + "/r",
               "--overwrite", "--no-plot", *(["--steps", str(steps)] if steps else []),
               *(["--threads", str(threads)] if threads else [])]
        err = Path(tmp, "stderr")
        t = time.perf_counter()
        with open(err, "w") as f:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS alone
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {err.read_text().strip()[-500:]}")
        meta = json.loads(Path(tmp, "r", "run.json").read_text())
    return {"wall_s": wall, "steps": meta["step"], "train_s": meta["train_seconds"], "eval_s": meta["eval_seconds"],
            "peak_rss_mb": usage.ru_maxrss / 1024}


# ----------------------------------------------------------------------------- the table

def ratio(a: float, b: float) -> str:
    return f"{b / a:.1f}x" if a > 0 else "-"


def report(rows: dict[str, dict]) -> None:
    names = list(rows)
    print(f"{'list':<7} {'items':>10} {'chars':>11} {'longest':>7} {'vocab':>5} {'prep s':>7} {'peak RSS':>9}  "
          f"{'wavenet CLI: steps, wall s, peak RSS':<36}")
    for n in names:
        r, c = rows[n], rows[n]["cli"]
        print(f"{n:<7} {r['items']:>10,} {r['chars']:>11,} {r['longest']:>7} {r['vocab']:>5} {r['prep_s']:>7.2f} "
              f"{r['peak_rss_mb']:>6,.0f} MB  {c['steps']:>5,} steps {c['wall_s']:>6.1f} s {c['peak_rss_mb']:>6,.0f} MB")
    print()
    print(f"{'list':<7} {'model':<12} {'ms/step':>8} {'eval s':>7} {'eval s/M chars':>15} {'sample items/s':>15}")
    for n in names:
        for m, r in rows[n]["models"].items():
            print(f"{n:<7} {m:<12} {r['ms_per_step']:>8.1f} {r['eval_s']:>7.2f} {r['eval_s_per_m']:>15.2f} "
                  f"{r['items_per_s']:>15,.0f}")
    print()
    print("growth from one list to the next (linear: the time ratio at most ~1.1 x the items ratio)")
    failed = []
    for a, b in zip(names, names[1:]):
        ra, rb = rows[a], rows[b]
        items = rb["items"] / ra["items"]
        line = [f"{a} -> {b}: items {items:.1f}x, chars {ratio(ra['chars'], rb['chars'])}, prep {ratio(ra['prep_s'], rb['prep_s'])}"]
        if rb["prep_s"] / ra["prep_s"] > 1.1 * rb["chars"] / ra["chars"]:
            failed.append(f"prep {a} -> {b}")
        for m in MODELS:
            e = rb["models"][m]["eval_s"] / ra["models"][m]["eval_s"]
            line.append(f"eval {m} {e:.1f}x")
            if e > 1.1 * rb["chars"] / ra["chars"]:
                failed.append(f"eval {m} {a} -> {b}")
        print("  " + ", ".join(line))
    print("linear growth: " + ("yes" if not failed else "NO (" + "; ".join(failed) + ")"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=",".join(SIZES), help=f"lists to measure, of {', '.join(SIZES)}")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "makemore-scale"),
                   help="where the built lists are kept (default: a folder in the system's temp dir)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps per model (default: 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before them (default: 5)")
    p.add_argument("--sample-n", type=int, default=1000, help="items sampled per model (default: 1000)")
    p.add_argument("--train-steps", type=int, default=300,
                   help="steps of the CLI wavenet run on words10 (names, words: the full recipe; default: 300)")
    p.add_argument("--full-recipe", action="store_true", help="the CLI wavenet run at its full recipe on every list")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one list, print its JSON
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure_list(Path(args.one), args.steps, args.warmup, args.sample_n)))
        return
    paths = build_lists(Path(args.data_dir))
    rows = {}
    for name in args.sizes.split(","):
        cmd = [sys.executable, __file__, "--one", str(paths[name]), "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--sample-n", str(args.sample_n), *(["--threads", str(args.threads)] if args.threads else [])]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"measuring {name} failed: {out.stderr.strip()[-800:]}")
        rows[name] = json.loads(out.stdout)
        steps = args.train_steps if name == "words10" and not args.full_recipe else None
        rows[name]["cli"] = cli_train(paths[name], steps, args.threads)
        print(f"measured {name}", file=sys.stderr, flush=True)
    report(rows)


if __name__ == "__main__":
    main()
