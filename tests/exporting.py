"""The tests' (and benchmarks/export.py's) shorthand for exports: a tiny trained run of any model, and its next-character probabilities as
PyTorch computes them and as the exported JavaScript module computes them in Node.

    run = tiny_run("wavenet", tmp_path)                       # trained a few steps on a small list
    queries = held_out_prefixes(run, 50)                      # (prefix, label) pairs
    assert max_gap(torch_probs(run, queries), node_probs(run, queries)) < 1e-5
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import makemore as mm
from makemore.data.labels import ItemLabels, for_label
from makemore.export.bundle import bundle
from makemore.export.web import module_text
from makemore.models.reading import next_logits
from makemore.training.loop import Recipe

# a small list with a few characters beyond a-z, so that vocabularies are not the names' own
ITEMS = [w for w in ("anna bob cara dan ella finn gus hana ivan jo kai lea max nia oscar pia quinn rosa sam tia "
                     "uma vic wes xena yara zoe anne-marie o'neil léa zoë ada alba bea cleo dora eva fay gia ida "
                     "joy kim liv mae nell ora pam rue sue tess una val wren yuki zia").split()] * 4
LABELLED = {"short": [w for w in ITEMS if len(w) <= 3], "long": [w for w in ITEMS if len(w) > 3]}
RECIPE = Recipe(steps=30, batch_size=32, optimizer="adamw", lr=0.01)


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("Node is not installed (.ci/run installs nodejs)")
    return path


def tiny_run(model: str, folder: Path, *, labelled: bool = False, **config) -> mm.Run:
    """A run of `model` trained for a few steps on ITEMS (or LABELLED's two labels), loaded."""
    out = Path(folder) / (model + ("-labelled" if labelled else ""))
    if not (out / "run.json").exists():
        if labelled:
            items = [w for k in LABELLED for w in LABELLED[k]]
            labels = ItemLabels([i for i, k in enumerate(LABELLED) for _ in LABELLED[k]], list(LABELLED), {})
            mm.run(items, mm.RunSpec(model=model, recipe=RECIPE, config=config), out, labels=labels)
        else:
            mm.run(ITEMS, mm.RunSpec(model=model, recipe=RECIPE, config=config), out)
    return mm.Run.load(out, "cpu")


def held_out_prefixes(run: mm.Run, n: int = 50, seed: int = 0) -> list[tuple[str, str | None]]:
    """n (prefix, label) pairs: prefixes of items up to the model's block size (and past it), every label in turn."""
    rng = random.Random(seed)
    words = sorted(set(ITEMS))
    block = getattr(run.model.config, "block_size", None) or 12
    names = list(run.labels.names) if run.labels is not None else [None]
    out = []
    for i in range(n):
        word = rng.choice(words) * 2  # twice: prefixes longer than a short block size too
        out.append((word[:rng.randint(0, min(len(word), block + 2))], names[i % len(names)]))
    return out


@torch.no_grad()
def torch_probs(run: mm.Run, queries) -> list[list[float]]:
    """p(next | prefix) as PyTorch computes it (float32 softmax), over [end, ...chars], per (prefix, label)."""
    out = []
    for prefix, label in queries:
        model = for_label(run.model, run.label_number(label))
        seq = torch.tensor([[0, *run.vocab.encode(prefix)]])
        out.append(torch.softmax(next_logits(model, seq).float(), -1)[0].tolist())
    return out


def node_probs(run: mm.Run, queries, folder: Path) -> list[list[float]]:
    """The same probabilities from the exported module, run by Node."""
    folder = Path(folder)
    module = folder / "run.mjs"
    module.write_text(module_text(bundle(run)), encoding="utf-8")
    script = folder / "probe.mjs"
    script.write_text(
        'import { probs } from "./run.mjs";\n'
        'import { readFileSync } from "node:fs";\n'
        'const queries = JSON.parse(readFileSync(process.argv[2], "utf-8"));\n'
        'console.log(JSON.stringify(queries.map(([p, l]) => Array.from(probs(p, l)))));\n', encoding="utf-8")
    (folder / "queries.json").write_text(json.dumps(queries), encoding="utf-8")
    done = subprocess.run([node(), str(script), str(folder / "queries.json")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def max_gap(a, b) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


# ----------------------------------------------------------------------------- ONNX, driven as its .json says

def sequences(run: mm.Run, queries) -> list[list[int]]:
    """[boundary, *prefix] as the graph reads it: label * V + index, the boundary the label's."""
    V = run.model.config.vocab_size
    out = []
    for prefix, label in queries:
        offset = (run.label_number(label) or 0) * V
        out.append([offset + i for i in [0, *run.vocab.encode(prefix)]])
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def onnx_probs(run: mm.Run, description: dict, session, queries) -> np.ndarray:
    """p(next | prefix) from the graph, driven as description["how_to_sample"] says, (len(queries), V)."""
    seqs = sequences(run, queries)
    kind = description["kind"]
    if kind == "window":  # every query in one batch: the last block_size indices, the start index in front
        T = description["block_size"]
        windows = np.array([([s[0]] * T + s)[-T:] for s in seqs], dtype=np.int64)
        return softmax(session.run(["logits"], {"context": windows})[0])
    if kind == "recurrent":  # every query in one batch, one index per call; each row's logits after its last index
        names = [i["name"] for i in description["inputs"][1:]]
        state = {n: np.full([len(seqs), *description["initial_state"][n]["shape"][1:]],
                            description["initial_state"][n]["fill"], dtype=np.float32) for n in names}
        out = np.zeros((len(seqs), description["vocab_size"]), dtype=np.float32)
        for t in range(max(map(len, seqs))):
            index = np.array([s[t] if t < len(s) else s[0] for s in seqs], dtype=np.int64)
            logits, *new = session.run(["logits", *[f"next_{n}" for n in names]], {"index": index, **state})
            state = dict(zip(names, new))
            done = np.array([len(s) == t + 1 for s in seqs])
            out[done] = logits[done]
        return softmax(out)
    T = description["block_size"] if kind == "sequence" else None  # the transformer's last block_size positions
    rows = [session.run(["logits"], {"tokens": np.array([s[-T:] if T else s], dtype=np.int64)})[0][0] for s in seqs]
    return softmax(np.stack(rows))
