"""Training and evaluation commands: `train` (and `train --resume`), `eval`, `models`."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path

from ..data.builtin import cache_dir_from
from ..data.items import split_items
from ..device import pick_device
from ..errors import MakemoreError
from ..models import MODELS, build_model, trainable_models
from ..studies.auto import CANDIDATES, AutoSpec, check_list, train_auto
from ..training.bases import base_folder, ensure_base, is_complete
from ..training.init_from import NAMES_BASE, SHAPE_OPTIONS, read_base
from ..training.loop import OPTIMIZERS, SCHEDULES, TrainingInterrupted
from ..training.pipeline import RunControl, RunSpec, resume, run
from ..training.recipes import PRESETS, get_recipe, recipe_for
from ..training.run_folder import read_meta
from ..training.recorded import TrainingDataMissing
from ..training.torchrun import from_environ
from .common import (FMT, MISSING_HINT, add_common, add_dedupe_option, add_text_options, checked, eval_progress,
                     load, load_training_input, log, provenance, recorded_input, refuse_existing_run, set_threads,
                     text_options)
from .session import (finish_training, parallel_job, progress_reporter, run_or_explain, say, training_session,
                      where)
from .config import config_file_record

RECIPE_OPTIONS = ("steps", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "soft_targets", "length_groups",
                  "eval_interval", "patience")
MODEL_OPTIONS = ("block_size", "n_embd", "n_hidden", "n_layer", "n_head", "dropout", "smoothing")
SINGLE_MODEL = "wavenet"  # what `train` trains when given one model's options and no --model


# ----------------------------------------------------------------------------- train

def cmd_train(args) -> None:
    if args.resume:
        return resume_training(args)
    if not args.input or not args.out_dir:
        raise MakemoreError("train needs -i FILE and -o RUN_DIR (or --resume RUN_DIR to continue a stopped run)")
    overrides = {k: getattr(args, k) for k in RECIPE_OPTIONS if getattr(args, k) is not None}
    config = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    base = start_from(args, config)
    # without --model: auto, unless one model's options (--steps, --n-embd, --recipe...) ask for one model
    model = (base.meta["model"] if base is not None else
             args.model or (SINGLE_MODEL if overrides or config or args.recipe else "auto"))
    if model == "auto":
        return train_auto_command(args, overrides, config)
    recipe_name = args.recipe or ("finetune" if base is not None else "fast")
    get_recipe(model, recipe_name)  # an unknown recipe fails before any data is read
    build_model(model, **{**(asdict(base.model.config) if base else {}), **config, "vocab_size": 2,
                          "n_labels": 1})  # a bad option too
    out_dir = Path(args.out_dir)
    with parallel_job(pick_device(args.device), out_dir) as (parallel, device):
        main = parallel is None or parallel.is_main
        if main:  # rank 0 alone looks at and writes the run directory
            refuse_existing_run(out_dir, args.overwrite)
        items, labels, dataset = load_training_input(args.input, text_options(args), dedupe=args.dedupe,
                                                     split_seed=args.split_seed, item_column=args.item_column,
                                                     label_column=args.label_column)
        set_threads(args.threads)
        recipe = recipe_for(model, recipe_name, split_items(items, args.split_seed)[0], overrides)
        run_spec = RunSpec(model=model, recipe=recipe, recipe_name=recipe_name + ("+overrides" if overrides else ""),
                           seed=args.seed, split_seed=args.split_seed, config=config,
                           init_from=None if base is None else str(base.path))
        started = "" if base is None else f", starting from {base.path}"
        say(parallel, f"training {model} on {dataset['name']} ({dataset['items']:,} items{describe_labels(labels)}, "
                      f"vocabulary {dataset['vocab_size']}){started} on {where(device, parallel)}")
        extra = {"dataset": dataset, **provenance(args.argv), **config_file_record(args.config)}
        with training_session(out_dir, model, args.tensorboard, main, args.overwrite) as (should_stop, on_progress):
            control = RunControl(on_progress=on_progress, should_stop=should_stop, on_eval=eval_progress(),
                                 parallel=parallel)
            meta = run_or_explain(lambda: run(items, run_spec, out_dir, device=device, extra_meta=extra,
                                              control=control, labels=labels),
                                  out_dir, main)
        if main:
            finish_training(args, out_dir, meta)


def start_from(args, config: dict):
    """--init-from's base run, read and checked before any data is read or anything written (None without it)."""
    if args.init_from is None:
        return None
    shaped = [f"--{k.replace('_', '-')}" for k in SHAPE_OPTIONS if k in config]
    if shaped:
        raise MakemoreError(f"{', '.join(shaped)} would change the shape of the model --init-from starts from; "
                            f"a fine-tuned run keeps the base's shape (drop {', '.join(shaped)})")
    if args.init_from == NAMES_BASE:
        model = SINGLE_MODEL if args.model in (None, "auto") else args.model
        return read_base(names_base(model, args))
    base = read_base(args.init_from)
    if args.model not in (None, "auto", base.meta["model"]):
        raise MakemoreError(f"--init-from {args.init_from} is a {base.meta['model']} run, and a fine-tuned run is "
                            f"the same model: drop --model {args.model} (or start from a {args.model} run)")
    return base


