"""Names you can ship: avoid lists, exclusions, no repeats, one item per key, blends of labels, thresholds.

Exactness is checked as for the constraints (`test_constraints`): with 3 characters and items of at most
4, every item the sampler can make is listed with its exact probability, the ones that fail the rule are
dropped and the rest renormalised, and 20,000 draws must fit that distribution (chi-square, fixed seed).
A blend is checked the same way against the mixture of its labels' next-character distributions.
"""

import math
import random

import pytest
import torch

import makemore as mm
from makemore.data.items import Vocab
from makemore.data.labels import LabelSet, for_label
from makemore.errors import ParameterError
from makemore.generation import sampler
from makemore.generation.avoid import AvoidList
from makemore.generation.request import GenerateRequest, parse_blend
from makemore.generation.scoring import score_items
from makemore.models import build_model
from makemore.models.ensemble import Blend
from makemore.models.reading import next_logits

from .conftest import call
from .generating import generate, most_likely
from .test_constraints import VOCAB, exact_distribution


def opinionated(name: str, seed: int = 0, **config):
    """A small model far from uniform, whose next character depends on the whole prefix."""
    torch.manual_seed(seed)
    model = build_model(name, vocab_size=VOCAB.size, **config)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    return model.eval()


@pytest.fixture(scope="module")
def gru():
    return opinionated("gru", n_hidden=16, n_embd=8)


@pytest.fixture(scope="module")
def labelled():
    """A labelled gru of two labels, "x" (twice as many training items) and "y"."""
    model = opinionated("gru", seed=1, n_hidden=16, n_embd=8, n_labels=2)
    model.label_set = LabelSet(("x", "y"), (20, 10), (20, 10))
    return model


def fits(drawn, exact, keep=lambda item: True):
    """Whether the drawn items fit the exact distribution restricted to `keep` (chi-square, 6 standard deviations)."""
    kept = {item: p for item, p in exact.items() if keep(item) and p > 0}
    total, N = sum(kept.values()), len(drawn)
    counts = {}
    for s in drawn:
        counts[s.item] = counts.get(s.item, 0) + 1
    assert set(counts) <= set(kept), set(counts) - set(kept)
    chi2 = sum((counts.get(item, 0) - N * p / total) ** 2 / (N * p / total) for item, p in kept.items())
    dof = len(kept) - 1
    return chi2 < dof + 6 * math.sqrt(2 * dof)


# ----------------------------------------------------------------------------- avoid

def test_the_automaton_finds_exactly_the_items_that_contain_an_entry():
    """Against plain substring search on case-folded text, over random lists and texts (ß folds to ss)."""
    rng = random.Random(0)
    vocab = Vocab(tuple("abcAßs"))
    for _ in range(300):
        entries = ["".join(rng.choice("abcsA") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 8))]
        avoid = AvoidList.build(entries, vocab)
        for _ in range(40):
            text = "".join(rng.choice(vocab.chars) for _ in range(rng.randint(0, 9)))
            hit = any(e.casefold() in text.casefold() for e in entries)
            assert (avoid.state_after(vocab.encode(text)) == avoid.dead) == hit, (entries, text)
            assert (avoid.found_in(text) is not None) == hit


@pytest.mark.parametrize("max_len, controls, entries", [
    (4, {}, ("ab", "cc")),
    (4, {"temperature": 0.7, "min_len": 1}, ("a", "bc")),
    (4, {"prefix": "b", "suffix": "a"}, ("cb",)),
    (4, {"top_k": 2}, ("BA", "ca")),  # matched case-folded
])
def test_avoid_draws_follow_the_conditioned_distribution(gru, max_len, controls, entries):
    exact = exact_distribution(gru, max_len, **{k: v for k, v in controls.items() if k in ("prefix", "temperature",
                                                                                            "min_len")})
    if "top_k" in controls:  # the enumeration has no top-k: compare with the sampler's own unconstrained draws
        plain = generate(gru, VOCAB, 20_000, max_len=max_len, seed=5, **controls)
        allowed = {s.item for s in plain if not any(e.casefold() in s.item for e in entries)}
        drawn = generate(gru, VOCAB, 5_000, max_len=max_len, seed=1, avoid=entries, **controls)
        assert {s.item for s in drawn} <= allowed | {s.item for s in drawn if len(s.item) == max_len}
        return
    drawn = generate(gru, VOCAB, 20_000, max_len=max_len, seed=1, avoid=entries, **controls)
    suffix = controls.get("suffix", "")
    assert fits(drawn, exact, lambda it: it.endswith(suffix) and not any(e.casefold() in it for e in entries))


