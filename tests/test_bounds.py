"""One source of truth for bounds: every option of every command is refused by the CLI exactly when the
library entry point that takes the same parameter refuses it.

The CLI side runs the real command as a user would, on a missing input: an accepted value goes on
and fails on the missing file, a refused one stops first with the option named. The library side
calls the library function a Python user would call with that parameter.
"""

from __future__ import annotations

import argparse
import math

import pytest

from makemore.generation.request import GenerateRequest

from makemore.studies.auto import AutoSpec

from makemore import bounds
from makemore.studies.backprop import compare_hand_and_autograd, gradient_check
from makemore.studies.reproduce import EntryOptions, train_entries
from makemore.cli import build_parser
from makemore.cli.common import cli_message, flag
from makemore.data.items import TextOptions, Vocab
from makemore.studies.batchnorm import single_example_modes
from makemore.studies.diagnostics import InitComparison, diagnose
from makemore.studies.ensemble import fit_members
from makemore.errors import MakemoreError, ParameterError
from makemore.models import build_model
from makemore.training.pipeline import RunSpec
from makemore.generation.request import check_controls

from .generating import generate
from makemore.generation.scoring import top_next_chars
from .generating import most_likely
from makemore.serve.config import ServeConfig
from makemore.training.loop import Recipe

from .conftest import call

MISSING = "/nonexistent/makemore-bounds"
ITEMS = [f"{a}{b}{c}" for a in "abc" for b in "abcd" for c in "ab"]  # 24 short items: enough to split
INTS = ["-2", "-1", "0", "1", "2", "3", "1.5", "1e3", "abc", "nan", "inf", ""]
FLOATS = ["-1", "-0.0", "0", "1e-9", "0.5", "0.95", "0.99", "1", "1.5", "50", "nan", "inf", "-inf", "abc"]
SMALL_INTS = ["-1", "0", "1", "2", "1.5", "abc", "nan"]  # for sizes that cost memory when accepted
SEEDS = ["-1", "0", "42", str(2 ** 64 - 1), str(2 ** 64), str(-(2 ** 63)), str(-(2 ** 63) - 1), "1.5", "abc"]


def tiny_model():
    model = build_model("bigram-counts", vocab_size=3)
    return model, Vocab(("a", "b"))


