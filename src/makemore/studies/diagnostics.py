"""Looking inside a network: activations, saturation, gradients and update sizes, per layer.

Every tanh of a model is an `nn.Tanh` module, so this module finds the layers by
hooking them, whatever the model. The figures are the essay's diagnostics:
- the initial loss against the ideal -log(1/V) (all characters equally likely);
- tanh saturation: the share of |h| > 0.99, where tanh is flat and its local
  gradient 1 - h² is ~0; a neuron saturated on every example is dead;
- pre-activation statistics: how many land in [-2, 2], where tanh is not flat;
- the update-to-data ratio log10(std(lr·grad) / std(data)) per weight matrix, ~-3 being healthy.

`diagnose` runs the whole study of `makemore diagnose` on a list of items and returns a
`DiagnoseReport`; `format_diagnose` is the command's text, `plots.diagnose_plots` its PNGs.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from .. import bounds
from ..data.items import Splits, make_splits
from ..errors import ParameterError
from ..models import build_model
from ..models.layers import train_mode
from ..models.mlp import INITS
from ..training.recipes import PRESETS, get_recipe
from ..training.loop import Recipe, TrainHooks, evaluate, train

SATURATED = 0.99  # |tanh| above this counts as saturated


@dataclass
class LayerStats:
    """One tanh layer on one batch."""

    name: str  # the tanh module's name in the model
    preact_mean: float  # mean of the tanh's inputs
    preact_std: float  # their standard deviation
    preact_in_range: float  # share of pre-activations within [-2, 2]
    act_mean: float  # mean of the tanh's outputs h
    act_std: float  # their standard deviation
    saturation: float  # share of |h| > 0.99 over all neurons and examples
    worst_neuron_saturation: float  # the most saturated neuron's share of examples
    dead_neurons: int  # neurons saturated for every example of the batch
    neurons: int  # neurons of the layer
    grad_mean: float = float("nan")  # of dLoss/dh, when a backward pass was made
    grad_std: float = float("nan")  # its standard deviation


@dataclass
class Captured:
    """What the hooks saw: per tanh layer, its input, its output (grad retained)."""

    names: list[str] = field(default_factory=list)  # the tanh modules' names, in forward order
    preacts: list[torch.Tensor] = field(default_factory=list)  # their inputs, detached
    acts: list[torch.Tensor] = field(default_factory=list)  # their outputs, gradients retained


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

    loss: float  # the batch's mean NLL
    ideal_loss: float  # -log(1/V)
    layers: list[LayerStats]  # one per tanh layer, in forward order
    acts: list[torch.Tensor]  # per layer (examples, neurons)
    grads: list[torch.Tensor | None]  # dLoss/dh per layer


def snapshot(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> Snapshot:
    """Forward and backward one batch in train mode (as at a training step) and measure every tanh layer."""
    with train_mode(model):
        model.zero_grad(set_to_none=True)
        with capture_tanh(model) as cap:
            logits, loss = model(X, Y)
        loss.backward()
        layers = [layer_stats(n, p, a) for n, p, a in zip(cap.names, cap.preacts, cap.acts)]
        acts = [a.detach().reshape(-1, a.shape[-1]) for a in cap.acts]
        grads = [None if a.grad is None else a.grad.reshape(-1, a.shape[-1]) for a in cap.acts]
        model.zero_grad(set_to_none=True)
    return Snapshot(loss.item(), math.log(logits.shape[-1]), layers, acts, grads)


@dataclass
class UpdateRatios:
    """log10(std(lr·grad) / std(data)) per weight matrix, recorded every step."""

    names: list[str]  # the weight matrices (every 2-D parameter), by parameter name
    steps: list[int] = field(default_factory=list)  # the 0-based step of each record
    ratios: list[list[float]] = field(default_factory=list)  # [step][matrix]

    def mean_over_last(self, n: int) -> list[float]:
        """Each matrix's ratio averaged over the last n steps (a single step is noisy)."""
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

    train(model, data, recipe, seed=seed, hooks=TrainHooks(on_step=record))
    return ratios


