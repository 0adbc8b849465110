"""One training run end to end: data -> model -> training -> metrics -> run directory; and its resumption."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .. import bounds
from ..data.atomic import disk_hint
from .run_folder import (BEST_WEIGHTS, META, METRICS, TRAIN_STATE, WEIGHTS, load_train_state, read_meta, read_weights,
                         save_metrics, save_run, save_train_state, save_weights)
from ..data.items import Splits, Vocab, make_splits
from ..device import make_reproducible, model_device
from .torchrun import Parallel
from ..errors import MakemoreError
from ..models import build_model, eval_mode, get_spec
from .evaluation import EvalProgress, evaluate_part
from .init_from import carry_over, choose_prior_weight, config_for, read_base
from ..data.labels import ItemLabels
from .loop import (Progress, Recipe, ResumePoint, TrainHooks, TrainingDiverged, TrainingInterrupted, check_recipe_fits,
                   train)

SPLITS = ("train", "val", "test")


@dataclass
class RunSpec:
    """Everything that decides a run's outcome; recorded in run.json so anyone can repeat it."""

    model: str  # registry name
    recipe: Recipe  # how it is trained
    recipe_name: str = "fast"  # which preset the recipe started from ("+overrides" once changed)
    seed: int = 42  # seeds the initial weights and the order of batches
    split_seed: int = 42  # seeds the shuffle before the 80/10/10 split
    config: dict[str, Any] = field(default_factory=dict)  # model config overrides (e.g. n_hidden)
    init_from: str | None = None  # a complete run to start from (training.init_from): its model, config and weights

    def __post_init__(self) -> None:
        bounds.check("seed", self.seed)
        bounds.check("split_seed", self.split_seed)


@dataclass
class RunControl:
    """How this process drives a run (`run`, `resume`): what it is told as the run goes, when it stops, and
    the data-parallel job it trains in. None of it is part of the recipe: a stopped run resumes under any."""

    on_progress: Callable[[Progress], None] | None = None  # each training report (loss, lr, val loss); rank 0 only
    should_stop: Callable[[], bool] | None = None  # polled after each step: True saves a resume point, raises TrainingInterrupted
    should_finish: Callable[[], bool] | None = None  # polled after each step: True ends training there, finished
    on_eval: EvalProgress | None = None  # (split, rows done, rows in all) during the final evaluation; rank 0 only
    parallel: Parallel | None = None  # a started process group (`torchrun.start`); None: this process alone


def default_block_size(model: str, items: list[str] | None = None) -> int | None:
    """The model's default context length; None for a model without one (a recurrent model reads whole items).

    A model whose block_size is a table of positions (`positions_from_data`: the transformer) gets what
    the data needs, given its items: the longest item plus the start token, so no item of the list is
    refused. A context length that is a modelling choice (the MLP's 3, the WaveNets' 8: they read
    items of any length) keeps its config's default."""
    spec = get_spec(model)
    if items and getattr(spec.model_cls, "positions_from_data", False):
        return max(len(it) for it in items) + 1
    return getattr(spec.config_cls(), "block_size", None)


def splits_for(items: list[str], model: str, block_size: int | None, seed: int = 42,
               vocab: Vocab | None = None, labels: ItemLabels | None = None) -> Splits:
    """The data a model trains on: windows of block_size, or whole items for a sequence model (same split);
    with labels, stratified by label and carrying each item's label in its indices (makemore.data.labels)."""
    return make_splits(items, block_size, seed=seed, vocab=vocab, layout=get_spec(model).layout,
                       labels=None if labels is None else labels.of_item)


def check_lengths(model, splits: Splits) -> None:
    """A sequence model with a bound on its positions refuses a too-long item now, not at the first evaluation."""
    if splits.layout == "sequence":
        with torch.no_grad(), eval_mode(model):
            for part in SPLITS:
                model(splits.part(part)[0][:1].to(model_device(model)))  # one row: the split's full length


