"""Run directories: weights in safetensors, everything else in JSON, written atomically.

A run directory holds
- `model.safetensors`: the state dict (parameters and buffers such as BatchNorm's running stats); of a
  finished run with val checks, the best-validated weights (run.json's `weights_step` says which step's);
- `run.json`: model name, config, vocabulary, split seed, recipe, metrics, and how the run was made;
- `metrics.csv`: the training loss curve, and val loss where it was measured;
- while training, or after a stop: `train_state.safetensors`, the resume point;
- with periodic evaluation: `best.safetensors`, the weights of the best val loss.
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
import safetensors.torch
from safetensors import SafetensorError

from ..data.atomic import atomic_write, atomic_write_text, disk_hint, json_text
from ..data.items import Vocab
from ..device import full_float32
from ..errors import MakemoreError
from ..data.labels import LabelSet
from ..models import build_model, get_spec

FORMAT_VERSION = 1  # bump when run.json or the weights' layout changes incompatibly
WEIGHTS = "model.safetensors"
META = "run.json"
METRICS = "metrics.csv"


# safetensors' own save_file/load_file take a path as UTF-8 text; save_file and _read_safetensors take any
# path (a folder named in another encoding included): the bytes are (de)serialised here, the file is Python's.
def save_file(tensors: dict[str, torch.Tensor], path, metadata: dict[str, str] | None = None) -> None:
    data = safetensors.torch.save(tensors, metadata=metadata)
    with open(path, "wb") as f:
        f.write(data)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on the CPU, the header's metadata) of a safetensors file; SafetensorError if it is damaged."""
    data = path.read_bytes()
    tensors = safetensors.torch.load(data)  # checks the header and every tensor's extent
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return tensors, header.get("__metadata__") or {}


def save_run(run_dir: str | Path, model: nn.Module, meta: dict[str, Any], weights: bool = True) -> None:
    """Write weights first, then run.json: run.json never names weights that are not complete.

    weights=False writes run.json alone (a run's description, before it has weights)."""
    run_dir = Path(run_dir)
    try:
        if weights:
            save_weights(run_dir / WEIGHTS, model)
        meta = {"format_version": FORMAT_VERSION, "model": model.registry_name, "config": asdict(model.config), **meta}
        atomic_write_text(run_dir / META, json_text(meta))
    except OSError as e:
        raise MakemoreError(f"cannot write the run directory {run_dir}: {e.strerror or e}{disk_hint(e)}") from None


def save_metrics(run_dir: str | Path, loss_curve: list[tuple[int, float, float]], val_curve: list[tuple[int, float]]) -> None:
    """metrics.csv: one row per report, with the val loss on the rows where it was measured."""
    val_at = dict(val_curve)
    lines = ["step,train_loss,lr,val_loss"] + [
        f"{step},{loss:.6f},{lr:.6g},{val_at[step]:.6f}" if step in val_at else f"{step},{loss:.6f},{lr:.6g},"
        for step, loss, lr in loss_curve
    ]
    atomic_write_text(Path(run_dir) / METRICS, "\n".join(lines) + "\n")


