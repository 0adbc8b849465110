import json

import pytest
import torch
from safetensors.torch import load_file

from makemore.training.run_folder import META, WEIGHTS, load_run
from makemore.data.items import read_items
from makemore.errors import MakemoreError
from makemore.training.pipeline import RunSpec, run
from makemore.training.loop import Recipe

from .generating import generate

QUICK = Recipe(steps=30, batch_size=64, optimizer="adamw", lr=0.01)


@pytest.fixture
def trained_run(tmp_path, small_file):
    items = read_items(small_file)
    run(items, RunSpec(model="wavenet", recipe=QUICK), tmp_path / "run")
    return tmp_path / "run"


def test_round_trip_gives_identical_samples_and_logits(tmp_path, small_file):
    items = read_items(small_file)
    from makemore.data.items import make_splits
    from makemore.models import build_model
    from makemore.training.loop import train

    splits = make_splits(items, 8)
    torch.manual_seed(1)
    model = build_model("wavenet", vocab_size=splits.vocab.size)
    train(model, splits.train, QUICK)
    model.eval()
    from makemore.training.run_folder import save_run

    save_run(tmp_path / "r", model, {"vocab": list(splits.vocab.chars), "max_item_len": 10})
    loaded, vocab, meta = load_run(tmp_path / "r")
    assert vocab == splits.vocab and meta["model"] == "wavenet"
    X = splits.val[0][:100]
    with torch.no_grad():
        assert torch.equal(model(X)[0], loaded(X)[0])  # running BatchNorm statistics came along
    assert generate(model, vocab, 30, max_len=20, seed=5) == generate(loaded, vocab, 30, max_len=20, seed=5)


def test_weights_are_safetensors_and_meta_is_json(trained_run):
    tensors = load_file(str(trained_run / WEIGHTS))
    assert "levels.0.bn.running_mean" in tensors
    meta = json.loads((trained_run / META).read_text())
    for key in ("model", "config", "vocab", "split_seed", "seed", "recipe", "metrics", "format_version"):
        assert key in meta
    assert not list(trained_run.glob("*.tmp"))  # no temporary files left behind


def test_missing_run_dir(tmp_path):
    with pytest.raises(MakemoreError, match="not found"):
        load_run(tmp_path / "nope")


def test_run_dir_without_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MakemoreError, match="no checkpoint"):
        load_run(tmp_path / "empty")


def test_truncated_weights(trained_run):
    data = (trained_run / WEIGHTS).read_bytes()
    (trained_run / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(MakemoreError, match="truncated or damaged"):
        load_run(trained_run)


def test_meta_not_json(trained_run):
    (trained_run / META).write_text("{not json")
    with pytest.raises(MakemoreError, match="not valid JSON"):
        load_run(trained_run)


def test_vocab_does_not_fit_weights(trained_run):
    meta = json.loads((trained_run / META).read_text())
    meta["vocab"] = meta["vocab"][:-1]
    meta["config"]["vocab_size"] -= 1
    (trained_run / META).write_text(json.dumps(meta))
    with pytest.raises(MakemoreError, match="does not fit"):
        load_run(trained_run)


def test_newer_format_is_refused(trained_run):
    meta = json.loads((trained_run / META).read_text())
    meta["format_version"] = 99
    (trained_run / META).write_text(json.dumps(meta))
    with pytest.raises(MakemoreError, match="newer makemore"):
        load_run(trained_run)


def test_failed_save_keeps_previous_checkpoint(trained_run, monkeypatch):
    before = (trained_run / WEIGHTS).read_bytes()
    loaded, _, meta = load_run(trained_run)
    import makemore.training.run_folder as ckpt

    def boom(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt  # interrupted mid-write

    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_run(trained_run, loaded, {"vocab": meta["vocab"]})
    assert (trained_run / WEIGHTS).read_bytes() == before
    assert not list(trained_run.glob(".*tmp"))
    load_run(trained_run)


def test_pickle_checkpoints_are_never_unpickled(tmp_path, trained_run):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create the marker file if unpickled

    for name in ("model.pt", "model.pkl"):
        evil = tmp_path / name
        evil.write_bytes(pickle.dumps(Payload()))
        with pytest.raises(MakemoreError, match="never unpickles"):
            load_run(evil)
    # a pickle dropped into a run directory is ignored: only safetensors and JSON are read
    (trained_run / "model.pt").write_bytes(pickle.dumps(Payload()))
    load_run(trained_run)
    assert not marker.exists()
