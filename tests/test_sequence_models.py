"""The sequence models (layout "sequence"): whole padded items, padding out of the loss, the same NLL per character
as the windowed models; sampling, scoring and checkpoints; wavenet-conv against the windowed wavenet.

Tolerances: float64 within 1e-10 where the same arithmetic is only regrouped; float32 within 1e-5 otherwise.
"""

import math

import pytest
import torch

from makemore import cli
from makemore.training.run_folder import load_run
from makemore.models.reading import next_logits
from makemore.data.items import PAD_TARGET, Vocab, build_sequences, build_windows, make_splits, read_items
from makemore.errors import MakemoreError
from makemore.models import MODELS, build_model, get_spec
from makemore.training.pipeline import RunSpec, run
from .generating import generate
from makemore.generation.scoring import explain_item, next_char_probs, score_items
from makemore.training.loop import Recipe, evaluate, train

SEQUENCE_MODELS = ["rnn", "gru", "lstm", "transformer", "wavenet-conv"]
TINY = {"rnn": {}, "gru": {}, "lstm": {}, "transformer": {"n_embd": 32, "n_layer": 2}, "wavenet-conv": {}}
QUICK = Recipe(steps=20, batch_size=32, optimizer="adamw", lr=0.01)


def seq_model(name, vocab_size=27, seed=0, **config):
    torch.manual_seed(seed)
    return build_model(name, vocab_size=vocab_size, **{**TINY[name], **config})


@pytest.fixture
def items(small_file):
    return read_items(small_file)


def test_registry_layouts():
    assert {n for n, s in MODELS.items() if s.layout == "sequence"} >= set(SEQUENCE_MODELS)
    assert all(get_spec(n).layout == "windows" for n in ("bigram-counts", "bigram-nn", "mlp", "mlp-bn", "wavenet"))


def test_sequences_hold_exactly_the_windows_targets(items):
    vocab = Vocab.from_items(items)
    X, Y = build_sequences(items, vocab, torch.int8)
    assert X.dtype == Y.dtype == torch.int8 and X.shape == Y.shape == (len(items), max(map(len, items)) + 1)
    assert (X[:, 0] == 0).all()
    Xw, Yw = build_windows(items, vocab, 3)
    assert torch.equal(Y[Y >= 0].long(), Yw)  # row by row: the windows' targets in the same order
    for k in (0, 7, 123):
        n = len(items[k])
        assert X[k, 1:n + 1].tolist() == vocab.encode(items[k]) and Y[k, n].item() == 0
        assert (Y[k, n + 1:] == PAD_TARGET).all() and (X[k, n + 1:] == 0).all()


def test_sequence_splits_keep_the_item_split(items):
    windows, sequences = make_splits(items, 3), make_splits(items, None, layout="sequence")
    assert sequences.train_items == windows.train_items and sequences.layout == "sequence"
    for part in ("train", "val", "test"):
        assert int((sequences.part(part)[1] >= 0).sum()) == windows.part(part)[1].shape[0]


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_shapes_and_step0_loss(name, items):
    vocab = Vocab.from_items(items)
    X, Y = build_sequences(items, vocab)
    model = seq_model(name, vocab.size)
    model.train()
    logits, loss = model(X[:64], Y[:64])
    assert logits.shape == (64, X.shape[1], vocab.size) and loss.shape == ()
    assert loss.item() == pytest.approx(-math.log(1 / vocab.size), abs=0.15)
    assert model(X[:5])[1] is None


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_masked_loss_equals_items_one_by_one(name, items):
    # a padded batch's loss is the mean over its real characters: as if each item went alone, unpadded
    vocab = Vocab.from_items(items)
    batch = items[:16]
    X, Y = build_sequences(batch, vocab)
    model = seq_model(name, vocab.size).double().eval()
    with torch.no_grad():
        batch_loss = model(X, Y)[1].item()
        total = count = 0
        for item in batch:
            x, y = build_sequences([item], vocab)  # no padding at all
            total += model(x, y)[1].item() * (len(item) + 1)
            count += len(item) + 1
    assert batch_loss == pytest.approx(total / count, abs=1e-10)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_evaluate_is_the_mean_over_characters(name, items):
    vocab = Vocab.from_items(items)
    X, Y = build_sequences(items, vocab)
    model = seq_model(name, vocab.size).double()
    with torch.no_grad():
        model.eval()
        logp = torch.log_softmax(model(X)[0], dim=-1).gather(2, Y.long().clamp(min=0)[..., None]).squeeze(2)
        expected = -logp[Y >= 0].mean().item()
    model.train()
    assert evaluate(model, (X, Y), batch_size=37 * X.shape[1]) == pytest.approx(expected, abs=1e-10)  # uneven batches
    assert model.training  # restored
    scores = score_items(model, vocab, items)
    assert -sum(s.log_prob for s in scores) / sum(s.predicted for s in scores) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("block_size", [8, 16])
