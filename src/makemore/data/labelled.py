"""Training input that may carry labels: several files (one label each), or one table with a label column.

`makemore train -i girls.txt -i boys.txt` trains on both files and remembers which item came from
which, so a model can later be asked for a girl's name or a boy's. An input's label is its file's stem
unless given as LABEL=PATH; a .csv or .tsv table names the column holding its items (`item_column`)
and may name one holding each row's label (`label_column`).

One plain file without a label reads exactly as `read_items` reads it: labels are an addition, never
a change to what an unlabelled run sees. Every bad input is one line of MakemoreError, never a traceback.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .items import MIN_ITEMS, TextOptions, read_items, read_text, refuse_long_items
from ..errors import MakemoreError, ParameterError

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}  # suffix of a table file (any case) -> the separator of its cells
SPEC_FORM = "LABEL=PATH"  # how an input names its label, quoted in messages


@dataclass(frozen=True)
class Source:
    """One input as the user named it: a file (or built-in dataset) and the label asked for, if any."""

    path: str  # the file as given (or a built-in dataset name such as "names")
    label: str | None  # the label given explicitly as LABEL=PATH, else None (the file's stem is used)

    @property
    def label_or_stem(self) -> str:
        """The label this input's items get when several inputs are read: the explicit one, else the stem
        of the path *as given* (so the built-in "names" is labelled "names", whatever file it resolves to)."""
        return self.label if self.label is not None else Path(self.path).stem


def parse_source(spec: str) -> Source:
    """"girl=path/f.txt" -> Source("path/f.txt", "girl"); "f.txt" -> Source("f.txt", None).

    The label ends at the first "=". A spec that names an existing file is a path even if it contains
    "=", so a file called "a=b.txt" still reads as itself.
    """
    if "=" not in spec or os.path.exists(spec):  # os.path.exists: False, not an error, for unreadable names
        return Source(spec, None)
    label, _, path = spec.partition("=")
    if not label.strip() or not path.strip():
        raise MakemoreError(f"input {spec!r} is not of the form {SPEC_FORM}: both a label and a path are needed "
                            f"(and no file called {spec!r} exists)")
    return Source(path, label.strip())


@dataclass
class LabelledItems:
    """The items of every input, and (when labelled) the label of each: what a labelled run trains on."""

    items: list[str]  # every item, in reading order (files in the order given)
    labels: list[int] | None  # per item, its label's index into `names`; None for unlabelled input
    names: list[str]  # label names in order of first appearance; [] when unlabelled
    files: dict[str, list[str]]  # label name -> the files its items came from (as given); {} when unlabelled
    skipped_empty: int = 0  # table rows whose item cell was empty (skipped and counted)

    def counts(self) -> dict[str, int]:
        """Label name -> number of items, in the order of `names`; {} when unlabelled."""
        counts = dict.fromkeys(self.names, 0)
        for index in self.labels or ():
            counts[self.names[index]] += 1
        return counts


@dataclass
class _Table:
    """What one table holds: its items and, when a label column was read, each item's label."""

    items: list[str]  # the non-empty item cells, after TextOptions, in row order
    labels: list[str] | None  # per item, its label cell (stripped); None without a label column
    skipped_empty: int = 0  # rows whose item cell was empty


def is_table(path: str | Path) -> bool:
    """Whether a file is read as a table (by its suffix, in any case) rather than one item per line."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def _read_text(path: Path) -> str:
    """A table's text: the same refusals as `read_items` (missing, directory, pipe, not UTF-8), one line each."""
    return read_text(path, "a .csv or .tsv table with a header row", "the table")


