"""`makemore serve`: the JSON API with FastAPI's test client (every route, every class of bad request), the
command line around it, and the rule that nothing but the serve command imports the web stack.

The runs are trained once per module on the first 300 names: a folder as `reproduce` leaves it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import urllib.request

import pytest

from makemore.bounds import MAX_REQUEST_CHARS, MAX_REQUEST_ITEMS
from makemore.generation.scoring import explain_item, percentile_of, score_items, top_next_chars
from .generating import most_likely
from makemore.serve.catalog import find_runs, load_catalog, run_ids
from makemore.serve.config import ServeConfig, is_loopback

from .conftest import _names_dir, call
from .serving import running_server, train_folder

fastapi = pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from makemore.serve.app import create_app  # noqa: E402

RUN = "essay/mlp"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    names_dir = _names_dir()
    if names_dir is None:
        pytest.skip("names.txt not found: set MAKEMORE_DATA to the folder holding it")
    tmp = tmp_path_factory.mktemp("serve")
    small = tmp / "small.txt"
    small.write_text("\n".join((names_dir / "names.txt").read_text().splitlines()[:300]) + "\n")
    return train_folder(tmp / "essay", small)


@pytest.fixture(scope="module")
def catalog(folder):
    return load_catalog([folder], {})


@pytest.fixture(scope="module")
def client(catalog):
    with TestClient(create_app(catalog), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


LABELLED = "labelled/styles"  # bigram-counts on two files of the same 300 names: short ones and long ones


@pytest.fixture(scope="module")
def labelled(folder):
    """A client of a server with one labelled run (labels "short" and "long"), and that run."""
    items = (folder.parent / "small.txt").read_text().split()
    runs = folder.parent / "labelled"
    short, long = folder.parent / "short.txt", folder.parent / "long.txt"
    short.write_text("\n".join(it for it in items if len(it) <= 5) + "\n")
    long.write_text("\n".join(it for it in items if len(it) > 5) + "\n")
    code, _, err = call("train", "-i", short, "-i", long, "--model", "bigram-counts", "-o", runs / "styles",
                        "--threads", "1", "--no-plot")
    assert code == 0, err
    catalog = load_catalog([runs], {})
    assert list(catalog.runs) == [LABELLED]
    with TestClient(create_app(catalog), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c, catalog.runs[LABELLED]


def post(client, path, body):
    return client.post(path, json=body)


# ----------------------------------------------------------------------------- every route

def test_health_and_runs(client, catalog):
    assert client.get("/api/health").json() == {"status": "ok", "version": "0.1.0", "runs": 2}
    data = client.get("/api/runs").json()
    runs = {r["id"]: r for r in data["runs"]}
    assert list(runs) == ["essay/bigram-counts", "essay/mlp"]  # the results.json's order
    mlp = runs[RUN]
    assert {"id", "model", "params", "metrics", "labels"} <= set(mlp)
    assert mlp["model"] == "mlp" and mlp["params"] == catalog.runs[RUN].meta["params"] and mlp["labels"] == []
    assert set(mlp["metrics"]) == {"train_nll", "val_nll", "test_nll"} and mlp["training_file"]
    assert mlp["data"] == {"name": "small", "items": 300, "vocab_size": catalog.runs[RUN].vocab.size,
                           "chars": "".join(catalog.runs[RUN].vocab.chars)}
    assert "/" not in json.dumps(mlp["data"])  # no file path leaves the server
    [table] = data["results"]
    assert table["kind"] == "results" and [r["run"] for r in table["rows"]] == ["essay/bigram-counts", RUN]


def test_sample_is_generate(client, catalog):
    body = {"run": RUN, "n": 7, "prefix": "ka", "temperature": 0.8, "min_len": 3, "max_len": 9, "seed": 5}
    data = post(client, "/api/sample", body).json()
    assert data["seed"] == 5 and data["max_len"] == 9 and len(data["items"]) == 7
    assert all(s["item"].startswith("ka") and 3 <= len(s["item"]) <= 9 for s in data["items"])
    assert post(client, "/api/sample", body).json() == data  # same seed, same items
    run = catalog.runs[RUN]
    for s, scored in zip(data["items"], score_items(run.model, run.vocab, [s["item"] for s in data["items"]])):
        assert s["log_prob"] == pytest.approx(scored.log_prob, abs=1e-4)  # the number score gives the same item
    fresh = post(client, "/api/sample", {"run": RUN}).json()
    assert len(fresh["items"]) == 10 and 0 <= fresh["seed"] < 2 ** 32 and fresh["max_len"] == run.default_max_len


def test_sample_novel_leaves_out_the_training_items(client, catalog):
    data = post(client, "/api/sample", {"run": "essay/bigram-counts", "n": 30, "novel": True, "seed": 1}).json()
    items = [s["item"] for s in data["items"]]
    assert len(items) == len(set(items)) == 30
    assert not set(items) & set(catalog.runs["essay/bigram-counts"].items)


def test_sample_suffix_and_contains_are_honoured_with_prefix_and_lengths(client, catalog):
    run = catalog.runs[RUN]
    body = {"run": RUN, "n": 12, "prefix": "k", "suffix": "a", "min_len": 3, "max_len": 8, "seed": 3}
    data = post(client, "/api/sample", body).json()
    items = [s["item"] for s in data["items"]]
    assert len(items) == 12 and "exact" not in data, data
    assert all(it.startswith("k") and it.endswith("a") and 3 <= len(it) <= 8 for it in items), items
    assert post(client, "/api/sample", body).json() == data  # same seed, same items
    for s, scored in zip(data["items"], score_items(run.model, run.vocab, items)):
        assert s["log_prob"] == pytest.approx(scored.log_prob, abs=1e-4)
    contains = post(client, "/api/sample", {"run": RUN, "n": 12, "contains": "an", "seed": 4}).json()["items"]
    assert len(contains) == 12 and all("an" in s["item"] for s in contains), contains
    both = post(client, "/api/sample", {"run": "essay/bigram-counts", "n": 10, "suffix": "n", "contains": "e",
                                        "novel": True, "seed": 5}).json()["items"]
    new = [s["item"] for s in both]
    assert len(set(new)) == 10 and all(it.endswith("n") and "e" in it for it in new), new
    assert not set(new) & set(catalog.runs["essay/bigram-counts"].items)


def test_most_likely_is_the_library_search_best_first(client, catalog):
    run = catalog.runs[RUN]
    for body, settings in (
            ({"n": 8, "temperature": 1, "top_k": None, "top_p": None, "seed": None}, {}),  # defaults: allowed
            ({"n": 6, "prefix": "k", "suffix": "a", "min_len": 3, "max_len": 7}, {"prefix": "k", "suffix": "a",
                                                                                    "min_len": 3, "max_len": 7}),
            ({"n": 5, "contains": "an", "novel": True}, {"contains": "an", "exclude": run.items})):
        data = post(client, "/api/sample", {"run": RUN, "most_likely": True, **body}).json()
        expected = most_likely(run.model, run.vocab, body["n"], **{"max_len": run.default_max_len, **settings})
        assert data["exact"] is True and expected.exact and data["seed"] is None, data
        assert [s["item"] for s in data["items"]] == [s.item for s in expected.items]
        assert [s["log_prob"] for s in data["items"]] == pytest.approx([s.log_prob for s in expected.items])
        log_probs = [s["log_prob"] for s in data["items"]]
        assert log_probs == sorted(log_probs, reverse=True) and len(log_probs) == body["n"]
        assert all(s.startswith(settings.get("prefix", "")) and s.endswith(settings.get("suffix", ""))
                   and settings.get("contains", "") in s for s in (s["item"] for s in data["items"]))
    assert not {s["item"] for s in data["items"]} & set(run.items)  # novel
    cut = post(client, "/api/sample", {"run": RUN, "most_likely": True, "n": 5, "suffix": "a", "max_expansions": 2}).json()
    assert cut["exact"] is False and cut["expansions"] <= 2 and cut["max_expansions"] == 2  # the budget stopped it
    schema = client.get("/api/openapi.json").json()["paths"]["/api/sample"]["post"]["requestBody"]
    props = schema["content"]["application/json"]["schema"]["properties"]
    assert {"suffix", "contains", "most_likely", "max_expansions"} <= set(props)


def test_score_is_score_items_with_explain_and_percentile(client, catalog):
    run = catalog.runs[RUN]
    data = post(client, "/api/score", {"run": RUN, "items": ["emma", "", "kaelynn"], "explain": True}).json()
    assert [s["item"] for s in data["items"]] == ["emma", "", "kaelynn"]
    for s, expected in zip(data["items"], score_items(run.model, run.vocab, ["emma", "", "kaelynn"])):
        assert s["log_prob"] == pytest.approx(expected.log_prob) and s["nll_per_char"] == pytest.approx(expected.nll_per_char)
        assert s["percentile"] == pytest.approx(percentile_of(expected.log_prob, run.population))
        steps = explain_item(run.model, run.vocab, s["item"])
        assert [c["prob"] for c in s["explain"]] == pytest.approx([st.prob for st in steps])
        assert [c["char"] for c in s["explain"]] == [*s["item"], "<end>"] and s["explain"][-1]["end"]
    assert data["items"][0]["explain"][0]["context"] == "..."  # the mlp's 3 boundaries
    plain = post(client, "/api/score", {"run": RUN, "items": ["emma"]}).json()["items"][0]
    assert "explain" not in plain and plain["log_prob"] == pytest.approx(data["items"][0]["log_prob"])


def test_next_is_top_next_chars(client, catalog):
    run = catalog.runs[RUN]
    data = post(client, "/api/next", {"run": RUN, "prefix": "em", "k": 5}).json()
    expected = top_next_chars(run.model, run.vocab, "em", 5)
    assert [r["prob"] for r in data["next"]] == pytest.approx([p for _, p in expected])
    assert data["prefix"] == "em" and len(data["next"]) == 5
    everything = post(client, "/api/next", {"run": RUN, "prefix": ""}).json()["next"]
    assert len(everything) == 10
    every = post(client, "/api/next", {"run": RUN, "k": 1000}).json()["next"]
    assert len(every) == run.vocab.size and sum(r["prob"] for r in every) == pytest.approx(1.0)
    assert sum(r["end"] for r in every) == 1 and next(r for r in every if r["end"])["char"] == "<end>"


# ----------------------------------------------------------------------------- avoid, exclude, unique, keys, blend, thresholds

def sample(client, **body) -> dict:
    response = post(client, "/api/sample", body)
    assert response.status_code == 200, response.text
    return response.json()


def items_of(data: dict) -> list[str]:
    return [s["item"] for s in data["items"]]


def test_avoid_keeps_every_entry_out_of_every_item(client):
    avoid = ["AN", "li", "y"]  # matched case-folded: "AN" keeps "an" out
    for run in ("essay/bigram-counts", RUN):
        free = items_of(sample(client, run=run, n=200, seed=7))
        assert [it for it in free if any(e.lower() in it for e in avoid)]  # without the list they come
        data = sample(client, run=run, n=200, avoid=avoid, seed=7)
        assert len(data["items"]) == 200 and data["settings"]["avoid"] == 3  # the list's length, not the list
        assert not [it for it in items_of(data) if any(e.lower() in it for e in avoid)], items_of(data)
    assert sample(client, run=RUN, n=5, avoid=[], seed=7) == sample(client, run=RUN, n=5, seed=7)  # []: no list


def test_unique_gives_distinct_items_and_exclude_leaves_items_out(client, catalog):
    short = {"run": "essay/bigram-counts", "n": 300, "max_len": 3, "seed": 2}
    assert len(set(items_of(sample(client, **short)))) < 300  # short items repeat
    distinct = items_of(sample(client, **short, unique=True))
    assert len(distinct) == len(set(distinct)) == 300
    first = items_of(sample(client, run=RUN, n=50, seed=4))
    again = sample(client, run=RUN, n=50, seed=4, exclude=first)
    assert len(again["items"]) == 50 and not set(items_of(again)) & set(first) and again["settings"]["exclude"] == 50
    training = catalog.runs[RUN].items  # exclude is the request's list; novel, the training items
    mine = items_of(sample(client, run=RUN, n=100, exclude=training[:50], seed=1))
    assert not set(mine) & set(training[:50])


def test_keys_give_one_item_each_in_order_the_same_whatever_else_is_asked(client):
    one = sample(client, run=RUN, keys=["planet-4711", "moon", "x"])
    assert [s["key"] for s in one["items"]] == ["planet-4711", "moon", "x"] and one["seed"] == 0  # the keys' seed
    two = sample(client, run=RUN, keys=["other", "x", "planet-4711", "more"], n=1)  # n is unused with keys
    assert [s["key"] for s in two["items"]] == ["other", "x", "planet-4711", "more"] and two["settings"]["keys"] == 4
    by_key = [{s["key"]: s for s in data["items"]} for data in (one, two)]
    for key in ("planet-4711", "x"):
        assert by_key[0][key]["item"] == by_key[1][key]["item"], key
        assert by_key[0][key]["log_prob"] == pytest.approx(by_key[1][key]["log_prob"], abs=1e-4)  # float32, batched
    seeded = sample(client, run=RUN, keys=["moon"], seed=9)
    assert seeded == sample(client, run=RUN, keys=["moon"], seed=9)
    plain = sample(client, run=RUN, n=3, seed=1)
    assert all("key" not in s for s in plain["items"])  # no keys: no "key" field


def test_a_blend_samples_scores_and_continues_as_one_distribution(labelled):
    client, served = labelled
    assert client.get("/api/runs").json()["runs"][0]["labels"] == ["short", "long"]
    blend = {"short": 0.3, "long": 0.7}
    data = sample(client, run=LABELLED, n=20, blend=blend, seed=3)
    assert len(data["items"]) == 20 and data["settings"]["blend"] == blend and data["settings"]["label"] is None
    scored = post(client, "/api/score", {"run": LABELLED, "items": items_of(data), "blend": blend}).json()
    assert scored["label"] == "short=0.3,long=0.7"
    for s, sc in zip(data["items"], scored["items"]):  # the sample's log_prob is the blend's, as score gives it
        assert sc["item"] == s["item"] and abs(sc["log_prob"] - s["log_prob"]) <= 1e-6, (s, sc)
    explained = post(client, "/api/score", {"run": LABELLED, "items": ["anna"], "blend": blend, "explain": True}).json()
    assert len(explained["items"][0]["explain"]) == 5  # explain needs a label on a labelled run, or a blend

    def every(**body) -> dict[str, float]:
        answer = post(client, "/api/next", {"run": LABELLED, "prefix": "ka", "k": 1000, **body})
        assert answer.status_code == 200, answer.text
        return {r["char"]: r["prob"] for r in answer.json()["next"]}

    mixed, short, long = every(blend=blend), every(label="short"), every(label="long")
    assert mixed == pytest.approx({c: 0.3 * short[c] + 0.7 * long[c] for c in mixed})  # each step: the mixture
    assert every(blend={"short": 3, "long": 7}) == pytest.approx(mixed)  # weights are scaled to add up to 1
    assert every(blend={"short": 1}) == pytest.approx(short)  # one label: that label
    best = sample(client, run=LABELLED, n=3, most_likely=True, blend=blend)
    assert best["exact"] is True and len(best["items"]) == 3  # the search, under the blend


def test_thresholds_keep_only_items_likely_enough(client):
    free = sample(client, run=RUN, n=100, seed=5)["items"]
    assert min(s["log_prob"] for s in free) < -12
    likely = sample(client, run=RUN, n=100, min_log_prob=-12, seed=5)
    assert len(likely["items"]) == 100 and all(s["log_prob"] >= -12 for s in likely["items"])
    assert likely["settings"]["min_log_prob"] == -12
    per_char = sample(client, run=RUN, n=100, max_nll_per_char=2.5, seed=5)["items"]
    assert len(per_char) == 100 and all(-s["log_prob"] / (len(s["item"]) + 1) <= 2.5 for s in per_char)
    assert any(-s["log_prob"] / (len(s["item"]) + 1) > 2.5 for s in free)


def test_inside_bigrams_and_embeddings(client, catalog):
    run = catalog.runs[RUN]
    data = post(client, "/api/inside", {"run": RUN}).json()
    V = run.vocab.size
    counts = data["bigrams"]["counts"]
    assert len(counts) == V and all(len(row) == V for row in counts)
    assert sum(map(sum, counts)) == sum(len(it) + 1 for it in run.items)  # every character and each end
    assert data["bigrams"]["labels"][0] == "."
    e = data["embedding"]
    assert len(e["x"]) == len(e["y"]) == V and e["dims"] == 2 and "2 dimensions" in e["method"]
    assert e["x"] == pytest.approx(run.model.C[:, 0].tolist())  # two dimensions: drawn as they are
    counts_only = post(client, "/api/inside", {"run": "essay/bigram-counts"}).json()
    assert counts_only["embedding"] is None and "no character embedding" in counts_only["embedding_note"]


def test_the_page_and_its_assets_are_served_with_no_outside_source(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        response = client.get(asset)
        assert response.status_code == 200 and "http" not in response.text.replace("http://www.w3.org/2000/svg", "")
    assert "http" not in page.text  # no CDN: every asset is shipped in the package
    assert client.get("/api/openapi.json").json()["paths"]["/api/sample"]["post"]["requestBody"]


# ----------------------------------------------------------------------------- every class of bad request

TOO_LONG = "a" * (MAX_REQUEST_CHARS + 1)
BAD = [  # (path, body, status, field, words the message holds)
    ("/api/sample", {"run": "nope"}, 404, "run", "no run 'nope'"),
    ("/api/sample", {}, 422, "run", "run is required"),
    ("/api/sample", {"run": RUN, "n": 1001}, 422, "n", "between 1 and 1,000"),
    ("/api/sample", {"run": RUN, "n": 0}, 422, "n", "between 1 and 1,000"),
    ("/api/sample", {"run": RUN, "n": "5"}, 422, "n", "whole number"),
    ("/api/sample", {"run": RUN, "n": True}, 422, "n", "whole number"),
    ("/api/sample", {"run": RUN, "n": 2.5}, 422, "n", "whole number"),
    ("/api/sample", {"run": RUN, "temperature": 0}, 422, "temperature", "greater than 0"),
    ("/api/sample", {"run": RUN, "top_p": 2}, 422, "top_p", "(0, 1]"),
    ("/api/sample", {"run": RUN, "top_k": 0}, 422, "top_k", "at least 1"),
    ("/api/sample", {"run": RUN, "max_len": 1001}, 422, "max_len", "between 1 and 1,000"),
    ("/api/sample", {"run": RUN, "min_len": 1001}, 422, "min_len", "between 0 and 1,000"),
    ("/api/sample", {"run": RUN, "min_len": 9, "max_len": 3}, 422, "min_len", "greater than max_len"),
    ("/api/sample", {"run": RUN, "prefix": "kaela", "max_len": 3}, 422, "max_len", "shorter than the prefix"),
    ("/api/sample", {"run": RUN, "prefix": TOO_LONG}, 422, "prefix", "at most 1,000"),
    ("/api/sample", {"run": RUN, "prefix": "K!"}, 422, "prefix", "never seen: '!', 'K'"),
    ("/api/sample", {"run": RUN, "seed": 2 ** 64}, 422, "seed", "between"),
    ("/api/sample", {"run": RUN, "novel": "yes"}, 422, "novel", "true or false"),
    ("/api/sample", {"run": RUN, "path": "/etc/passwd"}, 422, "path", "unknown field"),
    ("/api/sample", {"run": RUN, "suffix": "A!"}, 422, "suffix", "never seen: '!', 'A'"),
    ("/api/sample", {"run": RUN, "contains": "zoë"}, 422, "contains", "never seen: 'ë'"),
    ("/api/sample", {"run": RUN, "suffix": TOO_LONG}, 422, "suffix", "at most 1,000"),
    ("/api/sample", {"run": RUN, "contains": 5}, 422, "contains", "must be a string"),
    ("/api/sample", {"run": RUN, "prefix": "kae", "suffix": "lyn", "max_len": 5}, 422, "max_len", "leaves no room"),
    ("/api/sample", {"run": RUN, "contains": "anna", "max_len": 3}, 422, "max_len", "leaves no room"),
    ("/api/sample", {"run": RUN, "suffix": "zzzzz", "seed": 1}, 422, "suffix", "too unlikely under the model"),
    ("/api/sample", {"run": RUN, "most_likely": "yes"}, 422, "most_likely", "true or false"),
    ("/api/sample", {"run": RUN, "most_likely": True, "temperature": 0.5}, 422, "temperature", "does not apply"),
    ("/api/sample", {"run": RUN, "most_likely": True, "top_k": 3}, 422, "top_k", "does not apply with most_likely"),
    ("/api/sample", {"run": RUN, "most_likely": True, "top_p": 0.9}, 422, "top_p", "does not apply with most_likely"),
    ("/api/sample", {"run": RUN, "most_likely": True, "seed": 1}, 422, "seed", "does not apply with most_likely"),
    ("/api/sample", {"run": RUN, "most_likely": True, "max_expansions": 0}, 422, "max_expansions", "between 1 and"),
    ("/api/sample", {"run": RUN, "max_expansions": 10}, 422, "max_expansions", "only used with most_likely"),
    ("/api/score", {"run": RUN}, 422, "items", "items is required"),
    ("/api/score", {"run": RUN, "items": "emma"}, 422, "items", "a list"),
    ("/api/score", {"run": RUN, "items": []}, 422, "items", "got 0 items"),
    ("/api/score", {"run": RUN, "items": ["a"] * (MAX_REQUEST_ITEMS + 1)}, 422, "items", "1,001 items"),
    ("/api/score", {"run": RUN, "items": ["emma", TOO_LONG]}, 422, "items[1]", "at most 1,000"),
    ("/api/score", {"run": RUN, "items": ["emma", 7]}, 422, "items[1]", "must be a string"),
    ("/api/score", {"run": RUN, "items": ["emma", "zoë"]}, 422, "items[1]", "never seen: 'ë'"),
    ("/api/score", {"run": RUN, "items": ["a" * 999] * 11, "explain": True}, 422, "items", "at most 10,000"),
    ("/api/score", {"run": RUN, "items": ["emma"], "explain": 1}, 422, "explain", "true or false"),
    ("/api/next", {"run": RUN, "k": 0}, 422, "k", "between 1 and 1,000"),
    ("/api/next", {"run": RUN, "k": None}, 422, "k", "whole number"),
    ("/api/next", {"run": RUN, "prefix": None}, 422, "prefix", "must be a string"),
    ("/api/next", {"run": RUN, "prefix": "É"}, 422, "prefix", "never seen"),
    ("/api/next", {"run": ["essay/mlp"]}, 422, "run", "must be a string"),
    ("/api/inside", {"run": "../../etc"}, 404, "run", "no run"),
    ("/api/sample", {"run": RUN, "n": 10 ** 400}, 422, "n", "401 digits"),
    ("/api/sample", {"run": RUN, "avoid": ["zz"] * 10_001}, 422, "avoid", "10,001 entries; at most 10,000"),
    ("/api/sample", {"run": RUN, "avoid": ["an", "li", ""]}, 422, "avoid[2]", "is empty"),
    ("/api/sample", {"run": RUN, "avoid": "an"}, 422, "avoid", "must be a list"),
    ("/api/sample", {"run": RUN, "avoid": ["an", 3]}, 422, "avoid[1]", "must be a string"),
    ("/api/sample", {"run": RUN, "avoid": ["an", TOO_LONG]}, 422, "avoid[1]", "at most 1,000"),
    ("/api/sample", {"run": RUN, "avoid": ["k"], "prefix": "ka"}, 422, "avoid", "is in the prefix 'ka'"),
    ("/api/sample", {"run": RUN, "exclude": ["zz"] * 10_001}, 422, "exclude", "10,001 entries; at most 10,000"),
    ("/api/sample", {"run": RUN, "unique": "yes"}, 422, "unique", "true or false"),
    ("/api/sample", {"run": RUN, "keys": [str(i) for i in range(1_001)]}, 422, "keys", "1,001 entries; at most 1,000"),
    ("/api/sample", {"run": RUN, "keys": ["a", "b", "c", "b"]}, 422, "keys[3]", "already given as keys[1]"),
    ("/api/sample", {"run": RUN, "keys": ["a", ""]}, 422, "keys[1]", "is empty"),
    ("/api/sample", {"run": RUN, "keys": ["a"], "most_likely": True}, 422, "keys", "do not apply with most_likely"),
    ("/api/sample", {"run": RUN, "blend": {"girls": 1}}, 422, "blend", "needs a labelled run"),
    ("/api/sample", {"run": RUN, "blend": ["girls"]}, 422, "blend", "must be an object"),
    ("/api/sample", {"run": RUN, "blend": {"girls": "1"}}, 422, "blend", "must be a number"),
    ("/api/sample", {"run": RUN, "blend": {f"l{i}": 1 for i in range(1_001)}}, 422, "blend", "at most 1,000"),
    ("/api/score", {"run": RUN, "items": ["emma"], "blend": {"girls": 1}}, 422, "blend", "needs a labelled run"),
    ("/api/next", {"run": RUN, "blend": {"girls": 1}}, 422, "blend", "needs a labelled run"),
    ("/api/sample", {"run": RUN, "min_log_prob": 0.5}, 422, "min_log_prob", "at most 0"),
    ("/api/sample", {"run": RUN, "min_log_prob": "-3"}, 422, "min_log_prob", "a number"),
    ("/api/sample", {"run": RUN, "max_nll_per_char": -1}, 422, "max_nll_per_char", "at least 0"),
    ("/api/sample", {"run": RUN, "min_log_prob": -1, "seed": 1}, 422, "min_log_prob", "stood in the way"),
    ("/api/sample", {"run": "essay/bigram-counts", "n": 1, "max_len": 1, "seed": 1,
                     "exclude": ["", *"abcdefghijklmnopqrstuvwxyz"]}, 422, "exclude", "stood in the way"),
    ("/api/sample", {"run": "essay/bigram-counts", "n": 100, "max_len": 1, "novel": True, "seed": 1}, 422, "novel",
     "stood in the way"),
    ("/api/sample", {"run": "essay/bigram-counts", "n": 100, "max_len": 1, "unique": True, "seed": 1}, 422, "unique",
     "only 27 distinct items"),
]


@pytest.mark.parametrize("path, body, status, field, words", BAD, ids=[f"{p} {b}"[:70] for p, b, *_ in BAD])
def test_bad_values_are_4xx_naming_the_field_and_what_it_allows(client, path, body, status, field, words):
    response = post(client, path, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error
    assert field in error["message"]  # the message names the field too
    assert error["allowed"] and "Traceback" not in response.text


LABELLED_BAD = [  # (path, body, field, words): a blend the labelled run refuses
    ("/api/sample", {"blend": {"short": 1, "elves": 1}}, "blend", "names 'elves', which this run does not have"),
    ("/api/sample", {"blend": {"short": 0, "long": 0}}, "blend", "add up to 0"),
    ("/api/sample", {"blend": {"short": -1, "long": 2}}, "blend", "at least 0"),
    ("/api/sample", {"blend": {"short": 1}, "label": "short"}, "blend", "and label both choose"),
    ("/api/score", {"items": ["anna"], "blend": {"elves": 1}}, "blend", "names 'elves'"),
    ("/api/score", {"items": ["anna"], "blend": {"short": 0}}, "blend", "add up to 0"),
    ("/api/score", {"items": ["anna"], "blend": {"short": 1}, "label": "long"}, "blend", "and label both choose"),
    ("/api/next", {"prefix": "a", "blend": {"elves": 1}}, "blend", "names 'elves'"),
    ("/api/next", {"prefix": "a", "blend": {"short": 0.0, "long": 0}}, "blend", "add up to 0"),
    ("/api/next", {"prefix": "a"}, "label", "is needed for next"),  # neither a label nor a blend
]


@pytest.mark.parametrize("path, body, field, words", LABELLED_BAD, ids=[f"{p} {b}"[:70] for p, b, *_ in LABELLED_BAD])
def test_a_bad_blend_is_a_422_naming_it(labelled, path, body, field, words):
    client, _ = labelled
    response = post(client, path, {"run": LABELLED, **body})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"] and error["allowed"], error


RAW = [  # (path, bytes, content type, status, words)
    ("/api/sample", b'{"run": "essay/mlp",', "application/json", 400, "not valid JSON"),
    ("/api/sample", b"[1, 2]", "application/json", 400, "must be a JSON object, got a list"),
    ("/api/sample", b"\xff\xfe", "application/json", 400, "not UTF-8"),
    ("/api/sample", b'{"run": "essay/mlp", "n": NaN}', "application/json", 422, "n must be a whole number"),
    ("/api/sample", b'{"run": "essay/mlp", "seed": ' + b"9" * 5000 + b"}", "application/json", 400, "too long"),
    ("/api/sample", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "not valid JSON"),
    ("/api/score", b'{"run": "essay/mlp", "items": ["emma"]}', "text/plain", 415, "Content-Type: application/json"),
    ("/api/score", b'{"run": "essay/mlp"}', None, 415, "Content-Type: application/json"),
    ("/api/score", b'{"items": ["' + b"a" * 5_000_000 + b'"]}', "application/json", 413, "larger than 4,194,304 bytes"),
]


@pytest.mark.parametrize("path, raw, kind, status, words", RAW, ids=[f"{s} {w}" for *_, s, w in RAW])
def test_malformed_oversized_and_non_json_bodies_are_4xx(client, path, raw, kind, status, words):
    headers = {"content-type": kind} if kind else {}
    response = client.post(path, content=raw, headers=headers)
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert words in error["message"] and error["field"] in ("body", "n") and error["allowed"]


def test_wrong_routes_methods_and_hosts_are_json_4xx(client, catalog):
    cases = [client.get("/api/sample"), client.get("/api/nothing"), client.get("/etc/passwd"),
             client.get("/static/../checkpoint.py"), client.delete("/api/runs"),
             client.get("/api/runs", headers={"host": "attacker.example"})]
    assert [r.status_code for r in cases] == [405, 404, 404, 404, 405, 400]
    for r in cases:
        assert r.json()["error"]["message"] and "Traceback" not in r.text
    assert cases[-1].json()["error"]["field"] == "Host"
    anywhere = TestClient(create_app(catalog, ServeConfig(host="0.0.0.0")))  # not loopback: any Host answered
    assert anywhere.get("/api/health").status_code == 200


def test_a_run_whose_training_file_is_gone_still_serves_without_percentiles(tmp_path, small_file):
    assert call("train", "-i", small_file, "--model", "bigram-counts", "-o", tmp_path / "r", "--no-plot")[0] == 0
    small_file.unlink()
    catalog = load_catalog([tmp_path / "r"], {})
    client = TestClient(create_app(catalog), base_url="http://127.0.0.1")
    assert client.get("/api/runs").json()["runs"][0]["training_file"] is False
    score = client.post("/api/score", json={"run": "r", "items": ["emma"]}).json()["items"][0]
    assert score["percentile"] is None and score["log_prob"] < 0
    novel = client.post("/api/sample", json={"run": "r", "novel": True})
    assert novel.status_code == 422 and novel.json()["error"]["field"] == "novel"
    assert client.post("/api/inside", json={"run": "r"}).json()["bigrams"] is None


# ----------------------------------------------------------------------------- a real server, concurrent clients

def test_concurrent_requests_on_a_real_server_all_succeed(catalog):
    bodies = [("/api/next", {"run": RUN, "prefix": "ka"}), ("/api/sample", {"run": RUN, "n": 20, "seed": 1}),
              ("/api/score", {"run": RUN, "items": ["emma", "olivia"], "explain": True}), ("/api/runs", None)]
    results: list[int] = []

    def client_thread(url: str, i: int) -> None:
        for j in range(6):
            path, body = bodies[(i + j) % len(bodies)]
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                results.append(response.status)

    with running_server(catalog, workers=2) as url:
        threads = [threading.Thread(target=client_thread, args=(url, i)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert results == [200] * 72


# ----------------------------------------------------------------------------- catalog, config, command line

def test_folders_of_runs_and_their_ids(folder, tmp_path):
    found, tables = find_runs([folder, folder / "mlp"])
    assert [f.path.name for f in found] == ["bigram-counts", "mlp"]  # the same run given twice is served once
    assert run_ids(found) == ["essay/bigram-counts", RUN] and tables[0]["name"] == "essay"
    shutil.copytree(folder / "mlp", tmp_path / "plain" / "mlp")
    found, tables = find_runs([tmp_path / "plain"])  # a folder of runs without results.json
    assert run_ids(found) == ["plain/mlp"] and tables == []
    found, _ = find_runs([tmp_path / "plain" / "mlp", folder / "mlp"])  # two runs of one name
    assert run_ids(found) == ["mlp", "mlp-2"]


def test_config_bounds_and_loopback():
    assert ServeConfig().url == "http://127.0.0.1:8000/" and ServeConfig(host="::1", port=9).url == "http://[::1]:9/"
    for host, loop in (("127.0.0.1", True), ("127.8.9.1", True), ("localhost", True), ("::1", True),
                       ("0.0.0.0", False), ("192.168.1.4", False), ("example.com", False)):
        assert is_loopback(host) is loop, host


def test_serve_refuses_a_missing_run_and_a_bad_port_before_serving(tmp_path):
    code, out, err = call("serve", tmp_path / "missing")
    assert code == 1 and out == "" and "run directory not found" in err and "Traceback" not in err
    code, _, err = call("serve", tmp_path, "--port", "0")
    assert code == 2 and "--port: must be between 1 and 65,535, got 0" in err


def test_serve_without_the_web_extra_says_which_extra_to_install(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "makemore.serve.app", None)  # as if FastAPI were not installed
    code, out, err = call("serve", folder / "mlp")
    assert code == 1 and "pip install 'makemore[web]'" in err and "Traceback" not in err


def test_serve_prints_the_url_and_warns_off_loopback(folder, monkeypatch):
    import makemore.serve.app as web

    served = {}
    monkeypatch.setattr(web, "bind", lambda config: "socket")
    monkeypatch.setattr(web, "serve", lambda catalog, config, sock: served.update(runs=list(catalog.runs), config=config))
    code, out, err = call("serve", folder, "--port", "8123", "--host", "0.0.0.0")
    assert code == 0 and out == "" and served["runs"] == ["essay/bigram-counts", RUN]
    assert "http://0.0.0.0:8123/" in err and "no authentication" in err
    code, out, err = call("serve", folder / "mlp", "--port", "8124")
    assert code == 0 and "http://127.0.0.1:8124/" in err and "warning" not in err


def test_a_taken_port_is_a_one_line_error(folder):
    import socket

    from makemore.serve.app import bind

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(Exception) as e:
            bind(ServeConfig(port=port))
    assert e.value.parameter == "port" and f"port {port} cannot be listened on at host 127.0.0.1" in str(e.value)


def test_nothing_but_the_serve_command_imports_the_web_stack():
    code = ("import sys, makemore, makemore.cli, makemore.serve.catalog, makemore.serve.service, makemore.serve.schemas;"
            "from makemore.cli import build_parser; build_parser();"
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bug_is_a_500_without_a_traceback(catalog, monkeypatch):
    import makemore.trained as trained

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(trained, "top_next_chars", broken)
    client = TestClient(create_app(catalog), base_url="http://127.0.0.1", raise_server_exceptions=False)
    response = client.post("/api/next", json={"run": RUN, "prefix": "em"})
    assert response.status_code == 500 and "internal error" in response.json()["error"]["message"]
    assert "secret" not in response.text and "Traceback" not in response.text
