"""The `makemore` command. It owns all input and output: arguments, environment, files, stdout/stderr.

stdout carries only results (items, tables) so output pipes cleanly; progress
and messages go to stderr, and the progress bar only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .errors import MakemoreError

DESCRIPTION = "Train character-level language models on a one-item-per-line file and make more things like it."


# ----------------------------------------------------------------------------- helpers

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "makemore"


def resolve_input_file(spec: str) -> Path:
    from .datasets import resolve_input

    data_dirs = [Path(p) for p in os.environ.get("MAKEMORE_DATA", "").split(os.pathsep) if p]
    return resolve_input(spec, data_dirs=data_dirs, cache_dir=cache_dir())


def text_options(args):
    from .data import MAX_ITEM_LEN, TextOptions

    return TextOptions(lowercase=getattr(args, "lowercase", False), nfc=getattr(args, "nfc", False),
                       max_item_len=getattr(args, "max_item_len", None) or MAX_ITEM_LEN,
                       skip_long=getattr(args, "skip_long", False))


def load_dataset(spec: str, options=None) -> tuple[list[str], dict[str, Any]]:
    """Items of a file or built-in dataset, and what run.json records about it."""
    from dataclasses import asdict

    from .data import TextOptions, Vocab, check_splittable, read_items
    from .datasets import sha256_of

    options = options or TextOptions()
    path = resolve_input_file(spec)
    items = read_items(path, options, on_note=lambda note: log(f"note: {note}"))
    check_splittable(items)
    info = {
        "name": spec if spec == "names" else path.stem,
        "path": str(path.resolve()),
        "sha256": sha256_of(path),
        "items": len(items),
        "vocab_size": Vocab.from_items(items).size,
        "text_options": asdict(options),
    }
    return items, info


def provenance(argv: list[str]) -> dict[str, Any]:
    """How this run was made: the command line and the library versions."""
    import safetensors
    import torch

    return {
        "command": ["makemore", *argv],
        "git_commit": git_commit(),
        "versions": {
            "makemore": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "safetensors": safetensors.__version__,
            "platform": platform.platform(),
        },
    }


def git_commit() -> str | None:
    """The commit of makemore's own source when it runs from a git checkout ("+dirty" if changed), else None."""
    source = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def progress_callback(label: str):
    """A tqdm bar with the current loss, on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(p) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=p.steps, desc=label, file=sys.stderr, leave=False, unit="step")
        bar.update(p.step - bar.n)
        postfix = {"loss": f"{p.loss:.4f}", "lr": f"{p.lr:.3g}"}
        if p.val_loss is not None:
            postfix["val"] = f"{p.val_loss:.4f}"
        bar.set_postfix(postfix)
        if p.step >= p.steps:
            bar.close()

    return update


def refuse_existing_run(out_dir: Path, overwrite: bool) -> None:
    from .checkpoint import META

    if (out_dir / META).exists() and not overwrite:
        raise MakemoreError(f"{out_dir} already holds a run; choose another -o or pass --overwrite to replace it")


def set_threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


# ----------------------------------------------------------------------------- commands

RECIPE_OPTIONS = ("steps", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "soft_targets", "eval_interval",
                  "patience")
MODEL_OPTIONS = ("block_size", "n_embd", "n_hidden", "n_layer", "n_head", "dropout", "smoothing")
RUN_FILES = ("run.json", "model.safetensors", "train_state.safetensors", "best.safetensors", "metrics.csv", "loss.png")


def cmd_train(args) -> None:
    from .atomic import remove_stale_temporaries
    from .runlock import run_lock

    if args.resume:
        return resume_training(args)
    from .device import pick_device
    from .models import build_model
    from .recipes import get_recipe
    from .runs import RunSpec, run

    if not args.input or not args.out_dir:
        raise MakemoreError("train needs -i FILE and -o RUN_DIR (or --resume RUN_DIR to continue a stopped run)")
    recipe = get_recipe(args.model, args.recipe)
    overrides = {k: getattr(args, k) for k in RECIPE_OPTIONS if getattr(args, k) is not None}
    for key, value in overrides.items():
        setattr(recipe, key, value)
    if args.eval_interval is None and recipe.eval_interval == 0 and recipe.steps >= 10:
        recipe.eval_interval = recipe.steps // 10  # ten val checks: a best checkpoint and resume points
    recipe.check()
    config = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    build_model(args.model, **{**config, "vocab_size": 2})  # a bad option fails before any data is read
    out_dir = Path(args.out_dir)
    refuse_existing_run(out_dir, args.overwrite)
    device = pick_device(args.device)
    items, dataset = load_dataset(args.input, text_options(args))
    set_threads(args.threads)
    run_spec = RunSpec(model=args.model, recipe=recipe, recipe_name=args.recipe + ("+overrides" if overrides else ""),
                       seed=args.seed, split_seed=args.split_seed, config=config)
    log(f"training {args.model} on {dataset['name']} ({dataset['items']:,} items, vocabulary {dataset['vocab_size']}) on {device}")
    extra = {"dataset": dataset, **provenance(args.argv), **config_file_record(args.config)}
    with run_lock(out_dir), graceful_stop() as should_stop, \
            progress_reporter(args.model, out_dir, args.tensorboard) as on_progress:
        refuse_existing_run(out_dir, args.overwrite)  # again, now that no one else can write here
        remove_stale_temporaries(out_dir, RUN_FILES)  # what a killed writer left behind
        meta = run_or_explain(lambda: run(items, run_spec, out_dir, device=device, extra_meta=extra,
                                          on_progress=on_progress, should_stop=should_stop), out_dir)
    finish_training(args, out_dir, meta)


def resume_training(args) -> None:
    from .atomic import remove_stale_temporaries
    from .checkpoint import read_meta
    from .device import pick_device
    from .runlock import run_lock
    from .runs import resume

    given = [f"--{k.replace('_', '-')}" for k in (*RECIPE_OPTIONS, *MODEL_OPTIONS) if getattr(args, k) is not None]
    if given or args.out_dir:
        raise MakemoreError(f"--resume continues a run with its own settings; drop {', '.join(given or ['-o'])}")
    out_dir = Path(args.resume)
    meta = read_meta(out_dir)
    device = pick_device(args.device)
    items, path = load_recorded_items(meta, args.input, out_dir)
    set_threads(args.threads)
    log(f"resuming {meta['model']} in {out_dir} from step {meta.get('step', 0):,} on {device}")
    with run_lock(out_dir), graceful_stop() as should_stop, \
            progress_reporter(meta["model"], out_dir, args.tensorboard) as on_progress:
        remove_stale_temporaries(out_dir, RUN_FILES)  # what a killed writer left behind
        meta = run_or_explain(lambda: resume(items, out_dir, device=device, on_progress=on_progress,
                                             should_stop=should_stop), out_dir)
    finish_training(args, out_dir, meta)


def run_or_explain(train_fn, out_dir: Path):
    from .train import TrainingInterrupted

    try:
        return train_fn()
    except TrainingInterrupted as stop:
        raise MakemoreError(f"stopped at step {stop.step:,}; the checkpoint is saved. Resume with: "
                            f"makemore train --resume {out_dir}") from None


def finish_training(args, out_dir: Path, meta: dict) -> None:
    if not args.no_plot:
        plot_loss(out_dir, meta["model"])
    m = meta["metrics"]
    best = f", best val {meta['best_val_nll']:.4f} at step {meta['best_step']:,}" if "best_val_nll" in meta else ""
    early = " (stopped early)" if meta.get("stopped_early") else ""
    log(f"saved {out_dir} ({meta['params']:,} parameters, {meta['train_seconds']:.1f} s{best}){early}")
    print(f"train {m['train_nll']:.4f}  val {m['val_nll']:.4f}  test {m['test_nll']:.4f}")


def load_recorded_items(meta: dict, input_spec: str | None, run_dir: Path) -> tuple[list[str], Path]:
    """The items a run was trained on: its recorded file (checked by sha256) or the one given with -i,
    read with the text options the run recorded."""
    from .data import TextOptions, read_items
    from .datasets import sha256_of

    recorded = meta.get("dataset", {})
    spec = input_spec or recorded.get("path")
    if not spec:
        raise MakemoreError(f"{run_dir} does not record its training file; pass it with -i FILE")
    path = resolve_input_file(spec)
    if not path.is_file():
        raise MakemoreError(f"{path}, the training file of {run_dir}, is gone; pass it with -i FILE")
    if recorded.get("sha256") and sha256_of(path) != recorded["sha256"]:
        raise MakemoreError(f"{path} is not the file {run_dir} was trained on (sha256 differs); pass the original with -i FILE")
    options = TextOptions(**recorded.get("text_options", {}))
    return read_items(path, options), path


@contextmanager
def graceful_stop():
    """SIGINT/SIGTERM ask training to stop after the current step and save; a second Ctrl-C aborts at once."""
    requested = {"stop": False}
    previous = {}

    def handler(signum, frame):
        if requested["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested["stop"] = True
        log("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort without saving)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. called from a library user's thread): no handlers
            pass
    try:
        yield lambda: requested["stop"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def progress_reporter(label: str, out_dir: Path, tensorboard: bool):
    """The progress bar (terminal only) and, if asked for, TensorBoard scalars in RUN_DIR/tensorboard."""
    bar = progress_callback(label)
    writer = None
    if tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MakemoreError("--tensorboard needs the tensorboard package: pip install 'makemore[tensorboard]'") from None
        writer = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def report(p) -> None:
        if bar is not None:
            bar(p)
        if writer is not None:
            writer.add_scalar("loss/train", p.loss, p.step)
            writer.add_scalar("lr", p.lr, p.step)
            if p.val_loss is not None:
                writer.add_scalar("loss/val", p.val_loss, p.step)

    try:
        yield report
    finally:
        if writer is not None:
            writer.close()


def config_file_record(path: str | None) -> dict:
    if not path:
        return {}
    return {"config_file": {"path": str(Path(path).resolve()), "content": Path(path).read_text(encoding="utf-8")}}


def load_config_file(path: str, allowed: set[str]) -> dict[str, Any]:
    """Options from a TOML file, keyed by option name (either `batch_size` or `batch-size`)."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise MakemoreError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MakemoreError(f"{path} is not valid TOML ({e})") from None
    values = {k.replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise MakemoreError(f"{path}: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return values


def check_config_values(parser: argparse.ArgumentParser, values: dict[str, Any], path: str) -> dict[str, Any]:
    """TOML values, converted and checked exactly as the same options typed on the command line would be."""
    actions = {a.dest: a for a in parser._actions}
    checked = {}
    for key, value in values.items():
        action = actions[key]
        try:
            if action.nargs == 0:  # a flag (--no-plot...)
                if not isinstance(value, bool):
                    raise ValueError(f"expected true or false, got {value!r}")
                checked[key] = value
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(f"expected a string or a number, got {value!r}")
            converted = action.type(str(value)) if action.type else str(value)
            if action.choices is not None and converted not in action.choices:
                raise ValueError(f"invalid choice {converted!r}; choose from {', '.join(map(str, action.choices))}")
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            raise MakemoreError(f"{path}: {key}: {e}") from None
        checked[key] = converted
    return checked


def plot_loss(out_dir: Path, title: str) -> None:
    from .checkpoint import METRICS, read_metrics

    if not (out_dir / METRICS).exists():
        return
    try:
        from .plots import loss_curve_chart

        loss_curve_chart(read_metrics(out_dir), out_dir / "loss.png", title)
    except MakemoreError as e:
        log(f"note: loss.png not written ({e})")


def cmd_eval(args) -> None:
    import torch

    from .train import evaluate

    model, splits, _ = load_run_and_splits(args.run_dir, args.input, args.device)
    set_threads(args.threads)
    with torch.no_grad():
        result = {part: evaluate(model, splits.part(part)) for part in ("train", "val", "test")}
    if args.json:
        print(json.dumps({f"{k}_nll": v for k, v in result.items()}))
    else:
        for part, nll in result.items():
            print(f"{part:<5} {nll:.4f}")


def cmd_reproduce(args) -> None:
    from .device import pick_device
    from .reproduce import ESSAY_MODELS, format_table, reproduce

    models = tuple(args.models.split(",")) if args.models else ESSAY_MODELS
    from .models import get_spec

    for name in models:
        get_spec(name)
    out_dir = Path(args.out_dir)
    for name in models:
        refuse_existing_run(out_dir / name, args.overwrite)
    device = pick_device(args.device)
    items, dataset = load_dataset(args.input, text_options(args))
    set_threads(args.threads)
    log(f"reproducing the essay's table on {dataset['name']} ({dataset['items']:,} items) on {device}")
    results = reproduce(items, dataset, out_dir, models=models, seed=args.seed, device=device,
                        extra_meta=provenance(args.argv), on_start=lambda name: log(f"training {name}..."),
                        on_progress=progress_callback)
    results.update(provenance(args.argv))
    from .atomic import atomic_write_text

    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=2) + "\n")
    print(format_table(results))
    try:
        from .plots import nll_bar_chart

        nll_bar_chart(results, out_dir / "nll.png")
        log(f"wrote {out_dir / 'results.json'} and {out_dir / 'nll.png'}")
    except MakemoreError as e:
        log(f"wrote {out_dir / 'results.json'}; nll.png skipped ({e})")


