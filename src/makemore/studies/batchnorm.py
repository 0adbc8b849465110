"""BatchNorm's two modes, measured: the essay's warning about a batch of one, and calibration.

In train mode BatchNorm normalises by the batch's own statistics, so an example alone has
variance 0 (an error, or garbage); in eval mode it uses the running averages kept during
training. `calibrate_batchnorm` replaces those averages by the exact statistics of the whole
training set, the essay's "calibrate after training" step. `batchnorm_study` is what the
`makemore batchnorm` command prints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import bounds
from ..data.items import Splits
from ..errors import ParameterError
from ..models.layers import BatchNorm, eval_mode
from ..training.loop import evaluate

def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers, in module order."""
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
    index = bounds.check("index", index)
    if index >= X.shape[0]:
        raise ParameterError("index", f"must be less than the batch's size ({X.shape[0]}), got {index}")
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
    with eval_mode(model):
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


@dataclass
class BatchNormStudy:
    """`makemore batchnorm`: one val example alone in both modes, and val NLL before and after calibration."""

    model: str  # registry name of the model studied
    batch_size: int  # examples in the val batch
    index: int  # the example forwarded alone
    modes: ModeCheck  # alone vs inside its batch, in train and in eval mode
    running_val_nll: float  # val NLL with the running averages kept during training
    calibrated_val_nll: float  # val NLL with the statistics recomputed over the whole training set


def batchnorm_study(model: nn.Module, splits: Splits, *, batch_size: int = 32, index: int = 0) -> BatchNormStudy:
    """The study on a trained model with BatchNorm and the split it was trained on; the model is left as it was."""
    name = getattr(model, "registry_name", type(model).__name__)
    if not batchnorm_layers(model):
        raise ParameterError("model", f"must have BatchNorm (mlp-bn, wavenet); a {name} has none")
    bounds.check("batch_size", batch_size, "batchnorm.batch_size")
    X = splits.val[0][:batch_size]
    modes = single_example_modes(model, X, index=index)
    calibrated = copy.deepcopy(model)
    calibrate_batchnorm(calibrated, splits.train[0])
    return BatchNormStudy(name, X.shape[0], index, modes, evaluate(model, splits.val), evaluate(calibrated, splits.val))


def format_batchnorm_study(study: BatchNormStudy) -> str:
    """The text `makemore batchnorm` prints."""
    m = study.modes
    lines = [f"{study.model}: example {study.index} of a val batch of {study.batch_size}, forwarded alone"]
    if m.train_mode_error:
        lines.append(f"  train mode (batch statistics): fails: {m.train_mode_error}")
    else:
        lines.append(f"  train mode (batch statistics): logits differ from the batch's by up to "
                     f"{m.train_mode_max_diff:.4f} (garbage)")
    lines.append(f"  eval mode (running statistics): logits differ from the batch's by up to {m.eval_mode_max_diff:.2e}")
    lines.append(f"val NLL with the running averages kept during training:  {study.running_val_nll:.4f}")
    lines.append(f"val NLL with statistics recomputed over the training set: {study.calibrated_val_nll:.4f}")
    return "\n".join(lines)