def read_metrics(run_dir: str | Path) -> list[dict[str, float | None]]:
    rows = []
    for line in (Path(run_dir) / METRICS).read_text().splitlines()[1:]:
        step, loss, lr, val = line.split(",")
        rows.append({"step": int(step), "train_loss": float(loss), "lr": float(lr), "val_loss": float(val) if val else None})
    return rows


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if run_dir.is_file():
        if run_dir.suffix.lower() in (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"):
            raise MakemoreError(f"{run_dir} looks like a pickle checkpoint; makemore never unpickles (loading one can "
                                f"run arbitrary code): give a run directory makemore trained into")
        raise MakemoreError(f"{run_dir} is a file; give the run directory that holds {META} and {WEIGHTS}")
    if not run_dir.is_dir():
        raise MakemoreError(f"run directory not found: {run_dir} (train a run into it first)")
    path = run_dir / META
    if not path.exists():
        raise MakemoreError(f"{run_dir} holds no checkpoint ({META} is missing); train a run into it first")
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
    if meta.get("status", "complete") != "complete" and (run_dir / TRAIN_STATE).exists():
        # unfinished: the resume point is the one source of truth (a kill between two files of one
        # checkpoint may leave model.safetensors one checkpoint behind); it holds the weights too
        weights = run_dir / TRAIN_STATE
    elif not weights.exists():
        if meta.get("status", "complete") != "complete":
            raise MakemoreError(f"{run_dir} has no weights yet: training stopped before its first checkpoint; "
                                "resume the run to continue it")
        raise MakemoreError(f"{run_dir} has {META} but no {WEIGHTS}; the run directory is incomplete, train it again")
    try:
        state = _read_safetensors(weights)[0]
    except (SafetensorError, OSError, ValueError) as e:
        raise MakemoreError(f"{weights} is not a readable safetensors file ({e}); it is truncated or damaged") from None
    if weights.name == TRAIN_STATE:
        state = {k[len("model/"):]: v for k, v in state.items() if k.startswith("model/")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise MakemoreError(f"{weights} does not fit the model described in {META}: {detail}") from None
    model.to(device)
    full_float32(device)  # a cached step and the whole item read again give the same draws on a GPU too
    model.eval()
    model.label_set = LabelSet.from_meta(meta.get("labels"))  # a labelled run's labels (None: unlabelled), for the API
    return model, vocab, meta


# ----------------------------------------------------------------------------- resumable training state

TRAIN_STATE = "train_state.safetensors"  # one file, so a resume point is written (and replaced) atomically
# TrainState fields kept as tensors, not JSON: the batch order, and the states of the random generators
STATE_TENSORS = ("order", "generator", "torch_rng", "device_rng")
BEST_WEIGHTS = "best.safetensors"


def save_weights(path: Path, model: nn.Module) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format_version": str(FORMAT_VERSION)}))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A weights file's tensors, on the CPU; a MakemoreError if it is damaged."""
    try:
        return _read_safetensors(path)[0]
    except (SafetensorError, OSError, ValueError) as e:
        raise MakemoreError(f"{path} is not a readable safetensors file ({e}); it is truncated or damaged") from None


def save_train_state(run_dir: str | Path, model: nn.Module, optimizer, state) -> None:
    """Weights, optimizer state, batch order and RNG state, loss curves: all a resume needs, in one file."""
    tensors = {f"model/{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entries in opt["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{idx}/{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    tensors["state/order"] = state.order.to("cpu").contiguous()
    for name in STATE_TENSORS[1:]:  # the random generators' states (byte tensors); absent ones are not written
        if getattr(state, name) is not None:
            tensors[f"state/{name}"] = getattr(state, name).to("cpu").contiguous()
    fields = {k: v for k, v in vars(state).items() if k not in STATE_TENSORS}
    meta = {"format_version": FORMAT_VERSION, "state": fields, "param_groups": opt["param_groups"], "optimizer_scalars": scalars}
    atomic_write(Path(run_dir) / TRAIN_STATE,
                 lambda tmp: save_file(tensors, tmp, metadata={"makemore": json.dumps(meta)}))


def load_train_state(run_dir: str | Path):
    """The resume point of a stopped run: (model state dict, optimizer state dict, TrainState), or None."""
    from .loop import TrainState

    path = Path(run_dir) / TRAIN_STATE
    if not path.exists():
        return None
    try:
        tensors, metadata = _read_safetensors(path)
        meta = json.loads(metadata["makemore"])
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise MakemoreError(f"{path} is not a readable training state ({e}); it is damaged") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise MakemoreError(f"{path} was written by a newer makemore; upgrade makemore to resume it")
    model_state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, idx, name = key.split("/", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    for idx, entries in meta["optimizer_scalars"].items():
        opt_state.setdefault(int(idx), {}).update(entries)
    fields = meta["state"]
    fields["loss_curve"] = [tuple(x) for x in fields["loss_curve"]]
    fields["val_curve"] = [tuple(x) for x in fields["val_curve"]]
    state = TrainState(**fields, **{name: tensors.get(f"state/{name}") for name in STATE_TENSORS})
    return model_state, {"state": opt_state, "param_groups": meta["param_groups"]}, state
