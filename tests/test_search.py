"""`sample --most-likely N` (makemore.generation.search): the best-first search against brute-force enumeration of every item.

A tiny alphabet and a short maximum length make every possible item countable (3 characters, at most 5 of
them: 364 items); scoring them all with `score_items` and sorting is the answer the search must give.
Log-probabilities agree to 1e-5 (relative 1e-6 for the MLP's very unlikely items): both sum float32 log-softmax values in float64, from model calls of other shapes.
"""

import itertools
import json

import pytest
import torch

from makemore.data.items import Vocab
from makemore.errors import MakemoreError, ParameterError
from makemore.models import build_model
from makemore.training.pipeline import RunSpec, run
from makemore.generation.scoring import score_items
from .generating import most_likely
from makemore.training.loop import Recipe

from .conftest import call

VOCAB = Vocab(tuple("abc"))
ITEMS = sorted({"".join(p) for k in range(1, 5) for p in itertools.product("abc", repeat=k)})[:60]


def every_item(max_len: int) -> list[str]:
    return ["".join(p) for k in range(max_len + 1) for p in itertools.product("abc", repeat=k)]


@pytest.fixture(scope="module", params=["gru", "mlp", "transformer"])
def model(request):
    torch.manual_seed(0)
    config = {"transformer": {"n_embd": 16, "n_layer": 1, "n_head": 2, "block_size": 8}}.get(request.param, {})
    m = build_model(request.param, vocab_size=VOCAB.size, **config)
    with torch.no_grad():  # a peaked model, so that the ranking is far from uniform
        for p in m.parameters():
            p.mul_(8 if p.dim() > 1 else 1)
    return m.eval()


def brute_force(model, n, max_len, keep=lambda item: True):
    scores = [s for s in score_items(model, VOCAB, every_item(max_len)) if keep(s.item)]
    return sorted(scores, key=lambda s: -s.log_prob)[:n]


@pytest.mark.parametrize("n", [1, 10, 50])
def test_most_likely_is_the_top_of_every_item_scored(model, n):
    found = most_likely(model, VOCAB, n, max_len=5)
    expected = brute_force(model, n, 5)
    assert found.exact and [s.item for s in found.items] == [s.item for s in expected]
    assert [s.log_prob for s in found.items] == pytest.approx([s.log_prob for s in expected], rel=1e-6, abs=1e-5)
    assert found.expansions < len(every_item(5))  # pruned: far fewer prefixes than items


@pytest.mark.parametrize("settings, keep", [
    ({"prefix": "b"}, lambda it: it.startswith("b")),
    ({"min_len": 3}, lambda it: len(it) >= 3),
    ({"exclude": ["", "a", "ab", "ba", "cc"]}, lambda it: it not in {"", "a", "ab", "ba", "cc"}),
    ({"suffix": "ca", "prefix": "a"}, lambda it: it.endswith("ca") and it.startswith("a")),
    ({"contains": "bb", "min_len": 4}, lambda it: "bb" in it and len(it) >= 4),
])
def test_prefix_length_novelty_and_constraints_restrict_what_counts(model, settings, keep):
    found = most_likely(model, VOCAB, 8, max_len=5, **settings)
    expected = brute_force(model, 8, 5, keep)
    assert found.exact and [s.item for s in found.items] == [s.item for s in expected]
    assert [s.log_prob for s in found.items] == pytest.approx([s.log_prob for s in expected], rel=1e-6, abs=1e-5)


def test_fewer_items_than_asked_when_fewer_exist(model):
    found = most_likely(model, VOCAB, 100, max_len=2)
    assert found.exact and sorted(s.item for s in found.items) == sorted(every_item(2))  # 13 items in all


def test_a_spent_budget_returns_the_best_found_and_says_it_may_not_be_exact(model):
    found = most_likely(model, VOCAB, 20, max_len=5, max_expansions=3)
    assert not found.exact and found.expansions == 3 and 0 < len(found.items) <= 20
    true = {s.item: s.log_prob for s in score_items(model, VOCAB, [s.item for s in found.items])}
    assert [s.log_prob for s in found.items] == pytest.approx([true[s.item] for s in found.items], rel=1e-6, abs=1e-5)
    assert most_likely(model, VOCAB, 20, max_len=5, max_expansions=10_000).exact


def test_bad_values_name_the_parameter(model):
    with pytest.raises(ParameterError, match="^n must be between 1 and 100,000"):
        most_likely(model, VOCAB, 0, max_len=5)
    with pytest.raises(ParameterError, match="^max_expansions must be"):
        most_likely(model, VOCAB, 5, max_len=5, max_expansions=0)
    with pytest.raises(ParameterError, match="^suffix is empty"):
        most_likely(model, VOCAB, 5, max_len=5, suffix="")
    with pytest.raises(MakemoreError, match="'z'"):
        most_likely(model, VOCAB, 5, max_len=5, contains="az")


# ----------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("search")
    path = root / "items.txt"
    path.write_text("\n".join(ITEMS) + "\n")
    from makemore.data.builtin import sha256_of

    run(ITEMS, RunSpec(model="gru", recipe=Recipe(steps=30, batch_size=32, optimizer="adamw", lr=0.02)), root / "gru",
        extra_meta={"dataset": {"path": str(path), "sha256": sha256_of(path)}})
    return root / "gru"


def test_the_command_prints_the_items_highest_first_with_log_probs(run_dir):
    code, out, err = call("sample", run_dir, "--most-likely", "5", "--min-len", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["item", "log_prob"] and len(lines) == 6
    log_probs = [float(line.split()[1]) for line in lines[1:]]
    assert log_probs == sorted(log_probs, reverse=True) and all(len(line.split()[0]) >= 2 for line in lines[1:])
    payload = json.loads(call("sample", run_dir, "--most-likely", "5", "--min-len", "2", "--format", "json")[1])
    assert payload["exact"] is True and [r["item"] for r in payload["items"]] == [ln.split()[0] for ln in lines[1:]]
    novel = json.loads(call("sample", run_dir, "--most-likely", "5", "--novel", "--format", "json")[1])
    assert not {r["item"] for r in novel["items"]} & set(ITEMS)


def test_the_command_says_when_the_budget_ran_out(run_dir):
    code, out, err = call("sample", run_dir, "--most-likely", "30", "--max-expansions", "2", "--format", "json")
    assert code == 0 and "may not" not in out and "--max-expansions 2" in err and "not certainly" in err
    assert json.loads(out)["exact"] is False


@pytest.mark.parametrize("options", [["--temperature", "0.5"], ["--top-k", "3"], ["--top-p", "0.9"]])
def test_most_likely_with_sampling_controls_is_one_line_error(run_dir, options):
    code, out, err = call("sample", run_dir, "--most-likely", "5", *options)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"makemore: error: {options[0]} does not apply with --most-likely") and "--top-p" in err
