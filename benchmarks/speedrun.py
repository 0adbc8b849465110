"""The makemore speedrun: time to the essay's val NLL, ours against the essay's own recipe, side by side.

For each of the essay's five models, on names.txt and the essay's split:

- ours: the model's default ("fast") recipe from makemore.training.recipes, trained by makemore.training.loop.train
  with val evaluated every --eval-every steps. The clock is the trainer's own training time, which
  excludes evaluation; it stops at the first evaluation whose val NLL reaches the target. Repeated
  over --seeds; the table shows the median and the spread (min-max).
- baseline: the essay's recipe written out in plain PyTorch below — batch 32 drawn with
  torch.randint, plain SGD (p -= lr * grad), 200,000 steps, lr 0.1 then 0.01 for the last quarter —
  on the same model (same class, same initialisation, same parameter count), one seed, timed to
  its end; its final val NLL is reported beside its time. The bigram models have the essay's own
  baselines: a Python loop over character pairs (counts) and full-batch one-hot @ W (NN).

Targets: 2.45 (bigram-counts), 2.46 (bigram-nn), 2.10 (mlp), 2.10 and below mlp's (mlp-bn, the
foundation issue's bar at this size), 1.99 (wavenet), 1.95 (transformer, lstm: not the essay's; on
request, --models transformer,lstm). The sequence models' baseline is makemore.py's recipe in plain
PyTorch on the same model: batch 32 items drawn with torch.randint, padded to the longest item,
AdamW at lr 5e-4 (weight decay 0.01, betas 0.9/0.99), val every --eval-every steps off the clock,
stopped when it reaches the target, after --baseline-limit seconds of training, or when its val has not
improved for 10 evaluations (it overfits: makemore.py's recipe has no decay and no dropout schedule). The two bigram models cannot go below their
data-given val of ~2.4533 and ~2.4604, figures the essay rounds to 2.45 and 2.46: for them a
target counts as reached when the val NLL rounds to it; for the neural models val <= target.

It also estimates the floor (the arithmetic of the WaveNet's training to target at this machine's
measured matrix-multiply rate) and times data preparation on a generated 350,000-item list.
Prints the table and writes results/speedrun.json.

    MAKEMORE_DATA=../shared/data python benchmarks/speedrun.py              # ~10 minutes on 2 cores
    MAKEMORE_DATA=../shared/data python benchmarks/speedrun.py --models mlp --seeds 42 --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import string
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from makemore.data.items import Vocab, make_splits, read_items
from makemore.data.builtin import locate_input
from makemore.models import build_model
from makemore.training.recipes import get_recipe
from makemore.studies.reproduce import ESSAY_MODELS
from makemore.training.pipeline import default_block_size, splits_for
from makemore.training.loop import Recipe, TrainHooks, TrainingInterrupted, evaluate, train

TARGETS = {"bigram-counts": 2.45, "bigram-nn": 2.46, "mlp": 2.10, "mlp-bn": 2.10, "wavenet": 1.99,
           "transformer": 1.95, "lstm": 1.95}
SEQUENCE = {"transformer", "lstm"}  # whole items; makemore.py's recipe is their baseline
PLATEAU = 10  # a baseline whose val has not improved for this many evaluations has stopped learning: it stops
ROUNDED = {"bigram-counts", "bigram-nn"}  # reached when val rounds to the target (see the docstring)


def reached(model: str, val: float, target: float) -> bool:
    return round(val, 2) <= target if model in ROUNDED else val <= target


# ----------------------------------------------------------------------------- ours

def ours_to_target(name: str, splits, seed: int, target: float, eval_every: int, stop_there: bool = False,
                   steps: int | None = None) -> dict:
    """Train with the default recipe (its schedule over `steps` steps, when given); the training seconds (eval
    excluded) until val first reaches target.

    Training then goes on to the recipe's end, off the clock that matters, for the final val NLL that
    `makemore reproduce` reports (mlp-bn's bar asks that to be below mlp's).
    """
    recipe = get_recipe(name)
    recipe.steps = steps or recipe.steps  # a shorter schedule decays sooner: the target may come sooner
    torch.manual_seed(seed)
    model = build_model(name, **sizes(splits))
    if not getattr(model, "trainable", True):
        result = train(model, splits.train, recipe, seed=seed)
        val = evaluate(model, splits.val)
        return {"seconds": result.seconds, "step": 0, "val": val, "reached": reached(name, val, target),
                "final_val": val, "final_seconds": result.seconds}
    recipe.eval_interval = min(eval_every, recipe.steps)
    hit: dict = {}

    def on_progress(p):
        if p.val_loss is not None and not hit and reached(name, p.val_loss, target):
            hit.update(seconds=p.seconds, step=p.step, val=p.val_loss)

    try:
        result = train(model, splits.train, recipe, seed=seed, val_data=splits.val,
                       hooks=TrainHooks(on_progress=on_progress, should_stop=(lambda: bool(hit)) if stop_there else None))
    except TrainingInterrupted:  # --stop-at-target: the recipe's end (its final val) is left out
        return {**hit, "reached": True, "final_val": float("nan"), "final_seconds": float("nan"),
                "recipe_steps": recipe.steps}
    final = {"final_val": result.state.val_curve[-1][1], "final_seconds": result.seconds, "recipe_steps": recipe.steps}
    if hit:
        return {**hit, "reached": True, **final}
    last_step, last_val = result.state.val_curve[-1]
    return {"seconds": result.seconds, "step": last_step, "val": last_val, "reached": False, **final}


def sizes(splits) -> dict:
    """The model's data-given sizes: the vocabulary, and the position table of a sequence model that has one."""
    return {"vocab_size": splits.vocab.size} | ({} if splits.block_size is None else {"block_size": splits.block_size})


