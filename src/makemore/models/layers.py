"""Building blocks shared by the models: the loss, Kaiming init, BatchNorm and the table lookup."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributed.nn.functional import all_reduce

from ..device import active_world_size

TANH_GAIN = 5 / 3  # Kaiming gain for tanh: compensates its squashing so activations keep unit scale


def settle_vector_math() -> None:
    """Have oneMKL detect the CPU for its vector math now, on this one thread, before a model runs.

    On the CPU, PyTorch computes tanh (exp, log, sqrt...) of a float tensor with oneMKL's vector math,
    each intra-op thread calling it on its own chunk. The first such call of a process detects the
    CPU, and the oneMKL in PyTorch's wheels (2024.2) writes the raw CPU code (9 on AVX-512) into the
    global it caches the answer in before it overwrites it with its own index (5). A second thread
    reading it in between picks its kernel one accuracy block too far in the table: the AVX2
    low-accuracy (EP) tanh, about 1e-5 off, for its whole chunk of that one call. So, now and then, a
    process's first training step (or first evaluation) would get other bits than the same step in another
    process, and a stopped-and-resumed run would end with other bytes than one never stopped (pytorch
    issue 188792). One element is computed on the calling thread alone: after it the cached CPU is
    final, for every function and dtype. Nothing else changes: the same kernels give the same bits.
    """
    torch.tanh(torch.zeros(1, device="cpu"))


settle_vector_math()  # every model imports this module: it runs before any model exists in the process


LANE_BITS = 15  # the random bits behind one element's keep-or-drop draw (`Dropout`)


class Dropout(nn.Dropout):
    """nn.Dropout, with a cheaper draw on the CPU: each element kept with probability 1 - p, times 1/(1 - p).

    On the CPU, nn.Dropout draws one float per element (bernoulli_), and the Mersenne Twister behind it runs
    on one thread: in a small transformer's training step the draws take a large share of the time. Here one 64-bit
    draw (63 random bits) gives four elements 15 bits each, and an element is dropped when its 15 bits, read
    as a number, fall below round(p * 2^15): a quarter of the random numbers. p is so read to 1/32,768 (0.1 as
    0.100006); the kept elements are scaled by the inverse of the exact keep probability, so the expected
    output is still the input. Same generator (the default one: seeds and a resume's saved RNG states hold),
    and elsewhere (CUDA, MPS), in eval mode or at p = 0, nn.Dropout itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        dropped = round(self.p * 2 ** LANE_BITS)  # lanes below this are dropped
        if dropped >= 2 ** LANE_BITS:
            return x * 0.0
        scale = keep_mask(x.shape, dropped).to(x.dtype).mul_(2 ** LANE_BITS / (2 ** LANE_BITS - dropped))
        return x * scale  # 0 where dropped, 1 / P(keep) where kept


def keep_mask(shape: torch.Size, dropped: int) -> torch.Tensor:
    """A boolean tensor of `shape` (CPU), each element True with probability 1 - dropped / 2^15, independently."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()  # [0, 2^63): 63 uniform random bits each
    lanes = words.view(torch.int16)[:n].view(shape) & (2 ** LANE_BITS - 1)  # 4 lanes of 16 bits, 15 kept: uniform
    return lanes >= dropped


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log likelihood of the targets under softmax(logits), logits (B, V) or (B, L, V).

    Sequences: logits (B, L, V) with targets (B, L), where -1 marks padding (no character):
    the mean is over the real targets only, i.e. per predicted character.

    targets: the next character's index (B,), or its distribution (B, K) over the first K <= V
    characters: the soft targets of `Recipe.soft_targets`, where row i is the empirical
    distribution of what follows context i in the training data. For a batch that holds every
    occurrence of its contexts both give the same number; the soft form just drops the noise
    of drawing one target per context.
    """
    if logits.dim() == 3:  # (B, L, V) with (B, L): padding (-1) ignored
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), ignore_index=-1)
    if targets.is_floating_point():
        logprobs = F.log_softmax(logits, dim=-1)[:, :targets.shape[1]]  # (B, K); later columns have target 0
        return -(targets * logprobs).sum(dim=-1).mean()
    return F.cross_entropy(logits, targets.long())


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
        # (B, T, C) is viewed as (B*T, C): statistics over B and T, with the features contiguous.
        # (Transposing to the (B, C, T) layout F.batch_norm names costs two copies and a slow
        # strided kernel: about twice the time per step, benchmarks/README.md.)
        flat = x.reshape(-1, x.shape[-1])  # (N, C)
        if self.training and active_world_size() > 1:
            return self._global_batch_norm(flat).view(x.shape)
        y = F.batch_norm(flat, self.running_mean, self.running_var, self.gain, self.bias,
                         training=self.training, momentum=self.momentum, eps=self.eps)
        return y.view(x.shape)

    def _global_batch_norm(self, flat: torch.Tensor) -> torch.Tensor:
        """Train mode in a data-parallel job: the mean and variance of the whole global batch, every rank's rows.

        Two passes (the mean, then the squared deviations from it), each summed across ranks with a
        differentiable all-reduce, so the gradient also flows through the other ranks' rows, exactly as
        one process with the whole batch would compute it.
        """
        n = torch.tensor([float(flat.shape[0])], device=flat.device, dtype=flat.dtype)
        sums = _summed_over_ranks(torch.cat([flat.sum(0), n]))  # (C + 1): feature sums and the row count
        count = sums[-1].detach()
        mean = sums[:-1] / count  # (C,)
        var = _summed_over_ranks(((flat - mean) ** 2).sum(0)) / count  # (C,), biased: what normalisation uses
        with torch.no_grad():  # running estimates as F.batch_norm keeps them: unbiased variance
            self.running_mean.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
            self.running_var.mul_(1 - self.momentum).add_(var.detach() * count / (count - 1), alpha=self.momentum)
        return (flat - mean) / torch.sqrt(var + self.eps) * self.gain + self.bias


