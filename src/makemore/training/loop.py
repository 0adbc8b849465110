"""Training and evaluation, written once for every model of the registry.

The trainer knows only the model contract — `forward(idx, targets) -> (logits, loss)`
— plus one flag: a model with `trainable = False` is fitted by its own `fit(x, y)`
(counting) instead of gradient descent. It never prints: progress goes to an
optional callback, which the CLI turns into a progress bar.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from .. import bounds
from ..data.items import SOFT_TARGET_LIMIT, next_char_distributions, unique_rows
from ..device import model_device
from .torchrun import Parallel
from .evaluation import evaluate
from ..models.layers import BatchNorm
from ..errors import ParameterError


OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("constant", "step", "cosine")


@dataclass
class Recipe:
    """How a model is trained. Named presets live in `recipes.py`."""

    steps: int = 10_000  # optimisation steps (ignored by count models)
    batch_size: int = 32  # examples per step; 0 means the whole training set (full-batch)
    optimizer: str = "sgd"  # "sgd" or "adamw"
    lr: float = 0.1  # peak learning rate
    schedule: str = "constant"  # "constant", "step" (×0.1 at 3/4 of the steps, the essay's), or "cosine"
    warmup_steps: int = 0  # linear warmup from 0 to lr over this many steps
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) or L2 (SGD) on matrices only
    momentum: float = 0.0  # SGD momentum
    betas: tuple[float, float] = (0.9, 0.99)  # AdamW betas
    soft_targets: bool = False  # target each window with the distribution of what follows its context in the
    # training data, not the one character that did: the same loss in expectation, less noise per step
    # (benchmarks/README.md); skipped when that table would pass data.SOFT_TARGET_LIMIT cells
    # sequence models: each pass's items are taken in runs of this many batches, sorted by length within the run,
    # so that a batch holds items of about one length and is cut to its longest; the batches are then shuffled,
    # and each one's loss weighs by its characters (the objective stays the mean per character). 0: random
    # batches, each padded to the list's longest item (names: 16 positions for 7 characters on average)
    length_groups: int = 0
    eval_interval: int = 0  # evaluate on val every this many steps (0: only when the caller asks)
    patience: int = 0  # early stopping: stop after this many evaluations without a new best (0: never)

    def check(self) -> None:
        """Refuse values out of bounds (bounds.BOUNDS) or unknown names, naming the field."""
        for name in ("steps", "batch_size", "lr", "weight_decay", "momentum", "min_lr_ratio", "warmup_steps",
                     "length_groups", "eval_interval", "patience"):
            setattr(self, name, bounds.check(name, getattr(self, name)))
        if self.optimizer not in OPTIMIZERS:
            raise ParameterError("optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ParameterError("schedule", f"must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")

    def lr_at(self, step: int) -> float:
        """Learning rate for step `step` (0-based)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "step":
            return self.lr if step < 0.75 * self.steps else self.lr * 0.1
        if self.schedule == "cosine":
            progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
            ratio = self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
            return self.lr * ratio
        return self.lr


@dataclass
class Progress:
    """What the trainer reports to its callback every `TrainHooks.report_every` steps."""

    step: int  # steps done so far
    steps: int  # steps in all
    loss: float  # mean training loss over the steps since the last report
    lr: float  # learning rate of the last step
    seconds: float  # training wall time so far
    val_loss: float | None = None  # set when this report is also a validation point


