"""Every measurable claim of the essay, measured here.

Each claim is a function that computes its figure from data and models and says
whether the essay's statement holds, and by which rule. Nothing is a constant: a
claim that does not hold on this data is reported as such, with the measured value.
`measure_claims` measures them all, in the order `makemore claims` prints them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from . import bounds
from .backprop import check_gradients
from .data import Vocab, build_windows, make_splits
from .diagnostics import snapshot
from .models import build_model
from .recipes import get_recipe
from .train import Recipe, evaluate, train


@dataclass
class Claim:
    """One statement of the essay, measured."""

    claim: str  # what the essay says
    essay: str  # the essay's figure
    measured: str  # makemore's figure, just computed
    holds: bool
    rule: str  # how "holds" was decided

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class BigramEquivalence:
    """The count model and the gradient-trained bigram NN, compared on the same data."""

    count_nll: float  # NLL of the smoothed count model
    nn_nll: float  # NLL of the trained bigram NN, same data
    max_prob_diff: float  # max |softmax(W) - P| over all cells
    mean_prob_diff: float  # weighted by how often each row's character occurs
    max_logit_offset_spread: float  # max |W - log P - c_row| over bigrams seen 100+ times (c_row fitted on them)


def bigram_equivalence(items: list[str], steps: int = 200, lr: float = 50.0, seed: int = 42) -> BigramEquivalence:
    """Counting vs gradient descent on all items, as the essay does: the same model, parameterised twice."""
    vocab = Vocab.from_items(items)
    X, Y = build_windows(items, vocab, 1)
    counts = build_model("bigram-counts", vocab_size=vocab.size)
    counts.fit(X, Y)
    torch.manual_seed(seed)
    nn_model = build_model("bigram-nn", vocab_size=vocab.size)
    train(nn_model, (X, Y), Recipe(steps=steps, batch_size=0, optimizer="sgd", lr=lr), seed=seed)
    P, Q = counts.probs(), torch.softmax(nn_model.W.detach(), dim=1)
    row_weight = torch.bincount(X[:, -1], minlength=vocab.size).float()
    diff = (P - Q).abs()
    # W = log P + c_row: estimate each row's constant on its well-counted cells, then compare those cells.
    # Rare bigrams are left out: 200 steps do not push their logits all the way down to log(1/N).
    frequent = counts.counts >= 100
    offset = nn_model.W.detach() - P.log()
    row_const = (offset * frequent).sum(1, keepdim=True) / frequent.sum(1, keepdim=True).clamp(min=1)
    offset = offset - row_const
    return BigramEquivalence(
        count_nll=evaluate(counts, (X, Y)),
        nn_nll=evaluate(nn_model, (X, Y)),
        max_prob_diff=diff.max().item(),
        mean_prob_diff=((diff.mean(1) * row_weight).sum() / row_weight.sum()).item(),
        max_logit_offset_spread=offset[frequent].abs().max().item() if frequent.any() else float("nan"),
    )


def quick_claims(items: list[str], seed: int = 42) -> list[Claim]:
    """The claims that need no long training (seconds)."""
    out: list[Claim] = []
    splits3 = make_splits(items, 3, seed=42)
    n_examples = sum(splits3.part(p)[0].shape[0] for p in ("train", "val", "test"))
    out.append(Claim("examples with a 3-character context", "228,146", f"{n_examples:,}", n_examples == 228_146, "equal"))
    out.append(Claim("vocabulary (26 letters + .)", "27", str(splits3.vocab.size), splits3.vocab.size == 27, "equal"))

    eq = bigram_equivalence(items, seed=seed)
    out.append(Claim("bigram counts: NLL over the data", "2.4543", f"{eq.count_nll:.4f}",
                     abs(eq.count_nll - 2.4543) < 0.001, "within 0.001"))
    out.append(Claim("bigram NN: NLL after 200 full-batch steps at lr 50", "2.4576", f"{eq.nn_nll:.4f}",
                     abs(eq.nn_nll - 2.4576) < 0.01, "within 0.01"))
    out.append(Claim("bigram NN within 0.01 of the count model", "< 0.01", f"{eq.nn_nll - eq.count_nll:+.4f}",
                     abs(eq.nn_nll - eq.count_nll) < 0.01, "|NN - counts| < 0.01"))
    out.append(Claim("softmax(W) matches the count rows", "same model",
                     f"max |ΔP| {eq.max_prob_diff:.3f}, mean {eq.mean_prob_diff:.4f}",
                     eq.mean_prob_diff < 0.01, "frequency-weighted mean |ΔP| < 0.01"))
    out.append(Claim("W = log(counts) + a constant per row", "same model",
                     f"max deviation {eq.max_logit_offset_spread:.3f} (bigrams seen 100+ times)",
                     eq.max_logit_offset_spread < 0.1, "< 0.1 nats on bigrams seen 100+ times"))
    ratio = math.exp(-eq.count_nll) / (1 / 27)
    out.append(Claim("exp(-NLL) vs uniform 1/27", "8.7% vs 3.7%, ~2.4×",
                     f"{math.exp(-eq.count_nll):.1%} vs {1 / 27:.1%}, {ratio:.2f}×", abs(ratio - 2.4) < 0.1, "ratio within 0.1 of 2.4"))

    X, Y = splits3.train
    gen = torch.Generator().manual_seed(seed)
    big = torch.randint(0, X.shape[0], (4096,), generator=gen)
    batch = big[:32]

    def init_snapshot(init: str, ix):
        torch.manual_seed(seed)
        return snapshot(build_model("mlp", vocab_size=splits3.vocab.size, init=init), X[ix], Y[ix])

    naive, fixed, kaiming = init_snapshot("naive", big), init_snapshot("fix-output", big), init_snapshot("kaiming", big)
    out.append(Claim("initial loss, naive init", "≈27", f"{naive.loss:.2f}", 20 <= naive.loss <= 35, "between 20 and 35"))
    out.append(Claim("initial loss, output layer scaled by 0.01, bias 0", "3.32", f"{fixed.loss:.2f}",
                     abs(fixed.loss - 3.32) < 0.05, "within 0.05"))
    out.append(Claim("expected initial loss -log(1/27)", "≈3.3", f"{naive.ideal_loss:.4f}", abs(naive.ideal_loss - 3.2958) < 1e-3, "equal"))
    worst = init_snapshot("naive", batch).layers[0]
    out.append(Claim("naive init: some neurons saturated on >97% of a batch", ">97%",
                     f"{worst.worst_neuron_saturation:.1%} (worst neuron, batch of 32); {worst.saturation:.0%} overall",
                     worst.worst_neuron_saturation > 0.97, "worst neuron > 97%"))
    k = kaiming.layers[0]
    out.append(Claim("Kaiming: pre-activations within [-2, 2], no dead neurons", "[-2, 2]",
                     f"{k.preact_in_range:.0%} within, {k.dead_neurons} dead, {k.saturation:.1%} saturated",
                     k.preact_in_range > 0.5 and k.dead_neurons == 0, "most within [-2, 2] and 0 dead"))
    return out


def table_claims(results: dict[str, Any]) -> list[Claim]:
    """The essay's table, from a results.json of `makemore reproduce`."""
    out = []
    for row in results["models"]:
        essay = row.get("essay_val_nll")
        if essay is None:
            continue
        val = row["val_nll"]
        if row["model"] == "mlp-bn":
            mlp = next((r["val_nll"] for r in results["models"] if r["model"] == "mlp"), None)
            holds = round(val, 2) <= 2.10 and (mlp is None or val < mlp)
            rule = "≤ 2.10 and below mlp (the foundation issue's bar at this size)"
        else:
            holds, rule = round(val, 2) <= essay, "rounds to the essay's figure or lower"
        out.append(Claim(f"{row['model']}: val NLL", f"{essay:.2f}", f"{val:.4f}", holds, rule))
    return out


