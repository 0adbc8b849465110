"""`makemore export`: a trained run as a page, a JavaScript module or an ONNX graph (`makemore.export`)."""

from __future__ import annotations

from ..export.write import export_run
from .common import FMT, add_common, load, wrap, write_lines


def cmd_export(args) -> None:
    run = load(args)
    done = export_run(run, args.output, format=args.format, overwrite=args.overwrite,
                      with_training_items=args.with_training_items)
    beside = "".join(f" and {p}" for p in done.extra)
    write_lines([f"wrote {done.path}{beside} ({done.format}, {done.size / 1024:,.0f} KB): {done.model}, "
                 f"{done.vocab_size - 1} characters{' with its training items' if args.with_training_items else ''}"])


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "export", help="a run as one HTML page, a JavaScript module or ONNX", formatter_class=FMT,
        description=wrap(
            "Write a trained run where makemore and PyTorch are not: the output's suffix picks the format.\n\n"
            ".html: one self-contained page (weights, vocabulary and code inlined) that runs opened from disk, "
            "offline, in a current browser: generate (count, temperature, top-k, top-p, prefix, lengths, seed, "
            "label), the next-character bars of a typed prefix, scores, copy and download. Its Content-Security-"
            "Policy forbids every network request.\n\n"
            ".mjs (or .js): an ES module with no dependencies for Node 18+ or a browser: "
            "import {sample, score, next, info} from './names.mjs'.\n\n"
            ".onnx: the model's next-character step as an ONNX graph, and a .json beside it with the vocabulary, "
            "labels and how to drive the step (needs makemore[export]).\n\n"
            "The page and the module compute what PyTorch computes (within 1e-5); their sampler is seeded but "
            "draws other items than `makemore sample` for the same seed."),
        epilog="examples:\n  makemore export runs/wavenet -o names.html\n"
               "  makemore export runs/wavenet -o names.mjs\n"
               "  makemore export runs/wavenet -o names.html --with-training-items   # 'novel only' in the page\n"
               "  makemore export runs/wavenet -o names.onnx")
    p.add_argument("run_dir", help="run directory written by makemore train (or makemore ensemble)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the file to write: .html, .mjs/.js or .onnx")
    p.add_argument("--format", choices=["html", "js", "onnx"], default=None,
                   help="the format, when the suffix does not say it (default: from OUT's suffix)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (default: refuse)")
    p.add_argument("--with-training-items", action="store_true",
                   help="embed the training items (html, js), so that 'novel only' can skip them")
    p.add_argument("-i", "--input", metavar="FILE",
                   help="the training file for --with-training-items, if it moved since training")
    add_common(p)
    p.set_defaults(func=cmd_export)