def test_avoid_gives_the_same_items_with_and_without_the_cache(gru):
    first = generate(gru, VOCAB, 500, max_len=8, seed=3, avoid=("ab", "ca"))
    for other in (generate(gru, VOCAB, 500, max_len=8, seed=3, avoid=("ab", "ca"), cache=False),):
        assert [s.item for s in other] == [s.item for s in first]
        assert [s.log_prob for s in other] == pytest.approx([s.log_prob for s in first], abs=1e-5)
    assert all("ab" not in s.item and "ca" not in s.item for s in first)
    scored = score_items(gru, VOCAB, [s.item for s in first if len(s.item) < 8])
    assert [s.log_prob for s in scored] == pytest.approx([s.log_prob for s in first if len(s.item) < 8], abs=1e-4)


def test_avoid_refuses_what_no_item_can_meet(gru):
    with pytest.raises(ParameterError, match=r"^avoid entry 'b' is in the prefix 'ab'"):
        generate(gru, VOCAB, 5, max_len=6, prefix="ab", avoid=("B",))
    with pytest.raises(ParameterError, match=r"^avoid leaves no possible item"):
        generate(gru, VOCAB, 5, max_len=6, avoid=("a", "b", "c"))
    with pytest.raises(ParameterError, match=r"^avoid leaves no possible item"):
        generate(gru, VOCAB, 5, max_len=6, min_len=3, avoid=("aa", "ab", "ac", "b", "c"))  # only "a" is left
    with pytest.raises(ParameterError, match=r"^avoid\[1\] is empty"):
        GenerateRequest(avoid=("a", "")).check()
    with pytest.raises(ParameterError, match=r"^avoid stood in the way: only \d+ of 500 items passed in \d+ draws"):
        generate(gru, VOCAB, 500, max_len=6, min_len=6, avoid=("aa", "bb", "cc", "ab", "bc", "ca"), max_draws=100)


def test_the_search_skips_items_with_an_entry_and_stays_exact(gru):
    """The most likely items that avoid every entry, against every item of at most 4 scored and sorted."""
    exact = exact_distribution(gru, 4)
    short = [item for item in exact if len(item) < 4]  # the search ranks the model's own probabilities
    scores = {s.item: s.log_prob for s in score_items(gru, VOCAB, short)}
    ranked = sorted((it for it in scores if "ab" not in it and "ca" not in it), key=lambda it: -scores[it])
    found = most_likely(gru, VOCAB, 6, max_len=3, avoid=("AB", "ca"))
    assert found.exact and [s.item for s in found.items] == ranked[:6]


# ----------------------------------------------------------------------------- exclude, unique, thresholds

def test_exclude_unique_and_novel(gru):
    common = [item for item, _ in sorted(exact_distribution(gru, 3).items(), key=lambda kv: -kv[1])[:3]]
    excluded = sampler.generate(gru, VOCAB, GenerateRequest(n=300, seed=2, max_len=6, exclude=tuple(common)))
    assert not {s.item for s in excluded} & set(common) and len({s.item for s in excluded}) < 300  # repeats allowed
    novel = generate(gru, VOCAB, 100, max_len=6, seed=2, exclude=tuple(common))  # a run's training items: novel
    assert not {s.item for s in novel} & set(common) and len({s.item for s in novel}) == 100
    distinct = generate(gru, VOCAB, 60, max_len=6, seed=2, unique=True)
    assert len({s.item for s in distinct}) == 60
    with pytest.raises(ParameterError, match=r"^unique stood in the way: only 3 distinct items were found"):
        generate(gru, VOCAB, 4, max_len=1, seed=0, unique=True, min_len=1)  # "a", "b", "c": 3 items at most


def test_thresholds_keep_only_likely_items_from_the_conditioned_distribution(gru):
    exact = exact_distribution(gru, 4)
    cut = sorted(exact.values())[-12]  # the 12 most likely items pass (none reaches max_len)
    keep = [it for it, p in exact.items() if p >= cut]
    assert all(len(it) < 4 for it in keep)
    drawn = generate(gru, VOCAB, 20_000, max_len=4, seed=1, min_log_prob=math.log(cut) - 1e-9)
    assert fits(drawn, exact, lambda it: it in keep)
    plain = generate(gru, VOCAB, 2000, max_len=6, seed=1)
    bar = sorted(-s.log_prob / (len(s.item) + 1) for s in plain)[600]  # about 30% of the items pass
    per_char = generate(gru, VOCAB, 200, max_len=6, seed=1, max_nll_per_char=bar)
    assert len(per_char) == 200 and all(-s.log_prob / (len(s.item) + 1) <= bar for s in per_char)


# ----------------------------------------------------------------------------- keys