def init_fix_claim(items: list[str], recipe: Recipe, seed: int = 42, on_start: Callable[[str], None] | None = None) -> Claim:
    """Val NLL of the MLP, naive vs Kaiming init, same recipe and seed (trains twice)."""
    splits = make_splits(items, 3)
    vals = {}
    for init in ("naive", "kaiming"):
        if on_start:
            on_start(f"mlp init={init}")
        torch.manual_seed(seed)
        model = build_model("mlp", vocab_size=splits.vocab.size, init=init)
        train(model, splits.train, recipe, seed=seed)
        vals[init] = evaluate(model, splits.val)
    return Claim("fixing init lowers the MLP's val NLL", "2.10 → ~2.07",
                 f"{vals['naive']:.4f} → {vals['kaiming']:.4f}", vals["kaiming"] < vals["naive"],
                 "kaiming below naive, same recipe and seed")


def gradient_claim(seed: int) -> Claim:
    """Hand-written gradients of MLP + BN against autograd, float64, on a random batch."""
    torch.manual_seed(seed)
    model = build_model("mlp-bn")
    X = torch.randint(0, 27, (32, 3))
    Y = torch.randint(0, 27, (32,))
    rows = check_gradients(model, X, Y, dtype=torch.float64)
    worst = max(r.max_abs_diff for r in rows)
    return Claim("manual backprop equals autograd (float64)", "equal", f"{len(rows)} tensors, max |diff| {worst:.1e}",
                 all(r.approx for r in rows) and worst <= 1e-10, "every tensor within 1e-10")


