"""The essay's table, measured: train the five models on one dataset and compare their NLLs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import MakemoreError
from ..training.parallel_runs import Entry, EntryOptions, entry_block_size, entry_spec, train_in_processes
from ..models import get_spec
from ..training.pipeline import RunControl, run, splits_for

ESSAY_MODELS = ("bigram-counts", "bigram-nn", "mlp", "mlp-bn", "wavenet")


def train_entries(
    items: list[str],
    dataset: dict[str, Any],
    out_dir: str | Path,
    entries: list[Entry],
    *,
    seed: int = 42,
    split_seed: int = 42,
    options: EntryOptions | None = None,
) -> list[tuple[Entry, dict[str, Any]]]:
    """Train each entry into out_dir/<label>, in order; each entry with the run metadata it ended with.

    `options`: device, extra run.json records, jobs and threads, callbacks (`EntryOptions`). options.jobs > 1:
    that many entries at a time, each in its own process with options.threads PyTorch threads (default: this
    process's threads divided among the jobs), longest first (`makemore.training.parallel_runs`); on_start and
    on_progress are then not called (the work is elsewhere), on_done(label, metadata) as each entry ends.
    """
    options = options or EntryOptions()
    out_dir = Path(out_dir)
    extra = {"dataset": dataset, **(options.extra_meta or {})}
    if options.jobs > 1 and len(entries) > 1:
        metas = train_in_processes(items, out_dir, entries, seed=seed, split_seed=split_seed,
                                   options=replace(options, extra_meta=extra))
        return [(entry, metas[entry.label]) for entry in entries]
    on_start, on_progress, on_done = options.on_start, options.on_progress, options.on_done
    done = []
    splits_cache: dict[tuple[str, int | None], Any] = {}
    for entry in entries:
        if on_start:
            on_start(entry.label)
        layout = get_spec(entry.model).layout
        block_size = entry_block_size(entry)
        key = (layout, block_size if layout == "windows" else None)  # whole items do not depend on block_size
        if key not in splits_cache:  # each window size (and the whole items) built once, shared
            splits_cache[key] = splits_for(items, entry.model, block_size, seed=split_seed)
        control = RunControl(on_progress=on_progress(entry.label) if on_progress else None)
        meta = run(items, entry_spec(entry, seed, split_seed), out_dir / entry.label, device=options.device,
                   splits=splits_cache[key], extra_meta=extra, control=control)
        if on_done:
            on_done(entry.label, meta)
        done.append((entry, meta))
    return done


def reproduce(
    items: list[str],
    dataset: dict[str, Any],
    out_dir: str | Path,
    *,
    models: tuple[str, ...] = ESSAY_MODELS,
    seed: int = 42,
    split_seed: int = 42,
    **train_options: Any,
) -> dict[str, Any]:
    """Train each model with its default recipe into out_dir/<model>; return results.json's content.

    train_options: the fields of `EntryOptions` (device, extra_meta, jobs, threads, on_start, on_progress, on_done).
    """
    done = train_entries(items, dataset, out_dir, [Entry(name, name) for name in models], seed=seed,
                         split_seed=split_seed, options=EntryOptions(**train_options))
    rows = []
    for entry, meta in done:
        model_spec = get_spec(entry.model)
        rows.append({
            "model": entry.model,
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


def read_results(path: str | Path) -> dict[str, Any]:
    """The results of an earlier `reproduce`: its folder (results.json inside) or the results.json itself."""
    path = Path(path)
    path = path / "results.json" if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MakemoreError(f"cannot read reproduce results from {path} ({e}); reproduce the table into that folder first") from None
