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

from .. import bounds
from .backprop import check_gradients
from ..data.items import Vocab, build_windows, make_splits
from .diagnostics import snapshot
from ..models import build_model
from ..training.recipes import get_recipe
from ..training.loop import Recipe, evaluate, train


@dataclass
class Claim:
    """One statement of the essay, measured.

    A claim about a figure carries the two numbers it compares (`essay_figure`, the number shown in
    the essay column, and `measured_figure`) and how (`compare`, `tolerance`): its verdict is
    `judge(...)` of exactly those, so a row can only hold against the figure it prints. A claim
    about a property ("same model") has no figures; its rule says what was checked.
    """

    claim: str  # what the essay says
    essay: str  # the essay's figure, as the essay column shows it
    measured: str  # makemore's figure, just computed, as the makemore column shows it
    holds: bool
    rule: str  # how "holds" was decided, in words
    essay_figure: float | None = None  # the number of the essay column that the verdict compares with
    measured_figure: float | None = None  # the measured number compared with it
    compare: str | None = None  # one of COMPARISONS
    tolerance: float | None = None  # for "within": the largest difference that holds

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


COMPARISONS = {  # how a measured figure m holds against the essay's figure e, and the rule in words
    "equal": (lambda m, e, tol: m == e, "equal to {e}"),
    "within": (lambda m, e, tol: abs(m - e) <= tol, "within {tol} of {e}"),
    "at most (2 decimals)": (lambda m, e, tol: round(m, 2) <= e, "rounds to {e} or lower"),
    "below": (lambda m, e, tol: m < e, "below {e}"),
    "above": (lambda m, e, tol: m > e, "above {e}"),
}


