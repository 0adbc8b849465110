"""Backpropagation by hand through the MLP + BatchNorm model (`mlp-bn`), without `loss.backward()`.

The essay's exercise, in the micrograd spirit: the forward pass is written out one
small operation at a time, and each operation carries its backward rule right next to
its forward. `backward` walks the steps in reverse, applying the chain rule and summing
the gradients of a tensor used twice (counts, bndiff, hprebn, logits...).

`backward_fused` replaces two chains of steps by their closed forms: cross-entropy,
dlogits = (softmax(logits) - onehot(y)) / n, and BatchNorm's input gradient in one
expression. `check_gradients` compares every hand gradient with autograd run on the
same forward, and `train_manual` trains the model on hand gradients only.

`gradient_check` and `compare_hand_and_autograd` are the two studies of `makemore
backprop` (--check, --train) on a list of items, returning reports that
`format_gradient_check` and `format_hand_training` turn into the command's text.

Notation of the essay: n examples, T context characters, E embedding size, H hidden
units, V vocabulary size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .. import bounds
from ..data.items import make_splits
from ..errors import MakemoreError
from ..models import build_model
from ..models.layers import BatchNorm
from ..models.mlp import MLPBN
from ..training.loop import BatchOrder, Recipe, evaluate, train

Tensor = torch.Tensor
Values = dict[str, Tensor]  # tensors by name: parameters, X, Y, intermediates (and the float eps)

PARAMS = ("C", "W1", "bngain", "bnbias", "W2", "b2")
F64_TOL = 1e-10  # float64: hand and autograd differ only by summation order, ~1e-16 relative
F32_TOL = 1e-6  # float32: a few roundings (eps 1.2e-7) compounded over ~25 steps, relative to gradients above 1


@dataclass(frozen=True)
class Step:
    """One operation of the forward pass and its local backward rule.

    forward(v) computes `out` from the values computed before it; backward(v, d) takes
    d = dloss/d(out) and returns dloss/d(input) for each float input it reads.
    """

    out: str
    forward: Callable[[Values], Tensor]
    backward: Callable[[Values, Tensor], Values]


def _n(v: Values) -> int:
    return v["X"].shape[0]


def _emb_backward(v: Values, d: Tensor) -> Values:
    # C[X] copies row X[i, t] of C into emb[i, t]: the gradient flows back to that row, and a
    # character appearing several times in the batch (or in one context) sums its gradients.
    dC = torch.zeros_like(v["C"]).index_add_(0, v["X"].reshape(-1), d.reshape(-1, d.shape[-1]))  # (V, E)
    return {"C": dC}


# The forward pass, step by step. Each backward is the derivative of the line above it.
STEPS: tuple[Step, ...] = (
    # --- embedding: look up each context character, lay the T embeddings side by side
    Step("emb", lambda v: v["C"][v["X"]],  # (n, T, E)
         _emb_backward),
    Step("embcat", lambda v: v["emb"].view(_n(v), -1),  # (n, T*E)
         lambda v, d: {"emb": d.view(v["emb"].shape)}),
    # --- linear layer, no bias (BatchNorm's mean subtraction would cancel it)
    Step("hprebn", lambda v: v["embcat"] @ v["W1"],  # (n, H)
         lambda v, d: {"embcat": d @ v["W1"].T, "W1": v["embcat"].T @ d}),
    # --- BatchNorm, every statistic written out
    Step("bnmeani", lambda v: v["hprebn"].sum(0, keepdim=True) / _n(v),  # (1, H)
         lambda v, d: {"hprebn": torch.ones_like(v["hprebn"]) * (d / _n(v))}),  # each example moves the mean by 1/n
    Step("bndiff", lambda v: v["hprebn"] - v["bnmeani"],  # (n, H)
         lambda v, d: {"hprebn": d.clone(), "bnmeani": -d.sum(0, keepdim=True)}),  # bnmeani was broadcast: sum
    Step("bndiff2", lambda v: v["bndiff"] ** 2,  # (n, H)
         lambda v, d: {"bndiff": d * (2 * v["bndiff"])}),
    # BIASED variance (1/n), as F.batch_norm normalises with in training; the essay used 1/(n-1)
    Step("bnvar", lambda v: v["bndiff2"].sum(0, keepdim=True) / _n(v),  # (1, H)
         lambda v, d: {"bndiff2": torch.ones_like(v["bndiff2"]) * (d / _n(v))}),
    Step("bnvar_inv", lambda v: (v["bnvar"] + v["eps"]) ** -0.5,  # (1, H)
         lambda v, d: {"bnvar": d * (-0.5 * (v["bnvar"] + v["eps"]) ** -1.5)}),
    Step("bnraw", lambda v: v["bndiff"] * v["bnvar_inv"],  # (n, H)
         lambda v, d: {"bndiff": d * v["bnvar_inv"], "bnvar_inv": (d * v["bndiff"]).sum(0, keepdim=True)}),
    Step("hpreact", lambda v: v["bngain"] * v["bnraw"] + v["bnbias"],  # (n, H)
         lambda v, d: {"bngain": (d * v["bnraw"]).sum(0), "bnraw": d * v["bngain"], "bnbias": d.sum(0)}),
    # --- non-linearity: tanh' = 1 - tanh², written with the output. Autograd's kernel rounds 1 - h*h
    # once (a fused multiply-add), this twice: from here down, hand and autograd differ in the last bit.
    Step("h", lambda v: torch.tanh(v["hpreact"]),  # (n, H)
         lambda v, d: {"hpreact": d * (1 - v["h"] ** 2)}),
    # --- output layer
    Step("logits", lambda v: v["h"] @ v["W2"] + v["b2"],  # (n, V)
         lambda v, d: {"h": d @ v["W2"].T, "W2": v["h"].T @ d, "b2": d.sum(0)}),
    # --- cross-entropy, as the essay spells it out
    # subtracting the row max keeps exp() finite and changes no probability: its gradient is ~0
    Step("logit_maxes", lambda v: v["logits"].max(1, keepdim=True).values,  # (n, 1)
         lambda v, d: {"logits": F.one_hot(v["logits"].max(1).indices, v["logits"].shape[1]) * d}),
    Step("norm_logits", lambda v: v["logits"] - v["logit_maxes"],  # (n, V)
         lambda v, d: {"logits": d.clone(), "logit_maxes": -d.sum(1, keepdim=True)}),
    Step("counts", lambda v: v["norm_logits"].exp(),  # (n, V)
         lambda v, d: {"norm_logits": d * v["counts"]}),  # exp' = exp
    Step("counts_sum", lambda v: v["counts"].sum(1, keepdim=True),  # (n, 1)
         lambda v, d: {"counts": torch.ones_like(v["counts"]) * d}),
    Step("counts_sum_inv", lambda v: v["counts_sum"] ** -1,  # (n, 1)
         lambda v, d: {"counts_sum": d * (-1 * v["counts_sum"] ** -2)}),
    Step("probs", lambda v: v["counts"] * v["counts_sum_inv"],  # (n, V)
         lambda v, d: {"counts": d * v["counts_sum_inv"], "counts_sum_inv": (d * v["counts"]).sum(1, keepdim=True)}),
    Step("logprobs", lambda v: v["probs"].log(),  # (n, V)
         lambda v, d: {"probs": d / v["probs"]}),
    Step("loss", lambda v: -v["logprobs"][torch.arange(_n(v)), v["Y"]].mean(),  # ()
         lambda v, d: {"logprobs": _pick_backward(v, d)}),
)


def _pick_backward(v: Values, d: Tensor) -> Tensor:
    # only the log-probability of each correct character enters the mean, each with weight -1/n
    dlogprobs = torch.zeros_like(v["logprobs"])  # (n, V)
    dlogprobs[torch.arange(_n(v)), v["Y"]] = -d / _n(v)
    return dlogprobs


def _batchnorm_fused_backward(v: Values, d: Tensor) -> Values:
    # Chain of bnraw ... bnmeani in one expression. With the biased variance (1/n) there is
    # no n/(n-1) factor: dx = gain/(n σ) (n g - Σg - x̂ Σ(g x̂)), g = dL/dhpreact.
    n, bnraw = _n(v), v["bnraw"]
    dhprebn = v["bngain"] * v["bnvar_inv"] / n * (n * d - d.sum(0) - bnraw * (d * bnraw).sum(0))  # (n, H)
    return {"hprebn": dhprebn, "bngain": (d * bnraw).sum(0), "bnbias": d.sum(0)}


def _cross_entropy_fused_backward(v: Values, d: Tensor) -> Values:
    # the essay's: softmax everywhere, minus 1 at the correct character, averaged over the batch
    dlogits = F.softmax(v["logits"], 1)  # (n, V)
    dlogits[torch.arange(_n(v)), v["Y"]] -= 1
    dlogits /= _n(v)
    return {"logits": dlogits * d}


def _step(name: str) -> Step:
    return next(s for s in STEPS if s.out == name)


# The same network with two chains collapsed: BatchNorm hprebn -> hpreact and cross-entropy logits -> loss.
FUSED_STEPS: tuple[Step, ...] = (
    _step("emb"), _step("embcat"), _step("hprebn"),
    Step("hpreact", lambda v: F.batch_norm(v["hprebn"], None, None, v["bngain"], v["bnbias"], training=True, eps=v["eps"]),
         _batchnorm_fused_backward),
    _step("h"), _step("logits"),
    Step("loss", lambda v: F.cross_entropy(v["logits"], v["Y"]),
         _cross_entropy_fused_backward),
)


def _run_forward(steps: tuple[Step, ...], params: Values, X: Tensor, Y: Tensor, eps: float) -> tuple[Tensor, Values]:
    v: Values = {**params, "X": X, "Y": Y, "eps": eps}
    cache: Values = {}
    for step in steps:
        v[step.out] = cache[step.out] = step.forward(v)
    return cache.pop("loss"), cache


def _run_backward(steps: tuple[Step, ...], params: Values, cache: Values, X: Tensor, Y: Tensor, eps: float) -> Values:
    v: Values = {**params, **cache, "X": X, "Y": Y, "eps": eps}
    grads: Values = {"loss": torch.ones((), dtype=params["W1"].dtype, device=params["W1"].device)}  # dloss/dloss
    for step in reversed(steps):
        for name, g in step.backward(v, grads[step.out]).items():
            grads[name] = grads[name] + g if name in grads else g  # a tensor used twice: its gradients add
    del grads["loss"]
    return grads


def forward(params: Values, X: Tensor, Y: Tensor, eps: float = 1e-5) -> tuple[Tensor, Values]:
    """The step-by-step forward in training mode (batch statistics): the loss and every intermediate by name."""
    return _run_forward(STEPS, params, X, Y, eps)


def backward(params: Values, cache: Values, X: Tensor, Y: Tensor, eps: float = 1e-5) -> Values:
    """dloss/d(every intermediate and every parameter), by name, one backward rule per forward step."""
    return _run_backward(STEPS, params, cache, X, Y, eps)


def backward_fused(params: Values, cache: Values, X: Tensor, Y: Tensor, eps: float = 1e-5) -> Values:
    """The same parameter gradients via the fused cross-entropy and BatchNorm rules.

    Returns the gradients of the parameters and of emb, embcat, hprebn, hpreact, h and logits;
    `cache` is the one `forward` returned (the fused rules read bnraw and bnvar_inv from it).
    """
    return _run_backward(FUSED_STEPS, params, cache, X, Y, eps)


def _check_model(model: torch.nn.Module) -> MLPBN:
    if not isinstance(model, MLPBN) or not isinstance(model.bn, BatchNorm):
        raise MakemoreError(f"manual backprop is written for the mlp-bn model, not {type(model).__name__}")
    return model


def params_from_model(model: torch.nn.Module, dtype: torch.dtype | None = None) -> Values:
    """Detached copies of an mlp-bn model's parameters, named as in the essay, optionally cast to `dtype`."""
    model = _check_model(model)
    tensors = {"C": model.C, "W1": model.W1, "bngain": model.bn.gain, "bnbias": model.bn.bias, "W2": model.W2, "b2": model.b2}
    return {name: t.detach().to(dtype=dtype or t.dtype, copy=True) for name, t in tensors.items()}


