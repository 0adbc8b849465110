"""What every command shares: argument types, flags, stderr logging, loading input files and runs.

The command modules (training, studies, generation) import this module and the
library; this module imports only the library. stdout carries only results, so
output pipes cleanly; messages go to stderr, the progress bar only to a terminal.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import safetensors
import torch
from tqdm import tqdm

from .. import __version__
from ..bounds import bound
from ..training.run_folder import META
from ..data.items import (MAX_ITEM_LEN, MIN_ITEMS, TextOptions, Vocab, check_splittable, drop_duplicates, duplicate_figures,
                    read_items)
from ..data.builtin import locate_input, sha256_of
from ..data.atomic import json_text
from ..trained import Run
from ..training.recorded import TrainingDataMissing, drop_labelled_duplicates
from ..training.recorded import recorded_input as library_recorded_input
from ..errors import MakemoreError, ParameterError
from ..data.labels import ItemLabels
from ..data.labelled import is_table, parse_source, read_labelled

FMT = argparse.RawDescriptionHelpFormatter

# ----------------------------------------------------------------------------- flags

# The library's parameter names whose flag is not simply "--" + name with "_" as "-". Every message a
# ParameterError carries reaches a CLI user through `flag` (so "top_p must be..." reads "--top-p must be...").
FLAG_OF = {"n": "-n", "k": "-k", "path": "-i", "items": "ITEM", "keys": "--key", "avoid": "--avoid"}


def flag(parameter: str) -> str:
    """The command-line flag of a library parameter: "batch_size" -> "--batch-size"; "items[1]" -> "ITEM 2"."""
    indexed = re.fullmatch(r"(\w+)\[(\d+)\]", parameter)
    if indexed:
        return f"{flag(indexed[1])} {int(indexed[2]) + 1}"
    return FLAG_OF.get(parameter, "--" + parameter.replace("_", "-"))


def cli_message(error: MakemoreError) -> str:
    """An error as a CLI user should read it: a ParameterError names flags, not Python parameters."""
    if not isinstance(error, ParameterError):
        return str(error)
    problem = error.problem
    for name in error.related:
        problem = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag(name), problem)
    return f"{flag(error.parameter)} {problem}"


def checked(name: str, key: str | None = None, *, words: tuple[str, ...] = ()) -> Callable[[str], Any]:
    """An argparse type for a library parameter: converted and checked by its bound in `bounds.BOUNDS`.

    The same check the library runs on the value, so the CLI refuses exactly what the library refuses.
    `key` picks another bound than the parameter's own name ("diagnose.batch_size"); `words` are taken
    as they are, for the command line to resolve ("auto").
    """
    rule = bound(key or name)

    def parse(text: str):
        if text in words:
            return text
        try:
            return rule.parse(name, text)
        except ParameterError as e:
            raise argparse.ArgumentTypeError(e.problem) from None

    parse.parameter, parse.bound_key = name, key or name  # for the tests that walk every option
    return parse


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line in makemore's own form (exit code 2, as argparse's)."""

    def error(self, message: str):
        command = self.prog.split(" ", 1)[1] + ": " if " " in self.prog else ""
        self.exit(2, f"makemore: error: {command}{message} (see {self.prog} --help)\n")


def wrap(text: str) -> str:
    """Paragraphs filled to 100 columns (RawDescriptionHelpFormatter keeps the line breaks as written)."""
    return "\n\n".join(textwrap.fill(par, 100) for par in text.split("\n\n"))


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps (default: auto)")
    p.add_argument("--threads", type=checked("threads"), default=None,
                   help="CPU threads for PyTorch (default: PyTorch's choice)")


def add_text_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lowercase", action="store_true", help="lower-case every item (recorded in run.json; default: keep case)")
    p.add_argument("--nfc", action="store_true", help="Unicode NFC-normalise every item (recorded in run.json; default: as is)")
    p.add_argument("--max-item-len", type=checked("max_item_len"), default=None,
                   help="longest item accepted, in characters (default: 1000); longer ones are refused, see --skip-long")
    p.add_argument("--skip-long", action="store_true", help="skip items over --max-item-len (and say how many) instead of refusing the file")


