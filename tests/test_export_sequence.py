"""The exported JavaScript runtime's sequence models (export/assets/models_sequence.js) against PyTorch.

rnn, gru, lstm (two layers where the config allows: rnn and lstm), the transformer (prefixes past its
block_size: the last block_size positions renumbered) and the ensemble (of gru + lstm, and of gru + mlp once
the windowed runtime has an mlp), each unlabelled and labelled: p(next | prefix) from the exported module in
Node within 1e-5 of PyTorch's `next_logits` on 50 held-out prefixes. A second Node script reads the runtime's
internals (the module exports only info, sample, score, next, probs): `logits(seq)` against PyTorch, and
`stepper()` against `logits(seq)` at every prefix of long items. The runs are tiny and trained once per module.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from makemore.data.labels import ItemLabels, for_label
from makemore.export.bundle import bundle, inline_json
from makemore.export.web import runtime_js
from makemore.models.reading import next_logits
from makemore.studies.ensemble import load_members, make_ensemble, members_splits
from makemore.trained import Run

from .exporting import ITEMS, LABELLED, held_out_prefixes, max_gap, node, node_probs, tiny_run, torch_probs

CONFIGS = {  # small, so the module's runs train in seconds; rnn and lstm stacked, to test n_layer > 1
    "rnn": {"n_embd": 8, "n_hidden": 24, "n_layer": 2},
    "gru": {"n_embd": 8, "n_hidden": 24},
    "lstm": {"n_embd": 8, "n_hidden": 24, "n_layer": 2},
    "transformer": {"n_embd": 16, "n_head": 2, "n_layer": 2},  # block_size from the data: 11, prefixes reach 14
    "mlp": {"block_size": 3, "n_embd": 4, "n_hidden": 16},  # an ensemble member with a window
}
TOLERANCE = 1e-5
ENSEMBLES = {"gru+lstm": ("gru", "lstm"), "gru+mlp": ("gru", "mlp")}
MIXED = [0.35, 0.65]  # the ensembles' weights (`ensemble_run`)
LONG = ["anne-marieo'neilxenazoë", "quinnquinnquinnquinn"]  # items longer than any block: stepper against logits


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export-sequence")


@pytest.fixture(scope="module")
def registered(folder) -> set[str]:
    """The model names the runtime's registry holds (the windowed file is another's: mlp may not be there yet)."""
    script = folder / "registry.js"
    script.write_text(runtime_js() + "\nconsole.log(JSON.stringify(Object.keys(MODELS)));\n", encoding="utf-8")
    done = subprocess.run([node(), str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def trained(model: str, folder: Path, labelled: bool) -> Run:
    return tiny_run(model, folder, labelled=labelled, **CONFIGS[model])


def ensemble_run(name: str, folder: Path, labelled: bool, registered: set[str]) -> Run:
    """An ensemble of two tiny runs, as `makemore ensemble` makes it (none dropped), with the weights MIXED."""
    missing = [m for m in ENSEMBLES[name] if m not in registered]
    if missing:
        pytest.skip(f"the JavaScript runtime has no {', '.join(missing)} yet (models_windowed.js)")
    out = folder / (f"ensemble-{name}" + ("-labelled" if labelled else ""))
    if not (out / "run.json").exists():
        runs = [trained(m, folder, labelled).path for m in ENSEMBLES[name]]
        members = load_members(runs, "cpu")
        if labelled:  # the members' items and labels, as tiny_run gave them
            items = [w for k in LABELLED for w in LABELLED[k]]
            labels = ItemLabels([i for i, k in enumerate(LABELLED) for _ in LABELLED[k]], list(LABELLED), {})
        else:
            items, labels = ITEMS, None
        make_ensemble(members, members_splits(items, members, labels), out, min_weight=0.0)
        # EM gives the better tiny run (the gru) nearly all the weight (the other's is ~1e-5, under the test's
        # tolerance): the mixture is reweighted, unevenly, so that each member's part and its order both show
        meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
        meta["config"]["weights"] = MIXED
        (out / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    return Run.load(out, "cpu")


def run_of(case: str, folder: Path, labelled: bool, registered: set[str]) -> Run:
    if case.startswith("ensemble:"):
        return ensemble_run(case.split(":", 1)[1], folder, labelled, registered)
    return trained(case, folder, labelled)


CASES = ["rnn", "gru", "lstm", "transformer", "ensemble:gru+lstm", "ensemble:gru+mlp"]
LABELLINGS = [pytest.param(False, id="unlabelled"), pytest.param(True, id="labelled")]


@pytest.mark.parametrize("labelled", LABELLINGS)
@pytest.mark.parametrize("case", CASES)
def test_the_exported_module_gives_pytorchs_next_character_probabilities(case, labelled, folder, registered):
    run = run_of(case, folder, labelled, registered)
    queries = held_out_prefixes(run, 50)
    if case == "transformer":  # some prefixes longer than the position table: the cropped window is read
        assert any(len(p) + 1 > run.model.config.block_size for p, _ in queries)
    where = folder / "probe" / (case.replace(":", "-") + ("-labelled" if labelled else ""))
    where.mkdir(parents=True, exist_ok=True)
    gap = max_gap(torch_probs(run, queries), node_probs(run, queries, where))
    print(f"{case} {'labelled' if labelled else 'unlabelled'}: largest gap {gap:.2e}")
    assert gap < TOLERANCE


def internal_logits(run: Run, seqs: list[list[int]], where: Path) -> dict:
    """For each index sequence: model.logits(seq[:t+1]) and the stepper's logits after seq[t], for every t,
    read from the runtime's internals (core.js's decodeBundle, tensorGetter, buildModel) in Node."""
    where.mkdir(parents=True, exist_ok=True)
    script = where / "internals.js"
    script.write_text(
        runtime_js() + f"\nconst BUNDLE = {inline_json(bundle(run))};\nconst SEQS = {json.dumps(seqs)};\n"
        "const model = buildModel(BUNDLE.model, BUNDLE.config, tensorGetter(decodeBundle(BUNDLE)));\n"
        "const out = { stepper: typeof model.stepper === 'function', logits: [], stepped: [] };\n"
        "for (const seq of SEQS) {\n"
        "  out.logits.push(seq.map((_, t) => Array.from(model.logits(seq.slice(0, t + 1)))));\n"
        "  const s = model.stepper();\n"
        "  out.stepped.push(seq.map((index) => Array.from(s.feed(index))));\n"
        "}\n"
        "console.log(JSON.stringify(out));\n", encoding="utf-8")
    done = subprocess.run([node(), str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("labelled", LABELLINGS)
@pytest.mark.parametrize("case", CASES)
def test_logits_match_pytorch_and_the_stepper_matches_logits_at_every_prefix(case, labelled, folder, registered):
    run = run_of(case, folder, labelled, registered)
    V = run.model.config.vocab_size
    names = list(run.labels.names) if run.labels is not None else [None]
    queries, seqs = [], []  # every prefix of each long item, under each label in turn
    for i, item in enumerate(LONG):
        label = names[i % len(names)]
        offset = (run.label_number(label) or 0) * V
        seqs.append([offset + c for c in [0, *run.vocab.encode(item)]])
        queries += [(item[:t], label) for t in range(len(item) + 1)]
    got = internal_logits(run, seqs, folder / "internals" / (case.replace(":", "-") + str(labelled)))
    assert got["stepper"], "every sequence model offers a stepper"
    logits = [row for rows in got["logits"] for row in rows]
    stepped = [row for rows in got["stepped"] for row in rows]
    # the stepper reads the same numbers in the same order (or the cropped window again): the same logits
    assert max_gap(logits, stepped) < 1e-9
    as_probs = [torch.softmax(torch.tensor(row, dtype=torch.float64), -1).tolist() for row in logits]
    gap = max_gap(torch_probs(run, queries), as_probs)
    print(f"{case} {'labelled' if labelled else 'unlabelled'} (long items): largest gap {gap:.2e}")
    assert gap < TOLERANCE


def test_the_transformer_reads_its_last_block_size_positions_renumbered(folder):
    """Past the position table, the logits are those of the window alone (reading.crop), not of the whole item."""
    run = trained("transformer", folder, False)
    T = run.model.config.block_size
    seq = [0, *run.vocab.encode(LONG[0])]
    assert len(seq) > T + 2
    got = internal_logits(run, [seq, seq[-T:]], folder / "internals" / "crop")
    assert got["logits"][0][-1] == got["logits"][1][-1]  # the window read from position 0
    with torch.no_grad():
        expected = next_logits(for_label(run.model, None), torch.tensor([seq]))[0].double()
    assert torch.allclose(torch.tensor(got["logits"][0][-1], dtype=torch.float64), expected, atol=1e-4)
