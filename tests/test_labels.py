"""Labels: one model over several lists, sampled, scored and classified by label.

- Every registered model trains on two labelled files, then samples, scores and classifies by label
  from the command line; `eval` prints each label's NLL and the classification beside the majority.
- An unlabelled model is the one-label case: the same parameters and state-dict keys as before labels
  existed, and the same numbers.
- A labelled index (label * V + character) and the labelled view of a model (`WithLabel`) give the
  same logits; cached and uncached decoding give the same items for a label.
- The count models back off to the other labels' counts; both give distributions that sum to one.
- Bayes' rule: the posteriors are p(label) p(item | label), normalised, computed by hand here.
- The split is stratified, and one label's split is the unlabelled split.
"""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from makemore.training.run_folder import load_run
from makemore.generation.classify import classify_items, macro_f1, score_labelled
from makemore.data.items import Vocab, make_splits, split_items, split_labelled
from makemore.data.labels import LabelSet, WithLabel
from makemore.models import MODELS, build_model, trainable_models
from .generating import generate

from .conftest import call, write_lines
from .test_scale import FEW_STEPS, SMALL


def two_lists(n: int = 60) -> tuple[list[str], list[str]]:
    """Two lists that differ in their letters and endings: "girls" end in a, "boys" in o."""
    rng = random.Random(3)
    girls = ["".join(rng.choice("aeilns") for _ in range(rng.randint(2, 6))) + "a" for _ in range(n)]
    boys = ["".join(rng.choice("bdkmnor") for _ in range(rng.randint(2, 6))) + "o" for _ in range(n)]
    return girls, boys


@pytest.fixture
def labelled_files(tmp_path):
    girls, boys = two_lists()
    return write_lines(tmp_path / "girls.txt", girls), write_lines(tmp_path / "boys.txt", boys)


@pytest.mark.parametrize("model", trainable_models())
def test_every_model_trains_samples_scores_and_classifies_by_label(tmp_path, labelled_files, model):
    girls, boys = labelled_files
    run = tmp_path / "run"
    code, _, err = call("train", "-i", girls, "-i", f"lads={boys}", "--model", model, "-o", run, *FEW_STEPS,
                        *SMALL.get(model, []))
    assert code == 0, err
    meta = json.loads((run / "run.json").read_text())
    assert [(e["name"], e["items"], e["files"]) for e in meta["labels"]] == [("girls", 60, [str(girls)]),
                                                                            ("lads", 60, [str(boys)])]
    assert meta["config"]["n_labels"] == 2 and [e["train_items"] for e in meta["labels"]] == [48, 48]
    code, out, err = call("sample", run, "-n", "6", "--label", "lads", "--format", "json", "--seed", "1")
    assert code == 0, err
    assert {row["label"] for row in json.loads(out)["items"]} == {"lads"}
    code, out, err = call("score", run, "--label", "girls", "ana")
    assert code == 0 and out.splitlines()[1].split()[0] == "ana", err
    code, out, err = call("classify", run, "ana", "bob", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["items"]
    assert [r["item"] for r in rows] == ["ana", "bob"]
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-9 and r["label"] in ("girls", "lads") for r in rows)
    code, out, err = call("eval", run)
    assert code == 0 and "majority label (girls)" in out and "lads" in out, err


def test_an_unlabelled_model_is_the_one_label_case_with_nothing_added():
    for name in trainable_models():
        plain, one = build_model(name), build_model(name, n_labels=1)
        assert list(plain.state_dict()) == list(one.state_dict())
        assert "label" not in " ".join(plain.state_dict())  # no new key: runs saved before labels still load
        assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in one.parameters())
        two = build_model(name, n_labels=2)
        if getattr(two, "trainable", True):  # a learned label vector beside the one-label model's parameters
            assert sum(p.numel() for p in two.parameters()) > sum(p.numel() for p in one.parameters())


@pytest.mark.parametrize("model", [m for m in MODELS if getattr(MODELS[m].model_cls, "trainable", True)])
def test_a_labelled_index_and_the_labelled_view_agree(model):
    torch.manual_seed(0)
    net = build_model(model, vocab_size=7, n_labels=3, **({"block_size": 8} if model == "transformer" else {}))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # label vectors start at zero: make them matter
    net.eval()
    layout = MODELS[model].layout
    idx = torch.randint(1, 7, (4, 8 if layout == "sequence" else net.config.block_size))
    if layout == "sequence":
        idx[:, 0] = 0
    for label in range(3):
        direct = net(idx + label * 7)[0]
        viewed = WithLabel(net, label)(idx)[0]
        torch.testing.assert_close(direct, viewed, rtol=0, atol=0)
    assert not torch.allclose(net(idx + 7)[0], net(idx + 14)[0])  # the label changes the prediction


