"""Run directories: weights in safetensors, everything else in JSON, written atomically.

A run directory holds
- `model.safetensors`: the state dict (parameters and buffers such as BatchNorm's running stats);
- `run.json`: model name, config, vocabulary, split seed, recipe, metrics, and how the run was made;
- `loss.csv`: the training loss curve.
Together they rebuild the model and sample without the training file. Loading never
unpickles anything: safetensors holds raw tensors only.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_write, atomic_write_text
from .data import Vocab
from .errors import MakemoreError
from .models import build_model, get_spec

FORMAT_VERSION = 1  # bump when run.json or the weights' layout changes incompatibly
WEIGHTS = "model.safetensors"
META = "run.json"
LOSS_CURVE = "loss.csv"


def save_run(run_dir: str | Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """Write weights first, then run.json: run.json names a model whose weights are already complete."""
    run_dir = Path(run_dir)
    try:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        atomic_write(run_dir / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format_version": str(FORMAT_VERSION)}))
        meta = {"format_version": FORMAT_VERSION, "model": model.registry_name, "config": asdict(model.config), **meta}
        atomic_write_text(run_dir / META, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    except OSError as e:
        raise MakemoreError(f"cannot write the run directory {run_dir}: {e.strerror or e}") from None


def save_loss_curve(run_dir: str | Path, curve: list[tuple[int, float, float]]) -> None:
    lines = ["step,loss,lr"] + [f"{step},{loss:.6f},{lr:.6g}" for step, loss, lr in curve]
    atomic_write_text(Path(run_dir) / LOSS_CURVE, "\n".join(lines) + "\n")


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MakemoreError(f"run directory not found: {run_dir} (train one with: makemore train -i FILE -o {run_dir})")
    path = run_dir / META
    if not path.exists():
        raise MakemoreError(f"{run_dir} holds no checkpoint ({META} is missing); train into it with makemore train")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MakemoreError(f"{path} is not valid JSON ({e}); the run directory is damaged, train it again") from None
    if not isinstance(meta, dict):
        raise MakemoreError(f"{path} is not a makemore run file (expected a JSON object)")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise MakemoreError(f"{path} has no format_version; it was not written by makemore")
    if version > FORMAT_VERSION:
        raise MakemoreError(
            f"{path} was written by a newer makemore (format {version}, this one reads up to {FORMAT_VERSION}); upgrade makemore"
        )
    for key in ("model", "config", "vocab"):
        if key not in meta:
            raise MakemoreError(f"{path} lacks the field {key!r}; the run directory is damaged, train it again")
    return meta


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Vocab, dict[str, Any]]:
    """Rebuild the model of a run directory on `device` (any device, whatever it was trained on)."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    vocab = Vocab(tuple(meta["vocab"]))
    get_spec(meta["model"])  # a clear error for a model this makemore does not know
    config = dict(meta["config"])
    if config.get("vocab_size") != vocab.size:
        raise MakemoreError(
            f"{run_dir / META}: config vocab_size {config.get('vocab_size')} does not match the vocabulary ({vocab.size}); the file was edited"
        )
    try:
        model = build_model(meta["model"], **config)
    except (TypeError, ValueError) as e:
        raise MakemoreError(f"{run_dir / META}: the model config is invalid ({e})") from None
    weights = run_dir / WEIGHTS
    if not weights.exists():
        raise MakemoreError(f"{run_dir} has {META} but no {WEIGHTS}; the run directory is incomplete, train it again")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise MakemoreError(f"{weights} is not a readable safetensors file ({e}); it is truncated or damaged") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise MakemoreError(f"{weights} does not fit the model described in {META}: {detail}") from None
    model.to(device)
    model.eval()
    return model, vocab, meta
