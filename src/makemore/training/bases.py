"""Bases to start from: one model trained once on a list by its fast recipe, kept in a folder.

`--init-from names` uses the one of names.txt in the cache folder; the small-lists benchmark keeps its
word-list bases the same way. Whoever calls reads the list and says where the folder is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.items import split_items
from .lock import run_lock
from .pipeline import RunControl, RunSpec, run
from .recipes import recipe_for
from .run_folder import META, read_meta


def base_folder(cache_dir: str | Path, list_name: str, model: str) -> Path:
    """Where the base of `model` on the list called `list_name` is kept under makemore's cache folder."""
    return Path(cache_dir) / "bases" / f"{list_name}-{model}"


def is_complete(folder: Path) -> bool:
    """A finished run is in folder."""
    return (folder / META).exists() and read_meta(folder).get("status") == "complete"


def ensure_base(folder: str | Path, model: str, items: list[str], *, device: str | torch.device = "cpu",
                control: RunControl | None = None, dataset: dict[str, Any] | None = None) -> Path:
    """The folder, holding a complete run of `model` on `items` (its fast recipe, sized to them): the one already
    there, or one trained now, under the run lock (a second process waiting for the same base is refused)."""
    folder = Path(folder)
    if is_complete(folder):
        return folder
    with run_lock(folder):
        recipe = recipe_for(model, "fast", split_items(items)[0], {})
        run(items, RunSpec(model=model, recipe=recipe), folder, device=device, control=control,
            extra_meta={"dataset": dataset or {"items": len(items)}})
    return folder
