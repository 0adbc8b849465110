"""Any list, any size: sizes that follow the data, evaluation by distinct contexts, repeats counted.

- Every registered model trains on a list of items up to 60 characters long and on one of more than
  300 symbols (CJK, emoji, combining marks) with no size flag, then samples and scores.
- Evaluation weighs each distinct (context, next character) pair by its count: the same NLL as the
  plain mean over every window, to float rounding; sequences grouped by length: the same as padded.
- run.json's "dataset" counts distinct items and val items also in train; --dedupe drops repeats
  before the split, and the commands that read the run later see the same split.
"""

from __future__ import annotations

import json
import random

import pytest
import torch
import torch.nn.functional as F

from makemore.data.items import (Vocab, build_sequences, build_windows, describe_duplicates, drop_duplicates,
                           duplicate_figures, encode_all, make_splits, unique_rows)
from makemore.training.evaluation import distinct_pairs, evaluate
from makemore.models import MODELS, build_model, trainable_models
from makemore.training.pipeline import default_block_size

from .conftest import call, write_lines

FEW_STEPS = ["--steps", "3", "--batch-size", "16", "--no-plot", "--eval-interval", "0"]
SMALL = {  # the smallest widths a model allows: the point is that it runs, not how well
    "mlp": ["--n-hidden", "16"], "mlp-bn": ["--n-hidden", "16"], "mlp-deep": ["--n-hidden", "16"],
    "wavenet": ["--n-hidden", "16"], "wavenet-conv": ["--n-hidden", "16"],
    "rnn": ["--n-hidden", "16"], "gru": ["--n-hidden", "16"], "lstm": ["--n-hidden", "16"],
    "transformer": ["--n-embd", "16", "--n-layer", "1", "--n-head", "2"],
}


def long_items(n: int = 60) -> list[str]:
    """Items of 1 to 60 characters, the longest first in no particular split."""
    rng = random.Random(1)
    items = ["".join(rng.choice("abcdefghij -'") for _ in range(rng.randint(1, 20))).strip() or "a" for _ in range(n)]
    return items + ["x" * 60, "y" * 59 + "z", "long item with spaces and a hyphen-or-two, sixty characters!"[:60]]


def wide_alphabet(n: int = 80) -> list[str]:
    """More than 300 symbols: CJK ideographs, emoji, letters with combining accents (kept apart, not NFC)."""
    cjk = [chr(0x4E00 + i) for i in range(260)]
    emoji = [chr(0x1F600 + i) for i in range(40)]
    combining = ["e\u0301", "a\u0308", "o\u0302", "n\u0303"]
    symbols = cjk + emoji + combining
    rng = random.Random(2)
    items = ["".join(symbols[(i * 7 + j) % len(symbols)] for j in range(1 + i % 6)) for i in range(len(symbols))]
    return items + ["".join(rng.sample(symbols, 4)) for _ in range(n)]


@pytest.mark.parametrize("model", trainable_models())
@pytest.mark.parametrize("kind", ["long", "wide"])
def test_every_model_trains_samples_and_scores_any_list_without_size_flags(tmp_path, model, kind):
    items = long_items() if kind == "long" else wide_alphabet()
    assert len(Vocab.from_items(items).chars) > 300 if kind == "wide" else max(map(len, items)) == 60
    data = write_lines(tmp_path / f"{kind}.txt", items)
    run = tmp_path / "run"
    code, _, err = call("train", "-i", data, "--model", model, "-o", run, *FEW_STEPS, *SMALL.get(model, []))
    assert code == 0, err
    meta = json.loads((run / "run.json").read_text())
    if model == "transformer":  # its position table follows the data: the longest item plus the start token
        assert meta["config"]["block_size"] == max(map(len, items)) + 1
    code, out, err = call("sample", run, "-n", "3", "--seed", "1")
    assert code == 0 and len(out.splitlines()) == 3, err
    longest = max(items, key=len)
    code, out, err = call("score", run, longest, items[0])
    assert code == 0 and len(out.splitlines()) >= 2, err


def test_an_explicit_too_small_block_size_is_still_a_one_line_error(tmp_path):
    data = write_lines(tmp_path / "long.txt", long_items())
    code, _, err = call("train", "-i", data, "--model", "transformer", "-o", tmp_path / "r", "--block-size", "20",
                        *FEW_STEPS, *SMALL["transformer"])
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 1 and "Traceback" not in err and len(errors) == 1 and "--block-size 61" in errors[0]


def test_default_block_size_follows_the_data_only_where_it_is_a_position_table():
    items = ["a" * 40, "bb"]
    assert default_block_size("transformer", items) == 41
    assert default_block_size("transformer") == 16  # no data: the config's default (names.txt's)
    assert default_block_size("wavenet", items) == 8 and default_block_size("mlp", items) == 3  # a context, not a limit
    assert default_block_size("gru", items) is None


# ----------------------------------------------------------------------------- evaluation

def plain_nll(model, X, Y) -> float:
    """The mean NLL over every row, no grouping: what `evaluate` must equal."""
    model.eval()
    with torch.no_grad():
        logits, _ = model(X)
        log_p = F.log_softmax(logits.double(), dim=-1)
        if Y.dim() == 1:
            return -log_p[torch.arange(Y.shape[0]), Y.long()].mean().item()
        rows, cols = (Y >= 0).nonzero(as_tuple=True)
        return -log_p[rows, cols, Y[rows, cols].long()].mean().item()