def _figure(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def judge(compare: str, measured: float, essay: float, tolerance: float | None = None) -> bool:
    """The verdict of a figure claim: does `measured` hold against the essay's figure `essay`?"""
    return bool(COMPARISONS[compare][0](measured, essay, tolerance))


def figure_claim(claim: str, essay: str, measured: str, *, essay_figure: float, measured_figure: float,
                 compare: str, tolerance: float | None = None, unit: str = "") -> Claim:
    """A claim about a number: judged against `essay_figure`, which the essay column `essay` shows."""
    essay_text = f"{essay_figure:.2f}" if compare == "at most (2 decimals)" else _figure(essay_figure)
    rule = COMPARISONS[compare][1].format(e=essay_text + unit, tol=_figure(tolerance or 0) + unit)
    return Claim(claim, essay, measured, judge(compare, measured_figure, essay_figure, tolerance), rule,
                 essay_figure, measured_figure, compare, tolerance)


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
    out.append(figure_claim("examples with a 3-character context", "228,146", f"{n_examples:,}",
                            essay_figure=228_146, measured_figure=n_examples, compare="equal"))
    out.append(figure_claim("vocabulary (26 letters + .)", "27", str(splits3.vocab.size),
                            essay_figure=27, measured_figure=splits3.vocab.size, compare="equal"))

    eq = bigram_equivalence(items, seed=seed)
    out.append(figure_claim("bigram counts: NLL over the data", "2.4543", f"{eq.count_nll:.4f}",
                            essay_figure=2.4543, measured_figure=eq.count_nll, compare="within", tolerance=0.001))
    out.append(figure_claim("bigram NN: NLL after 200 full-batch steps at lr 50", "2.4576", f"{eq.nn_nll:.4f}",
                            essay_figure=2.4576, measured_figure=eq.nn_nll, compare="within", tolerance=0.01))
    gap = eq.nn_nll - eq.count_nll
    out.append(figure_claim("bigram NN within 0.01 of the count model", "< 0.01", f"{gap:+.4f}",
                            essay_figure=0.01, measured_figure=abs(gap), compare="below"))
    out.append(Claim("softmax(W) matches the count rows", "same model",
                     f"max |ΔP| {eq.max_prob_diff:.3f}, mean {eq.mean_prob_diff:.4f}",
                     eq.mean_prob_diff < 0.01, "frequency-weighted mean |ΔP| < 0.01"))
    out.append(Claim("W = log(counts) + a constant per row", "same model",
                     f"max deviation {eq.max_logit_offset_spread:.3f} (bigrams seen 100+ times)",
                     eq.max_logit_offset_spread < 0.1, "< 0.1 nats on bigrams seen 100+ times"))
    ratio = math.exp(-eq.count_nll) / (1 / 27)
    out.append(figure_claim("exp(-NLL) vs uniform 1/27: the ratio", "8.7% vs 3.7%, ~2.4×",
                            f"{math.exp(-eq.count_nll):.1%} vs {1 / 27:.1%}, {ratio:.2f}×",
                            essay_figure=2.4, measured_figure=ratio, compare="within", tolerance=0.1))

    X, Y = splits3.train
    gen = torch.Generator().manual_seed(seed)
    big = torch.randint(0, X.shape[0], (4096,), generator=gen)
    batch = big[:32]

    def init_snapshot(init: str, ix):
        torch.manual_seed(seed)
        return snapshot(build_model("mlp", vocab_size=splits3.vocab.size, init=init), X[ix], Y[ix])

    naive, fixed, kaiming = init_snapshot("naive", big), init_snapshot("fix-output", big), init_snapshot("kaiming", big)
    # "≈": the essay's own figures come from one random draw; a different seed lands a few nats away
    out.append(figure_claim("initial loss, naive init", "≈27", f"{naive.loss:.2f}",
                            essay_figure=27, measured_figure=naive.loss, compare="within", tolerance=5))
    out.append(figure_claim("initial loss, output layer scaled by 0.01, bias 0", "3.32", f"{fixed.loss:.2f}",
                            essay_figure=3.32, measured_figure=fixed.loss, compare="within", tolerance=0.05))
    out.append(figure_claim("expected initial loss -log(1/27)", "≈3.3", f"{naive.ideal_loss:.4f}",
                            essay_figure=3.3, measured_figure=naive.ideal_loss, compare="within", tolerance=0.05))
    worst = init_snapshot("naive", batch).layers[0]
    out.append(figure_claim("naive init: some neurons saturated on >97% of a batch", ">97%",
                            f"{worst.worst_neuron_saturation:.1%} (worst neuron, batch of 32); {worst.saturation:.0%} overall",
                            essay_figure=97, measured_figure=round(100 * worst.worst_neuron_saturation, 1),
                            compare="above", unit="%"))
    k = kaiming.layers[0]
    out.append(Claim("Kaiming: pre-activations within [-2, 2], no dead neurons", "[-2, 2]",
                     f"{k.preact_in_range:.0%} within, {k.dead_neurons} dead, {k.saturation:.1%} saturated",
                     k.preact_in_range > 0.5 and k.dead_neurons == 0, "most within [-2, 2] and 0 dead"))
    return out


def table_claims(results: dict[str, Any]) -> list[Claim]:
    """The essay's table, from a results.json of `makemore reproduce`: each val NLL against the essay's figure.

    Then what does hold of MLP + BN at the essay's size, even where its 2.05 is not reached: it is
    below the plain MLP trained with the same seed (its own row, with its own rule).
    """
    out = []
    val = {row["model"]: row["val_nll"] for row in results["models"]}
    for row in results["models"]:
        essay = row.get("essay_val_nll")
        if essay is not None:
            out.append(figure_claim(f"{row['model']}: val NLL", f"{essay:.2f}", f"{row['val_nll']:.4f}",
                                    essay_figure=essay, measured_figure=row["val_nll"], compare="at most (2 decimals)"))
    if "mlp" in val and "mlp-bn" in val:
        out.append(Claim("mlp-bn: val NLL below the plain mlp's (same seed)", "2.05 < 2.10",
                         f"{val['mlp-bn']:.4f} < {val['mlp']:.4f}", val["mlp-bn"] < val["mlp"],
                         "mlp-bn's val NLL below mlp's, same seed and split"))
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
    """The table `makemore claims` prints: claim, the essay's figure, makemore's, the verdict, and its rule."""
    w = max(len(c.claim) for c in claims)
    m = max(len(c.measured) for c in claims)
    r = max(len(c.rule) for c in claims)
    lines = [f"{'claim':<{w}}  {'essay':<20}  {'makemore':<{m}}  holds  rule", "-" * (w + m + r + 35)]
    for c in claims:
        lines.append(f"{c.claim:<{w}}  {c.essay:<20}  {c.measured:<{m}}  {'yes' if c.holds else 'NO':<5}  {c.rule}")
    return "\n".join(lines)
