"""Training and evaluation, written once for every model of the registry.

The trainer knows only the model contract — `forward(idx, targets) -> (logits, loss)`
— plus one flag: a model with `trainable = False` is fitted by its own `fit(x, y)`
(counting) instead of gradient descent. It never prints: progress goes to an
optional callback, which the CLI turns into a progress bar.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from .device import model_device
from .errors import MakemoreError


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

    def check(self) -> None:
        if self.steps < 1:
            raise MakemoreError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 0:
            raise MakemoreError(f"batch size must be positive (or 0 for full batch), got {self.batch_size}")
        if not self.lr > 0:
            raise MakemoreError(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in ("sgd", "adamw"):
            raise MakemoreError(f"unknown optimizer {self.optimizer!r}; choose sgd or adamw")
        if self.schedule not in ("constant", "step", "cosine"):
            raise MakemoreError(f"unknown schedule {self.schedule!r}; choose constant, step or cosine")

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
    """What the trainer reports to its callback every `report_every` steps."""

    step: int  # steps done so far
    steps: int  # steps in all
    loss: float  # mean training loss over the steps since the last report
    lr: float  # learning rate of the last step
    seconds: float  # wall time since training started


@dataclass
class TrainResult:
    loss_curve: list[tuple[int, float, float]] = field(default_factory=list)  # (step, train loss, lr)
    seconds: float = 0.0  # wall time of training alone


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    # Decay matrices only: gains, biases and embeddings-as-vectors are left alone, as usual.
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)


def train(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    recipe: Recipe,
    *,
    seed: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    report_every: int = 100,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train `model` on windows (X, Y) with `recipe`; deterministic for a given seed.

    `on_step(step, lr)`, if given, runs after each backward pass and before the update:
    the gradients are in `.grad` and the weights are those they were computed at (for diagnostics).
    """
    X, Y = data
    device = model_device(model)
    X, Y = X.to(device), Y.to(device)
    result = TrainResult()
    start = time.perf_counter()
    model.train()
    if not getattr(model, "trainable", True):
        model.fit(X, Y)
        result.seconds = time.perf_counter() - start
        return result
    recipe.check()
    optimizer = make_optimizer(model, recipe)
    n = X.shape[0]
    batch_size = n if recipe.batch_size == 0 or recipe.batch_size >= n else recipe.batch_size
    gen = torch.Generator().manual_seed(seed)
    # Batches are drawn without replacement: one shuffled permutation per pass over the data.
    order, cursor = torch.randperm(n, generator=gen), 0
    running = torch.zeros((), device=device)  # summed on device: no .item() sync in the hot loop
    since = 0
    for step in range(recipe.steps):
        if batch_size == n:
            xb, yb = X, Y
        else:
            if cursor + batch_size > n:
                order, cursor = torch.randperm(n, generator=gen), 0
            ix = order[cursor:cursor + batch_size].to(device)
            cursor += batch_size
            xb, yb = X[ix], Y[ix]
        lr = recipe.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if on_step is not None:
            on_step(step, lr)
        optimizer.step()
        running += loss.detach()
        since += 1
        if since == report_every or step == recipe.steps - 1:
            mean_loss = running.item() / since
            if not math.isfinite(mean_loss):
                raise MakemoreError(
                    f"training diverged at step {step + 1} (loss {mean_loss}); lower the learning rate (--lr)"
                )
            result.loss_curve.append((step + 1, mean_loss, lr))
            if on_progress is not None:
                on_progress(Progress(step + 1, recipe.steps, mean_loss, lr, time.perf_counter() - start))
            running.zero_()
            since = 0
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


@torch.no_grad()
def evaluate(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], batch_size: int = 65_536) -> float:
    """Mean NLL per predicted character over (X, Y), in eval mode (BatchNorm uses running stats)."""
    X, Y = data
    device = model_device(model)
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, X.shape[0], batch_size):
        xb, yb = X[i:i + batch_size].to(device), Y[i:i + batch_size].to(device)
        _, loss = model(xb, yb)
        total += loss.item() * xb.shape[0]
    model.train(was_training)
    return total / X.shape[0]
