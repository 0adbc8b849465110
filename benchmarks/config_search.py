"""Train one model under several settings at once (one `makemore train` process each); rank them by val NLL.

Each setting is a comma-separated list of train options without their dashes, e.g.
`n_embd=96,n_layer=4,dropout=0.2,steps=9000`; everything else is the model's fast recipe. Runs go
--parallel at a time (one CPU thread each by default; on a GPU the runs share the one device, so keep it
small there), and
the table, printed as each run ends and once more sorted at the end, holds the parameter count, train,
val and test NLL and the training seconds. Val chooses; test is only reported. The run folders are
removed at the end unless --runs names a folder to keep them in (to mix them with `makemore ensemble`).

    MAKEMORE_DATA=../shared/data python benchmarks/config_search.py transformer --parallel 2 \
        n_embd=64 n_embd=96,dropout=0.2 n_embd=128,dropout=0.3,lr=0.004
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


def options(setting: str) -> list[str]:
    """`n_embd=96,dropout=0.2` -> ['--n-embd', '96', '--dropout', '0.2']."""
    out: list[str] = []
    for part in filter(None, setting.split(",")):
        key, _, value = part.partition("=")
        out += [f"--{key.strip().replace('_', '-')}", value.strip()]
    return out


def run(args, setting: str, out_dir: Path) -> dict:
    """Train one setting; its run.json's figures (or the error's last line)."""
    cmd = [sys.executable, "-m", "makemore", "train", "-i", args.input, "--model", args.model, "-o", str(out_dir),
           "--device", args.device, "--threads", str(args.threads), "--seed", str(args.seed), "--no-plot",
           *options(setting)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        return {"setting": setting, "error": (done.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    meta = json.loads((out_dir / "run.json").read_text())
    return {"setting": setting, "params": meta["params"], **meta["metrics"], "seconds": seconds,
            "best_step": meta.get("best_step")}


def line(r: dict) -> str:
    if "error" in r:
        return f"{r['setting']:<58} error: {r['error']}"
    return (f"{r['setting']:<58} {r['params']:>9,} {r['train_nll']:>7.4f} {r['val_nll']:>7.4f} {r['test_nll']:>7.4f} "
            f"{r['seconds']:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("settings", nargs="+", help="train options, comma-separated key=value (see above)")
    parser.add_argument("-i", "--input", default="names")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run (default: 1)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the results (default: none)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="keep the run folders here, run0, run1, ... in the order given (default: a temporary "
                             "folder, removed at the end); e.g. to mix them with makemore ensemble")
    args = parser.parse_args()
    if args.runs is not None and args.runs.exists() and (not args.runs.is_dir() or any(args.runs.iterdir())):
        parser.error(f"--runs {args.runs} is {'not empty' if args.runs.is_dir() else 'a file'}; name a new folder")
    head = f"{'setting':<58} {'params':>9} {'train':>7} {'val':>7} {'test':>7} {'seconds':>8}"
    print(head, flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.parallel) as pool:
        where = args.runs or Path(tmp)
        futures = [pool.submit(run, args, s, where / f"run{k}") for k, s in enumerate(args.settings)]
        for future in as_completed(futures):
            results.append(future.result())
            print(line(results[-1]), flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=1))
    print(f"\nsorted by val:\n{head}")
    for r in sorted(results, key=lambda r: r.get("val_nll", float("inf"))):
        print(line(r))


if __name__ == "__main__":
    main()
