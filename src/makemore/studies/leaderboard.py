"""The leaderboard: every model makemore knows, each with its best known recipe, on one split, ranked by val NLL.

An entry is a registered model, a named recipe preset (recipes.py) and optional config overrides
(a longer context, a smaller size): what it trains is in the code, not in anyone's shell history.
Every registered model gets its "fast" entry; EXTRA_ENTRIES adds the variants worth a row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .ensemble import describe_ensemble, load_members, make_ensemble, members_splits
from ..models import MODELS, get_spec, trainable_models
from ..training.recipes import PRESETS
from .reproduce import ESSAY_MODELS, Entry, EntryOptions, train_entries

NOT_CONTENDERS = {"mlp-deep"}  # the init study's instrument (diagnose --compare), not a model to rank


# Variants worth their own row, beyond each model's default (added only when their model and preset exist).
EXTRA_ENTRIES: tuple[Entry, ...] = (
    # within the WaveNet's budget of 76,579 parameters: 74,580
    Entry("transformer-small", "transformer", "random-batches", {"n_embd": 44, "n_layer": 3}),
    # 16 characters of context at the 8-character model's size: 76,889 parameters against 76,579
    Entry("wavenet-16", "wavenet", "long-context", {"block_size": 16, "n_embd": 24, "n_hidden": 106}),
)


# `--full`: more members for the ensemble row, each a known recipe drawn again with other seeds (another
# initialisation and batch order: members that err differently), larger variants of the two best models, and
# the n-gram at its neighbouring orders.
WIDE_TRANSFORMER = {"n_embd": 96, "dropout": 0.2}  # 454,272 params: val 1.9222 (fast recipe)
# 864,731 params: the best single model, val 1.8993 (fast recipe; the README's search)
LARGE_LSTM = {"n_layer": 2, "n_hidden": 256, "n_embd": 64, "dropout": 0.3}


def _seeds(label: str, model: str, offsets: tuple[int, ...], config: dict[str, Any] | None = None) -> list[Entry]:
    """The entry drawn with each seed offset: `label` for 0, `label-seedK` for K."""
    return [Entry(label if k == 0 else f"{label}-seed{k}", model, config=dict(config or {}), seed_offset=k)
            for k in offsets]


FULL_ENTRIES: tuple[Entry, ...] = (
    *_seeds("transformer-wide", "transformer", (0, 1), WIDE_TRANSFORMER),
    *_seeds("transformer", "transformer", (1, 2)),
    *_seeds("lstm-large", "lstm", (0, 1, 2), LARGE_LSTM),
    *_seeds("lstm", "lstm", (1, 2, 3)),
    *_seeds("gru", "gru", (1, 2, 3)),
    *_seeds("wavenet", "wavenet", (1, 2)),
    Entry("ngram-5", "ngram", config={"block_size": 4}),
    Entry("ngram-7", "ngram", config={"block_size": 6}),
)


def default_entries(full: bool = False) -> list[Entry]:
    """Every trainable model's `fast` entry and the EXTRA_ENTRIES; with full, the FULL_ENTRIES too."""
    entries = [Entry(name, name) for name in trainable_models() if name not in NOT_CONTENDERS]
    entries += [e for e in EXTRA_ENTRIES if e.model in MODELS and e.recipe in PRESETS.get(e.model, {})]
    if full:
        entries += [e for e in FULL_ENTRIES if e.model in MODELS and e.recipe in PRESETS.get(e.model, {})]
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
    if recipe.get("length_groups"):
        parts.append("length groups")
    return ", ".join(parts)


def leaderboard(items: list[str], dataset: dict[str, Any], out_dir: str | Path, entries: list[Entry], *,
                seed: int = 42, split_seed: int = 42, ensemble: bool = True, **train_options: Any) -> dict[str, Any]:
    """Train every entry into out_dir/<label>; rows sorted by val NLL, in results.json's shape.

    ensemble: also mix every trained entry into out_dir/ensemble (`makemore.studies.ensemble`, weights fitted on
    val) and add its row, when there are two entries or more.
    train_options: the fields of `EntryOptions` (device, extra_meta, jobs, threads, on_start, on_progress, on_done).
    """
    rows = []
    trained = train_entries(items, dataset, out_dir, entries, seed=seed, split_seed=split_seed,
                            options=EntryOptions(**train_options))
    for entry, meta in trained:
        spec = get_spec(entry.model)
        # the essay's own five rows (other seeds of them, `--full`, are not starred: five stars, five models)
        as_in_essay = entry.model in ESSAY_MODELS and not entry.config and entry.seed_offset == 0
        rows.append({
            "entry": entry.label,
            "model": entry.model,
            "mechanism": spec.mechanism,
            "params": meta["params"],
            **meta["metrics"],
            "essay_val_nll": spec.essay_val_nll if as_in_essay else None,
            "essay_model": as_in_essay,
            "seconds": round(meta["train_seconds"], 2),
            "recipe_name": entry.recipe,
            "recipe": meta["recipe"],
            "config": meta["config"],
            "trained_with": describe_recipe(meta["recipe"], meta["config"], getattr(spec.model_cls, "trainable", True)),
        })
    if ensemble and len(rows) >= 2:
        on_start = train_options.get("on_start")
        if on_start:
            on_start(ENSEMBLE)
        rows.append(ensemble_row(items, Path(out_dir), [row["entry"] for row in rows],
                                 train_options.get("device", "cpu"), train_options.get("extra_meta")))
    rows.sort(key=lambda r: r["val_nll"])
    return {"dataset": dataset, "seed": seed, "split_seed": split_seed, "models": rows}


ENSEMBLE = "ensemble"  # the leaderboard's row (and run directory) of its entries mixed


def ensemble_row(items: list[str], out_dir: Path, labels: list[str], device: str,
                 extra_meta: dict[str, Any] | None) -> dict[str, Any]:
    """Mix the runs out_dir/<label> into out_dir/ensemble (weights fitted on val); its leaderboard row."""
    members = load_members([out_dir / label for label in labels], device)
    meta = make_ensemble(members, members_splits(items, members), out_dir / ENSEMBLE, extra_meta=extra_meta)
    return {
        "entry": ENSEMBLE, "model": ENSEMBLE, "mechanism": get_spec(ENSEMBLE).mechanism, "params": meta["params"],
        **meta["metrics"], "essay_val_nll": None, "essay_model": False, "seconds": round(meta["train_seconds"], 2),
        "recipe_name": None, "recipe": None, "config": meta["config"],
        "trained_with": describe_ensemble(meta),
    }


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