def load_params_into(model: torch.nn.Module, params: Values) -> None:
    """Copy `params` (as `params_from_model` names them) into the model's parameters, in their dtype."""
    model = _check_model(model)
    targets = {"C": model.C, "W1": model.W1, "bngain": model.bn.gain, "bnbias": model.bn.bias, "W2": model.W2, "b2": model.b2}
    with torch.no_grad():
        for name, target in targets.items():
            target.copy_(params[name])


@dataclass
class GradCheck:
    """One hand gradient against autograd's."""

    name: str  # the tensor the gradient is of; "(fused)" when from backward_fused
    exact: bool  # bit for bit equal
    approx: bool  # max_abs_diff <= tol * max(1, max |autograd gradient|)
    max_abs_diff: float


# the essay's order: from the loss back to the embedding table
CHECK_ORDER = ("logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes", "logits",
               "h", "W2", "b2", "hpreact", "bngain", "bnbias", "bnraw", "bnvar_inv", "bnvar", "bndiff2", "bndiff",
               "bnmeani", "hprebn", "embcat", "W1", "emb", "C")
FUSED_ORDER = ("logits", "h", "W2", "b2", "hpreact", "bngain", "bnbias", "hprebn", "embcat", "W1", "emb", "C")


def compare(name: str, hand: Tensor, reference: Tensor, tol: float) -> GradCheck:
    """Hand gradient against a reference; the tolerance is absolute for gradients up to 1, relative beyond."""
    diff = (hand - reference).abs().max().item()
    scale = max(1.0, reference.abs().max().item())
    return GradCheck(name, torch.equal(hand, reference), diff <= tol * scale, diff)