@dataclass
class CompareRow:
    """One model of the init comparison, trained with the shared recipe."""

    model: str  # registry name: mlp or mlp-deep
    variant: str  # what differs: the init, and BatchNorm for the deep model
    config: dict  # the model config of the variant
    train_nll: float  # after training
    val_nll: float  # after training
    seconds: float  # training wall time


def compare_inits(splits_by_block: Callable[[int], Splits], recipe: Recipe, seed: int = 42,
                  on_start: Callable[[str], None] | None = None) -> list[CompareRow]:
    """The essay's comparison: one recipe, one seed, only the initialisation (and BatchNorm) changing.

    `splits_by_block(block_size)` returns the data for a block size; on_start gets each variant's
    name before it trains ("mlp init=naive", "mlp-deep init=kaiming, batchnorm=True"...).
    """
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


# ----------------------------------------------------------------------------- the study of `makemore diagnose`

UPDATE_WINDOW = 100  # the update:data table averages this many last steps


def diagnose_config(model: str, init: str | None) -> dict:
    """The model config the study uses: the init for mlp and mlp-deep (others have none to choose).

    Builds the model once, so a bad model name or init raises MakemoreError before any data is read.
    """
    config = {"init": init} if model in ("mlp", "mlp-deep") and init else {}
    build_model(model, **config)
    return config


@dataclass
class DiagnoseReport:
    """Everything `makemore diagnose` measures, for `format_diagnose` and `plots.diagnose_plots`."""

    model: str  # registry name
    label: str  # the model and its init as the text and plot titles show it, e.g. "mlp (init kaiming)"
    params: int  # parameters of the model
    batch_size: int  # examples of the measured batch (the same batch before and after training)
    vocab_size: int  # V of the data: the ideal initial loss is -log(1/V)
    before: Snapshot  # the model at step 0 on the measured batch
    after: Snapshot  # the same batch after the short SGD run
    short_recipe: Recipe  # the short run: the model's essay recipe with `steps` steps and a constant lr
    ratios: UpdateRatios  # update:data per weight matrix at every step of the short run
    compare: list[CompareRow] | None  # the init comparison, when asked for
    compare_recipe_name: str | None  # the preset the comparison trained with ("essay", "fast")
    compare_recipe: Recipe | None  # that preset, with InitComparison.steps if given


class _SplitsByBlock:
    """The essay's split of the items, built once per block size (the study and the comparison share it)."""

    def __init__(self, items: list[str]):
        self.items = items  # the whole dataset
        self.cache: dict[int, Splits] = {}  # splits by block size

    def __call__(self, block_size: int) -> Splits:
        if block_size not in self.cache:
            self.cache[block_size] = make_splits(self.items, block_size)
        return self.cache[block_size]


@dataclass(frozen=True)
class InitComparison:
    """`diagnose`'s optional comparison: every init of the MLP (and the deep MLP with and without BatchNorm)
    trained with one recipe and one seed. Its errors name `compare_recipe` and `compare_steps`."""

    recipe: str = "essay"  # the mlp preset every variant trains with ("essay", "fast"...)
    steps: int | None = None  # that preset's steps replaced by these; None: the preset's own

    def __post_init__(self) -> None:
        if self.recipe not in PRESETS["mlp"]:
            raise ParameterError("compare_recipe", f"must be one of {', '.join(PRESETS['mlp'])}, got {self.recipe!r}")
        object.__setattr__(self, "steps", bounds.check_optional("compare_steps", self.steps, "steps"))

    def training_recipe(self) -> Recipe:
        """The preset, with `steps` if given."""
        recipe = get_recipe("mlp", self.recipe)
        if self.steps:
            recipe.steps = self.steps
        return recipe