def names_base(model: str, args) -> Path:
    """The base for `--init-from names`: this model trained on names.txt by its fast recipe, once, in the cache."""
    folder = base_folder(cache_dir_from(os.environ), NAMES_BASE, model)
    if is_complete(folder):
        return folder
    items, _, dataset = load_training_input(["names"])
    log(f"training the {model} base on names.txt once (kept in {folder} for every later --init-from names)")
    with progress_reporter(f"{model} base", folder, False) as on_progress:
        return ensure_base(folder, model, items, device=pick_device(args.device),
                           control=RunControl(on_progress=on_progress), dataset=dataset)


def train_auto_command(args, overrides: dict, config: dict) -> None:
    """`train --model auto`: the candidates for the list's size within --budget, the best kept."""
    given = [f"--{k.replace('_', '-')}" for k in (*overrides, *config)] + (["--recipe"] if args.recipe else [])
    if given:
        raise MakemoreError(f"{', '.join(given)} set(s) how one model trains; --model auto sizes every candidate's "
                            f"recipe itself: drop {', '.join(given)}, or choose a --model")
    if from_environ(os.environ) is not None:
        raise MakemoreError("--model auto trains in one process; under torchrun choose a --model")
    out_dir = Path(args.out_dir)
    device = pick_device(args.device)  # a bad device is refused before any data is read
    refuse_existing_run(out_dir, args.overwrite)
    items, labels, dataset = load_training_input(args.input, text_options(args), dedupe=args.dedupe,
                                                 split_seed=args.split_seed, item_column=args.item_column,
                                                 label_column=args.label_column)
    check_list(items)
    set_threads(args.threads)
    log(f"auto: trying the models that suit {dataset['name']} ({dataset['items']:,} items) within {args.budget:g} s")
    extra = {"dataset": dataset, **provenance(args.argv), **config_file_record(args.config)}
    with training_session(out_dir, "auto", args.tensorboard, True, args.overwrite) as (should_stop, on_progress):
        spec = AutoSpec(budget=args.budget, seed=args.seed, split_seed=args.split_seed,
                        on_candidate=lambda m: log(f"auto: training {m}"),
                        control=RunControl(on_progress=on_progress, should_stop=should_stop))
        try:
            meta = train_auto(items, spec, out_dir, device=device, labels=labels, extra_meta=extra)
        except TrainingInterrupted as stop:
            raise MakemoreError(f"stopped at step {stop.step:,} of a candidate; the candidates that finished are in "
                                f"{out_dir / CANDIDATES} (each a run of its own); train again to choose among all "
                                f"of them") from None
    print(describe_auto(meta["auto"]))
    finish_training(args, out_dir, meta)


