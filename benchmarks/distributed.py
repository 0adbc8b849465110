"""Data-parallel training speed: one process against torchrun's N processes, same recipe and global batch.

Each row trains a model with its default recipe cut to --steps, evaluation off, as a user would run it:

    makemore train -i names --model M -o DIR --steps S --eval-interval 0 --no-plot             (1 process)
    torchrun --standalone --nproc-per-node N -m makemore train ... (the same options)            (N processes)

and reads the training seconds run.json records (start-up, data preparation and evaluation left out).
One process uses PyTorch's default thread count; torchrun gives each of its processes one thread
(OMP_NUM_THREADS=1), so on a 2-core machine both use both cores.

    MAKEMORE_DATA=../shared/data python benchmarks/distributed.py                 # ~3 minutes on 2 cores
    MAKEMORE_DATA=../shared/data python benchmarks/distributed.py --device cuda --nproc 1,2,8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from makemore.training.recipes import get_recipe


def train_seconds(model: str, nproc: int, steps: int, device: str, out: Path, data: str) -> float:
    options = ["train", "-i", data, "--model", model, "-o", str(out), "--steps", str(steps), "--eval-interval", "0",
               "--no-plot", "--device", device]
    if nproc == 1:
        cmd = [sys.executable, "-m", "makemore", *options]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "makemore", *options]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads((out / "run.json").read_text())["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", "--input", default="names")
    parser.add_argument("--models", default="wavenet,transformer")
    parser.add_argument("--nproc", default="1,2", help="process counts to measure, comma-separated")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    counts = [int(n) for n in args.nproc.split(",")]
    print(f"{args.steps} steps of each model's default recipe (global batch as the recipe's), {args.device}, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'model':<12} {'processes':>9} {'batch':>6} {'steps/s':>8} {'examples/s':>11} {'vs 1 process':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            batch = get_recipe(model).batch_size
            base = None
            for n in counts:
                seconds = train_seconds(model, n, args.steps, args.device, Path(tmp) / f"{model}-{n}", args.input)
                rate = args.steps / seconds
                base = base or rate
                print(f"{model:<12} {n:>9} {batch:>6} {rate:>8.1f} {rate * batch:>11,.0f} {rate / base:>12.2f}x")


if __name__ == "__main__":
    main()