def warm_up() -> None:
    """A few throwaway steps first: the first training in a process pays one-time costs (thread pool,
    allocator) that would otherwise land on whichever run comes first."""
    model = build_model("mlp", vocab_size=27)
    X, Y = torch.randint(0, 27, (4096, 3)), torch.randint(0, 27, (4096,))
    train(model, (X, Y), Recipe(steps=200, batch_size=256, optimizer="adamw", lr=0.01), seed=0)


# ----------------------------------------------------------------------------- the essay's recipe, plain PyTorch

def baseline_counts(items: list[str], splits) -> dict:
    """The essay's counting loop: one Python iteration per character pair."""
    stoi = splits.vocab.stoi
    start = time.perf_counter()
    N = torch.zeros((splits.vocab.size, splits.vocab.size), dtype=torch.int32)
    for w in splits.train_items:
        chs = [0] + [stoi[c] for c in w] + [0]
        for a, b in zip(chs, chs[1:]):
            N[a, b] += 1
    P = (N + 1).float()
    P /= P.sum(1, keepdim=True)
    seconds = time.perf_counter() - start
    X, Y = (t.long() for t in splits.val)  # windows are stored as int8
    val = -P[X[:, -1], Y].log().mean().item()
    return {"seconds": seconds, "val": val, "steps": 0}


def baseline_bigram_nn(splits, seed: int, steps: int = 200, lr: float = 50.0) -> dict:
    """The essay's bigram NN: one-hot @ W, softmax, full-batch gradient descent."""
    V = splits.vocab.size
    X, Y = (t.long() for t in splits.train)  # windows are stored as int8
    g = torch.Generator().manual_seed(seed)
    W = torch.randn((V, V), generator=g, requires_grad=True)
    start = time.perf_counter()
    for _ in range(steps):
        xenc = F.one_hot(X[:, -1], num_classes=V).float()
        counts = (xenc @ W).exp()
        probs = counts / counts.sum(1, keepdim=True)
        loss = -probs[torch.arange(X.shape[0]), Y].log().mean()
        W.grad = None
        loss.backward()
        W.data += -lr * W.grad
    seconds = time.perf_counter() - start
    Xv, Yv = (t.long() for t in splits.val)
    with torch.no_grad():
        val = F.cross_entropy(W[Xv[:, -1]], Yv).item()
    return {"seconds": seconds, "val": val, "steps": steps}


def baseline_sgd(name: str, splits, seed: int, steps: int = 200_000) -> dict:
    """The essay's loop: batch 32 by torch.randint, forward, backward, p.data -= lr * p.grad."""
    torch.manual_seed(seed)
    model = build_model(name, vocab_size=splits.vocab.size)
    params = list(model.parameters())
    X, Y = splits.train
    model.train()
    start = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, X.shape[0], (32,))
        _, loss = model(X[ix], Y[ix])
        for p in params:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < 0.75 * steps else 0.01
        for p in params:
            p.data += -lr * p.grad
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "val": evaluate(model, splits.val), "steps": steps}


def baseline_adamw(name: str, splits, seed: int, target: float, eval_every: int, limit: float) -> dict:
    """makemore.py's loop on the same model: 32 random items per step, AdamW lr 5e-4; time to target (eval off)."""
    torch.manual_seed(seed)
    model = build_model(name, **sizes(splits))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8)
    X, Y = splits.train
    seconds, step, val, best, best_step = 0.0, 0, float("inf"), float("inf"), 0
    while seconds < limit and step - best_step < PLATEAU * eval_every:
        model.train()
        start = time.perf_counter()
        for _ in range(eval_every):
            ix = torch.randint(0, X.shape[0], (32,))
            _, loss = model(X[ix], Y[ix])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds += time.perf_counter() - start
        step += eval_every
        val = evaluate(model, splits.val)
        print(f"    baseline {name} step {step}: val {val:.4f} at {seconds:.0f} s", flush=True)
        if val <= target:
            return {"seconds": seconds, "val": val, "steps": step, "reached": True}
        if val < best:
            best, best_step = val, step
    return {"seconds": seconds, "val": val, "steps": step, "reached": False, "best_val": best, "best_step": best_step}


