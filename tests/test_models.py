import math

import pytest
import torch

from makemore.data.items import Vocab, build_windows, read_items
from makemore.models import MODELS, build_model
from makemore.training.loop import Recipe, evaluate, train

ESSAY_PARAMS = {"bigram-counts": 0, "bigram-nn": 729, "mlp": 11_897, "mlp-bn": 12_097, "wavenet": 76_579}


def windows_for(name, items):
    vocab = Vocab.from_items(items)
    model = build_model(name, vocab_size=vocab.size)
    X, Y = build_windows(items, vocab, model.config.block_size)
    return model, X, Y


@pytest.mark.parametrize("name", list(ESSAY_PARAMS))
def test_essay_parameter_counts(name):
    assert sum(p.numel() for p in build_model(name).parameters()) == ESSAY_PARAMS[name]


# the windowed models; the sequence models' shapes are checked in test_sequence_models.py
@pytest.mark.parametrize("name", [n for n, spec in MODELS.items() if spec.layout == "windows"])
def test_output_shape_and_loss(name, small_file):
    torch.manual_seed(0)
    model, X, Y = windows_for(name, read_items(small_file))
    logits, loss = model(X[:64], Y[:64])
    assert logits.shape == (64, 27)
    assert loss.shape == () and torch.isfinite(loss)
    logits_only, no_loss = model(X[:5])
    assert logits_only.shape == (5, 27) and no_loss is None


def step0_loss(name, small_file, seed=0):
    torch.manual_seed(seed)
    model, X, Y = windows_for(name, read_items(small_file))
    model.train()
    return model(X, Y)[1].item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step0_losses(small_file, seed):
    ideal = -math.log(1 / 27)  # 3.2958: every character equally likely
    # counts before fitting are all zero: smoothing alone gives exactly the uniform distribution
    assert step0_loss("bigram-counts", small_file, seed) == pytest.approx(ideal, abs=1e-5)
    # naive N(0,1) init: logits with std ~sqrt(200) blow the loss up far past ideal (the essay's ~27)
    assert step0_loss("mlp", small_file, seed) > 10
    # Kaiming init + a small output layer start where they should
    assert step0_loss("mlp-bn", small_file, seed) == pytest.approx(ideal, abs=0.1)
    assert step0_loss("wavenet", small_file, seed) == pytest.approx(ideal, abs=0.2)
    # W ~ N(0,1): a softmax of unit-variance logits, a little above ideal
    assert ideal < step0_loss("bigram-nn", small_file, seed) < ideal + 1.5
    assert step0_loss("mlp-deep", small_file, seed) == pytest.approx(ideal, abs=0.2)


@pytest.mark.parametrize("init, low, high", [("naive", 10, 100), ("fix-output", 3.2, 3.4), ("fix-tanh", 3.2, 3.4), ("kaiming", 3.2, 3.4)])
def test_mlp_inits_step0_loss(small_file, init, low, high):
    items = read_items(small_file)
    vocab = Vocab.from_items(items)
    X, Y = build_windows(items, vocab, 3)
    for seed in range(3):
        torch.manual_seed(seed)
        model = build_model("mlp", vocab_size=vocab.size, init=init)
        assert low < model(X, Y)[1].item() < high


def test_count_matrix_matches_slow_reference(small_file):
    items = read_items(small_file)
    model, X, Y = windows_for("bigram-counts", items)
    model.fit(X, Y)
    vocab = Vocab.from_items(items)
    N = torch.zeros((27, 27), dtype=torch.int64)
    for w in items:  # the essay's loop
        chs = ["."] + list(w) + ["."]
        for ch1, ch2 in zip(chs, chs[1:]):
            i1 = 0 if ch1 == "." else vocab.stoi[ch1]
            i2 = 0 if ch2 == "." else vocab.stoi[ch2]
            N[i1, i2] += 1
    assert torch.equal(model.counts, N)
    P = (N + 1).double()
    P /= P.sum(1, keepdim=True)
    nll = -P[X[:, -1], Y].log().mean().item()
    assert model(X, Y)[1].item() == pytest.approx(nll, abs=1e-5)


def test_bigram_nn_learns_the_count_distribution(small_file):
    items = read_items(small_file)
    counts, X, Y = windows_for("bigram-counts", items)
    counts.config.smoothing = 0.01  # gradient descent finds the maximum-likelihood rows: compare with nearly raw counts
    counts.fit(X, Y)
    torch.manual_seed(0)
    nn_model = build_model("bigram-nn", vocab_size=27)
    train(nn_model, (X, Y), Recipe(steps=400, batch_size=0, optimizer="adamw", lr=0.1))
    count_nll, nn_nll = evaluate(counts, (X, Y)), evaluate(nn_model, (X, Y))
    assert abs(count_nll - nn_nll) < 0.02
    # rows seen often enough are the same distribution
    seen = torch.bincount(X[:, -1], minlength=27) >= 50
    nn_probs = torch.softmax(nn_model.W.detach(), dim=1)
    assert (nn_probs[seen] - counts.probs()[seen]).abs().max().item() < 0.05