def describe_auto(auto: dict) -> str:
    """What auto tried (each candidate's val and test NLL and seconds, or why it was left out) and chose."""
    lines = [f"{'candidate':<12} {'val':>7} {'test':>7} {'seconds':>8}"]
    for t in auto["tried"]:
        if t["status"] == "complete":
            cut = "  (ended at the budget: its best val check so far)" if t.get("cut_by_budget") else ""
            lines.append(f"{t['model']:<12} {t['val_nll']:>7.4f} {t['test_nll']:>7.4f} {t['seconds']:>8.1f}{cut}")
        else:
            lines.append(f"{t['model']:<12} {t['status']}")
    chose = auto["chose"]
    lines.append(f"chose: {'the mixture of the candidates, weights fitted on val' if chose == 'ensemble' else chose}"
                 f" (lowest val NLL)")
    return "\n".join(lines)


def describe_labels(labels) -> str:
    """", 2 labels: girl 4,000, boy 3,000" for a labelled run's start message ("" when unlabelled)."""
    if labels is None:
        return ""
    return f", {len(labels.names)} label(s): " + ", ".join(f"{n} {c:,}" for n, c in zip(labels.names, labels.counts()))


def resume_training(args) -> None:
    given = [f"--{k.replace('_', '-')}" for k in (*RECIPE_OPTIONS, *MODEL_OPTIONS, "init_from", "model", "recipe")
             if getattr(args, k) is not None]
    if given or args.out_dir:
        raise MakemoreError(f"--resume continues a run with its own settings; drop {', '.join(given or ['-o'])}")
    out_dir = Path(args.resume)
    meta = read_meta(out_dir)
    with parallel_job(pick_device(args.device), out_dir) as (parallel, device):
        main = parallel is None or parallel.is_main
        items, labels = recorded_input(meta, args.input, out_dir)
        set_threads(args.threads)
        say(parallel, f"resuming {meta['model']} in {out_dir} from step {meta.get('step', 0):,} on "
                      f"{where(device, parallel)}")
        with training_session(out_dir, meta["model"], args.tensorboard, main) as (should_stop, on_progress):
            control = RunControl(on_progress=on_progress, should_stop=should_stop, on_eval=eval_progress(),
                                 parallel=parallel)
            meta = run_or_explain(lambda: resume(items, out_dir, device=device, control=control, labels=labels),
                                  out_dir, main)
        if main:
            finish_training(args, out_dir, meta)


# ----------------------------------------------------------------------------- eval, models

def cmd_eval(args) -> None:
    try:
        result = load(args).evaluate(on_progress=eval_progress())
    except TrainingDataMissing as e:
        raise MakemoreError(f"{e}{MISSING_HINT}") from None
    report = result.pop("labels", None)
    if args.json:
        extra = {} if report is None else {"labels": asdict(report)}
        print(json.dumps({**{f"{k}_nll": v for k, v in result.items()}, **extra}))
        return
    for part, nll in result.items():
        print(f"{part:<5} {nll:.4f}")
    if report is not None:
        print_label_report(report)


def print_label_report(report) -> None:
    """Per-label NLL and the classification of the split's items, beside the majority label."""
    width = max(5, *(len(name) for name in report.nll))
    print(f"\n{report.part} split by label\n{'label':<{width}}  {'items':>6}  {'nll':>7}")
    for name, nll in report.nll.items():
        print(f"{name:<{width}}  {report.items[name]:>6,}  {nll:>7.4f}")
    print(f"\nclassifying the {report.part} items (Bayes' rule over the labels)")
    print(f"{'':<28}{'accuracy':>9}  {'macro-F1':>8}")
    print(f"{'this model':<28}{report.accuracy:>9.4f}  {report.macro_f1:>8.4f}")
    print(f"{'majority label (' + report.baseline_label + ')':<28}{report.baseline_accuracy:>9.4f}  "
          f"{report.baseline_macro_f1:>8.4f}")


def cmd_models(args) -> None:
    print(f"{'model':<14} {'params':>7}  {'recipes':<12} mechanism")
    for name, spec in MODELS.items():
        if spec.made_by != "train":  # made from trained runs by its own command, not by train
            print(f"{name:<14} {'-':>7}  {'-':<12} {spec.mechanism} (made by makemore {spec.made_by})")
            continue
        params = sum(p.numel() for p in build_model(name).parameters())
        print(f"{name:<14} {params:>7,}  {','.join(PRESETS.get(name, {})):<12} {spec.mechanism}")


