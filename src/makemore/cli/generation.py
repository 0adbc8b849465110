"""Generating and inspecting commands: `sample`, `score`, `next` and `plot-bigrams`.

As everywhere in the CLI, stdout carries only results and stderr only messages.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from ..data.atomic import json_text
from ..bounds import MAX_LEN, MAX_SAMPLES
from ..training.run_folder import load_run
from ..data.items import TextOptions, read_items, split_labelled
from ..device import pick_device
from ..errors import MakemoreError
from ..studies.plots import bigram_heatmap
from ..generation.constraints import Constraint, check_constraint
from ..generation.classify import score_labelled
from ..data.labels import for_label, label_numbers
from ..generation.sampler import check_controls, generate_labelled
from ..generation.search import MAX_EXPANSIONS, most_likely
from ..generation.scoring import (bigram_count_matrix, check_known, context_display, explain_item, percentile_of,
                       token_display, top_next_chars, training_log_probs)
from .common import FMT, add_common, checked, log, recorded_input, resolve_input_file, set_threads, wrap

LOG_PROB_NOTE = ("log_prob: natural log of the item's probability under the model (temperature 1, no top-k/top-p/"
                 "length masks), summed over its characters and the end token; the number `makemore score` prints")


# ----------------------------------------------------------------------------- shared helpers

def _item_options(meta: dict):
    """The text options the run's training file was read with (lower-casing, NFC), to apply to typed items too."""
    recorded = dict(meta.get("dataset", {}).get("text_options", {}))
    try:
        return TextOptions(**recorded)
    except TypeError:
        return TextOptions()


def _training_items(meta: dict, input_spec: str | None, run_dir: str, why: str) -> list[str]:
    """All items of the run's training file(s) (recorded paths checked by sha256, or -i FILE)."""
    try:
        spec = input_spec or meta.get("dataset", {}).get("path")
        if spec and not resolve_input_file(spec).is_file():  # load_recorded_items would hash a missing file
            raise MakemoreError(f"{spec} is not there any more (moved or deleted?)")
        items, _ = recorded_input(meta, input_spec, Path(run_dir))
    except MakemoreError as e:
        hint = "" if "-i FILE" in str(e) else "; pass the training file with -i FILE"
        raise MakemoreError(f"{why} needs the training items: {e}{hint}") from None
    return items


def _load(args):
    device = pick_device(args.device)
    model, vocab, meta = load_run(args.run_dir, device)
    set_threads(args.threads)
    return model, vocab, meta, device


def _write_lines(lines) -> None:
    out = sys.stdout
    for line in lines:
        out.write(line)
        out.write("\n")
    out.flush()


# ----------------------------------------------------------------------------- sample

def cmd_sample(args) -> None:
    # every option is checked before the run is loaded
    check_controls(n=args.n, max_len=args.max_len, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   min_len=args.min_len, prefix_len=len(args.prefix))
    if args.most_likely and (args.temperature != 1.0 or args.top_k is not None or args.top_p is not None):
        raise MakemoreError("--most-likely ranks items by the model's own probabilities; --temperature, --top-k and "
                            "--top-p only shape random draws: leave them out")
    check_constraint(None, Constraint(args.suffix, args.contains), prefix=args.prefix, min_len=args.min_len,
                     max_len=args.max_len)
    model, vocab, meta, device = _load(args)
    options = _item_options(meta)
    prefix, suffix, contains = (options.apply(t) if t else t for t in (args.prefix, args.suffix, args.contains))
    max_len = args.max_len or max(min(2 * int(meta.get("max_item_len", 32)), MAX_LEN), args.min_len, len(prefix), 1)
    check_controls(max_len=max_len, min_len=args.min_len, prefix_len=len(prefix))
    for flag_name, text in (("--prefix", prefix), ("--suffix", suffix), ("--contains", contains)):
        check_known(vocab, [text or ""], flag_name)
    exclude = None
    if args.novel:
        exclude = _training_items(meta, args.input, args.run_dir, "--novel")
    elif args.input:
        log("note: -i is only used with --novel; ignored")
    if args.max_expansions != MAX_EXPANSIONS and not args.most_likely:
        log("note: --max-expansions is only used with --most-likely; ignored")
    settings = {"prefix": prefix, "min_len": args.min_len, "max_len": max_len, "novel": args.novel,
                **{k: v for k, v in (("suffix", suffix), ("contains", contains)) if v is not None}}
    chosen = label_numbers(model.label_set, args.label)  # one line for an unknown label or an unlabelled run
    if args.label:
        settings["label"] = args.label
    if args.most_likely:
        return _sample_most_likely(args, model, vocab, exclude, settings, chosen)
    samples = generate_labelled(model, vocab, args.n, max_len=max_len, seed=args.seed, device=device, prefix=prefix,
                                temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_len=args.min_len,
                                exclude=exclude, suffix=suffix, contains=contains, label=args.label)
    if args.format == "text":
        _write_lines(s.item for s in samples)
        return
    settings = {"n": args.n, "seed": args.seed, "temperature": args.temperature, "top_k": args.top_k,
                "top_p": args.top_p, **settings}
    _write_scored(args, samples, settings)


