"""Exports, measured: how exactly the page, the module and ONNX compute what PyTorch does, how big the page is,
and how fast it generates.

    python benchmarks/export.py                 # the default leaderboard (trained once, ~10 minutes), then ~4 minutes
    python benchmarks/export.py --runs runs/leaderboard     # any folder of runs (an ensemble among them too)

The runs: every entry of `makemore leaderboard -i names` (the default one, trained into makemore's cache folder
unless --runs names a folder that has it), and a labelled run: the wavenet on girls' and boys' first names of
benchmarks/ship.py. For each run:

- exact: the largest absolute gap between PyTorch's float32 next-character probabilities and those of the
  exported module in Node, of the exported page in headless Chromium (opened from file://), and of the ONNX
  graph in onnxruntime, over 50 prefixes of held-out (test-split) items up to the model's block size;
- small: the page's size against its bound, the run's model.safetensors x 1.5 + 150 KB;
- fast: items per second of 100 items drawn in Chromium and in Node, beside `makemore sample` at batch 1
  (`Run.generate` of 100 items one at a time) and at its default batch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.exporting: how to drive an ONNX step
import ship  # noqa: E402

import makemore as mm  # noqa: E402
from makemore.data.builtin import cache_dir_from  # noqa: E402
from makemore.data.items import split_labelled  # noqa: E402
from makemore.data.labels import for_label  # noqa: E402
from makemore.export.write import export_run  # noqa: E402
from makemore.generation.sampler import generate  # noqa: E402
from makemore.models.reading import next_logits  # noqa: E402

PREFIXES = 50


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def leaderboard_runs(folder: Path, given: bool) -> list[Path]:
    """The runs of a folder given with --runs, or of the cached default leaderboard (trained when missing)."""
    if given:
        return mm.Run.list(folder)
    if not (folder / "leaderboard.json").exists():
        cmd = [sys.executable, "-m", "makemore", "leaderboard", "-i", "names", "-o", str(folder), "--no-plot"]
        say(" ".join(cmd))
        subprocess.run(cmd, check=True)
    return mm.Run.list(folder)


def queries(run: mm.Run, seed: int = 0) -> list[tuple[str, str | None]]:
    """(prefix, label) pairs: prefixes of test-split items, up to the model's block size (12 for unbounded ones)."""
    items, labels = run.training_data()
    of_item = None if labels is None else labels.of_item
    test_items, test_labels = split_labelled(items, of_item, run.meta.get("split_seed", 42))[2]
    rng = random.Random(seed)
    block = getattr(run.model.config, "block_size", None) or 12
    out = []
    for _ in range(PREFIXES):
        i = rng.randrange(len(test_items))
        item = test_items[i]
        label = None if run.labels is None else run.labels.names[test_labels[i]]
        out.append((item[:rng.randint(0, min(len(item), block))], label))
    return out


@torch.no_grad()
def torch_probs(run: mm.Run, qs) -> list[list[float]]:
    out = []
    for prefix, label in qs:
        seq = torch.tensor([[0, *run.vocab.encode(prefix)]])
        out.append(torch.softmax(next_logits(for_label(run.model, run.label_number(label)), seq).float(), -1)[0].tolist())
    return out


def gap(a, b) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def node_measure(module: Path, qs, folder: Path) -> tuple[list, float]:
    """(probabilities per query, items per second of 100 samples) from the module in Node."""
    script = folder / "probe.mjs"
    script.write_text(
        f'import {{ probs, sample }} from "./{module.name}";\n'
        'import { readFileSync } from "node:fs";\n'
        'const qs = JSON.parse(readFileSync(process.argv[2], "utf-8"));\n'
        'const p = qs.map(([x, l]) => Array.from(probs(x, l)));\n'
        'sample({ n: 10, seed: 0 });\n'  # warm up
        'const t = performance.now(); sample({ n: 100, seed: 1 }); const ms = performance.now() - t;\n'
        'console.log(JSON.stringify({ p, ms }));\n', encoding="utf-8")
    (folder / "q.json").write_text(json.dumps(qs), encoding="utf-8")
    done = subprocess.run(["node", str(script), str(folder / "q.json")], capture_output=True, text=True, check=True)
    got = json.loads(done.stdout)
    return got["p"], 100 / (got["ms"] / 1000)


def chromium():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
                            options=options)


