import json
import math
import sys

import pytest
import torch

from makemore.studies.claims import (bigram_convergence_claim, bigram_equivalence, format_claims, gradient_claim,
                             measure_claims, quick_claims)
from makemore.cli import main
from makemore.data.items import Vocab, build_windows, read_items
from makemore.studies.diagnostics import (InitComparison, diagnose, diagnose_config, format_diagnose, format_layer_table,
                                          snapshot, train_with_update_ratios)
from makemore.errors import MakemoreError, ParameterError
from makemore.models import build_model
from makemore.studies.reproduce import read_results
from makemore.training.loop import Recipe


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


# ----------------------------------------------------------------------------- the library's diagnose

@pytest.fixture
def items(small_file):
    return read_items(small_file)


def test_diagnose_measures_before_and_after(items):
    report = diagnose(items, model="mlp", init="naive", batch_size=16, steps=20, seed=0)
    torch.manual_seed(0)
    assert report.label == "mlp (init naive)" and report.model == "mlp"
    assert report.params == sum(p.numel() for p in build_model("mlp", init="naive").parameters())
    assert report.vocab_size == Vocab.from_items(items).size and report.batch_size == 16
    assert report.before.loss > 10 and report.before.ideal_loss == pytest.approx(math.log(report.vocab_size))
    assert report.after.loss < report.before.loss  # 20 steps of SGD lower the naive init's huge loss
    assert report.before.layers[0].saturation > 0.5 and report.before.acts[0].shape[0] == 16
    assert (report.short_recipe.steps, report.short_recipe.schedule) == (20, "constant")
    assert len(report.ratios.steps) == 20 and report.ratios.names == ["C", "W1", "W2"]
    assert report.compare is None and report.compare_recipe is None and report.compare_recipe_name is None
    again = diagnose(items, model="mlp", init="naive", batch_size=16, steps=20, seed=0)
    assert (again.before.loss, again.after.loss) == (report.before.loss, report.after.loss)
    other = diagnose(items, model="mlp", init="naive", batch_size=16, steps=20, seed=1)
    assert other.before.loss != report.before.loss


def test_format_diagnose_holds_both_tables(items):
    report = diagnose(items, model="mlp", init="kaiming", batch_size=8, steps=5)
    text = format_diagnose(report)
    lines = text.splitlines()
    assert lines[0] == f"mlp (init kaiming): {report.params:,} parameters; step 0 on a batch of 8 training examples"
    assert lines[1].startswith(f"initial loss {report.before.loss:.4f}")
    assert format_layer_table(report.before.layers) in text and format_layer_table(report.after.layers) in text
    assert f"after 5 steps of SGD (batch 32, constant lr 0.1): loss on the same batch {report.after.loss:.4f}" in text
    assert [line.split()[0] for line in lines[-3:]] == report.ratios.names
    assert "same recipe" not in text and not text.endswith("\n")