def _write_scored(args, samples, settings: dict, **extra) -> None:
    """Items with their log-probabilities as csv or json (json with the settings and `extra` fields); a
    labelled run's items also with their label (the one each was drawn for)."""
    labelled = any(getattr(s, "label", None) is not None for s in samples)
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["item", "log_prob", *(["label"] if labelled else [])])
        writer.writerows([s.item, f"{s.log_prob:.6f}", *([s.label] if labelled else [])] for s in samples)
        return
    payload = {"run": str(args.run_dir), "settings": settings, "note": LOG_PROB_NOTE, **extra,
               "items": [{"item": s.item, "log_prob": round(s.log_prob, 6), **({"label": s.label} if labelled else {})}
                         for s in samples]}
    sys.stdout.write(json_text(payload, indent=1))


def _sample_most_likely(args, model, vocab, exclude, settings: dict, chosen: list[int] | None) -> None:
    """`sample --most-likely N`: the N most probable items, highest first, with their log-probabilities
    (of a labelled run: under the one label given with --label)."""
    if model.label_set is not None and (chosen is None or len(chosen) != 1):
        raise MakemoreError(f"--most-likely ranks items under one label; pick it with --label "
                            f"(this run's labels: {', '.join(model.label_set.names)})")
    label = None if chosen is None else chosen[0]
    found = most_likely(for_label(model, label), vocab, args.most_likely, max_len=settings["max_len"], prefix=settings["prefix"],
                        min_len=args.min_len, exclude=exclude, suffix=settings.get("suffix"),
                        contains=settings.get("contains"), max_expansions=args.max_expansions)
    if not found.exact:
        log(f"note: the search stopped at --max-expansions {args.max_expansions:,} prefixes: these are the best "
            f"{len(found.items):,} items it found, not certainly the {args.most_likely:,} most likely; raise "
            f"--max-expansions for an exact answer")
    elif len(found.items) < args.most_likely:
        log(f"note: only {len(found.items):,} items fit these settings")
    if args.format == "text":
        width = min(max([4, *(len(s.item) for s in found.items)]), 40)
        _write_lines([f"{'item':<{width}}  {'log_prob':>9}"] +
                     [f"{s.item:<{width}}  {s.log_prob:>9.4f}" for s in found.items])
        return
    settings = {"most_likely": args.most_likely, "max_expansions": args.max_expansions, **settings}
    _write_scored(args, found.items, settings, exact=found.exact, expansions=found.expansions)


# ----------------------------------------------------------------------------- score

def _read_items_to_score(args, meta) -> list[str]:
    options = _item_options(meta)
    if args.items:
        raw = list(args.items)
    else:
        if sys.stdin is None or sys.stdin.isatty():
            raise MakemoreError("give the items to score after RUN_DIR, or one per line on standard input")
        try:
            raw = [line.rstrip("\n").removesuffix("\r") for line in sys.stdin]
        except UnicodeDecodeError as e:
            raise MakemoreError(f"standard input is not UTF-8 text (bad byte 0x{e.object[e.start]:02x}); "
                                f"re-save it as UTF-8") from None
        if raw:
            raw[0] = raw[0].removeprefix("\ufeff")  # a byte-order mark is not part of the first item, as in files
        raw = [line for line in raw if line.strip()]  # blank lines skipped, as in training files
        if not raw:
            raise MakemoreError("no items to score: standard input was empty")
    return [options.apply(item) for item in raw]


def _one_label(model, name: str | None) -> int | None:
    """The number of the label named with --label (None: none named); one-line errors otherwise."""
    chosen = label_numbers(model.label_set, name)
    return None if chosen is None else chosen[0]


