"""The model registry: one name -> one model class, its config, and what the essay says of it.

Models register themselves with `@register(...)`; the CLI, trainer and reproduce
command look them up by name, so adding a model never means editing an if/elif chain.

A model's `layout` says what it reads and predicts:
- "windows": forward(idx (B, block_size) previous characters) -> logits (B, V) for the next one;
- "sequence": forward(idx (B, L) = [0] + an item's characters, padded) -> logits (B, L, V), one
  prediction per position (targets (B, L), padding -1 and out of the loss). A sequence model's
  config may have a block_size: the most positions it reads (a transformer's position table).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

from .. import bounds
from ..bounds import BOUNDS
from ..errors import MakemoreError


@dataclass(frozen=True)
class ModelSpec:
    name: str  # registry name, as typed on the command line
    model_cls: type  # the nn.Module subclass
    config_cls: type  # its typed config dataclass
    mechanism: str  # one line: what this model adds, for tables
    essay_val_nll: float | None  # the essay's validation NLL, None if the essay has none
    layout: str = "windows"  # "windows" or "sequence": what forward reads and predicts (module docstring)
    made_by: str = "train"  # the command that makes a run of it: "train", or "ensemble" (a mixture of runs)


MODELS: dict[str, ModelSpec] = {}
LAYOUTS = ("windows", "sequence")


def register(name: str, *, config: type, mechanism: str, essay_val_nll: float | None = None,
             layout: str = "windows", made_by: str = "train") -> Callable[[type], type]:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")

    def decorate(cls: type) -> type:
        MODELS[name] = ModelSpec(name, cls, config, mechanism, essay_val_nll, layout, made_by)
        cls.registry_name = name
        cls.layout = layout  # what forward reads (makemore.models.reading keys on it, never on the name)
        return cls

    return decorate


def trainable_models() -> list[str]:
    """The models `makemore train` makes (not the ensemble, which is made from trained runs)."""
    return [name for name, spec in MODELS.items() if spec.made_by == "train"]


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise MakemoreError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, **config_values):
    """Build a registered model from config values; unknown keys are refused, not ignored."""
    spec = get_spec(name)
    known = {f.name for f in fields(spec.config_cls)}
    extra = sorted(set(config_values) - known)
    if extra:
        raise MakemoreError(f"model {name!r} has no option(s) {', '.join(extra)}; it takes: {', '.join(sorted(known))}")
    config = spec.config_cls(**config_values)
    for f in fields(config):  # numeric fields with a bound (bounds.BOUNDS): the one place they are checked
        if f.name in BOUNDS and f.type in ("int", "float"):
            setattr(config, f.name, bounds.check(f.name, getattr(config, f.name)))
    return spec.model_cls(config)