def run(
    items: list[str],
    spec: RunSpec,
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    extra_meta: dict[str, Any] | None = None,
    control: RunControl | None = None,
    splits: Splits | None = None,
    labels: ItemLabels | None = None,
) -> dict[str, Any]:
    """Train spec.model on items, evaluate every split, save to out_dir; returns the run's metadata.

    `splits`: the items already split (`splits_for`, e.g. over a vocabulary of the caller's), used when they
    fit the model. With `labels`, one model learns every label's items, told apart (makemore.data.labels);
    run.json records the labels, their item counts and files. In a data-parallel job (`control.parallel`),
    every rank calls this with the same arguments; they train together and only rank 0 writes out_dir
    (`distributed` explains what stays the same)."""
    control = control or RunControl()
    parallel = control.parallel
    n_labels = 1 if labels is None else len(labels.names)
    base, config = _base_and_config(spec, items, splits, n_labels)
    block_size = config.get("block_size", default_block_size(spec.model, items))
    layout = get_spec(spec.model).layout
    if (splits is None or splits.layout != layout or splits.n_labels != n_labels
            or (layout == "windows" and splits.block_size != block_size)):
        splits = splits_for(items, spec.model, block_size, seed=spec.split_seed, labels=labels)
    make_reproducible(device)
    torch.manual_seed(spec.seed)
    sizes = {"vocab_size": splits.vocab.size} | ({} if block_size is None else {"block_size": block_size})
    sizes |= {} if labels is None else {"n_labels": n_labels}
    model = build_model(spec.model, **{**config, **sizes})
    started = {} if base is None else {
        "init_from": {**base.record(), **carry_over(base, model, splits.vocab, () if labels is None else labels.names)}}
    model.to(device)
    check_lengths(model, splits)
    check_recipe_fits(model, spec.recipe)
    meta = {
        "status": "training",
        "model": spec.model,  # also in run.json (save_run); callers of run() read these two here
        "config": asdict(model.config),
        "vocab": list(splits.vocab.chars),
        "split_seed": spec.split_seed,
        "seed": spec.seed,
        "recipe_name": spec.recipe_name,
        "recipe": asdict(spec.recipe),
        "params": sum(p.numel() for p in model.parameters()),
        "max_item_len": max(len(it) for it in splits.train_items),
        **({} if labels is None else {"labels": labels.label_set(splits.train_labels or []).to_meta()}),
        **_job(parallel),
        **started,
        **(extra_meta or {}),
    }
    if parallel is None or parallel.is_main:
        remove_previous_run(Path(out_dir))  # replacing a run: nothing of the older one may be mixed into this one
        save_run(out_dir, model, meta, weights=False)  # the run's description first: a stopped run can be resumed
    return _train_and_finish(model, splits, spec.recipe, spec.seed, Path(out_dir), meta, None, control)


def _base_and_config(spec: RunSpec, items: list[str], splits: Splits | None, n_labels: int):
    """The run to start from (None without spec.init_from) and the model's config: the spec's own, or the
    base's with this list's characters, labels and longest item (`init_from.config_for`)."""
    if not spec.init_from:
        return None, dict(spec.config)
    base = read_base(spec.init_from)
    if base.meta["model"] != spec.model:
        raise MakemoreError(f"init_from: {spec.init_from} is a {base.meta['model']} run; a run started from it "
                            f"trains a {base.meta['model']}, not a {spec.model}")
    vocab = splits.vocab if splits is not None else Vocab.from_items(items)
    return base, config_for(base, vocab, n_labels, max(len(it) for it in items), spec.config)


def _job(parallel: Parallel | None) -> dict[str, Any]:
    """What run.json records of the processes that trained: how many, and the backend they talked over."""
    return {"world_size": 1 if parallel is None else parallel.world_size,
            "backend": None if parallel is None else parallel.backend}


def remove_previous_run(out_dir: Path) -> None:
    """Delete an older run's files, run.json first: a kill meanwhile leaves no run rather than a mixed one."""
    try:
        for name in (META, TRAIN_STATE, WEIGHTS, BEST_WEIGHTS, METRICS):
            (out_dir / name).unlink(missing_ok=True)
    except OSError as e:
        raise MakemoreError(f"cannot replace the run in {out_dir}: {e.strerror or e}{disk_hint(e)}") from None


@contextmanager
def saving(out_dir: Path, what: str):
    """A failed write (full disk, read-only folder) becomes one clear error; the files already there are kept."""
    try:
        yield
    except OSError as e:
        kept = ("the last checkpoint is kept: resume the run to go on from it" if (out_dir / TRAIN_STATE).exists()
                else "no checkpoint yet: resume the run to start it over")
        raise MakemoreError(f"cannot save {what} in {out_dir}: {e.strerror or e}{disk_hint(e)}; {kept}") from None


def resume(
    items: list[str],
    out_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    control: RunControl | None = None,
    labels: ItemLabels | None = None,
) -> dict[str, Any]:
    """Continue a stopped run from its last saved state; bit for bit what an uninterrupted run would do.

    Any number of processes may resume a run that any number stopped: the state is that of the global
    batch order. In a job, every rank reads out_dir (several machines need it on a shared file system)."""
    out_dir = Path(out_dir)
    control = control or RunControl()
    meta = read_meta(out_dir)
    if meta.get("status") == "complete":
        raise MakemoreError(f"{out_dir} finished training already; nothing to resume")
    vocab = Vocab(tuple(meta["vocab"]))
    recipe_fields = dict(meta["recipe"])
    recipe_fields["betas"] = tuple(recipe_fields.get("betas", (0.9, 0.99)))
    recipe = Recipe(**recipe_fields)
    splits = splits_for(items, meta["model"], meta["config"].get("block_size"), seed=meta["split_seed"], vocab=vocab,
                        labels=labels)
    make_reproducible(device)
    torch.manual_seed(meta["seed"])
    model = build_model(meta["model"], **meta["config"])
    saved = load_train_state(out_dir)
    resume_from = None  # stopped before its first checkpoint: start again, from the same seed
    if saved is not None:
        model_state, optimizer_state, state = saved
        model.load_state_dict(model_state)
        resume_from = ResumePoint(state, optimizer_state)
    model.to(device)
    meta.update(status="training", **_job(control.parallel))
    return _train_and_finish(model, splits, recipe, meta["seed"], out_dir, meta, resume_from, control)