def _training_population(model, vocab, meta: dict, args, label: int | None) -> list[float]:
    """The sorted log-probabilities of the run's training-split items (of `label`'s items, under it), as
    `score` scores: the population its percentiles are taken in."""
    all_items = _training_items(meta, args.input, args.run_dir, "the percentile")
    if model.label_set is None:
        return training_log_probs(model, vocab, all_items, meta.get("split_seed", 42))
    _, labels = recorded_input(meta, args.input, Path(args.run_dir))
    train_items, train_labels = split_labelled(all_items, labels.of_item, meta.get("split_seed", 42))[0]
    if label is not None:
        train_items = [it for it, lb in zip(train_items, train_labels) if lb == label]
    return sorted(s.log_prob for s in score_labelled(model, vocab, train_items, label=label))


def cmd_score(args) -> None:
    model, vocab, meta, _ = _load(args)
    label = _one_label(model, args.label)
    if args.explain and model.label_set is not None and label is None:
        raise MakemoreError(f"--explain follows one label's model; pick it with --label "
                            f"(this run's labels: {', '.join(model.label_set.names)})")
    items = _read_items_to_score(args, meta)
    check_known(vocab, items, "the items")
    scores = score_labelled(model, vocab, items, label=label)
    population = None
    try:
        population = _training_population(model, vocab, meta, args, label)
    except MakemoreError as e:
        log(f"note: percentile omitted ({e})")
    rows, explained = [], []
    for s in scores:
        row = {"item": s.item, "log_prob": s.log_prob, "nll_per_char": s.nll_per_char, "predicted": s.predicted}
        if population is not None:
            row["percentile"] = percentile_of(s.log_prob, population)
        steps = explain_item(for_label(model, label), vocab, s.item) if args.explain else []
        if args.explain:
            row["explain"] = [{"context": context_display(vocab, step.context),
                               "next": "<end>" if step.index == 0 else vocab.chars[step.index - 1],
                               "prob": step.prob} for step in steps]
        rows.append(row)
        explained.append(steps)
    if args.format == "json":
        note = ("log_prob: natural log of the item's probability, summed over its characters and the end token; "
                "nll_per_char: -log_prob / predicted (predicted = characters + end token)"
                + ("; percentile: percent of the run's training-split items with a lower log_prob"
                   if population is not None else ""))
        sys.stdout.write(json_text({"run": str(args.run_dir), "note": note, "items": rows}, indent=1))
        return
    width = min(max([4, *(len(r["item"]) for r in rows)]), 40)
    header = f"{'item':<{width}}  {'log_prob':>9}  {'nll/char':>8}" + (f"  {'percentile':>10}" if population is not None else "")
    lines = [header]
    for r, steps in zip(rows, explained):
        line = f"{r['item']:<{width}}  {r['log_prob']:>9.4f}  {r['nll_per_char']:>8.4f}"
        if population is not None:
            line += f"  {r['percentile']:>10.1f}"
        lines.append(line)
        shown = [context_display(vocab, step.context) for step in steps]
        pad = max(map(len, shown), default=0)  # a sequence model's context grows along the item
        for step, context in zip(steps, shown):
            nll = -math.log(step.prob) if step.prob > 0 else float("inf")
            lines.append(f"    {context:>{pad}} -> "
                         f"{token_display(vocab, step.index):<8} p {step.prob:.5f}  -log p {nll:.4f}")
    _write_lines(lines)


# ----------------------------------------------------------------------------- next

def cmd_next(args) -> None:
    model, vocab, meta, _ = _load(args)
    label = _one_label(model, args.label)
    if model.label_set is not None and label is None:
        raise MakemoreError(f"this run has labels; say whose next character with --label "
                            f"(one of: {', '.join(model.label_set.names)})")
    prefix = _item_options(meta).apply(args.prefix)
    top = top_next_chars(for_label(model, label), vocab, prefix, args.k)
    if args.format == "json":
        rows = [{"next": "<end>" if i == 0 else vocab.chars[i - 1], "end": i == 0, "prob": p} for i, p in top]
        sys.stdout.write(json_text({"prefix": prefix, "next": rows}, indent=1))
        return
    shown = [(token_display(vocab, i), p) for i, p in top]
    width = max(4, *(len(s) for s, _ in shown))
    _write_lines([f"{'next':<{width}}  probability"] + [f"{s:<{width}}  {p:>11.5f}" for s, p in shown])


# ----------------------------------------------------------------------------- plot-bigrams