@dataclass
class TrainState:
    """Everything besides weights and optimizer that a stopped run needs to go on bit for bit."""

    step: int = 0  # steps done
    order: torch.Tensor | None = None  # the current pass's permutation of the training examples
    cursor: int = 0  # how far into `order` the next batch starts
    generator: torch.Tensor | None = None  # state of the batch-order random generator
    torch_rng: torch.Tensor | None = None  # PyTorch's global CPU generator (dropout draws from it on the CPU)
    device_rng: torch.Tensor | None = None  # the CUDA or MPS device's global generator, when training there
    running_loss: float = 0.0  # training loss summed since the last report
    running_steps: int = 0  # steps summed into running_loss
    loss_curve: list[tuple[int, float, float]] = field(default_factory=list)  # (step, mean train loss, lr)
    val_curve: list[tuple[int, float]] = field(default_factory=list)  # (step, val loss)
    best_val: float = math.inf  # lowest val loss seen at an evaluation
    best_step: int = 0  # the step it was seen at
    evals_since_best: int = 0  # for early stopping
    seconds: float = 0.0  # training wall time (evaluation and saving excluded), summed over interrupted sessions
    stopped_early: bool = False  # early stopping ended the run before recipe.steps
    initial_loss: float | None = None  # loss of the first step: the yardstick for "exploded"


@dataclass
class TrainHooks:
    """Ways for a caller to watch and steer training; the trainer itself never prints or writes files."""

    on_progress: Callable[[Progress], None] | None = None  # every report_every steps
    report_every: int = 100  # steps between reports: on_progress calls, and the points of the loss curve
    on_step: Callable[[int, float], None] | None = None  # after backward, before the update: (step, lr)
    on_best: Callable[[TrainState], None] | None = None  # a new best val loss (save the best weights)
    on_checkpoint: Callable[[TrainState, torch.optim.Optimizer], None] | None = None  # at each eval and on a stop
    should_stop: Callable[[], bool] | None = None  # polled after each step (e.g. set by SIGINT/SIGTERM)
    # polled after each step: True ends training there as early stopping does (the run finishes with the weights
    # of its best val check); `--model auto` ends a candidate so when its time budget is spent
    should_finish: Callable[[], bool] | None = None


