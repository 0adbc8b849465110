"""`sample`'s options for names you can ship: --avoid, --exclude, --unique, --key/--keys, --blend and the
thresholds. They parse files and strings into the request's fields; the rules themselves are the library's
(`makemore.generation.rules`, `avoid`, `keys`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..data.items import read_text
from ..errors import MakemoreError
from ..generation.request import parse_blend
from .common import checked

LIST_SUFFIXES = (".txt", ".csv", ".tsv", ".lst", ".list")  # an --avoid value ending so is meant as a file


class KeySource(argparse.Action):
    """--key and --keys append to one list, each value tagged by its option, so that keys keep the order given."""

    def __call__(self, parser, namespace, value, option_string=None):
        sources = list(getattr(namespace, self.dest, None) or [])
        sources.append(("file" if option_string == "--keys" else "key", value))
        setattr(namespace, self.dest, sources)


def read_list(path: Path, what: str, strip: bool = False) -> list[str]:
    """The non-blank lines of a UTF-8 file (line ends dropped; with strip, surrounding spaces too)."""
    lines = read_text(path, f"a text file with one {what} per line", f"the {what}s").splitlines()
    return [line.strip() if strip else line for line in lines if line.strip()]


def avoid_entries(values: list[str] | None) -> tuple[str, ...]:
    """--avoid's entries: each value an existing file (one entry per line) or else the entry itself. A value that
    looks like a file name but names none is refused, rather than avoided as a string."""
    entries: list[str] = []
    for value in values or []:
        path = Path(value)
        if path.is_file():
            entries += read_list(path, "entry", strip=True)
        elif "/" in value or value.lower().endswith(LIST_SUFFIXES):
            raise MakemoreError(f"--avoid {value}: no such file (give an existing file with one entry per line, or "
                                f"a string to avoid)")
        else:
            entries.append(value)
    return tuple(entries)


def request_fields(args) -> dict[str, Any]:
    """The request fields of --avoid, --exclude, --unique, --key/--keys, --blend, --min-log-prob, --max-nll-per-char."""
    exclude = [item for path in args.exclude or [] for item in read_list(Path(path), "item")]
    keys = [key for kind, value in args.key_sources or []
            for key in ([value] if kind == "key" else read_list(Path(value), "key"))]  # in the order given
    return {"avoid": avoid_entries(args.avoid), "exclude": tuple(exclude), "unique": args.unique, "keys": tuple(keys),
            "blend": parse_blend(args.blend) if args.blend else (), "min_log_prob": args.min_log_prob,
            "max_nll_per_char": args.max_nll_per_char}


def add_options(p) -> None:
    """Add the shipping options to `sample`'s parser."""
    g = p.add_argument_group("names you can ship")
    g.add_argument("--avoid", action="append", metavar="WORDS",
                   help="no item contains any of these as a substring (case-folded, after the run's --lowercase/--nfc): "
                        "a file with one entry per line, or a string; repeat it for more. Exact: the items are the "
                        "model's, given that they avoid every entry")
    g.add_argument("--exclude", action="append", metavar="FILE",
                   help="never return these items (one per line: names taken, a previous batch); with --novel, on top "
                        "of the training items; repeatable")
    g.add_argument("--unique", action="store_true", help="no item twice in the output (--novel implies it)")
    g.add_argument("--key", action=KeySource, dest="key_sources", metavar="KEY",
                   help="one item per key, printed as KEY<TAB>item: the same key gives the same item whatever the other "
                        "keys, their order or the batch size (-n does not apply; the seed does, 0 by default). With "
                        "--unique, keys in code-point order keep their first item that no earlier key holds; repeatable")
    g.add_argument("--keys", action=KeySource, dest="key_sources", metavar="FILE",
                   help="keys from a file, one per line (as --key; with --key, in the order given)")
    g.add_argument("--blend", metavar="LABEL=W,...",
                   help="a labelled run: draw each next character from the weighted mixture of these labels' "
                        "distributions, a style in between (e.g. girls=0.5,boys=0.5; weights are scaled to sum to 1)")
    g.add_argument("--min-log-prob", type=checked("min_log_prob"), metavar="X",
                   help="keep only items with a log-probability of at least X under the model (a filter: it changes "
                        "the distribution, towards likely items)")
    g.add_argument("--max-nll-per-char", type=checked("max_nll_per_char"), metavar="X",
                   help="keep only items whose NLL per character (-log_prob / (length + 1)) is at most X (a filter, as "
                        "--min-log-prob)")


__all__ = ["add_options", "request_fields", "avoid_entries", "read_list"]
