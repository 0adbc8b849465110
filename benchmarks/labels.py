"""Labels: one conditional model over several lists against one model per list, at the same parameter budget.

Two labelled data sets, built here and never committed (kept in --data-dir between runs):
- words: words of six languages from Debian's word lists: en (wamerican, or wamerican-huge's list), de
  (wngerman), fr (wfrench), it (witalian), es (wspanish), nl (wdutch); a missing list is installed with
  apt-get (said on stderr). Each list is cleaned: NFC, lower-case, no possessives ("'s"), letters only
  (accented letters kept; digits, punctuation and spaces dropped), 2 to 20 characters, each word once;
  then --per-label words are drawn from each by a seeded sample, so that every label is the same size.
  A word of two languages (e.g. "hotel") stays in both.
- names: US first names by sex, the census lists dist.female.first and dist.male.first that the PyPI
  package `names` ships (pip-installed into this interpreter when missing, said on stderr), lower-cased.
  A name on both lists is in both: the ambiguity the classifier cannot resolve.

For each data set, one architecture (--model, default wavenet) and one stratified 80/10/10 split
(`split_labelled`):
  (a) one conditional model over all labels (`runs.run` with labels), at n_hidden --width;
  (b) one model per label, trained on that label's items alone with the same split seed, so its
      train/val/test items are exactly that label's parts of (a)'s split; all of them share (a)'s
      vocabulary, so each scores every item. Classification by Bayes' rule over their scores,
      log p(label) + log p(item | label's model), p(label) the label's share of the training items:
      what a user did before labels existed. With --b-size budget (the default) each is at the
      smallest n_hidden whose parameter count is at least params(a) / K (K labels), so (b)'s total is
      just above (a)'s: the same budget, (a) never the larger; with --b-size same each is at (a)'s
      width (K times the parameters);
  (c) the majority label of the training split.
Every model trains at most --steps steps of the model's "fast" recipe (batch size, learning rate,
cosine schedule, weight decay), is evaluated on val every --eval-every steps, stops after --patience
evaluations without a better val NLL, and keeps the weights of its best val NLL: each model stops
where it starts to overfit (the per-label models of small lists much earlier than the conditional one),
so no side loses by a step count that suits the other.

The defaults (wavenet, n_hidden 256, at most 4,000 steps, 5 repeats) were chosen at 1 thread on 2 cores.
The wavenet trains faster than the gru here and gave the conditional model the best
accuracy on the words: one repeat at a fixed step count, gru n_hidden 128 (4,000 steps) 82.9%, mlp-bn
(2,500) 82.8%, wavenet 128 (4,000) 84.1%; with early stopping (val every 200 steps), means of 3
repeats, wavenet 128 83.7% (per-label models 82.6%), wavenet 256 85.1% (83.4%); 8,000 steps did not
help (83.9%, one repeat).
On the names, wavenet 64 / 128 / 256 gave 79.7% / 81.6% / 81.5% (means of 5 repeats).

The table (stdout, as it is pasted into a README), per data set, means over --repeats repeats (repeat r
with seed and split seed +r: other initial weights, batches and split; the same items): total
parameters, test NLL per label (nats per predicted character, end token included), accuracy and
macro-F1 of classifying the test split's items, the share of --samples items drawn per label (seeded)
that the model's own classifier gives back to that label (for (a): `generate(..., GenerateRequest(label=X))`
classified by (a); for (b): items of label X's model classified by (b)'s Bayes rule), the steps of
the kept weights and the training seconds. Then the difference in accuracy (each repeat too), the
parameters, whether the labels issue's target is met (the conditional model's accuracy at least the
per-label models' minus one point, with fewer parameters in all) and a few items per label from (a).
Progress goes to stderr.

    python benchmarks/labels.py                       # both sets, about 10 minutes on 2 cores at 1 thread
    python benchmarks/labels.py --quick --sets names  # a smoke run: tiny models, 300 steps, seconds
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from makemore.training.run_folder import BEST_WEIGHTS, load_run
from makemore.generation.classify import classify_items, label_report, macro_f1
from makemore.data.items import Splits, Vocab, split_labelled
from makemore.errors import MakemoreError
from makemore.training.evaluation import evaluate
from makemore.data.labels import ItemLabels
from makemore.models import build_model, get_spec
from makemore.training.recipes import get_recipe
from makemore.training.pipeline import RunSpec, default_block_size, run, splits_for
from makemore.generation.request import GenerateRequest
from makemore.generation.sampler import generate
from makemore.generation.scoring import score_items

# label -> (the list's file names in /usr/share/dict, first preferred; the Debian package of the first)
WORD_LISTS = {
    "en": (("american-english", "american-english-huge"), "wamerican"),
    "de": (("ngerman",), "wngerman"),
    "fr": (("french",), "wfrench"),
    "it": (("italian",), "witalian"),
    "es": (("spanish",), "wspanish"),
    "nl": (("dutch",), "wdutch"),
}
DICT = Path("/usr/share/dict")
SETS = ("words", "names")
WIDTHS = {"wavenet": 256}  # (a)'s default n_hidden; other models: their config's


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def fail(message: str) -> None:
    sys.exit(f"labels.py: error: {message}")


# ----------------------------------------------------------------------------- the data sets

@dataclass
class DataSet:
    name: str
    items: list[str]  # every label's items, label by label
    of_item: list[int]  # each item's label number
    labels: list[str]  # label number -> name
    files: dict[str, list[str]]  # label -> the files its items came from

    @property
    def item_labels(self) -> ItemLabels:
        return ItemLabels(of_item=self.of_item, names=self.labels, files=self.files)

    def of_label(self, k: int) -> list[str]:
        """Label k's items in list order: the order its stratified split shuffles."""
        return [it for it, lb in zip(self.items, self.of_item) if lb == k]


