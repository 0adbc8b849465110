"""The `makemore` command: a thin layer that parses, calls one library function, and formats.

    __init__   main(): the parser of every command, TOML defaults, errors -> exit codes
    common     what every command shares: argument types from the library's bounds, flags,
               stderr logging, loading input files and runs
    config     --config FILE.toml, checked like the options typed as flags
    training   train (and --resume), eval, models
    generation sample, score, next, plot-bigrams
    classify   classify (a labelled run's labels, by Bayes' rule)
    ensemble   ensemble (trained runs mixed into one run)
    studies    reproduce, leaderboard, diagnose, batchnorm, backprop, claims
    export     export (a run as a page, a JavaScript module or ONNX)
    shipping   sample's --avoid, --exclude, --unique, --key/--keys, --blend, thresholds

Imports run one way: this module -> command modules -> common/config -> the library.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..data.atomic import disk_hint
from ..errors import MakemoreError
from . import classify, ensemble, export, generation, serve, studies, training
from .common import FMT, Parser, cli_message, log
from .config import apply_config_file

DESCRIPTION = "Train character-level language models on a one-item-per-line file and make more things like it."
EPILOG = ("example:\n  makemore reproduce -o runs/essay\n  makemore train -i names --model mlp -o runs/mlp\n"
          "  makemore sample runs/mlp -n 20")
OUT_OF_MEMORY = ("out of memory; ask for less: a smaller model (--n-embd, --n-hidden, --block-size), "
                 "a smaller --batch-size, fewer items (-n) or a shorter --max-len")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: each command module adds its own subcommands, in the order --help lists them."""
    parser = Parser(prog="makemore", description=DESCRIPTION, formatter_class=FMT, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"makemore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    training.add_parsers(sub)
    generation.add_parsers(sub)
    classify.add_parsers(sub)
    ensemble.add_parsers(sub)
    studies.add_parsers(sub)
    serve.add_parsers(sub)
    export.add_parsers(sub)
    training.add_models_parser(sub)
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
    """Run one command; the exit code: 0 done, 1 refused (one line on stderr), 2 a usage error, 130 interrupted."""
    # cuBLAS reads this when CUDA starts: with it, same seed, same bits on a GPU too (device.make_reproducible)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parse(parser, argv)
    if getattr(args, "config", None):
        try:  # TOML values become the subcommand's defaults; options on the command line still win
            apply_config_file(args.subparser, args.config)
        except MakemoreError as e:
            log(f"makemore: error: {cli_message(e)}")
            return 1
        args = parse(parser, argv)
    args.argv = list(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Call the command; what the user did wrong or the machine refused becomes one line and an exit code."""
    try:
        args.func(args)
    except MakemoreError as e:
        log(f"makemore: error: {cli_message(e)}")
        return 1
    except KeyboardInterrupt:
        log("makemore: interrupted")
        return 130
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not an error
        sys.stderr.close()
        return 0
    except UnicodeEncodeError as e:
        log(f"makemore: error: cannot write {e.object[e.start]!r}: the output's encoding ({e.encoding}) has no such "
            f"character; use a UTF-8 locale or set PYTHONIOENCODING=utf-8")
        return 1
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and not any(s in str(e) for s in ("can't allocate memory", "out of memory")):
            raise  # not a resource problem: a bug, shown as one
        log(f"makemore: error: {OUT_OF_MEMORY}")
        return 1
    except OSError as e:  # the file system said no (full disk, read-only folder, no permission...)
        where = f"{e.filename}: " if e.filename else ""
        log(f"makemore: error: {where}{e.strerror or e}{disk_hint(e)}")
        return 1
    return 0
