"""`--model auto`: for the list at hand, train the models that suit its size within a time budget, keep the best.

The candidates are trained one after another, each with its recipe sized to the list (`recipes.sized`), into
RUN_DIR/candidates/MODEL, cheapest and strongest first: the Kneser-Ney n-gram (counting: instant, and on small
lists hard to beat), then the recurrent and windowed nets; the transformer only for lists where it pays
for its time. When the budget is spent no further candidate starts, and one still training finishes there,
with the weights of its best val check so far (so which candidates ran, and how far, depends on the
machine's speed; each candidate's own run is reproducible from its recipe). Then val decides: the mixture
of the candidates with weights fitted on val (an ensemble run), or the single best candidate, whichever
has the lower val NLL; test is only reported.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import bounds
from ..data.atomic import atomic_write_text, json_text
from ..data.items import split_items
from ..data.labels import ItemLabels
from ..errors import MakemoreError
from ..models import get_spec
from ..training.pipeline import RunControl, RunSpec, remove_previous_run, run
from ..training.recipes import ListSize, get_recipe, sized
from ..training.run_folder import BEST_WEIGHTS, META, METRICS, WEIGHTS, read_meta
from .ensemble import load_members, make_ensemble, members_splits

CANDIDATES = "candidates"  # the folder under the run directory that holds every candidate's own run
TRANSFORMER_FROM_ITEMS = 2_000  # smaller lists: the transformer costs the most and wins nothing (benchmarks/small_lists.py)
MIN_AUTO_ITEMS = 20  # fewer: a val split of one or two items cannot choose between models


def check_list(items: list[str]) -> None:
    """Refuse a list too small for auto to choose between its candidates on val (before anything is written)."""
    if len(items) < MIN_AUTO_ITEMS:
        raise MakemoreError(f"auto chooses between its candidates ({', '.join(candidates(ListSize(len(items), 0)))}) "
                            f"on the val split, which needs at least {MIN_AUTO_ITEMS} items; this list has "
                            f"{len(items)}: train one model instead (ngram counts best on tiny lists)")


def candidates(size: ListSize) -> list[str]:
    """The models tried for a list of this size, in the order they are trained."""
    models = ["ngram", "lstm", "wavenet", "gru", "mlp"]
    if size.items >= TRANSFORMER_FROM_ITEMS:
        models.insert(2, "transformer")
    return models


@dataclass
class AutoSpec:
    """What `train_auto` does: how long it may take, its seeds, and (optionally) the candidates to try."""

    budget: float = 60.0  # seconds of training for all candidates together (bounds.BOUNDS["budget"])
    seed: int = 42  # each candidate's weights and batch order
    split_seed: int = 42  # the 80/10/10 split, shared by every candidate (an ensemble needs one split)
    models: list[str] | None = None  # the candidates; None: `candidates` for the list's size
    on_candidate: Callable[[str], None] | None = None  # told the name of each candidate as it starts
    control: RunControl = field(default_factory=RunControl)  # progress and stop, passed to each candidate's run

    def __post_init__(self) -> None:
        bounds.check("budget", self.budget)


def train_auto(items: list[str], spec: AutoSpec, out_dir: str | Path, *, device: str = "cpu",
               labels: ItemLabels | None = None, extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the candidates, keep the best on val (one run, or their ensemble) in out_dir; its run.json.

    run.json's "auto" records the budget, every candidate tried (its val and test NLL, seconds, or why it was
    left out) and what was chosen."""
    check_list(items)
    size = ListSize.of(split_items(items, spec.split_seed)[0])
    out_dir = Path(out_dir)
    start = time.perf_counter()
    tried: list[dict[str, Any]] = []
    for model in spec.models or candidates(size):
        if time.perf_counter() - start >= spec.budget:
            tried.append({"model": model, "status": "skipped: the budget was spent"})
            continue
        if spec.on_candidate:
            spec.on_candidate(model)
        tried.append(_train_candidate(items, model, size, spec, out_dir / CANDIDATES / model, start, device, labels,
                                      extra_meta))
    done = [t for t in tried if t["status"] == "complete"]  # the first always is: the budget ends a run, finished
    return _choose(items, done, tried, spec, out_dir, device, labels, extra_meta)


def _train_candidate(items, model: str, size: ListSize, spec: AutoSpec, folder: Path, start: float, device,
                     labels, extra_meta) -> dict[str, Any]:
    recipe = sized(get_recipe(model), size, get_spec(model).layout)
    control = RunControl(on_progress=spec.control.on_progress, should_stop=spec.control.should_stop,
                         on_eval=spec.control.on_eval,
                         should_finish=lambda: time.perf_counter() - start > spec.budget)  # finished, best weights
    began = time.perf_counter()
    meta = run(items, RunSpec(model=model, recipe=recipe, seed=spec.seed, split_seed=spec.split_seed), folder,
               device=device, control=control, labels=labels, extra_meta=extra_meta)
    m = meta["metrics"]
    cut = meta.get("stopped_early") and meta.get("step", 0) < recipe.steps and time.perf_counter() - start > spec.budget
    return {"model": model, "status": "complete", "run": str(folder), "val_nll": m["val_nll"], "test_nll": m["test_nll"],
            "seconds": round(time.perf_counter() - began, 2), "steps": meta.get("step"),
            **({"cut_by_budget": True} if cut else {})}


def _choose(items, done, tried, spec: AutoSpec, out_dir: Path, device, labels, extra_meta) -> dict[str, Any]:
    best = min(done, key=lambda t: t["val_nll"])
    record = {"budget": spec.budget, "tried": tried}
    if len(done) > 1:
        members = load_members([t["run"] for t in done], device)
        splits = members_splits(items, members, labels)
        meta = make_ensemble(members, splits, out_dir, extra_meta=extra_meta)
        if meta["metrics"]["val_nll"] < best["val_nll"]:
            return _record(out_dir, {**record, "chose": "ensemble"})
    remove_previous_run(out_dir)  # the ensemble that lost, if written
    for name in (WEIGHTS, BEST_WEIGHTS, METRICS, META):  # the single best, copied up; run.json last
        source = Path(best["run"]) / name
        if source.exists():
            shutil.copyfile(source, out_dir / name)
    return _record(out_dir, {**record, "chose": best["model"]})


def _record(out_dir: Path, auto: dict[str, Any]) -> dict[str, Any]:
    meta = {**read_meta(out_dir), "auto": auto}
    atomic_write_text(out_dir / META, json_text(meta))
    return meta