def _parse_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A table's header (cells stripped) and its data rows, each with the file line it ends on.

    Blank lines are no rows. A csv module error (a field over its size limit...) is one line naming the file.
    """
    dialect = csv.excel_tab if TABLE_SUFFIXES[path.suffix.lower()] == "\t" else csv.excel
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), dialect)
    rows = []
    try:
        for row in reader:
            if len(row) > 1 or (row and row[0].strip()):  # a blank line is no row; ",," is one, with empty cells
                rows.append((reader.line_num, row))
    except csv.Error as e:
        raise MakemoreError(f"{path} cannot be read as a table (line {reader.line_num}: {e})") from None
    if not rows:
        raise MakemoreError(f"{path} is empty; a table needs a header row naming its columns, then one row per item")
    header = [cell.strip() for cell in rows[0][1]]
    return header, rows[1:]


def _column(header: list[str], name: str, parameter: str, path: Path) -> int:
    """The index of the column called `name`, or a ParameterError listing the columns there are."""
    if name not in header:
        raise ParameterError(parameter, f"is {name!r}, a column that {path} does not have; "
                                        f"its columns are: {', '.join(header)}")
    return header.index(name)


def _read_table(path: Path, item_column: str | None, label_column: str | None = None,
               options: TextOptions = TextOptions(), on_note: Callable[[str], None] | None = None) -> _Table:
    """The items of a .csv/.tsv table (header row required) and, with `label_column`, each one's label.

    Rows whose item cell is empty are skipped and counted; an item cell holding a line break (a quoted
    field over two lines, or a stray quote that swallowed the rows after it) is refused.
    """
    header, rows = _parse_rows(path)
    if item_column is None:
        raise ParameterError("item_column", f"is needed to read the table {path}; its columns are: {', '.join(header)}")
    at = _column(header, item_column, "item_column", path)
    label_at = None if label_column is None else _column(header, label_column, "label_column", path)
    table, too_long = _Table([], None if label_column is None else []), []
    for line, row in rows:
        if max(at, label_at or 0) >= len(row):
            raise MakemoreError(f"{path} line {line} has {len(row)} cell(s) but the header has {len(header)}; "
                                f"give every row all its cells")
        cell = row[at].removesuffix("\r")
        if not cell.strip():
            table.skipped_empty += 1
            continue
        if "\n" in cell or "\r" in cell:
            raise MakemoreError(f"{path}: the {item_column!r} cell ending on line {line} holds a line break "
                                f"(a quoted cell over several lines, or an unclosed quote); an item is one line")
        item = options.apply(cell)
        if len(item) > options.max_item_len:
            too_long.append(line)
            continue
        if label_at is not None:
            label = row[label_at].strip()
            if not label:
                raise MakemoreError(f"{path} line {line} has an empty {label_column!r} cell; give every row a label")
            table.labels.append(label)
        table.items.append(item)
    refuse_long_items(path, too_long, len(table.items), options, on_note)
    if not table.items:
        why = f"every row's {item_column!r} cell is empty" if table.skipped_empty else "it has a header but no rows"
        raise MakemoreError(f"{path} has no items ({why}); put one item per row")
    return table


def _check_columns(sources: list[Source], paths: list[Path], item_column: str | None, label_column: str | None) -> None:
    """Refuse column parameters that cannot apply: no table among the inputs, or a label column
    alongside other inputs or an explicit label (one table then labels every item by itself)."""
    for parameter, value in (("item_column", item_column), ("label_column", label_column)):
        if value is not None and not any(is_table(p) for p in paths):
            raise ParameterError(parameter, f"only applies to a .csv or .tsv input, and no input is one "
                                            f"({', '.join(s.path for s in sources)})")
    if label_column is None:
        return
    if len(sources) > 1:
        raise ParameterError("label_column", f"reads every label from one table, so that table must be the only "
                                             f"input ({len(sources)} given); without it each input is labelled by its file name")
    if sources[0].label is not None:
        raise ParameterError("label_column", f"reads the labels from the table, so the table cannot also be "
                                             f"labelled {sources[0].label!r} with {SPEC_FORM}")
    if label_column == item_column:
        raise ParameterError("label_column", f"is the same column as item_column ({label_column!r}); "
                                             f"the labels need a column of their own", related=("item_column",))


def _check_distinct_labels(sources: list[Source]) -> None:
    """One input per label: two inputs labelled alike (by stem or explicitly) are refused, not merged."""
    first: dict[str, Source] = {}
    for source in sources:
        label = source.label_or_stem
        if label in first:
            raise MakemoreError(f"two inputs have the label {label!r} ({first[label].path} and {source.path}); "
                                f"name them apart with {SPEC_FORM}")
        first[label] = source


def _check_label_sizes(data: LabelledItems, min_items: int) -> None:
    """Every label is split 80/10/10 on its own, so each needs `min_items`; all the small ones are named at once."""
    small = [f"{name} ({count})" for name, count in data.counts().items() if count < min_items]
    if small:
        raise MakemoreError(f"labels with fewer than {min_items} items cannot be split 80/10/10: "
                            f"{', '.join(small)}; add items or drop those labels")


def _prefixed(on_note: Callable[[str], None] | None, prefix: str) -> Callable[[str], None] | None:
    """`on_note` with each note led by the file it is about: with several inputs, "skipped 3 items" needs a name."""
    if on_note is None:
        return None
    return lambda text: on_note(f"{prefix}: {text}")


def _by_input(sources: list[Source], paths: list[Path], options: TextOptions, item_column: str | None,
              on_note: Callable[[str], None] | None) -> LabelledItems:
    """Each input's items under that input's label (explicit, else its stem), inputs in the order given."""
    _check_distinct_labels(sources)
    data = LabelledItems([], [], [], {})
    for source, path in zip(sources, paths):
        note = on_note if len(sources) == 1 else _prefixed(on_note, source.path)
        if is_table(path):
            table = _read_table(path, item_column, None, options, note)
            items, data.skipped_empty = table.items, data.skipped_empty + table.skipped_empty
        else:
            items = read_items(path, options, note)
        data.names.append(source.label_or_stem)
        data.files[source.label_or_stem] = [source.path]
        data.items += items
        data.labels += [len(data.names) - 1] * len(items)
    return data


def read_labelled(specs: list[str], *, resolve: Callable[[str], Path] = Path, options: TextOptions = TextOptions(),
                  item_column: str | None = None, label_column: str | None = None,
                  on_note: Callable[[str], None] | None = None, min_items: int = MIN_ITEMS) -> LabelledItems:
    """Read training input given as specs (PATH or LABEL=PATH), with labels when it carries them.

    One plain file is unlabelled, exactly `read_items`; one table is unlabelled without `label_column`.
    Several inputs, or an explicit label, label each input's items by the input; a table's `label_column`
    labels each row. `resolve` maps a given path to a file (the CLI's finds built-in datasets such as
    "names"). Labelled input needs `min_items` items under every label, so each can be split.
    """
    sources = [parse_source(spec) for spec in specs]
    if not sources:
        raise MakemoreError("no input given; give at least one file of items")
    paths = [Path(resolve(source.path)) for source in sources]
    _check_columns(sources, paths, item_column, label_column)
    only, path = sources[0], paths[0]
    if len(sources) == 1 and only.label is None:
        if not is_table(path):
            return LabelledItems(read_items(path, options, on_note), None, [], {})
        table = _read_table(path, item_column, label_column, options, on_note)
        if table.labels is None:
            return LabelledItems(table.items, None, [], {}, table.skipped_empty)
        names = list(dict.fromkeys(table.labels))
        index = {name: i for i, name in enumerate(names)}
        data = LabelledItems(table.items, [index[label] for label in table.labels], names,
                             {name: [only.path] for name in names}, table.skipped_empty)
    else:
        data = _by_input(sources, paths, options, item_column, on_note)
    _check_label_sizes(data, min_items)
    return data
