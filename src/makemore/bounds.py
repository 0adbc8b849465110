"""Every numeric parameter's bounds, in one table: the library checks them, and the CLI parses with them.

A `Bound` says which numbers a parameter may take. The library's dataclasses and
entry points (`Recipe.check`, `build_model`, `sample.check_controls`, ...) call
`check(name, value)`; the command line's argparse types and `--config` TOML values
call `parse(name, text)`, which converts and then runs the very same check. So a
value is refused by the CLI exactly when the library would refuse it, and the
message names the parameter (`temperature must be greater than 0, got 0.0`); the
CLI swaps the name for its flag.

Keys are parameter names; a key "scope.name" holds the bound of `name` where it
means something else (the batch that `diagnose` measures is not a training batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError


@dataclass(frozen=True)
class Bound:
    """The finite numbers of one kind within a range; either end may be open, or absent."""

    kind: type  # int or float
    low: float | None = None  # the smallest value allowed (or the value just below the range, if low_open)
    high: float | None = None  # the largest value allowed (or just above it, if high_open)
    low_open: bool = False  # True: the value must be greater than `low`, not equal to it
    high_open: bool = False  # True: the value must be less than `high`
    why: str = ""  # the reason for the bound, said after the rule in errors ("batch norm needs two examples")

    def describe(self) -> str:
        """The rule in words, as the error messages say it."""
        rule = self._rule()
        return f"{rule} ({self.why})" if self.why else rule

    def _rule(self) -> str:
        if self.low is not None and self.high is not None:
            if not self.low_open and not self.high_open:
                return f"must be between {_num(self.low)} and {_num(self.high)}"
            return (f"must be in {'(' if self.low_open else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"must be {'greater than' if self.low_open else 'at least'} {_num(self.low)}"
        if self.high is not None:
            return f"must be {'less than' if self.high_open else 'at most'} {_num(self.high)}"
        return "must be a finite number"

    def check(self, name: str, value: Any) -> Any:
        """`value` if it is within bounds, else ParameterError naming `name`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(name, f"must be {_what(self.kind)}, got {value!r}")
        if self.kind is int and not isinstance(value, int):
            if not (math.isfinite(value) and value == int(value)):
                raise ParameterError(name, f"must be {_what(int)}, got {value!r}")
            value = int(value)
        if not isinstance(value, int) and not math.isfinite(value):  # an int is finite (and may not fit a float)
            raise ParameterError(name, f"must be a finite number, got {value}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise ParameterError(name, f"{self.describe()}, got {_num(value)}")
        return value

    def parse(self, name: str, text: str) -> Any:
        """A value typed as text (a flag, a TOML value), converted to `kind` and checked."""
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            try:  # "1e3" or TOML's 1000.0 is a whole number written as a float: what check() accepts too
                value = float(text)
            except (TypeError, ValueError):
                raise ParameterError(name, f"must be {_what(self.kind)}, got {text!r}") from None
        return self.check(name, value)


def _what(kind: type) -> str:
    return "a whole number" if kind is int else "a number"


def _num(x: float) -> str:
    """1000000 -> 1,000,000; 0.95 -> 0.95 (how a bound or a value is shown); 10**400 -> a number of 401 digits."""
    if isinstance(x, int) and abs(x) >= 10 ** 30:  # JSON and the command line allow any length: say how long
        return f"a number of {len(str(abs(x))):,} digits"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 2 ** 53):
        return f"{int(x):,}"
    return f"{x:g}"


MAX_SAMPLES = 1_000_000  # most items one sampling call may ask for
MAX_LEN = 100_000  # longest item one sampling call may ask for, in characters
MAX_BLOCK_SIZE = 1024  # characters of context; far beyond any item a character model is for
MAX_THREADS = 1024  # CPU threads PyTorch may be asked to use
MAX_MOST_LIKELY = 100_000  # most items one most-likely search may rank (each one a search result held in memory)
MAX_EXPANSIONS = 10_000_000  # most prefixes one most-likely search may expand (its frontier grows with them)
MAX_REQUEST_ITEMS = 1_000  # most items one request to `makemore serve` may ask for or send
MAX_REQUEST_EXPANSIONS = 100_000  # most prefixes one most-likely request to `makemore serve` may expand (seconds)
MAX_AVOID = 1_000_000  # most entries one avoid list may hold (each a few bytes in the automaton)
MAX_KEYS = MAX_SAMPLES  # most keys one sampling call may take (one item each)
MAX_REQUEST_AVOID = 10_000  # most avoid (and exclude) entries one request to `makemore serve` may send
MAX_REQUEST_KEYS = 1_000  # most keys one request to `makemore serve` may send
MAX_REQUEST_CHARS = 1_000  # longest string (prefix, item) and item one request to `makemore serve` may ask for