def test_wavenet_conv_equals_windowed_wavenet_on_the_same_weights(block_size, items):
    vocab = Vocab.from_items(items)
    torch.manual_seed(0)
    windowed = build_model("wavenet", vocab_size=vocab.size, block_size=block_size)
    Xw, Yw = build_windows(items, vocab, block_size)
    train(windowed, (Xw, Yw), QUICK)  # BatchNorm running statistics away from their initial values
    conv = build_model("wavenet-conv", vocab_size=vocab.size, block_size=block_size)
    assert list(conv.state_dict()) == list(windowed.state_dict())
    conv.load_state_dict(windowed.state_dict())
    windowed.double().eval()
    conv.double().eval()
    X, Y = build_sequences(items, vocab)
    with torch.no_grad():
        assert conv(X, Y)[1].item() == pytest.approx(windowed(Xw, Yw)[1].item(), abs=1e-10)
        logits = conv(X)[0][Y >= 0]  # (N, V) in the windows' order
        assert torch.allclose(logits, windowed(Xw)[0], atol=1e-10)


def test_wavenet_block_size_16_trains(items):
    vocab = Vocab.from_items(items)
    torch.manual_seed(0)
    model = build_model("wavenet", vocab_size=vocab.size, block_size=16)
    X, Y = build_windows(items, vocab, 16)
    before = evaluate(model, (X, Y))
    train(model, (X, Y), Recipe(steps=200, batch_size=64, optimizer="adamw", lr=0.01, schedule="cosine"))
    after = evaluate(model, (X, Y))  # eval mode: BatchNorm's running statistics
    assert after < before - 1 and len(model.levels) == 4
    model.train()
    with torch.no_grad():  # the running statistics have caught up with the batch statistics
        assert model(X, Y)[1].item() == pytest.approx(after, abs=0.05)


def test_transformer_refuses_items_longer_than_its_positions():
    model = build_model("transformer", block_size=8)
    vocab = Vocab(tuple("abcdefghijklmnopqrstuvwxyz"))
    X, Y = build_sequences(["abcdefghij"], vocab)  # 10 characters: 11 positions
    with pytest.raises(MakemoreError, match="block_size") as e:
        model(X, Y)
    assert "\n" not in str(e.value)
    with pytest.raises(MakemoreError, match="multiple of n_head"):
        build_model("transformer", n_embd=30, n_head=4)


