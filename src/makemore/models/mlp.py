"""The MLP of Bengio et al. 2003 ("A Neural Probabilistic Language Model"), twice:

- `mlp`: as the essay first writes it, every tensor drawn from N(0, 1). The three
  init bugs (exploded initial loss, saturated tanh, no gain) are kept on purpose:
  they are what the next model fixes and what `diagnose` measures.
- `mlp-bn`: the same network with Kaiming init (gain 5/3 for tanh), the output
  layer scaled down, and batch normalisation of the hidden pre-activations.

Labels (makemore.data.labels): each label's learned vector (E wide, like a character's) is added to the
embedding of every character of the context, so the hidden layer reads the label at every position:
a per-label shift of its pre-activations that the first layer learns to use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..errors import MakemoreError
from .layers import BatchNorm, LabelEmbedding, cross_entropy, embed, kaiming_, split_labels
from .registry import register


INITS = ("naive", "fix-output", "fix-tanh", "kaiming")  # the essay's init bugs, fixed one at a time


@dataclass
class MLPConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 3  # T: how many previous characters the model sees
    n_embd: int = 10  # E: size of each character's embedding (a row of C)
    n_hidden: int = 200  # H: tanh units in the hidden layer
    init: str = "naive"  # naive N(0,1); fix-output (W2*0.01, b2=0); fix-tanh (+ W1*0.2, b1*0.01); kaiming (+ W1 ~ N(0, (5/3)/sqrt(fan_in)))
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


@register("mlp", config=MLPConfig, essay_val_nll=2.10,
          mechanism="3-char context, 10-d embedding, 200 tanh hidden")
class MLP(nn.Module):
    """emb = C[idx]; h = tanh(flatten(emb) @ W1 + b1); logits = h @ W2 + b2, naive N(0, 1) init by default."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        if config.init not in INITS:
            raise MakemoreError(f"unknown init {config.init!r}; choose one of: {', '.join(INITS)}")
        self.config = config
        V, T, E, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))  # character embedding table
        self.label_emb = LabelEmbedding(config.n_labels, E)
        self.W1 = nn.Parameter(torch.randn(T * E, H))
        self.b1 = nn.Parameter(torch.randn(H))
        self.W2 = nn.Parameter(torch.randn(H, V))
        self.b2 = nn.Parameter(torch.randn(V))
        self.act = nn.Tanh()  # a module, so diagnostics can hook the hidden layer
        with torch.no_grad():
            if config.init != "naive":  # bug 1: logits of std ~sqrt(H) make the initial loss explode
                self.W2.mul_(0.01)
                self.b2.zero_()
            if config.init == "fix-tanh":  # bug 2: pre-activations of std ~sqrt(T*E) saturate tanh; eyeballed
                self.W1.mul_(0.2)
                self.b1.mul_(0.01)
            if config.init == "kaiming":  # bug 3: the scale from the formula, gain 5/3 for tanh
                kaiming_(self.W1, fan_in=T * E)
                self.b1.mul_(0.01)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B = idx.shape[0]
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)  # (B, T) each
        emb = self.label_emb.add(embed(self.C, chars), labels)  # (B, T, E): C[char] (+ the label's vector)
        h = self.act(emb.view(B, -1) @ self.W1 + self.b1)  # (B, H)
        logits = h @ self.W2 + self.b2  # (B, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss


@dataclass
class MLPBNConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 3  # T: how many previous characters the model sees
    n_embd: int = 10  # E: size of each character's embedding (a row of C)
    n_hidden: int = 200  # H: tanh units in the hidden layer
    output_scale: float = 0.01  # W2 starts this small so the initial logits are near 0: loss ≈ -log(1/V)
    bn_momentum: float = 0.1  # weight of each batch in BatchNorm's running statistics
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


@register("mlp-bn", config=MLPBNConfig, essay_val_nll=2.05,
          mechanism="same + Kaiming init + batch norm")
class MLPBN(nn.Module):
    """h = tanh(BN(flatten(C[idx]) @ W1)); logits = h @ W2 + b2, Kaiming-initialised.

    W1 has no bias: BatchNorm subtracts the batch mean, which would cancel it; BN's own bias takes its place.
    """

    def __init__(self, config: MLPBNConfig):
        super().__init__()
        self.config = config
        V, T, E, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        self.label_emb = LabelEmbedding(config.n_labels, E)
        self.W1 = nn.Parameter(kaiming_(torch.empty(T * E, H), fan_in=T * E))
        self.bn = BatchNorm(H, momentum=config.bn_momentum)
        self.act = nn.Tanh()
        self.W2 = nn.Parameter(torch.randn(H, V) * config.output_scale)
        self.b2 = nn.Parameter(torch.zeros(V))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B = idx.shape[0]
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)  # (B, T) each
        emb = self.label_emb.add(embed(self.C, chars), labels)  # (B, T, E): C[char] (+ the label's vector)
        hpreact = self.bn(emb.view(B, -1) @ self.W1)  # (B, H), normalised over the batch
        h = self.act(hpreact)  # (B, H)
        logits = h @ self.W2 + self.b2  # (B, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss


@dataclass
class DeepMLPConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    block_size: int = 3  # T: how many previous characters the model sees
    n_embd: int = 10  # E: size of each character's embedding
    n_hidden: int = 100  # H: width of every hidden layer
    n_layers: int = 5  # hidden Linear + tanh layers stacked
    batchnorm: bool = True  # BatchNorm between each Linear and its tanh
    init: str = "kaiming"  # "kaiming" (gain 5/3 / sqrt(fan_in), small output layer) or "naive" (N(0, 1) everywhere)
    bn_momentum: float = 0.1  # weight of each batch in BatchNorm's running statistics
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


@register("mlp-deep", config=DeepMLPConfig,
          mechanism="several Linear+tanh layers, BatchNorm optional (init study)")
class DeepMLP(nn.Module):
    """The deeper variant of the init study: naive init fails harder the more tanh layers it stacks."""

    def __init__(self, config: DeepMLPConfig):
        super().__init__()
        if config.init not in ("kaiming", "naive"):
            raise MakemoreError(f"mlp-deep init must be kaiming or naive, got {config.init!r}")
        self.config = config
        V, T, E, H = config.vocab_size, config.block_size, config.n_embd, config.n_hidden
        self.C = nn.Parameter(torch.randn(V, E))
        self.label_emb = LabelEmbedding(config.n_labels, E)
        widths = [T * E] + [H] * config.n_layers
        # with BatchNorm a Linear bias is cancelled by the mean subtraction, so it is left out
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=not config.batchnorm) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(
            BatchNorm(H, momentum=config.bn_momentum) if config.batchnorm else nn.Identity() for _ in widths[1:]
        )
        self.acts = nn.ModuleList(nn.Tanh() for _ in widths[1:])
        self.out = nn.Linear(H, V)
        with torch.no_grad():
            for layer in [*self.linears, self.out]:
                if config.init == "naive":
                    layer.weight.normal_()
                    if layer.bias is not None:
                        layer.bias.normal_()
                else:
                    kaiming_(layer.weight, fan_in=layer.in_features)
                    if layer.bias is not None:
                        layer.bias.zero_()
            if config.init == "kaiming":
                self.out.weight.mul_(0.1)  # near-uniform predictions at step 0

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B = idx.shape[0]
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)  # (B, T) each
        x = self.label_emb.add(embed(self.C, chars), labels).view(B, -1)  # (B, T*E)
        for linear, norm, act in zip(self.linears, self.norms, self.acts):
            x = act(norm(linear(x)))  # (B, H)
        logits = self.out(x)  # (B, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss
