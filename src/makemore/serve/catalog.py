"""The runs a server offers: found from the folders given, loaded once at startup, referred to by id.

A request never names a file: the set of runs is fixed when the server starts, so the page and
the API can only reach what the person who started it chose to show. A folder given may be
- a run directory (it holds run.json);
- a folder written by `reproduce` or `leaderboard` (results.json / leaderboard.json): its runs, in
  the file's order, and the file's table for the results chart;
- any folder whose subfolders are run directories.
Everything slow (weights, the training file, the training items' own scores for percentiles) is
done here, once; the requests then only call the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ..bounds import MAX_REQUEST_CHARS
from ..training.run_folder import META, load_run, read_meta
from ..data.items import TextOptions, Vocab, read_items
from ..data.builtin import locate_input, sha256_of
from ..errors import MakemoreError
from ..generation.scoring import training_log_probs

RESULT_FILES = ("leaderboard.json", "results.json")  # the tables a folder of runs may come with


@dataclass
class ServedRun:
    """One run as the server holds it: the model in eval mode and what its requests need."""

    id: str  # how requests name it: the folder's name, or "group/name" for a run inside a results folder
    model: nn.Module  # in eval mode, on the serving device
    vocab: Vocab  # the run's characters
    meta: dict[str, Any]  # run.json
    text_options: TextOptions  # how the training file was read: typed prefixes and items get the same (lower-case, NFC)
    items: list[str] | None = None  # every item of the training file (novel, bigram counts); None if not found
    population: list[float] | None = None  # the training-split items' log-probabilities, sorted (percentiles)
    missing: str | None = None  # why items and percentiles are unavailable, when they are
    group: str | None = None  # the name of the folder of runs it came from, if any
    folder: str = ""  # the name of its own folder (a results table's row names it)
    cache: dict[str, Any] = field(default_factory=dict)  # answers computed once (the run never changes)

    @property
    def default_max_len(self) -> int:
        """What `sample` uses when no max_len is asked: twice the longest training item, as the CLI does."""
        return max(1, min(2 * int(self.meta.get("max_item_len", 32)), MAX_REQUEST_CHARS))


@dataclass
class Catalog:
    """Every run served, by id, in the order given, and the results tables of the folders they came from."""

    runs: dict[str, ServedRun] = field(default_factory=dict)  # id -> run
    tables: list[dict[str, Any]] = field(default_factory=list)  # {"name", "kind", "dataset", "rows": [...]}


@dataclass(frozen=True)
class Found:
    """A run directory found among the folders given, before anything is loaded."""

    path: Path  # the run directory
    group: str | None  # the folder of runs it is part of, if any


def find_runs(paths: Sequence[str | Path]) -> tuple[list[Found], list[dict[str, Any]]]:
    """The run directories among `paths` (each checked to hold a run.json), and the results tables found.

    Cheap (run.json is read, no weights): a missing folder is refused here, before anything is loaded.
    """
    found: list[Found] = []
    tables: list[dict[str, Any]] = []
    for given in paths:
        path = Path(given)
        if (path / META).is_file() or not path.is_dir():
            read_meta(path)  # a clear error for a missing folder, a file, a damaged run.json
            found.append(Found(path, None))
            continue
        table = _results_table(path)
        dirs = _table_dirs(path, table) if table else []  # the table's order first, then any other run in it
        dirs += [p for p in sorted(path.iterdir()) if (p / META).is_file() and p not in dirs]
        if not dirs:
            read_meta(path)  # "holds no checkpoint": neither a run nor a folder of runs
        for d in dirs:
            read_meta(d)
            found.append(Found(d, path.name))
        if table:
            tables.append(table)
    return _unique(found), tables


def _results_table(folder: Path) -> dict[str, Any] | None:
    for name in RESULT_FILES:
        if (folder / name).is_file():
            try:
                data = json.loads((folder / name).read_text(encoding="utf-8"))
                rows = list(data["models"])
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
                raise MakemoreError(f"{folder / name} cannot be read ({e}); it was not written by makemore") from None
            return {"name": folder.name, "kind": name.removesuffix(".json"), "folder": folder,
                    "dataset": (data.get("dataset") or {}).get("name"), "rows": rows}
    return None


def _table_dirs(folder: Path, table: dict[str, Any]) -> list[Path]:
    """The run folders of a results table's rows that are there (a row is out/<entry> or out/<model>)."""
    dirs = []
    for row in table["rows"]:
        label = row.get("entry") or row.get("model")
        if isinstance(label, str) and (folder / label / META).is_file():
            dirs.append(folder / label)
    return dirs


