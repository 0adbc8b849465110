"""The model's next-character step as an ONNX graph, and a `.json` beside it that says how to drive it.

    description = export_onnx(Run.load("runs/wavenet"), "names.onnx")   # writes names.onnx and names.json

What the graph computes depends on what the model reads (its `kind` in the .json):

- "window" (bigram-counts, bigram-nn, mlp, mlp-bn, mlp-deep, wavenet, wavenet-conv): `context` int64
  (batch, block_size), the last block_size indices of the item so far, boundaries in front when it is shorter
  -> `logits` float32 (batch, V) for the next character;
- "recurrent" (rnn, gru, lstm): `index` int64 (batch,), the newest index, and the state (`h`, and `c` for the
  LSTM, float32 (batch, n_layer, n_hidden)) -> `logits` (batch, V) and the state after it (`next_h`,
  `next_c`); the first state is given in the .json (zeros for these models);
- "sequence" (transformer): `tokens` int64 (batch, T), the last T <= block_size indices of the item so far
  -> `logits` (batch, V) at its last position;
- "mixture" (an ensemble): `tokens` int64 (batch, t), the whole item so far -> `logits` (batch, V), the log of
  the mixture of its members' distributions (already normalised).

Indices are those PyTorch feeds the model: 0 is the boundary (start and end), i + 1 is chars[i]; a labelled
run's index carries its label, label * V + char (`makemore.data.labels`), boundaries included. Softmax of
`logits` is the next-character distribution over [end, *chars], exactly PyTorch's (float32, eval mode:
BatchNorm reads its running statistics, dropout is off).

Exported with PyTorch's torch.export-based exporter (`torch.onnx.export(..., dynamo=True)`, which needs
onnxscript), at opset OPSET: the default since PyTorch 2.9; the TorchScript-based one (dynamo=False) still works
in 2.13 but warns that it is deprecated and will be removed.
The n-gram (and an ensemble holding one) has no ONNX step, and is refused in one line: its counts are found at each
step by a binary search of sorted context keys (`torch.searchsorted`), which no ONNX operator does.

onnx and torch.onnx are imported only inside `export_onnx` (the `export` extra); library code never prints,
and the exporter's own progress and warnings are kept quiet.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..data.atomic import disk_hint, json_text
from ..errors import MakemoreError
from ..generation.request import default_max_len
from ..models.decoding import has_steps
from ..models.reading import layout_of, max_context
from ..trained import Run

FORMAT = "makemore-onnx"
VERSION = 1
OPSET = 18  # supported by onnxruntime 1.14 and later and by most engines; every op used here is in it
EXTRA = "ONNX export needs the export extra: pip install 'makemore[export]'"
EXAMPLE_BATCH = 2  # the batch of the example inputs (not 1, which torch.export would fix as a constant)


# ----------------------------------------------------------------------------- the step graphs

class WindowStep(nn.Module):
    """context (B, block_size) -> logits (B, V): the windowed model's forward (a sliding one's last position)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.slides = layout_of(model) == "sequence"  # wavenet-conv: a window of block_size in, one per position out

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        logits = self.model(context)[0]
        return (logits[:, -1] if self.slides else logits).float()


class CountTableStep(nn.Module):
    """bigram-counts: the table of log-probabilities, computed once here as the model computes it at each call,
    then a row lookup by the last index of the context (label * V + character)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.register_buffer("table", model.probs().log())  # (n_labels * V, V) float32: what forward indexes

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.table[context[:, -1]]


class RecurrentStep(nn.Module):
    """index (B,), state tensors (B, n_layer, H) -> logits (B, V), the new state: the model's own `step`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, index: torch.Tensor, *state: torch.Tensor):
        logits, new_state = self.model.step(index, tuple(state))
        return (logits.float(), *new_state)


