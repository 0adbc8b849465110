"""Building blocks shared by the models: a Linear with explicit init and BatchNorm."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

TANH_GAIN = 5 / 3  # Kaiming gain for tanh: compensates its squashing so activations keep unit scale


def kaiming_(weight: torch.Tensor, fan_in: int, gain: float = TANH_GAIN) -> torch.Tensor:
    """N(0, gain / sqrt(fan_in)) in place: keeps the pre-activations near unit variance."""
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(fan_in))


class BatchNorm(nn.Module):
    """Batch normalisation over every dimension but the last (features).

    Train mode: normalise with this batch's mean and variance, and fold them into
    running estimates (exponential moving average). Eval mode: use the running
    estimates, so a single example gives the same output as inside its batch.
    Input (B, C) or (B, T, C); the statistics are over B (and T).
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps = eps  # added to the variance so a constant feature does not divide by 0
        self.momentum = momentum  # weight of the newest batch in the running statistics
        self.gain = nn.Parameter(torch.ones(dim))  # learnable: lets the net undo the normalisation
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))  # buffers: saved, not trained
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # y = gain * (x - mean) / sqrt(var + eps) + bias, computed by one fused kernel.
        # F.batch_norm wants channels in dim 1: (B, T, C) -> (B, C, T) and back.
        channels_last = x.dim() == 3
        if channels_last:
            x = x.transpose(1, 2)
        y = F.batch_norm(x, self.running_mean, self.running_var, self.gain, self.bias,
                         training=self.training, momentum=self.momentum, eps=self.eps)
        return y.transpose(1, 2) if channels_last else y