def cmd_leaderboard(args) -> None:
    from .device import pick_device
    from .leaderboard import default_entries, format_leaderboard, leaderboard

    entries = default_entries()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {e.label for e in entries})
        if unknown:
            raise MakemoreError(f"no leaderboard entry {', '.join(unknown)}; entries: {', '.join(e.label for e in entries)}")
        entries = [e for e in entries if e.label in wanted]
    out_dir = Path(args.out_dir)
    for entry in entries:
        refuse_existing_run(out_dir / entry.label, args.overwrite)
    device = pick_device(args.device)
    items, dataset = load_dataset(args.input, text_options(args))
    set_threads(args.threads)
    log(f"leaderboard of {len(entries)} entries on {dataset['name']} ({dataset['items']:,} items) on {device}")
    board = leaderboard(items, dataset, out_dir, entries, seed=args.seed, device=device,
                        extra_meta=provenance(args.argv), on_start=lambda label: log(f"training {label}..."),
                        on_progress=progress_callback)
    board.update(provenance(args.argv))
    from .atomic import atomic_write_text

    atomic_write_text(out_dir / "leaderboard.json", json.dumps(board, indent=2) + "\n")
    print(format_leaderboard(board))
    if args.no_plot:
        return
    try:
        from .plots import leaderboard_chart

        leaderboard_chart(board, out_dir / "leaderboard.png")
        log(f"wrote {out_dir / 'leaderboard.json'} and {out_dir / 'leaderboard.png'}")
    except MakemoreError as e:
        log(f"wrote {out_dir / 'leaderboard.json'}; leaderboard.png skipped ({e})")


