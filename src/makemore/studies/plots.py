"""Charts, drawn with matplotlib only when asked for (it is the optional `plot` extra).

Every function writes PNG files and returns; without matplotlib it raises MakemoreError.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data.atomic import atomic_write
from ..errors import MakemoreError
from ..generation.scoring import boundary_symbol

if TYPE_CHECKING:  # diagnostics imports training and the models: only the annotation is needed here
    from ..data.items import Vocab
    from .diagnostics import DiagnoseReport


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no window
        import matplotlib.pyplot as plt
    except ImportError:
        raise MakemoreError("plots need matplotlib: pip install 'makemore[plot]'") from None
    return plt


def _save(fig, path: Path) -> None:
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))


def nll_bar_chart(results: dict[str, Any], path: str | Path) -> None:
    """The essay's chart: validation NLL per model, ours beside the essay's figure."""
    plt = _pyplot()
    models = results["models"]
    names = [m["model"] for m in models]
    ours = [m["val_nll"] for m in models]
    essay = [m.get("essay_val_nll") for m in models]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = range(len(names))
    width = 0.38
    bars = ax.bar([x - width / 2 for x in xs], ours, width, label="makemore (measured)", color="#3838ff")
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in ours], fontsize=8)
    if any(e is not None for e in essay):
        ebars = ax.bar([x + width / 2 for x in xs], [e or 0 for e in essay], width, label="essay", color="#bbbbbb")
        ax.bar_label(ebars, labels=[f"{e:.2f}" if e else "" for e in essay], fontsize=8)
    ax.set_xticks(list(xs), names, rotation=-20)
    ax.set_ylabel("validation NLL (lower is better)")
    ax.set_ylim(0, 3.0)
    ax.set_title(f"Validation NLL across the models — {results['dataset']['name']}")
    ax.legend(loc="upper right", ncol=2)
    _save(fig, path)
    plt.close(fig)


def loss_curve_chart(rows: list[dict], path: str | Path, title: str) -> None:
    """Training loss per report, and val loss where it was measured (rows of metrics.csv)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in rows], [r["train_loss"] for r in rows], label="train (running mean)")
    val = [r for r in rows if r["val_loss"] is not None]
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], marker="o", markersize=3, label="val")
        ax.legend()
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (NLL)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def layer_histograms(tensors, names: list[str], path: str | Path, title: str, xlabel: str) -> None:
    """One histogram line per layer (as in the lecture's activation and gradient plots)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for name, t in zip(names, tensors):
        if t is None:
            continue
        t = t.detach().float().flatten()
        lo, hi = t.min().item(), t.max().item()
        if hi <= lo:
            hi = lo + 1e-6
        counts = torch.histc(t, bins=60, min=lo, max=hi)
        centres = torch.linspace(lo, hi, 61)[:-1] + (hi - lo) / 120
        ax.plot(centres.tolist(), (counts / counts.sum()).tolist(),
                label=f"{name} mean {t.mean().item():+.2f} std {t.std().item():.2f}")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share")
    ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


def update_ratio_chart(names: list[str], steps: list[int], ratios: list[list[float]], path: str | Path) -> None:
    """log10 update:data per weight matrix over training, with the -3 guide line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, name in enumerate(names):
        ax.plot(steps, [r[i] for r in ratios], label=name, linewidth=0.8)
    ax.axhline(-3, color="black", linestyle="--", linewidth=1, label="-3 (healthy)")
    ax.set_xlabel("step")
    ax.set_ylabel("log10 std(lr·grad) / std(data)")
    ax.set_title("update:data ratio per weight matrix")
    ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


def saturation_map(act, path: str | Path, title: str) -> None:
    """Neurons × examples, white where |h| > 0.99 (the tanh is flat there and passes no gradient)."""
    plt = _pyplot()
    saturated = (act.detach().abs() > 0.99).float()  # (examples, neurons)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.imshow(saturated.T.tolist(), cmap="gray",
              interpolation="nearest", aspect="auto", vmin=0, vmax=1)
    ax.set_xlabel("example")
    ax.set_ylabel("neuron")
    ax.set_title(title)
    _save(fig, path)
    plt.close(fig)


