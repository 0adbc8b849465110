"""Making an ensemble run: trained runs of one split mixed, their weights fitted on val.

`make_ensemble` takes the loaded member runs and the split they share, computes each member's
log-probability of every val target, fits the mixture weights by EM (`fit_weights`), drops the
members whose weight ends below `min_weight` (they cost as much to run as any other and add nothing)
and fits the rest again, then evaluates the mixture on train, val and test and writes a run directory
like any other: `eval`, `sample`, `score`, `next` and `serve` take it as they take a trained run.
Val chooses the weights; test is only reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from .. import bounds
from ..training.run_folder import load_run, save_metrics, save_run
from ..models.reading import target_log_probs
from ..data.items import Splits, Vocab
from ..device import model_device
from ..errors import MakemoreError, ParameterError
from ..training.evaluation import evaluate
from ..models.ensemble import Ensemble, EnsembleConfig
from ..training.pipeline import SPLITS, remove_previous_run, splits_for

MIN_WEIGHT = 1e-3  # members under this share of the mixture are dropped (and the rest refitted)


@dataclass
class Member:
    """One trained run that joins an ensemble."""

    run: str  # its run directory, as given
    model: nn.Module  # loaded, in eval mode
    meta: dict[str, Any]  # its run.json


def load_members(run_dirs: list[str | Path], device: str | torch.device = "cpu") -> list[Member]:
    """The runs to mix, each loaded (model in eval mode, its run.json) on `device`."""
    return [Member(str(run), *load_run(run, device)[::2]) for run in run_dirs]  # load_run: (model, vocab, meta)


def members_splits(items: list[str], members: list[Member], labels=None) -> Splits:
    """The members' split (they share it: `check_members`) as whole items, the layout an ensemble reads."""
    meta = members[0].meta
    return splits_for(items, "ensemble", None, seed=meta.get("split_seed", 42), vocab=Vocab(tuple(meta["vocab"])),
                      labels=labels)


def split_identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What decides a run's split and symbols: two runs agreeing on all of it were trained on the same split."""
    dataset = meta.get("dataset", {})
    return {
        "vocabulary": list(meta["vocab"]),
        "split seed": meta.get("split_seed", 42),
        "training file": dataset.get("sha256") or [entry.get("sha256") for entry in dataset.get("inputs", [])],
        "item count": dataset.get("items"),
        "text options": dataset.get("text_options", {}),
        "dropped duplicates": dataset.get("duplicates_dropped") is not None,
        "columns": (dataset.get("item_column"), dataset.get("label_column")),
        "labels": [label["name"] for label in meta.get("labels", [])],
    }


def check_members(members: list[Member]) -> None:
    """At least two complete runs, of one split and vocabulary; else a MakemoreError naming what differs."""
    if len(members) < 2:
        raise ParameterError("runs", f"need at least two runs to mix, got {len(members)}")
    first = members[0]
    for member in members:
        if member.meta.get("status", "complete") != "complete":
            raise MakemoreError(f"{member.run} has not finished training ({member.meta.get('status')}); "
                                f"resume its training to the end first")
        if member.meta["model"] == "ensemble":
            raise MakemoreError(f"{member.run} is an ensemble already; give the runs it was made of instead")
    reference = split_identity(first.meta)
    for member in members[1:]:
        for what, value in split_identity(member.meta).items():
            if value != reference[what]:
                raise MakemoreError(f"{member.run} and {first.run} were not trained on the same split and "
                                    f"vocabulary (their {what} differ); an ensemble mixes runs of one split")


