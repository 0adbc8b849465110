"""A run as one portable JSON object: what the JavaScript runtime (`assets/`) reads to rebuild the model.

    {"format": "makemore-export", "version": 1, "model": "wavenet", "config": {...}, "chars": [...],
     "labels": null | {"names": [...], "priors": [...]}, "text": {"lowercase": false, "nfc": false},
     "max_len": 30, "run": {...}, "tensors": [{"name", "dtype", "shape", "offset", "length"}], "data": "<base64>",
     "training_items": [...]?}

`tensors` are the model's state dict (parameters and persistent buffers, an ensemble's members under
`members.<m>.`), each stored little-endian in one buffer (`data`, base64) at an offset that is a
multiple of 8: float32 for floating-point tensors, int32 for integer tensors that fit, float64 (exact
below 2^53) for those that do not (an n-gram's base-V context keys). `config` is the run.json config,
so the runtime builds the same architecture; an index fed to a model is `label * V + char`, as in
PyTorch (`makemore.data.labels`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy
import torch

from ..errors import MakemoreError
from ..generation.request import default_max_len
from ..trained import Run

FORMAT = "makemore-export"
VERSION = 1
INT32 = (-(2 ** 31), 2 ** 31 - 1)


def bundle(run: Run, *, with_training_items: bool = False) -> dict[str, Any]:
    """The run as a portable object (see the module's docstring); with_training_items embeds the training items
    (the page's "novel only" skips them). A MakemoreError when they are asked for and cannot be found."""
    meta = run.meta
    state = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
    tensors, chunks, offset = [], [], 0
    for name, tensor in state.items():
        array, dtype = _portable(tensor)
        raw = array.tobytes()
        pad = (-len(raw)) % 8
        tensors.append({"name": name, "dtype": dtype, "shape": list(tensor.shape), "offset": offset,
                        "length": int(array.size)})
        chunks.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    labels = run.labels
    out: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "model": meta["model"], "config": meta["config"],
        "chars": list(run.vocab.chars),
        "labels": None if labels is None else {"names": list(labels.names),
                                                "priors": [float(p) for p in labels.priors.tolist()]},
        "text": {"lowercase": run.text_options.lowercase, "nfc": run.text_options.nfc},
        "max_len": default_max_len(run.max_item_len),
        "run": {"name": run.path.name if run.path is not None else meta["model"], "model": meta["model"],
                "params": meta.get("params", sum(p.numel() for p in run.model.parameters())),
                "metrics": meta.get("metrics", {}), "dataset": (meta.get("dataset") or {}).get("name")},
        "tensors": tensors, "data": base64.b64encode(b"".join(chunks)).decode("ascii"),
    }
    if with_training_items:
        try:
            out["training_items"] = sorted(set(run.training_items()))
        except MakemoreError as e:
            raise MakemoreError(f"with_training_items needs the run's training file: {e}") from None
    return out


def _portable(tensor: torch.Tensor) -> tuple[numpy.ndarray, str]:
    """A tensor as a little-endian numpy array of a type JavaScript has, and that type's name."""
    if tensor.is_floating_point():
        return tensor.float().numpy().astype("<f4"), "float32"
    if tensor.dtype == torch.bool:
        return tensor.to(torch.int32).numpy().astype("<i4"), "int32"
    values = tensor.to(torch.int64)
    if values.numel() == 0 or (INT32[0] <= int(values.min()) and int(values.max()) <= INT32[1]):
        return values.numpy().astype("<i4"), "int32"
    if int(values.abs().max()) >= 2 ** 53:
        raise MakemoreError("a tensor holds integers of 2^53 or more, which JavaScript numbers cannot hold exactly")
    return values.numpy().astype("<f8"), "float64"


def inline_json(value: Any) -> str:
    """JSON that is safe inside an HTML <script> element and a JavaScript source: no "</script>", "<!--", "&",
    and no U+2028 / U+2029 (line terminators to older JavaScript), whatever the strings hold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                        ("\u2029", "\\u2029")):
        text = text.replace(ch, escaped)
    return text


__all__ = ["bundle", "inline_json", "FORMAT", "VERSION"]
