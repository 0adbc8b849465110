"""`--suffix` and `--contains` (makemore.generation.constraints): the sampler's distribution conditioned on the constraint.

Checked by exact enumeration: with 3 characters and items of at most 3 or 4, every item the sampler can make is
listed with its exact probability (the controlled softmax at each step, the end forced at max_len), the
ones that fail the constraint are dropped and the rest renormalised; 20,000 constrained draws must fit that
distribution (chi-square, fixed seed). The probability estimate behind the "too unlikely" error is checked
against a bigram model's exact value (a linear system) and against counting.
"""

import itertools
import math
import re

import pytest
import torch

from makemore.generation.constraints import Constraint, estimate_probability, shortest_length
from makemore.models.reading import next_logits
from makemore.data.items import BOUNDARY, Vocab, build_windows
from makemore.errors import MakemoreError, ParameterError
from makemore.models import build_model
from makemore.training.pipeline import RunSpec, run
from makemore.generation.sampler import encode_prefix, sample_indices

from .generating import generate, most_likely
from makemore.training.loop import Recipe

from .conftest import call

VOCAB = Vocab(tuple("abc"))


@pytest.fixture(scope="module")
def gru():
    torch.manual_seed(0)
    model = build_model("gru", vocab_size=VOCAB.size, n_hidden=16, n_embd=8)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # a model with opinions: far from uniform, and dependent on the whole prefix
    return model.eval()


def exact_distribution(model, max_len, prefix="", temperature=1.0, min_len=0):
    """Every item the sampler can produce, with its exact probability under the sampler."""
    probs = {}
    for length in range(len(prefix), max_len + 1):
        for rest in itertools.product("abc", repeat=length - len(prefix)):
            item = prefix + "".join(rest)
            codes = [BOUNDARY, *VOCAB.encode(item)]
            p = 1.0
            for t in range(len(prefix), length + 1):  # the draws: each character after the prefix, then the end
                if t == max_len:
                    break  # ended there by the length bound, whatever the model says
                with torch.no_grad():
                    z = next_logits(model, torch.tensor([codes[:t + 1]])).float()[0] / temperature
                if t < min_len:
                    z[BOUNDARY] = float("-inf")
                d = torch.softmax(z, dim=-1).double()
                p *= float(d[codes[t + 1]] if t < length else d[BOUNDARY])
            probs[item] = p
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    return probs


@pytest.mark.parametrize("max_len, controls, constraint", [
    (3, {}, Constraint(suffix="b")),
    (3, {"temperature": 0.8, "min_len": 2}, Constraint(suffix="ca")),
    (4, {"prefix": "a"}, Constraint(contains="cb")),
    (4, {}, Constraint(suffix="a", contains="b")),
])
def test_the_draws_follow_the_conditioned_distribution(gru, max_len, controls, constraint):
    exact = exact_distribution(gru, max_len, **controls)
    kept = {item: p for item, p in exact.items() if constraint.holds(item)}
    total = sum(kept.values())
    N = 20_000
    drawn = generate(gru, VOCAB, N, max_len=max_len, seed=1, suffix=constraint.suffix, contains=constraint.contains,
                     **controls)
    counts = {}
    for s in drawn:
        counts[s.item] = counts.get(s.item, 0) + 1
    assert set(counts) <= set(kept)  # every item satisfies the constraint (and can be made at all)
    chi2 = sum((counts.get(item, 0) - N * p / total) ** 2 / (N * p / total) for item, p in kept.items())
    dof = len(kept) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof), (chi2, dof)


def test_same_seed_same_constrained_items_and_log_probs_are_the_models(gru):
    first = generate(gru, VOCAB, 50, max_len=6, seed=4, suffix="ab", prefix="c")
    assert first == generate(gru, VOCAB, 50, max_len=6, seed=4, suffix="ab", prefix="c")
    assert all(s.item.startswith("c") and s.item.endswith("ab") for s in first)
    from makemore.generation.scoring import score_items

    ended = [s for s in first if len(s.item) < 6]
    assert [s.log_prob for s in score_items(gru, VOCAB, [s.item for s in ended])] == pytest.approx(
        [s.log_prob for s in ended], abs=1e-4)
    novel = generate(gru, VOCAB, 10, max_len=6, seed=4, contains="bc", exclude=["bc", "abc"])
    assert len({s.item for s in novel}) == 10 and not {s.item for s in novel} & {"bc", "abc"}


def test_the_python_api_has_the_constraints_and_the_search(gru):
    import makemore as mm

    run = mm.Run(gru, VOCAB, {"model": "gru", "config": {}, "max_item_len": 4})
    items = run.generate(mm.GenerateRequest(n=5, max_len=8, seed=0, suffix="ab", contains="c")).items
    assert len(items) == 5 and all(s.item.endswith("ab") and "c" in s.item for s in items)
    assert items == generate(gru, VOCAB, 5, max_len=8, seed=0, suffix="ab", contains="c")
    best = run.generate(mm.GenerateRequest(most_likely=3, max_len=8, suffix="ab"))
    assert best.exact and [s.item[-2:] for s in best.items] == ["ab"] * 3
    assert best.items == most_likely(gru, VOCAB, 3, max_len=8, suffix="ab").items
    assert mm.Constraint(suffix="ab").holds("cab") and not mm.Constraint(suffix="ab").holds("abc")


def bigram(items):
    model = build_model("bigram-counts", vocab_size=VOCAB.size)
    model.fit(*build_windows(items, VOCAB, 1))
    return model.eval()


