"""The essay's table, measured: train the five models on one dataset and compare their NLLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .models import get_spec
from .recipes import get_recipe
from .runs import RunSpec, default_block_size, run, splits_for

ESSAY_MODELS = ("bigram-counts", "bigram-nn", "mlp", "mlp-bn", "wavenet")


def reproduce(
    items: list[str],
    dataset: dict[str, Any],
    out_dir: str | Path,
    *,
    models: tuple[str, ...] = ESSAY_MODELS,
    seed: int = 42,
    split_seed: int = 42,
    device: str = "cpu",
    extra_meta: dict[str, Any] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: Callable[[str], Callable] | None = None,
) -> dict[str, Any]:
    """Train each model with its default recipe into out_dir/<model>; return results.json's content."""
    out_dir = Path(out_dir)
    rows = []
    splits_by_block: dict[tuple[str, int | None], Any] = {}
    for name in models:
        if on_start:
            on_start(name)
        block_size = default_block_size(name)
        layout = get_spec(name).layout
        key = (layout, block_size if layout == "windows" else None)  # whole items do not depend on block_size
        if key not in splits_by_block:  # build each window size (and the sequences) once, share it
            splits_by_block[key] = splits_for(items, name, block_size, seed=split_seed)
        spec = RunSpec(model=name, recipe=get_recipe(name), seed=seed, split_seed=split_seed)
        meta = run(items, spec, out_dir / name, device=device, splits=splits_by_block[key],
                   extra_meta={"dataset": dataset, **(extra_meta or {})},
                   on_progress=on_progress(name) if on_progress else None)
        model_spec = get_spec(name)
        rows.append({
            "model": name,
            "mechanism": model_spec.mechanism,
            "params": meta["params"],
            **meta["metrics"],
            "essay_val_nll": model_spec.essay_val_nll,
            "seconds": round(meta["train_seconds"], 2),
            "recipe": meta["recipe"],
        })
    return {"dataset": dataset, "seed": seed, "split_seed": split_seed, "models": rows}


def format_table(results: dict[str, Any]) -> str:
    """The results as a fixed-width text table, one row per model."""
    header = f"{'model':<14} {'mechanism':<46} {'params':>7} {'train':>7} {'val':>7} {'test':>7} {'essay val':>9} {'seconds':>8}"
    lines = [header, "-" * len(header)]
    for r in results["models"]:
        essay = f"{r['essay_val_nll']:.2f}" if r.get("essay_val_nll") is not None else "-"
        lines.append(
            f"{r['model']:<14} {r['mechanism']:<46} {r['params']:>7,} {r['train_nll']:>7.4f} {r['val_nll']:>7.4f} "
            f"{r['test_nll']:>7.4f} {essay:>9} {r['seconds']:>8.1f}"
        )
    return "\n".join(lines)