def _train_and_finish(model, splits: Splits, recipe: Recipe, seed: int, out_dir: Path, meta: dict[str, Any],
                      resume_from: ResumePoint | None, control: RunControl) -> dict[str, Any]:
    parallel = control.parallel
    main = parallel is None or parallel.is_main  # the one process that writes out_dir

    def checkpoint(state, optimizer) -> None:
        with saving(out_dir, "a checkpoint"):
            save_train_state(out_dir, model, optimizer, state)  # the resume point: one file, atomic, the truth
            save_weights(out_dir / WEIGHTS, model)  # so the run can be sampled while it trains
            save_metrics(out_dir, state.loss_curve, state.val_curve)

    kept: dict[str, Any] = {}  # the best-validated weights of this session, in every process (all of them evaluate)

    def best(state) -> None:
        kept["weights"] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if main:
            with saving(out_dir, "the best weights"):
                save_weights(out_dir / BEST_WEIGHTS, model)

    hooks = TrainHooks(on_progress=control.on_progress if main else None, on_best=best,
                       on_checkpoint=checkpoint if main else None, should_stop=control.should_stop,
                       should_finish=control.should_finish)
    try:
        result = train(model, splits.train, recipe, seed=seed, val_data=splits.val, hooks=hooks,
                       resume_from=resume_from, parallel=parallel)
    except TrainingInterrupted as stop:
        if main:
            save_run(out_dir, model, {**meta, "status": "interrupted", "step": stop.step}, weights=False)
        raise
    except TrainingDiverged as bad:
        if main:
            save_run(out_dir, model, {**meta, "status": "diverged", "step": bad.step}, weights=False)
        kept = "the last good checkpoint is kept there" if (out_dir / TRAIN_STATE).exists() else "no checkpoint had been saved yet"
        raise MakemoreError(f"{bad}; {kept} ({out_dir}); lower the learning rate and train again") from None
    if getattr(model, "prior_total", None) is not None and model.prior_total() > 0:
        choose_prior_weight(model, splits)  # a count model started from a base: how much its counts weigh
    start = time.perf_counter()
    weights_step = _use_best_weights(model, result.state, kept.get("weights"), out_dir / BEST_WEIGHTS)
    curve = dict(result.state.val_curve)
    # a val check of these very weights (same data, same evaluation): its number, not a second pass
    known = {"val": curve[weights_step]} if weights_step in curve else {}
    metrics = {f"{part}_nll": known[part] if part in known else
               evaluate_part(model, splits, part, parallel, control.on_eval if main else None) for part in SPLITS}
    meta = {**meta, "config": asdict(model.config), "status": "complete", "step": result.state.step,
            "weights_step": weights_step, "metrics": metrics, "train_seconds": result.seconds,
            "eval_seconds": time.perf_counter() - start}
    if result.state.val_curve:
        meta.update(best_val_nll=result.state.best_val, best_step=result.state.best_step,
                    stopped_early=result.state.stopped_early)
    if not main:
        return meta
    with saving(out_dir, "the trained model"):
        if result.loss_curve:  # metrics and weights first; run.json saying "complete" is written last
            save_metrics(out_dir, result.state.loss_curve, result.state.val_curve)
        save_weights(out_dir / WEIGHTS, model)
    save_run(out_dir, model, meta, weights=False)
    try:  # complete: the resume point is no longer needed
        (out_dir / TRAIN_STATE).unlink(missing_ok=True)
    except OSError:
        pass  # a stale resume point of a complete run is ignored by load_run and refused by resume
    return meta


def _use_best_weights(model, state, best: dict[str, torch.Tensor] | None, best_file: Path) -> int:
    """Put the weights of the best val check into the model, when val was checked and a later step ended worse:
    a run is used with the weights it validated best (`model.safetensors` holds them). The step they come from.

    This session's copy, or, for a run resumed after its best check, the best-weights file (the same bits)."""
    if not state.val_curve or state.best_step == state.step or state.best_step == 0:
        return state.step
    if best is None:
        if not best_file.exists():
            return state.step
        best = read_weights(best_file)
    model.load_state_dict(best)
    return state.best_step