def test_the_estimate_matches_a_bigram_models_exact_probability():
    model = bigram(["ab", "abc", "ba", "cab", "ccb", "a", "bcab", "cca"])
    with torch.no_grad():
        P = torch.softmax(model(torch.arange(VOCAB.size)[:, None])[0].double(), dim=-1)  # p(next | previous)
    T, end = P[1:, 1:], P[1:, 0]  # among characters; ending after each
    visits = P[0, 1:] @ torch.linalg.inv(torch.eye(3, dtype=torch.float64) - T)  # expected visits to each character
    a, b = 0, 1  # the characters' rows in T
    exact_suffix = float(visits[a] * T[a, b] * end[b])  # ...ab then the end
    walks = sample_indices(model, 2000, 60, torch.Generator().manual_seed(0))
    estimate = estimate_probability(model, VOCAB, "", Constraint(suffix="ab"), walks)
    assert estimate == pytest.approx(exact_suffix, rel=0.05)
    # contains, and with a prefix: against counting 100,000 items
    for prefix, constraint in (("", Constraint(contains="ca")), ("c", Constraint(contains="ab")),
                               ("ba", Constraint(suffix="ab"))):
        walks = sample_indices(model, 2000, 60, torch.Generator().manual_seed(1), prefix=encode_prefix(VOCAB, prefix))
        estimate = estimate_probability(model, VOCAB, prefix, constraint, walks)
        counted = [s.item for s in generate(model, VOCAB, 100_000, max_len=60, seed=2, prefix=prefix)]
        share = sum(constraint.holds(item) for item in counted) / len(counted)
        assert estimate == pytest.approx(share, rel=0.05), (prefix, constraint)


def test_too_unlikely_is_one_error_with_the_probability(gru):
    with pytest.raises(ParameterError) as e:
        generate(gru, VOCAB, 5, max_len=12, seed=0, suffix="cccccccc", max_draws=20_000)
    message = str(e.value)
    assert "\n" not in message and message.startswith("suffix 'cccccccc' is too unlikely under the model")
    assert re.search(r"none of [\d,]+ draws satisfied it, and the model gives it a probability of about", message)
    with pytest.raises(ParameterError, match="^contains"):
        generate(gru, VOCAB, 5, max_len=12, seed=0, contains="cccccccc", max_draws=20_000)


def test_bad_constraints_are_refused_naming_the_parameter(gru):
    with pytest.raises(ParameterError, match="^suffix is empty"):
        generate(gru, VOCAB, 5, max_len=5, suffix="")
    with pytest.raises(ParameterError, match="^contains is empty"):
        generate(gru, VOCAB, 5, max_len=5, contains="")
    with pytest.raises(MakemoreError, match="suffix contains character.* 'z'"):
        generate(gru, VOCAB, 5, max_len=5, suffix="az")
    with pytest.raises(ParameterError, match="^max_len \\(4\\) leaves no room"):
        generate(gru, VOCAB, 5, max_len=4, prefix="ab", suffix="cba")
    assert generate(gru, VOCAB, 3, max_len=4, prefix="ab", suffix="bca", seed=0)[0].item == "abca"  # overlapping


@pytest.mark.parametrize("prefix, suffix, contains, min_len, shortest", [
    ("ab", "bc", None, 0, 3), ("ab", "cd", None, 0, 4), ("", "abc", "b", 0, 3), ("a", "c", "bb", 0, 4),
    ("ab", "ab", None, 0, 2), ("aa", None, "aaa", 0, 3), ("ab", "ba", None, 0, 3), ("ab", "ba", None, 4, 4),
])
def test_shortest_length_that_fits(prefix, suffix, contains, min_len, shortest):
    assert shortest_length(prefix, Constraint(suffix, contains), min_len) == shortest
    assert shortest_length(prefix, Constraint(suffix, contains), min_len, shortest - 1) is None


# ----------------------------------------------------------------------------- the command

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    items = sorted({"".join(p) for k in range(2, 6) for p in itertools.product("abc", repeat=k)})[::3]
    root = tmp_path_factory.mktemp("constraints")
    run(items, RunSpec(model="lstm", recipe=Recipe(steps=20, batch_size=32, optimizer="adamw", lr=0.02)), root / "r")
    return root / "r"


def test_the_command_combines_constraints_prefix_and_lengths(run_dir):
    code, out, err = call("sample", run_dir, "-n", "40", "--prefix", "a", "--suffix", "ca", "--contains", "bb",
                          "--min-len", "6", "--max-len", "9", "--seed", "2")
    assert code == 0, err
    items = out.splitlines()
    assert len(items) == 40 and all(it.startswith("a") and it.endswith("ca") and "bb" in it and 6 <= len(it) <= 9
                                    for it in items)
    again = call("sample", run_dir, "-n", "40", "--prefix", "a", "--suffix", "ca", "--contains", "bb",
                 "--min-len", "6", "--max-len", "9", "--seed", "2")[1]
    assert again == out


@pytest.mark.parametrize("options, words", [
    (["--suffix", ""], "--suffix is empty"),
    (["--contains", ""], "--contains is empty"),
    (["--suffix", "aQ"], "'Q'"),
    (["--contains", "xé"], "'é'"),
    (["--suffix", "abcabc", "--max-len", "4"], "--max-len (4) leaves no room"),
    (["--suffix", "cccccccccccc", "-n", "3", "--max-len", "30"], "too unlikely"),
])
def test_bad_constraints_on_the_command_line_are_one_line(run_dir, options, words):
    code, out, err = call("sample", run_dir, *options)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and words in err, err