def check_gradients(model: torch.nn.Module, X: Tensor, Y: Tensor, dtype: torch.dtype = torch.float64,
                    tol: float | None = None) -> list[GradCheck]:
    """Every hand gradient (step by step, then fused) against autograd through the same forward, in `dtype`.

    Uses the batch statistics, as in training; the model itself (weights, running statistics) is left untouched.
    tol defaults to 1e-10 in float64 and 1e-5 in lower precision, relative to gradients larger than 1.
    """
    tol = tol if tol is not None else (F64_TOL if dtype == torch.float64 else F32_TOL)
    eps = _check_model(model).bn.eps
    device = next(model.parameters()).device
    X, Y = X.to(device).long(), Y.to(device).long()
    params = {name: p.requires_grad_() for name, p in params_from_model(model, dtype).items()}
    loss, cache = forward(params, X, Y, eps)
    for t in cache.values():
        t.retain_grad()
    loss.backward()
    reference = {**{k: p.grad for k, p in params.items()}, **{k: t.grad for k, t in cache.items()}}
    with torch.no_grad():
        plain = {k: t.detach() for k, t in params.items()}
        cache = {k: t.detach() for k, t in cache.items()}
        hand = backward(plain, cache, X, Y, eps)
        fused = backward_fused(plain, cache, X, Y, eps)
    rows = [compare(name, hand[name], reference[name], tol) for name in CHECK_ORDER]
    rows += [compare(f"{name} (fused)", fused[name], reference[name], tol) for name in FUSED_ORDER]
    return rows


