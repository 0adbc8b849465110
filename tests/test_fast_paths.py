"""The speedrun's levers change how training computes, never what: each fast path against the straightforward one.

Tolerances: float64 comparisons within 1e-10 (the same arithmetic reordered), relative 1e-7 where a float32
table (the soft targets, each entry rounded by up to 6e-8 of itself) enters; float32 within 1e-5.
"""

import pytest
import torch
import torch.nn.functional as F

import makemore.data.items as data
from makemore.data.items import Vocab, build_windows, next_char_distributions, read_items
from makemore.models import build_model
from makemore.models.layers import BatchNorm, cross_entropy
from makemore.training.loop import Recipe, make_optimizer, train


def windows(small_file, block_size):
    items = read_items(small_file)
    return build_windows(items, Vocab.from_items(items), block_size)


@pytest.mark.parametrize("name,block_size", [("mlp", 3), ("mlp-bn", 3), ("wavenet", 8), ("bigram-nn", 1)])
def test_soft_targets_give_the_same_loss_and_gradients_on_the_whole_set(small_file, name, block_size):
    # Over a batch holding every window of its contexts, the mean soft-target loss is the mean hard-target
    # loss: both sum log p(next | context) over the same (context, next) pairs, grouped differently.
    X, Y = windows(small_file, block_size)
    context_of, dist = next_char_distributions(X, Y)
    assert torch.allclose(dist.sum(dim=1), torch.ones(dist.shape[0]))
    torch.manual_seed(0)
    model = build_model(name, vocab_size=27).double()
    grads = []
    for targets in (Y, dist.double()[context_of]):
        model.zero_grad()
        _, loss = model(X, targets)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    (hard, hard_grads), (soft, soft_grads) = grads
    assert soft == pytest.approx(hard, rel=1e-7)
    for g_hard, g_soft in zip(hard_grads, soft_grads):
        assert torch.allclose(g_hard, g_soft, rtol=1e-6, atol=1e-7 * g_hard.abs().max().item())


def test_soft_loss_equals_cross_entropy_with_full_width_probabilities():
    torch.manual_seed(0)
    logits = torch.randn(16, 27, dtype=torch.float64)
    probs = torch.softmax(torch.randn(16, 20, dtype=torch.float64), dim=1)  # K = 20 < V = 27 classes seen
    wide = F.pad(probs, (0, 7))
    assert cross_entropy(logits, probs).item() == pytest.approx(F.cross_entropy(logits, wide).item(), abs=1e-12)


def test_distinct_contexts_and_their_distributions(small_file):
    X, Y = windows(small_file, 3)
    context_of, dist = next_char_distributions(X, Y)
    for k in torch.unique(context_of)[:50].tolist():  # each row is the histogram of what follows that context
        rows = context_of == k
        assert (X[rows] == X[rows][0]).all()
        expected = torch.bincount(Y[rows].long(), minlength=dist.shape[1]).float()
        assert torch.allclose(dist[k], expected / expected.sum())


def test_soft_targets_are_skipped_when_the_table_would_be_too_big(small_file, monkeypatch):
    X, Y = windows(small_file, 3)
    monkeypatch.setattr(data, "SOFT_TARGET_LIMIT", 10)
    assert next_char_distributions(X, Y) is None
    torch.manual_seed(0)
    model = build_model("mlp", vocab_size=27)
    recipe = Recipe(steps=5, batch_size=32, optimizer="adamw", lr=0.01, soft_targets=True)
    hard = Recipe(steps=5, batch_size=32, optimizer="adamw", lr=0.01)
    torch.manual_seed(0)
    other = build_model("mlp", vocab_size=27)
    assert train(model, (X, Y), recipe, seed=1).state.loss_curve == train(other, (X, Y), hard, seed=1).state.loss_curve