def cmd_diagnose(args) -> None:
    import torch

    from .data import make_splits
    from .diagnostics import compare_inits, snapshot, train_with_update_ratios
    from .models import build_model
    from .recipes import get_recipe

    config = {"init": args.init} if args.model in ("mlp", "mlp-deep") and args.init else {}
    build_model(args.model, **config)  # a bad model or init fails before any data is read
    out_dir = Path(args.out_dir) if args.out_dir else None
    items, dataset = load_dataset(args.input)
    set_threads(args.threads)
    cache: dict[int, Any] = {}

    def splits_for(block_size: int):
        if block_size not in cache:
            cache[block_size] = make_splits(items, block_size)
        return cache[block_size]

    torch.manual_seed(args.seed)
    model = build_model(args.model, **config)
    splits = splits_for(model.config.block_size)
    model = build_model(args.model, vocab_size=splits.vocab.size, **config) if splits.vocab.size != model.config.vocab_size else model
    X, Y = splits.train
    gen = torch.Generator().manual_seed(args.seed)
    batch = torch.randint(0, X.shape[0], (args.batch_size,), generator=gen)
    label = f"{args.model}" + (f" (init {config['init']})" if config else "")
    before = snapshot(model, X[batch], Y[batch])
    print(f"{label}: {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"step 0 on a batch of {args.batch_size} training examples")
    print(f"initial loss {before.loss:.4f}   ideal -log(1/{splits.vocab.size}) = {before.ideal_loss:.4f}")
    print(format_layer_table(before.layers))
    recipe = get_recipe(args.model, "essay")
    recipe.steps, recipe.schedule = args.steps, "constant"  # a steady lr keeps the update:data chart readable
    ratios = train_with_update_ratios(model, splits.train, recipe, seed=args.seed)
    after = snapshot(model, X[batch], Y[batch])
    print(f"\nafter {args.steps:,} steps of SGD (batch {recipe.batch_size}, constant lr {recipe.lr}): loss on the same batch {after.loss:.4f}")
    print(format_layer_table(after.layers))
    print(f"\n{'weight':<24} {'update:data (log10, mean of last 100 steps)':>44}")
    for name, r in zip(ratios.names, ratios.mean_over_last(100)):
        print(f"{name:<24} {r:>44.2f}")
    if out_dir:
        write_diagnose_plots(out_dir, label, before, after, ratios)
    if args.compare:
        compare_recipe = get_recipe("mlp", args.compare_recipe)
        if args.compare_steps:
            compare_recipe.steps = args.compare_steps
        rows = compare_inits(splits_for, compare_recipe, seed=args.seed, on_start=lambda s: log(f"training {s}..."))
        print(f"\nsame recipe ({args.compare_recipe}, {compare_recipe.steps:,} steps), same seed, only the init changing:")
        print(f"{'model':<10} {'variant':<36} {'train':>7} {'val':>7} {'seconds':>8}")
        for r in rows:
            print(f"{r.model:<10} {r.variant:<36} {r.train_nll:>7.4f} {r.val_nll:>7.4f} {r.seconds:>8.1f}")


def format_layer_table(layers) -> str:
    head = (f"{'layer':<16} {'pre mean':>8} {'pre std':>8} {'|pre|<=2':>8} {'act mean':>8} {'act std':>8} "
            f"{'saturated':>9} {'worst neuron':>12} {'dead':>9} {'grad mean':>10} {'grad std':>9}")
    lines = [head]
    for s in layers:
        lines.append(f"{s.name:<16} {s.preact_mean:>8.3f} {s.preact_std:>8.3f} {s.preact_in_range:>8.1%} {s.act_mean:>8.3f} "
                     f"{s.act_std:>8.3f} {s.saturation:>9.1%} {s.worst_neuron_saturation:>12.1%} "
                     f"{f'{s.dead_neurons}/{s.neurons}':>9} {s.grad_mean:>10.2e} {s.grad_std:>9.2e}")
    return "\n".join(lines)


def write_diagnose_plots(out_dir: Path, label: str, before, after, ratios) -> None:
    try:
        from .plots import layer_histograms, saturation_map, update_ratio_chart

        names = [s.name for s in before.layers]
        layer_histograms(before.acts, names, out_dir / "activations_step0.png", f"{label}: tanh outputs at step 0", "h")
        layer_histograms(after.acts, names, out_dir / "activations.png", f"{label}: tanh outputs after training", "h")
        layer_histograms(before.grads, names, out_dir / "gradients_step0.png", f"{label}: dLoss/dh at step 0", "gradient")
        layer_histograms(after.grads, names, out_dir / "gradients.png", f"{label}: dLoss/dh after training", "gradient")
        update_ratio_chart(ratios.names, ratios.steps, ratios.ratios, out_dir / "update_ratio.png")
        saturation_map(before.acts[0], out_dir / "saturation.png", f"{label}: |h| > 0.99 at step 0 (white = saturated)")
        log(f"wrote plots to {out_dir}")
    except MakemoreError as e:
        log(f"plots skipped ({e})")


def cmd_batchnorm(args) -> None:
    import copy

    from .diagnostics import batchnorm_layers, calibrate_batchnorm, single_example_modes
    from .train import evaluate

    if not 0 <= args.index < args.batch_size:
        raise MakemoreError(f"--index must be between 0 and --batch-size - 1 ({args.batch_size - 1}), got {args.index}")
    model, splits, meta = load_run_and_splits(args.run_dir, args.input, args.device)
    if not batchnorm_layers(model):
        raise MakemoreError(f"{args.run_dir} is a {meta['model']} run, which has no BatchNorm; use an mlp-bn or wavenet run")
    set_threads(args.threads)
    X = splits.val[0][: args.batch_size]
    if not 0 <= args.index < X.shape[0]:
        raise MakemoreError(f"--index must be between 0 and {X.shape[0] - 1} (the batch has {X.shape[0]} examples), got {args.index}")
    check = single_example_modes(model, X, index=args.index)
    print(f"{meta['model']}: example {args.index} of a val batch of {X.shape[0]}, forwarded alone")
    if check.train_mode_error:
        print(f"  train mode (batch statistics): fails: {check.train_mode_error}")
    else:
        print(f"  train mode (batch statistics): logits differ from the batch's by up to {check.train_mode_max_diff:.4f} (garbage)")
    print(f"  eval mode (running statistics): logits differ from the batch's by up to {check.eval_mode_max_diff:.2e}")
    calibrated = copy.deepcopy(model)
    calibrate_batchnorm(calibrated, splits.train[0])
    print(f"val NLL with the running averages kept during training:  {evaluate(model, splits.val):.4f}")
    print(f"val NLL with statistics recomputed over the training set: {evaluate(calibrated, splits.val):.4f}")


def load_run_and_splits(run_dir: str, input_spec: str | None, device_name: str):
    """A run's model and the exact split it was trained on (checked against the recorded file)."""
    from .checkpoint import load_run
    from .device import pick_device
    from .runs import splits_for

    model, vocab, meta = load_run(run_dir, pick_device(device_name))
    items, _ = load_recorded_items(meta, input_spec, Path(run_dir))
    splits = splits_for(items, meta["model"], getattr(model.config, "block_size", None),
                        seed=meta.get("split_seed", 42), vocab=vocab)  # windows, or whole items for a sequence model
    return model, splits, meta


def cmd_claims(args) -> None:
    from .claims import (Claim, bigram_equivalence, format_claims, init_fix_claim, quick_claims, table_claims)
    from .recipes import get_recipe

    items, dataset = load_dataset(args.input)
    set_threads(args.threads)
    log("measuring the quick claims...")
    claims = quick_claims(items, seed=args.seed)
    claims.append(gradient_claim(args.seed))
    if not args.quick:
        results = load_or_reproduce(args, items, dataset)
        claims += table_claims(results)
        # the essay's claim is about its own recipe (plain SGD): AdamW largely undoes a bad init by itself
        log("training the MLP with naive and with Kaiming init (the essay's recipe, same seed; about 1.5 minutes)...")
        claims.append(init_fix_claim(items, get_recipe("mlp", "essay"), seed=args.seed, on_start=lambda s: log(f"  {s}")))
        log("training the bigram NN 2,000 steps...")
        eq = bigram_equivalence(items, steps=2000, seed=args.seed)
        claims.append(Claim("W = log(counts) + a constant per row, 2,000 steps", "same model",
                            f"max deviation {eq.max_logit_offset_spread:.3f} (bigrams seen 100+ times)",
                            eq.max_logit_offset_spread < 0.1, "< 0.1 nats on bigrams seen 100+ times"))
    print(format_claims(claims))
    if args.out_dir:
        from .atomic import atomic_write_text, json_text

        payload = {"dataset": dataset, "quick": args.quick, "claims": [c.as_dict() for c in claims]}
        atomic_write_text(Path(args.out_dir) / "claims.json", json_text(payload))


def cmd_backprop(args) -> None:
    import time

    import torch

    from .backprop import check_gradients, format_check, train_manual
    from .models import build_model
    from .train import Recipe, evaluate, train

    if args.batch_size < 2:
        raise MakemoreError(f"--batch-size must be at least 2 (batch norm needs two examples), got {args.batch_size}")
    if not (args.check or args.train):
        raise MakemoreError("say what to do: --check (compare every gradient with autograd), --train, or both")
    set_threads(args.threads)
    items, _ = load_dataset(args.input)
    from .data import make_splits

    splits = make_splits(items, block_size=3, seed=args.split_seed)
    config = {"vocab_size": splits.vocab.size}
    ok = True
    if args.check:
        torch.manual_seed(args.seed)
        model = build_model("mlp-bn", **config)
        X, Y = splits.train[0][: args.batch_size], splits.train[1][: args.batch_size]
        for dtype, label in ((torch.float64, "float64, tolerance 1e-10"), (torch.float32, "float32, tolerance 1e-5")):
            rows = check_gradients(model, X, Y, dtype=dtype)
            print(f"hand gradients vs autograd on a training batch of {X.shape[0]} ({label}):")
            print(format_check(rows))
            agree = sum(r.approx for r in rows)
            print(f"{agree} of {len(rows)} tensors agree\n")
            ok = ok and agree == len(rows)
    if args.train:
        recipe = Recipe(steps=args.steps, batch_size=args.batch_size, optimizer="sgd", lr=args.lr, schedule="step")
        results = {}
        for method in ("hand", "autograd"):
            torch.manual_seed(args.seed)  # same initial weights for both
            model = build_model("mlp-bn", **config)
            log(f"training mlp-bn {args.steps:,} steps with {method} gradients...")
            start = time.perf_counter()
            if method == "hand":
                train_manual(model, splits.train, args.steps, args.batch_size, lr=recipe.lr_at, seed=args.seed)
            else:
                train(model, splits.train, recipe, seed=args.seed)
            results[method] = (evaluate(model, splits.val), time.perf_counter() - start)
        gap = abs(results["hand"][0] - results["autograd"][0])
        print(f"mlp-bn, {args.steps:,} steps of SGD, batch {args.batch_size}, lr {args.lr} (x0.1 at 3/4), seed {args.seed}")
        for method, (nll, seconds) in results.items():
            print(f"  {method + ' gradients':<18} val NLL {nll:.4f}  ({seconds:.1f} s)")
        print(f"  difference {gap:.4f} ({'within' if gap <= 0.01 else 'NOT within'} 0.01)")
        ok = ok and gap <= 0.01
    if not ok:
        raise MakemoreError("hand gradients and autograd disagree (see the table above)")


def gradient_claim(seed: int):
    """Hand-written gradients of MLP + BN against autograd, float64, on a random batch."""
    import torch

    from .backprop import check_gradients
    from .claims import Claim
    from .models import build_model

    torch.manual_seed(seed)
    model = build_model("mlp-bn")
    X = torch.randint(0, 27, (32, 3))
    Y = torch.randint(0, 27, (32,))
    rows = check_gradients(model, X, Y, dtype=torch.float64)
    worst = max(r.max_abs_diff for r in rows)
    return Claim("manual backprop equals autograd (float64)", "equal", f"{len(rows)} tensors, max |diff| {worst:.1e}",
                 all(r.approx for r in rows) and worst <= 1e-10, "every tensor within 1e-10")


def load_or_reproduce(args, items, dataset) -> dict:
    """results.json of a reproduce run: the one named by --from, else train the five models into -o."""
    if args.results:
        path = Path(args.results)
        path = path / "results.json" if path.is_dir() else path
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise MakemoreError(f"cannot read reproduce results from {path} ({e}); run makemore reproduce -o DIR first") from None
    from .reproduce import reproduce

    out_dir = Path(args.out_dir or "runs/claims")
    log(f"no --from given: training the five models into {out_dir} (a few minutes)...")
    return reproduce(items, dataset, out_dir, seed=args.seed, on_start=lambda name: log(f"  training {name}..."),
                     on_progress=progress_callback, extra_meta=provenance(args.argv))


def cmd_models(args) -> None:
    from .models import MODELS, build_model
    from .recipes import PRESETS

    print(f"{'model':<14} {'params':>7}  {'recipes':<12} mechanism")
    for name, spec in MODELS.items():
        params = sum(p.numel() for p in build_model(name).parameters())
        print(f"{name:<14} {params:>7,}  {','.join(PRESETS.get(name, {})):<12} {spec.mechanism}")


# ----------------------------------------------------------------------------- parser

def positive(kind: type, what: str, *, minimum: float = 0, inclusive: bool = False, maximum: float | None = None):
    """An argparse type: a finite number of `kind` above `minimum` (or from it, if inclusive), at most `maximum`."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {value}")
        if not (value >= minimum if inclusive else value > minimum):
            raise argparse.ArgumentTypeError(f"must be {'at least' if inclusive else 'greater than'} {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:,}, got {value:,}")
        return value

    return parse


positive_int = positive(int, "a whole number")
positive_float = positive(float, "a number")
non_negative_float = positive(float, "a number", inclusive=True)
unit_interval = positive(float, "a probability", inclusive=True, maximum=0.95)  # dropout: 1 would zero everything
MAX_THREADS = 1024
MAX_BLOCK_SIZE = 1024  # characters of context; far beyond any item a character model is for


def seed_int(text: str) -> int:
    """An argparse type for seeds: any whole number that fits the 64 bits of PyTorch's generators."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not -(2 ** 63) <= value < 2 ** 64:
        raise argparse.ArgumentTypeError(f"a seed must fit in 64 bits (-2**63 to 2**64-1), got {value}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line in makemore's own form (exit code 2, as argparse's)."""

    def error(self, message: str):
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"makemore: error: {command}{message} (see {self.prog} --help)\n")


def add_text_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lowercase", action="store_true", help="lower-case every item (recorded in run.json; default: keep case)")
    p.add_argument("--nfc", action="store_true", help="Unicode NFC-normalise every item (recorded in run.json; default: as is)")
    p.add_argument("--max-item-len", type=positive_int, default=None,
                   help="longest item accepted, in characters (default: 1000); longer ones are refused, see --skip-long")
    p.add_argument("--skip-long", action="store_true", help="skip items over --max-item-len (and say how many) instead of refusing the file")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps (default: auto)")
    p.add_argument("--threads", type=positive(int, "a whole number", maximum=MAX_THREADS), default=None,
                   help="CPU threads for PyTorch (default: PyTorch's choice)")


def build_parser() -> argparse.ArgumentParser:
    from .models import MODELS

    fmt = argparse.RawDescriptionHelpFormatter
    parser = Parser(prog="makemore", description=DESCRIPTION, formatter_class=fmt,
                    epilog="example:\n  makemore reproduce -o runs/essay\n  makemore train -i names --model mlp -o runs/mlp\n  makemore sample runs/mlp -n 20")
    parser.add_argument("--version", action="version", version=f"makemore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train one model into a run directory", formatter_class=fmt,
                       description="Train one registered model on a one-item-per-line file and save it to a run directory "
                                   "(model.safetensors, run.json, metrics.csv, loss.png). Prints train/val/test NLL.",
                       epilog="examples:\n  makemore train -i names --model wavenet -o runs/wavenet\n"
                              "  makemore train -i words.txt --model mlp --n-hidden 300 --steps 50000 -o runs/words-mlp\n"
                              "  makemore train --config mlp.toml --lr 0.003      # TOML options, overridden here\n"
                              "  makemore train --resume runs/wavenet              # after Ctrl-C or a kill\n\n"
                              "Ctrl-C or SIGTERM stops after the current step and saves a resume point.")
    p.add_argument("-i", "--input", help="text file with one item per line, or 'names' for the essay's dataset")
    p.add_argument("--model", default="wavenet", choices=list(MODELS), metavar="NAME",
                   help=f"model to train: {', '.join(MODELS)} (default: wavenet)")
    p.add_argument("-o", "--out-dir", help="run directory to write")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run exactly where it stopped (its own settings)")
    p.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (keys: option names, e.g. "
                                                          "model = \"mlp\", steps = 5000); command-line options override it")
    p.add_argument("--recipe", default="fast", help="named training recipe: fast (default) or essay (the lecture's batch-32 SGD)")
    p.add_argument("--seed", type=seed_int, default=42, help="seed for initial weights and batch order (default: 42)")
    p.add_argument("--split-seed", type=seed_int, default=42, help="seed of the shuffle before the 80/10/10 split (default: 42)")
    p.add_argument("--steps", type=positive_int, help="optimisation steps (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="examples per step, 0 for full batch (default: the recipe's)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], help="optimiser (default: the recipe's)")
    p.add_argument("--schedule", choices=["constant", "step", "cosine"], help="learning-rate schedule (default: the recipe's)")
    p.add_argument("--weight-decay", type=non_negative_float, help="weight decay on matrices (default: the recipe's)")
    p.add_argument("--soft-targets", action=argparse.BooleanOptionalAction,
                   help="train each window on the distribution of what follows its context, not the one next "
                        "character (same loss, less noise; default: the recipe's, on for mlp, mlp-bn, wavenet)")
    p.add_argument("--eval-interval", type=int, help="evaluate val, save a resume point and the best weights "
                                                     "(best.safetensors) every N steps (default: steps/10; 0: never)")
    p.add_argument("--patience", type=int, help="early stopping: stop after N evaluations without a new best val (default: off)")
    p.add_argument("--tensorboard", action="store_true", help="also log to RUN_DIR/tensorboard (needs the tensorboard package)")
    add_text_options(p)
    p.add_argument("--block-size", type=positive(int, "a whole number", maximum=MAX_BLOCK_SIZE),
                   help="context length in characters (default: the model's)")
    p.add_argument("--n-embd", type=positive_int, help="embedding size (mlp, mlp-bn, wavenet)")
    p.add_argument("--n-hidden", type=positive_int, help="hidden units (mlp, mlp-bn, wavenet)")
    p.add_argument("--n-layer", type=positive_int, help="layers (transformer, rnn, gru, lstm)")
    p.add_argument("--n-head", type=positive_int, help="attention heads per layer (transformer; must divide --n-embd)")
    p.add_argument("--dropout", type=unit_interval, help="dropout probability while training (transformer, rnn, gru, lstm)")
    p.add_argument("--smoothing", type=positive_float, help="count added to every bigram (bigram-counts; default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in the run directory")
    p.add_argument("--no-plot", action="store_true", help="do not draw loss.png")
    add_common(p)
    p.set_defaults(func=cmd_train, subparser=p)

    p = sub.add_parser("eval", help="train/val/test NLL of a run", formatter_class=fmt,
                       description="Recompute a run's train/val/test NLL on the split it was trained with.",
                       epilog="example:\n  makemore eval runs/wavenet")
    p.add_argument("run_dir", help="run directory written by makemore train")
    p.add_argument("-i", "--input", help="the training file, if it moved since training")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_common(p)
    p.set_defaults(func=cmd_eval)

    from . import cli_generate

    cli_generate.add_parsers(sub)

    p = sub.add_parser("reproduce", help="train the essay's five models and print its table", formatter_class=fmt,
                       description="Train bigram-counts, bigram-nn, mlp, mlp-bn and wavenet with their default recipes, "
                                   "print the table (ours beside the essay's val NLL), and write DIR/results.json, "
                                   "DIR/nll.png and one run directory per model.",
                       epilog="example:\n  makemore reproduce -o runs/essay\n  makemore reproduce -i words.txt -o runs/words --models bigram-counts,mlp")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("-o", "--out-dir", required=True, help="folder for results.json, nll.png and the runs")
    p.add_argument("--seed", type=seed_int, default=42, help="seed for every model's weights and batches (default: 42)")
    p.add_argument("--models", help="comma-separated subset of models (default: the essay's five)")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in DIR")
    add_text_options(p)
    add_common(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("leaderboard", help="train every model with its best known recipe and rank them by val NLL",
                       formatter_class=fmt,
                       description="Train every registered model (and the variants listed in leaderboard.py) with its best "
                                   "known recipe preset on one dataset and the essay's split, print one table sorted by val "
                                   "NLL (the essay's five marked *), and write DIR/leaderboard.json (results.json's shape, one "
                                   "entry per model and recipe), DIR/leaderboard.png and one run directory per entry. "
                                   "Tens of minutes on 2 CPU cores.",
                       epilog="examples:\n  makemore leaderboard -o runs/board\n"
                              "  makemore leaderboard -o runs/board --only ngram,gru,transformer")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("-o", "--out-dir", required=True, help="folder for leaderboard.json, leaderboard.png and the runs")
    p.add_argument("--seed", type=seed_int, default=42, help="seed for every model's weights and batches (default: 42)")
    p.add_argument("--only", help="comma-separated entries to train (default: all)")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in DIR")
    p.add_argument("--no-plot", action="store_true", help="do not draw leaderboard.png")
    add_text_options(p)
    add_common(p)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("diagnose", help="the essay's init bugs, measured layer by layer", formatter_class=fmt,
                       description="Build a model with a chosen initialisation and report, at step 0 and after a short SGD run: "
                                   "the loss beside the ideal -log(1/V), per tanh layer the pre-activation and activation "
                                   "statistics, tanh saturation (|h| > 0.99) overall and per neuron, dead neurons, gradient "
                                   "statistics, and each weight matrix's update:data ratio. With -o, writes activation and "
                                   "gradient histograms, the update:data chart and the saturation map as PNG. With --compare, "
                                   "trains the MLP under every init (and the deep variant with and without BatchNorm) with one "
                                   "recipe and prints their val NLL.",
                       epilog="examples:\n  makemore diagnose --model mlp --init naive -o runs/diag-naive\n"
                              "  makemore diagnose --model mlp --init kaiming --compare")
    p.add_argument("--model", default="mlp", choices=list(MODELS), metavar="NAME", help="model to look inside (default: mlp)")
    p.add_argument("--init", choices=["naive", "fix-output", "fix-tanh", "kaiming"], default=None,
                   help="mlp: naive, fix-output, fix-tanh or kaiming (default naive); mlp-deep: naive or kaiming")
    p.add_argument("-i", "--input", default="names", help="dataset file or 'names' (default: names)")
    p.add_argument("-o", "--out-dir", help="folder for the PNG plots")
    p.add_argument("--batch-size", type=positive(int, "a whole number", maximum=65_536), default=32,
                   help="examples in the measured batch (default: 32)")
    p.add_argument("--steps", type=positive_int, default=1000, help="steps of the short SGD run (default: 1000)")
    p.add_argument("--seed", type=seed_int, default=42, help="seed for weights and batches (default: 42)")
    p.add_argument("--compare", action="store_true", help="also train every init with one recipe and compare val NLL")
    p.add_argument("--compare-recipe", default="essay", choices=["essay", "fast"], help="recipe of the comparison (default: essay)")
    p.add_argument("--compare-steps", type=positive_int, help="steps of the comparison runs (default: the recipe's)")
    add_common(p)
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("batchnorm", help="BatchNorm's train and eval modes, and calibration", formatter_class=fmt,
                       description="For a run with BatchNorm (mlp-bn, wavenet): forward one val example alone in train mode "
                                   "(batch statistics of one example: variance 0, an error or garbage) and in eval mode "
                                   "(running statistics: the same logits as inside its batch); then recompute the "
                                   "statistics over the whole training set and compare val NLL with the running averages.",
                       epilog="example:\n  makemore train -i names --model mlp-bn -o runs/mlp-bn\n  makemore batchnorm runs/mlp-bn")
    p.add_argument("run_dir", help="run directory of a model with BatchNorm")
    p.add_argument("-i", "--input", help="the training file, if it moved since training")
    p.add_argument("--batch-size", type=positive_int, default=32, help="size of the val batch (default: 32)")
    p.add_argument("--index", type=int, default=0, help="which example of the batch to forward alone (default: 0)")
    add_common(p)
    p.set_defaults(func=cmd_batchnorm)

    p = sub.add_parser("backprop", help="the MLP + BatchNorm's gradients by hand, checked against autograd",
                       formatter_class=fmt,
                       description="Backpropagation written by hand (makemore/backprop.py) for the mlp-bn model, every "
                                   "intermediate of the forward pass with its own backward rule, plus the essay's fused "
                                   "cross-entropy and BatchNorm backward.\n\n"
                                   "--check compares every hand gradient with autograd's on one training batch, in float64 "
                                   "(must agree to 1e-10) and float32 (to 1e-5): exact, approximately, max abs difference.\n"
                                   "--train trains mlp-bn with the hand gradients only and again with autograd, same seed, "
                                   "same batches, plain SGD, and compares their val NLL (must agree within 0.01).\n"
                                   "Exits non-zero if they disagree.",
                       epilog="example:\n  makemore backprop --check\n  makemore backprop --train --steps 20000")
    p.add_argument("--check", action="store_true", help="compare every hand gradient with autograd")
    p.add_argument("--train", action="store_true", help="train with hand gradients and with autograd, compare val NLL")
    p.add_argument("-i", "--input", default="names", help="training file or 'names' (default: names)")
    p.add_argument("--steps", type=positive_int, default=20_000, help="SGD steps for --train (default: 20000)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="examples per batch, at least 2 (default: 32)")
    p.add_argument("--lr", type=positive_float, default=0.1, help="learning rate, x0.1 at 3/4 of the steps (default: 0.1)")
    p.add_argument("--seed", type=seed_int, default=42, help="seed of the initial weights and the batches (default: 42)")
    p.add_argument("--split-seed", type=seed_int, default=42, help="seed of the 80/10/10 split (default: 42)")
    add_common(p)
    p.set_defaults(func=cmd_backprop)

    p = sub.add_parser("claims", help="every measurable claim of the essay, measured", formatter_class=fmt,
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
    p.add_argument("--seed", type=seed_int, default=42, help="seed (default: 42)")
    add_common(p)
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("models", help="list the registered models", formatter_class=fmt,
                       description="List every registered model with its parameter count at default size and its recipes.",
                       epilog="example:\n  makemore models")
    p.set_defaults(func=cmd_models)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """parse_args, except that items may also follow options (`score RUN --explain emma`)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "items", None), list) and not any(a.startswith("-") for a in extra):
            args.items.extend(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parse(parser, argv)
    if getattr(args, "config", None):
        try:  # TOML values become the subcommand's defaults; options on the command line still win
            allowed = {a.dest for a in args.subparser._actions} - {"help", "config", "func", "subparser"}
            values = load_config_file(args.config, allowed)
            args.subparser.set_defaults(**check_config_values(args.subparser, values, args.config))
        except MakemoreError as e:
            log(f"makemore: error: {e}")
            return 1
        args = parse(parser, argv)
    args.argv = list(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        args.func(args)
    except MakemoreError as e:
        log(f"makemore: error: {e}")
        return 1
    except KeyboardInterrupt:
        log("makemore: interrupted")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error
        sys.stderr.close()
        return 0
    except UnicodeEncodeError as e:
        log(f"makemore: error: cannot write {e.object[e.start]!r}: the output's encoding ({e.encoding}) has no such "
            f"character; use a UTF-8 locale or set PYTHONIOENCODING=utf-8")
        return 1
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and not any(s in str(e) for s in ("can't allocate memory", "out of memory")):
            raise  # not a resource problem: a bug, shown as one
        log("makemore: error: out of memory; ask for less: a smaller model (--n-embd, --n-hidden, --block-size), "
            "a smaller --batch-size, fewer items (-n) or a shorter --max-len")
        return 1
    except OSError as e:  # the file system said no (full disk, read-only folder, no permission...)
        from .atomic import disk_hint

        where = f"{e.filename}: " if e.filename else ""
        log(f"makemore: error: {where}{e.strerror or e}{disk_hint(e)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
