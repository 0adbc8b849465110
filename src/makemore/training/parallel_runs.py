"""Several runs trained at once, each in its own process: `reproduce.train_entries` with `EntryOptions(jobs=N)`.

On the CPU a small model's training step is a string of small operations, and a second thread
speeds it up far less than twice (`benchmarks/train_step.py` measures it). N processes of one
thread each keep N cores busy with whole runs instead. Each process trains its runs start to end
with the same code as one process alone, so a run's numbers depend on its own threads, never on
its neighbours: `jobs=2, threads=1` gives the bits of `jobs=1` at one thread. Runs are started
longest first (steps x batch x parameters), so the longest does not start last.

The workers are spawned (a fresh interpreter each: no forked PyTorch thread pools) and write their
run directories themselves; this process only collects what `runs.run` returned.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .. import bounds
from ..data.items import Vocab
from ..models import build_model, get_spec
from .recipes import get_recipe
from .pipeline import RunSpec, default_block_size, run, splits_for


@dataclass(frozen=True)
class Entry:
    """One model to train: a registered model, a recipe preset and config overrides."""

    label: str  # the row's name and its run directory
    model: str  # registry name
    recipe: str = "fast"  # recipe preset in recipes.py
    config: dict[str, Any] = field(default_factory=dict)  # model config overrides
    seed_offset: int = 0  # trained with the run's seed + this (another draw of the same recipe), 0: the seed


@dataclass
class EntryOptions:
    """How a list of entries is trained (`reproduce.train_entries`): where, with what recorded, how many at once,
    and what the caller is told. The seeds, which decide the numbers, are the function's own parameters."""

    device: str | torch.device = "cpu"  # where every entry trains
    extra_meta: dict[str, Any] | None = None  # added to every entry's run.json (the dataset, the command line)
    jobs: int = 1  # entries trained at once, each in its own process; 1: one after another, in this process
    threads: int | None = None  # PyTorch threads of each process when jobs > 1; None: this process's divided among them
    on_start: Callable[[str], None] | None = None  # an entry's label before it trains (jobs=1 only)
    on_progress: Callable[[str], Callable] | None = None  # label -> the `RunControl.on_progress` of its run (jobs=1 only)
    on_done: Callable[[str, dict[str, Any]], None] | None = None  # (label, run metadata) as each entry ends

    def __post_init__(self) -> None:
        bounds.check("jobs", self.jobs)
        bounds.check_optional("threads", self.threads)


def entry_spec(entry: Entry, seed: int, split_seed: int) -> RunSpec:
    """What one entry trains: its model, recipe preset, config and seed."""
    return RunSpec(model=entry.model, recipe=get_recipe(entry.model, entry.recipe), recipe_name=entry.recipe,
                   seed=seed + entry.seed_offset, split_seed=split_seed, config=dict(entry.config))


def entry_block_size(entry: Entry) -> int | None:
    """The context an entry's model reads: its config's block_size, else its model's default (None: whole items)."""
    return entry.config.get("block_size", default_block_size(entry.model))


def expected_cost(entry: Entry, vocab_size: int) -> float:
    """A rough measure of an entry's training time: steps x items per step x parameters (0 for counting)."""
    spec = get_spec(entry.model)
    if not getattr(spec.model_cls, "trainable", True):
        return 0.0
    recipe = get_recipe(entry.model, entry.recipe)
    block_size = entry_block_size(entry)
    sizes = {"vocab_size": vocab_size} | ({} if block_size is None else {"block_size": block_size})
    params = sum(p.numel() for p in build_model(entry.model, **{**entry.config, **sizes}).parameters())
    return float(recipe.steps * max(recipe.batch_size, 1) * params)


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _train(items: list[str], out_dir: Path, entry: Entry, seed: int, split_seed: int, device: str,
           extra_meta: dict[str, Any] | None) -> dict[str, Any]:
    """One entry, in a worker: its splits, its run; the metadata it ended with."""
    splits = splits_for(items, entry.model, entry_block_size(entry), seed=split_seed)
    return run(items, entry_spec(entry, seed, split_seed), out_dir / entry.label, device=device, splits=splits,
               extra_meta=extra_meta)


def train_in_processes(items: list[str], out_dir: Path, entries: list[Entry], *, seed: int, split_seed: int,
                       options: EntryOptions) -> dict[str, dict[str, Any]]:
    """Train `entries` options.jobs at a time, each process with options.threads PyTorch threads (None: this
    process's divided among the jobs): {label: run metadata}. options.on_done is told as each ends.

    A failing entry stops the others not yet started and its error is raised here, as from one process."""
    jobs = bounds.check("jobs", options.jobs)
    threads = options.threads if options.threads is not None else max(1, torch.get_num_threads() // jobs)
    bounds.check("threads", threads)
    vocab_size = Vocab.from_items(items).size
    order = sorted(entries, key=lambda e: expected_cost(e, vocab_size), reverse=True)
    done: dict[str, dict[str, Any]] = {}
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(entries)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(threads,))
    on_done, device, extra_meta = options.on_done, str(options.device), options.extra_meta
    try:
        pending = {pool.submit(_train, items, out_dir, e, seed, split_seed, device, extra_meta): e for e in order}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                entry = pending.pop(future)
                done[entry.label] = future.result()  # a worker's error is raised here
                if on_done is not None:
                    on_done(entry.label, done[entry.label])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return done