def leaderboard_chart(board: dict[str, Any], path: str | Path) -> None:
    """Val NLL per entry, best at the top; the essay's five models in grey-blue, the others in blue."""
    plt = _pyplot()
    rows = board["models"][::-1]  # barh draws bottom-up: best last so it lands on top
    names = [r["entry"] for r in rows]
    vals = [r["val_nll"] for r in rows]
    colors = ["#8a8ac8" if r.get("essay_model") else "#3838ff" for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.2))
    bars = ax.barh(names, vals, color=colors)
    ax.bar_label(bars, labels=[f"{v:.4f}" for v in vals], fontsize=8, padding=2)
    lo = min(vals)
    ax.set_xlim(max(0.0, lo - 0.15), max(vals) + 0.08)  # zoomed: the differences are in the second decimal
    ax.set_xlabel("validation NLL (lower is better; axis does not start at 0)")
    ax.set_title(f"Leaderboard — {board['dataset']['name']} (lighter bars: the essay's five models)")
    _save(fig, path)
    plt.close(fig)


def diagnose_plots(report: DiagnoseReport, out_dir: str | Path) -> list[Path]:
    """The PNGs of `makemore diagnose` in out_dir: tanh outputs and dLoss/dh per layer at step 0 and
    after the short run, the update:data ratios over training, and the step-0 saturation map.

    Returns the paths written, in that order.
    """
    _pyplot()  # no matplotlib: say so before anything is drawn
    out_dir, label = Path(out_dir), report.label
    before, after = report.before, report.after
    names = [s.name for s in before.layers]
    paths = [out_dir / name for name in ("activations_step0.png", "activations.png", "gradients_step0.png",
                                         "gradients.png", "update_ratio.png", "saturation.png")]
    layer_histograms(before.acts, names, paths[0], f"{label}: tanh outputs at step 0", "h")
    layer_histograms(after.acts, names, paths[1], f"{label}: tanh outputs after training", "h")
    layer_histograms(before.grads, names, paths[2], f"{label}: dLoss/dh at step 0", "gradient")
    layer_histograms(after.grads, names, paths[3], f"{label}: dLoss/dh after training", "gradient")
    update_ratio_chart(report.ratios.names, report.ratios.steps, report.ratios.ratios, paths[4])
    saturation_map(before.acts[0], paths[5], f"{label}: |h| > 0.99 at step 0 (white = saturated)")
    return paths


def bigram_heatmap(counts: torch.Tensor, vocab: Vocab, path: str | Path, title: str | None = None) -> None:
    """The essay's count heat map: one cell per (first, second) pair with the bigram and its count, Blues.

    counts is the (V, V) matrix of `scoring.bigram_count_matrix`, row and column 0 the boundary.
    27 characters give the lecture's 16x16-inch figure; the side grows with the vocabulary up to
    32 inches, and past ~100 characters the cells are too small for text (the axes are labelled instead).
    """
    plt = _pyplot()
    V = counts.shape[0]
    labels = [boundary_symbol(vocab)] + [_plot_char(c) for c in vocab.chars]
    side = min(max(6.0, 16.0 * V / 27), 32.0)
    font = min(10.0, 16.0 * side / V)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(counts.tolist(), cmap="Blues")
    if font >= 4:
        values = counts.tolist()
        dark = 0.45 * max(max(row) for row in values)  # the essay's gray text vanishes on the darkest cells
        for i in range(V):
            for j in range(V):
                color = "white" if values[i][j] > dark else "gray"
                ax.text(j, i, labels[i] + labels[j], ha="center", va="bottom", color=color, fontsize=font)
                ax.text(j, i, str(values[i][j]), ha="center", va="top", color=color, fontsize=font)
        ax.axis("off")
    else:
        ax.set_xticks(range(V), labels, fontsize=max(font, 3))
        ax.set_yticks(range(V), labels, fontsize=max(font, 3))
        ax.set_xlabel("second character")
        ax.set_ylabel("first character")
    if title:
        ax.set_title(title)
    _save(fig, path)
    plt.close(fig)


def _plot_char(ch: str) -> str:
    """A character as a heat-map label: the space as ␣, anything unprintable as its code point."""
    if ch == " ":
        return "␣"
    return ch if ch.isprintable() else f"U+{ord(ch):04X}"
