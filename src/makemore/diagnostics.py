"""Looking inside a network: activations, saturation, gradients and update sizes, per layer.

Every tanh of a model is an `nn.Tanh` module, so this module finds the layers by
hooking them, whatever the model. The figures are the essay's diagnostics:
- the initial loss against the ideal -log(1/V) (all characters equally likely);
- tanh saturation: the share of |h| > 0.99, where tanh is flat and its local
  gradient 1 - h² is ~0; a neuron saturated on every example is dead;
- pre-activation statistics: how many land in [-2, 2], where tanh is not flat;
- the update-to-data ratio log10(std(lr·grad) / std(data)) per weight matrix, ~-3 being healthy.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .train import Recipe, train

SATURATED = 0.99  # |tanh| above this counts as saturated


@dataclass
class LayerStats:
    """One tanh layer on one batch."""

    name: str  # the tanh module's name in the model
    preact_mean: float
    preact_std: float
    preact_in_range: float  # share of pre-activations within [-2, 2]
    act_mean: float
    act_std: float
    saturation: float  # share of |h| > 0.99 over all neurons and examples
    worst_neuron_saturation: float  # the most saturated neuron's share of examples
    dead_neurons: int  # neurons saturated for every example of the batch
    neurons: int
    grad_mean: float = float("nan")  # of dLoss/dh, when a backward pass was made
    grad_std: float = float("nan")


@dataclass
class Captured:
    """What the hooks saw: per tanh layer, its input, its output (grad retained)."""

    names: list[str] = field(default_factory=list)
    preacts: list[torch.Tensor] = field(default_factory=list)
    acts: list[torch.Tensor] = field(default_factory=list)


@contextmanager
def capture_tanh(model: nn.Module):
    """Record the input and output of every nn.Tanh in the model during the forward passes inside."""
    captured = Captured()

    def make_hook(name):
        def hook(module, inputs, output):
            if output.requires_grad:
                output.retain_grad()  # so the gradient flowing into h can be read after backward
            captured.names.append(name)
            captured.preacts.append(inputs[0].detach())
            captured.acts.append(output)
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if isinstance(m, nn.Tanh)]
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def layer_stats(name: str, preact: torch.Tensor, act: torch.Tensor) -> LayerStats:
    h = act.detach().reshape(-1, act.shape[-1])  # (examples, neurons); positions count as examples
    x = preact.reshape(-1, preact.shape[-1])
    saturated = h.abs() > SATURATED  # (examples, neurons)
    per_neuron = saturated.float().mean(0)  # (neurons,)
    stats = LayerStats(
        name=name,
        preact_mean=x.mean().item(), preact_std=x.std().item(),
        preact_in_range=(x.abs() <= 2).float().mean().item(),
        act_mean=h.mean().item(), act_std=h.std().item(),
        saturation=saturated.float().mean().item(),
        worst_neuron_saturation=per_neuron.max().item(),
        dead_neurons=int((per_neuron == 1).sum()),
        neurons=h.shape[1],
    )
    if act.grad is not None:
        g = act.grad.reshape(-1, act.shape[-1])
        stats.grad_mean, stats.grad_std = g.mean().item(), g.std().item()
    return stats


@dataclass
class Snapshot:
    """A model looked at on one batch: loss, per-layer stats, and the raw tensors for plots."""

    loss: float
    ideal_loss: float  # -log(1/V)
    layers: list[LayerStats]
    acts: list[torch.Tensor]  # per layer (examples, neurons)
    grads: list[torch.Tensor | None]  # dLoss/dh per layer


def snapshot(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> Snapshot:
    """Forward and backward one batch in train mode (as at a training step) and measure every tanh layer."""
    was_training = model.training
    model.train()
    model.zero_grad(set_to_none=True)
    with capture_tanh(model) as cap:
        logits, loss = model(X, Y)
    loss.backward()
    layers = [layer_stats(n, p, a) for n, p, a in zip(cap.names, cap.preacts, cap.acts)]
    acts = [a.detach().reshape(-1, a.shape[-1]) for a in cap.acts]
    grads = [None if a.grad is None else a.grad.reshape(-1, a.shape[-1]) for a in cap.acts]
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return Snapshot(loss.item(), math.log(logits.shape[-1]), layers, acts, grads)


@dataclass
class UpdateRatios:
    """log10(std(lr·grad) / std(data)) per weight matrix, recorded every step."""

    names: list[str]
    steps: list[int] = field(default_factory=list)
    ratios: list[list[float]] = field(default_factory=list)  # [step][matrix]

    def mean_over_last(self, n: int) -> list[float]:
        rows = self.ratios[-n:]
        return [sum(r[i] for r in rows) / len(rows) for i in range(len(self.names))]


def train_with_update_ratios(model: nn.Module, data, recipe: Recipe, seed: int = 0) -> UpdateRatios:
    """Train as usual, recording each weight matrix's update:data ratio at every step."""
    named = [(n, p) for n, p in model.named_parameters() if p.dim() == 2]
    ratios = UpdateRatios(names=[n for n, _ in named])

    def record(step: int, lr: float) -> None:
        with torch.no_grad():
            ratios.steps.append(step)
            ratios.ratios.append([
                ((lr * p.grad).std() / p.std()).log10().item() if p.grad is not None else float("nan")
                for _, p in named
            ])

    train(model, data, recipe, seed=seed, on_step=record)
    return ratios