# ----------------------------------------------------------------------------- the floor

def wavenet_flops_per_example(model) -> int:
    """Multiply-adds of one forward pass, counted from the model's fusion levels: 2 FLOPs each."""
    cfg = model.config
    flops, T, C = 0, cfg.block_size, cfg.n_embd
    width = C
    while T > 1:  # each level fuses pairs: (T/2) rows of 2*width -> n_hidden
        T //= 2
        flops += 2 * T * (2 * width) * cfg.n_hidden
        width = cfg.n_hidden
    flops += 2 * width * cfg.vocab_size  # output layer
    return flops


def matmul_rate(n: int, repeats: int = 5) -> float:
    """FLOP/s of an n x n float32 matrix multiply on this machine (best of repeats)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


# ----------------------------------------------------------------------------- data preparation at scale

def data_prep(n_items: int = 350_000, block_size: int = 8, seed: int = 0) -> dict:
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    items = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 12))) for _ in range(n_items)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    splits = make_splits(items, block_size)
    seconds = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tensors = [t for part in (splits.train, splits.val, splits.test) for t in part]
    nbytes = sum(t.element_size() * t.nelement() for t in tensors)
    windows = sum(part[0].shape[0] for part in (splits.train, splits.val, splits.test))
    return {"items": n_items, "block_size": block_size, "windows": windows, "seconds": seconds,
            "index_dtype": str(splits.train[0].dtype), "tensor_bytes": nbytes,
            "bytes_per_window": nbytes / windows, "peak_rss_growth_mb": (rss_after - rss_before) / 1024}


# ----------------------------------------------------------------------------- main

def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(ESSAY_MODELS), help="comma-separated (default: the essay's five)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2], help="seeds of our runs (default: 42 1 2)")
    parser.add_argument("--baseline-seed", type=int, default=42)
    parser.add_argument("--no-baseline", action="store_true", help="skip the essay-recipe baseline (fast check)")
    parser.add_argument("--eval-every", type=int, default=250, help="val evaluation interval of our runs (default: 250)")
    parser.add_argument("--stop-at-target", action="store_true",
                        help="stop our runs when they reach the target (their final val is then not measured)")
    parser.add_argument("--baseline-limit", type=float, default=1800,
                        help="training seconds after which a sequence model's baseline stops unreached (default: 1800)")
    parser.add_argument("--steps", action="append", default=[], metavar="MODEL=N",
                        help="train MODEL's recipe over N steps instead of its own count (repeatable)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads (default: all cores)")
    parser.add_argument("-i", "--input", default="names")
    parser.add_argument("-o", "--out", default="results/speedrun.json")
    args = parser.parse_args()
    models = args.models.split(",")
    steps = {}
    for spec in args.steps:
        model, _, n = spec.partition("=")
        if model not in models or not n.isdigit() or int(n) < 1:
            parser.error(f"--steps {spec!r}: give MODEL=N, a model of --models and a whole number of steps")
        steps[model] = int(n)
    torch.set_num_threads(args.threads)
    items = read_items(locate_input(args.input, os.environ))
    prep = data_prep()  # first, while the process's peak memory is still that of the data alone
    warm_up()

    rows = []
    for name in models:
        splits = (splits_for(items, name, default_block_size(name, items)) if name in SEQUENCE
                  else make_splits(items, default_block_size(name)))
        target = TARGETS[name]
        runs = []
        for seed in args.seeds:
            runs.append(ours_to_target(name, splits, seed, target, args.eval_every, args.stop_at_target,
                                       steps.get(name)))
            r = runs[-1]
            print(f"  {name} seed {seed}: {'reached' if r['reached'] else 'NOT reached'} val {r['val']:.4f} "
                  f"at step {r['step']} in {r['seconds']:.1f} s", flush=True)
        base = None
        if not args.no_baseline:
            if name == "bigram-counts":
                base = baseline_counts(items, splits)
            elif name == "bigram-nn":
                base = baseline_bigram_nn(splits, args.baseline_seed)
            elif name in SEQUENCE:
                base = baseline_adamw(name, splits, args.baseline_seed, target, 4 * args.eval_every, args.baseline_limit)
            else:
                base = baseline_sgd(name, splits, args.baseline_seed)
            print(f"  {name} baseline: val {base['val']:.4f} after {base['seconds']:.1f} s", flush=True)
        times = [r["seconds"] for r in runs]
        row = {"model": name, "params": sum(p.numel() for p in build_model(name, **sizes(splits)).parameters()),
               "target": target, "seeds": args.seeds, "runs": runs, "all_reached": all(r["reached"] for r in runs),
               "median_seconds": statistics.median(times), "min_seconds": min(times), "max_seconds": max(times),
               "median_val": statistics.median(r["val"] for r in runs),
               "median_final_val": statistics.median(r["final_val"] for r in runs), "baseline": base}
        if base is not None:
            row["speedup"] = base["seconds"] / row["median_seconds"] if row["median_seconds"] > 0 else float("inf")
        rows.append(row)

    # mlp-bn's bar also asks its final val to be below mlp's (medians over the same seeds)
    by = {r["model"]: r for r in rows}
    if "mlp-bn" in by and "mlp" in by:
        by["mlp-bn"]["below_mlp"] = by["mlp-bn"]["median_final_val"] < by["mlp"]["median_final_val"]

    floor = None
    if "wavenet" in by and by["wavenet"]["all_reached"]:
        model = build_model("wavenet", vocab_size=Vocab.from_items(items).size)
        recipe = get_recipe("wavenet")
        steps = statistics.median(r["step"] for r in by["wavenet"]["runs"])
        flops = 3 * wavenet_flops_per_example(model) * recipe.batch_size * steps  # forward + backward (2x)
        big, small = matmul_rate(1024), matmul_rate(256)
        floor = {"training_flops": flops, "steps": steps, "batch_size": recipe.batch_size,
                 "matmul_flops_per_s_1024": big, "matmul_flops_per_s_256": small,
                 "floor_seconds": flops / big, "achieved_seconds": by["wavenet"]["median_seconds"]}
        floor["times_floor"] = floor["achieved_seconds"] / floor["floor_seconds"]

    print()
    print(f"{'model':<14}{'params':>8}{'target':>8}  {'ours (median s)':>15}{'spread':>12}{'val':>8}  "
          f"{'baseline s':>10}{'its val':>8}{'ratio':>8}{'final val':>10}")
    print("-" * 105)
    for r in rows:
        base = r["baseline"]
        status = "" if r["all_reached"] else "  (target NOT reached by every seed)"
        b = f"{base['seconds']:>10.1f}{base['val']:>8.4f}{r['speedup']:>7.1f}x" if base else f"{'-':>10}{'-':>8}{'-':>8}"
        if base and not base.get("reached", True):
            status += (f"  (baseline never at {r['target']}: best {base['best_val']:.4f} at step {base['best_step']:,}, "
                       f"stopped after {base['seconds']:.0f} s; ratio at least the one shown)")
        print(f"{r['model']:<14}{r['params']:>8,}{r['target']:>8.2f}  {r['median_seconds']:>15.1f}"
              f"{spread([x['seconds'] for x in r['runs']]):>12}{r['median_val']:>8.4f}  {b}"
              f"{r['median_final_val']:>10.4f}{status}")
    if "below_mlp" in by.get("mlp-bn", {}):
        print(f"mlp-bn's median final val {by['mlp-bn']['median_final_val']:.4f} below mlp's "
              f"{by['mlp']['median_final_val']:.4f}: {'yes' if by['mlp-bn']['below_mlp'] else 'NO'}")
    if floor:
        print(f"\nfloor: the WaveNet's training to target is {floor['training_flops'] / 1e12:.2f} TFLOP "
              f"({floor['steps']:.0f} steps x {floor['batch_size']}); this machine multiplies 1024x1024 matrices at "
              f"{floor['matmul_flops_per_s_1024'] / 1e9:.0f} GFLOP/s (256x256: {floor['matmul_flops_per_s_256'] / 1e9:.0f}), "
              f"so arithmetic alone needs {floor['floor_seconds']:.1f} s; achieved {floor['achieved_seconds']:.1f} s, "
              f"{floor['times_floor']:.0f}x the floor")
    print(f"data preparation: {prep['items']:,} items, block {prep['block_size']}: {prep['windows']:,} windows in "
          f"{prep['seconds']:.2f} s, {prep['index_dtype']} indices, {prep['bytes_per_window']:.1f} bytes per window "
          f"({prep['tensor_bytes'] / 1e6:.0f} MB), peak RSS growth {prep['peak_rss_growth_mb']:.0f} MB")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                           "torch": torch.__version__},
               "eval_every": args.eval_every, "models": rows, "floor": floor, "data_prep": prep}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
