"""What each API route computes, with the library's own functions: the server adds transport, nothing else.

A POST route is two steps. `prepare_*` reads and checks the request (cheap, in the server's event
loop) and returns a job; the job calls the model (`generate`, `most_likely`, `score_items`, `explain_item`,
`top_next_chars`, `bigram_count_matrix`) and runs in the server's bounded worker pool. So a bad
request is refused at once, without waiting for a worker, and a model call never blocks the loop.
The numbers are the ones `makemore sample/score/next` print for the same run and settings.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable

import torch
import torch.nn as nn

from .. import __version__
from ..generation.constraints import Constraint, check_constraint
from ..data.items import BOUNDARY, Vocab
from ..errors import MakemoreError, ParameterError
from ..studies.ensemble import describe_ensemble
from ..studies.leaderboard import describe_recipe
from ..models import get_spec
from ..generation.classify import score_labelled
from ..data.labels import for_label
from ..generation.sampler import check_controls, generate_labelled
from ..generation.search import MAX_EXPANSIONS, most_likely
from ..generation.scoring import (bigram_count_matrix, boundary_symbol, context_display, explain_item, percentile_of,
                       top_next_chars, unknown_chars)
from .catalog import Catalog, ServedRun
from .config import MAX_EXPLAINED_CHARS
from .schemas import INSIDE, NEXT, SAMPLE, SCORE, ApiError, from_parameter_error, read_fields

Job = Callable[[], dict[str, Any]]  # a model call, run in the worker pool; returns the response body
END = "<end>"  # how the end token is named in responses (with "end": true); no single character reads so
RANDOM_ONLY = ("temperature", "top_k", "top_p", "seed")  # sample fields that shape random draws: not most_likely's


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


def _label(run: ServedRun, name: str, required_for: str | None = None) -> int | None:
    """The number of the label a request names ("" names none), or a 422 on the label field."""
    label_set = run.model.label_set
    if not name:
        if label_set is not None and required_for:
            raise ApiError(422, "label", f"{required_for} on a labelled run needs a label: one of "
                                         f"{', '.join(label_set.names)}", ", ".join(label_set.names))
        return None
    if label_set is None:
        raise ApiError(422, "label", "this run has no labels (it was trained on one list); leave label out",
                       "\"\" (or absent) for this run")
    if name not in label_set.names:
        raise ApiError(422, "label", f"{name[:100]!r} is not a label of this run; its labels are: "
                                     f"{', '.join(label_set.names)}", ", ".join(label_set.names))
    return label_set.names.index(name)


def _known(run: ServedRun, field: str, texts: list[str]) -> None:
    """A 422 naming the field (the item) that holds characters the model never saw, and the characters it knows."""
    for i, text in enumerate(texts):
        unknown = unknown_chars(run.vocab, [text])
        if unknown:
            name = f"{field}[{i}]" if field == "items" else field
            chars = "".join(run.vocab.chars)
            raise ApiError(422, name, f"{name} contains character(s) the model has never seen: "
                                      f"{', '.join(repr(c) for c in unknown[:20])}",
                           f"text in the run's {len(chars)} characters: {chars[:200]!r}")


# ----------------------------------------------------------------------------- sample

def prepare_sample(catalog: Catalog, body: dict[str, Any]) -> Job:
    v = read_fields(body, SAMPLE, catalog.runs)
    run = catalog.runs[v["run"]]
    _check_mode(v)
    texts = {name: run.text_options.apply(v[name]) for name in ("prefix", "suffix", "contains")}
    for name, text in texts.items():
        _known(run, name, [text])
    prefix = texts["prefix"]
    constraint = Constraint(texts["suffix"] or None, texts["contains"] or None)  # "": no such rule
    max_len = v["max_len"] if v["max_len"] is not None else max(run.default_max_len, v["min_len"], len(prefix), 1)
    controls = dict(temperature=v["temperature"], top_k=v["top_k"], top_p=v["top_p"], min_len=v["min_len"])
    try:
        check_controls(n=v["n"], max_len=max_len, prefix_len=len(prefix), **controls)
        check_constraint(None, constraint, prefix=prefix, min_len=v["min_len"], max_len=max_len)
    except ParameterError as e:
        raise from_parameter_error(e, SAMPLE) from None
    if v["novel"] and run.items is None:
        raise ApiError(422, "novel", "novel needs the run's training file, which this server could not find",
                       "false for this run")
    settings = dict(max_len=max_len, prefix=prefix, min_len=v["min_len"], exclude=run.items if v["novel"] else None,
                    suffix=constraint.suffix, contains=constraint.contains)
    label = _label(run, v["label"], "most_likely" if v["most_likely"] else None)
    if v["most_likely"]:
        budget = v["max_expansions"] if v["max_expansions"] is not None else MAX_EXPANSIONS
        return _most_likely_job(run, v["n"], budget, settings, label)
    seed = v["seed"] if v["seed"] is not None else secrets.randbits(32)  # exact in JavaScript (the page shows it)

    def job() -> dict[str, Any]:
        try:
            samples = generate_labelled(run.model, run.vocab, v["n"], seed=seed, temperature=v["temperature"],
                                        top_k=v["top_k"], top_p=v["top_p"], label=v["label"] or None, **settings)
        except ParameterError as e:  # too few novel items, a constraint too unlikely under the model
            raise from_parameter_error(e, SAMPLE) from None
        return {"run": run.id, "seed": seed, "max_len": max_len,
                "items": [{"item": s.item, "log_prob": s.log_prob, **({} if s.label is None else {"label": s.label})}
                          for s in samples]}

    return job


def _check_mode(v: dict[str, Any]) -> None:
    """With most_likely, a field that only shapes random draws is refused at any value but its default (the CLI's
    rule for --most-likely); without it, max_expansions is refused (the CLI ignores it with a note, an API has
    no place for one)."""
    if v["most_likely"]:
        defaults = {f.name: f.default for f in SAMPLE}
        for name in RANDOM_ONLY:
            if v[name] != defaults[name]:
                default = "null" if defaults[name] is None else f"{defaults[name]:g}"
                raise ApiError(422, name, f"{name} does not apply with most_likely: the search ranks items by the "
                                          f"model's own probabilities, and temperature, top_k, top_p and seed only "
                                          f"shape random draws; leave {name} out",
                               f"{default} (or absent) with most_likely")
    elif v["max_expansions"] is not None:
        raise ApiError(422, "max_expansions", "max_expansions is only used with most_likely: true; leave it out",
                       "null (or absent) without most_likely")


def _most_likely_job(run: ServedRun, n: int, budget: int, settings: dict[str, Any], label: int | None) -> Job:
    """The n most probable items (best-first search); "exact": false when the budget stopped the search first."""

    def job() -> dict[str, Any]:
        try:
            found = most_likely(for_label(run.model, label), run.vocab, n, max_expansions=budget, **settings)
        except ParameterError as e:
            raise from_parameter_error(e, SAMPLE) from None
        return {"run": run.id, "seed": None, "max_len": settings["max_len"], "exact": found.exact,
                "expansions": found.expansions, "max_expansions": budget,
                "items": [{"item": s.item, "log_prob": s.log_prob} for s in found.items]}

    return job


# ----------------------------------------------------------------------------- score

def prepare_score(catalog: Catalog, body: dict[str, Any]) -> Job:
    v = read_fields(body, SCORE, catalog.runs)
    run = catalog.runs[v["run"]]
    items = [run.text_options.apply(item) for item in v["items"]]
    _known(run, "items", items)
    label = _label(run, v["label"], "explain" if v["explain"] else None)
    explained = sum(len(item) + 1 for item in items)
    if v["explain"] and explained > MAX_EXPLAINED_CHARS:
        raise ApiError(422, "items", f"items with explain may hold at most {MAX_EXPLAINED_CHARS:,} characters "
                                     f"(and ends) in all, got {explained:,}; send fewer or turn explain off",
                       f"at most {MAX_EXPLAINED_CHARS:,} characters in all, with explain")

    def job() -> dict[str, Any]:
        scores = []
        model = for_label(run.model, label)
        for s in score_labelled(run.model, run.vocab, items, label=label):
            percentile = percentile_of(s.log_prob, run.population) if run.population else None
            chars = [_step(run.vocab, step) for step in explain_item(model, run.vocab, s.item)] if v["explain"] else []
            scores.append({"item": s.item, "log_prob": s.log_prob, "nll_per_char": s.nll_per_char,
                           "percentile": percentile, "chars": chars})
        return {"run": run.id, "scores": scores}

    return job


def _step(vocab: Vocab, step) -> dict[str, Any]:
    return {"context": context_display(vocab, step.context), "char": _char(vocab, step.index),
            "end": step.index == BOUNDARY, "p": step.prob}


def _char(vocab: Vocab, index: int) -> str:
    return END if index == BOUNDARY else vocab.chars[index - 1]


# ----------------------------------------------------------------------------- next

def prepare_next(catalog: Catalog, body: dict[str, Any]) -> Job:
    v = read_fields(body, NEXT, catalog.runs)
    run = catalog.runs[v["run"]]
    prefix = run.text_options.apply(v["prefix"])
    _known(run, "prefix", [prefix])
    label = _label(run, v["label"], "next")

    def job() -> dict[str, Any]:
        top = top_next_chars(for_label(run.model, label), run.vocab, prefix, min(v["k"], run.vocab.size))
        return {"run": run.id, "prefix": prefix,
                "next": [{"char": _char(run.vocab, i), "end": i == BOUNDARY, "p": p} for i, p in top]}

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