@dataclass
class CompareRow:
    model: str
    variant: str  # what differs: the init, and BatchNorm for the deep model
    config: dict
    train_nll: float
    val_nll: float
    seconds: float


def compare_inits(splits_by_block, recipe: Recipe, seed: int = 42, on_start=None) -> list[CompareRow]:
    """The essay's comparison: one recipe, one seed, only the initialisation (and BatchNorm) changing.

    `splits_by_block(block_size)` returns the data for a block size.
    """
    from .models import build_model
    from .models.mlp import INITS
    from .train import evaluate

    variants = [("mlp", f"init={init}", {"init": init}) for init in INITS]
    variants += [("mlp-deep", f"init={init}, batchnorm={bn}", {"init": init, "batchnorm": bn})
                 for bn in (False, True) for init in ("naive", "kaiming")]
    rows = []
    for name, label, config in variants:
        if on_start:
            on_start(f"{name} {label}")
        splits = splits_by_block(3)
        torch.manual_seed(seed)
        model = build_model(name, vocab_size=splits.vocab.size, **config)
        result = train(model, splits.train, recipe, seed=seed)
        rows.append(CompareRow(name, label, config, evaluate(model, splits.train), evaluate(model, splits.val), result.seconds))
    return rows


# ----------------------------------------------------------------------------- BatchNorm's two modes

def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    from .models.layers import BatchNorm

    return [m for m in model.modules() if isinstance(m, BatchNorm)]


@dataclass
class ModeCheck:
    """One example forwarded alone, compared with the same example inside its batch."""

    train_mode_error: str | None  # what PyTorch said, if train mode refused a batch of one
    train_mode_max_diff: float  # max |logit difference| in train mode (nan if it failed)
    eval_mode_max_diff: float  # the same in eval mode: ~0, the running statistics do not depend on the batch


@torch.no_grad()
def single_example_modes(model: nn.Module, X: torch.Tensor, index: int = 0) -> ModeCheck:
    """The essay's claim: alone, in train mode an example is normalised by its own statistics (variance 0)."""
    import copy

    probe = copy.deepcopy(model)  # train-mode forwards update running stats: keep the real model untouched
    probe.eval()
    batch_eval = probe(X)[0]
    single_eval = probe(X[index:index + 1])[0]
    eval_diff = (single_eval[0] - batch_eval[index]).abs().max().item()
    probe.train()
    batch_train = probe(X)[0]
    try:
        single_train = probe(X[index:index + 1])[0]
        error, train_diff = None, (single_train[0] - batch_train[index]).abs().max().item()
    except (ValueError, RuntimeError) as e:  # "Expected more than 1 value per channel when training"
        error, train_diff = str(e).splitlines()[0], float("nan")
    return ModeCheck(error, train_diff, eval_diff)


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, X: torch.Tensor, chunk: int = 65_536) -> None:
    """Replace each BatchNorm's running estimates by the exact statistics over all of X.

    Layer by layer, in order: layer k's input depends on the calibrated layers before it.
    """
    was_training = model.training
    model.eval()
    for bn in batchnorm_layers(model):
        total = torch.zeros_like(bn.running_mean, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        count = 0

        def accumulate(module, inputs):
            nonlocal total, total_sq, count
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).double()  # (examples × positions, C)
            total += x.sum(0)
            total_sq += (x * x).sum(0)
            count += x.shape[0]

        handle = bn.register_forward_pre_hook(accumulate)
        try:
            for i in range(0, X.shape[0], chunk):
                model(X[i:i + chunk])
        finally:
            handle.remove()
        mean = total / count
        var = (total_sq - count * mean * mean) / max(1, count - 1)  # unbiased, like the running estimate
        bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
        bn.running_var.copy_(var.to(bn.running_var.dtype))
    model.train(was_training)