# The library entry point of each parameter (the function a Python user calls with it), and the values to try.
LIBRARY = {
    "steps": (lambda v: Recipe(steps=v).check(), INTS),
    "batch_size": (lambda v: Recipe(batch_size=v).check(), INTS),
    "lr": (lambda v: Recipe(lr=v).check(), FLOATS),
    "weight_decay": (lambda v: Recipe(weight_decay=v).check(), FLOATS),
    "eval_interval": (lambda v: Recipe(eval_interval=v).check(), INTS),
    "patience": (lambda v: Recipe(patience=v).check(), INTS),
    "length_groups": (lambda v: Recipe(length_groups=v).check(), INTS),
    "min_weight": (lambda v: fit_members([_tiny_member()], _tiny_val(), min_weight=v), FLOATS),
    "jobs": (lambda v: train_entries([], {}, "unused", [], options=EntryOptions(jobs=v)), INTS),  # no entries: only the bound is at work
    "budget": (lambda v: AutoSpec(budget=v), FLOATS + ["86400", "86401"]),
    "seed": (lambda v: RunSpec(model="mlp", recipe=Recipe(), seed=v), SEEDS),
    "split_seed": (lambda v: RunSpec(model="mlp", recipe=Recipe(), split_seed=v), SEEDS),
    "block_size": (lambda v: build_model("mlp", block_size=v), SMALL_INTS + ["1024", "1025"]),
    "n_embd": (lambda v: build_model("mlp", n_embd=v), SMALL_INTS),
    "n_hidden": (lambda v: build_model("mlp", n_hidden=v), SMALL_INTS),
    "n_layer": (lambda v: build_model("gru", n_layer=v, n_hidden=4, n_embd=4), SMALL_INTS),
    "n_head": (lambda v: build_model("transformer", n_head=v, n_embd=2, n_layer=1), SMALL_INTS),
    "dropout": (lambda v: build_model("gru", dropout=v, n_hidden=4, n_embd=4), FLOATS),
    "smoothing": (lambda v: build_model("bigram-counts", smoothing=v), FLOATS),
    "max_item_len": (lambda v: TextOptions(max_item_len=v), INTS),
    "n": (lambda v: check_controls(n=v), INTS + ["1000000", "1000001"]),
    "temperature": (lambda v: check_controls(temperature=v), FLOATS),
    "top_k": (lambda v: check_controls(top_k=v), INTS),
    "top_p": (lambda v: check_controls(top_p=v), FLOATS),
    "min_len": (lambda v: check_controls(min_len=v), INTS + ["100000", "100001"]),
    "max_len": (lambda v: check_controls(max_len=v), INTS + ["100000", "100001"]),
    "k": (lambda v: top_next_chars(*tiny_model(), "", k=v), INTS),
    "max_expansions": (lambda v: most_likely(*tiny_model(), 1, max_len=2, max_expansions=v),
                       INTS + ["10000000", "10000001"]),
    "min_log_prob": (lambda v: GenerateRequest(min_log_prob=v).check(), FLOATS + ["-50", "1e-9"]),
    "max_nll_per_char": (lambda v: GenerateRequest(max_nll_per_char=v).check(), FLOATS),
    "port": (lambda v: ServeConfig(port=v), INTS + ["65535", "65536"]),
    "workers": (lambda v: ServeConfig(workers=v), INTS + ["64", "65"]),
}
# parameters whose meaning (and bound) depends on the command: (command, dest) -> entry point, values
BY_COMMAND = {
    ("diagnose", "batch_size"): (lambda v: diagnose(ITEMS, batch_size=v, steps=1), INTS + ["65536", "65537"]),
    ("diagnose", "steps"): (lambda v: diagnose(ITEMS, steps=v), ["-1", "0", "1.5", "abc", "nan"]),
    ("diagnose", "compare_steps"): (lambda v: InitComparison(steps=v), ["-1", "0", "1.5", "abc"]),
    ("backprop", "batch_size"): (lambda v: gradient_check(ITEMS, batch_size=v), INTS),
    ("backprop", "steps"): (lambda v: compare_hand_and_autograd(ITEMS, steps=v), ["-1", "0", "1.5", "abc", "nan"]),
    ("backprop", "lr"): (lambda v: compare_hand_and_autograd(ITEMS, steps=1, lr=v), FLOATS),
    ("backprop", "seed"): (lambda v: gradient_check(ITEMS, seed=v, batch_size=2), SEEDS),
    ("backprop", "split_seed"): (lambda v: gradient_check(ITEMS, split_seed=v, batch_size=2), SEEDS),
    ("diagnose", "seed"): (lambda v: diagnose(ITEMS, seed=v, steps=1), SEEDS),
    ("sample", "seed"): (lambda v: generate(*tiny_model(), 1, max_len=2, seed=v), SEEDS),
    ("sample", "most_likely"): (lambda v: most_likely(*tiny_model(), v, max_len=2), INTS + ["100000", "100001"]),
    ("batchnorm", "batch_size"): (None, INTS),  # the batch is cut from the val split by the command: CLI only
    ("batchnorm", "index"): (lambda v: single_example_modes(build_model("mlp-bn"), _batch(), index=v), INTS),
}
CLI_ONLY = {"threads"}  # PyTorch's thread count: set by the command line, no library parameter takes it


def _tiny_member():
    from makemore.studies.ensemble import Member

    return Member("m", build_model("bigram-nn", vocab_size=3).eval(), {})


def _tiny_val():
    import torch

    return torch.zeros((1, 2), dtype=torch.long), torch.tensor([[1, 0]])


def _batch():
    import torch

    return torch.zeros((4, 3), dtype=torch.long)


# how each command is run on a missing input, so that an accepted value fails on that input instead
PREFIX = {
    "train": ["train", "-i", MISSING, "-o", "{tmp}/r"], "eval": ["eval", MISSING], "sample": ["sample", MISSING],
    "score": ["score", MISSING, "emma"], "classify": ["classify", MISSING, "emma"], "next": ["next", MISSING, "em"], "reproduce": ["reproduce", "-i", MISSING, "-o", "{tmp}/r"],
    "leaderboard": ["leaderboard", "-i", MISSING, "-o", "{tmp}/r"], "diagnose": ["diagnose", "-i", MISSING],
    "batchnorm": ["batchnorm", MISSING], "backprop": ["backprop", "-i", MISSING, "--check", "--train"],
    "claims": ["claims", "-i", MISSING], "plot-bigrams": ["plot-bigrams", "-i", MISSING],
    "serve": ["serve", MISSING],  # a missing run is refused before anything is loaded or served
    "ensemble": ["ensemble", MISSING, MISSING, "-o", "{tmp}/r"],
    "export": ["export", MISSING, "-o", "{tmp}/r.html"],
}
MODEL_OF = {"block_size": "mlp", "n_layer": "gru", "n_head": "transformer", "dropout": "gru", "smoothing": "bigram-counts"}


