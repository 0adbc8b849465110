import math

import pytest
import torch

from makemore.cli import main
from makemore.data import Vocab, build_windows, read_items
from makemore.diagnostics import snapshot, train_with_update_ratios
from makemore.models import build_model
from makemore.train import Recipe


@pytest.fixture
def windows(small_file):
    items = read_items(small_file)
    return build_windows(items, Vocab.from_items(items), 3)


def look(name, X, Y, seed=0, **config):
    torch.manual_seed(seed)
    return snapshot(build_model(name, vocab_size=27, **config), X[:256], Y[:256])


@pytest.mark.parametrize("seed", [0, 1])
def test_naive_init_explodes_and_saturates(windows, seed):
    X, Y = windows
    naive = look("mlp", X, Y, seed, init="naive")
    assert naive.loss > 10 and naive.ideal_loss == pytest.approx(math.log(27))
    layer = naive.layers[0]
    assert layer.saturation > 0.5  # most of tanh is flat at naive init
    assert layer.worst_neuron_saturation > 0.8  # some neuron is flat on most examples
    assert layer.preact_std > 3  # N(0,1) weights over 30 inputs: std ~sqrt(30)


@pytest.mark.parametrize("seed", [0, 1])
def test_each_fix_does_its_job(windows, seed):
    X, Y = windows
    naive, out, tanh, kaiming = (look("mlp", X, Y, seed, init=i) for i in ("naive", "fix-output", "fix-tanh", "kaiming"))
    assert out.loss == pytest.approx(math.log(27), abs=0.1)
    assert out.layers[0].saturation == pytest.approx(naive.layers[0].saturation)  # the output fix leaves tanh alone
    for fixed in (tanh, kaiming):
        assert fixed.layers[0].saturation < 0.2 and fixed.layers[0].dead_neurons == 0
        assert fixed.layers[0].preact_in_range > 0.5
    assert kaiming.layers[0].preact_std == pytest.approx(5 / 3, rel=0.35)  # gain 5/3 × unit-variance embeddings


def test_deep_naive_saturates_every_layer(windows):
    X, Y = windows
    naive = look("mlp-deep", X, Y, init="naive", batchnorm=False)
    kaiming = look("mlp-deep", X, Y, init="kaiming", batchnorm=False)
    assert len(naive.layers) == 5
    assert all(n.saturation > 0.5 for n in naive.layers)
    assert all(k.saturation < 0.2 for k in kaiming.layers)
    assert all(math.isfinite(k.grad_std) and k.grad_std > 0 for k in kaiming.layers)


def test_update_ratios_recorded_every_step(windows):
    X, Y = windows
    torch.manual_seed(0)
    model = build_model("mlp", init="kaiming")
    ratios = train_with_update_ratios(model, (X, Y), Recipe(steps=25, batch_size=32, lr=0.1))
    assert ratios.names == ["C", "W1", "W2"]
    assert len(ratios.steps) == 25 and all(len(r) == 3 for r in ratios.ratios)
    assert all(-6 < v < 0 for r in ratios.ratios for v in r)


def test_diagnose_command_writes_plots(capsys, tmp_path, small_file):
    pytest.importorskip("matplotlib")
    code = main(["diagnose", "-i", str(small_file), "--model", "mlp", "--init", "naive", "--steps", "20",
                 "-o", str(tmp_path), "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "initial loss" in out and "update:data" in out
    for name in ("activations.png", "activations_step0.png", "gradients.png", "gradients_step0.png",
                 "update_ratio.png", "saturation.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_batchnorm_command(capsys, tmp_path, small_file):
    run_dir = tmp_path / "run"
    assert main(["train", "-i", str(small_file), "--model", "mlp-bn", "-o", str(run_dir), "--steps", "30",
                 "--no-plot", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["batchnorm", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "train mode (batch statistics): fails" in out and "recomputed over the training set" in out


def test_claims_quick_measures_and_writes_json(capsys, tmp_path, small_file):
    import json

    code = main(["claims", "--quick", "-i", str(small_file), "-o", str(tmp_path), "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    claims = json.loads((tmp_path / "claims.json").read_text())["claims"]
    by_name = {c["claim"]: c for c in claims}
    # measured on 300 names, not names.txt: figures computed here, each judged by its rule
    assert by_name["examples with a 3-character context"]["holds"] is False
    assert float(by_name["initial loss, naive init"]["measured"]) > 10
    assert by_name["initial loss, output layer scaled by 0.01, bias 0"]["holds"] is True
    assert by_name["manual backprop equals autograd (float64)"]["holds"] is True
    assert all(c["claim"] in out for c in claims) and "holds" in out.splitlines()[0]
