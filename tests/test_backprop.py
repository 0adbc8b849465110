import copy
import dataclasses

import pytest
import torch

from makemore.studies.backprop import (CHECK_ORDER, FUSED_STEPS, GradCheck, GradientCheckReport, backward, backward_fused,
                               check_gradients, compare_hand_and_autograd, format_check, format_gradient_check,
                               format_hand_training, forward, gradient_check, load_params_into, params_from_model,
                               train_manual, _run_forward)
from makemore.data.items import make_splits, read_items
from makemore.errors import MakemoreError, ParameterError
from makemore.models import build_model
from makemore.training.loop import BatchOrder, Recipe, TrainHooks, evaluate, train

CROSS_ENTROPY_CHAIN = ("logprobs", "probs", "counts_sum_inv", "counts_sum", "counts", "norm_logits", "logit_maxes", "logits")


def batch(seed: int, n: int, repeat: bool = False):
    """A fresh mlp-bn model and a random batch; with repeat, every context is one character thrice."""
    torch.manual_seed(seed)
    model = build_model("mlp-bn")
    X = torch.randint(0, 27, (n, 1)).repeat(1, 3) if repeat else torch.randint(0, 27, (n, 3))
    return model, X, torch.randint(0, 27, (n,))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [4, 32, 100])
def test_every_hand_gradient_matches_autograd_float64(seed, n):
    model, X, Y = batch(seed, n)
    rows = check_gradients(model, X, Y, dtype=torch.float64)
    names = [r.name for r in rows]
    assert names[:len(CHECK_ORDER)] == list(CHECK_ORDER)
    assert {"logits (fused)", "hprebn (fused)", "C (fused)"} <= set(names)
    assert all(r.approx and r.max_abs_diff <= 1e-10 for r in rows), format_check(rows)
    # the cross-entropy rules are autograd's own formulas: bit for bit the same
    assert all(r.exact for r in rows if r.name in CROSS_ENTROPY_CHAIN), format_check(rows)