def page_measure(driver, page: Path, qs) -> tuple[list, float]:
    """(probabilities per query, items per second of 100 samples) from the page opened from file://."""
    driver.get(page.resolve().as_uri())
    # the page's runtime (its global `load`, over the page's own bundle): what its Generate button calls
    run = "const R = load(JSON.parse(document.getElementById('bundle').textContent));"
    p = driver.execute_script(run + "return arguments[0].map(([x, l]) => Array.from(R.probs(x, l)))", qs)
    ms = driver.execute_script(run + "R.sample({n: 10, seed: 0}); const t = performance.now(); "
                                     "R.sample({n: 100, seed: 1}); return performance.now() - t;")
    return p, 100 / (ms / 1000)


def onnx_gap(run: mm.Run, path: Path, qs, expected) -> float | None:
    """The gap of the graph driven by onnxruntime as its .json says (tests/exporting.py), or None without it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    from tests.exporting import onnx_probs

    description = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return gap(onnx_probs(run, description, session, qs).tolist(), expected)


def python_speed(run: mm.Run) -> tuple[float, float]:
    """Items per second of 100 items from `Run.generate`'s sampler at batch 1 and at its default batch."""
    request = run.resolve(mm.GenerateRequest(n=100, seed=1))
    out = []
    for batch_size in (1, 16_384):
        start = time.perf_counter()
        generate(run.model, run.vocab, request, batch_size=batch_size)
        out.append(100 / (time.perf_counter() - start))
    return out[0], out[1]


def measure(run: mm.Run, driver, folder: Path) -> dict:
    qs = queries(run)
    expected = torch_probs(run, qs)
    page, module, graph = folder / "run.html", folder / "run.mjs", folder / "run.onnx"
    export_run(run, page, overwrite=True)
    export_run(run, module, overwrite=True)
    node_p, node_speed = node_measure(module, qs, folder)
    page_p, page_speed = page_measure(driver, page, qs)
    try:
        export_run(run, graph, overwrite=True)
        onnx = onnx_gap(run, graph, qs, expected)
    except mm.MakemoreError:  # the n-gram, or an ensemble holding one: refused in one line (docs/export.md)
        onnx = "refused"
    weights = (run.path / "model.safetensors").stat().st_size
    batch1, batched = python_speed(run)
    return {"name": run.path.name, "node": gap(node_p, expected), "page": gap(page_p, expected), "onnx": onnx,
            "size": page.stat().st_size, "bound": weights * 1.5 + 150 * 1024, "chromium": page_speed,
            "node_speed": node_speed, "batch1": batch1, "batched": batched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=None, help="a leaderboard folder (default: one in the cache)")
    args = parser.parse_args()
    cache = cache_dir_from(os.environ)
    runs = leaderboard_runs(args.runs or cache / "bench" / "leaderboard", args.runs is not None)
    labelled = ship.labelled_run(cache)
    driver = chromium()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for path in [*runs, labelled]:
                say(f"measuring {path.name}")
                rows.append(measure(mm.Run.load(path, "cpu"), driver, Path(tmp)))
    finally:
        driver.quit()
    print("| run | max gap Node | max gap Chromium | max gap ONNX | page KB | bound KB | 100 items in Chromium, "
          "s | items/s Chromium | items/s Node | items/s PyTorch batch 1 | items/s PyTorch batched |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        onnx = f"{r['onnx']:.1e}" if isinstance(r["onnx"], float) else (r["onnx"] or "–")
        print(f"| {r['name']} | {r['node']:.1e} | {r['page']:.1e} | {onnx} | {r['size'] / 1024:,.0f} | "
              f"{r['bound'] / 1024:,.0f} | {100 / r['chromium']:.3f} | {r['chromium']:,.0f} | {r['node_speed']:,.0f} | "
              f"{r['batch1']:,.0f} | {r['batched']:,.0f} |")
    exact = all(r["node"] <= 1e-5 and r["page"] <= 1e-5 and (not isinstance(r["onnx"], float) or r["onnx"] <= 1e-5)
                for r in rows)
    small = all(r["size"] <= r["bound"] for r in rows)
    fast = all(100 / r["chromium"] < 1 for r in rows)
    print()
    print(f"- exact (every gap at most 1e-5): {'met' if exact else 'MISSED'}")
    print(f"- small (every page within its bound): {'met' if small else 'MISSED'}")
    print(f"- fast (100 items in Chromium under 1 s for every run): {'met' if fast else 'MISSED'}")


if __name__ == "__main__":
    main()
