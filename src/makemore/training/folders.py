"""Finding run folders among the paths a person gives: nothing is loaded, run.json is read.

A path given may be
- a run folder (it holds run.json);
- a folder written by `reproduce` or `leaderboard` (results.json / leaderboard.json): its runs, in the
  file's order, and the file's table;
- any folder whose subfolders are run folders.
`makemore serve` serves what is found; `Run.list` lists it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import MakemoreError
from .run_folder import META, read_meta

RESULT_FILES = ("leaderboard.json", "results.json")  # the tables a folder of runs may come with


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
