"""One training run end to end: data -> model -> training -> metrics -> run directory."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import save_loss_curve, save_run
from .data import Splits, make_splits
from .models import build_model, get_spec
from .train import Progress, Recipe, TrainResult, evaluate, train

SPLITS = ("train", "val", "test")


@dataclass
class RunSpec:
    """Everything that decides a run's outcome; recorded in run.json so anyone can repeat it."""

    model: str  # registry name
    recipe: Recipe  # how it is trained
    recipe_name: str = "fast"  # which preset the recipe started from ("custom" once overridden)
    seed: int = 42  # seeds the initial weights and the order of batches
    split_seed: int = 42  # seeds the shuffle before the 80/10/10 split
    config: dict[str, Any] = field(default_factory=dict)  # model config overrides (e.g. n_hidden)


def default_block_size(model: str) -> int:
    return get_spec(model).config_cls().block_size


def run(
    items: list[str],
    spec: RunSpec,
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    extra_meta: dict[str, Any] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    splits: Splits | None = None,
) -> dict[str, Any]:
    """Train spec.model on items, evaluate every split, save to out_dir; returns the run's metadata."""
    block_size = spec.config.get("block_size", default_block_size(spec.model))
    if splits is None or splits.block_size != block_size:
        splits = make_splits(items, block_size, seed=spec.split_seed)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, **{**spec.config, "vocab_size": splits.vocab.size, "block_size": block_size})
    model.to(device)
    result: TrainResult = train(model, splits.train, spec.recipe, seed=spec.seed, on_progress=on_progress)
    start = time.perf_counter()
    metrics = {f"{part}_nll": evaluate(model, splits.part(part)) for part in SPLITS}
    meta = {
        "vocab": list(splits.vocab.chars),
        "split_seed": spec.split_seed,
        "seed": spec.seed,
        "recipe_name": spec.recipe_name,
        "recipe": asdict(spec.recipe),
        "params": sum(p.numel() for p in model.parameters()),
        "metrics": metrics,
        "train_seconds": result.seconds,
        "eval_seconds": time.perf_counter() - start,
        "max_item_len": max(len(it) for it in splits.train_items),
        **(extra_meta or {}),
    }
    save_run(out_dir, model, meta)
    if result.loss_curve:
        save_loss_curve(out_dir, result.loss_curve)
    return meta