def fit_weights(log_p: torch.Tensor, tol: float = 1e-9, max_iter: int = 10_000) -> tuple[torch.Tensor, int]:
    """The mixture weights w that maximise mean_n log sum_m w_m p_m(n), by EM; (w (M,), iterations).

    log_p (M, N): member m's log-probability of the n-th target (on val). Each EM step sets w_m to the
    mean over targets of member m's posterior responsibility, w_m p_m(n) / sum_k w_k p_k(n); the
    likelihood never decreases (Dempster, Laird & Rubin 1977), and as it is concave in w the fixed point
    is the global optimum. Stops when an iteration gains less than tol nats per target.
    """
    if log_p.dim() != 2 or log_p.shape[0] == 0 or log_p.shape[1] == 0:
        raise ParameterError("log_p", f"must be (members, targets) with at least one of each, got {tuple(log_p.shape)}")
    log_p = log_p.double()
    M = log_p.shape[0]
    log_w = torch.full((M,), -math.log(M), dtype=torch.float64)
    previous = -math.inf
    for iteration in range(1, max_iter + 1):
        joint = log_w[:, None] + log_p  # (M, N): log w_m p_m(n)
        total = torch.logsumexp(joint, dim=0)  # (N,): log of the mixture's probability
        mean = float(total.mean())
        log_w = torch.logsumexp(joint - total, dim=1) - math.log(log_p.shape[1])  # log of mean responsibility
        if mean - previous < tol:
            break
        previous = mean
    return log_w.exp() / log_w.exp().sum(), iteration


@torch.no_grad()
def target_log_probs_of(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], batch_size: int = 512) -> torch.Tensor:
    """log p of every real target of sequences (X, Y) (N, L), row by row in order: (targets,) float64 on the CPU."""
    X, Y = data
    device = model_device(model)
    parts = []
    for a in range(0, X.shape[0], batch_size):
        xb, yb = X[a:a + batch_size].to(device), Y[a:a + batch_size].to(device)
        parts.append(target_log_probs(model, xb, yb)[yb >= 0].cpu())
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


@dataclass
class Fit:
    """What fitting the weights found (recorded in run.json under "ensemble")."""

    weights: list[float]  # of every member given, 0 for the dropped ones
    kept: list[int]  # the members in the mixture, in the order given
    iterations: int  # EM iterations of the final fit
    member_val_nll: list[float]  # each member's own val NLL, on the same targets


def fit_members(members: list[Member], val: tuple[torch.Tensor, torch.Tensor], min_weight: float = MIN_WEIGHT,
                on_member: Callable[[int], None] | None = None) -> Fit:
    """Fit the mixture weights of the members on val (EM), dropping those under min_weight and refitting."""
    min_weight = bounds.check("min_weight", min_weight)
    rows = []
    for m, member in enumerate(members):
        if on_member is not None:
            on_member(m)
        rows.append(target_log_probs_of(member.model, val))
    log_p = torch.stack(rows)  # (M, N)
    kept = list(range(len(members)))
    while True:
        weights, iterations = fit_weights(log_p[kept])
        low = [k for k, w in zip(kept, weights.tolist()) if w < min_weight]
        if not low or len(low) == len(kept):
            break
        kept = [k for k in kept if k not in low]
    full = [0.0] * len(members)
    for k, w in zip(kept, weights.tolist()):
        full[k] = w
    return Fit(full, kept, iterations, [float(-row.mean()) for row in rows])


def build_ensemble(members: list[Member], fit: Fit) -> Ensemble:
    """The mixture of the kept members, their weights loaded, in eval mode on the first member's device."""
    first = members[0].model.config
    chosen = [members[k] for k in fit.kept]
    total = sum(fit.weights[k] for k in fit.kept)
    config = EnsembleConfig(vocab_size=first.vocab_size, n_labels=getattr(first, "n_labels", 1),
                            members=[{"model": m.meta["model"], "config": m.meta["config"]} for m in chosen],
                            weights=[fit.weights[k] / total for k in fit.kept])
    model = Ensemble(config)
    for slot, member in zip(model.members, chosen):
        slot.load_state_dict(member.model.state_dict())
    return model.to(model_device(members[0].model)).eval()


