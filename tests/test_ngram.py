from collections import Counter, defaultdict

import pytest
import torch

from makemore.training.run_folder import load_run, save_run
from makemore.data.items import Vocab, build_windows, read_items
from makemore.errors import MakemoreError
from makemore.models import build_model
from makemore.training.loop import evaluate


def fitted(items, block_size, **config):
    vocab = Vocab.from_items(items)
    model = build_model("ngram", vocab_size=vocab.size, block_size=block_size, **config)
    X, Y = build_windows(items, vocab, block_size)
    model.fit(X, Y)
    return model, X, Y


def slow_tables(items, m):
    """The n-grams counted one character at a time: raw at the top, continuation counts N1+(. h w) below."""
    vocab = Vocab.from_items(items)
    grams, before = Counter(), defaultdict(set)  # before[h w]: the characters seen just before h w
    for item in items:
        stream = [0] * m + [vocab.stoi[ch] for ch in item] + [0]
        for t in range(m, len(stream)):  # t: a target's position
            grams[tuple(stream[t - m:t + 1])] += 1
            for j in range(m):  # j: context length of the lower order
                before[tuple(stream[t - j:t + 1])].add(stream[t - j - 1])
    counts = {j: {} for j in range(m)}
    for g, preceding in before.items():
        counts[len(g) - 1][g] = len(preceding)
    return {**counts, m: dict(grams)}


def slow_kn(counts, h, V, D):
    """Interpolated Kneser-Ney for context h (a tuple), straight from the formula, one character at a time."""
    p = [1.0 / V] * V
    for j in range(len(h) + 1):
        ctx = tuple(h[len(h) - j:])
        c = [counts[j].get(ctx + (w,), 0) for w in range(V)]
        total, types = sum(c), sum(1 for x in c if x)
        if total:
            p = [(max(c[w] - D, 0) + D * types * p[w]) / total for w in range(V)]
    return p


def test_shapes_and_unfitted_model_is_uniform(small_file):
    items = read_items(small_file)
    model = build_model("ngram", vocab_size=27, block_size=3)
    X, Y = build_windows(items, Vocab.from_items(items), 3)
    logits, _ = model(X[:4])
    assert torch.allclose(logits.exp(), torch.full((4, 27), 1 / 27))
    model.fit(X, Y)
    logits, loss = model(X[:64], Y[:64])
    assert logits.shape == (64, 27) and logits.dtype == torch.float32
    assert loss.shape == () and torch.isfinite(loss)
    assert model(X[:5])[1] is None


@pytest.mark.parametrize("block_size", [1, 2, 3, 5])
@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k"])
def test_probabilities_sum_to_one_for_seen_and_unseen_contexts(small_file, block_size, smoothing):
    model, X, _ = fitted(read_items(small_file), block_size, smoothing=smoothing)
    g = torch.Generator().manual_seed(0)
    unseen = torch.randint(0, 27, (500, block_size), generator=g)  # mostly never seen at the top order
    P = model.probs(torch.cat([X[:500], unseen]))
    assert P.dtype == torch.float64 and (P > 0).all()
    assert (P.sum(1) - 1).abs().max().item() < 1e-9


@pytest.mark.parametrize("block_size", [1, 3])
def test_vectorised_counts_match_slow_reference(small_file, block_size):
    items = read_items(small_file)
    model, _, _ = fitted(items, block_size)
    slow = slow_tables(items, block_size)
    for j in range(block_size + 1):
        ctx_keys, ctx_total, ctx_types, gram_keys, gram_counts = model.table(j)
        digits = [(gram_keys // 27 ** (j - i)) % 27 for i in range(j + 1)]  # oldest first
        got = {tuple(int(d[r]) for d in digits): int(gram_counts[r]) for r in range(len(gram_keys))}
        assert got == slow[j]
        total, types = defaultdict(int), defaultdict(int)
        for g, c in slow[j].items():
            total[g[:-1]] += c
            types[g[:-1]] += 1
        assert ctx_total.tolist() == [total[k] for k in sorted(total)]
        assert ctx_types.tolist() == [types[k] for k in sorted(types)]
        assert len(ctx_keys) == len(total)


def test_kneser_ney_matches_the_formula(small_file):
    items = read_items(small_file)
    model, X, _ = fitted(items, 3, discount=0.7)
    counts = slow_tables(items, 3)
    contexts = torch.cat([X[::97][:20], torch.tensor([[5, 5, 5], [0, 26, 26], [1, 0, 0]])])  # seen and unseen
    P = model.probs(contexts)
    for row, h in zip(P, contexts.tolist()):
        assert row.tolist() == pytest.approx(slow_kn(counts, h, 27, 0.7), abs=1e-12)


def test_add_one_bigram_is_bigram_counts(small_file):
    items = read_items(small_file)
    model, X, Y = fitted(items, 1, smoothing="add-k", k=1.0)
    bigram = build_model("bigram-counts", vocab_size=27)
    bigram.fit(X, Y)
    assert torch.equal(model(X)[0], bigram(X)[0])


def test_orders_two_to_five_fit_and_longer_contexts_fit_the_training_data_better(small_file):
    items = read_items(small_file)
    train_nll = []
    for block_size in range(1, 5):
        model, X, Y = fitted(items, block_size)
        train_nll.append(evaluate(model, (X, Y)))
    assert all(a > b for a, b in zip(train_nll, train_nll[1:]))


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, small_file):
    items = read_items(small_file)
    model, X, _ = fitted(items, 4, discount=0.6)
    save_run(tmp_path / "r", model, {"vocab": list(Vocab.from_items(items).chars), "max_item_len": 20})
    loaded, _, meta = load_run(tmp_path / "r")
    assert meta["model"] == "ngram" and loaded.config == model.config
    assert torch.equal(loaded(X)[0], model(X)[0])
    fresh = build_model("ngram", vocab_size=27, block_size=4, discount=0.6)
    fresh.load_state_dict(model.state_dict())  # tables sized by the data, not by the config
    assert torch.equal(fresh(X)[0], model(X)[0])


@pytest.mark.parametrize("config", [{"smoothing": 1.0}, {"smoothing": "witten-bell"}, {"discount": 0.0},
                                    {"discount": 1.5}, {"discount": [0.5, 0.5]}, {"discount": "high"}, {"k": 0},
                                    {"block_size": 0}, {"block_size": 20}])
def test_bad_config_is_refused(config):
    with pytest.raises(MakemoreError):
        build_model("ngram", **{"block_size": 2, **config})
