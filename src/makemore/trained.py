"""`Run`: one trained run, loaded — the object every front end holds.

    run = Run.load("runs/wavenet")
    out = run.generate(GenerateRequest(n=5, seed=0, prefix="ka"))
    scores = run.score(["emma", "xqzt"], explain=True)

A Run owns what a run folder holds (the model in eval mode, its vocabulary, labels and run.json) and
what is found again from it (the training items, the population percentiles are taken in), and answers
every question asked of a trained model: generate, score, next, classify, evaluate. `makemore
sample/score/next/classify/eval` and every route of `makemore serve` call these methods and only parse
and format around them, so the command line and the API give the same answers, in the same JSON
(`to_json` on each result).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from .bounds import MAX_LEN
from .data.items import BOUNDARY, Splits, TextOptions, Vocab, split_labelled
from .data.labels import ItemLabels, LabelSet, for_label, label_numbers, require_labels
from .device import pick_device
from .errors import MakemoreError, ParameterError
from .generation.classify import Classified, classify_items, label_report, score_labelled
from .generation.request import GenerateRequest, check_blend
from .models.ensemble import Blend
from .generation.results import Generated, Next, NextChar, Scored, Scores, Step
from .generation.sampler import Sample, generate
from .generation.scoring import score_items, context_display, explain_item, never_seen, percentile_of, top_next_chars, unknown_chars
from .generation.search import most_likely
from .training.pipeline import evaluate_part, splits_for
from .training.recorded import Resolve, TrainingDataMissing, recorded_input
from .training.folders import find_runs
from .training.run_folder import load_run

MAX_BLEND_POPULATIONS = 8  # blends whose training-split scores a Run keeps (the oldest goes first)
END = "<end>"  # how the end token is named in JSON (with "end": true); no single character reads so


# ----------------------------------------------------------------------------- the run

class Run:
    """A trained run: its model (in eval mode), vocabulary, labels, run.json, and what is found again from them."""

    def __init__(self, model: nn.Module, vocab: Vocab, meta: dict[str, Any], path: str | Path | None = None, *,
                 inputs: Sequence[str] | None = None, resolve: Resolve = Path):
        self.model = model.eval()  # every question reads the model; none trains it
        self.vocab = vocab
        self.meta = meta
        self.path = None if path is None else Path(path)
        self._inputs = list(inputs) if inputs else None  # files given in place of the recorded ones
        self._resolve = resolve
        self._lock = threading.Lock()  # the server asks from several threads: each cache is filled once
        self._data: tuple[list[str], ItemLabels | None] | None = None
        self._populations: dict[Any, list[float]] = {}  # by label number, or by blend
        try:
            self.text_options = TextOptions(**(meta.get("dataset") or {}).get("text_options", {}))
        except (TypeError, MakemoreError):
            self.text_options = TextOptions()

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto", *, inputs: Sequence[str] | None = None,
             resolve: Resolve = Path) -> "Run":
        """The run in folder `path`, on `device` ("auto": CUDA, then MPS, then the CPU; any device loads a run
        trained on any other). `inputs` replace the training files run.json records, if they moved; `resolve`
        finds a file from a name (a built-in dataset's, e.g. with `makemore.data.builtin.locate_input`)."""
        device = pick_device(device) if isinstance(device, str) else device
        model, vocab, meta = load_run(path, device)
        return cls(model, vocab, meta, path, inputs=inputs, resolve=resolve)

    @staticmethod
    def list(*paths: str | Path) -> list[Path]:
        """The run folders among `paths`: a run folder itself, a `reproduce` or `leaderboard` folder (its runs in
        its table's order), or any folder whose subfolders are runs. Reads run.json only: nothing is loaded."""
        return [found.path for found in find_runs(paths)[0]]

    # --------------------------------------------------------------------- what it is

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else self.meta["model"]

    @property
    def labels(self) -> LabelSet | None:
        """A labelled run's labels (None: it was trained on one list)."""
        return getattr(self.model, "label_set", None)

    @property
    def max_item_len(self) -> int:
        """The longest training item (run.json records it), from which the default max_len follows."""
        return int(self.meta.get("max_item_len", 32))

    def text(self, text: str) -> str:
        """`text` read as the training file was (lower-cased, NFC-normalised, if it was)."""
        return self.text_options.apply(text)

    def label_number(self, name: str | None, required_for: str | None = None) -> int | None:
        """The number of the label named (None or "": none); a ParameterError of `label` for a name the run does
        not have, for a label given to an unlabelled run, and, with `required_for`, for none on a labelled run."""
        if not name:
            if self.labels is not None and required_for:
                raise ParameterError("label", f"is needed for {required_for} on a labelled run: one of "
                                              f"{', '.join(self.labels.names)}")
            return None
        return label_numbers(self.labels, name)[0]

    def check_known(self, parameter: str, texts: Sequence[str]) -> None:
        """A ParameterError naming the first of `texts` with characters the model never saw, and those characters:
        of `parameter` itself for one text, of `parameter[i]` for the i-th of several."""
        for i, text in enumerate(texts):
            unknown = unknown_chars(self.vocab, [text])
            if unknown:
                name = f"{parameter}[{i}]" if len(texts) > 1 or parameter == "items" else parameter
                raise ParameterError(name, never_seen(unknown))

    # --------------------------------------------------------------------- what it was trained on

    def training_data(self) -> tuple[list[str], ItemLabels | None]:
        """Every item of the training file(s), and their labels (None when unlabelled), as read for training;
        TrainingDataMissing when the files cannot be found or have changed."""
        with self._lock:
            if self._data is None:
                self._data = recorded_input(self.meta, self.path or ".", self._inputs, self._resolve)
            return self._data

    def training_items(self) -> list[str]:
        return self.training_data()[0]

    def splits(self) -> Splits:
        """The train/val/test split the run was trained on, made again from its training items: windows for a
        windowed model, whole items for a sequence model."""
        items, labels = self.training_data()
        return splits_for(items, self.meta["model"], getattr(self.model.config, "block_size", None),
                          seed=self.meta.get("split_seed", 42), vocab=self.vocab, labels=labels)

    def population(self, label: int | None = None, blend=()) -> list[float]:
        """The sorted log-probabilities of the training-split items (a label's, under it, with `label`; under a
        blend of labels with `blend`), as `score` scores them: the population its percentiles are taken in."""
        items, labels = self.training_data()
        key = ("blend", tuple(dict(blend).items())) if blend else label
        with self._lock:
            if key not in self._populations:
                of_item = None if labels is None else labels.of_item
                train_items, train_labels = split_labelled(items, of_item, self.meta.get("split_seed", 42))[0]
                if label is not None:
                    train_items = [it for it, lb in zip(train_items, train_labels) if lb == label]
                if blend:
                    scores = score_items(self.view(blend=blend), self.vocab, train_items)
                else:
                    scores = score_labelled(self.model, self.vocab, train_items, label=label)
                blends = [k for k in self._populations if isinstance(k, tuple)]
                if blend and len(blends) >= MAX_BLEND_POPULATIONS:  # a server may be asked any blend: keep a few
                    del self._populations[blends[0]]
                self._populations[key] = sorted(s.log_prob for s in scores)
            return self._populations[key]

    # --------------------------------------------------------------------- questions

    def resolve(self, request: GenerateRequest, cap: int = MAX_LEN) -> GenerateRequest:
        """The request as this run answers it: text options applied to its strings (avoid and exclude entries too),
        a seed drawn if none was given (with keys: 0, so that a key's item is the same from call to call), max_len
        from the run's longest item if none was given (at most `cap`), every check passed."""
        texts = {name: (self.text(getattr(request, name)) if getattr(request, name) else getattr(request, name))
                 for name in ("prefix", "suffix", "contains")}
        lists = {name: tuple(self.text(x) for x in getattr(request, name)) for name in ("avoid", "exclude")}
        seed = request.seed
        if seed is None and request.most_likely is None:
            seed = 0 if request.keys else secrets.randbits(32)  # exact in JavaScript: the page shows it
        names = _names(request.label)  # one label as its name, several as a tuple: one form for every front end
        label = None if not names else names[0] if len(names) == 1 else tuple(names)
        blend = _pairs(request.blend)
        check_blend(blend, request.label)  # before the names are looked up: a label named twice is a mistake
        request = replace(request, seed=seed, n=request.count, label=label, blend=blend, **texts, **lists)
        request.check()
        for name, text in texts.items():
            self.check_known(name, [text or ""])
        label_numbers(self.labels, request.label)  # an unknown label, or one given to an unlabelled run
        self.blend_numbers(request.blend)
        if (request.most_likely is not None and self.labels is not None and not request.blend
                and len(_names(request.label)) != 1):
            raise ParameterError("label", f"must name one label with most_likely on a labelled run, or give a blend "
                                          f"(the search ranks items under one distribution): one of "
                                          f"{', '.join(self.labels.names)}", related=("most_likely", "blend"))
        return request.resolved(self.max_item_len, cap)

    def blend_numbers(self, blend) -> list[tuple[int, float]]:
        """A blend's (label number, weight) pairs; a ParameterError of `blend` on an unlabelled run, for a label the
        run does not have, and for weights that are not a blend (`request.check_blend`)."""
        if not blend:
            return []
        pairs = _pairs(blend)
        check_blend(pairs)
        if self.labels is None:
            raise ParameterError("blend", "needs a labelled run (one trained on several files, or a labelled CSV): "
                                          "this run has no labels to blend")
        unknown = [name for name, _ in pairs if name not in self.labels.names]
        if unknown:
            raise ParameterError("blend", f"names {unknown[0]!r}, which this run does not have: its labels are "
                                          f"{', '.join(self.labels.names)}")
        return [(self.labels.names.index(name), float(w)) for name, w in pairs]

    def label_or_blend(self, label: str | None, blend=(), required_for: str | None = None) -> int | None:
        """Check what a question is asked under: a blend (its labels the run's, its weights a blend, no label beside
        it), else a label (the run's; on a labelled run one is needed for `required_for`). The label's number, or
        None (a blend, or the whole run)."""
        if blend:
            check_blend(_pairs(blend), label or None)
            self.blend_numbers(blend)
            return None
        return self.label_number(label, required_for)

    def view(self, label: str | None = None, blend=()) -> nn.Module:
        """The model as one label sees it, or as a blend of labels (`models.ensemble.Blend`), or whole."""
        if blend:
            pairs = [(k, w) for k, w in self.blend_numbers(blend) if w > 0]
            return Blend(self.model, [k for k, _ in pairs], [w for _, w in pairs])
        return for_label(self.model, self.label_number(label))

    def generate(self, request: GenerateRequest, *, cap: int = MAX_LEN) -> Generated:
        """Items drawn with the request's controls, or, with request.most_likely, the most probable ones, exactly
        (within the request's budget). With novel, the training items are left out (TrainingDataMissing when
        they cannot be found). The same seed gives the same items. With a blend, every next character comes from
        the weighted mixture of the labels' distributions, and log_prob is the blend's."""
        request = self.resolve(request, cap)
        exclude = self.training_items() if request.novel else None
        model = self.view(blend=request.blend) if request.blend else self.model
        if request.most_likely is not None:
            label = None if request.blend else _names(request.label)[0] if request.label else None
            found = most_likely(self.view(label, request.blend), self.vocab, request, exclude=exclude)
            items = [Sample(s.item, s.log_prob, label) for s in found.items]
            return Generated(request, items, found.exact, found.expansions)
        return Generated(request, generate(model, self.vocab, request, exclude=exclude))

    def most_likely(self, n: int, request: GenerateRequest = GenerateRequest(), *, cap: int = MAX_LEN) -> Generated:
        """The n most probable items under the request's other controls (prefix, lengths, suffix, contains, novel,
        label, budget), best first: `generate` with request.most_likely = n."""
        return self.generate(replace(request, most_likely=n), cap=cap)

    def score(self, items: Sequence[str], *, label: str | None = None, explain: bool = False, blend=()) -> Scores:
        """Each item's log-probability, NLL per character and percentile among the training-split items (under
        one label of a labelled run with `label`, under a blend of its labels with `blend` (label, weight) pairs,
        else under the whole run); with explain, each character's probability given its context (a labelled run:
        under the label or blend, which is then needed)."""
        number = self.label_or_blend(label, blend, "explain" if explain else None)
        items = [self.text(item) for item in items]
        self.check_known("items", items)
        model = self.view(label if not blend else None, blend)
        population, note = None, None
        try:
            population = self.population(number, blend)
        except MakemoreError as e:
            note = f"the percentile needs the training items: {e}"
        rows = []
        scored = score_items(model, self.vocab, items) if blend else score_labelled(self.model, self.vocab, items,
                                                                                   label=number)
        for s in scored:
            steps = [self._step(step) for step in explain_item(model, self.vocab, s.item)] if explain else None
            rows.append(Scored(s.item, s.log_prob, s.nll_per_char, s.predicted,
                               percentile_of(s.log_prob, population) if population is not None else None, steps))
        return Scores(rows, label or _blend_name(blend), note)

    def next(self, prefix: str, k: int = 10, *, label: str | None = None, blend=()) -> Next:
        """The k most likely characters to follow `prefix` (a labelled run: as `label`'s, or a blend's; one is
        needed)."""
        self.label_or_blend(label, blend, "next")
        prefix = self.text(prefix)
        self.check_known("prefix", [prefix])
        top = top_next_chars(self.view(label if not blend else None, blend), self.vocab, prefix,
                             min(k, self.vocab.size))
        return Next(prefix, label or _blend_name(blend), [NextChar(self._char(i), i == BOUNDARY, p) for i, p in top])

    def classify(self, items: Sequence[str]) -> list[Classified]:
        """Each item's probability of each label, by Bayes' rule (a labelled run only)."""
        labels = require_labels(self.labels)
        items = [self.text(item) for item in items]
        self.check_known("items", items)
        return classify_items(self.model, self.vocab, items, labels)

    def evaluate(self, on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
        """Mean NLL of the train, val and test splits the run was trained on (found again from its files), and
        for a labelled run its per-label report (`labels`)."""
        items, labels = self.training_data()
        splits = self.splits()
        result: dict[str, Any] = {part: evaluate_part(self.model, splits, part, on_eval=on_progress)
                                  for part in ("train", "val", "test")}
        if labels is not None:
            result["labels"] = label_report(self.model, splits, items, labels.of_item, self.labels,
                                            self.meta.get("split_seed", 42))
        return result

    def to_json(self, result: Generated | Scores | Next, name: str | None = None) -> dict[str, Any]:
        """A result as the JSON both front ends give (`makemore ... --format json` and the API)."""
        return result.to_json(name if name is not None else self.name)

    # --------------------------------------------------------------------- helpers

    def _char(self, index: int) -> str:
        return END if index == BOUNDARY else self.vocab.chars[index - 1]

    def _step(self, step) -> Step:
        return Step(context_display(self.vocab, step.context), self._char(step.index), step.index == BOUNDARY,
                    step.prob)


def _pairs(blend) -> tuple[tuple[str, float], ...]:
    """A blend given as {label: weight} or as (label, weight) pairs, as pairs (a label named twice stays twice)."""
    pairs = blend.items() if isinstance(blend, dict) else blend or ()
    return tuple((str(name), float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else w)
                 for name, w in pairs)


def _blend_name(blend) -> str | None:
    """A blend as it is named in results: "girls=0.5,boys=0.5" (None: no blend)."""
    return ",".join(f"{name}={weight:g}" for name, weight in dict(blend).items()) if blend else None


def _names(label: str | Sequence[str] | None) -> list[str]:
    """The label names a request gives: one, several or none."""
    return [] if not label else [label] if isinstance(label, str) else list(label)


__all__ = ["Run", "Generated", "Scores", "Scored", "Step", "Next", "NextChar", "TrainingDataMissing", "END"]
