"""The `Run`: one object behind every front end, so the command line and the API give the same answers.

The runs are tiny (a few dozen steps on 300-600 names): what is checked is that the two front ends ask the
same `Run` and print the same JSON, not how good the models are.
"""

from __future__ import annotations

import json

import pytest

from makemore import GenerateRequest, ParameterError, Run
from makemore.generation.scoring import percentile_of, score_items
from makemore.data.items import drop_duplicates, split_items

from .conftest import call, names_dir_or_skip, write_lines

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from makemore.serve.app import create_app  # noqa: E402
from makemore.serve.catalog import load_catalog  # noqa: E402

ITEMS = ["emma", "olivia", "ava", "xqzt"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A --dedupe run (its list repeats names, so its split differs from the file's) and a labelled run."""
    names_dir = names_dir_or_skip()
    names = (names_dir / "names.txt").read_text().splitlines()
    tmp = tmp_path_factory.mktemp("runs")
    repeated = write_lines(tmp / "repeated.txt", names[:300] + names[:150])  # 150 repeats: --dedupe drops them
    girls = write_lines(tmp / "girls.txt", names[300:600:2])
    boys = write_lines(tmp / "boys.txt", [n.replace("a", "o") for n in names[301:600:2]])
    out = {"dedupe": tmp / "dedupe", "labelled": tmp / "labelled", "file": repeated}
    for argv in (["-i", repeated, "--model", "mlp", "--dedupe", "-o", out["dedupe"]],
                 ["-i", f"girls={girls}", "-i", f"boys={boys}", "--model", "gru", "-o", out["labelled"]]):
        code, _, err = call("train", *argv, "--steps", "30", "--batch-size", "64", "--no-plot", "--threads", "1")
        assert code == 0, err
    return out


@pytest.fixture(scope="module")
def client(runs):
    catalog = load_catalog([runs["dedupe"], runs["labelled"]], {}, "cpu")
    return TestClient(create_app(catalog), base_url="http://127.0.0.1")


def cli_json(*argv) -> dict:
    code, out, err = call(*map(str, argv), "--format", "json")
    assert code == 0, err
    return json.loads(out)


def api_json(client, route: str, body: dict) -> dict:
    response = client.post(f"/api/{route}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def same(cli: dict, api: dict) -> None:
    """The same fields and the same numbers; "run" names the run as each front end does (a path, an id)."""
    assert set(cli) == set(api)
    assert {k: v for k, v in cli.items() if k != "run"} == {k: v for k, v in api.items() if k != "run"}


@pytest.mark.parametrize("label", [None, "boys"])
def test_score_json_is_the_same_from_the_command_line_and_the_api(runs, client, label):
    for name in ("dedupe", "labelled"):
        if name == "dedupe" and label:
            continue
        extra = ["--label", label] if label else []
        cli = cli_json("score", runs[name], *ITEMS, *extra)
        api = api_json(client, "score", {"run": name, "items": ITEMS, **({"label": label} if label else {})})
        same(cli, api)
        assert all(row["percentile"] is not None for row in cli["items"]) and cli["percentile_note"] is None
        assert [r["item"] for r in cli["items"]] == ITEMS and cli["label"] == label


def test_explain_and_next_json_are_the_same_from_both_front_ends(runs, client):
    same(cli_json("score", runs["labelled"], "emma", "--explain", "--label", "girls"),
         api_json(client, "score", {"run": "labelled", "items": ["emma"], "explain": True, "label": "girls"}))
    same(cli_json("next", runs["dedupe"], "em", "-k", "5"), api_json(client, "next", {"run": "dedupe", "prefix": "em", "k": 5}))
    explained = cli_json("score", runs["dedupe"], "emma", "--explain")["items"][0]["explain"]
    assert [s["char"] for s in explained] == ["e", "m", "m", "a", "<end>"] and explained[-1]["end"]


def test_sample_json_is_the_same_from_both_front_ends(runs, client):
    for body, argv in (({"n": 6, "seed": 3}, ["-n", "6", "--seed", "3"]),
                       ({"n": 4, "seed": 1, "novel": True, "prefix": "a"}, ["-n", "4", "--seed", "1", "--novel", "--prefix", "a"]),
                       ({"n": 3, "most_likely": True}, ["--most-likely", "3"])):
        same(cli_json("sample", runs["dedupe"], *argv), api_json(client, "sample", {"run": "dedupe", **body}))
    labelled = api_json(client, "sample", {"run": "labelled", "n": 5, "seed": 2, "label": "boys"})
    same(cli_json("sample", runs["labelled"], "-n", "5", "--seed", "2", "--label", "boys"), labelled)
    assert {row["label"] for row in labelled["items"]} == {"boys"}


def test_the_percentile_population_is_the_split_the_dedupe_run_was_trained_on(runs):
    run = Run.load(runs["dedupe"], "cpu")
    items = run.training_items()
    file_items = runs["file"].read_text().splitlines()
    assert items == drop_duplicates(file_items)[0] and len(items) == 300
    train = split_items(items, run.meta["split_seed"])[0]
    expected = sorted(s.log_prob for s in score_items(run.model, run.vocab, train))
    assert run.population() == pytest.approx(expected)
    score = run.score(["emma"]).items[0]
    assert score.percentile == pytest.approx(percentile_of(score.log_prob, expected))
    # the file as it is (repeats kept) gives another split, and another percentile: what the server once used
    undeduped = sorted(s.log_prob for s in score_items(run.model, run.vocab, split_items(file_items, 42)[0]))
    assert undeduped != pytest.approx(expected)


def test_a_request_is_checked_once_and_errors_name_parameters(runs):
    run = Run.load(runs["dedupe"], "cpu")
    cases = [(GenerateRequest(most_likely=3, temperature=0.5), "temperature"),
             (GenerateRequest(max_expansions=10), "max_expansions"),
             (GenerateRequest(min_len=5, max_len=3), "min_len"),
             (GenerateRequest(prefix="abcdef", max_len=3), "max_len"),
             (GenerateRequest(top_p=2.0), "top_p"),
             (GenerateRequest(prefix="#"), "prefix"),
             (GenerateRequest(label="girls"), "label")]
    for request, parameter in cases:
        with pytest.raises(ParameterError) as e:
            run.generate(request)
        assert e.value.parameter == parameter, (request, str(e.value))
    labelled = Run.load(runs["labelled"], "cpu")
    with pytest.raises(ParameterError) as e:
        labelled.generate(GenerateRequest(most_likely=3))
    assert e.value.parameter == "label" and "girls" in str(e.value)
    with pytest.raises(ParameterError) as e:
        labelled.next("em")
    assert e.value.parameter == "label"


def test_most_likely_is_generate_with_its_count(runs):
    run = Run.load(runs["dedupe"], "cpu")
    best = run.most_likely(5, GenerateRequest(prefix="a"))
    assert best.exact and len(best.items) == 5 and all(s.item.startswith("a") for s in best.items)
    assert best.items == run.generate(GenerateRequest(most_likely=5, prefix="a")).items
    assert [s.log_prob for s in best.items] == sorted((s.log_prob for s in best.items), reverse=True)


def test_a_run_without_a_seed_draws_one_and_says_which(runs):
    run = Run.load(runs["dedupe"], "cpu")
    out = run.generate(GenerateRequest(n=5))
    assert out.request.seed is not None
    again = run.generate(GenerateRequest(n=5, seed=out.request.seed))
    assert again.items == out.items


def test_run_list_finds_the_run_folders(runs, tmp_path):
    assert Run.list(runs["dedupe"]) == [runs["dedupe"]]
    assert Run.list(runs["dedupe"].parent) == [runs["dedupe"], runs["labelled"]]


def test_evaluate_is_what_eval_prints(runs):
    result = Run.load(runs["dedupe"], "cpu").evaluate()
    code, out, err = call("eval", str(runs["dedupe"]), "--json")
    assert code == 0, err
    printed = json.loads(out)
    assert printed == pytest.approx({f"{k}_nll": v for k, v in result.items()})
