"""Run the essay's notebooks from a clean kernel and write their outputs in place (what is committed).

    python notebooks/run.py                 # every notebook at full settings: the figures the tests check
    python notebooks/run.py 03 07           # the notebooks whose names start so
    python notebooks/run.py --fast          # MAKEMORE_NOTEBOOK_FAST=1: fewer steps, as CI runs them (not committed)

Needs `pip install -e '.[notebooks]'` (nbclient, nbformat, ipykernel) and names.txt where the command line finds
it ($MAKEMORE_DATA, the cache folder, or a checksum-verified download).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 1800  # seconds one cell may take at full settings


def notebooks(prefixes: list[str]) -> list[Path]:
    found = sorted(HERE.glob("[0-9][0-9]-*.ipynb"))
    return [p for p in found if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def execute(path: Path, *, fast: bool, write_to: Path | None = None) -> float:
    """Execute the notebook at `path` in a fresh kernel (cwd: its folder); write it to `write_to` (default: in place).
    Returns the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"MAKEMORE_NOTEBOOK_FAST": "1" if fast else "0"}
    if os.environ.get("MAKEMORE_DATA"):  # absolute: the kernel runs in the notebook's folder, not here
        env["MAKEMORE_DATA"] = os.pathsep.join(str(Path(p).resolve()) for p in
                                               os.environ["MAKEMORE_DATA"].split(os.pathsep) if p)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this environment
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    nbformat.write(nb, write_to or path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="run only the notebooks whose names start with these")
    parser.add_argument("--fast", action="store_true", help="MAKEMORE_NOTEBOOK_FAST=1 (outputs not for committing)")
    args = parser.parse_args()
    for path in notebooks(args.names):
        print(f"{path.name}: running...", file=sys.stderr, flush=True)
        seconds = execute(path, fast=args.fast)
        print(f"{path.name}: {seconds:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