def test_format_diagnose_is_the_commands_output(items, small_file, capsys):
    code = main(["diagnose", "-i", str(small_file), "--model", "mlp", "--init", "kaiming", "--steps", "10",
                 "--batch-size", "16", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert out == format_diagnose(diagnose(items, model="mlp", init="kaiming", batch_size=16, steps=10)) + "\n"


def test_diagnose_compare_trains_every_init(items):
    started = []
    report = diagnose(items, model="mlp", steps=3, compare=InitComparison(steps=4), on_start=started.append)
    assert started == ["mlp init=naive", "mlp init=fix-output", "mlp init=fix-tanh", "mlp init=kaiming",
                       "mlp-deep init=naive, batchnorm=False", "mlp-deep init=kaiming, batchnorm=False",
                       "mlp-deep init=naive, batchnorm=True", "mlp-deep init=kaiming, batchnorm=True"]
    assert report.label == "mlp" and report.compare_recipe_name == "essay" and report.compare_recipe.steps == 4
    rows = {f"{r.model} {r.variant}": r for r in report.compare}
    assert rows["mlp init=naive"].val_nll > rows["mlp init=kaiming"].val_nll  # the naive init's loss is huge
    text = format_diagnose(report)
    assert "same recipe (essay, 4 steps), same seed, only the init changing:" in text
    assert all(f"{r.val_nll:>7.4f}" in text for r in report.compare)


def test_diagnose_refuses_bad_parameters(items):
    for kwargs, parameter in (({"batch_size": 0}, "batch_size"), ({"steps": 0}, "steps")):
        with pytest.raises(ParameterError) as e:
            diagnose(items, **kwargs)
        assert e.value.parameter == parameter
    for kwargs, parameter in (({"steps": 0}, "compare_steps"), ({"recipe": "slow"}, "compare_recipe")):
        with pytest.raises(ParameterError) as e:
            InitComparison(**kwargs)
        assert e.value.parameter == parameter
    with pytest.raises(MakemoreError, match="init"):
        diagnose([], init="bogus")  # refused before the (empty) data is touched
    assert diagnose_config("mlp", "kaiming") == {"init": "kaiming"}
    assert diagnose_config("mlp", None) == {} and diagnose_config("wavenet", "kaiming") == {}


def test_diagnose_plots_writes_six_pngs(items, tmp_path):
    pytest.importorskip("matplotlib")
    from makemore.studies.plots import diagnose_plots

    paths = diagnose_plots(diagnose(items, init="naive", steps=3), tmp_path / "plots")
    assert [p.name for p in paths] == ["activations_step0.png", "activations.png", "gradients_step0.png",
                                       "gradients.png", "update_ratio.png", "saturation.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_plots_without_matplotlib_say_so(items, tmp_path, monkeypatch):
    from makemore.studies.plots import bigram_heatmap, diagnose_plots
    from makemore.generation.scoring import bigram_count_matrix

    report = diagnose(items, steps=2)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(MakemoreError, match="matplotlib"):
        diagnose_plots(report, tmp_path)
    with pytest.raises(MakemoreError, match="matplotlib"):
        bigram_heatmap(*bigram_count_matrix(items), tmp_path / "b.png")
    assert list(tmp_path.glob("*.png")) == []


def test_bigram_heatmap_writes_a_png(items, tmp_path):
    pytest.importorskip("matplotlib")
    from makemore.studies.plots import _plot_char, bigram_heatmap
    from makemore.generation.scoring import bigram_count_matrix

    counts, vocab = bigram_count_matrix(items)
    bigram_heatmap(counts, vocab, tmp_path / "bigrams.png", title="first 300 names")
    assert (tmp_path / "bigrams.png").read_bytes()[:4] == b"\x89PNG"
    wide = [chr(0x100 + i) * 2 for i in range(200)] + ["a b"]  # past ~130 characters: labelled axes, no cell text
    bigram_heatmap(*bigram_count_matrix(wide), str(tmp_path / "wide.png"))
    assert (tmp_path / "wide.png").read_bytes()[:4] == b"\x89PNG"
    assert (_plot_char(" "), _plot_char("\x01"), _plot_char("é")) == ("␣", "U+0001", "é")


# ----------------------------------------------------------------------------- the library's claims

def test_measure_claims_quick_rows_in_order(items):
    started = []
    claims = measure_claims(items, seed=42, on_start=started.append)
    assert started == ["measuring the quick claims..."]
    quick = quick_claims(items, seed=42)
    assert [c.as_dict() for c in claims[:-1]] == [c.as_dict() for c in quick]  # measured, and the same again
    assert claims[-1].as_dict() == gradient_claim(42).as_dict()
    assert claims[-1].claim == "manual backprop equals autograd (float64)" and claims[-1].holds
    assert claims[-1].measured.startswith("37 tensors, max |diff| ")


def test_measure_claims_with_results_adds_the_long_ones(items, monkeypatch):
    import makemore.studies.claims as claims_module

    def fake_init_fix(items, recipe, seed, on_start):  # the real one trains the MLP twice for minutes
        assert (recipe.optimizer, recipe.batch_size) == ("sgd", 32)  # the essay's recipe
        on_start("mlp init=naive")
        return claims_module.Claim("init fix", "-", "-", True, "-")

    monkeypatch.setattr(claims_module, "init_fix_claim", fake_init_fix)
    monkeypatch.setattr(claims_module, "bigram_convergence_claim",
                        lambda items, steps, seed: claims_module.Claim(f"bigram {steps}", "-", "-", True, "-"))
    results = {"models": [{"model": "bigram-counts", "val_nll": 2.45, "essay_val_nll": 2.45},
                          {"model": "mlp", "val_nll": 2.2, "essay_val_nll": 2.10}]}
    started = []
    claims = measure_claims(items, results=results, on_start=started.append)
    assert [c.claim for c in claims[-4:]] == ["bigram-counts: val NLL", "mlp: val NLL", "init fix", "bigram 2000"]
    assert [c.holds for c in claims[-4:-2]] == [True, False]
    assert claims[-5].claim == "manual backprop equals autograd (float64)"
    assert started == ["measuring the quick claims...",
                       "training the MLP with naive and with Kaiming init (the essay's recipe, same seed; about 1.5 minutes)...",
                       "  mlp init=naive", "training the bigram NN 2,000 steps..."]


def test_bigram_convergence_claim_is_measured(items):
    claim = bigram_convergence_claim(items, steps=50, seed=3)
    spread = bigram_equivalence(items, steps=50, seed=3).max_logit_offset_spread
    assert claim.claim == "W = log(counts) + a constant per row, 50 steps"
    assert claim.measured == f"max deviation {spread:.3f} (bigrams seen 100+ times)" and claim.holds == (spread < 0.1)
    assert "50 steps" in format_claims([claim])


def test_read_results(tmp_path):
    results = {"models": [{"model": "mlp", "val_nll": 2.1}]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert read_results(tmp_path) == results and read_results(str(tmp_path / "results.json")) == results
    with pytest.raises(MakemoreError, match="cannot read reproduce results from .*missing.*reproduce the table into that folder first"):
        read_results(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(MakemoreError, match="bad.json"):
        read_results(tmp_path / "bad.json")


def test_batchnorm_study_is_the_commands_output(tmp_path, small_file):
    from makemore.studies.batchnorm import batchnorm_study, format_batchnorm_study
    from makemore.training.run_folder import load_run
    from makemore.data.items import read_items
    from makemore.training.pipeline import splits_for

    from .conftest import call

    run_dir = tmp_path / "bn"
    assert call("train", "-i", small_file, "--model", "mlp-bn", "-o", run_dir, "--steps", "30", "--threads", "1",
                "--no-plot")[0] == 0
    model, vocab, meta = load_run(run_dir)
    splits = splits_for(read_items(small_file), "mlp-bn", 3, seed=meta["split_seed"], vocab=vocab)
    study = batchnorm_study(model, splits, batch_size=16, index=3)
    assert study.modes.eval_mode_max_diff < 1e-5 and study.batch_size == 16  # eval mode: alone = inside its batch
    assert study.calibrated_val_nll != study.running_val_nll
    code, out, err = call("batchnorm", run_dir, "--batch-size", "16", "--index", "3", "--threads", "1")
    assert code == 0 and out == format_batchnorm_study(study) + "\n"
    with pytest.raises(ParameterError, match="index"):
        batchnorm_study(model, splits, batch_size=4, index=4)
    with pytest.raises(ParameterError, match="BatchNorm"):
        batchnorm_study(build_model("mlp"), splits)