class SequenceStep(nn.Module):
    """tokens (B, T <= block_size) -> logits (B, V) at the last position."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model(tokens)[0][:, -1].float()


class MixtureStep(nn.Module):
    """tokens (B, t), the whole item so far -> log sum_m w_m softmax(logits_m): the ensemble at the last position.

    Each member reads the item as `makemore.models.reading.next_logits` has it read: a windowed member its last
    block_size indices, the item's boundary (its label's) in front when shorter; a sliding window (wavenet-conv)
    and a recurrent member the whole item; a member with a position table its last block_size positions.
    Written without branches on the length, so one graph serves every length.
    """

    def __init__(self, ensemble: nn.Module):
        super().__init__()
        self.members = ensemble.members
        self.vocab_size = ensemble.config.vocab_size
        # the mixture's float32 log-weights, (M, 1, 1): as Mixture.forward casts its float64 ones
        self.register_buffer("log_weights", ensemble.log_weights.float())

    def member_logits(self, member: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        ctx = max_context(member)
        if layout_of(member) == "windows":
            start = tokens[:, :1] // self.vocab_size * self.vocab_size  # (B, 1): the item's boundary (its label's)
            window = torch.cat([start.expand(-1, ctx), tokens], dim=1)[:, -ctx:]  # (B, ctx)
            return member(window)[0]
        if ctx is not None and not getattr(member, "window_slides", False):
            tokens = tokens[:, -ctx:]  # a position table: its last block_size positions
        return member(tokens)[0][:, -1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        log_p = torch.stack([torch.log_softmax(self.member_logits(m, tokens).float(), dim=-1) for m in self.members])
        return torch.logsumexp(self.log_weights + log_p, dim=0)  # (B, V)


# ----------------------------------------------------------------------------- what each model exports as

def step_of(run: Run) -> tuple[str, nn.Module]:
    """The run's kind ("window", "recurrent", "sequence", "mixture") and its step module; a one-line MakemoreError
    for a model that has none."""
    model, name = run.model, run.meta.get("model", getattr(run.model, "registry_name", "?"))
    refusal = _refusal(model, name)
    if refusal:
        raise MakemoreError(refusal)
    if name == "bigram-counts":
        return "window", CountTableStep(model)
    if name == "ensemble":
        return "mixture", MixtureStep(model)
    if layout_of(model) == "windows" or getattr(model, "window_slides", False):
        return "window", WindowStep(model)
    if max_context(model) is None and has_steps(model):
        return "recurrent", RecurrentStep(model)
    if max_context(model) is not None:
        return "sequence", SequenceStep(model)
    raise MakemoreError(f"ONNX export has no step graph for a {name} model")


def _refusal(model: nn.Module, name: str) -> str | None:
    """Why the model cannot be exported to ONNX, in one line (None: it can)."""
    why_ngram = ("its counts are looked up at each step by a binary search of sorted context keys "
                 "(torch.searchsorted), which has no ONNX operator; export it as html or js instead")
    if name == "ngram":
        return f"an ngram model has no ONNX export: {why_ngram}"
    if name == "ensemble":
        for member in getattr(model, "members", ()):
            if getattr(member, "registry_name", None) == "ngram":
                return f"an ensemble with an ngram member has no ONNX export: the ngram's {why_ngram}"
    return None


def _shapes(run: Run, kind: str) -> tuple[tuple, list[dict], list[dict], dict, dict]:
    """Example inputs, the inputs' and outputs' descriptions, torch.export's dynamic shapes, the first state."""
    model, B = run.model, EXAMPLE_BATCH
    V = run.model.config.vocab_size
    n_labels = getattr(model.config, "n_labels", 1)
    index_range = f"0..{V * n_labels - 1}" + (f", label * {V} + character index" if n_labels > 1 else "")
    batch = torch.export.Dim("batch", min=1)
    logits = {"name": "logits", "dtype": "float32", "shape": ["batch", V],
              "description": "the next character's logits over [end, *chars]: softmax gives its probabilities"}
    if kind == "window":
        T = model.config.block_size
        example = (torch.zeros(B, T, dtype=torch.long),)
        inputs = [{"name": "context", "dtype": "int64", "shape": ["batch", T],
                   "description": f"the last {T} indices ({index_range}) of [boundary, *item so far], "
                                  f"boundaries in front when it is shorter"}]
        return example, inputs, [logits], {"context": {0: batch}}, {}
    if kind == "recurrent":
        state = tuple(t.detach().float() for t in model.init_state(B))
        names = ["h", "c"][:len(state)]
        H, n_layer = model.config.n_hidden, model.config.n_layer
        meaning = {"h": "hidden state", "c": "memory cell"}
        inputs = [{"name": "index", "dtype": "int64", "shape": ["batch"],
                   "description": f"the newest index ({index_range}): the boundary first, then each character"}]
        inputs += [{"name": n, "dtype": "float32", "shape": ["batch", n_layer, H],
                    "description": f"the {meaning[n]} of each layer before reading index"} for n in names]
        outputs = [logits] + [{"name": f"next_{n}", "dtype": "float32", "shape": ["batch", n_layer, H],
                               "description": f"the {meaning[n]} of each layer after reading index: feed it back "
                                              f"as {n}"} for n in names]
        first = {n: _initial(model, i) for i, n in enumerate(names)}
        return ((torch.zeros(B, dtype=torch.long), *state), inputs, outputs,
                {"index": {0: batch}, "state": tuple({0: batch} for _ in names)}, first)
    if kind == "sequence":
        T = model.config.block_size
        length = torch.export.Dim("length", min=1, max=T)
        example = (torch.zeros(B, T, dtype=torch.long),)
        inputs = [{"name": "tokens", "dtype": "int64", "shape": ["batch", "length"],
                   "description": f"the last length <= {T} indices ({index_range}) of [boundary, *item so far]"}]
        return example, inputs, [logits], {"tokens": {0: batch, 1: length}}, {}
    length = torch.export.Dim("length", min=1)
    example = (torch.zeros(B, 4, dtype=torch.long),)
    inputs = [{"name": "tokens", "dtype": "int64", "shape": ["batch", "length"],
               "description": f"[boundary, *item so far] as indices ({index_range}), the whole item"}]
    mixture = dict(logits, description="log p(next char) of the mixture over [end, *chars], already normalised: "
                                       "softmax (or exp) gives its probabilities")
    return example, inputs, [mixture], {"tokens": {0: batch, 1: length}}, {}


