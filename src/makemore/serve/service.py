"""What each API route computes, with the library's own functions: the server adds transport, nothing else.

A POST route is two steps. `prepare_*` reads and checks the request (cheap, in the server's event
loop) and returns a job; the job asks the run (`Run.generate`, `Run.score`, `Run.next`; the bigram
counts and embeddings of /api/inside) and runs in the server's bounded worker pool. So a bad
request is refused at once, without waiting for a worker, and a model call never blocks the loop.
The answers, and their JSON, are the ones `makemore sample/score/next --format json` give for the same
run and settings: both ask the same `Run` and call the same `to_json`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from .. import __version__
from ..bounds import MAX_REQUEST_CHARS
from ..data.items import Vocab
from ..errors import MakemoreError, ParameterError
from ..generation.request import GenerateRequest
from ..studies.ensemble import describe_ensemble
from ..studies.leaderboard import describe_recipe
from ..models import get_spec
from ..generation.scoring import bigram_count_matrix, boundary_symbol
from .catalog import Catalog, ServedRun
from .config import MAX_EXPLAINED_CHARS
from .schemas import INSIDE, NEXT, SAMPLE, SCORE, ApiError, from_parameter_error, read_fields

Job = Callable[[], dict[str, Any]]  # a model call, run in the worker pool; returns the response body


def health(catalog: Catalog) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "runs": len(catalog.runs)}


def list_runs(catalog: Catalog) -> dict[str, Any]:
    """Every run served (what the page's run card shows) and the results tables of their folders."""
    return {"runs": [run_summary(run) for run in catalog.runs.values()], "results": catalog.tables}


def run_summary(run: ServedRun) -> dict[str, Any]:
    meta, spec = run.meta, get_spec(run.meta["model"])
    dataset = meta.get("dataset") or {}
    recipe = meta.get("recipe")
    trained_with = describe_recipe(recipe, meta["config"], getattr(spec.model_cls, "trainable", True)) if recipe else None
    if "ensemble" in meta:  # made from trained runs, not trained: its members and their weights
        trained_with = describe_ensemble(meta)
    return {
        "id": run.id,
        "model": meta["model"],
        "mechanism": spec.mechanism,
        "layout": spec.layout,
        "params": meta.get("params", sum(p.numel() for p in run.model.parameters())),
        "metrics": {k: meta.get("metrics", {}).get(k) for k in ("train_nll", "val_nll", "test_nll")},
        "labels": [entry["name"] for entry in meta.get("labels") or []],
        "data": {"name": dataset.get("name"), "items": dataset.get("items"), "vocab_size": run.vocab.size,
                 "chars": "".join(run.vocab.chars)},
        "recipe": {"name": meta.get("recipe_name"), "trained_with": trained_with},
        "config": meta["config"],
        "group": run.group,
        "max_len": run.default_max_len,
        "training_file": run.items is not None,  # percentiles, novel and the bigram counts need it
    }


def _asked(schema, ask: Callable[[], Any]) -> Any:
    """`ask()`, with the library's ParameterError as a 422 naming the request's field."""
    try:
        return ask()
    except ParameterError as e:
        raise from_parameter_error(e, schema) from None


# ----------------------------------------------------------------------------- sample

def prepare_sample(catalog: Catalog, body: dict[str, Any]) -> Job:
    v = read_fields(body, SAMPLE, catalog.runs)
    served = catalog.runs[v["run"]]
    request = GenerateRequest(n=v["n"], seed=v["seed"], temperature=v["temperature"], top_k=v["top_k"],
                              top_p=v["top_p"], prefix=v["prefix"], suffix=v["suffix"] or None,
                              contains=v["contains"] or None, min_len=v["min_len"], max_len=v["max_len"],
                              novel=v["novel"], label=v["label"] or None,
                              most_likely=v["n"] if v["most_likely"] else None, max_expansions=v["max_expansions"],
                              avoid=v["avoid"], exclude=v["exclude"], unique=v["unique"], keys=v["keys"],
                              blend=v["blend"] or (), min_log_prob=v["min_log_prob"],
                              max_nll_per_char=v["max_nll_per_char"])
    request = _asked(SAMPLE, lambda: served.run.resolve(request, cap=MAX_REQUEST_CHARS))
    if request.novel and served.missing:
        raise ApiError(422, "novel", "novel needs the run's training file, which this server could not find",
                       "false for this run")

    def job() -> dict[str, Any]:  # too few novel items, a constraint too unlikely: a 422 too
        out = _asked(SAMPLE, lambda: served.run.generate(request, cap=MAX_REQUEST_CHARS))
        return out.to_json(served.id)

    return job


# ----------------------------------------------------------------------------- score

def prepare_score(catalog: Catalog, body: dict[str, Any]) -> Job:
    v = read_fields(body, SCORE, catalog.runs)
    served = catalog.runs[v["run"]]
    run = served.run
    items = [run.text(item) for item in v["items"]]
    _asked(SCORE, lambda: (run.label_or_blend(v["label"], v["blend"], "explain" if v["explain"] else None), run.check_known("items", items)))
    explained = sum(len(item) + 1 for item in items)
    if v["explain"] and explained > MAX_EXPLAINED_CHARS:
        raise ApiError(422, "items", f"items with explain may hold at most {MAX_EXPLAINED_CHARS:,} characters "
                                     f"(and ends) in all, got {explained:,}; send fewer or turn explain off",
                       f"at most {MAX_EXPLAINED_CHARS:,} characters in all, with explain")

    def job() -> dict[str, Any]:
        scores = run.score(items, label=v["label"] or None, explain=v["explain"], blend=v["blend"] or ())
        return scores.to_json(served.id)

    return job


# ----------------------------------------------------------------------------- next

def prepare_next(catalog: Catalog, body: dict[str, Any]) -> Job:
    v = read_fields(body, NEXT, catalog.runs)
    served = catalog.runs[v["run"]]
    run = served.run
    _asked(NEXT, lambda: (run.label_or_blend(v["label"], v["blend"], "next"), run.check_known("prefix", [run.text(v["prefix"])])))

    def job() -> dict[str, Any]:
        return run.next(v["prefix"], v["k"], label=v["label"] or None, blend=v["blend"] or ()).to_json(served.id)

    return job


# ----------------------------------------------------------------------------- look inside

def prepare_inside(catalog: Catalog, body: dict[str, Any]) -> Job:
    run = catalog.runs[read_fields(body, INSIDE, catalog.runs)["run"]]

    def job() -> dict[str, Any]:
        if "inside" not in run.cache:  # the run never changes: computed once
            run.cache["inside"] = {"run": run.id, **bigrams(run), **embedding_2d(run.model, run.vocab)}
        return run.cache["inside"]

    return job


def bigrams(run: ServedRun) -> dict[str, Any]:
    """The essay's bigram count matrix of the run's training file (rows: this character, columns: the next)."""
    labels = [boundary_symbol(run.vocab), *run.vocab.chars]
    if run.items is None:
        return {"bigrams": None, "bigrams_note": "the run's training file was not found when the server started"}
    try:
        counts, _ = bigram_count_matrix(run.items, run.vocab)
    except MakemoreError as e:
        return {"bigrams": None, "bigrams_note": str(e)}
    return {"bigrams": {"labels": labels, "counts": counts.tolist()}, "bigrams_note": None}


def embedding_table(model: nn.Module) -> torch.Tensor | None:
    """The model's character embedding table (V, E), if it has one (`C` in the essay's models, `wte` elsewhere)."""
    table = getattr(model, "C", None)
    if table is None and isinstance(getattr(model, "wte", None), nn.Embedding):
        table = model.wte.weight
    return table if isinstance(table, torch.Tensor) and table.dim() == 2 else None


def embedding_2d(model: nn.Module, vocab: Vocab) -> dict[str, Any]:
    """Each character's embedding in 2D: the two dimensions themselves when there are two (the essay's
    picture), else the first two principal components of all of them; `method` says which."""
    table = embedding_table(model)
    if table is None:
        return {"embedding": None, "embedding_note": f"{model.registry_name} has no character embedding table"}
    W = table.detach().double().cpu()
    E = W.shape[1]
    if E <= 2:
        xy = torch.cat([W, torch.zeros(W.shape[0], 2 - E, dtype=W.dtype)], dim=1)
        method, axes = f"the embedding's {E} dimension{'s' if E > 1 else ''} as they are", ["dimension 1", "dimension 2"]
    else:
        centered = W - W.mean(dim=0)
        _, S, Vh = torch.linalg.svd(centered, full_matrices=False)
        xy = centered @ Vh[:2].T
        share = float((S[:2] ** 2).sum() / (S ** 2).sum()) if float((S ** 2).sum()) > 0 else 0.0
        method = f"PCA of all {E} dimensions: the first two components ({share:.0%} of the variance)"
        axes = ["component 1", "component 2"]
    labels = [boundary_symbol(vocab), *vocab.chars]
    return {"embedding": {"labels": labels, "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "method": method,
                          "axes": axes, "dims": E}, "embedding_note": None}
