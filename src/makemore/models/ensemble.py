"""The ensemble model: a weighted mixture of trained runs' next-character distributions.

    p(c | context) = sum_m w_m p_m(c | context),   w_m >= 0,  sum_m w_m = 1

Each member reads the context its own way (a windowed model its last block_size characters, a
sequence model the whole item so far), so the mixture is a sequence model over whole items: position
t of [0] + item mixes what every member predicts for character t. The logits it returns are the log
of the mixture, log sum_m exp(log w_m + log_softmax(logits_m)): already normalised, so softmax gives
the mixture back and the one contract (`forward(idx, targets=None) -> (logits, loss)`) holds, and
with it evaluation, sampling, scoring and search, written once for every model.

The weights are fitted on val by EM (`makemore.studies.ensemble.fit_weights`), not learnt by gradient descent:
an ensemble is made from finished runs (`makemore ensemble`), never trained. Its weights file holds each
member's state under `members.<m>.`, so the run of an ensemble stands alone, without its members' folders.
Each member is read the way it reads (`makemore.models.reading`, `makemore.models.decoding`), whatever its layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..data.labels import WithLabel
from .reading import next_logits, position_logits
from .decoding import has_steps, step_limit
from .layers import cross_entropy, eval_mode
from .registry import build_model, get_spec, register


@dataclass
class EnsembleConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token, shared by every member
    n_labels: int = 1  # labels the items carry (makemore.data.labels), shared by every member; 1 = unlabelled
    members: list[dict[str, Any]] = field(default_factory=list)  # each {"model": registry name, "config": {...}}
    weights: list[float] = field(default_factory=list)  # w_m: the mixture's weight of each member, summing to 1


class Mixture(nn.Module):
    """p(c | context) = sum_m w_m p_m(c | context) over member models that read the same items.

    The ensemble mixes trained runs; a blend (`Blend`) mixes one labelled run's labels. Both are sequence
    models over whole items whose logits are the log of the mixture (so softmax gives the mixture back).
    """

    layout = "sequence"  # read whole items: each member reads them its own way

    def __init__(self, members: list[nn.Module], weights: list[float]):
        super().__init__()
        self.members = nn.ModuleList(members)
        # log w_m, (M, 1, 1) to broadcast over (M, B, V) and (M, B, L, V); not saved: the config holds the weights
        self.register_buffer("log_weights", torch.tensor(weights, dtype=torch.float64).log().view(-1, 1, 1),
                             persistent=False)
        # how many state tensors each member's cached step carries (0: none, it reads the tokens again)
        self.state_sizes = [_state_size(m) for m in self.members]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        # (M, B, L, V): each member's log-distribution at each position, as that member reads the item
        log_p = torch.stack([_log_probs(position_logits(m, idx)) for m in self.members])
        logits = torch.logsumexp(self.log_weights[..., None].to(log_p.dtype) + log_p, dim=0)  # (B, L, V): log p(mixture)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    # ---------------------------------------------------------------- incremental decoding (makemore.models.decoding)
    # The state: the tokens read so far (B, t), which the members without a cache (the windowed ones, or a
    # transformer past its position table) read again, then each cached member's own tensors, in member order.

    def init_state(self, batch_size: int, label: int = 0) -> tuple[torch.Tensor, ...]:
        state = [torch.zeros((batch_size, 0), dtype=torch.long, device=self.log_weights.device)]
        for member, size in zip(self.members, self.state_sizes):
            state += member.init_state(batch_size, label=label) if size else ()
        return tuple(state)

    def step(self, idx: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """Read one more position idx (B,): the mixture's logits (B, V) for the character after it."""
        seen = torch.cat([state[0], idx.long()[:, None]], dim=1)  # (B, t + 1)
        new_state, log_p, at = [seen], [], 1
        for member, size in zip(self.members, self.state_sizes):
            own = state[at:at + size]
            at += size
            limit = step_limit(member)
            if size and (limit is None or seen.shape[1] <= limit):
                logits, own = member.step(idx, own)  # (B, V)
            else:
                logits = next_logits(member, seen)  # (B, V)
            log_p.append(_log_probs(logits))
            new_state += own
        log_p = torch.stack(log_p)  # (M, B, V)
        mixed = torch.logsumexp(self.log_weights.to(log_p.dtype) + log_p, dim=0)  # (B, V)
        return mixed, tuple(new_state)


@register("ensemble", config=EnsembleConfig, layout="sequence", made_by="ensemble",
          mechanism="weighted mixture of trained runs' distributions")
class Ensemble(Mixture):
    trainable = False  # made from trained runs (makemore.studies.ensemble), its weights fitted on val

    def __init__(self, config: EnsembleConfig):
        if len(config.weights) != len(config.members):
            raise ValueError(f"an ensemble needs one weight per member: {len(config.members)} members, "
                             f"{len(config.weights)} weights")
        if any(not (w >= 0 and math.isfinite(w)) for w in config.weights) or (
                config.weights and abs(sum(config.weights) - 1) > 1e-6):
            raise ValueError("ensemble weights must be non-negative and sum to 1")
        shared = {"vocab_size": config.vocab_size, "n_labels": config.n_labels}
        members = []
        for member in config.members:
            if get_spec(member["model"]).made_by != "train":
                raise ValueError(f"an ensemble's members are trained runs; {member['model']!r} is not one")
            members.append(build_model(member["model"], **{**member["config"], **shared}))
        super().__init__(members, list(config.weights))
        self.config = config


@dataclass
class BlendConfig:
    vocab_size: int  # V, the labelled run's
    labels: list[str]  # the labels mixed, by name
    weights: list[float]  # w_k, summing to 1
    n_labels: int = 1  # a blend is read as one unlabelled model


class Blend(Mixture):
    """A labelled run seen as a weighted mixture of its labels: each next character from
    sum_k w_k p(c | context, label k), a style in between. Sampling, scoring and search take it as any model."""

    trainable = False
    label_set = None  # read as unlabelled: its labels are inside the mixture

    def __init__(self, model: nn.Module, labels: list[int], weights: list[float]):
        total = sum(weights)
        names = model.label_set.names
        super().__init__([WithLabel(model, k) for k in labels], [w / total for w in weights])
        self.config = BlendConfig(model.config.vocab_size, [names[k] for k in labels], [w / total for w in weights])


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax over the last dimension, in float32 at least (a half-precision member is mixed in float32)."""
    return torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)


@torch.no_grad()
def _state_size(member: nn.Module) -> int:
    """How many tensors the member's cached decoding state holds (0: it has none), asked in eval mode (a
    member with BatchNorm computes its initial state from running statistics, as it decodes)."""
    if not has_steps(member):
        return 0
    with eval_mode(member):
        return len(member.init_state(1))