def diagnose(items: list[str], *, model: str = "mlp", init: str | None = None, batch_size: int = 32,
             steps: int = 1000, seed: int = 42, compare: InitComparison | bool | None = None,
             on_start: Callable[[str], None] | None = None) -> DiagnoseReport:
    """The essay's init diagnostics: look at a seeded model on one random training batch at step 0,
    train it `steps` steps of SGD (its essay recipe, constant lr) recording update:data ratios, and
    look at the same batch again. With `compare`, also train every init of the MLP (and the deep MLP
    with and without BatchNorm) with its recipe (True: `InitComparison()`, the essay's recipe); on_start
    gets each variant's name before it trains.
    """
    compare = InitComparison() if compare is True else (compare or None)
    batch_size = bounds.check("batch_size", batch_size, "diagnose.batch_size")
    steps = bounds.check("steps", steps)
    bounds.check("seed", seed)
    config = diagnose_config(model, init)
    short_recipe = get_recipe(model, "essay")
    short_recipe.steps, short_recipe.schedule = steps, "constant"  # a steady lr keeps the update:data chart readable
    compare_with = compare.training_recipe() if compare is not None else None
    splits_for = _SplitsByBlock(items)
    torch.manual_seed(seed)
    net = build_model(model, **config)
    splits = splits_for(net.config.block_size)
    if splits.vocab.size != net.config.vocab_size:
        net = build_model(model, vocab_size=splits.vocab.size, **config)
    X, Y = splits.train
    batch = torch.randint(0, X.shape[0], (batch_size,), generator=torch.Generator().manual_seed(seed))
    params = sum(p.numel() for p in net.parameters())
    before = snapshot(net, X[batch], Y[batch])
    ratios = train_with_update_ratios(net, splits.train, short_recipe, seed=seed)
    after = snapshot(net, X[batch], Y[batch])
    rows = compare_inits(splits_for, compare_with, seed=seed, on_start=on_start) if compare is not None else None
    return DiagnoseReport(
        model=model, label=model + (f" (init {config['init']})" if config else ""), params=params,
        batch_size=batch_size, vocab_size=splits.vocab.size, before=before, after=after, short_recipe=short_recipe,
        ratios=ratios, compare=rows, compare_recipe_name=compare.recipe if compare is not None else None,
        compare_recipe=compare_with)


def format_layer_table(layers: list[LayerStats]) -> str:
    """One row per tanh layer: pre-activation, activation, saturation, dead neurons and gradient statistics."""
    head = (f"{'layer':<16} {'pre mean':>8} {'pre std':>8} {'|pre|<=2':>8} {'act mean':>8} {'act std':>8} "
            f"{'saturated':>9} {'worst neuron':>12} {'dead':>9} {'grad mean':>10} {'grad std':>9}")
    lines = [head]
    for s in layers:
        lines.append(f"{s.name:<16} {s.preact_mean:>8.3f} {s.preact_std:>8.3f} {s.preact_in_range:>8.1%} {s.act_mean:>8.3f} "
                     f"{s.act_std:>8.3f} {s.saturation:>9.1%} {s.worst_neuron_saturation:>12.1%} "
                     f"{f'{s.dead_neurons}/{s.neurons}':>9} {s.grad_mean:>10.2e} {s.grad_std:>9.2e}")
    return "\n".join(lines)


def format_diagnose(report: DiagnoseReport) -> str:
    """What `makemore diagnose` prints, without the final newline: both layer tables, the update:data
    table and, when the comparison ran, its val NLL table."""
    r, recipe = report, report.short_recipe
    lines = [
        f"{r.label}: {r.params:,} parameters; step 0 on a batch of {r.batch_size} training examples",
        f"initial loss {r.before.loss:.4f}   ideal -log(1/{r.vocab_size}) = {r.before.ideal_loss:.4f}",
        format_layer_table(r.before.layers),
        f"\nafter {recipe.steps:,} steps of SGD (batch {recipe.batch_size}, constant lr {recipe.lr}): "
        f"loss on the same batch {r.after.loss:.4f}",
        format_layer_table(r.after.layers),
        f"\n{'weight':<24} {'update:data (log10, mean of last 100 steps)':>44}",
    ]
    lines += [f"{name:<24} {v:>44.2f}" for name, v in zip(r.ratios.names, r.ratios.mean_over_last(UPDATE_WINDOW))]
    if r.compare is not None:
        lines.append(f"\nsame recipe ({r.compare_recipe_name}, {r.compare_recipe.steps:,} steps), same seed, "
                     "only the init changing:")
        lines.append(f"{'model':<10} {'variant':<36} {'train':>7} {'val':>7} {'seconds':>8}")
        lines += [f"{c.model:<10} {c.variant:<36} {c.train_nll:>7.4f} {c.val_nll:>7.4f} {c.seconds:>8.1f}"
                  for c in r.compare]
    return "\n".join(lines)
