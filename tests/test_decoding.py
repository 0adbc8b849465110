"""Incremental decoding (makemore.models.decoding): every sequence model's cached step against its forward, and sampling
with the cache against sampling without it.

Tolerances: float64 within 1e-12 (the same arithmetic regrouped); the sampler draws from float32 probabilities
either way, so in float64 the items are the same and their log-probabilities agree to 1e-9. In float32 the
items of a trained model are the same too, and log-probabilities agree to 1e-4 (as sampling and scoring do).
"""

import pytest
import torch

from makemore.models.reading import next_logits, target_log_probs
from makemore.data.items import Vocab
from makemore.models.decoding import Decoder, has_steps, step_limit
from makemore.models import MODELS, build_model
from .generating import generate
from makemore.generation.scoring import score_items

SEQUENCE_MODELS = ["rnn", "gru", "lstm", "transformer", "wavenet-conv"]
TINY = {"rnn": {"n_layer": 2}, "gru": {"n_layer": 2}, "lstm": {"n_layer": 2},
        "transformer": {"n_embd": 16, "n_layer": 2, "n_head": 2, "block_size": 40}, "wavenet-conv": {"n_hidden": 32}}
VOCAB = Vocab(tuple("abcde"))  # 6 indices: an untrained model ends an item after ~5 characters


def tiny(name: str, seed: int = 0, **config) -> torch.nn.Module:
    """A random model in float64, eval mode; BatchNorm statistics away from 0 and 1 so the queues' padding counts."""
    torch.manual_seed(seed)
    model = build_model(name, vocab_size=VOCAB.size, **{**TINY[name], **config}).double().eval()
    for module in model.modules():
        if hasattr(module, "running_mean"):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def test_every_sequence_model_decodes_incrementally_and_no_windowed_one_does():
    for name, spec in MODELS.items():
        assert has_steps(build_model(name, vocab_size=6)) == (spec.layout == "sequence"), name
    assert step_limit(tiny("transformer")) == 40 and step_limit(tiny("wavenet-conv")) is None
    assert step_limit(tiny("gru")) is None


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
@pytest.mark.parametrize("rows", [7, 80])  # the transformer attends one way for a few rows, another for more (FUSED_ROWS)
def test_each_step_gives_the_logits_of_forward(name, rows):
    model = tiny(name)
    X = torch.randint(1, VOCAB.size, (rows, 37))  # past the transformer's cache room, grown twice (4, 8, 16, 32, 40)
    X[:, 0] = 0
    with torch.no_grad():
        full = model(X)[0]  # (B, L, V)
        state, steps = model.init_state(rows), []
        for t in range(X.shape[1]):
            logits, state = model.step(X[:, t], state)
            steps.append(logits)
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_decoder_rows_can_end_branch_and_fall_back(name):
    # rows dropped (lazily kept in the cache), rows repeated (branching), and past the transformer's positions
    model = tiny(name, block_size=8) if name == "transformer" else tiny(name)
    torch.manual_seed(1)
    with torch.no_grad():
        cached, plain = Decoder(model, [0, 2], 6), Decoder(model, [0, 2], 6, cache=False)
        rows = [torch.ones(6, dtype=torch.bool), torch.tensor([True, False, True, True, False, True]),
                torch.tensor([0, 0, 3, 1, 2])]
        for t in range(12):
            keep = rows[t] if t < len(rows) else torch.ones(cached.logits.shape[0], dtype=torch.bool)
            kept = keep.sum() if keep.dtype == torch.bool else keep.numel()
            nxt = torch.randint(1, VOCAB.size, (int(kept),))
            assert torch.allclose(cached.advance(keep, nxt), plain.advance(keep, nxt), atol=1e-12, rtol=0)
        assert cached.length == 14
    if name == "transformer":
        assert not cached.cached  # 14 positions read, 8 in the table: the uncached path took over


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_cached_and_uncached_sampling_give_the_same_items(name):
    model = tiny(name, block_size=8) if name == "transformer" else tiny(name)
    for controls in ({}, {"prefix": "ab", "temperature": 0.7, "min_len": 3}, {"top_k": 3, "top_p": 0.9}):
        cached = generate(model, VOCAB, 300, max_len=12, seed=3, batch_size=128, **controls)
        plain = generate(model, VOCAB, 300, max_len=12, seed=3, batch_size=128, cache=False, **controls)
        assert [s.item for s in cached] == [s.item for s in plain]
        assert [s.log_prob for s in cached] == pytest.approx([s.log_prob for s in plain], abs=1e-9)
    assert max(len(s.item) for s in cached) > 8  # the transformer went past its positions on some items


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_cached_sampling_in_float32_agrees_with_scoring(name):
    model = tiny(name).float()
    drawn = generate(model, VOCAB, 200, max_len=30, seed=0)
    assert [s.item for s in drawn] == [s.item for s in generate(model, VOCAB, 200, max_len=30, seed=0, cache=False)]
    ended = [s for s in drawn if len(s.item) < 30]
    assert [s.log_prob for s in score_items(model, VOCAB, [s.item for s in ended])] == pytest.approx(
        [s.log_prob for s in ended], abs=1e-4)


def test_wavenet_conv_scores_long_items_in_one_pass_as_if_cropped():
    # each output reads its last block_size inputs: the whole sequence at once gives every position what the
    # cropped reading gives it, so scoring long items takes one call (log-probabilities in float32: 1e-6)
    model = tiny("wavenet-conv")
    X = torch.randint(1, VOCAB.size, (4, 21))
    X[:, 0] = 0
    Y = torch.randint(0, VOCAB.size, (4, 21))
    with torch.no_grad():
        cropped = torch.stack([next_logits(model, X[:, :t + 1]) for t in range(21)], dim=1)  # the last 8 positions
        assert torch.allclose(model(X)[0], cropped, atol=1e-12, rtol=0)
        expected = torch.log_softmax(cropped.float(), dim=-1).gather(2, Y[..., None]).squeeze(2).double()
        assert torch.allclose(target_log_probs(model, X, Y), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["transformer", "lstm", "wavenet"])
def test_no_generating_call_records_gradients(name):
    # the parameters require gradients (as loaded for training); generating must still build no graph: with
    # one, every step keeps its intermediate tensors (and the caches written in place) for a backward pass
    # that never comes, which slows cached sampling down
    from .generating import most_likely
    from makemore.generation.scoring import explain_item, top_next_chars

    model = tiny(name) if name in TINY else build_model(name, vocab_size=VOCAB.size).double().eval()
    assert all(p.requires_grad for p in model.parameters())
    seen = []
    model.register_forward_hook(lambda *_: seen.append(torch.is_grad_enabled()))
    if has_steps(model):
        step = model.step
        model.step = lambda idx, state: (seen.append(torch.is_grad_enabled()), step(idx, state))[1]
    calls = {"sample": lambda: generate(model, VOCAB, 20, max_len=8, seed=0),
             "sample uncached": lambda: generate(model, VOCAB, 20, max_len=8, seed=0, cache=False, prefix="a"),
             "suffix": lambda: generate(model, VOCAB, 3, max_len=8, seed=0, suffix="a"),
             "most likely": lambda: most_likely(model, VOCAB, 3, max_len=4),
             "score": lambda: score_items(model, VOCAB, ["abc"]),
             "explain": lambda: explain_item(model, VOCAB, "abc"),
             "next": lambda: top_next_chars(model, VOCAB, "ab", 3)}
    for what, call in calls.items():
        seen.clear()
        call()
        assert seen and not any(seen), what
