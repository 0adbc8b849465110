"""The essay's studies: `reproduce`, `leaderboard`, `diagnose`, `batchnorm`, `backprop`, `claims`.

Each command calls one library function, which returns plain data, and prints its formatted
text; what it writes (results.json, plots) is written here, the command line being the part
that owns files and streams.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..data.atomic import atomic_write_text, json_text
from ..studies.backprop import compare_hand_and_autograd, format_gradient_check, format_hand_training, gradient_check
from ..studies.claims import format_claims, measure_claims
from ..data.items import describe_duplicates
from ..device import pick_device
from ..studies.batchnorm import batchnorm_layers, batchnorm_study, format_batchnorm_study
from ..studies.diagnostics import InitComparison, diagnose, diagnose_config, format_diagnose
from ..errors import MakemoreError
from ..studies.leaderboard import ENSEMBLE, default_entries, format_leaderboard, leaderboard
from ..models import get_spec, trainable_models
from ..studies.plots import diagnose_plots, leaderboard_chart, nll_bar_chart
from ..studies.reproduce import ESSAY_MODELS, format_table, read_results, reproduce
from ..training.recorded import TrainingDataMissing
from .common import (FMT, MISSING_HINT, add_common, add_dedupe_option, add_text_options, checked, load_dataset, load, log,
                     progress_callback, provenance, refuse_existing_run, set_threads, text_options)


# ----------------------------------------------------------------------------- reproduce, leaderboard

def cmd_reproduce(args) -> None:
    models = tuple(args.models.split(",")) if args.models else ESSAY_MODELS
    for name in models:
        get_spec(name)
    out_dir = Path(args.out_dir)
    for name in models:
        refuse_existing_run(out_dir / name, args.overwrite)
    device = pick_device(args.device)
    items, dataset = load_dataset(args.input, text_options(args), dedupe=args.dedupe)
    set_threads(args.threads)
    log(f"reproducing the essay's table on {dataset['name']} ({dataset['items']:,} items) on {device}")
    results = reproduce(items, dataset, out_dir, models=models, seed=args.seed, device=device,
                        extra_meta=provenance(args.argv), on_start=lambda name: log(f"training {name}..."),
                        on_progress=progress_callback, **jobs_options(args, device))
    results.update(provenance(args.argv))
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    print(describe_duplicates(dataset))
    try:
        nll_bar_chart(results, out_dir / "nll.png")
        log(f"wrote {out_dir / 'results.json'} and {out_dir / 'nll.png'}")
    except MakemoreError as e:
        log(f"wrote {out_dir / 'results.json'}; nll.png skipped ({e})")


def cmd_leaderboard(args) -> None:
    entries = default_entries(full=args.full)
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {e.label for e in entries})
        if unknown:
            full_only = [label for label in unknown if label in {e.label for e in default_entries(full=True)}]
            hint = f" ({', '.join(full_only)}: add --full)" if full_only and not args.full else ""
            raise MakemoreError(f"no leaderboard entry {', '.join(unknown)}{hint}; entries: "
                                f"{', '.join(e.label for e in entries)}")
        entries = [e for e in entries if e.label in wanted]
    out_dir = Path(args.out_dir)
    with_ensemble = not args.no_ensemble and len(entries) >= 2
    for label in [e.label for e in entries] + ([ENSEMBLE] if with_ensemble else []):
        refuse_existing_run(out_dir / label, args.overwrite)
    device = pick_device(args.device)
    items, dataset = load_dataset(args.input, text_options(args), dedupe=args.dedupe)
    set_threads(args.threads)
    log(f"leaderboard of {len(entries)} entries on {dataset['name']} ({dataset['items']:,} items) on {device}")
    board = leaderboard(items, dataset, out_dir, entries, seed=args.seed, device=device, ensemble=with_ensemble,
                        extra_meta=provenance(args.argv), on_start=starting, on_progress=progress_callback,
                        **jobs_options(args, device))
    board.update(provenance(args.argv))
    atomic_write_text(out_dir / "leaderboard.json", json.dumps(board, indent=2) + "\n")
    print(format_leaderboard(board))
    print(describe_duplicates(dataset))
    if args.no_plot:
        return
    try:
        leaderboard_chart(board, out_dir / "leaderboard.png")
        log(f"wrote {out_dir / 'leaderboard.json'} and {out_dir / 'leaderboard.png'}")
    except MakemoreError as e:
        log(f"wrote {out_dir / 'leaderboard.json'}; leaderboard.png skipped ({e})")


AUTO_JOBS = 2  # --jobs auto on a CPU: two runs at once (docs/parallel.md: what it gains on 2 cores)


def add_jobs_option(p) -> None:
    """--jobs, for the commands that train several runs (reproduce, leaderboard); read by jobs_options."""
    p.add_argument("--jobs", type=checked("jobs", words=("auto",)), default="auto",
                   help="train this many runs at once, each in its own process with --threads threads (default: auto, "
                        "2 on a CPU with 2 cores or more (fewer when --threads leaves no room), else 1; threads then "
                        "default to the cores divided among the jobs). Small models use a second core better as a "
                        "second run than as a second thread; a run's numbers depend on its threads, not on the jobs "
                        "beside it")


def jobs_options(args, device) -> dict:
    """--jobs and --threads as train_entries takes them. auto: AUTO_JOBS on a CPU (as many as the cores allow at
    --threads threads each), 1 on a GPU; several jobs get --threads threads each, by default the cores divided
    among them (this process's own threads are set already)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = args.jobs
    if jobs == "auto":
        jobs = max(1, min(AUTO_JOBS, cores // (args.threads or 1))) if torch.device(device).type == "cpu" else 1
    if jobs == 1:
        return {}
    threads = args.threads or max(1, cores // jobs)
    log(f"training {jobs} runs at a time, {threads} thread{'s' if threads > 1 else ''} each (--jobs, --threads)")
    return {"jobs": jobs, "threads": threads, "on_done": finished}


def finished(label: str, meta: dict) -> None:
    log(f"{label}: val {meta['metrics']['val_nll']:.4f}, {meta['train_seconds']:.0f} s")


def starting(label: str) -> None:
    log("mixing the runs into an ensemble (each scores val, then EM fits the weights)..." if label == ENSEMBLE
        else f"training {label}...")


# ----------------------------------------------------------------------------- diagnose, batchnorm

def cmd_diagnose(args) -> None:
    diagnose_config(args.model, args.init)  # a bad model or init fails before any data is read
    items, _ = load_dataset(args.input)
    set_threads(args.threads)
    compare = InitComparison(args.compare_recipe, args.compare_steps) if args.compare else None
    report = diagnose(items, model=args.model, init=args.init, batch_size=args.batch_size, steps=args.steps,
                      seed=args.seed, compare=compare, on_start=lambda s: log(f"training {s}..."))
    print(format_diagnose(report))
    if args.out_dir:
        try:
            diagnose_plots(report, Path(args.out_dir))
            log(f"wrote plots to {args.out_dir}")
        except MakemoreError as e:
            log(f"plots skipped ({e})")


def cmd_batchnorm(args) -> None:
    if not args.index < args.batch_size:
        raise MakemoreError(f"--index must be between 0 and --batch-size - 1 ({args.batch_size - 1}), got {args.index}")
    run = load(args)
    try:
        splits = run.splits()
    except TrainingDataMissing as e:
        raise MakemoreError(f"{e}{MISSING_HINT}") from None
    model = run.model
    if not batchnorm_layers(model):
        raise MakemoreError(f"{args.run_dir} is a {run.meta['model']} run, which has no BatchNorm; use an mlp-bn or wavenet run")
    rows = splits.val[0].shape[0]
    if not args.index < rows:
        raise MakemoreError(f"--index must be between 0 and {rows - 1} (the batch has {rows} examples), got {args.index}")
    print(format_batchnorm_study(batchnorm_study(model, splits, batch_size=args.batch_size, index=args.index)))


# ----------------------------------------------------------------------------- backprop, claims

def cmd_backprop(args) -> None:
    if not (args.check or args.train):
        raise MakemoreError("say what to do: --check (compare every gradient with autograd), --train, or both")
    set_threads(args.threads)
    items, _ = load_dataset(args.input)
    ok = True
    if args.check:
        report = gradient_check(items, batch_size=args.batch_size, seed=args.seed, split_seed=args.split_seed)
        print(format_gradient_check(report))
        ok = report.ok
    if args.train:
        training = compare_hand_and_autograd(items, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                             seed=args.seed, split_seed=args.split_seed, on_start=log)
        print(format_hand_training(training))
        ok = ok and training.ok
    if not ok:
        raise MakemoreError("hand gradients and autograd disagree (see the table above)")


def cmd_claims(args) -> None:
    items, dataset = load_dataset(args.input)
    set_threads(args.threads)
    results = None if args.quick else load_or_reproduce(args, items, dataset)
    claims = measure_claims(items, seed=args.seed, results=results, on_start=log)
    print(format_claims(claims))
    if args.out_dir:
        payload = {"dataset": dataset, "quick": args.quick, "claims": [c.as_dict() for c in claims]}
        atomic_write_text(Path(args.out_dir) / "claims.json", json_text(payload))


def load_or_reproduce(args, items, dataset) -> dict:
    """results.json of a reproduce run: the one named by --from, else train the five models into -o."""
    if args.results:
        return read_results(args.results)
    out_dir = Path(args.out_dir or "runs/claims")
    log(f"no --from given: training the five models into {out_dir} (a few minutes)...")
    return reproduce(items, dataset, out_dir, seed=args.seed, on_start=lambda name: log(f"  training {name}..."),
                     on_progress=progress_callback, extra_meta=provenance(args.argv))


# ----------------------------------------------------------------------------- parsers

def add_parsers(sub) -> None:
    """Add the six studies to the subparsers of the `makemore` parser."""
    for add in (add_reproduce, add_leaderboard, add_diagnose, add_batchnorm, add_backprop, add_claims):
        add(sub)


def add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="train the essay's five models and print its table", formatter_class=FMT,
                       description="Train bigram-counts, bigram-nn, mlp, mlp-bn and wavenet with their default recipes, "
                                   "print the table (ours beside the essay's val NLL), and write DIR/results.json, "
                                   "DIR/nll.png and one run directory per model.",
                       epilog="example:\n  makemore reproduce -o runs/essay\n  makemore reproduce -i words.txt -o runs/words --models bigram-counts,mlp")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("-o", "--out-dir", required=True, help="folder for results.json, nll.png and the runs")
    p.add_argument("--seed", type=checked("seed"), default=42, help="seed for every model's weights and batches (default: 42)")
    p.add_argument("--models", help="comma-separated subset of models (default: the essay's five)")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in DIR")
    add_jobs_option(p)
    add_text_options(p)
    add_dedupe_option(p)
    add_common(p)
    p.set_defaults(func=cmd_reproduce)


def add_leaderboard(sub) -> None:
    p = sub.add_parser("leaderboard", help="train every model with its best known recipe and rank them by val NLL",
                       formatter_class=FMT,
                       description="Train every registered model (and the variants listed in leaderboard.py) with its best "
                                   "known recipe preset on one dataset and the essay's split, print one table sorted by val "
                                   "NLL (the essay's five marked *), and write DIR/leaderboard.json (results.json's shape, one "
                                   "entry per model and recipe), DIR/leaderboard.png and one run directory per entry. "
                                   "Then every entry is mixed into DIR/ensemble (makemore ensemble: weights fitted on "
                                   "val), which gets its own row. About 10 minutes on 2 CPU cores (two runs at a time: --jobs).",
                       epilog="examples:\n  makemore leaderboard -o runs/board\n"
                              "  makemore leaderboard -o runs/board --jobs 1   # one run at a time, on every core\n"
                              "  makemore leaderboard -o runs/board-full --full\n"
                              "  makemore leaderboard -o runs/board --only ngram,gru,transformer")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("-o", "--out-dir", required=True, help="folder for leaderboard.json, leaderboard.png and the runs")
    p.add_argument("--seed", type=checked("seed"), default=42, help="seed for every model's weights and batches (default: 42)")
    p.add_argument("--only", help="comma-separated entries to train (default: all)")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in DIR")
    p.add_argument("--no-plot", action="store_true", help="do not draw leaderboard.png")
    p.add_argument("--full", action="store_true",
                   help="also train the --full entries (leaderboard.FULL_ENTRIES: the best recipes drawn again with "
                        "other seeds, a wider transformer, a two-layer LSTM (lstm-large, the best single model) "
                        "and the n-gram at orders 5 and 7), more members for the ensemble row; about 45 minutes "
                        "on 2 CPU cores")
    p.add_argument("--no-ensemble", action="store_true",
                   help="leave out the ensemble row (default: mix the trained entries into DIR/ensemble)")
    add_jobs_option(p)
    add_text_options(p)
    add_dedupe_option(p)
    add_common(p)
    p.set_defaults(func=cmd_leaderboard)


DIAGNOSE_DESCRIPTION = (
    "Build a model with a chosen initialisation and report, at step 0 and after a short SGD run: "
    "the loss beside the ideal -log(1/V), per tanh layer the pre-activation and activation "
    "statistics, tanh saturation (|h| > 0.99) overall and per neuron, dead neurons, gradient "
    "statistics, and each weight matrix's update:data ratio. With -o, writes activation and "
    "gradient histograms, the update:data chart and the saturation map as PNG. With --compare, "
    "trains the MLP under every init (and the deep variant with and without BatchNorm) with one "
    "recipe and prints their val NLL.")


def add_diagnose(sub) -> None:
    p = sub.add_parser("diagnose", help="the essay's init bugs, measured layer by layer", formatter_class=FMT,
                       description=DIAGNOSE_DESCRIPTION,
                       epilog="examples:\n  makemore diagnose --model mlp --init naive -o runs/diag-naive\n"
                              "  makemore diagnose --model mlp --init kaiming --compare")
    p.add_argument("--model", default="mlp", choices=trainable_models(), metavar="NAME", help="model to look inside (default: mlp)")
    p.add_argument("--init", choices=["naive", "fix-output", "fix-tanh", "kaiming"], default=None,
                   help="mlp: naive, fix-output, fix-tanh or kaiming (default naive); mlp-deep: naive or kaiming")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("-o", "--out-dir", help="folder for the PNG plots")
    p.add_argument("--batch-size", type=checked("batch_size", "diagnose.batch_size"), default=32,
                   help="examples in the measured batch (default: 32)")
    p.add_argument("--steps", type=checked("steps"), default=1000, help="steps of the short SGD run (default: 1000)")
    p.add_argument("--seed", type=checked("seed"), default=42, help="seed for weights and batches (default: 42)")
    p.add_argument("--compare", action="store_true", help="also train every init with one recipe and compare val NLL")
    p.add_argument("--compare-recipe", default="essay", choices=["essay", "fast"], help="recipe of the comparison (default: essay)")
    p.add_argument("--compare-steps", type=checked("compare_steps", "steps"),
                   help="steps of the comparison runs (default: the recipe's)")
    add_common(p)
    p.set_defaults(func=cmd_diagnose)


def add_batchnorm(sub) -> None:
    p = sub.add_parser("batchnorm", help="BatchNorm's train and eval modes, and calibration", formatter_class=FMT,
                       description="For a run with BatchNorm (mlp-bn, wavenet): forward one val example alone in train mode "
                                   "(batch statistics of one example: variance 0, an error or garbage) and in eval mode "
                                   "(running statistics: the same logits as inside its batch); then recompute the "
                                   "statistics over the whole training set and compare val NLL with the running averages.",
                       epilog="example:\n  makemore train -i names --model mlp-bn -o runs/mlp-bn\n  makemore batchnorm runs/mlp-bn")
    p.add_argument("run_dir", help="run directory of a model with BatchNorm")
    p.add_argument("-i", "--input", help="the training file, if it moved since training")
    p.add_argument("--batch-size", type=checked("batch_size", "batchnorm.batch_size"), default=32,
                   help="size of the val batch (default: 32)")
    p.add_argument("--index", type=checked("index"), default=0, help="which example of the batch to forward alone (default: 0)")
    add_common(p)
    p.set_defaults(func=cmd_batchnorm)


BACKPROP_DESCRIPTION = (
    "Backpropagation written by hand (makemore/studies/backprop.py) for the mlp-bn model, every "
    "intermediate of the forward pass with its own backward rule, plus the essay's fused "
    "cross-entropy and BatchNorm backward.\n\n"
    "--check compares every hand gradient with autograd's on one training batch, in float64 "
    "(must agree to 1e-10) and float32 (to 1e-5): exact, approximately, max abs difference.\n"
    "--train trains mlp-bn with the hand gradients only and again with autograd, same seed, "
    "same batches, plain SGD, and compares their val NLL (must agree within 0.01).\n"
    "Exits non-zero if they disagree.")


def add_backprop(sub) -> None:
    p = sub.add_parser("backprop", help="the MLP + BatchNorm's gradients by hand, checked against autograd",
                       formatter_class=FMT, description=BACKPROP_DESCRIPTION,
                       epilog="example:\n  makemore backprop --check\n  makemore backprop --train --steps 20000")
    p.add_argument("--check", action="store_true", help="compare every hand gradient with autograd")
    p.add_argument("--train", action="store_true", help="train with hand gradients and with autograd, compare val NLL")
    p.add_argument("-i", "--input", default="names", help="training file or 'names' (default: names)")
    p.add_argument("--steps", type=checked("steps"), default=20_000, help="SGD steps for --train (default: 20000)")
    p.add_argument("--batch-size", type=checked("batch_size", "backprop.batch_size"), default=32,
                   help="examples per batch, at least 2 (default: 32)")
    p.add_argument("--lr", type=checked("lr"), default=0.1, help="learning rate, x0.1 at 3/4 of the steps (default: 0.1)")
    p.add_argument("--seed", type=checked("seed"), default=42, help="seed of the initial weights and the batches (default: 42)")
    p.add_argument("--split-seed", type=checked("split_seed"), default=42, help="seed of the 80/10/10 split (default: 42)")
    add_common(p)
    p.set_defaults(func=cmd_backprop)


def add_claims(sub) -> None:
    p = sub.add_parser("claims", help="every measurable claim of the essay, measured", formatter_class=FMT,
                       description="Measure each claim of the essay (its table, 228,146 examples, the bigram NLLs, the "
                                   "bigram NN = counts equivalence, exp(-NLL) vs uniform, initial losses, tanh saturation, "
                                   "Kaiming, the init fix, hand-written gradients = autograd) and print: claim, the essay's "
                                   "figure, makemore's figure, whether it holds. --quick runs only the claims that need no "
                                   "long training (seconds).",
                       epilog="examples:\n  makemore claims --quick\n  makemore reproduce -o runs/essay && makemore claims --from runs/essay")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("--quick", action="store_true", help="only the claims that need no long training")
    p.add_argument("--from", dest="results", help="a reproduce folder (or its results.json) to take the table from")
    p.add_argument("-o", "--out-dir", help="write claims.json here (and, without --from, the reproduce runs)")
    p.add_argument("--seed", type=checked("seed"), default=42, help="seed (default: 42)")
    add_common(p)
    p.set_defaults(func=cmd_claims)