@pytest.mark.parametrize("model", ["rnn", "gru", "lstm", "transformer", "wavenet-conv"])
def test_cached_and_uncached_decoding_give_the_same_items_for_a_label(model):
    torch.manual_seed(0)
    net = build_model(model, vocab_size=6, n_labels=2, **({"block_size": 12} if model == "transformer" else {}))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    net.eval().double()
    vocab = Vocab(tuple("abcde"))
    view = WithLabel(net, 1)
    cached = generate(view, vocab, 20, max_len=10, seed=4, cache=True)
    plain = generate(view, vocab, 20, max_len=10, seed=4, cache=False)
    assert [s.item for s in cached] == [s.item for s in plain]
    other = generate(WithLabel(net, 0), vocab, 20, max_len=10, seed=4)
    assert [s.item for s in other] != [s.item for s in cached]


def test_bigram_counts_back_off_to_the_other_labels_and_keep_plus_one_smoothing_alone():
    V = 4
    net = build_model("bigram-counts", vocab_size=V, n_labels=2)
    # label 0 saw 1 -> 2 ten times; label 1 never saw character 1 at all
    x = torch.tensor([[1]] * 10 + [[2 + V]] * 5)
    y = torch.tensor([2] * 10 + [3] * 5)
    net.fit(x, y)
    P = net.probs().double()
    torch.testing.assert_close(P.sum(dim=1), torch.ones(2 * V, dtype=torch.float64))
    others = (torch.tensor([0, 0, 10, 0.0], dtype=torch.float64) + 1) / (10 + V)  # label 1's prior for row 1: label 0's counts, +1 smoothed
    torch.testing.assert_close(P[V + 1], others, rtol=1e-6, atol=0)  # no counts of its own: the others' distribution
    plain = build_model("bigram-counts", vocab_size=V)
    plain.fit(x[:10], y[:10])
    expected = (plain.counts.double() + 1) / (plain.counts.double() + 1).sum(dim=1, keepdim=True)
    torch.testing.assert_close(plain.probs().double(), expected, rtol=1e-6, atol=0)


def test_ngram_with_labels_sums_to_one_and_backs_off_to_the_pooled_model():
    vocab = Vocab(tuple("abc"))
    items = ["ab", "abc", "ca", "bb", "aca"] * 3
    splits = make_splits(items + items, 3, labels=[0] * 15 + [1] * 15)
    net = build_model("ngram", vocab_size=4, block_size=3, n_labels=3)
    net.fit(*splits.train)
    ctx = torch.tensor([[0, 1, 2], [0, 0, 1]])
    for label in range(3):
        p = net.probs(ctx + label * 4)
        torch.testing.assert_close(p.sum(dim=1), torch.ones(2, dtype=torch.float64))
    pooled = build_model("ngram", vocab_size=4, block_size=3)
    pooled.fit(splits.train[0] % 4, splits.train[1])
    torch.testing.assert_close(net.probs(ctx + 2 * 4), pooled.probs(ctx))  # label 2 has no data: the pooled model
    assert vocab.size == 4


def test_classify_is_bayes_rule_over_the_training_priors(tmp_path):
    girls, boys = two_lists(40)
    items = girls + boys[:20]
    labels = [0] * 40 + [1] * 20
    splits = make_splits(items, 1, labels=labels)
    net = build_model("bigram-counts", vocab_size=splits.vocab.size, n_labels=2)
    net.fit(*splits.train)
    label_set = LabelSet(("g", "b"), (40, 20), (32, 16))
    got = classify_items(net, splits.vocab, ["ana", "bo"], label_set)
    P = net.probs().double()
    for result in got:
        codes = [0, *splits.vocab.encode(result.item), 0]
        joint = [math.log(prior) + sum(math.log(P[k * splits.vocab.size + a, b]) for a, b in zip(codes, codes[1:]))
                 for k, prior in enumerate((32 / 48, 16 / 48))]
        norm = math.log(sum(math.exp(j) for j in joint))
        assert result.probs == pytest.approx({"g": math.exp(joint[0] - norm), "b": math.exp(joint[1] - norm)}, rel=1e-5)
        whole = score_labelled(net, splits.vocab, [result.item], label_set)[0].log_prob
        assert whole == pytest.approx(norm, rel=1e-6)  # unlabelled score of a labelled run: the mixture
    assert [r.label for r in got] == ["g", "b"]


def test_the_split_is_stratified_and_one_label_is_the_plain_split():
    items = [f"item{i}" for i in range(50)]
    assert split_labelled(items, None, 7) == split_labelled(items, [0] * 50, 7)
    assert [p[0] for p in split_labelled(items, [0] * 50, 7)] == list(split_items(items, 7))
    labels = [0] * 30 + [1] * 20
    parts = split_labelled(items, labels, 7)
    assert [p[1].count(1) for p in parts] == [16, 2, 2] and [p[1].count(0) for p in parts] == [24, 3, 3]
    assert parts[0][0][24:] == split_items(items[30:], 7)[0]  # label 1's own shuffle