def cmd_plot_bigrams(args) -> None:
    path = resolve_input_file(args.input)
    items = read_items(path, TextOptions(lowercase=args.lowercase, nfc=args.nfc), on_note=lambda note: log(f"note: {note}"))
    counts, vocab = bigram_count_matrix(items)
    out = Path(args.output)
    bigram_heatmap(counts, vocab, out)
    log(f"wrote {out} ({vocab.size}x{vocab.size} bigram counts of {len(items):,} items from {path.name})")


# ----------------------------------------------------------------------------- parsers

def add_parsers(sub) -> None:
    """Add `sample`, `score`, `next` and `plot-bigrams` to the subparsers of the `makemore` parser."""
    for add in (add_sample, add_score, add_next, add_plot_bigrams):
        add(sub)


def add_sample(sub) -> None:
    p = sub.add_parser(
        "sample", help="generate new items from a run", formatter_class=FMT,
        description=wrap("Generate items from a trained run, one per line on stdout. All items of a batch are drawn "
                    "together, one model call per character position; the same --seed gives the same items.\n\n"
                    "Length bounds are enforced while sampling: below --min-len the end token cannot be drawn, "
                    "and an item that reaches --max-len characters is ended there (cut, not dropped: it may be an "
                    "unfinished word). Both count the prefix.\n\n"
                    "--format json and csv add each item's log_prob: the natural log of its probability under the "
                    "model itself (temperature 1, no top-k/top-p/length masks), summed over its characters, prefix "
                    "included, and the end token; `makemore score` prints the same number."),
        epilog="examples:\n  makemore sample runs/wavenet -n 20 --seed 1\n"
               "  makemore sample runs/wavenet --prefix ka --min-len 4 --max-len 8 --temperature 0.8\n"
               "  makemore sample runs/wavenet -n 1000 --novel --top-p 0.9 --format csv > new.csv\n"
               "  makemore sample runs/wavenet -n 10 --suffix ella\n"
               "  makemore sample runs/wavenet --most-likely 20 --min-len 4 --novel")
    p.add_argument("run_dir", help="run directory written by makemore train")
    p.add_argument("-n", "--num", dest="n", type=checked("n"), default=20, help=f"how many items, 1 to {MAX_SAMPLES:,} (default: 20)")
    p.add_argument("--seed", type=checked("seed"), default=0, help="sampling seed; the same seed gives the same items (default: 0)")
    p.add_argument("--temperature", type=checked("temperature"), default=1.0, metavar="T",
                   help="divide the logits by T before the softmax: below 1 safer, above 1 wilder (default: 1)")
    p.add_argument("--top-k", type=checked("top_k"), default=None, metavar="K", help="draw only among the K most likely next characters (default: all)")
    p.add_argument("--top-p", type=checked("top_p"), default=None, metavar="P",
                   help="nucleus sampling: draw only among the most likely next characters whose probabilities add "
                        "up to P, 0 < P <= 1 (default: 1, all)")
    p.add_argument("--prefix", default="", metavar="STR",
                   help="every item starts with STR: generation continues from it (the run's --lowercase/--nfc apply)")
    p.add_argument("--min-len", type=checked("min_len"), default=0, metavar="N", help="shortest item in characters: the end token is masked out below it (default: 0)")
    p.add_argument("--max-len", type=checked("max_len"), default=None, metavar="N",
                   help="longest item in characters: an item reaching it is ended there (default: twice the longest training item)")
    p.add_argument("--novel", action="store_true",
                   help="only items not in the training file, without duplicates; -n is still met by drawing more "
                        "batches (at most 50, else an error)")
    p.add_argument("--suffix", default=None, metavar="STR",
                   help="every item ends with STR: the same distribution conditioned on it (exact; draws more items "
                        "until -n are found, an error if the model makes it too rare)")
    p.add_argument("--contains", default=None, metavar="STR",
                   help="every item contains STR (anywhere, the prefix included), as --suffix")
    p.add_argument("--most-likely", type=checked("n", "most_likely.n"), default=None, metavar="N",
                   help="instead of random items, the N most probable ones under the model, highest first with their "
                        "log_prob (exact search; -n, --seed, --temperature, --top-k, --top-p do not apply)")
    p.add_argument("--max-expansions", type=checked("max_expansions"), default=MAX_EXPANSIONS, metavar="N",
                   help=f"--most-likely: prefixes the search may expand before it stops with the best found "
                        f"(said on stderr; default: {MAX_EXPANSIONS:,})")
    p.add_argument("--label", action="append", metavar="NAME",
                   help="a labelled run: sample items of this label; give it several times for several labels "
                        "(default: every label, each item's drawn by its share of the training items)")
    p.add_argument("-i", "--input", metavar="FILE", help="the training file for --novel, if it moved since training (default: the one run.json records)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="text: one item per line (--most-likely: with log_prob); json, csv: with each item's "
                        "log_prob (default: text)")
    add_common(p)
    p.set_defaults(func=cmd_sample)