def format_check(rows: list[GradCheck]) -> str:
    """The checks as a text table: tensor, exact, approx, max abs diff."""
    width = max(len("tensor"), *(len(r.name) for r in rows))
    lines = [f"{'tensor':<{width}}  exact  approx  max abs diff"]
    lines += [f"{r.name:<{width}}  {str(r.exact):<5}  {str(r.approx):<6}  {r.max_abs_diff:.3e}" for r in rows]
    return "\n".join(lines)


@torch.no_grad()
def train_manual(model: torch.nn.Module, data: tuple[Tensor, Tensor], steps: int, batch_size: int = 32,
                 lr: float | Callable[[int], float] = 0.1, seed: int = 0, fused: bool = True) -> list[float]:
    """Plain SGD on an mlp-bn model with the hand gradients only; returns the loss of every step.

    lr is a number or a function of the 0-based step (e.g. `Recipe.lr_at`); fused picks
    `backward_fused` (the essay's final training loop) or the step-by-step `backward`.

    Batches are drawn exactly as `makemore.training.loop.train` draws them for the same seed, so with an
    SGD recipe of the same learning rate (no momentum, no weight decay) both runs see the same
    batches. BatchNorm's running statistics are updated like the layer does (the unbiased
    batch variance goes into running_var). The weights end up in the model, left in eval mode.
    """
    model = _check_model(model)
    bn = model.bn
    lr_at = lr if callable(lr) else (lambda step: lr)
    device = next(model.parameters()).device
    X, Y = data[0].to(device).long(), data[1].to(device).long()  # the hand forward indexes C with X
    batches = BatchOrder(X.shape[0], batch_size, seed, device=device)  # train()'s batches, for the same seed
    size = batches.batch_size
    bounds.check("batch_size", size, "backprop.batch_size")  # the batch actually drawn: at most the data
    params = params_from_model(model)
    losses = []
    for step in range(steps):
        ix = batches.next()
        xb, yb = X[ix], Y[ix]
        loss, cache = forward(params, xb, yb, bn.eps)
        grads = (backward_fused if fused else backward)(params, cache, xb, yb, bn.eps)
        step_lr = lr_at(step)
        for name, p in params.items():
            p.add_(grads[name], alpha=-step_lr)  # what torch.optim.SGD does without momentum or decay
        # running = (1 - momentum) * running + momentum * batch statistic, with the unbiased variance
        bn.running_mean.mul_(1 - bn.momentum).add_(cache["bnmeani"].view(-1), alpha=bn.momentum)
        bn.running_var.mul_(1 - bn.momentum).add_(cache["bnvar"].view(-1) * (size / (size - 1)), alpha=bn.momentum)
        losses.append(loss.item())
    load_params_into(model, params)
    model.eval()
    return losses