BOUNDS: dict[str, Bound] = {
    # training (Recipe)
    "steps": Bound(int, 1),
    "batch_size": Bound(int, 0),  # 0: the whole training set (full batch)
    "lr": Bound(float, 0, low_open=True),
    "weight_decay": Bound(float, 0),
    "momentum": Bound(float, 0),
    "min_lr_ratio": Bound(float, 0),
    "warmup_steps": Bound(int, 0),
    "length_groups": Bound(int, 0),  # 0: random batches
    "eval_interval": Bound(int, 0),  # 0: never
    "patience": Bound(int, 0),  # 0: no early stopping
    "budget": Bound(float, 1, 86_400),  # seconds `--model auto` may train its candidates for
    # seeds: what PyTorch's 64-bit generators take
    "seed": Bound(int, -(2 ** 63), 2 ** 64 - 1),
    "split_seed": Bound(int, -(2 ** 63), 2 ** 64 - 1),
    # model configs
    "vocab_size": Bound(int, 1),
    "block_size": Bound(int, 1, MAX_BLOCK_SIZE),
    "n_embd": Bound(int, 1),
    "n_hidden": Bound(int, 1),
    "n_layer": Bound(int, 1),
    "n_layers": Bound(int, 1),
    "n_head": Bound(int, 1),
    "dropout": Bound(float, 0, 1, high_open=True),  # 1 would zero every activation
    "smoothing": Bound(float, 0, low_open=True),  # bigram-counts' pseudo-count (ngram's smoothing is a name)
    # reading items
    "max_item_len": Bound(int, 1),
    # sampling and scoring
    "n": Bound(int, 1, MAX_SAMPLES),
    "temperature": Bound(float, 0, low_open=True),
    "top_k": Bound(int, 1),
    "top_p": Bound(float, 0, 1, low_open=True),
    "min_len": Bound(int, 0, MAX_LEN),
    "max_len": Bound(int, 1, MAX_LEN),
    "next.k": Bound(int, 1),  # how many next characters `next` shows
    "max_draws": Bound(int, 1),  # items a request with rules (suffix, contains, avoid, ...) may draw before giving up
    "min_log_prob": Bound(float, None, 0),  # an item's log-probability is at most 0
    "max_nll_per_char": Bound(float, 0),  # NLL per character is at least 0
    "avoid.count": Bound(int, 0, MAX_AVOID),  # entries of one avoid list
    "exclude.count": Bound(int, 0, MAX_AVOID),  # items of one exclude list
    "keys.count": Bound(int, 0, MAX_KEYS),  # keys of one request
    "most_likely.n": Bound(int, 1, MAX_MOST_LIKELY),  # how many of the most likely items the search ranks
    "max_expansions": Bound(int, 1, MAX_EXPANSIONS),  # prefixes the most-likely search may expand
    # makemore ensemble: members under this share of the mixture are dropped
    "min_weight": Bound(float, 0, 1, high_open=True),
    # machine
    "threads": Bound(int, 1, MAX_THREADS),
    "jobs": Bound(int, 1, MAX_THREADS),  # runs trained at once, each in its own process (makemore.training.parallel_runs)
    # makemore serve: the TCP port, and what one request may ask of a shared server (its time is everyone's)
    "port": Bound(int, 1, 65_535),
    "workers": Bound(int, 1, 64),  # model calls at once
    "serve.n": Bound(int, 1, MAX_REQUEST_ITEMS),
    "serve.min_len": Bound(int, 0, MAX_REQUEST_CHARS),
    "serve.max_len": Bound(int, 1, MAX_REQUEST_CHARS),
    "serve.k": Bound(int, 1, MAX_REQUEST_CHARS),
    "serve.max_expansions": Bound(int, 1, MAX_REQUEST_EXPANSIONS),
    "serve.avoid.count": Bound(int, 0, MAX_REQUEST_AVOID),
    "serve.exclude.count": Bound(int, 0, MAX_REQUEST_AVOID),
    "serve.keys.count": Bound(int, 0, MAX_REQUEST_KEYS),
    # the essay's studies
    "diagnose.batch_size": Bound(int, 1, 65_536),  # the batch diagnose looks at, at once
    "batchnorm.batch_size": Bound(int, 1),  # the val batch the batchnorm study forwards
    "backprop.batch_size": Bound(int, 2, why="batch norm needs two examples"),
    "index": Bound(int, 0),  # which example of a batch (batchnorm)
}


def bound(key: str) -> Bound:
    """The bound of a parameter ("name" or "scope.name")."""
    return BOUNDS[key]


def check(name: str, value: Any, key: str | None = None) -> Any:
    """Check `value` of parameter `name` against BOUNDS[key or name]; the value, as its kind."""
    return BOUNDS[key or name].check(name, value)


def check_optional(name: str, value: Any, key: str | None = None) -> Any:
    """As `check`, with None (the parameter's default is used) always allowed."""
    return None if value is None else check(name, value, key)