def make_ensemble(members: list[Member], splits: Splits, out_dir: str | Path, *, min_weight: float = MIN_WEIGHT,
                  extra_meta: dict[str, Any] | None = None, on_member: Callable[[int], None] | None = None
                  ) -> dict[str, Any]:
    """Mix the members (one split: `check_members`), fit on splits.val, evaluate, save to out_dir; its run.json.

    splits: the members' split as whole items (layout "sequence"). extra_meta: e.g. the command line."""
    check_members(members)
    if any(Path(m.run).resolve() == Path(out_dir).resolve() for m in members):
        raise ParameterError("out_dir", f"is {out_dir}, one of the runs being mixed; write the ensemble to another folder")
    if splits.layout != "sequence":
        raise ParameterError("splits", "must hold whole items (layout 'sequence'), as an ensemble reads them")
    start = time.perf_counter()
    fit = fit_members(members, splits.val, min_weight, on_member)
    model = build_ensemble(members, fit)
    fit_seconds = time.perf_counter() - start
    metrics = {f"{part}_nll": evaluate(model, splits.part(part)) for part in SPLITS}
    first = members[0].meta
    weight_of = dict(zip(fit.kept, model.config.weights))  # as the mixture holds them
    meta = {
        "status": "complete",
        "vocab": list(first["vocab"]),
        "split_seed": first.get("split_seed", 42),
        "params": sum(p.numel() for p in model.parameters()),
        "max_item_len": max(m.meta.get("max_item_len", 0) for m in members),
        **{key: first[key] for key in ("dataset", "labels") if key in first},
        "ensemble": {
            "fit": "em on val",
            "iterations": fit.iterations,
            "min_weight": min_weight,
            "members": [{"run": str(m.run), "model": m.meta["model"], "weight": weight_of.get(k, 0.0), "kept": k in fit.kept,
                         "val_nll": fit.member_val_nll[k], "recorded_val_nll": m.meta.get("metrics", {}).get("val_nll")}
                        for k, m in enumerate(members)],
        },
        **(extra_meta or {}),
        "metrics": metrics,
        "train_seconds": fit_seconds,
        "eval_seconds": time.perf_counter() - start - fit_seconds,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_previous_run(out_dir)
    save_run(out_dir, model, meta)
    save_metrics(out_dir, [], [])
    return {"model": model.registry_name, "config": asdict(model.config), **meta}


def describe_ensemble(meta: dict[str, Any]) -> str:
    """One line for tables: how the ensemble was made, its members by weight."""
    rows = meta["ensemble"]["members"]
    kept = sorted((r for r in rows if r["kept"]), key=lambda r: -r["weight"])
    large = [r for r in kept if r["weight"] >= 0.05] or kept[:1]
    shares = ", ".join(f"{Path(r['run']).name} {r['weight']:.2f}" for r in large)
    rest = f" (+{len(kept) - len(large)} under 0.05)" if len(kept) > len(large) else ""
    return f"EM weights on val, {len(kept)} of {len(rows)} runs: {shares}{rest}"


def describe_fit(meta: dict[str, Any]) -> str:
    """The members, their own val NLL and their weight: a small table (for the command line)."""
    rows = meta["ensemble"]["members"]
    width = max(6, *(len(r["run"]) for r in rows))
    lines = [f"{'member':<{width}}  {'model':<14} {'own val':>8} {'weight':>7}"]
    for r in rows:
        lines.append(f"{r['run']:<{width}}  {r['model']:<14} {r['val_nll']:>8.4f} "
                     f"{r['weight']:>7.4f}{'' if r['kept'] else '  (dropped)'}")
    return "\n".join(lines)


__all__ = ["Member", "Fit", "load_members", "members_splits", "check_members", "fit_members", "build_ensemble", "make_ensemble", "describe_fit",
           "describe_ensemble", "split_identity", "target_log_probs_of", "fit_weights", "MIN_WEIGHT"]