def _summed_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """A sum over the job's ranks that gradients flow back through (each rank gets the sum of the ranks' gradients).

    torch.distributed.nn.functional.all_reduce is the autograd-aware collective of this PyTorch; it warns
    that it will move to the functional collectives, which do not differentiate the same way yet.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(t)


def embed(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of `table` for the indices `idx`: table[idx], shape (*idx.shape, E).

    Written with F.embedding, not table[idx]: on the CPU the backward of advanced indexing adds the
    gradients up with index_put_, whose parallel reduction order changes between runs once the
    gathered tensor is above the kernel's grain (e.g. a WaveNet batch of 256 x 8 x 24), so two runs
    with the same seed drift apart; embedding's backward gives the same bits every time.
    """
    return F.embedding(idx.long(), table)


class LabelEmbedding(nn.Module):
    """A learned vector per label (girls' or boys' names, one language or another), added to what a model reads.

    Labels ride in the index tensors themselves (`makemore.data.labels`): a position's index is
    label * vocab_size + character, so windows, padded items, caches and every helper that moves
    indices around carry the label without knowing of it; `split` takes an index apart again.
    With one label (every unlabelled run) there is nothing to tell apart: the table is a single
    zero row, not a parameter, and `add` leaves its input as it is, so such a model has the
    parameters, state-dict keys and numbers of a model without labels.

    The table starts at zero: a labelled model begins as the pooled model and learns, from the
    gradients, only where the labels differ.
    """

    def __init__(self, n_labels: int, dim: int):
        super().__init__()
        self.n_labels = n_labels
        if n_labels > 1:
            self.weight = nn.Parameter(torch.zeros(n_labels, dim))  # (n_labels, dim)
        else:
            self.register_buffer("weight", torch.zeros(1, dim), persistent=False)

    def add(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """x (..., dim) plus each position's label vector, labels (...) of the same leading shape."""
        return x if self.n_labels == 1 else x + embed(self.weight, labels)


def split_labels(idx: torch.Tensor, vocab_size: int, n_labels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Label-carrying indices (any integer dtype) -> (characters, labels), both int64, same shape.

    With one label every index is its character already: (idx, None), no arithmetic on the hot path of an
    unlabelled model (`LabelEmbedding.add` takes the None)."""
    idx = idx.long()
    if n_labels == 1:
        return idx, None
    return idx % vocab_size, idx // vocab_size


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode inside the block (BatchNorm reads its running statistics, dropout is off);
    its own mode comes back afterwards, on an error too."""
    with _in_mode(model, training=False):
        yield model


@contextmanager
def train_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`eval_mode`'s counterpart: the model in train mode inside the block, as at a training step (BatchNorm
    normalises by the batch); its own mode comes back afterwards, on an error too."""
    with _in_mode(model, training=True):
        yield model


@contextmanager
def _in_mode(model: nn.Module, training: bool) -> Iterator[None]:
    was_training = model.training
    model.train(training)
    try:
        yield
    finally:
        model.train(was_training)