def test_macro_f1_against_a_hand_count():
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert macro_f1([0, 0, 0], [0, 0, 0], 2) == pytest.approx(0.5)  # a label never true nor predicted scores 0


def test_a_csv_with_a_label_column_trains_and_records_its_columns(tmp_path):
    girls, boys = two_lists(30)
    rows = ["name,sex"] + [f"{g},F" for g in girls] + [f"{b},M" for b in boys] + [",F"]
    table = write_lines(tmp_path / "names.csv", rows)
    run = tmp_path / "run"
    code, _, err = call("train", "-i", table, "--item-column", "name", "--label-column", "sex", "--model", "bigram-counts",
                        "-o", run, "--no-plot")
    assert code == 0, err
    meta = json.loads((run / "run.json").read_text())
    assert [e["name"] for e in meta["labels"]] == ["F", "M"] and meta["dataset"]["skipped_empty"] == 1
    code, out, err = call("eval", run, "--json")
    assert code == 0 and set(json.loads(out)["labels"]["nll"]) == {"F", "M"}, err
    model, _, _ = load_run(run)
    assert model.label_set.names == ("F", "M")


@pytest.mark.parametrize("argv, message", [
    (["sample", "{run}", "--label", "elf"], "--label 'elf' is not a label of this run; its labels are: girls, boys"),
    (["score", "{plain}", "--label", "girls", "ana"], "--label was given, but this run has no labels"),
    (["classify", "{plain}", "ana"], "has no labels"),
    (["next", "{run}", "a"], "--label is needed for next on a labelled run: one of"),
    (["sample", "{run}", "--most-likely", "3"], "--label must name one label with --most-likely on a labelled run"),
])
def test_label_mistakes_are_one_line_errors(tmp_path, labelled_files, argv, message):
    girls, boys = labelled_files
    run, plain = tmp_path / "run", tmp_path / "plain"
    assert call("train", "-i", girls, "-i", boys, "--model", "bigram-counts", "-o", run, "--no-plot")[0] == 0
    assert call("train", "-i", girls, "--model", "bigram-counts", "-o", plain, "--no-plot")[0] == 0
    code, out, err = call(*[a.format(run=run, plain=plain) for a in argv])
    assert code == 1 and out == "" and message in err and len(err.strip().splitlines()) == 1, err


def test_too_small_and_duplicate_labels_are_refused(tmp_path):
    girls, _ = two_lists()
    big = write_lines(tmp_path / "girls.txt", girls)
    small = write_lines(tmp_path / "elves.txt", ["ael", "ith"])
    code, _, err = call("train", "-i", big, "-i", small, "-o", tmp_path / "r", "--no-plot")
    assert code == 1 and "elves (2)" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "b").mkdir()
    same = write_lines(tmp_path / "b" / "girls.txt", girls)
    code, _, err = call("train", "-i", big, "-i", same, "-o", tmp_path / "r", "--no-plot")
    assert code == 1 and "LABEL=PATH" in err and len(err.strip().splitlines()) == 1


def test_the_api_samples_scores_and_continues_by_label(tmp_path, labelled_files):
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from fastapi.testclient import TestClient

    from makemore.serve.app import create_app
    from makemore.serve.catalog import load_catalog

    girls, boys = labelled_files
    assert call("train", "-i", girls, "-i", boys, "--model", "bigram-counts", "-o", tmp_path / "runs" / "styles",
                "--no-plot")[0] == 0
    catalog = load_catalog([tmp_path / "runs"], {})
    (run_id,) = catalog.runs
    with TestClient(create_app(catalog), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        assert client.get("/api/runs").json()["runs"][0]["labels"] == ["girls", "boys"]
        got = client.post("/api/sample", json={"run": run_id, "n": 5, "label": "boys", "seed": 2}).json()
        assert {row["label"] for row in got["items"]} == {"boys"}
        model, vocab = catalog.runs[run_id].model, catalog.runs[run_id].vocab
        expected = generate(WithLabel(model, 1), vocab, 5, max_len=got["max_len"], seed=2 + 7_919)  # label 1 draws from its own stream
        assert [row["item"] for row in got["items"]] == [s.item for s in expected]
        scored = client.post("/api/score", json={"run": run_id, "items": ["ana"], "label": "girls"}).json()
        assert scored["items"][0]["log_prob"] == pytest.approx(score_labelled(model, vocab, ["ana"], label=0)[0].log_prob)
        for path, body in (("/api/next", {"prefix": "a"}), ("/api/sample", {"most_likely": True}),
                           ("/api/sample", {"label": "elf"})):
            bad = client.post(path, json={"run": run_id, **body})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "label"