# ----------------------------------------------------------------------------- the two studies, on a dataset

CHECK_PRECISIONS = ((torch.float64, "float64, tolerance 1e-10"), (torch.float32, "float32, tolerance 1e-5"))
GAP_TOLERANCE = 0.01  # hand and autograd training must end this close in val NLL


def _check_batch_size(batch_size: int) -> int:
    """BatchNorm estimates a variance from the batch: a batch of one has none."""
    return bounds.check("batch_size", batch_size, "backprop.batch_size")


@dataclass
class GradientCheckReport:
    """Every hand gradient against autograd's on one training batch, once per precision."""

    batch_size: int  # examples in the checked batch: the first batch_size training windows (fewer if there are fewer)
    checks: list[tuple[str, list[GradCheck]]]  # (precision and tolerance, one row per tensor), float64 then float32

    @property
    def ok(self) -> bool:
        """Every tensor agrees within its tolerance, in every precision."""
        return all(r.approx for _, rows in self.checks for r in rows)


def gradient_check(items: list[str], *, batch_size: int = 32, seed: int = 42, split_seed: int = 42) -> GradientCheckReport:
    """`makemore backprop --check`: a fresh mlp-bn (seeded), the first training windows of the
    essay's split (block size 3), every hand gradient checked against autograd in float64 and float32."""
    batch_size = _check_batch_size(batch_size)
    bounds.check("seed", seed)
    bounds.check("split_seed", split_seed)
    splits = make_splits(items, block_size=3, seed=split_seed)
    torch.manual_seed(seed)
    model = build_model("mlp-bn", vocab_size=splits.vocab.size)
    X, Y = splits.train[0][:batch_size], splits.train[1][:batch_size]
    checks = [(label, check_gradients(model, X, Y, dtype=dtype)) for dtype, label in CHECK_PRECISIONS]
    return GradientCheckReport(batch_size=X.shape[0], checks=checks)


