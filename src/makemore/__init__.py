"""makemore: character-level language models, from counting bigrams to a WaveNet.

The Python API (the CLI is a thin layer over it)::

    import makemore as mm
    items = mm.read_items("names.txt")
    meta = mm.run(items, mm.RunSpec(model="mlp", recipe=mm.get_recipe("mlp")), "runs/mlp")
    run = mm.Run.load("runs/mlp")
    print([s.item for s in run.generate(mm.GenerateRequest(n=5, seed=0)).items])

Names are imported on first use, so `import makemore` (and `makemore --help`) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {
    "read_items": "data.items", "Vocab": "data.items", "make_splits": "data.items", "build_windows": "data.items", "split_items": "data.items",
    "MODELS": "models", "eval_mode": "models", "build_model": "models", "register": "models",
    "Recipe": "training.loop", "train": "training.loop", "evaluate": "training.evaluation", "TrainHooks": "training.loop",
    "get_recipe": "training.recipes", "PRESETS": "training.recipes", "recipe_for": "training.recipes",
    "train_auto": "studies.auto", "AutoSpec": "studies.auto",
    "RunSpec": "training.pipeline", "RunControl": "training.pipeline", "run": "training.pipeline", "resume": "training.pipeline",
    "load_run": "training.run_folder", "save_run": "training.run_folder",
    "Run": "trained", "GenerateRequest": "generation.request",
    "classify_items": "generation.classify", "score_labelled": "generation.classify", "LabelSet": "data.labels", "ItemLabels": "data.labels",
    "read_labelled": "data.labelled",
    "Constraint": "generation.constraints", "estimate_probability": "generation.constraints",
    "Decoder": "models.decoding",
    "score_items": "generation.scoring", "top_next_chars": "generation.scoring",
    "reproduce": "studies.reproduce", "read_results": "studies.reproduce",
    "make_ensemble": "studies.ensemble", "fit_members": "studies.ensemble", "Member": "studies.ensemble", "fit_weights": "studies.ensemble",
    "diagnose": "studies.diagnostics", "InitComparison": "studies.diagnostics", "format_diagnose": "studies.diagnostics",
    "measure_claims": "studies.claims", "format_claims": "studies.claims",
    "gradient_check": "studies.backprop", "compare_hand_and_autograd": "studies.backprop",
    "check_controls": "generation.request",
    "export_run": "export.write", "bundle": "export.bundle",
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