def test_run_refuses_a_too_long_item_before_training(tmp_path, items):
    with pytest.raises(MakemoreError, match="block_size"):
        run(items, RunSpec(model="transformer", recipe=QUICK, config={"block_size": 4}), tmp_path / "r")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each sequence model trained 20 steps on 200 generated items, through runs.run (so saved and loadable)."""
    import random

    torch.set_num_threads(1)
    rng = random.Random(0)
    items = sorted({"".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 6))) for _ in range(300)})
    root = tmp_path_factory.mktemp("seq")
    runs = {}
    for name in SEQUENCE_MODELS:
        config = {**TINY[name], **({"block_size": 8} if name == "transformer" else {})}
        meta = run(items, RunSpec(model=name, recipe=QUICK, config=config), root / name)
        runs[name] = (root / name, meta)
    return items, runs


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_checkpoint_round_trip(name, trained):
    items, runs = trained
    run_dir, meta = runs[name]
    assert meta["status"] == "complete" and meta["model"] == name
    model, vocab, _ = load_run(run_dir)
    again, _, _ = load_run(run_dir)
    X, _ = build_sequences(items[:50], vocab)
    with torch.no_grad():
        assert torch.equal(model(X)[0], again(X)[0])
    splits = make_splits(items, model.config.__dict__.get("block_size"), seed=meta["split_seed"], vocab=vocab,
                         layout="sequence")
    assert evaluate(model, splits.val) == pytest.approx(meta["metrics"]["val_nll"], abs=1e-6)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sampling_is_seeded_and_agrees_with_scoring(name, trained):
    items, runs = trained
    model, vocab, _ = load_run(runs[name][0])
    first = generate(model, vocab, 40, max_len=12, seed=5)  # longer than the transformer's 8 positions: cropped
    assert first == generate(model, vocab, 40, max_len=12, seed=5)
    assert first != generate(model, vocab, 40, max_len=12, seed=6)
    assert all(len(s.item) <= 12 and set(s.item) <= set("abcdefgh") for s in first)
    # an item's log-probability while sampling (one position at a time) = the one scoring gives (all positions at once)
    unended = {s.item for s in first if len(s.item) == 12}  # cut at max_len: no end token drawn, not comparable
    scored = score_items(model, vocab, [s.item for s in first if s.item not in unended])
    drawn = [s.log_prob for s in first if s.item not in unended]
    assert [s.log_prob for s in scored] == pytest.approx(drawn, abs=1e-4)
    with_prefix = generate(model, vocab, 10, max_len=12, seed=1, prefix="ab")
    assert all(s.item.startswith("ab") for s in with_prefix)
    ok = [s for s in with_prefix if len(s.item) < 12]
    assert [s.log_prob for s in score_items(model, vocab, [s.item for s in ok])] == pytest.approx(
        [s.log_prob for s in ok], abs=1e-4)


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_next_and_explain_read_the_whole_prefix(name, trained):
    items, runs = trained
    model, vocab, _ = load_run(runs[name][0])
    prefix = "abcab"
    probs = next_char_probs(model, vocab, prefix)
    x = torch.tensor([[0, *vocab.encode(prefix)]])
    with torch.no_grad():
        expected = torch.softmax(model(x)[0][0, -1], dim=-1).double()
        assert torch.allclose(probs, expected, atol=1e-6)
        assert torch.allclose(torch.softmax(next_logits(model, x), dim=-1)[0].double(), expected, atol=1e-6)
    steps = explain_item(model, vocab, "abc")
    assert [s.index for s in steps] == [*vocab.encode("abc"), 0]
    assert math.log(math.prod(s.prob for s in steps)) == pytest.approx(score_items(model, vocab, ["abc"])[0].log_prob,
                                                                      abs=1e-5)


def test_transformer_scores_items_longer_than_its_positions(trained):
    items, runs = trained
    model, vocab, _ = load_run(runs["transformer"][0])
    long_item = "abcdefghabcdefgh"  # 16 characters, 8 positions: each character sees the last 8
    x = torch.tensor([[0, *vocab.encode(long_item)]])
    expected = 0.0
    with torch.no_grad():
        for t, target in enumerate([*vocab.encode(long_item), 0]):
            logits = next_logits(model, x[:, :t + 1])
            expected += torch.log_softmax(logits[0], dim=-1)[target].item()
    assert score_items(model, vocab, [long_item])[0].log_prob == pytest.approx(expected, abs=1e-4)


def test_commands_train_eval_sample_score_next(tmp_path, capsys, small_file):
    out = tmp_path / "gru"
    code = cli.main(["train", "-i", str(small_file), "--model", "gru", "-o", str(out), "--steps", "30", "--no-plot"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(["eval", str(out), "--json"]) == 0
    import json

    nll = json.loads(capsys.readouterr().out)
    assert set(nll) == {"train_nll", "val_nll", "test_nll"} and all(2 < v < 3.5 for v in nll.values())
    assert cli.main(["sample", str(out), "-n", "5", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert cli.main(["score", str(out), "emma", "olivia"]) == 0
    assert "emma" in capsys.readouterr().out
    assert cli.main(["next", str(out), "em"]) == 0
    assert "probability" in capsys.readouterr().out
