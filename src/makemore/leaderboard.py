"""The leaderboard: every model makemore knows, each with its best known recipe, on one split, ranked by val NLL.

An entry is a registered model, a named recipe preset (recipes.py) and optional config overrides
(a longer context, a smaller size): what it trains is in the code, not in anyone's shell history.
Every registered model gets its "fast" entry; EXTRA_ENTRIES adds the variants worth a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .models import MODELS, get_spec
from .recipes import PRESETS, get_recipe
from .reproduce import ESSAY_MODELS
from .runs import RunSpec, default_block_size, run, splits_for

NOT_CONTENDERS = {"mlp-deep"}  # the init study's instrument (diagnose --compare), not a model to rank


@dataclass(frozen=True)
class Entry:
    label: str  # the row's name and its run directory under the leaderboard folder
    model: str  # registry name
    recipe: str = "fast"  # recipe preset in recipes.py
    config: dict[str, Any] = field(default_factory=dict)  # model config overrides


# Variants worth their own row, beyond each model's default (added only when their model and preset exist).
EXTRA_ENTRIES: tuple[Entry, ...] = (
    # within the WaveNet's budget of 76,579 parameters: 74,580
    Entry("transformer-small", "transformer", "fast", {"n_embd": 44, "n_layer": 3}),
    # 16 characters of context at the 8-character model's size: 76,889 parameters against 76,579
    Entry("wavenet-16", "wavenet", "fast", {"block_size": 16, "n_embd": 24, "n_hidden": 106}),
)


def default_entries() -> list[Entry]:
    entries = [Entry(name, name) for name in MODELS if name not in NOT_CONTENDERS]
    entries += [e for e in EXTRA_ENTRIES if e.model in MODELS and e.recipe in PRESETS.get(e.model, {})]
    return entries


def describe_recipe(recipe: dict[str, Any], config: dict[str, Any], trainable: bool = True) -> str:
    """One short line: how the entry was trained and regularised (for the table)."""
    if not trainable:
        return "counting" + (f", {config['smoothing']} smoothing" if isinstance(config.get("smoothing"), str) else "")
    parts = [recipe["optimizer"], f"lr {recipe['lr']:g}",
             "full batch" if recipe["batch_size"] == 0 else f"batch {recipe['batch_size']}", f"{recipe['steps']:,} steps"]
    if recipe.get("schedule") != "constant":
        parts.append(recipe["schedule"])
    if recipe.get("weight_decay"):
        parts.append(f"wd {recipe['weight_decay']:g}")
    if config.get("dropout"):
        parts.append(f"dropout {config['dropout']:g}")
    if recipe.get("soft_targets"):
        parts.append("soft targets")
    return ", ".join(parts)


def leaderboard(
    items: list[str],
    dataset: dict[str, Any],
    out_dir: str | Path,
    entries: list[Entry],
    *,
    seed: int = 42,
    split_seed: int = 42,
    device: str = "cpu",
    extra_meta: dict[str, Any] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: Callable[[str], Callable] | None = None,
) -> dict[str, Any]:
    """Train every entry into out_dir/<label>; rows sorted by val NLL, in results.json's shape."""
    out_dir = Path(out_dir)
    rows = []
    splits_cache: dict[tuple[str, int | None], Any] = {}
    for entry in entries:
        if on_start:
            on_start(entry.label)
        spec = get_spec(entry.model)
        block_size = entry.config.get("block_size", default_block_size(entry.model))
        key = (spec.layout, block_size if spec.layout == "windows" else None)
        if key not in splits_cache:  # each window size (and the whole items) built once, shared
            splits_cache[key] = splits_for(items, entry.model, block_size, seed=split_seed)
        run_spec = RunSpec(model=entry.model, recipe=get_recipe(entry.model, entry.recipe), recipe_name=entry.recipe,
                           seed=seed, split_seed=split_seed, config=dict(entry.config))
        meta = run(items, run_spec, out_dir / entry.label, device=device, splits=splits_cache[key],
                   extra_meta={"dataset": dataset, **(extra_meta or {})},
                   on_progress=on_progress(entry.label) if on_progress else None)
        rows.append({
            "entry": entry.label,
            "model": entry.model,
            "mechanism": spec.mechanism,
            "params": meta["params"],
            **meta["metrics"],
            "essay_val_nll": spec.essay_val_nll if entry.model in ESSAY_MODELS and not entry.config else None,
            "essay_model": entry.model in ESSAY_MODELS and not entry.config,
            "seconds": round(meta["train_seconds"], 2),
            "recipe_name": entry.recipe,
            "recipe": meta["recipe"],
            "config": meta["config"],
            "trained_with": describe_recipe(meta["recipe"], meta["config"], getattr(spec.model_cls, "trainable", True)),
        })
    rows.sort(key=lambda r: r["val_nll"])
    return {"dataset": dataset, "seed": seed, "split_seed": split_seed, "models": rows}


def format_leaderboard(board: dict[str, Any]) -> str:
    """Fixed-width table, best first; the essay's five models marked with *."""
    w = max(len(r["entry"]) for r in board["models"]) + 2
    header = (f"{'#':>2}  {'model':<{w}} {'params':>8} {'train':>7} {'val':>7} {'test':>7} {'seconds':>8}  trained with")
    lines = [header, "-" * (len(header) + 40)]
    for rank, r in enumerate(board["models"], 1):
        name = r["entry"] + (" *" if r["essay_model"] else "")
        lines.append(f"{rank:>2}  {name:<{w}} {r['params']:>8,} {r['train_nll']:>7.4f} {r['val_nll']:>7.4f} "
                     f"{r['test_nll']:>7.4f} {r['seconds']:>8.1f}  {r['trained_with']}")
    lines.append("* the essay's five models; NLL per predicted character (every character and each end), same split")
    return "\n".join(lines)
