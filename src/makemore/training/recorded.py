"""The items a run was trained on, found again from what its run.json records.

A run folder does not keep its training file: run.json records each input's path and sha256, the text
options it was read with, its labels and whether repeats were dropped. `recorded_input` reads the files
again exactly so (or the ones a caller gives in their place), refusing a file whose sha256 differs:
novel items, percentiles, evaluation and ensembles all need the very split the run was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..data.items import TextOptions, drop_duplicates, read_items
from ..data.builtin import sha256_of
from ..data.labelled import LabelledItems, parse_source, read_labelled
from ..data.labels import ItemLabels
from ..errors import MakemoreError

Resolve = Callable[[str], Path]  # a spec (a path, or a built-in dataset's name) -> the file


class TrainingDataMissing(MakemoreError):
    """A run's training files cannot be found, or are not the files it was trained on."""


def drop_labelled_duplicates(data: LabelledItems) -> tuple[LabelledItems, int]:
    """Each (item, label) pair once, at its first occurrence: the same name in two lists stays in both."""
    labels = data.labels if data.labels is not None else [0] * len(data.items)
    pairs, dropped = drop_duplicates(list(zip(data.items, labels)))
    kept = [label for _, label in pairs]
    return LabelledItems([item for item, _ in pairs], None if data.labels is None else kept, data.names, data.files,
                         data.skipped_empty), dropped


def _checked(path: Path, sha256: str | None, run_dir: Path) -> Path:
    if not path.is_file():
        raise TrainingDataMissing(f"{path}, a training file of {run_dir}, is not there any more (moved or deleted?)")
    if sha256 and sha256_of(path) != sha256:
        raise TrainingDataMissing(f"{path} is not the file {run_dir} was trained on (sha256 differs)")
    return path


def recorded_input(meta: dict[str, Any], run_dir: str | Path, inputs: Sequence[str] | None = None,
                   resolve: Resolve = Path) -> tuple[list[str], ItemLabels | None]:
    """The items (and labels; None when unlabelled) run `run_dir` was trained on, read as they were read then;
    each (item, label) once if it was trained with dedupe. `inputs` replace the recorded files (in order; a
    labelled input as LABEL=PATH), `resolve` finds a file from a spec (a built-in dataset's name included)."""
    run_dir = Path(run_dir)
    recorded = meta.get("dataset") or {}
    options = TextOptions(**recorded.get("text_options", {}))
    given = list(inputs or [])
    if "inputs" not in recorded:  # one plain file: the way every unlabelled run records it
        spec = given[0] if given else recorded.get("path")
        if not spec:
            raise TrainingDataMissing(f"{run_dir} does not record its training file")
        path = _checked(resolve(spec), recorded.get("sha256"), run_dir)
        items = read_items(path, options)
        if recorded.get("duplicates_dropped") is not None:  # the split was made after dropping repeats
            items = drop_duplicates(items)[0]
        return items, None
    entries = recorded["inputs"]
    if given and len(given) != len(entries):
        raise TrainingDataMissing(f"{run_dir} was trained on {len(entries)} input(s); give all of them, in order")
    specs = []
    for k, entry in enumerate(entries):
        path = _checked(resolve(parse_source(given[k]).path if given else entry["path"]), entry.get("sha256"), run_dir)
        specs.append(f"{entry['label']}={path}" if entry.get("label") is not None else str(path))
    data = read_labelled(specs, resolve=Path, options=options, item_column=recorded.get("item_column"),
                         label_column=recorded.get("label_column"))
    if recorded.get("duplicates_dropped") is not None:
        data = drop_labelled_duplicates(data)[0]
    labels = None if data.labels is None else ItemLabels(data.labels, data.names, data.files)
    names = [entry["name"] for entry in meta.get("labels", [])]
    if labels is not None and names and labels.names != names:
        raise TrainingDataMissing(f"the inputs of {run_dir} now give the labels {', '.join(labels.names)}, not the "
                                  f"{', '.join(names)} it was trained with")
    return data.items, labels
