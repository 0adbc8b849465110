"""A run that starts from another run's weights (`--init-from`): fine-tuning a model that already knows a list.

The new run keeps its own vocabulary, labels and split. What carries over is found by shape, for every
model alike, never by a table of parameter names: two throwaway models of the base's configuration, one
with a vocabulary one character larger, tell which axes of which tensors are indexed by character (they
grow by one); the same with one more label finds the label axes, and with one more position the position
table. Along a character axis a shared character keeps its learned row, a new one keeps the fresh row the
new model was initialised with, and a base character the new list lacks is dropped; labels are matched by
name. The count models learn nothing by gradient: the base's counts become a prior added to the new list's,
weighted by a factor chosen on the new list's validation split (`choose_prior_weight`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..data.items import Splits, Vocab
from ..errors import MakemoreError
from ..models import build_model, eval_mode, get_spec
from .evaluation import evaluate_part
from .run_folder import WEIGHTS, load_run

NAMES_BASE = "names"  # `--init-from names`: a base trained on the built-in names.txt (kept in the cache folder)
# options that change a model's shape: a run started from another keeps the base's
SHAPE_OPTIONS = ("block_size", "n_embd", "n_hidden", "n_layer", "n_head")
# a fine-tuned model with dropout (the recurrent models, the transformer) trains with at least this much, unless
# told otherwise: on 300-name lists an lstm started from names.txt gained 0.060 nats over scratch with 0.2, 0.019
# with none (five countries); from scratch, 0.1 to 0.3 changed nothing beyond 0.02, so sized recipes add none
FINETUNE_DROPOUT = 0.2
# multiples of the new list's own counts that the base's counts may weigh, tried on val (0: the list alone)
PRIOR_SHARES = (0.0, 0.0625, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class Base:
    """A complete run to start from: its model (on the CPU), vocabulary, labels and where it came from."""

    path: Path
    model: torch.nn.Module
    vocab: Vocab
    meta: dict[str, Any]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(entry["name"] for entry in self.meta.get("labels") or ())

    def record(self) -> dict[str, Any]:
        """run.json's "init_from": the base's path, its weights' sha256, model, and dataset's name and size."""
        dataset = self.meta.get("dataset") or {}
        digest = hashlib.sha256((self.path / WEIGHTS).read_bytes()).hexdigest()
        return {"path": str(self.path), "sha256": digest, "model": self.meta["model"],
                "dataset": dataset.get("name"), "items": dataset.get("items")}


def read_base(path: str | Path) -> Base:
    """The run at `path`, checked to be one a new run can start from (complete, trained, readable)."""
    path = Path(path)
    model, vocab, meta = load_run(path)  # refuses a missing folder, a damaged run.json or weights, in one line
    if get_spec(meta["model"]).made_by != "train":
        raise MakemoreError(f"init_from: {path} is an {meta['model']}, a mixture of other runs with no weights of its "
                            f"own to go on training; start from one of its members instead")
    if meta.get("status", "complete") != "complete":
        raise MakemoreError(f"init_from: {path} has not finished training (status {meta.get('status')!r}); "
                            f"finish it first (resume it) or start from a complete run")
    return Base(path, model.cpu(), vocab, meta)


def config_for(base: Base, vocab: Vocab, n_labels: int, longest_item: int, changes: dict[str, Any]) -> dict[str, Any]:
    """The new model's config: the base's, with the new list's vocabulary and labels, and `changes` (options
    that do not change its shape, such as dropout; at least FINETUNE_DROPOUT unless given). A position table
    grows to the new list's longest item."""
    shaped = sorted(set(changes) & set(SHAPE_OPTIONS))
    if shaped:
        raise MakemoreError(f"init_from: {', '.join(shaped)} would change the shape of the base's model; a run that "
                            f"starts from another keeps its shape (drop {', '.join(shaped)})")
    config = {**asdict(base.model.config), **changes, "vocab_size": vocab.size, "n_labels": n_labels}
    if "dropout" in config and "dropout" not in changes:
        config["dropout"] = max(config["dropout"], FINETUNE_DROPOUT)
    if getattr(type(base.model), "positions_from_data", False):
        config["block_size"] = max(config["block_size"], longest_item + 1)
    return {k: v for k, v in config.items() if k in {f.name for f in fields(base.model.config)}}