@pytest.mark.parametrize("seed, n", [(0, 4), (1, 32)])
def test_repeated_characters_sum_into_C(seed, n):
    model, X, Y = batch(seed, n, repeat=True)
    X[0] = torch.tensor([1, 1, 1])
    X[1] = torch.tensor([1, 2, 1])  # also repeated across examples
    rows = check_gradients(model, X, Y)
    assert all(r.approx and r.max_abs_diff <= 1e-10 for r in rows), format_check(rows)
    params = params_from_model(model, torch.float64)
    loss, cache = forward(params, X, Y)
    grads = backward(params, cache, X, Y)
    dC = torch.zeros_like(params["C"])  # the essay's loop: one row of emb at a time
    for i in range(n):
        for t in range(3):
            dC[X[i, t]] += grads["emb"][i, t]
    torch.testing.assert_close(grads["C"], dC, rtol=0, atol=1e-15)
    assert grads["C"][1].abs().sum() > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_hand_forward_and_gradients_are_the_models(seed):
    model, X, Y = batch(seed, 32)
    model = model.double()
    params = params_from_model(model)
    loss, cache = forward(params, X, Y, eps=model.bn.eps)
    grads = backward(params, cache, X, Y, eps=model.bn.eps)
    _, model_loss = model(X, Y)  # F.batch_norm + F.cross_entropy
    model_loss.backward()
    assert loss.item() == pytest.approx(model_loss.item(), abs=1e-12)
    model_grads = {"C": model.C.grad, "W1": model.W1.grad, "bngain": model.bn.gain.grad, "bnbias": model.bn.bias.grad,
                   "W2": model.W2.grad, "b2": model.b2.grad}
    for name, g in model_grads.items():
        torch.testing.assert_close(grads[name], g, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed, n", [(0, 4), (1, 32), (2, 100)])
def test_fused_equals_step_by_step(seed, n):
    model, X, Y = batch(seed, n)
    params = params_from_model(model, torch.float64)
    loss, cache = forward(params, X, Y)
    steps, fused = backward(params, cache, X, Y), backward_fused(params, cache, X, Y)
    assert set(fused) == {"C", "emb", "embcat", "W1", "hprebn", "bngain", "bnbias", "hpreact", "h", "W2", "b2", "logits"}
    for name, g in fused.items():
        torch.testing.assert_close(g, steps[name], rtol=0, atol=1e-12)
    fused_loss, _ = _run_forward(FUSED_STEPS, params, X, Y, 1e-5)  # F.batch_norm and F.cross_entropy
    assert fused_loss.item() == pytest.approx(loss.item(), abs=1e-12)


@pytest.mark.parametrize("seed, n", [(0, 4), (1, 32), (2, 100)])
def test_float32_agrees_to_rounding(seed, n):
    model, X, Y = batch(seed, n)
    rows = check_gradients(model, X, Y, dtype=torch.float32)
    assert all(r.approx for r in rows), format_check(rows)
    assert max(r.max_abs_diff for r in rows) < 1e-6


def test_check_leaves_the_model_alone():
    model, X, Y = batch(0, 32)
    before = copy.deepcopy(model.state_dict())
    check_gradients(model, X, Y)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_format_check():
    model, X, Y = batch(0, 8)
    rows = check_gradients(model, X, Y)
    lines = format_check(rows).splitlines()
    assert lines[0].split() == ["tensor", "exact", "approx", "max", "abs", "diff"]
    assert len(lines) == len(rows) + 1
    assert lines[1].split()[0] == "logprobs" and lines[1].split()[2] == "True"


@pytest.fixture
def splits(small_file):
    return make_splits(read_items(small_file), 3)


@pytest.mark.parametrize("schedule, fused", [("constant", True), ("step", False)])
def test_manual_training_matches_autograd(splits, schedule, fused):
    recipe = Recipe(steps=300, batch_size=32, optimizer="sgd", lr=0.1, schedule=schedule)
    torch.manual_seed(0)
    auto = build_model("mlp-bn", vocab_size=splits.vocab.size)
    hand = copy.deepcopy(auto)
    train(auto, splits.train, recipe, seed=3)
    losses = train_manual(hand, splits.train, recipe.steps, recipe.batch_size, recipe.lr_at, seed=3, fused=fused)
    assert len(losses) == 300 and sum(losses[-50:]) / 50 < losses[0]
    auto_nll, hand_nll = evaluate(auto, splits.val), evaluate(hand, splits.val)
    assert abs(auto_nll - hand_nll) < 0.01
    assert abs(auto_nll - hand_nll) < 1e-4  # same batches, same updates: only float32 rounding differs
    torch.testing.assert_close(hand.bn.running_mean, auto.bn.running_mean, rtol=0, atol=1e-4)
    torch.testing.assert_close(hand.bn.running_var, auto.bn.running_var, rtol=1e-4, atol=1e-4)
    assert not hand.training


def test_manual_training_never_calls_backward(splits, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("autograd was called")

    monkeypatch.setattr(torch.Tensor, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "backward", refuse)
    monkeypatch.setattr(torch.autograd, "grad", refuse)
    torch.manual_seed(0)
    model = build_model("mlp-bn", vocab_size=splits.vocab.size)
    before = params_from_model(model)
    train_manual(model, splits.train, steps=20, batch_size=32, lr=0.1)
    assert all(p.grad is None for p in model.parameters())
    after = params_from_model(model)
    assert all(not torch.equal(before[k], after[k]) for k in before)  # every parameter was updated


def test_params_round_trip():
    model, _, _ = batch(0, 4)
    params = params_from_model(model, torch.float64)
    assert set(params) == {"C", "W1", "bngain", "bnbias", "W2", "b2"}
    assert all(p.dtype == torch.float64 and not p.requires_grad for p in params.values())
    params["W2"] += 1  # a copy: the model does not move
    assert not torch.equal(params["W2"].float(), model.W2)
    load_params_into(model, params)
    assert torch.equal(params["W2"].float(), model.W2) and model.W2.dtype == torch.float32


def test_refuses_other_models_and_single_example_batches(splits):
    with pytest.raises(MakemoreError, match="mlp-bn"):
        params_from_model(build_model("mlp"))
    with pytest.raises(ParameterError, match="batch_size must be at least 2"):
        train_manual(build_model("mlp-bn", vocab_size=splits.vocab.size), splits.train, steps=1, batch_size=1)


@pytest.mark.parametrize("batch_size", [5, 0])
def test_manual_and_autograd_losses_agree_step_by_step_in_float64(splits, batch_size):
    """Same batches (one BatchOrder for both trainers), same updates: equal losses at every step."""
    recipe = Recipe(steps=6, batch_size=batch_size, optimizer="sgd", lr=0.1)
    torch.manual_seed(0)
    auto = build_model("mlp-bn", vocab_size=splits.vocab.size).double()
    hand = copy.deepcopy(auto)
    result = train(auto, splits.train, recipe, seed=7, hooks=TrainHooks(report_every=1))
    losses = train_manual(hand, splits.train, recipe.steps, batch_size, lr=0.1, seed=7)
    auto_losses = [loss for _, loss, _ in result.loss_curve]
    assert losses == pytest.approx(auto_losses, rel=0, abs=1e-6)  # train() sums its reported losses in float32
    assert len(set(losses)) == 6  # the weights moved every step (and, with batch 5, the batch changed)


def test_manual_training_draws_the_batch_order(splits, monkeypatch):
    import makemore.studies.backprop as backprop_module

    drawn = []

    class Spy(BatchOrder):
        def next(self):
            drawn.append(super().next())
            return drawn[-1]

    monkeypatch.setattr(backprop_module, "BatchOrder", Spy)
    torch.manual_seed(0)
    train_manual(build_model("mlp-bn", vocab_size=splits.vocab.size), splits.train, steps=3, batch_size=4, seed=9)
    expected = BatchOrder(splits.train[0].shape[0], 4, seed=9)
    assert len(drawn) == 3 and all(torch.equal(ix, expected.next()) for ix in drawn)


# ----------------------------------------------------------------------------- the two studies, as a library

@pytest.fixture
def items(small_file):
    return read_items(small_file)


def test_gradient_check_report(items):
    report = gradient_check(items, batch_size=16, seed=3)
    assert report.batch_size == 16 and report.ok
    assert [label for label, _ in report.checks] == ["float64, tolerance 1e-10", "float32, tolerance 1e-5"]
    splits = make_splits(items, 3)
    torch.manual_seed(3)
    model = build_model("mlp-bn", vocab_size=splits.vocab.size)
    X, Y = splits.train[0][:16], splits.train[1][:16]
    assert report.checks[0][1] == check_gradients(model, X, Y, dtype=torch.float64)
    assert report.checks[1][1] == check_gradients(model, X, Y, dtype=torch.float32)
    text = format_gradient_check(report)
    assert text.startswith("hand gradients vs autograd on a training batch of 16 (float64, tolerance 1e-10):\n")
    assert format_check(report.checks[1][1]) in text
    assert text.count("37 of 37 tensors agree\n") == 2 and text.endswith("agree\n")


def test_gradient_check_report_fails_on_one_bad_tensor():
    rows = [GradCheck("W1", True, True, 0.0), GradCheck("C", False, False, 0.5)]
    report = GradientCheckReport(batch_size=4, checks=[("float64, tolerance 1e-10", rows)])
    assert not report.ok and "1 of 2 tensors agree" in format_gradient_check(report)


def test_backprop_check_text_is_the_commands_output(items, small_file, capsys):
    assert main_backprop(["--check", "-i", str(small_file), "--batch-size", "8", "--seed", "5"]) == 0
    assert capsys.readouterr().out == format_gradient_check(gradient_check(items, batch_size=8, seed=5)) + "\n"


def test_compare_hand_and_autograd(items):
    started = []
    report = compare_hand_and_autograd(items, steps=50, batch_size=16, lr=0.2, seed=1, on_start=started.append)
    assert started == ["training mlp-bn 50 steps with hand gradients...",
                       "training mlp-bn 50 steps with autograd gradients..."]
    assert report.gap == abs(report.hand_val_nll - report.autograd_val_nll) < 1e-4 and report.ok
    splits = make_splits(items, 3)
    torch.manual_seed(1)
    model = build_model("mlp-bn", vocab_size=splits.vocab.size)
    train(model, splits.train, Recipe(steps=50, batch_size=16, lr=0.2, schedule="step"), seed=1)
    assert report.autograd_val_nll == evaluate(model, splits.val)
    lines = format_hand_training(report).splitlines()
    assert lines[0] == "mlp-bn, 50 steps of SGD, batch 16, lr 0.2 (x0.1 at 3/4), seed 1"
    assert lines[1].startswith(f"  hand gradients     val NLL {report.hand_val_nll:.4f}  (")
    assert lines[2].startswith(f"  autograd gradients val NLL {report.autograd_val_nll:.4f}  (")
    assert lines[3] == f"  difference {report.gap:.4f} (within 0.01)"
    far = dataclasses.replace(report, gap=0.02)
    assert not far.ok and format_hand_training(far).endswith("difference 0.0200 (NOT within 0.01)")


@pytest.mark.parametrize("study", [gradient_check, compare_hand_and_autograd])
def test_studies_refuse_a_batch_of_one(items, study):
    with pytest.raises(ParameterError) as e:
        study(items, batch_size=1)
    assert e.value.parameter == "batch_size"
    assert str(e.value) == "batch_size must be at least 2 (batch norm needs two examples), got 1"


def main_backprop(args):
    from makemore.cli import main

    return main(["backprop", *args, "--threads", "1"])


# ----------------------------------------------------------------------------- the command

def test_backprop_command_checks_and_trains(capsys, small_file):
    from makemore.cli import main

    code = main(["backprop", "--check", "--train", "-i", str(small_file), "--steps", "300", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("37 of 37 tensors agree") == 2  # float64 and float32
    hand, autograd = (float(line.split("val NLL")[1].split()[0]) for line in out.splitlines() if "val NLL" in line)
    assert abs(hand - autograd) <= 0.01 and "within 0.01" in out


def test_backprop_command_needs_an_action(capsys, small_file):
    from makemore.cli import main

    assert main(["backprop", "-i", str(small_file)]) != 0
    assert "--check" in capsys.readouterr().err