def test_soft_target_training_is_deterministic_and_learns(small_file):
    X, Y = windows(small_file, 3)
    recipe = Recipe(steps=300, batch_size=64, optimizer="adamw", lr=0.01, soft_targets=True)
    curves = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("mlp-bn", vocab_size=27)
        curves.append(train(model, (X, Y), recipe, seed=3).state.loss_curve)
    assert curves[0] == curves[1]
    assert curves[0][-1][1] < curves[0][0][1] - 0.3


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_over_batch_and_time_matches_the_formula(training):
    # BatchNorm views (B, T, C) as (B*T, C) rather than transposing to (B, C, T): same statistics, same update.
    torch.manual_seed(0)
    x = torch.randn(32, 4, 6, dtype=torch.float64) * 3 + 1
    bn = BatchNorm(6).double()
    with torch.no_grad():
        bn.gain.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    before_mean, before_var = bn.running_mean.clone(), bn.running_var.clone()
    bn.train(training)
    y = bn(x)
    if training:
        mean, var = x.mean(dim=(0, 1)), x.var(dim=(0, 1), unbiased=False)
        n = x.shape[0] * x.shape[1]
        assert torch.allclose(bn.running_mean, 0.9 * before_mean + 0.1 * mean, atol=1e-12)
        assert torch.allclose(bn.running_var, 0.9 * before_var + 0.1 * var * n / (n - 1), atol=1e-12)
    else:
        mean, var = before_mean, before_var
    expected = bn.gain * (x - mean) / torch.sqrt(var + bn.eps) + bn.bias
    assert torch.allclose(y, expected, atol=1e-10)


def test_fused_adamw_takes_the_steps_of_the_plain_one(small_file):
    X, Y = windows(small_file, 3)
    recipe = Recipe(steps=1, optimizer="adamw", lr=0.01, weight_decay=0.1)
    models, optimizers = [], []
    for fused in (True, False):
        torch.manual_seed(0)
        model = build_model("mlp-bn", vocab_size=27)
        optimizer = make_optimizer(model, recipe)
        if not fused:  # fresh groups: the fused optimizer's group dicts hold fused=True and would carry it over
            groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in optimizer.param_groups]
            optimizer = torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, fused=False)
        models.append(model)
        optimizers.append(optimizer)
    assert optimizers[0].defaults.get("fused")  # the CPU build has the fused kernel
    assert all(g["fused"] for g in optimizers[0].param_groups)
    assert not optimizers[1].defaults.get("fused") and not any(g["fused"] for g in optimizers[1].param_groups)
    for step in range(20):
        ix = torch.arange(step * 32, step * 32 + 32) % X.shape[0]
        for model, optimizer in zip(models, optimizers):
            optimizer.zero_grad()
            model(X[ix], Y[ix])[1].backward()
            optimizer.step()
    for p_fused, p_plain in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(p_fused, p_plain, atol=1e-5)



@pytest.mark.parametrize("name,block_size", [("bigram-nn", 1), ("mlp", 3)])
def test_a_full_batch_from_its_distinct_windows_has_the_same_loss_and_gradient(small_file, name, block_size):
    from makemore.training.loop import pooled_batch, rows_independent

    X, Y = windows(small_file, block_size)
    torch.manual_seed(0)
    model = build_model(name, vocab_size=int(X.max()) + 1, **({"block_size": block_size} if name == "mlp" else {}))
    model.double()
    assert rows_independent(model) and not rows_independent(build_model("mlp-bn"))
    Xp, Yp = pooled_batch(X, Y)
    assert Xp.shape[0] < X.shape[0] // 2 and Yp.is_floating_point()
    grads = []
    for xb, yb in ((X, Y), (Xp, Yp.double())):
        model.zero_grad()
        _, loss = model(xb, yb)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    (full, g_full), (pooled, g_pooled) = grads
    assert pooled == pytest.approx(full, rel=1e-7)  # the soft targets are a float32 table: rounded within 6e-8
    for a, b in zip(g_full, g_pooled):  # a gradient entry sums terms of both signs: the targets' rounding shows more
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7 * float(a.abs().max()))