# ----------------------------------------------------------------------------- parsers

TRAIN_EPILOG = """examples:
  makemore train -i my_names.txt -o runs/mine                     # --model auto: the best for the list's size
  makemore train -i my_names.txt --init-from names -o runs/mine-ft  # start from a wavenet that knows names.txt
  makemore train -i names --model wavenet -o runs/wavenet
  makemore train -i words.txt --model mlp --n-hidden 300 --steps 50000 -o runs/words-mlp
  makemore train --config mlp.toml --lr 0.003      # TOML options, overridden here
  makemore train --resume runs/wavenet              # after Ctrl-C or a kill
  makemore train -i girls.txt -i boys.txt --model transformer -o runs/styles    # labels girls, boys
  makemore train -i names.csv --item-column name --label-column sex -o runs/by-sex

Ctrl-C or SIGTERM stops after the current step and saves a resume point."""


def add_parsers(sub) -> None:
    """Add `train`, `eval` and `models` to the subparsers of the `makemore` parser."""
    add_train_parser(sub)
    p = sub.add_parser("eval", help="train/val/test NLL of a run", formatter_class=FMT,
                       description="Recompute a run's train/val/test NLL on the split it was trained with. For a "
                                   "labelled run, also the test NLL of each label, and the accuracy and macro-F1 of "
                                   "classifying the test items by Bayes' rule, beside always answering the majority label.",
                       epilog="example:\n  makemore eval runs/wavenet")
    p.add_argument("run_dir", help="run directory written by makemore train")
    p.add_argument("-i", "--input", action="append", metavar="[LABEL=]FILE",
                   help="the training file, if it moved since training (a labelled run: each of its inputs, in order)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_common(p)
    p.set_defaults(func=cmd_eval)


def add_models_parser(sub) -> None:
    p = sub.add_parser("models", help="list the registered models", formatter_class=FMT,
                       description="List every registered model with its parameter count at default size and its recipes.",
                       epilog="example:\n  makemore models")
    p.set_defaults(func=cmd_models)


def own_recipes() -> str:
    """The presets beyond fast and essay, by model: "transformer: random-batches; wavenet: long-context"."""
    own = {m: [r for r in presets if r not in ("fast", "essay")] for m, presets in PRESETS.items()}
    return "; ".join(f"{m}: {', '.join(rs)}" for m, rs in own.items() if rs)


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (by default the best for the list) into a run directory",
                       formatter_class=FMT,
                       description="Train a model on a one-item-per-line file and save it to a run directory "
                                   "(model.safetensors, run.json, metrics.csv, loss.png). Without --model (auto), "
                                   "the models that suit the list's size are trained within --budget and the best "
                                   "on val kept (or their mixture); each recipe is sized to the list (fewer, smaller "
                                   "steps, more weight decay, early stopping on val for a small one). The run keeps "
                                   "the weights of its best val check. Prints train/val/test NLL of those weights.",
                       epilog=TRAIN_EPILOG)
    p.add_argument("-i", "--input", action="append", metavar="[LABEL=]FILE",
                   help="text file with one item per line, or 'names' for the essay's dataset. Give -i several times "
                        "for one model over several lists, each labelled by its file's stem (girls.txt: "
                        "girls) or by LABEL=FILE; a .csv/.tsv table takes --item-column (and --label-column)")
    p.add_argument("--item-column", metavar="NAME", help="the column of a .csv/.tsv input that holds the items (header row required)")
    p.add_argument("--label-column", metavar="NAME", help="the column of a .csv/.tsv input that holds each row's label")
    p.add_argument("--model", default=None, choices=["auto", *trainable_models()], metavar="NAME",
                   help=f"model to train: auto (the default: the models that suit the list's size, trained within "
                        f"--budget, the best on val kept, or their val-fitted mixture), or one of "
                        f"{', '.join(trainable_models())}; given one model's options (--steps, --n-embd, --recipe...) "
                        f"without --model: {SINGLE_MODEL}")
    p.add_argument("--budget", type=checked("budget"), default=60.0, metavar="SECONDS",
                   help="--model auto: seconds of training for all its candidates together (default: 60)")
    p.add_argument("--init-from", metavar="RUN_DIR",
                   help="start from a trained run's model and weights (fine-tuning; its `finetune` recipe unless "
                        "--recipe says otherwise): the vocabulary is this list's, shared characters keep their "
                        "learned rows. 'names': a base trained on names.txt for --model (wavenet for auto), "
                        "trained once and kept in the cache folder")
    p.add_argument("-o", "--out-dir", help="run directory to write")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run exactly where it stopped (its own settings)")
    p.add_argument("--config", metavar="FILE.toml", help="options from a TOML file (keys: option names, e.g. "
                                                          "model = \"mlp\", steps = 5000); command-line options override it")
    p.add_argument("--recipe", default=None, help="named training recipe, sized to the list: fast (default), "
                   "finetune (default with --init-from: fast at 0.3x the learning rate), essay (the lecture's batch-32 SGD), or one of "
                   f"a model's own ({own_recipes()}); recipes.py says what each is")
    p.add_argument("--seed", type=checked("seed"), default=42, help="seed for initial weights and batch order (default: 42)")
    p.add_argument("--split-seed", type=checked("split_seed"), default=42,
                   help="seed of the shuffle before the 80/10/10 split (default: 42)")
    add_recipe_options(p)
    p.add_argument("--tensorboard", action="store_true", help="also log to RUN_DIR/tensorboard (needs the tensorboard package)")
    add_text_options(p)
    add_dedupe_option(p)
    add_model_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace a run already in the run directory")
    p.add_argument("--no-plot", action="store_true", help="do not draw loss.png")
    add_common(p)
    p.set_defaults(func=cmd_train, subparser=p)


