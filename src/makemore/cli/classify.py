"""`classify`: which of a labelled run's lists each item sounds like (Bayes' rule over its labels)."""

from __future__ import annotations

from ..errors import MakemoreError
from .common import FMT, add_common, load, read_items_to_score, wrap, write_json, write_lines

PROBS_NOTE = ("probs: p(label | item) = p(label) p(item | label) / sum over labels of the same, with p(label) each "
              "label's share of the training items and p(item | label) the model's probability of the whole item")


def cmd_classify(args) -> None:
    run = load(args)
    if run.labels is None:
        raise MakemoreError(f"{args.run_dir} has no labels: it was trained on one list. Train on several "
                            f"(makemore train -i a.txt -i b.txt ...) to classify")
    labels = run.labels
    results = run.classify(read_items_to_score(args))
    if args.format == "json":
        write_json({"run": str(args.run_dir), "labels": list(labels.names), "note": PROBS_NOTE,
                    "items": [{"item": r.item, "label": r.label, "probs": r.probs} for r in results]})
        return
    width = min(max([4, *(len(r.item) for r in results)]), 40)
    columns = [max(len(name), 6) for name in labels.names]
    best = max(5, *(len(name) for name in labels.names))
    header = f"{'item':<{width}}  {'label':<{best}}" + "".join(f"  {name:>{w}}" for name, w in zip(labels.names, columns))
    rows = [f"{r.item:<{width}}  {r.label:<{best}}" + "".join(f"  {r.probs[name]:>{w}.4f}"
                                                             for name, w in zip(labels.names, columns))
            for r in results]
    write_lines([header, *rows])


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "classify", help="which label of a labelled run each item sounds like", formatter_class=FMT,
        description=wrap("For each item, the probability of each label of a labelled run given the item, by Bayes' "
                         "rule: p(label | item) is proportional to p(label), the label's share of the training items, "
                         "times p(item | label), the model's probability of the whole item (end token included) as "
                         "that label's. Prints the most probable label and every label's probability. Items come "
                         "after RUN_DIR or, when none is given, one per line on standard input; the run's "
                         "--lowercase/--nfc apply to them."),
        epilog="examples:\n  makemore train -i girls.txt -i boys.txt --model transformer -o runs/styles\n"
               "  makemore classify runs/styles emma noah\n"
               "  cat unknown.txt | makemore classify runs/styles --format json")
    p.add_argument("run_dir", help="run directory of a labelled run (makemore train with several -i, or --label-column)")
    p.add_argument("items", nargs="*", metavar="ITEM", help="items to classify (default: read standard input)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text: a table; json: an object whose \"items\" are {item, label, probs} in input order "
                        "(default: text)")
    add_common(p)
    p.set_defaults(func=cmd_classify)
