"""The runs a server offers: found from the folders given, loaded once at startup, referred to by id.

A request never names a file: the set of runs is fixed when the server starts, so the page and
the API can only reach what the person who started it chose to show (what a path given may be:
`makemore.training.folders`). Each run is a `Run`, loaded here once with what is slow to find (its
training items, the population its percentiles are taken in); the requests then only ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..bounds import MAX_REQUEST_CHARS
from ..data.builtin import locate_input
from ..errors import MakemoreError
from ..generation.request import default_max_len
from ..trained import Run
from ..training.folders import Found, find_runs, run_ids

__all__ = ["Catalog", "ServedRun", "Found", "find_runs", "run_ids", "load_catalog", "load_served_run"]


@dataclass
class ServedRun:
    """One run as the server holds it: the `Run`, the id requests name it by, and where it came from."""

    id: str  # how requests name it: the folder's name, or "group/name" for a run inside a results folder
    run: Run  # the model in eval mode, on the serving device, and what its questions need
    missing: str | None = None  # why its training items (novel, percentiles, bigram counts) are unavailable
    group: str | None = None  # the name of the folder of runs it came from, if any
    folder: str = ""  # the name of its own folder (a results table's row names it)
    cache: dict[str, Any] = field(default_factory=dict)  # answers computed once (the run never changes)

    @property
    def model(self):
        return self.run.model

    @property
    def vocab(self):
        return self.run.vocab

    @property
    def meta(self) -> dict[str, Any]:
        return self.run.meta

    @property
    def items(self) -> list[str] | None:
        """Every item of the training file, or None when it was not found."""
        return None if self.missing else self.run.training_items()

    @property
    def population(self) -> list[float] | None:
        return None if self.missing else self.run.population()

    @property
    def default_max_len(self) -> int:
        """What `sample` uses when no max_len is asked: the library's rule, within a request's bound."""
        return default_max_len(self.run.max_item_len, cap=MAX_REQUEST_CHARS)


@dataclass
class Catalog:
    """Every run served, by id, in the order given, and the results tables of the folders they came from."""

    runs: dict[str, ServedRun] = field(default_factory=dict)  # id -> run
    tables: list[dict[str, Any]] = field(default_factory=list)  # {"name", "kind", "dataset", "rows": [...]}


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
    run = Run.load(found.path, device, resolve=lambda spec: locate_input(spec, environ, download=False))
    served = ServedRun(run_id, run, group=found.group, folder=found.path.name)
    try:
        run.population()  # reads the training items too: both once, now, not in a request
    except MakemoreError as e:
        served.missing = str(e)
    return served


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