def test_batchnorm_eval_mode_uses_running_statistics(small_file):
    torch.manual_seed(0)
    model, X, Y = windows_for("mlp-bn", read_items(small_file))
    train(model, (X, Y), Recipe(steps=50, batch_size=64, optimizer="adamw", lr=0.01))
    model.eval()
    with torch.no_grad():
        batch_logits, _ = model(X[:32])
        single_logits, _ = model(X[3:4])
    assert torch.allclose(single_logits[0], batch_logits[3], atol=1e-5)


def test_batchnorm_single_example_train_mode_fails_eval_mode_matches(small_file):
    from makemore.studies.batchnorm import single_example_modes

    for name in ("mlp-bn", "wavenet"):
        torch.manual_seed(0)
        model, X, Y = windows_for(name, read_items(small_file))
        train(model, (X, Y), Recipe(steps=30, batch_size=64, optimizer="adamw", lr=0.01))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        check = single_example_modes(model, X[:32], index=5)
        assert check.eval_mode_max_diff < 1e-5
        # mlp-bn: one value per channel, PyTorch refuses; wavenet: positions count as examples, so garbage
        assert check.train_mode_error is not None or check.train_mode_max_diff > 0.1
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running stats untouched


def test_calibration_sets_exact_training_statistics(small_file):
    from makemore.studies.batchnorm import calibrate_batchnorm

    torch.manual_seed(0)
    model, X, Y = windows_for("mlp-bn", read_items(small_file))
    train(model, (X, Y), Recipe(steps=30, batch_size=64, optimizer="adamw", lr=0.01))
    calibrate_batchnorm(model, X)
    with torch.no_grad():
        hpre = model.C[X].view(X.shape[0], -1) @ model.W1
    assert torch.allclose(model.bn.running_mean, hpre.mean(0), atol=1e-5)
    assert torch.allclose(model.bn.running_var, hpre.var(0), rtol=1e-4)
    calibrated_nll = evaluate(model, (X, Y))
    model.train()  # batch statistics of all of X are exactly the calibrated ones (up to n/(n-1))
    with torch.no_grad():
        assert abs(calibrated_nll - model(X, Y)[1].item()) < 1e-3


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_each_element_with_probability_1_minus_p(p):
    """layers.Dropout's CPU draw (15 random bits per element): the kept share within 4 standard errors of
    1 - p over 400,000 elements, the mean output the input's (kept elements scaled by 1 / P(keep)), the
    gradient the same mask and scale; eval mode and p = 0 leave the input as it is; the same seed, the same mask."""
    from makemore.models.layers import Dropout

    drop = Dropout(p).train()
    x = torch.ones(400_000, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    share = kept.double().mean().item()
    assert abs(share - (1 - p)) <= 4 * math.sqrt(p * (1 - p) / x.numel())
    assert torch.allclose(y[kept], y[kept][0].expand(int(kept.sum())))  # one scale for every kept element
    assert abs(y[kept][0].item() * (1 - p) - 1) < 1e-4  # 1 / P(keep), P(keep) = 1 - p to 1/32,768
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * m)/dx = m: the same mask and scale
    torch.manual_seed(0)
    assert torch.equal(drop(x.detach()), y.detach())
    assert drop.eval()(x) is x and Dropout(0.0).train()(x) is x
    lanes = torch.stack([torch.manual_seed(s) and drop.train()(torch.ones(4)) != 0 for s in range(4000)]).double()
    assert (lanes.mean(0) - (1 - p)).abs().max() <= 4 * math.sqrt(p * (1 - p) / 4000)  # each of a word's 4 lanes


def test_written_out_attention_is_sdpa_in_float64():
    """transformer.causal_attention (the CPU training path) against F.scaled_dot_product_attention(is_causal=True),
    without dropout, in float64 at 1e-12; with dropout, the transformer's training-mode forward draws from it."""
    import torch.nn as nn
    import torch.nn.functional as F
    from makemore.models.transformer import causal_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 9, 8, dtype=torch.float64, generator=g) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(causal_attention(q, k, v, nn.Identity()), expected, rtol=0, atol=1e-12)
    model = build_model("transformer", vocab_size=7, block_size=9, n_embd=16, n_head=2, n_layer=1, dropout=0.2)
    idx = torch.randint(0, 7, (4, 9), generator=g)
    model.train()
    torch.manual_seed(1)
    a, _ = model(idx)
    torch.manual_seed(2)
    b, _ = model(idx)
    assert not torch.allclose(a, b)  # dropout drew other masks
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])
