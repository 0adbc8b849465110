"""ONNX export (makemore.export.onnx): every model's step, run by onnxruntime, gives PyTorch's next-character
probabilities within 1e-5 on 50 held-out prefixes, labelled runs too; the n-gram is refused in one line.

Each run is trained for a few steps (tests/exporting.py), exported once per module, and driven as its .json
says: a window of the last block_size indices, a recurrent step fed one index at a time with its state, a
transformer's last block_size positions, an ensemble's whole item.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import makemore as mm
from makemore.errors import MakemoreError

from .exporting import ITEMS, held_out_prefixes, onnx_probs, tiny_run, torch_probs

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'makemore[test]')")
pytest.importorskip("onnx", reason="onnx is not installed (pip install 'makemore[export]')")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'makemore[export]')")

from makemore.export.onnx import export_onnx  # noqa: E402

TOLERANCE = 1e-5
N_QUERIES = 50
# smaller than the defaults where training them would dominate the module's time; the graphs are the same kinds
SMALL = {"transformer": {"n_layer": 2, "n_embd": 32}, "gru": {"n_hidden": 64}, "lstm": {"n_hidden": 64, "n_layer": 2},
         "rnn": {"n_hidden": 64, "n_layer": 2}, "mlp-deep": {"n_layers": 3}}
UNLABELLED = ["bigram-counts", "bigram-nn", "mlp", "mlp-bn", "mlp-deep", "wavenet", "wavenet-conv", "rnn", "gru",
              "lstm", "transformer"]
LABELLED = ["bigram-counts", "mlp", "wavenet", "wavenet-conv", "gru", "lstm", "transformer"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def exported(folder: Path, model: str, labelled: bool = False):
    """(run, description, onnxruntime session) of a tiny run of `model`, exported once."""
    run = tiny_run(model, folder / "runs", labelled=labelled, **SMALL.get(model, {}))
    path = folder / f"{model}{'-labelled' if labelled else ''}.onnx"
    description = export_onnx(run, path)
    assert json.loads(path.with_suffix(".json").read_text(encoding="utf-8")) == description
    return run, description, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def gap(run, description, session, queries) -> float:
    return float(np.abs(onnx_probs(run, description, session, queries) - np.array(torch_probs(run, queries))).max())


@pytest.mark.parametrize("model", UNLABELLED)
def test_onnx_gives_pytorchs_probabilities(folder, model):
    run, description, session = exported(folder, model)
    assert description["model"] == model and description["labels"] is None
    assert description["chars"] == list(run.vocab.chars) and description["vocab_size"] == run.vocab.size
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in description["inputs"]]
    assert [o.name for o in session.get_outputs()] == [o["name"] for o in description["outputs"]]
    assert gap(run, description, session, held_out_prefixes(run, N_QUERIES)) < TOLERANCE


@pytest.mark.parametrize("model", LABELLED)
def test_a_labelled_runs_onnx_gives_each_labels_probabilities(folder, model):
    run, description, session = exported(folder, model, labelled=True)
    assert description["labels"]["names"] == list(run.labels.names)
    assert abs(sum(description["labels"]["priors"]) - 1) < 1e-9
    assert gap(run, description, session, held_out_prefixes(run, N_QUERIES)) < TOLERANCE


def make_ensemble_run(folder: Path, models: list[str], labelled: bool = False) -> mm.Run:
    """An ensemble of tiny runs of `models` (one split), its weights fitted by EM, loaded."""
    from makemore.data.labels import ItemLabels
    from makemore.studies.ensemble import load_members, make_ensemble, members_splits

    from .exporting import LABELLED

    suffix = "-labelled" if labelled else ""
    for model in models:
        tiny_run(model, folder / "runs", labelled=labelled, **SMALL.get(model, {}))
    members = load_members([folder / "runs" / (model + suffix) for model in models])
    if labelled:
        items = [w for k in LABELLED for w in LABELLED[k]]
        labels = ItemLabels([i for i, k in enumerate(LABELLED) for _ in LABELLED[k]], list(LABELLED), {})
    else:
        items, labels = ITEMS, None
    out = folder / ("mix-" + "-".join(models) + suffix)
    make_ensemble(members, members_splits(items, members, labels), out, min_weight=0)
    return mm.Run.load(out, "cpu")


def test_an_ensemble_exports_its_mixture_past_a_members_block_size(folder):
    # a windowed member (its label's boundaries in front), a recurrent one, and a transformer cropped to its block
    run = make_ensemble_run(folder, ["mlp", "gru", "transformer"], labelled=True)
    path = folder / "mix.onnx"
    description = export_onnx(run, path)
    assert description["kind"] == "mixture" and description["model"] == "ensemble"
    queries = held_out_prefixes(run, N_QUERIES)
    transformer_block = run.model.members[2].config.block_size
    assert max(len(p) for p, _ in queries) + 1 > transformer_block  # some prefixes are longer than it reads
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert gap(run, description, session, queries) < TOLERANCE


def nothing_written(folder: Path, stem: str) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith((stem, f".{stem}"))]


def test_the_ngram_and_an_ensemble_holding_one_are_refused_in_one_line_with_nothing_written(folder):
    out = folder / "refused"
    out.mkdir()
    for run in (tiny_run("ngram", folder / "runs"), make_ensemble_run(folder, ["ngram", "mlp"])):
        with pytest.raises(MakemoreError) as refused:
            export_onnx(run, out / "model.onnx")
        message = str(refused.value)
        assert "ngram" in message and "ONNX" in message and "\n" not in message
        assert nothing_written(out, "model")


def test_without_the_export_extra_a_one_line_error_names_it(folder, monkeypatch):
    import sys

    run = tiny_run("bigram-nn", folder / "runs")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` now fails, as when not installed
    with pytest.raises(MakemoreError, match=r"pip install 'makemore\[export\]'"):
        export_onnx(run, folder / "no-extra.onnx")
    assert nothing_written(folder, "no-extra")


def test_a_failure_while_exporting_or_writing_leaves_nothing_half_written(folder, monkeypatch):
    import errno

    import onnx

    run = tiny_run("bigram-nn", folder / "runs")

    def boom(*args, **kwargs):
        raise RuntimeError("the exporter broke\nwith a long traceback of its own")

    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, "export", boom)
        with pytest.raises(MakemoreError, match="^ONNX export failed: the exporter broke$"):
            export_onnx(run, folder / "broken.onnx")
    assert nothing_written(folder, "broken")

    def half(proto, path, *args, **kwargs):  # half a file, then the disk is full
        Path(path).write_bytes(b"\x08\x07")
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(onnx, "save_model", half)
        with pytest.raises(MakemoreError, match="disk is full"):
            export_onnx(run, folder / "full.onnx")
    assert nothing_written(folder, "full")


def test_the_graph_documents_its_inputs_and_outputs_and_carries_the_description(folder):
    import onnx

    run = tiny_run("lstm", folder / "runs", **SMALL["lstm"])
    path = folder / "documented.onnx"
    description = export_onnx(run, path)
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["index", "h", "c"]
    assert [o.name for o in proto.graph.output] == ["logits", "next_h", "next_c"]
    assert all(v.doc_string for v in [*proto.graph.input, *proto.graph.output])
    assert json.loads({p.key: p.value for p in proto.metadata_props}["makemore"]) == description
    assert {o.domain: o.version for o in proto.opset_import}[""] == description["opset"]
    assert description["initial_state"]["h"] == {"fill": 0.0, "shape": ["batch", 2, 64]}
    assert any("softmax" in line for line in description["how_to_sample"])
