"""makemore: character-level language models, from counting bigrams to a WaveNet.

The Python API (the CLI is a thin layer over it)::

    import makemore as mm
    items = mm.read_items("names.txt")
    meta = mm.run(items, mm.RunSpec(model="mlp", recipe=mm.get_recipe("mlp")), "runs/mlp")
    model, vocab, meta = mm.load_run("runs/mlp")
    print(mm.sample_items(model, vocab, n=5, max_len=30, seed=0))

Names are imported on first use, so `import makemore` (and `makemore --help`) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "read_items": "data", "Vocab": "data", "make_splits": "data", "build_windows": "data", "split_items": "data",
    "MODELS": "models", "build_model": "models", "register": "models",
    "Recipe": "train", "train": "train", "evaluate": "evaluation", "TrainHooks": "train",
    "get_recipe": "recipes", "PRESETS": "recipes",
    "RunSpec": "runs", "run": "runs", "resume": "runs",
    "load_run": "checkpoint", "save_run": "checkpoint",
    "sample_items": "sample", "generate": "sample", "generate_labelled": "sample",
    "classify_items": "classify", "score_labelled": "classify", "LabelSet": "labels", "ItemLabels": "labels",
    "read_labelled": "sources",
    "most_likely": "search", "MostLikely": "search",
    "Constraint": "constraints", "estimate_probability": "constraints",
    "Decoder": "decoding",
    "score_items": "scoring", "top_next_chars": "scoring",
    "reproduce": "reproduce", "read_results": "reproduce",
    "make_ensemble": "ensemble", "fit_members": "ensemble", "Member": "ensemble", "fit_weights": "ensemble",
    "diagnose": "diagnostics", "format_diagnose": "diagnostics",
    "measure_claims": "claims", "format_claims": "claims",
    "gradient_check": "backprop", "compare_hand_and_autograd": "backprop",
    "check_controls": "sample",
    "BOUNDS": "bounds",
    "MakemoreError": "errors", "ParameterError": "errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'makemore' has no attribute {name!r}")