def _initial(model: nn.Module, i: int) -> dict[str, Any]:
    """The first state's tensor i, as the .json gives it: a fill value if every entry is one, else its values."""
    first = model.init_state(1)[i][0].detach().float()  # (n_layer, H): the same for every row
    if bool((first == first.flatten()[0]).all()):
        return {"fill": float(first.flatten()[0]), "shape": ["batch", *first.shape]}
    return {"values": first.tolist(), "shape": ["batch", *first.shape], "note": "the same for every row"}


def _recipe(run: Run, kind: str) -> list[str]:
    """How to drive the step to sample an item, in plain words."""
    V = run.model.config.vocab_size
    start = ("index 0 (the boundary)" if run.labels is None else
             f"the label's boundary, label * {V} (labels numbered in the order of labels.names)")
    T = getattr(run.model.config, "block_size", None)
    feed = {
        "window": f"Feed `context`: the last {T} indices of the sequence, left-padded with the start index when "
                  f"shorter.",
        "recurrent": "Feed `index` (the newest index of the sequence: the start index first) and the state "
                     "(initial_state at first, then the last call's next_* outputs); read one index per call.",
        "sequence": f"Feed `tokens`: the sequence, or its last {T} indices when longer.",
        "mixture": "Feed `tokens`: the whole sequence so far.",
    }[kind]
    label = [] if run.labels is None else [f"A labelled run's indices carry the label: label * {V} + the character's "
                                           f"index, in every position (the boundary included)."]
    return [f"Keep the sequence read so far, starting with {start}.", *label, feed,
            "softmax(logits) is the distribution of the next character: index 0 is the end of the item, index i + 1 "
            "is chars[i]; divide the logits by a temperature first if you like.",
            "Draw an index. 0 ends the item; otherwise append chars[index - 1] to the item and append the index "
            f"(plus label * {V} for a labelled run) to the sequence, then step again.",
            "Stop at max_len characters at most; lower-case or NFC-normalise a prefix first where text says so."]


def describe(run: Run, kind: str, inputs: list[dict], outputs: list[dict], first: dict, onnx_name: str) -> dict:
    """The .json: what the graph reads and gives, the vocabulary and labels, and how to drive it."""
    model, labels = run.model, run.labels
    return {
        "format": FORMAT, "version": VERSION, "onnx": onnx_name, "opset": OPSET,
        "model": run.meta["model"], "run": run.path.name if run.path is not None else run.meta["model"],
        "kind": kind, "chars": list(run.vocab.chars), "vocab_size": model.config.vocab_size, "boundary": 0,
        "labels": None if labels is None else {"names": list(labels.names),
                                                "priors": [float(p) for p in labels.priors.tolist()]},
        "block_size": getattr(model.config, "block_size", None) if kind != "mixture" else None,
        "inputs": inputs, "outputs": outputs, "initial_state": first or None,
        "text": {"lowercase": run.text_options.lowercase, "nfc": run.text_options.nfc},
        "max_len": default_max_len(run.max_item_len),
        "how_to_sample": _recipe(run, kind),
    }