@pytest.mark.parametrize("model", trainable_models())
def test_evaluation_by_distinct_contexts_equals_the_plain_mean(names_path, model):
    items = names_path.read_text().splitlines()[:1500]
    block_size = default_block_size(model, items)
    spec = MODELS[model]
    splits = make_splits(items, block_size, layout=spec.layout)
    torch.manual_seed(0)
    net = build_model(model, vocab_size=splits.vocab.size, **({} if block_size is None else {"block_size": block_size}))
    if hasattr(net, "fit"):
        net.fit(*[t.long() for t in splits.train])
    for part in (splits.train, splits.val):
        # small batches: several of them, contexts cut across batches; the same total as one plain pass
        assert evaluate(net, part, batch_size=97) == pytest.approx(plain_nll(net, *part), rel=1e-6, abs=1e-6)


def test_distinct_pairs_count_every_window_once():
    X = torch.tensor([[0, 1], [0, 1], [0, 1], [2, 3], [0, 1]], dtype=torch.int8)
    Y = torch.tensor([5, 5, 4, 1, 5], dtype=torch.int8)
    d = distinct_pairs(X, Y)
    assert d.contexts.tolist() == [[0, 1], [2, 3]]
    assert list(zip(d.context_of.tolist(), d.targets.tolist(), d.counts.tolist())) == [(0, 4, 1), (0, 5, 3), (1, 1, 1)]
    assert d.starts.tolist() == [0, 2, 3] and int(d.counts.sum()) == X.shape[0]


def test_wide_rows_fall_back_to_sorting_rows_with_the_same_result():
    """300 symbols x 9 positions do not fit one 64-bit key: the slower path must agree with the fast one."""
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 300, (2000, 8), generator=g)
    X[1000:] = X[:1000]  # repeats
    Y = torch.randint(0, 300, (2000,), generator=g)
    d = distinct_pairs(X, Y)
    assert int(d.counts.sum()) == 2000 and d.contexts.shape[0] == torch.unique(X, dim=0).shape[0]
    assert torch.equal(unique_rows(X)[0], torch.unique(X, dim=0))
    small = X[:, :3] % 20  # fits: the key path
    assert all(torch.equal(a, b) for a, b in zip(unique_rows(small), torch.unique(small, dim=0, return_inverse=True)))


def test_fast_encoding_equals_character_by_character_and_refuses_unknown_characters():
    items = ["añb", "中文", "😀x", "e\u0301"]
    vocab = Vocab.from_items(items)
    codes, lengths = encode_all(items, vocab)
    assert codes.tolist() == [i for it in items for i in vocab.encode(it)] and lengths.tolist() == [3, 2, 2, 2]
    unsorted = Vocab(("b", "a"))
    assert encode_all(["ab"], unsorted)[0].tolist() == [2, 1]
    X, Y = build_sequences(["ba"], unsorted)
    assert X.tolist() == [[0, 1, 2]] and Y.tolist() == [[1, 2, 0]]
    with pytest.raises(Exception, match="not in the model's vocabulary"):
        build_windows(["abc"], Vocab(("a", "b")), 3)


# ----------------------------------------------------------------------------- repeats

def test_duplicate_figures_and_drop_duplicates():
    items = [f"item{i}" for i in range(40)] + ["item1"] * 30
    kept, dropped = drop_duplicates(items)
    assert kept == [f"item{i}" for i in range(40)] and dropped == 30
    figures = duplicate_figures(items, seed=42)
    assert figures["distinct_items"] == 40 and figures["val_items_in_train"] > 0  # item1 is in both, 30 times over
    assert duplicate_figures(kept)["val_items_in_train"] == 0
    line = describe_duplicates({"name": "x", "items": 70, **figures})
    assert "70 items, 40 distinct" in line and "--dedupe" in line


def test_run_json_records_repeats_and_dedupe_keeps_the_split_for_later_commands(tmp_path, names_path):
    lines = names_path.read_text().splitlines()[:400]
    data = write_lines(tmp_path / "rep.txt", lines + lines[:100])  # 100 repeats
    for dedupe in (False, True):
        run = tmp_path / f"r{dedupe}"
        code, out, err = call("train", "-i", data, "--model", "bigram-counts", "-o", run, *(["--dedupe"] if dedupe else []))
        assert code == 0, err
        dataset = json.loads((run / "run.json").read_text())["dataset"]
        assert dataset["items"] == 500 and dataset["distinct_items"] == len(set(lines))
        if dedupe:
            assert dataset["duplicates_dropped"] == 500 - len(set(lines)) and dataset["val_items_in_train"] == 0
        else:
            assert "duplicates_dropped" not in dataset and dataset["val_items_in_train"] > 0
        trained = out.split()
        code, again, err = call("eval", run)  # the same split again: the same figures as training printed
        assert code == 0, err
        assert [float(x) for x in again.split()[1::2]] == pytest.approx([float(x) for x in trained[1::2]], abs=1e-4)


def test_evaluation_progress_stays_off_stderr_when_it_is_not_a_terminal(tmp_path, small_file):
    run = tmp_path / "r"
    assert call("train", "-i", small_file, "--model", "bigram-counts", "-o", run)[0] == 0
    code, _, err = call("eval", run)
    assert code == 0 and "evaluating" not in err and "\r" not in err