def test_a_keys_item_depends_on_the_key_alone(gru):
    keys = [f"k{i}" for i in range(300)]
    whole = {s.key: s.item for s in generate(gru, VOCAB, 1, max_len=8, keys=tuple(keys))}
    assert [s.key for s in generate(gru, VOCAB, 1, max_len=8, keys=tuple(keys))] == keys  # in the order given
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    for subset, batch_size in ((shuffled, 7), (shuffled[:40], 4096), (["k7"], 1)):
        got = generate(gru, VOCAB, 99, max_len=8, keys=tuple(subset), batch_size=batch_size, cache=batch_size != 7)
        assert {s.key: s.item for s in got} == {k: whole[k] for k in subset}
    other_seed = generate(gru, VOCAB, 1, max_len=8, seed=1, keys=tuple(keys))
    assert sum(s.item != whole[s.key] for s in other_seed) > 100  # the seed is part of the stream


def test_keyed_items_follow_the_samplers_distribution(gru):
    """Each key's first attempt is one draw from the sampler: over 20,000 keys, the exact distribution."""
    exact = exact_distribution(gru, 4, temperature=0.8)
    drawn = generate(gru, VOCAB, 1, max_len=4, temperature=0.8, keys=tuple(map(str, range(20_000))))
    assert fits(drawn, exact)
    avoided = generate(gru, VOCAB, 1, max_len=4, temperature=0.8, avoid=("b",), keys=tuple(map(str, range(5_000))))
    assert fits(avoided, exact, lambda it: "b" not in it)


def test_unique_keys_resolve_collisions_in_code_point_order(gru):
    keys = tuple(f"key{i}" for i in range(40))
    plain = {s.key: s.item for s in generate(gru, VOCAB, 1, max_len=3, keys=keys)}
    unique = generate(gru, VOCAB, 1, max_len=3, keys=keys, unique=True)
    assert len({s.item for s in unique}) == 40 and len(set(plain.values())) < 40  # there were collisions
    again = generate(gru, VOCAB, 1, max_len=3, keys=tuple(reversed(keys)), unique=True, batch_size=5)
    assert {s.key: s.item for s in again} == {s.key: s.item for s in unique}
    first = sorted(keys)[0]  # the first key in code-point order always keeps its own first item
    assert {s.key: s.item for s in unique}[first] == plain[first]


def test_labelled_keys_and_refusals(labelled):
    vocab = VOCAB
    keys = tuple(f"p{i}" for i in range(200))
    drawn = generate(labelled, vocab, 1, max_len=8, keys=keys)
    assert {s.label for s in drawn} == {"x", "y"}
    assert {(s.key, s.item, s.label) for s in generate(labelled, vocab, 1, max_len=8, keys=keys[::-1])} == {
        (s.key, s.item, s.label) for s in drawn}
    with pytest.raises(ParameterError, match=r"^keys\[2\] 'a' was already given as keys\[0\]"):
        GenerateRequest(keys=("a", "b", "a")).check()
    with pytest.raises(ParameterError, match=r"^keys\[1\] is empty"):
        GenerateRequest(keys=("a", "")).check()
    with pytest.raises(ParameterError, match=r"^keys do not apply with most_likely"):
        GenerateRequest(keys=("a",), most_likely=3).check()


# ----------------------------------------------------------------------------- blend

def test_a_blend_is_the_weighted_mixture_of_its_labels(labelled):
    blend = Blend(labelled, [0, 1], [3.0, 1.0])
    seqs = torch.tensor([[0, 1, 2], [0, 3, 3], [0, 2, 1]])
    mixed = torch.softmax(next_logits(blend, seqs).double(), -1)
    parts = [torch.softmax(next_logits(for_label(labelled, k), seqs).double(), -1) for k in (0, 1)]
    assert torch.allclose(mixed, 0.75 * parts[0] + 0.25 * parts[1], atol=1e-6)
    exact = exact_distribution(blend, 3)
    assert fits(generate(blend, VOCAB, 20_000, max_len=3, seed=2), exact)


def test_blend_through_the_run_samples_scores_and_searches_alike(labelled):
    run = mm.Run(labelled, VOCAB, {"model": "gru", "config": {}, "max_item_len": 4})
    out = run.generate(GenerateRequest(n=30, seed=1, max_len=8, blend=(("x", 1.0), ("y", 1.0))))
    ended = [s for s in out.items if len(s.item) < 8]
    scores = run.score([s.item for s in ended], blend={"x": 1.0, "y": 1.0}).items
    assert [s.log_prob for s in scores] == pytest.approx([s.log_prob for s in ended], abs=1e-4)
    best = run.generate(GenerateRequest(most_likely=4, max_len=3, blend=(("x", 0.5), ("y", 0.5))))
    everything = [it for it in exact_distribution(Blend(labelled, [0, 1], [0.5, 0.5]), 3) if len(it) < 3]
    by_score = {s.item: s.log_prob for s in run.score(everything, blend={"x": 0.5, "y": 0.5}).items}
    assert [s.item for s in best.items] == sorted(by_score, key=lambda it: -by_score[it])[:4]
    assert run.next("a", blend={"x": 0.5, "y": 0.5}).label == "x=0.5,y=0.5"