def add_score(sub) -> None:
    p = sub.add_parser(
        "score", help="how likely a run finds given items", formatter_class=FMT,
        description=wrap("Score items under a trained run: per item the total log-probability (natural log, summed over "
                    "its characters and the end token), the NLL per predicted character (-log_prob / (length + 1)) and "
                    "its percentile among the run's training-split items (percent with a lower log-probability; "
                    "omitted, with a note, when the training file cannot be found). Items come after RUN_DIR or, "
                    "when none is given, one per line on standard input. The run's --lowercase/--nfc apply to them."),
        epilog="examples:\n  makemore score runs/wavenet emma xqzvw\n  makemore score runs/wavenet emma --explain\n"
               "  cat my-names.txt | makemore score runs/wavenet --format json")
    p.add_argument("run_dir", help="run directory written by makemore train")
    p.add_argument("items", nargs="*", metavar="ITEM", help="items to score (default: read standard input)")
    p.add_argument("--explain", action="store_true", help="also show each character's probability given its context")
    p.add_argument("--label", metavar="NAME", help="a labelled run: score under this label (default: under the whole "
                                                   "run, log of the sum over labels of p(label) p(item | label))")
    p.add_argument("-i", "--input", metavar="FILE", help="the training file for the percentile, if it moved since training")
    p.add_argument("--format", choices=["text", "json"], default="text", help="a table, or one JSON object (default: text)")
    add_common(p)
    p.set_defaults(func=cmd_score)


def add_next(sub) -> None:
    p = sub.add_parser(
        "next", help="the most likely next characters after a prefix", formatter_class=FMT,
        description=wrap("Print the K most likely characters to follow PREFIX, with their probabilities. The end token "
                    "is shown as <end>; characters are quoted, so a real '.' or ' ' is unambiguous. A windowed model sees "
                    "only the last block_size characters of PREFIX, a sequence model (rnn, gru, lstm, transformer) "
                    "all of it (a transformer at most its block_size positions); an empty PREFIX gives the first "
                    "character."),
        epilog="examples:\n  makemore next runs/wavenet em\n  makemore next runs/wavenet '' -k 27")
    p.add_argument("run_dir", help="run directory written by makemore train")
    p.add_argument("prefix", metavar="PREFIX", help="the item so far (may be empty: '')")
    p.add_argument("-k", type=checked("k", "next.k"), default=10, help="how many characters to show (default: 10)")
    p.add_argument("--label", metavar="NAME", help="a labelled run: whose next character (required for one)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="a table, or one JSON object (default: text)")
    add_common(p)
    p.set_defaults(func=cmd_next)


def add_plot_bigrams(sub) -> None:
    p = sub.add_parser(
        "plot-bigrams", help="the bigram count matrix as the essay's heat map", formatter_class=FMT,
        description=wrap("Count every bigram of a file (the boundary, drawn '.', starts and ends every item) and draw "
                    "the count matrix as the essay's heat map: one cell per pair with the bigram and its count, "
                    "Blues. 27 characters give the lecture's 16x16-inch figure; larger vocabularies grow it up to "
                    "32 inches and past ~100 characters drop the cell text. Needs matplotlib (makemore[plot])."),
        epilog="examples:\n  makemore plot-bigrams -i names -o bigrams.png\n  makemore plot-bigrams -i words.txt --lowercase")
    p.add_argument("-i", "--input", required=True, metavar="FILE", help="text file with one item per line, or 'names'")
    p.add_argument("-o", "--output", default="bigrams.png", metavar="PNG", help="image to write (default: bigrams.png)")
    p.add_argument("--lowercase", action="store_true", help="lower-case every item first (default: keep case)")
    p.add_argument("--nfc", action="store_true", help="Unicode NFC-normalise every item first (default: as is)")
    p.set_defaults(func=cmd_plot_bigrams)
