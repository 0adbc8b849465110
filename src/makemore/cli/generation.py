"""Generating and inspecting commands: `sample`, `score`, `next` and `plot-bigrams`.

As everywhere in the CLI, stdout carries only results and stderr only messages.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

from ..bounds import MAX_SAMPLES
from ..data.items import TextOptions, read_items
from ..errors import MakemoreError
from ..generation.request import MAX_EXPANSIONS, GenerateRequest, parse_blend
from ..generation.scoring import bigram_count_matrix, char_name
from ..studies.plots import bigram_heatmap
from ..training.recorded import TrainingDataMissing
from .shipping import add_options as add_shipping_options, request_fields
from .common import (FMT, MISSING_HINT, add_common, checked, load, log, read_items_to_score, resolve_input_file, wrap,
                     write_json, write_lines)

# ----------------------------------------------------------------------------- sample

def sample_request(args) -> GenerateRequest:
    """`sample`'s options as one request, checked before the run is loaded."""
    ranked = args.most_likely is not None
    request = GenerateRequest(n=args.n, seed=None if ranked else args.seed, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, prefix=args.prefix, suffix=args.suffix,
                              contains=args.contains, min_len=args.min_len, max_len=args.max_len, novel=args.novel,
                              label=args.label, most_likely=args.most_likely,
                              max_expansions=args.max_expansions if ranked else None, **request_fields(args))
    request.check()
    if args.input and not args.novel:
        log("note: -i is only used with --novel; ignored")
    if args.max_expansions != MAX_EXPANSIONS and not ranked:
        log("note: --max-expansions is only used with --most-likely; ignored")
    return request


def cmd_sample(args) -> None:
    request = sample_request(args)
    run = load(args)
    try:
        out = run.generate(request)
    except TrainingDataMissing as e:
        raise MakemoreError(f"--novel needs the training items: {e}{MISSING_HINT}") from None
    if request.most_likely is not None:
        _note_search(out, args)
    keyed = bool(request.keys)
    if args.format == "text":
        if request.most_likely is None:
            write_lines(f"{s.key}\t{s.item}" if keyed else s.item for s in out.items)
            return
        width = min(max([4, *(len(s.item) for s in out.items)]), 40)
        write_lines([f"{'item':<{width}}  {'log_prob':>9}"] + [f"{s.item:<{width}}  {s.log_prob:>9.4f}" for s in out.items])
    elif args.format == "csv":
        labelled = any(s.label is not None for s in out.items)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*(["key"] if keyed else []), "item", "log_prob", *(["label"] if labelled else [])])
        writer.writerows([*([s.key] if keyed else []), s.item, f"{s.log_prob:.6f}", *([s.label] if labelled else [])]
                         for s in out.items)
    else:
        write_json(out.to_json(str(args.run_dir)))


def _note_search(out, args) -> None:
    """On stderr: the search stopped at its budget (not certainly the best), or fewer items exist."""
    if not out.exact:
        log(f"note: the search stopped at --max-expansions {out.request.budget:,} prefixes: these are the best "
            f"{len(out.items):,} items it found, not certainly the {args.most_likely:,} most likely; raise "
            f"--max-expansions for an exact answer")
    elif len(out.items) < args.most_likely:
        log(f"note: only {len(out.items):,} items fit these settings")


def _blend(args) -> tuple:
    return parse_blend(args.blend) if args.blend else ()


# ----------------------------------------------------------------------------- score

def cmd_score(args) -> None:
    run = load(args)
    scores = run.score(read_items_to_score(args), label=args.label, explain=args.explain, blend=_blend(args))
    if scores.percentile_note:
        log(f"note: percentile omitted ({scores.percentile_note}{MISSING_HINT})")
    if args.format == "json":
        write_json(scores.to_json(str(args.run_dir)))
        return
    with_percentile = scores.percentile_note is None
    width = min(max([4, *(len(s.item) for s in scores.items)]), 40)
    lines = [f"{'item':<{width}}  {'log_prob':>9}  {'nll/char':>8}" + (f"  {'percentile':>10}" if with_percentile else "")]
    for s in scores.items:
        line = f"{s.item:<{width}}  {s.log_prob:>9.4f}  {s.nll_per_char:>8.4f}"
        lines.append(line + (f"  {s.percentile:>10.1f}" if with_percentile else ""))
        pad = max((len(t.context) for t in s.explain or []), default=0)  # a sequence model's context grows
        for t in s.explain or []:
            nll = -math.log(t.prob) if t.prob > 0 else float("inf")
            shown = t.char if t.end else char_name(t.char)
            lines.append(f"    {t.context:>{pad}} -> {shown:<8} p {t.prob:.5f}  -log p {nll:.4f}")
    write_lines(lines)


# ----------------------------------------------------------------------------- next

def cmd_next(args) -> None:
    run = load(args)
    out = run.next(args.prefix, args.k, label=args.label, blend=_blend(args))
    if args.format == "json":
        write_json(out.to_json(str(args.run_dir)))
        return
    shown = [(c.char if c.end else char_name(c.char), c.prob) for c in out.next]
    width = max(4, *(len(s) for s, _ in shown))
    write_lines([f"{'next':<{width}}  probability"] + [f"{s:<{width}}  {p:>11.5f}" for s, p in shown])


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
               "  makemore sample runs/wavenet --most-likely 20 --min-len 4 --novel\n"
               "  makemore sample runs/wavenet -n 1000 --avoid blocklist.txt --unique --exclude taken.txt\n"
               "  makemore sample runs/wavenet --keys player-ids.txt --unique --format csv\n"
               "  makemore sample runs/labelled --blend girls=0.5,boys=0.5 -n 20")
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
    add_shipping_options(p)
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
    p.add_argument("--blend", metavar="LABEL=W,...", help="a labelled run: score under this blend of its labels, as "
                                                          "`sample --blend` draws (e.g. girls=0.5,boys=0.5)")
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
    p.add_argument("--label", metavar="NAME", help="a labelled run: whose next character (it or --blend is required)")
    p.add_argument("--blend", metavar="LABEL=W,...", help="a labelled run: the next character of this blend of its "
                                                          "labels, as `sample --blend` draws (e.g. girls=0.5,boys=0.5)")
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