class TrainingInterrupted(Exception):
    """should_stop() said so; on_checkpoint has already saved the state."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step

    def __reduce__(self):  # whole through pickle: a run in a worker process (makemore.training.parallel_runs) raises it back
        return (type(self), (self.step,))


EXPLODED = 10.0  # a mean training loss this many times the first step's counts as diverged


class TrainingDiverged(Exception):
    """The loss became NaN, infinite, or exploded; nothing was saved after the last good checkpoint."""

    def __init__(self, step: int, loss: float, last_good_loss: float | None):
        self.step, self.loss, self.last_good_loss = step, loss, last_good_loss
        last = f"{last_good_loss:.4f}" if last_good_loss is not None else "none yet"
        super().__init__(f"training diverged: the loss became {loss:.4g} by step {step} (NaN, infinite, or more than "
                         f"{EXPLODED:g}× the first step's; last good training loss {last})")

    def __reduce__(self):  # whole through pickle, as TrainingInterrupted
        return (type(self), (self.step, self.loss, self.last_good_loss))


@dataclass
class ResumePoint:
    """Where a stopped `train` call left off, as its on_checkpoint saw it: what going on bit for bit needs."""

    state: TrainState  # the trainer's own state at that step: batch order, random generators, curves
    optimizer_state: dict | None = None  # the optimizer's state_dict then; None: a fresh optimizer


@dataclass
class TrainResult:
    state: TrainState  # final state (loss curve, best val...)
    optimizer: torch.optim.Optimizer | None  # None for count models

    @property
    def loss_curve(self) -> list[tuple[int, float, float]]:
        return self.state.loss_curve

    @property
    def seconds(self) -> float:
        return self.state.seconds


class BatchOrder:
    """Which training examples each step sees: batches drawn without replacement, one seeded
    permutation per pass, a fresh permutation when what is left of a pass is smaller than a batch.

    Written once so that every trainer (`train`, `backprop.train_manual`) sees the same batches for
    the same seed, and a resumed run goes on with the very batches it would have seen. Built from a
    seed, or restored from a stopped run's `TrainState` (its order, cursor and generator state).
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, *, state: TrainState | None = None,
                 device: torch.device | str | None = None, lengths: torch.Tensor | None = None, groups: int = 0):
        self.n = n  # examples in the training set
        self.batch_size = n if batch_size == 0 or batch_size >= n else batch_size  # 0 or >= n: the whole set
        self.device = device  # where the indices of a batch are sent (the data's device); None: left on the CPU
        self.generator = torch.Generator()  # draws the permutations, on the CPU whatever the device
        # with lengths (n,) and groups > 0: batches of items of about one length (Recipe.length_groups)
        self.lengths, self.groups = (lengths.cpu(), groups) if lengths is not None and groups > 0 else (None, 0)
        if state is None or state.order is None:
            self.generator.manual_seed(seed)
            # drawn even when every batch is the whole set: the first draw is the same either way
            self.order = self._permutation()  # this pass's order of the examples
            self.cursor = 0  # where in `order` the next batch starts
        else:
            self.generator.set_state(state.generator)
            self.order, self.cursor = state.order, state.cursor

    @property
    def full(self) -> bool:
        """Every batch is the whole training set, in its own order."""
        return self.batch_size == self.n

    def next(self) -> torch.Tensor | slice:
        """The indices of the next batch; `slice(None)` when every batch is the whole set (a view, no copy)."""
        if self.full:
            return slice(None)
        if self.cursor + self.batch_size > self.n:
            self.order, self.cursor = self._permutation(), 0
        ix = self.order[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return ix if self.device is None else ix.to(self.device)

    def _permutation(self) -> torch.Tensor:
        """A new pass: a random permutation of the examples; grouped by length when asked.

        Grouped: the permutation is cut into runs of `groups` batches, each run sorted by length (stable) and
        cut into batches, and the whole batches of the pass are put in a random order; the items of the one
        partial batch, if any, go last, where the pass ends before them (as an ungrouped pass's last items do)."""
        order = torch.randperm(self.n, generator=self.generator)
        if self.lengths is None or self.full:
            return order
        B, run = self.batch_size, self.groups * self.batch_size
        runs = [part[torch.argsort(self.lengths[part], stable=True)] for part in order.split(run)]
        pieces = [batch for part in runs for batch in part.split(B)]
        whole = [batch for batch in pieces if batch.numel() == B]
        rest = [batch for batch in pieces if batch.numel() < B]
        shuffled = torch.randperm(len(whole), generator=self.generator).tolist()
        return torch.cat([whole[k] for k in shuffled] + rest)

    def save(self, state: TrainState) -> None:
        """Record where the order stands in `state`, so that a resume draws the same batches next."""
        state.order, state.cursor, state.generator = self.order, self.cursor, self.generator.get_state()


def check_recipe_fits(model: nn.Module, recipe: Recipe) -> None:
    """Refuse a recipe that this model cannot train by (a ParameterError naming the field), before any step."""
    if recipe.length_groups > 0 and any(isinstance(m, BatchNorm) for m in model.modules()):
        # its running statistics would average batches of one length each (in a batch of short items nearly
        # every position reads padding), unlike any batch it normalises at evaluation: wavenet-conv went 1.98 -> 2.47
        raise ParameterError("length_groups", "needs a model without BatchNorm; use 0 (random batches) for this one")


def rows_independent(model: nn.Module) -> bool:
    """Whether the model's training loss is a mean of one term per row: no BatchNorm (its statistics mix
    the batch's rows) and no dropout (a random mask per row)."""
    return not any(isinstance(m, BatchNorm) or (isinstance(m, nn.Dropout) and m.p > 0) for m in model.modules())


def pooled_batch(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A full batch of windows X (N, T), targets Y (N,) as its distinct contexts (K, T) with soft targets (K, V').

    Row k's targets are the counts of what follows context k, divided by N / K: the mean over the K rows of
    -sum_j t_kj log q_kj is then sum over all N windows of -log q(y | x), over N, the full batch's loss
    exactly (and so its gradient), from K rows instead of N. bigram-nn's 182,625 windows of names.txt are
    27 contexts. Returned as is when the table would pass SOFT_TARGET_LIMIT cells or saves nothing."""
    contexts, context_of = unique_rows(X)
    K, n_classes = contexts.shape[0], int(Y.max()) + 1
    if K * n_classes > SOFT_TARGET_LIMIT or K > X.shape[0] // 2:
        return X, Y
    counts = torch.zeros(K, n_classes, dtype=torch.float64, device=X.device)
    counts.index_put_((context_of, Y.long()), torch.ones(Y.shape[0], dtype=torch.float64, device=X.device),
                      accumulate=True)
    return contexts, (counts * (K / X.shape[0])).float()


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    # Decay matrices only: gains, biases and embeddings-as-vectors are left alone, as usual.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if recipe.optimizer == "adamw":
        try:  # one fused kernel for all parameters: a third of the optimizer's time per step on CPU
            return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, fused=True)
        except RuntimeError:  # a device or dtype without the fused kernel
            return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)


def train(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    recipe: Recipe,
    *,
    seed: int = 0,
    val_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    hooks: TrainHooks | None = None,
    resume_from: ResumePoint | None = None,
    parallel: Parallel | None = None,
) -> TrainResult:
    """Train `model` on windows (X, Y) with `recipe`; deterministic for a given seed.

    For a sequence model, (X, Y) are whole padded items (`data.build_sequences`) and a batch is
    `recipe.batch_size` items; the loss is per predicted character, padding left out.

    Given `resume_from`, the state and optimizer state saved by an earlier call that was stopped, it
    continues exactly where that call stopped: same batches, same dropout masks (the random
    generators' states are part of the state), same losses, same weights.
    Callbacks (progress, per step, best, checkpoint, stop) and how often to report all come in `hooks`.

    With `parallel` (a started process group, `distributed.start`), every rank calls this with the
    same data and seed: each trains on its share of every global batch through DistributedDataParallel
    (`distributed` says why that is the one-process recipe); losses and evaluations are reduced.
    """
    hooks = hooks or TrainHooks()
    state, optimizer_state = (None, None) if resume_from is None else (resume_from.state, resume_from.optimizer_state)
    device = model_device(model)
    X, Y = data[0].to(device), data[1].to(device)
    start = time.perf_counter()
    model.train()
    if not getattr(model, "trainable", True):
        model.fit(X, Y)  # every rank counts the whole split: the same table everywhere
        model.eval()
        return TrainResult(TrainState(step=recipe.steps, seconds=time.perf_counter() - start), None)
    recipe.check()
    optimizer = make_optimizer(model, recipe)
    check_recipe_fits(model, recipe)
    lengths = (Y >= 0).sum(dim=1) if Y.dim() == 2 and recipe.length_groups > 0 else None  # (N,) targets per item
    batches = BatchOrder(X.shape[0], recipe.batch_size, seed, state=state, device=device, lengths=lengths,
                         groups=recipe.length_groups)
    if state is None:
        state = TrainState()
        batches.save(state)
    else:
        restore_rng(state, device)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
    if parallel is not None and not parallel.is_main:  # its own dropout masks, decided by (seed, rank, step)
        torch.manual_seed((seed + 1_000_003 * parallel.rank + 7_919 * state.step) % 2 ** 63)
    if batches.full and parallel is None and Y.dim() == 1 and rows_independent(model):
        X, Y = pooled_batch(X, Y)  # the same full-batch loss and gradient, from each distinct window once
    share = _Share(parallel, X.shape[0], Y, device)
    net = share.wrap(model)
    # soft targets are per window (Y of shape (N,)); whole sequences (Y (N, L)) always train on the characters
    soft = next_char_distributions(X, Y) if recipe.soft_targets and not batches.full and Y.dim() == 1 else None
    if soft is not None:
        context_of, dist = soft[0].to(device), soft[1].to(device)
    clock = _Clock(state.seconds)
    # summed on device, no .item() sync per step; in a job, rank 0 carries what a resumed state brought
    running = torch.tensor(state.running_loss if share.is_main else 0.0, device=device)

    def sync_state() -> None:  # everything a resume point needs, as of now
        batches.save(state)
        capture_rng(state, device)
        state.running_loss = share.total(running.clone()).item()
        state.seconds = clock.training_seconds()

    mean_length = None if lengths is None else lengths.double().mean().item()
    while state.step < recipe.steps and not state.stopped_early:
        global_ix = batches.next()
        ix, weight = share.local(global_ix)
        xb, yb = X[ix], (Y[ix] if soft is None else dist[context_of[ix]])  # (B, T), (B,) or (B, V)
        if lengths is not None and not batches.full:  # items of about one length: cut to the longest, weigh by the characters
            longest = int(lengths[ix].max()) if xb.shape[0] else 1
            xb, yb = xb[:, :longest], yb[:, :longest]
            weight *= lengths[global_ix].sum().item() / (global_ix.numel() * mean_length)
        lr = _step(net, optimizer, recipe, state, xb, yb, hooks, running, weight, share)
        last = state.step == recipe.steps
        evaluate_now = val_data is not None and recipe.eval_interval > 0 and (state.step % recipe.eval_interval == 0 or last)
        if state.running_steps == hooks.report_every or last or evaluate_now:
            mean_loss = _close_report(state, share.total(running.clone()), running, lr)
            sync_state()
            with clock.paused():  # evaluation and the hooks are not training
                _report(model, val_data if evaluate_now else None, recipe, state, optimizer, hooks, mean_loss, lr,
                        parallel)
        if hooks.should_stop is not None and share.stop_check_due(state.step) and share.any(hooks.should_stop()) \
                and state.step < recipe.steps:
            sync_state()
            if hooks.on_checkpoint is not None:
                hooks.on_checkpoint(state, optimizer)
            raise TrainingInterrupted(state.step)
        if hooks.should_finish is not None and share.stop_check_due(state.step) and share.any(hooks.should_finish()):
            state.stopped_early = True
    sync_state()
    model.eval()
    return TrainResult(state, optimizer)


STOP_CHECK_EVERY = 10  # steps between a job's ranks agreeing whether to stop (Ctrl-C, SIGTERM)


class _Share:
    """This process's part of each global batch: all of it alone, its rank's share in a data-parallel job."""

    def __init__(self, parallel: Parallel | None, n: int, Y: torch.Tensor, device: torch.device):
        self.parallel, self.n, self.Y, self.device = parallel, n, Y, device
        self.is_main = parallel is None or parallel.is_main  # rank 0, or the one process

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the steps call: the model, or DDP around it (which averages the ranks' gradients)."""
        if self.parallel is None:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers (BatchNorm's running statistics) come from the global batch on every rank: no sync per step
        try:
            return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
        except TypeError:  # a PyTorch before forward_sync_buffers: its older name
            return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)

    def local(self, ix) -> tuple[torch.Tensor | slice, float]:
        """This rank's rows of a global batch, and the weight that makes DDP's gradient average the batch mean's.

        A rank's loss is the mean over its own predicted characters; weighted by world_size x its share of
        the batch's characters, the ranks' average is the mean over the whole batch, shares equal or not.
        """
        if self.parallel is None:
            return ix, 1.0
        rows = torch.arange(self.n, device=self.device) if isinstance(ix, slice) else ix
        mine = self.parallel.shard(rows)
        if self.Y.dim() == 2:  # sequences: characters, padding left out
            count, total = (self.Y[mine] >= 0).sum().item(), (self.Y[rows] >= 0).sum().item()
        else:
            count, total = mine.numel(), rows.numel()
        return mine, self.parallel.world_size * count / total

    def total(self, t: torch.Tensor) -> torch.Tensor:
        """Summed over the ranks (itself alone)."""
        return t if self.parallel is None else self.parallel.all_sum(t)

    def any(self, flag: bool) -> bool:
        """True if any rank says so: they stop together."""
        return flag if self.parallel is None else self.parallel.any(flag, self.device)

    def stop_check_due(self, step: int) -> bool:
        """Whether to ask about stopping after this step: every step alone; in a job every STOP_CHECK_EVERY steps,
        at the same steps on every rank (the question is a collective: a round trip between the processes)."""
        return self.parallel is None or step % STOP_CHECK_EVERY == 0


def _step(net, optimizer, recipe: Recipe, state: TrainState, xb, yb, hooks: TrainHooks, running: torch.Tensor,
          weight: float, share: _Share) -> float:
    """One optimisation step on one batch; the loss is added to `running` on the device. Returns the lr used.

    `weight` scales this rank's loss so that the ranks' average is the global batch's mean (1 alone);
    `running` then holds this rank's part of that mean, summed over the ranks at each report.
    """
    step = state.step
    lr = recipe.lr_at(step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = net(xb, yb)
    if weight != 1.0:
        loss = loss * weight
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if hooks.on_step is not None:
        hooks.on_step(step, lr)
    optimizer.step()
    world = 1 if share.parallel is None else share.parallel.world_size
    running += loss.detach() / world
    if state.initial_loss is None:
        state.initial_loss = share.total(loss.detach() / world).item()
    state.running_steps += 1
    state.step += 1
    return lr


def _close_report(state: TrainState, summed: torch.Tensor, running: torch.Tensor, lr: float) -> float:
    """The mean training loss since the last report (`summed`: `running` over the ranks) into the loss curve;
    a diverged loss stops training."""
    mean_loss = summed.item() / state.running_steps
    if not math.isfinite(mean_loss) or mean_loss > EXPLODED * state.initial_loss:
        raise TrainingDiverged(state.step, mean_loss, state.loss_curve[-1][1] if state.loss_curve else None)
    state.loss_curve.append((state.step, mean_loss, lr))
    running.zero_()
    state.running_steps = 0
    return mean_loss


def _report(model, val_data, recipe: Recipe, state: TrainState, optimizer, hooks: TrainHooks, mean_loss: float,
            lr: float, parallel: Parallel | None = None) -> None:
    """A report point: evaluate val if given (best weights, early stopping, a resume point), then tell the hooks."""
    val_loss = None
    if val_data is not None:
        val_loss = evaluate(model, val_data, parallel=parallel)  # eval mode: no random draws, resumes stay exact
        model.train()
        state.val_curve.append((state.step, val_loss))
        if val_loss < state.best_val:
            state.best_val, state.best_step, state.evals_since_best = val_loss, state.step, 0
            if hooks.on_best is not None:
                hooks.on_best(state)
        else:
            state.evals_since_best += 1
            state.stopped_early = 0 < recipe.patience <= state.evals_since_best
    if hooks.on_progress is not None:
        hooks.on_progress(Progress(state.step, recipe.steps, mean_loss, lr, state.seconds, val_loss))
    if val_data is not None and hooks.on_checkpoint is not None:
        hooks.on_checkpoint(state, optimizer)


class _Clock:
    """Training wall time: the seconds of earlier sessions plus this one's, minus what was paused."""

    def __init__(self, before: float):
        self.before, self.start, self.paused_seconds = before, time.perf_counter(), 0.0

    def training_seconds(self) -> float:
        return self.before + time.perf_counter() - self.start - self.paused_seconds

    @contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.paused_seconds += time.perf_counter() - t


def capture_rng(state: TrainState, device: torch.device) -> None:
    """Record the global random generators training draws from (dropout), so a resume draws the same next."""
    state.torch_rng = torch.get_rng_state()
    if device.type == "cuda":
        state.device_rng = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state.device_rng = torch.mps.get_rng_state()


def restore_rng(state: TrainState, device: torch.device) -> None:
    """Put back the generators `capture_rng` recorded (a state saved before they were recorded: left as they are)."""
    if state.torch_rng is not None:
        torch.set_rng_state(state.torch_rng)
    if state.device_rng is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state.device_rng, device)
    elif state.device_rng is not None and device.type == "mps":
        torch.mps.set_rng_state(state.device_rng)