def apt_install(package: str) -> None:
    """apt-get install one package (through sudo when not root), or a one-line error saying why it cannot."""
    if shutil.which("apt-get") is None:
        fail(f"the Debian package {package} is needed and this machine has no apt-get; install it by hand")
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        fail(f"the Debian package {package} is needed; as root: apt-get install {package}")
    say(f"installing the Debian package {package} (apt-get install -y --no-install-recommends {package})")
    cmd = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # an old or missing package index: update it once and try again
        subprocess.run([*prefix, "apt-get", "update", "-q"], capture_output=True, env=env)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        fail(f"apt-get install {package} failed ({last}); install it by hand")


def word_list(label: str) -> Path:
    files, package = WORD_LISTS[label]
    for name in files:
        if (DICT / name).exists():
            return DICT / name
    apt_install(package)
    if not (DICT / files[0]).exists():
        fail(f"{package} is installed but {DICT / files[0]} is not there")
    return DICT / files[0]


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # an older list in Latin-1
        text = data.decode("latin-1")
    return text.splitlines()


def clean(lines: list[str]) -> list[str]:
    """NFC, lower-case; no possessives, letters only (accented ones kept), 2 to 20 characters; sorted, each once."""
    kept = set()
    for line in lines:
        word = unicodedata.normalize("NFC", unicodedata.normalize("NFC", line.strip()).lower())
        if word.endswith(("'s", "’s")) or not word.isalpha() or not 2 <= len(word) <= 20:
            continue
        kept.add(word)
    return sorted(kept)