# ----------------------------------------------------------------------------- writing

def export_onnx(run: Run, path: str | Path) -> dict[str, Any]:
    """Write the run's next-character step to `path` (.onnx) and its description to path.with_suffix(".json");
    return that description. A one-line MakemoreError for a model with no ONNX step or a missing extra; on any
    error, neither file is left behind (each is written to a temporary file beside it, then renamed)."""
    path = Path(path)
    side = path.with_suffix(".json")
    if side == path:
        raise MakemoreError(f"{path.name}: name the ONNX file .onnx, not .json (its description goes to a .json "
                            f"beside it)")
    kind, step = step_of(run)
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (the torch.export-based exporter's translator)
        import torch.onnx  # noqa: F401
    except ImportError:
        raise MakemoreError(EXTRA) from None
    if tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) < (2, 6):
        raise MakemoreError(f"ONNX export needs PyTorch 2.6 or later (its torch.export-based exporter); this is "
                            f"{torch.__version__}")
    example, inputs, outputs, dynamic, first = _shapes(run, kind)
    description = describe(run, kind, inputs, outputs, first, path.name)
    proto = _export(step.eval(), example, inputs, outputs, dynamic)
    _document(proto, description)
    _write_both(path, side, proto, description)
    return description


def _export(step: nn.Module, example: tuple, inputs: list[dict], outputs: list[dict], dynamic: dict):
    """The step as an ONNX ModelProto, the exporter's chatter (its log and warnings) kept quiet."""
    import torch.onnx

    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(step, example, None, input_names=[i["name"] for i in inputs],
                                        output_names=[o["name"] for o in outputs], dynamic_shapes=dynamic,
                                        opset_version=OPSET, dynamo=True, verbose=False, report=False,
                                        optimize=True, external_data=False)
    except MakemoreError:
        raise
    except Exception as e:  # the exporter's errors are long; the first line says what failed
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MakemoreError(f"ONNX export failed: {first_line}") from e
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return program.model_proto


def _document(proto, description: dict) -> None:
    """Doc strings on the graph, its inputs and outputs, and the description in the metadata (key "makemore")."""
    import onnx

    docs = {d["name"]: f"{d['dtype']} {d['shape']}: {d['description']}" for d in
            description["inputs"] + description["outputs"]}
    for value in [*proto.graph.input, *proto.graph.output]:
        value.doc_string = docs.get(value.name, "")
    proto.doc_string = (f"makemore {description['model']} ({description['kind']}): the next-character step; "
                        f"see the metadata's 'makemore' entry or {Path(description['onnx']).with_suffix('.json').name}")
    proto.producer_name = "makemore"
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"makemore": json.dumps(description, ensure_ascii=False)})
    onnx.checker.check_model(proto)


def _write_both(path: Path, side: Path, proto, description: dict) -> None:
    """Both files to temporaries beside them, then renamed: on an error, both are removed and neither is there."""
    import onnx

    temps: list[str] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as every export and run folder is: made when missing
        for target in (path, side):
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            temps.append(tmp)
        umask = os.umask(0)
        os.umask(umask)
        for tmp in temps:
            os.chmod(tmp, 0o666 & ~umask)
        onnx.save_model(proto, temps[0])
        with open(temps[1], "w", encoding="utf-8") as f:
            f.write(json_text(description))
        for tmp in temps:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(temps[0], path)
        try:
            os.replace(temps[1], side)
        except BaseException:
            path.unlink(missing_ok=True)  # the .onnx alone would be half an export
            raise
    except OSError as e:
        raise MakemoreError(f"could not write {path}: {e.strerror or e}{disk_hint(e)}") from None
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


__all__ = ["export_onnx", "step_of", "FORMAT", "VERSION", "OPSET"]