def text_options(args) -> TextOptions:
    return TextOptions(lowercase=getattr(args, "lowercase", False), nfc=getattr(args, "nfc", False),
                       max_item_len=getattr(args, "max_item_len", None) or MAX_ITEM_LEN,
                       skip_long=getattr(args, "skip_long", False))


# ----------------------------------------------------------------------------- stderr

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def progress_callback(label: str):
    """A tqdm bar with the current loss, on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
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


def eval_progress():
    """A tqdm bar per split while a run is evaluated, on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    bars: dict[str, Any] = {}

    def update(part: str, done: int, total: int) -> None:
        bar = bars.get(part)
        if bar is None:
            bar = bars[part] = tqdm(total=total, desc=f"evaluating {part}", file=sys.stderr, leave=False, unit="row")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def set_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(n)


# ----------------------------------------------------------------------------- input files and runs

def resolve_input_file(spec: str) -> Path:
    """A file given with -i: a path, or a built-in dataset found where this environment says."""
    return locate_input(spec, os.environ)


def load_dataset(spec: str, options: TextOptions | None = None, *, dedupe: bool = False,
                 split_seed: int = 42) -> tuple[list[str], dict[str, Any]]:
    """Items of a file or built-in dataset (each once with `dedupe`), and what run.json records about it:
    items read, distinct items, val items also in train (at `split_seed`), repeats dropped."""
    options = options or TextOptions()
    path = resolve_input_file(spec)
    items = read_items(path, options, on_note=lambda note: log(f"note: {note}"))
    read = len(items)
    dropped = None
    if dedupe:
        items, dropped = drop_duplicates(items)
        _check_after_dedupe(len(items), dropped)
    check_splittable(items)
    info = {
        "name": spec if spec == "names" else path.stem,
        "path": str(path.resolve()),
        "sha256": sha256_of(path),
        "items": read,
        **duplicate_figures(items, split_seed),
        **({} if dropped is None else {"duplicates_dropped": dropped}),
        "vocab_size": Vocab.from_items(items).size,
        "text_options": asdict(options),
    }
    return items, info


def load_training_input(specs: list[str] | str, options: TextOptions | None = None, *, dedupe: bool = False,
                        split_seed: int = 42, item_column: str | None = None, label_column: str | None = None
                        ) -> tuple[list[str], ItemLabels | None, dict[str, Any]]:
    """`train`'s input: one plain file exactly as `load_dataset` reads it, or labelled input (several files,
    LABEL=PATH, a table with a label column: `makemore.data.labelled`); its items, their labels (None when
    unlabelled) and what run.json records under "dataset"."""
    specs = [specs] if isinstance(specs, str) else list(specs)
    if len(specs) == 1 and "=" not in specs[0] and not is_table(specs[0]) and item_column is None and label_column is None:
        items, info = load_dataset(specs[0], options, dedupe=dedupe, split_seed=split_seed)
        return items, None, info
    options = options or TextOptions()
    sources = [parse_source(spec) for spec in specs]
    data = read_labelled(specs, resolve=resolve_input_file, options=options, item_column=item_column,
                         label_column=label_column, on_note=lambda note: log(f"note: {note}"))
    read = len(data.items)
    dropped = None
    if dedupe:
        data, dropped = drop_labelled_duplicates(data)
        _check_after_dedupe(len(data.items), dropped)
    check_splittable(data.items)
    labels = None if data.labels is None else ItemLabels(data.labels, data.names, data.files)
    paths = [resolve_input_file(src.path) for src in sources]
    info = {
        "name": "+".join(data.names) if data.names else paths[0].stem,
        "inputs": [{"path": str(path.resolve()), "sha256": sha256_of(path),
                    "label": src.label_or_stem if len(sources) > 1 or src.label is not None else None}
                   for src, path in zip(sources, paths)],
        **({"item_column": item_column} if item_column else {}),
        **({"label_column": label_column} if label_column else {}),
        "items": read,
        **({"skipped_empty": data.skipped_empty} if data.skipped_empty else {}),
        **duplicate_figures(data.items, split_seed, data.labels),
        **({} if dropped is None else {"duplicates_dropped": dropped}),
        "vocab_size": Vocab.from_items(data.items).size,
        "text_options": asdict(options),
    }
    return data.items, labels, info