def cached(path: Path, make) -> list[str]:
    """The lines of path, made by make() the first time (written to a temporary name, then renamed)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in make()), encoding="utf-8")
        tmp.replace(path)
    return path.read_text(encoding="utf-8").splitlines()


def words_set(data_dir: Path, per_label: int, seed: int) -> DataSet:
    items, of_item, files = [], [], {}
    for k, label in enumerate(WORD_LISTS):
        source = word_list(label)
        words = cached(data_dir / "words" / f"{label}.txt", lambda: clean(read_lines(source)))
        if len(words) < per_label:
            fail(f"{source} has {len(words):,} clean words, fewer than --per-label {per_label:,}")
        chosen = random.Random(f"{seed}-{label}").sample(words, per_label)
        items += chosen
        of_item += [k] * per_label
        files[label] = [str(source)]
        say(f"words: {label} {source}: {len(words):,} clean words, {per_label:,} drawn")
    shared = len(items) - len(set(items))
    say(f"words: {shared:,} drawn words stand in more than one language")
    return DataSet("words", items, of_item, list(WORD_LISTS), files)


def census_files() -> Path:
    """The folder of the `names` package, which ships the census lists; pip-installed here when missing."""
    try:
        import names  # noqa: F401
    except ImportError:
        say(f"installing the PyPI package names into {sys.executable} (python -m pip install names)")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "names"], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            fail(f"pip install names failed ({last}); install it by hand: {sys.executable} -m pip install names")
        importlib.invalidate_caches()
    import names
    return Path(names.__file__).parent


def names_set(data_dir: Path) -> DataSet:
    folder = census_files()
    items, of_item, files = [], [], {}
    for k, label in enumerate(("female", "male")):
        source = folder / f"dist.{label}.first"
        if not source.exists():
            fail(f"{source} is missing: the names package no longer ships the census lists")
        # each line: NAME  frequency  cumulative frequency  rank
        got = cached(data_dir / "names" / f"{label}.txt",
                     lambda: clean([line.split()[0] for line in read_lines(source) if line.strip()]))
        items += got
        of_item += [k] * len(got)
        files[label] = [str(source)]
        say(f"names: {label} {source}: {len(got):,} names")
    both = len(items) - len(set(items))
    say(f"names: {both:,} names are on both lists")
    return DataSet("names", items, of_item, ["female", "male"], files)


# ----------------------------------------------------------------------------- models and their sizes

def params_of(model: str, vocab_size: int, width: int, n_labels: int, block_size: int | None) -> int:
    sizes = {"vocab_size": vocab_size, "n_hidden": width, "n_labels": n_labels}
    if block_size is not None:
        sizes["block_size"] = block_size
    return sum(p.numel() for p in build_model(model, **sizes).parameters())


def budget_width(model: str, vocab_size: int, block_size: int | None, target: float, top: int) -> int:
    """The smallest width whose one-label model has at least `target` parameters (at most `top`)."""
    lo, hi = 1, top
    while lo < hi:
        mid = (lo + hi) // 2
        if params_of(model, vocab_size, mid, 1, block_size) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def recipe_for(model: str, args):
    """The model's fast recipe, --steps long, evaluated on val every --eval-every steps (early stopping: --patience)."""
    recipe = get_recipe(model)
    return replace(recipe, steps=args.steps, eval_interval=args.eval_every, patience=args.patience,
                   warmup_steps=min(recipe.warmup_steps, args.steps // 10))


@dataclass
class Trained:
    model: torch.nn.Module  # at its best val NLL
    params: int
    test_nll: float  # of the best weights
    best_step: int
    steps: int  # steps trained (fewer than --steps when stopped early)
    seconds: float
    splits: Splits


def train(items: list[str], labels: ItemLabels | None, args, width: int, vocab: Vocab, block_size: int | None,
          seed: int, split_seed: int, out_dir: Path, what: str) -> Trained:
    """One run (runs.run) on the given split and vocabulary, then its best weights (lowest val NLL) loaded."""
    config = {"n_hidden": width} | ({} if block_size is None else {"block_size": block_size})
    spec = RunSpec(model=args.model, recipe=recipe_for(args.model, args), recipe_name="fast+benchmark",
                   seed=seed, split_seed=split_seed, config=config)
    splits = splits_for(items, args.model, block_size, seed=split_seed, vocab=vocab, labels=labels)
    start = time.perf_counter()
    run(items, spec, out_dir, labels=labels, splits=splits)
    seconds = time.perf_counter() - start
    model, _, meta = load_run(out_dir)
    best = out_dir / BEST_WEIGHTS
    if best.exists():  # the weights of the lowest val NLL: each model stops where it begins to overfit
        model.load_state_dict(load_file(best))
    model.eval()
    got = Trained(model, meta["params"], evaluate(model, splits.test), meta.get("best_step", meta["step"]),
                  meta["step"], seconds, splits)
    say(f"  {what}: {got.params:,} params, {got.steps:,} steps in {seconds:.0f} s, best val at step "
        f"{got.best_step:,}; test NLL {got.test_nll:.4f}")
    return got


def bayes(models: list, vocab: Vocab, items: list[str], log_priors: torch.Tensor) -> list[int]:
    """argmax over labels of log p(label) + log p(item | label's own model)."""
    if not items:
        return []
    columns = [torch.tensor([s.log_prob for s in score_items(m, vocab, items)], dtype=torch.float64) for m in models]
    return (torch.stack(columns, dim=1) + log_priors).argmax(dim=1).tolist()


# ----------------------------------------------------------------------------- one data set

@dataclass
class Row:
    what: str
    params: int | None
    nll: dict[str, float]  # label -> test NLL per predicted character
    accuracy: float
    f1: float
    own: list[float] | None  # per label: share of its samples classified as that label
    best_steps: list[int]  # the step of each model's kept weights (lowest val NLL)
    seconds: float | None  # training, all of the row's models


@dataclass
class Result:
    rows: list[Row]  # (a), (b), (c)
    n_test: int
    samples: dict[str, list[str]]  # label -> items drawn from (a) for it


def measure(data: DataSet, args, seed: int, split_seed: int, out: Path) -> Result:
    """(a), (b) and (c) on one split (split_seed), trained from one seed."""
    K = len(data.labels)
    vocab = Vocab.from_items(data.items)  # one vocabulary for every model: (b)'s models score every label's items
    block_size = default_block_size(args.model, data.items)
    max_len = max(len(it) for it in data.items)
    width = args.width or WIDTHS.get(args.model, get_spec(args.model).config_cls().n_hidden)
    train_part, _, (test_items, truth) = split_labelled(data.items, data.of_item, split_seed)
    say(f"{data.name}, seed {seed}, split seed {split_seed}: {len(data.items):,} items, {K} labels, "
        f"vocabulary {vocab.size - 1} characters; test {len(test_items):,} items")

    def fit(items, labels, w, where, what):
        return train(items, labels, args, w, vocab, block_size, seed, split_seed, out / data.name / where, what)

    # (a) one conditional model
    a = fit(data.items, data.item_labels, width, "conditional", "(a) conditional")
    label_set = a.model.label_set
    report = label_report(a.model, a.splits, data.items, data.of_item, label_set, split_seed, part="test")
    own_a, samples = [], {}
    for name in data.labels:
        request = GenerateRequest(n=args.samples, seed=seed, label=name, max_len=max_len)
        drawn = [s.item for s in generate(a.model, vocab, request)]
        samples[name] = drawn
        own_a.append(sum(c.label == name for c in classify_items(a.model, vocab, drawn, label_set)) / len(drawn))
    rows = [Row(f"(a) conditional, n_hidden={width}", a.params, report.nll, report.accuracy, report.macro_f1,
                own_a, [a.best_step], a.seconds)]

    # (b) one model per label, each on its label's part of the same split
    width_b = width if args.b_size == "same" else \
        budget_width(args.model, vocab.size, block_size, a.params / K, top=4 * width)
    b = [fit(data.of_label(k), None, width_b, f"label-{name}", f"(b) {name} alone")
         for k, name in enumerate(data.labels)]
    models_b = [t.model for t in b]
    train_counts = torch.tensor([train_part[1].count(k) for k in range(K)], dtype=torch.float64)
    log_priors = (train_counts / train_counts.sum()).log()  # p(label): its share of the training items
    predicted = bayes(models_b, vocab, test_items, log_priors)
    own_b = []
    for k in range(K):
        drawn = [s.item for s in generate(models_b[k], vocab, GenerateRequest(n=args.samples, max_len=max_len, seed=seed))]
        own_b.append(sum(p == k for p in bayes(models_b, vocab, drawn, log_priors)) / len(drawn))
    rows.append(Row(f"(b) per label, {K} x n_hidden={width_b}", sum(t.params for t in b),
                    {name: t.test_nll for name, t in zip(data.labels, b)},
                    sum(t == p for t, p in zip(truth, predicted)) / len(truth), macro_f1(truth, predicted, K),
                    own_b, [t.best_step for t in b], sum(t.seconds for t in b)))

    # (c) the majority label of the training split
    rows.append(Row(f"(c) majority label ({report.baseline_label})", None, {}, report.baseline_accuracy,
                    report.baseline_macro_f1, None, [], None))
    return Result(rows, len(test_items), samples)


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def average(rows: list[Row]) -> Row:
    """One row over the repeats: means of the figures, every best step."""
    first = rows[0]
    return Row(first.what, first.params, {k: mean(r.nll[k] for r in rows) for k in first.nll},
               mean(r.accuracy for r in rows), mean(r.f1 for r in rows),
               None if first.own is None else [mean(r.own[k] for r in rows) for k in range(len(first.own))],
               [s for r in rows for s in r.best_steps],
               None if first.seconds is None else mean(r.seconds for r in rows))


def compare(data: DataSet, args, out: Path) -> None:
    """Every repeat of one data set, then its table on stdout."""
    results = [measure(data, args, args.seed + r, args.split_seed + r, out) for r in range(args.repeats)]
    rows = [average([res.rows[i] for res in results]) for i in range(3)]
    K = len(data.labels)
    sizes = ", ".join(f"{data.labels[k]} {data.of_item.count(k):,}" for k in range(K))
    over = (f"seed {args.seed}, split seed {args.split_seed}" if args.repeats == 1 else
            f"means over {args.repeats} repeats (seed and split seed {args.seed}+r, {args.split_seed}+r)")
    print(f"\n{data.name}: {sizes} items; test split {results[0].n_test:,} items; {args.model}, each model at most "
          f"{args.steps:,} steps of its fast recipe, best val weights kept; {over}; "
          f"{torch.get_num_threads()} thread(s)")
    print("lists: " + ", ".join(f"{name} {', '.join(Path(f).name for f in data.files[name])}" for name in data.labels))
    w = max(len(r.what) for r in rows)
    nll_heads = "".join(f" {'NLL ' + name:>10}" for name in data.labels)
    head = (f"{'model':<{w}} {'params':>9}{nll_heads} {'accuracy':>8} {'macro-F1':>8} {'samples->own':>12} "
            f"{'best step':>11} {'train s':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        nll = "".join(f" {r.nll[name]:>10.4f}" if name in r.nll else f" {'-':>10}" for name in data.labels)
        params = f"{r.params:>9,}" if r.params is not None else f"{'-':>9}"
        own = f"{100 * mean(r.own):>11.1f}%" if r.own is not None else f"{'-':>12}"
        steps = "-" if not r.best_steps else (f"{min(r.best_steps):,}" if min(r.best_steps) == max(r.best_steps) else
                                               f"{min(r.best_steps):,}-{max(r.best_steps):,}")
        secs = f"{r.seconds:>7.0f}" if r.seconds is not None else f"{'-':>7}"
        print(f"{r.what:<{w}} {params}{nll} {100 * r.accuracy:>7.1f}% {r.f1:>8.3f} {own} {steps:>11} {secs}")
    a, b = rows[0], rows[1]
    print(f"samples -> own label ({args.samples} per label): (a) "
          + ", ".join(f"{n} {100 * s:.0f}%" for n, s in zip(data.labels, a.own))
          + "; (b) " + ", ".join(f"{n} {100 * s:.0f}%" for n, s in zip(data.labels, b.own)))
    diffs = [100 * (res.rows[0].accuracy - res.rows[1].accuracy) for res in results]
    each = "" if args.repeats == 1 else " (each repeat: " + ", ".join(f"{d:+.1f}" for d in diffs) + ")"
    print(f"conditional accuracy - per-label accuracy = {100 * (a.accuracy - b.accuracy):+.1f} points{each}; "
          f"parameters a / b = {a.params:,} / {b.params:,} = {a.params / b.params:.3f}")
    met = a.accuracy >= b.accuracy - 0.01 and a.params < b.params
    print(f"target (accuracy of a at least b's minus one point, with fewer parameters): {'met' if met else 'NOT met'}")
    print(f"samples from (a), {args.show} per label (seed {args.seed}):")
    for name in data.labels:
        print(f"  {name:<7} " + " ".join(it or '""' for it in results[0].samples[name][:args.show]))
    sys.stdout.flush()


# ----------------------------------------------------------------------------- main

DEFAULTS = dict(steps=4000, eval_every=100, per_label=4000, width=None, samples=200, repeats=5)
QUICK = dict(steps=300, eval_every=50, per_label=600, width=48, samples=50, repeats=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default=",".join(SETS), help="data sets to measure, of words,names (default: both)")
    p.add_argument("--model", default="wavenet",
                   help="the architecture of every model (default: wavenet); one with n_hidden")
    p.add_argument("--width", type=int, default=None,
                   help="(a)'s n_hidden (default: wavenet 256, another model its config's; --quick: 48)")
    p.add_argument("--b-size", choices=("budget", "same"), default="budget",
                   help="(b)'s width: budget = the smallest with params >= params(a) / K; same = (a)'s "
                        "(default: budget)")
    p.add_argument("--steps", type=int, default=None,
                   help="most training steps of every model (default: 4,000; --quick: 300)")
    p.add_argument("--eval-every", type=int, default=None,
                   help="evaluate val every N steps; each model keeps its best weights (default: 100; --quick: 50)")
    p.add_argument("--patience", type=int, default=10,
                   help="stop a model after this many evaluations without a better val NLL (default: 10; 0: never)")
    p.add_argument("--per-label", type=int, default=None,
                   help="words drawn per language (default: 4,000; --quick: 600)")
    p.add_argument("--samples", type=int, default=None, help="items sampled per label (default: 200; --quick: 50)")
    p.add_argument("--repeats", type=int, default=None,
                   help="train and measure each set this many times, seed and split seed +0, +1, ...; the table "
                        "shows the means (default: 5; --quick: 1)")
    p.add_argument("--show", type=int, default=5, help="samples of (a) printed per label (default: 5)")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny models and data, a few hundred steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--seed", type=int, default=42,
                   help="seeds the weights, batches, word samples and sampling (default: 42)")
    p.add_argument("--split-seed", type=int, default=42, help="seeds the stratified 80/10/10 split (default: 42)")
    p.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temporary one, removed)")
    p.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "makemore-labels",
                   help="where the cleaned lists are kept (default: makemore-labels in the system's temp dir)")
    args = p.parse_args()
    defaults = QUICK if args.quick else DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    sets = args.sets.split(",")
    if any(s not in SETS for s in sets):
        p.error(f"--sets takes {', '.join(SETS)}, got {args.sets!r}")
    try:
        config = get_spec(args.model).config_cls()
    except MakemoreError as e:
        p.error(str(e))
    if not hasattr(config, "n_hidden") or not hasattr(config, "n_labels"):
        p.error(f"--model {args.model} has no n_hidden to size it by, or no labels")
    for name in ("steps", "per_label", "samples", "repeats", "show"):
        if getattr(args, name) < (0 if name == "show" else 1):
            p.error(f"--{name.replace('_', '-')} must be at least {0 if name == 'show' else 1}")
    if args.eval_every <= 0:  # no evaluations: nothing to stop early on, and the last weights are kept
        args.eval_every, args.patience = 0, 0
    torch.set_num_threads(args.threads)

    makers = {"words": lambda: words_set(args.data_dir, args.per_label, args.seed),
              "names": lambda: names_set(args.data_dir)}
    data = {name: makers[name]() for name in sets}  # every list first: a missing package fails before any training
    temp = None
    if args.out is None:
        temp = tempfile.TemporaryDirectory(prefix="makemore-labels-runs-")
        args.out = Path(temp.name)
    start = time.perf_counter()
    try:
        for name in sets:
            compare(data[name], args, args.out)
    finally:
        if temp is not None:
            temp.cleanup()
    say(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