def numeric_options():
    """(command, action) for every option of every command that takes a number."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            if action.option_strings and action.type is not None:
                yield command, action


OPTIONS = [(c, a.dest, a.option_strings[-1], a.type) for c, a in numeric_options()]


def test_every_numeric_option_takes_its_bound_from_the_library():
    assert len(OPTIONS) > 40  # the walk sees the commands
    for command, dest, option, kind in OPTIONS:
        assert hasattr(kind, "bound_key"), f"{command} {option} is parsed without a library bound ({kind})"
        assert kind.bound_key in bounds.BOUNDS
        known = (command, dest) in BY_COMMAND or kind.parameter in LIBRARY or kind.parameter in CLI_ONLY
        assert known, f"{command} {option}: no library entry point in this test; add it to LIBRARY or BY_COMMAND"


def library_refuses(entry, text: str) -> bool:
    value = text
    for convert in (int, float):
        try:
            value = convert(text)
            break
        except ValueError:
            pass
    try:
        entry(value)
    except MakemoreError as e:
        assert "\n" not in str(e)
        return True
    return False


def cli_refuses(command: str, option: str, text: str, dest: str, tmp_path) -> tuple[bool, str]:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in PREFIX[command]]
    if command == "train" and dest != "budget":  # one model's options (auto, the default, takes none of them)
        argv += ["--model", MODEL_OF.get(dest, "wavenet")]
    code, out, err = call(*argv, f"{option}={text}")
    assert code != 0 and out == "" and "Traceback" not in err, err  # the missing input stops it anyway
    refused = "nonexistent" not in err
    return refused, err


@pytest.mark.parametrize("command, dest, option, kind", OPTIONS, ids=[f"{c} {o}" for c, _, o, _ in OPTIONS])
def test_the_cli_and_the_library_refuse_the_same_values(tmp_path, command, dest, option, kind):
    if kind.parameter in CLI_ONLY:
        entry, values = None, INTS + ["1024", "1025"]
    else:
        entry, values = BY_COMMAND.get((command, dest)) or LIBRARY[kind.parameter]
    for text in values:
        refused, err = cli_refuses(command, option, text, dest, tmp_path)
        if refused:
            assert option in err or flag(kind.parameter) in err, err  # says which option
        if entry is not None:
            assert refused == library_refuses(entry, text), f"{command} {option}={text}: CLI {refused}, {err}"
        else:  # no library parameter: the CLI follows the bound itself
            assert refused == _refused_by_bound(kind.bound_key, text), f"{command} {option}={text}"


def _refused_by_bound(key: str, text: str) -> bool:
    try:
        bounds.bound(key).parse("x", text)
    except ParameterError:
        return True
    return False


def test_a_library_error_reads_with_the_flags_on_the_command_line():
    e = ParameterError("min_len", "(5) is greater than max_len (3)", related=("max_len",))
    assert str(e) == "min_len (5) is greater than max_len (3)"
    assert cli_message(e) == "--min-len (5) is greater than --max-len (3)"
    assert cli_message(ParameterError("n", "must be at least 1, got 0")) == "-n must be at least 1, got 0"
    assert cli_message(ParameterError("keys[2]", "is empty")) == "--key 3 is empty"


@pytest.mark.parametrize("call_library, words", [
    (lambda: check_controls(temperature=0.0), "temperature must be greater than 0, got 0"),
    (lambda: Recipe(lr=math.inf).check(), "lr must be a finite number, got inf"),
    (lambda: build_model("transformer", dropout=1.0), "dropout must be in [0, 1), got 1"),
    (lambda: check_controls(top_p=2.0), "top_p must be in (0, 1], got 2"),
])
def test_library_errors_name_the_parameter_not_a_flag(call_library, words):
    with pytest.raises(ParameterError) as e:
        call_library()
    assert str(e.value) == words and "--" not in str(e.value)