@pytest.mark.parametrize("blend, label, message", [
    ((("z", 1.0),), None, r"^blend names 'z', which this run does not have"),
    ((("x", 0.0), ("y", 0.0)), None, r"^blend weights add up to 0"),
    ((("x", -1.0), ("y", 2.0)), None, r"^blend weight of 'x' is -1.0"),
    ((("x", 1.0), ("x", 2.0)), None, r"^blend names the label 'x' twice"),
    ((("x", 1.0),), "y", r"^blend and label both choose"),
])
def test_blend_refusals(labelled, blend, label, message):
    run = mm.Run(labelled, VOCAB, {"model": "gru", "config": {}, "max_item_len": 4})
    with pytest.raises(ParameterError, match=message):
        run.generate(GenerateRequest(n=3, blend=blend, label=label))


def test_blend_needs_a_labelled_run_and_parses_label_weight_pairs(gru):
    run = mm.Run(gru, VOCAB, {"model": "gru", "config": {}, "max_item_len": 4})
    with pytest.raises(ParameterError, match=r"^blend needs a labelled run"):
        run.generate(GenerateRequest(n=3, blend=(("x", 1.0),)))
    assert parse_blend("girls=0.5, boys=1.5") == (("girls", 0.5), ("boys", 1.5))
    assert parse_blend("a=b=1") == (("a=b", 1.0),)
    for bad in ("girls", "girls=", "=1", "girls=lots"):
        with pytest.raises(ParameterError, match=r"^blend .* is not LABEL=WEIGHT"):
            parse_blend(bad)


# ----------------------------------------------------------------------------- the command line

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A tiny bigram run on a list with a few items, trained through the command line."""
    folder = tmp_path_factory.mktemp("ship")
    items = folder / "items.txt"
    items.write_text("\n".join(["anna", "bob", "cara", "dan", "ella", "finn", "gus", "hana", "ivan", "jo"] * 5) + "\n")
    code, _, err = call("train", "-i", str(items), "--model", "bigram-counts", "-o", str(folder / "run"))
    assert code == 0, err
    return folder


def test_the_command_line_takes_files_and_strings(cli_run):
    avoid = cli_run / "avoid.txt"
    avoid.write_text("AN\n\n  na  \n")
    taken = cli_run / "taken.txt"
    taken.write_text("bob\njo\n")
    code, out, err = call("sample", str(cli_run / "run"), "-n", "200", "--avoid", str(avoid), "--avoid", "x",
                          "--exclude", str(taken), "--seed", "4")
    items = out.splitlines()
    assert code == 0 and len(items) == 200, err
    assert not any("an" in it or "na" in it or "x" in it for it in items) and not {"bob", "jo"} & set(items)
    keys = cli_run / "keys.txt"
    keys.write_text("planet-1\nplanet-2\nplanet-3\n")
    code, out, _ = call("sample", str(cli_run / "run"), "--keys", str(keys), "--key", "moon", "--unique")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [k for k, _ in rows] == ["planet-1", "planet-2", "planet-3", "moon"]
    assert len({it for _, it in rows}) == 4
    code, out2, _ = call("sample", str(cli_run / "run"), "--key", "planet-2", "--key", "moon", "--unique",
                         "--format", "csv")
    assert out2.splitlines()[0] == "key,item,log_prob" and out2.splitlines()[1].split(",")[:2] == rows[1]


@pytest.mark.parametrize("args, message", [
    (("--avoid", ""), "--avoid 1 is empty"),
    (("--avoid", "missing.txt"), "--avoid missing.txt: no such file"),
    (("--key", "a", "--key", "a"), "--key 2 'a' was already given as --key 1"),
    (("--blend", "a=1"), "--blend needs a labelled run"),
    (("--min-log-prob", "1"), "--min-log-prob: must be at most 0"),
    (("--key", "a", "--most-likely", "3"), "--key"),
    (("--avoid", "a", "--avoid", "b", "--avoid", "c", "--avoid", "d", "--avoid", "e", "--avoid", "f", "--avoid", "g",
      "--avoid", "h", "--avoid", "i", "--avoid", "j", "--avoid", "l", "--avoid", "n", "--avoid", "o", "--avoid", "r",
      "--avoid", "s", "--avoid", "u", "--avoid", "v"), "--avoid leaves no possible item"),
])
def test_the_command_line_refuses_in_one_line(cli_run, args, message):
    code, out, err = call("sample", str(cli_run / "run"), *args)
    assert code in (1, 2) and out == "" and message in err and len(err.strip().splitlines()) == 1, err
    assert code == 1 or args[0] == "--min-log-prob"  # argparse's own type check exits 2