def add_recipe_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=checked("steps"), help="optimisation steps (default: the recipe's)")
    p.add_argument("--batch-size", type=checked("batch_size"), help="examples per step, 0 for full batch (default: the recipe's)")
    p.add_argument("--lr", type=checked("lr"), help="peak learning rate (default: the recipe's)")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), help="optimiser (default: the recipe's)")
    p.add_argument("--schedule", choices=list(SCHEDULES), help="learning-rate schedule (default: the recipe's)")
    p.add_argument("--weight-decay", type=checked("weight_decay"), help="weight decay on matrices (default: the recipe's)")
    p.add_argument("--soft-targets", action=argparse.BooleanOptionalAction,
                   help="train each window on the distribution of what follows its context, not the one next "
                        "character (same loss, less noise; default: the recipe's, on for mlp, mlp-bn, wavenet)")
    p.add_argument("--length-groups", type=checked("length_groups"),
                   help="sequence models: take each pass's items in runs of N batches sorted by length, so a batch "
                        "holds items of about one length and is cut to its longest (weighed by its characters); "
                        "0: random batches padded to the longest item (default: the recipe's)")
    p.add_argument("--eval-interval", type=checked("eval_interval"),
                   help="evaluate val, save a resume point and the best weights "
                        "(best.safetensors) every N steps (default: steps/10; 0: never)")
    p.add_argument("--patience", type=checked("patience"),
                   help="early stopping: stop after N evaluations without a new best val (default: off)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--block-size", type=checked("block_size"), help="context length in characters (default: the model's)")
    p.add_argument("--n-embd", type=checked("n_embd"), help="embedding size (mlp, mlp-bn, wavenet)")
    p.add_argument("--n-hidden", type=checked("n_hidden"), help="hidden units (mlp, mlp-bn, wavenet)")
    p.add_argument("--n-layer", type=checked("n_layer"), help="layers (transformer, rnn, gru, lstm)")
    p.add_argument("--n-head", type=checked("n_head"), help="attention heads per layer (transformer; must divide --n-embd)")
    p.add_argument("--dropout", type=checked("dropout"),
                   help="dropout probability while training, 0 <= P < 1 (transformer, rnn, gru, lstm)")
    p.add_argument("--smoothing", type=checked("smoothing"), help="count added to every bigram (bigram-counts; default 1)")