def bigram_convergence_claim(items: list[str], steps: int = 2000, seed: int = 42) -> Claim:
    """W = log(counts) + a constant per row once the bigram NN has trained longer than the quick claim's 200 steps."""
    eq = bigram_equivalence(items, steps=steps, seed=seed)
    return Claim(f"W = log(counts) + a constant per row, {steps:,} steps", "same model",
                 f"max deviation {eq.max_logit_offset_spread:.3f} (bigrams seen 100+ times)",
                 eq.max_logit_offset_spread < 0.1, "< 0.1 nats on bigrams seen 100+ times")


def measure_claims(items: list[str], *, seed: int = 42, results: dict[str, Any] | None = None,
                   on_start: Callable[[str], None] | None = None) -> list[Claim]:
    """Every claim, in the order `makemore claims` prints them: the quick ones (seconds) and the
    gradient check; given `results` (a `makemore reproduce` results.json, see reproduce.read_results),
    also the essay's table, the init fix (trains the MLP twice, ~1.5 minutes on names.txt) and the
    bigram NN after 2,000 steps. on_start gets a line before each part that takes a while.
    """
    bounds.check("seed", seed)
    say = on_start or (lambda message: None)
    say("measuring the quick claims...")
    claims = quick_claims(items, seed=seed)
    claims.append(gradient_claim(seed))
    if results is None:
        return claims
    claims += table_claims(results)
    # the essay's claim is about its own recipe (plain SGD): AdamW largely undoes a bad init by itself
    say("training the MLP with naive and with Kaiming init (the essay's recipe, same seed; about 1.5 minutes)...")
    claims.append(init_fix_claim(items, get_recipe("mlp", "essay"), seed=seed, on_start=lambda s: say(f"  {s}")))
    say("training the bigram NN 2,000 steps...")
    claims.append(bigram_convergence_claim(items, steps=2000, seed=seed))
    return claims


def format_claims(claims: list[Claim]) -> str:
    """The claims as a text table: claim, the essay's figure, makemore's, and whether it holds."""
    w = max(len(c.claim) for c in claims)
    m = max(len(c.measured) for c in claims)
    lines = [f"{'claim':<{w}}  {'essay':<20}  {'makemore':<{m}}  holds", "-" * (w + m + 33)]
    for c in claims:
        lines.append(f"{c.claim:<{w}}  {c.essay:<20}  {c.measured:<{m}}  {'yes' if c.holds else 'NO'}")
    return "\n".join(lines)
