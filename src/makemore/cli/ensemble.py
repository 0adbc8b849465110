"""`ensemble`: trained runs of one split mixed into one run, the mixture's weights fitted on val."""

from __future__ import annotations

from pathlib import Path

from ..device import pick_device
from ..studies.ensemble import MIN_WEIGHT, check_members, describe_fit, load_members, make_ensemble, members_splits
from .common import FMT, add_common, checked, log, provenance, recorded_input, refuse_existing_run, set_threads, wrap


def cmd_ensemble(args) -> None:
    out_dir = Path(args.out_dir)
    refuse_existing_run(out_dir, args.overwrite)
    device = pick_device(args.device)
    members = load_members(args.run_dirs, device)
    check_members(members)  # before any data is read: one split, one vocabulary
    set_threads(args.threads)
    items, labels = recorded_input(members[0].meta, args.input, Path(members[0].run))
    splits = members_splits(items, members, labels)
    log(f"mixing {len(members)} runs: each scores the {splits.val[0].shape[0]:,} val items, then EM fits the weights")
    meta = make_ensemble(members, splits, out_dir, min_weight=args.min_weight, extra_meta=provenance(args.argv),
                         on_member=lambda m: log(f"scoring val with {members[m].run}..."))
    print(describe_fit(meta))
    metrics = meta["metrics"]
    print(f"\nensemble of {sum(r['kept'] for r in meta['ensemble']['members'])} runs: "
          f"train {metrics['train_nll']:.4f}  val {metrics['val_nll']:.4f}  test {metrics['test_nll']:.4f}")
    log(f"wrote {out_dir} (sample it: makemore sample {out_dir} -n 10)")


EPILOG = """examples:
  makemore ensemble runs/board/transformer runs/board/lstm runs/board/gru -o runs/mix
  makemore ensemble runs/board/{transformer,lstm,gru,ngram,rnn} -o runs/mix --overwrite
  makemore eval runs/mix && makemore sample runs/mix -n 10"""


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "ensemble", help="mix trained runs into one run (weights fitted on val)", formatter_class=FMT,
        description=wrap("Make one run whose next-character distribution is a weighted mixture of the given runs' "
                         "(each reading the item its own way), the weights fitted on the val split by EM to the "
                         "lowest val NLL; runs whose weight ends under --min-weight are dropped and the rest "
                         "refitted. The runs must share the split and the vocabulary (same training file, split "
                         "seed and text options; the same labels). The result is a run like any other: eval, "
                         "sample, score, next and serve take it, and it stands alone (it holds its members' "
                         "weights). run.json records each member, its own val NLL and its weight. Prints the "
                         "members' table and the ensemble's train/val/test NLL."),
        epilog=EPILOG)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="trained runs of one split (two or more)")
    p.add_argument("-o", "--out-dir", required=True, help="run directory to write the ensemble to")
    p.add_argument("-i", "--input", action="append", default=None,
                   help="the training file(s), when not where the runs recorded them (default: the recorded path)")
    p.add_argument("--min-weight", type=checked("min_weight"), default=MIN_WEIGHT,
                   help=f"drop members whose fitted weight ends under this, then refit (default: {MIN_WEIGHT:g}; "
                        f"0 keeps every member)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out-dir")
    add_common(p)
    p.set_defaults(func=cmd_ensemble)