def format_gradient_check(report: GradientCheckReport) -> str:
    """What `makemore backprop --check` prints: per precision a table and "N of M tensors agree",
    each followed by a blank line. `print(text)` writes it exactly (the last blank line included)."""
    lines = []
    for label, rows in report.checks:
        lines.append(f"hand gradients vs autograd on a training batch of {report.batch_size} ({label}):")
        lines.append(format_check(rows))
        lines.append(f"{sum(r.approx for r in rows)} of {len(rows)} tensors agree")
        lines.append("")
    return "\n".join(lines)


@dataclass
class HandTrainingReport:
    """mlp-bn trained twice from the same weights on the same batches: hand gradients, then autograd."""

    steps: int  # SGD steps of each run
    batch_size: int  # examples per step
    lr: float  # learning rate, x0.1 at 3/4 of the steps
    seed: int  # seed of the initial weights and of the batch order
    hand_val_nll: float  # val NLL after training on hand gradients
    autograd_val_nll: float  # val NLL after training with loss.backward()
    hand_seconds: float  # wall time of the hand run (training and evaluation)
    autograd_seconds: float  # the same for the autograd run
    gap: float  # |hand_val_nll - autograd_val_nll|

    @property
    def ok(self) -> bool:
        """The two runs end within GAP_TOLERANCE of each other."""
        return self.gap <= GAP_TOLERANCE


def compare_hand_and_autograd(items: list[str], *, steps: int = 20_000, batch_size: int = 32, lr: float = 0.1,
                              seed: int = 42, split_seed: int = 42,
                              on_start: Callable[[str], None] | None = None) -> HandTrainingReport:
    """`makemore backprop --train`: the essay's split (block size 3), plain SGD with the step schedule,
    first with the hand gradients (`train_manual`), then with autograd (`train`); same seed, same batches.

    on_start(message) is called before each run ("training mlp-bn 300 steps with hand gradients...").
    """
    batch_size = _check_batch_size(batch_size)
    steps, lr = bounds.check("steps", steps), float(bounds.check("lr", lr))
    bounds.check("seed", seed)
    bounds.check("split_seed", split_seed)
    splits = make_splits(items, block_size=3, seed=split_seed)
    recipe = Recipe(steps=steps, batch_size=batch_size, optimizer="sgd", lr=lr, schedule="step")
    results = {}
    for method in ("hand", "autograd"):
        torch.manual_seed(seed)  # same initial weights for both
        model = build_model("mlp-bn", vocab_size=splits.vocab.size)
        if on_start:
            on_start(f"training mlp-bn {steps:,} steps with {method} gradients...")
        start = time.perf_counter()
        if method == "hand":
            train_manual(model, splits.train, steps, batch_size, lr=recipe.lr_at, seed=seed)
        else:
            train(model, splits.train, recipe, seed=seed)
        results[method] = (evaluate(model, splits.val), time.perf_counter() - start)
    (hand, hand_s), (auto, auto_s) = results["hand"], results["autograd"]
    return HandTrainingReport(steps=steps, batch_size=batch_size, lr=lr, seed=seed, hand_val_nll=hand,
                              autograd_val_nll=auto, hand_seconds=hand_s, autograd_seconds=auto_s, gap=abs(hand - auto))


def format_hand_training(report: HandTrainingReport) -> str:
    """What `makemore backprop --train` prints: the setting, both val NLLs and their difference."""
    r = report
    return "\n".join([
        f"mlp-bn, {r.steps:,} steps of SGD, batch {r.batch_size}, lr {r.lr} (x0.1 at 3/4), seed {r.seed}",
        f"  {'hand gradients':<18} val NLL {r.hand_val_nll:.4f}  ({r.hand_seconds:.1f} s)",
        f"  {'autograd gradients':<18} val NLL {r.autograd_val_nll:.4f}  ({r.autograd_seconds:.1f} s)",
        f"  difference {r.gap:.4f} ({'within' if r.ok else 'NOT within'} {GAP_TOLERANCE})",
    ])