def _check_after_dedupe(kept: int, dropped: int) -> None:
    if kept < MIN_ITEMS:
        raise MakemoreError(f"only {kept} distinct items after --dedupe dropped {dropped:,} repeats; "
                            f"need at least {MIN_ITEMS} to split into train/val/test (train without --dedupe?)")


def recorded_input(meta: dict, input_specs: list[str] | str | None, run_dir: Path
                   ) -> tuple[list[str], ItemLabels | None]:
    """The items (and labels) a run was trained on, from the files it records or the ones given with -i
    (the library's `recorded_input`); a one-line error with the -i hint when they cannot be found."""
    specs = [input_specs] if isinstance(input_specs, str) else input_specs
    try:
        return library_recorded_input(meta, run_dir, specs, resolve_input_file)
    except TrainingDataMissing as e:
        raise MakemoreError(f"{e}{MISSING_HINT}") from None


def add_dedupe_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dedupe", action="store_true",
                   help="keep only the first occurrence of each item, before the split (recorded in run.json; "
                        "default: keep repeats, as the essay does)")


def refuse_existing_run(out_dir: Path, overwrite: bool) -> None:
    if (out_dir / META).exists() and not overwrite:
        raise MakemoreError(f"{out_dir} already holds a run; choose another -o or pass --overwrite to replace it")


def provenance(argv: list[str]) -> dict[str, Any]:
    """How this run was made: the command line and the library versions."""
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
    source = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- the commands that ask a run

MISSING_HINT = "; pass the training file with -i FILE"  # what a CLI user can do when a run's training file moved


def load(args) -> Run:
    """The run of args.run_dir on --device (its training files: the recorded ones, or -i's), --threads set."""
    inputs = getattr(args, "input", None)
    try:
        run = Run.load(args.run_dir, args.device, inputs=[inputs] if isinstance(inputs, str) else inputs,
                       resolve=resolve_input_file)
    except MakemoreError as e:  # the library says "resume the run"; the command line says how
        if "resume the run" in str(e):
            raise MakemoreError(f"{e} (makemore train --resume {args.run_dir})") from None
        raise
    set_threads(args.threads)
    return run


def write_lines(lines) -> None:
    out = sys.stdout
    for line in lines:
        out.write(line)
        out.write("\n")
    out.flush()


def write_json(payload: dict) -> None:
    sys.stdout.write(json_text(payload, indent=1))


def read_items_to_score(args) -> list[str]:
    """The items after RUN_DIR, or one per line on standard input (blank lines skipped, as in training files)."""
    if args.items:
        return list(args.items)
    if sys.stdin is None or sys.stdin.isatty():
        raise MakemoreError("give the items to score after RUN_DIR, or one per line on standard input")
    try:
        raw = [line.rstrip("\n").removesuffix("\r") for line in sys.stdin]
    except UnicodeDecodeError as e:
        raise MakemoreError(f"standard input is not UTF-8 text (bad byte 0x{e.object[e.start]:02x}); "
                            f"re-save it as UTF-8") from None
    if raw:
        raw[0] = raw[0].removeprefix("\ufeff")  # a byte-order mark is not part of the first item, as in files
    raw = [line for line in raw if line.strip()]
    if not raw:
        raise MakemoreError("no items to score: standard input was empty")
    return raw