def _unique(found: list[Found]) -> list[Found]:
    seen, out = set(), []
    for f in found:
        key = f.path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def run_ids(found: Sequence[Found]) -> list[str]:
    """A short, unique id per run: its folder name ("group/name" inside a folder of runs), "-2", "-3" on clashes."""
    ids: list[str] = []
    for f in found:
        base = f"{f.group}/{f.path.name}" if f.group else f.path.name
        candidate, n = base, 1
        while candidate in ids:
            n += 1
            candidate = f"{base}-{n}"
        ids.append(candidate)
    return ids


def load_catalog(paths: Sequence[str | Path], environ: Mapping[str, str],
                 device: str | torch.device = "cpu") -> Catalog:
    """Every run among `paths`, loaded for serving; `environ` says where built-in datasets are ($MAKEMORE_DATA)."""
    found, tables = find_runs(paths)
    catalog = Catalog()
    for run_id, f in zip(run_ids(found), found):
        catalog.runs[run_id] = load_served_run(run_id, f, environ, device)
    for table in tables:
        catalog.tables.append(_link_rows(table, catalog))
    return catalog


def load_served_run(run_id: str, found: Found, environ: Mapping[str, str],
                    device: str | torch.device = "cpu") -> ServedRun:
    """A run's model (eval mode), its training items and the population its percentiles are taken in."""
    model, vocab, meta = load_run(found.path, device)
    model.eval()  # for good: every request reads the model, none trains it (BatchNorm uses its running statistics)
    try:
        options = TextOptions(**(meta.get("dataset") or {}).get("text_options", {}))
    except (TypeError, MakemoreError):
        options = TextOptions()
    run = ServedRun(run_id, model, vocab, meta, options, group=found.group, folder=found.path.name)
    try:
        run.items = recorded_items(meta, options, environ)
        run.population = training_log_probs(model, vocab, run.items, meta.get("split_seed", 42))
    except MakemoreError as e:
        run.items, run.population, run.missing = None, None, str(e)
    return run


def recorded_items(meta: dict[str, Any], options: TextOptions, environ: Mapping[str, str]) -> list[str]:
    """The items of the file a run was trained on, as recorded in run.json (the file checked by its sha256)."""
    recorded = meta.get("dataset") or {}
    spec = recorded.get("path")
    if not spec:
        raise MakemoreError("the run does not record its training file")
    path = locate_input(spec, environ, download=False)
    if not path.is_file():
        raise MakemoreError(f"{spec}, the run's training file, is not there any more")
    if recorded.get("sha256") and sha256_of(path) != recorded["sha256"]:
        raise MakemoreError(f"{path} is not the file the run was trained on (sha256 differs)")
    return read_items(path, options)


def _link_rows(table: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The table as the page draws it: per row its numbers and the id of the served run it is, if any."""
    by_path = {(r.group, r.folder): r.id for r in catalog.runs.values()}
    rows = []
    for row in table["rows"]:
        label = row.get("entry") or row.get("model")
        rows.append({"label": label, "model": row.get("model"), "params": row.get("params"),
                     "train_nll": row.get("train_nll"), "val_nll": row.get("val_nll"), "test_nll": row.get("test_nll"),
                     "essay_val_nll": row.get("essay_val_nll"), "run": by_path.get((table["name"], label))})
    return {"name": table["name"], "kind": table["kind"], "dataset": table["dataset"], "rows": rows}