def carry_over(base: Base, model: torch.nn.Module, vocab: Vocab, labels: tuple[str, ...]) -> dict[str, Any]:
    """Copy the base's weights into `model` (built by `config_for`, freshly initialised), character by character
    and label by label; returns run.json's record of which characters were carried over, added and dropped."""
    char_map = _index_map(("",) + base.vocab.chars, ("",) + vocab.chars)  # index 0, the boundary, maps to itself
    label_map = _index_map(base.labels or ("",), labels or ("",))
    if not labels or not base.labels:  # an unlabelled side has one zero label vector: nothing to carry
        label_map = [-1] * max(1, len(labels))
    axes = _axes(base.model)
    state = model.state_dict()
    with torch.no_grad():
        for name, old in base.model.state_dict().items():
            if name not in state:
                continue
            maps = [char_map if kind == "char" else label_map if kind == "label" else None
                    for kind in axes.get(name, ["fixed"] * old.dim())]
            _copy(old, state[name], maps)
    model.load_state_dict(state)
    if hasattr(model, "set_prior"):  # a count model: the base's counts, as a prior of this list's
        model.set_prior(base.model, char_map)
    shared = [c for c in vocab.chars if c in base.vocab.chars]
    return {"carried": "".join(shared), "added": "".join(c for c in vocab.chars if c not in base.vocab.chars),
            "dropped": "".join(c for c in base.vocab.chars if c not in vocab.chars),
            "labels_carried": [n for n in labels if n in base.labels]}


def _index_map(old: tuple[str, ...], new: tuple[str, ...]) -> list[int]:
    """For each new index, the old index of the same symbol, or -1 for a symbol the old side lacks."""
    where = {s: i for i, s in enumerate(old)}
    return [where.get(s, -1) for s in new]


def _axes(model: torch.nn.Module) -> dict[str, list[str]]:
    """For each tensor of the model's state: each axis is "char" (indexed by character), "label", or "fixed".

    Found by building the model again with one more character, one more label: the axes that grow are theirs."""
    config = asdict(model.config)
    shapes = {k: v.shape for k, v in model.state_dict().items()}

    def grown(field: str) -> dict[str, Any]:
        if field not in config:
            return {}
        bigger = build_model(model.registry_name, **{**config, field: config[field] + 1})
        return {k: v.shape for k, v in bigger.state_dict().items()}

    more_chars, more_labels = grown("vocab_size"), grown("n_labels")
    axes = {}
    for name, shape in shapes.items():
        axes[name] = ["char" if name in more_chars and more_chars[name][i] != n else
                      "label" if name in more_labels and len(more_labels[name]) == len(shape)
                      and more_labels[name][i] != n else "fixed"
                      for i, n in enumerate(shape)]
    return axes


def _copy(old: torch.Tensor, new: torch.Tensor, maps: list[list[int] | None]) -> None:
    """new[i, j, ...] = old[map0[i], map1[j], ...] wherever every mapped index exists; a "fixed" axis copies
    the leading entries both have (a position table that grew keeps the base's first positions)."""
    if old.dim() == 0 or old.dim() != new.dim():
        if old.shape == new.shape:
            new.copy_(old)
        return
    if any(m is None and o > n for m, o, n in zip(maps, old.shape, new.shape)):
        return  # a fixed axis that shrank: nothing sensible to carry (not made by config_for)
    target, source = [], []
    for m, o, n in zip(maps, old.shape, new.shape):
        if m is None:
            keep = torch.arange(min(o, n))
            target.append(keep), source.append(keep)
        else:
            pairs = [(i, j) for i, j in enumerate(m[:n]) if 0 <= j < o]
            target.append(torch.tensor([i for i, _ in pairs], dtype=torch.long))
            source.append(torch.tensor([j for _, j in pairs], dtype=torch.long))
    if any(t.numel() == 0 for t in target):
        return
    new[torch.meshgrid(*target, indexing="ij")] = old[torch.meshgrid(*source, indexing="ij")].to(new.dtype)


def choose_prior_weight(model: torch.nn.Module, splits: Splits) -> float:
    """A count model with a prior (`set_prior`): refit with the base's counts weighing each share of this
    list's own in PRIOR_SHARES, keep the weight whose val NLL is lowest; returns it (0: the list alone)."""
    X, Y = splits.train
    if model.prior_total() == 0:  # the base shares no n-gram with this list: nothing to weigh
        return 0.0
    scale = X.shape[0] / model.prior_total()  # a weight of `scale` gives the base as many counts as the list
    best: tuple[float, float] | None = None
    for share in PRIOR_SHARES:
        weight = share * scale
        model.config.prior_weight = weight
        model.fit(X, Y)
        with eval_mode(model):
            nll = evaluate_part(model, splits, "val")
        if best is None or nll < best[0] - 1e-9:
            best = (nll, weight)
    model.config.prior_weight = best[1]
    model.fit(X, Y)
    return best[1]
