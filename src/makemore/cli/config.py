"""`--config FILE.toml`: options from a TOML file, checked exactly as the same options typed as flags.

Each value goes through the argparse action of its option (the same `checked` types,
so the same bounds as the library's); options on the command line still win.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import MakemoreError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python < 3.11: the same parser, from PyPI
    import tomli as tomllib


def load_config_file(path: str, allowed: set[str]) -> dict[str, Any]:
    """Options from a TOML file, keyed by option name (either `batch_size` or `batch-size`)."""
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
            if isinstance(action, argparse._AppendAction):  # a repeatable option (-i): a string or a list of them
                given = value if isinstance(value, list) else [value]
                if any(isinstance(v, bool) or not isinstance(v, (str, int, float)) for v in given):
                    raise ValueError(f"expected a string or a list of strings, got {value!r}")
                checked[key] = [str(v) for v in given]
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


def apply_config_file(subparser: argparse.ArgumentParser, path: str) -> None:
    """Make the TOML file's values the subcommand's defaults (so flags typed on the command line win)."""
    allowed = {a.dest for a in subparser._actions} - {"help", "config", "func", "subparser"}
    values = load_config_file(path, allowed)
    subparser.set_defaults(**check_config_values(subparser, values, path))


def config_file_record(path: str | None) -> dict:
    """What run.json keeps of the config file: where it was and what it said."""
    if not path:
        return {}
    return {"config_file": {"path": str(Path(path).resolve()), "content": Path(path).read_text(encoding="utf-8")}}
