"""Ensembles (makemore.models.ensemble, makemore.studies.ensemble, `makemore ensemble`): the mixture against its definition,
the EM fit against a grid, cached decoding against forward, and the command as a user runs it.

Tolerances: float64 within 1e-12 where the same sums are regrouped; the EM optimum within 1e-7 nats of the best
point of a 1e-4 grid (the grid's own error is smaller than that at these curvatures).
"""

import json
import math

import pytest
import torch

from makemore.data.items import Vocab
from makemore.models.decoding import Decoder
from makemore.studies.ensemble import fit_weights
from makemore.models import build_model
from makemore.models.ensemble import Ensemble, EnsembleConfig
from .generating import generate

from .conftest import call
from .test_scale import FEW_STEPS, SMALL

VOCAB = Vocab(tuple("abcde"))
MEMBERS = [  # every layout and reading: windows (bigram, MLP, n-gram), whole items (GRU), a position table (transformer)
    {"model": "bigram-nn", "config": {}},
    {"model": "mlp", "config": {"block_size": 3, "n_embd": 4, "n_hidden": 8}},
    {"model": "gru", "config": {"n_embd": 4, "n_hidden": 8}},
    {"model": "transformer", "config": {"n_embd": 8, "n_layer": 1, "n_head": 2, "block_size": 6}},
    {"model": "wavenet-conv", "config": {"n_embd": 4, "n_hidden": 8}},  # BatchNorm, queues per level
]
WEIGHTS = [0.1, 0.2, 0.3, 0.25, 0.15]


def tiny_ensemble(seed: int = 0) -> Ensemble:
    torch.manual_seed(seed)
    model = Ensemble(EnsembleConfig(vocab_size=VOCAB.size, members=MEMBERS, weights=WEIGHTS)).double().eval()
    for p in model.parameters():  # random, far from the near-uniform start, so the members disagree
        p.data.normal_(0, 0.5)
    for module in model.modules():  # BatchNorm statistics away from 0 and 1, so the queues' padding counts
        if hasattr(module, "running_mean"):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model


def sequences(rows: int, length: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(1, VOCAB.size, (rows, length), generator=g)
    X[:, 0] = 0
    return X


def test_forward_is_the_weighted_mixture_of_what_each_member_predicts_at_each_position():
    model = tiny_ensemble()
    X = sequences(5, 9)  # longer than the transformer's 6 positions: it reads its last 6
    with torch.no_grad():
        mixed = torch.softmax(model(X)[0], dim=-1)  # (B, L, V)
        expected = torch.zeros_like(mixed)
        for t in range(X.shape[1]):
            seen = X[:, :t + 1]
            for member, w in zip(model.members, WEIGHTS):
                if member.layout == "windows":
                    T = member.config.block_size
                    ctx = torch.cat([torch.zeros(5, T, dtype=torch.long), seen], dim=1)[:, -T:]
                    logits = member(ctx)[0]
                else:
                    logits = member(seen[:, -6:] if member.registry_name == "transformer" else seen)[0][:, -1]
                expected[:, t] += w * torch.softmax(logits, dim=-1)
    assert torch.allclose(mixed, expected, atol=1e-12, rtol=0)
    assert torch.allclose(mixed.sum(-1), torch.ones(5, 9, dtype=torch.float64), atol=1e-12)


def test_each_cached_step_gives_the_logits_of_forward_past_the_transformers_positions():
    model = tiny_ensemble()
    X = sequences(7, 10)
    with torch.no_grad():
        full = model(X)[0]
        state, steps = model.init_state(7), []
        for t in range(X.shape[1]):
            logits, state = model.step(X[:, t], state)
            steps.append(logits)
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-12, rtol=0)


def test_cached_and_uncached_sampling_give_the_same_items():
    model = tiny_ensemble()
    cached = generate(model, VOCAB, 200, max_len=12, seed=3, batch_size=64)
    plain = generate(model, VOCAB, 200, max_len=12, seed=3, batch_size=64, cache=False)
    assert [s.item for s in cached] == [s.item for s in plain]
    assert [s.log_prob for s in cached] == pytest.approx([s.log_prob for s in plain], abs=1e-9)
    with torch.no_grad():  # branching rows share the members' caches as they share any model's
        a, b = Decoder(model, [0, 1], 4), Decoder(model, [0, 1], 4, cache=False)
        rows = torch.tensor([0, 0, 2, 3])
        assert torch.allclose(a.advance(rows, torch.tensor([1, 2, 3, 4])), b.advance(rows, torch.tensor([1, 2, 3, 4])),
                              atol=1e-12, rtol=0)


def test_em_reaches_the_best_weights_of_a_grid_and_drives_a_useless_member_to_zero():
    g = torch.Generator().manual_seed(0)
    p1 = torch.rand(2000, generator=g, dtype=torch.float64) * 0.9 + 0.05
    p2 = torch.rand(2000, generator=g, dtype=torch.float64) * 0.9 + 0.05
    log_p = torch.stack([p1.log(), p2.log()])
    w, iterations = fit_weights(log_p)
    assert abs(float(w.sum()) - 1) < 1e-12 and iterations > 1

    def objective(a: float) -> float:
        return float(torch.log(a * p1 + (1 - a) * p2).mean())

    best = max(objective(a / 10_000) for a in range(10_001))
    assert objective(float(w[0])) >= best - 1e-7
    useless = torch.stack([p1.log(), (p1 * 0.01).log()])  # the second is the first, 100 times less sure
    w, _ = fit_weights(useless)
    assert float(w[1]) < 1e-3


def test_weights_must_be_a_distribution_one_per_member():
    with pytest.raises(ValueError, match="one weight per member"):
        Ensemble(EnsembleConfig(members=MEMBERS, weights=[1.0]))
    with pytest.raises(ValueError, match="sum to 1"):
        Ensemble(EnsembleConfig(members=MEMBERS[:2], weights=[0.5, 0.6]))
    with pytest.raises(ValueError, match="trained runs"):
        Ensemble(EnsembleConfig(members=[{"model": "ensemble", "config": {}}], weights=[1.0]))


@pytest.fixture
def runs(tmp_path, small_file):
    """Three tiny runs of one split: counts, a windowed net and a sequence model."""
    made = []
    for model in ("ngram", "mlp", "gru"):
        run = tmp_path / model
        code, _, err = call("train", "-i", small_file, "--model", model, "-o", run, *FEW_STEPS, *SMALL.get(model, []))
        assert code == 0, err
        made.append(run)
    return made


def test_the_command_makes_a_run_that_every_command_takes_and_that_stands_alone(tmp_path, runs, small_file):
    out = tmp_path / "mix"
    code, stdout, err = call("ensemble", *runs, "-o", out, "--min-weight", "0")
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    assert meta["model"] == "ensemble" and [m["model"] for m in meta["config"]["members"]] == ["ngram", "mlp", "gru"]
    weights = meta["config"]["weights"]
    assert abs(sum(weights) - 1) < 1e-9 and [m["weight"] for m in meta["ensemble"]["members"]] == weights
    # each member's own val NLL, computed on the ensemble's targets, is the one its run recorded
    for member in meta["ensemble"]["members"]:
        assert member["val_nll"] == pytest.approx(member["recorded_val_nll"], abs=1e-5)
    # EM's optimum is at least as good on val as the best member alone (a one-hot weighting is a candidate)
    assert meta["metrics"]["val_nll"] <= min(m["val_nll"] for m in meta["ensemble"]["members"]) + 1e-6
    assert f"val {meta['metrics']['val_nll']:.4f}" in stdout and "weight" in stdout
    for run in runs:  # the ensemble holds its members' weights: it needs none of their folders
        for f in run.iterdir():
            f.unlink()
        run.rmdir()
    code, stdout, err = call("eval", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["val_nll"] == pytest.approx(meta["metrics"]["val_nll"], abs=1e-9)
    for argv in (["sample", out, "-n", "5", "--seed", "1"], ["score", out, "emma"], ["next", out, "em"],
                 ["sample", out, "--most-likely", "3"], ["sample", out, "-n", "2", "--suffix", "a", "--seed", "1"]):
        code, stdout, err = call(*argv)
        assert code == 0 and stdout.strip() and "Traceback" not in err, (argv, err)
    code, first, _ = call("sample", out, "-n", "5", "--seed", "1")
    assert call("sample", out, "-n", "5", "--seed", "1")[1] == first


def test_members_of_other_splits_and_other_misuse_are_refused_in_one_line(tmp_path, runs, small_file):
    other = tmp_path / "other-split"
    code, _, err = call("train", "-i", small_file, "--model", "mlp", "--split-seed", "7", "-o", other, *FEW_STEPS,
                        *SMALL["mlp"])
    assert code == 0, err
    cases = [
        (["ensemble", runs[0], other, "-o", tmp_path / "x"], "not trained on the same split"),
        (["ensemble", runs[0], "-o", tmp_path / "x"], "at least two runs"),
        (["ensemble", runs[0], tmp_path / "missing", "-o", tmp_path / "x"], "not found"),
        (["ensemble", *runs, "-o", tmp_path / "x", "--min-weight", "1"], "--min-weight"),
    ]
    for argv, message in cases:
        code, _, err = call(*argv)
        assert code in (1, 2) and message in err and "Traceback" not in err, (argv, err)
        assert len([line for line in err.splitlines() if "error" in line]) == 1
    assert not (tmp_path / "x").exists()
    code, _, err = call("ensemble", *runs[:2], "-o", tmp_path / "mix")
    assert code == 0, err
    code, _, err = call("ensemble", tmp_path / "mix", runs[2], "-o", tmp_path / "y")
    assert code == 1 and "an ensemble already" in err
    code, _, err = call("ensemble", *runs[:2], "-o", tmp_path / "mix")
    assert code == 1 and "--overwrite" in err
    code, _, err = call("ensemble", *runs[:2], "-o", runs[0], "--overwrite")
    assert code == 1 and "one of the runs being mixed" in err and (runs[0] / "model.safetensors").exists()
    code, _, err = call("train", "-i", small_file, "--model", "ensemble", "-o", tmp_path / "z")
    assert code == 2 and "invalid choice" in err


def test_a_labelled_ensemble_samples_and_classifies_by_label(tmp_path):
    from .test_labels import two_lists
    from .conftest import write_lines

    girls, boys = two_lists()
    files = [write_lines(tmp_path / "girls.txt", girls), write_lines(tmp_path / "boys.txt", boys)]
    runs = []
    for model in ("bigram-counts", "gru"):
        run = tmp_path / model
        code, _, err = call("train", "-i", files[0], "-i", files[1], "--model", model, "-o", run, *FEW_STEPS,
                            *SMALL.get(model, []))
        assert code == 0, err
        runs.append(run)
    code, _, err = call("ensemble", *runs, "-o", tmp_path / "mix", "--min-weight", "0")
    assert code == 0, err
    code, out, err = call("sample", tmp_path / "mix", "-n", "4", "--label", "boys", "--format", "json", "--seed", "1")
    assert code == 0 and {row["label"] for row in json.loads(out)["items"]} == {"boys"}, err
    code, out, err = call("classify", tmp_path / "mix", "ana", "bob", "--format", "json")
    assert code == 0 and all(abs(sum(r["probs"].values()) - 1) < 1e-9 for r in json.loads(out)["items"]), err
    code, out, err = call("eval", tmp_path / "mix")
    assert code == 0 and "majority label" in out, err
    assert math.isfinite(json.loads((tmp_path / "mix" / "run.json").read_text())["metrics"]["test_nll"])


def test_the_server_offers_an_ensemble_like_any_run(tmp_path, runs):
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from fastapi.testclient import TestClient

    from makemore.serve.app import create_app
    from makemore.serve.catalog import load_catalog

    code, _, err = call("ensemble", *runs, "-o", tmp_path / "mix")
    assert code == 0, err
    client = TestClient(create_app(load_catalog([tmp_path / "mix"], {})), base_url="http://127.0.0.1")
    listed = client.get("/api/runs").json()["runs"]
    assert listed[0]["model"] == "ensemble" and listed[0]["recipe"]["trained_with"].startswith("EM weights on val")
    run = listed[0]["id"]
    assert len(client.post("/api/sample", json={"run": run, "n": 3, "seed": 1}).json()["items"]) == 3
    assert client.post("/api/score", json={"run": run, "items": ["anna"]}).json()["items"][0]["log_prob"] < 0
    assert client.post("/api/next", json={"run": run, "prefix": "a"}).json()["next"]


def test_a_labelled_mixture_steps_as_it_reads():
    """A mixture's cached step reads a windowed member with the labels already in the indices: its window is padded
    with the label's own boundary, as forward pads it (label 0's boundary would be another label's start)."""
    import torch

    from makemore.data.labels import WithLabel
    from makemore.models.decoding import Decoder
    from makemore.models.reading import next_logits

    torch.manual_seed(0)
    members = [{"model": "gru", "config": {"n_hidden": 8, "n_embd": 4}},
               {"model": "mlp", "config": {"block_size": 4, "n_embd": 3, "n_hidden": 8}}]
    ensemble = build_model("ensemble", vocab_size=5, n_labels=2, members=members, weights=[0.5, 0.5])
    with torch.no_grad():
        for p in ensemble.parameters():  # the label vectors start at zero: give the labels a say
            p.normal_()
    view = WithLabel(ensemble.eval(), 1)
    for item in ([], [2], [2, 3], [2, 3, 4, 1, 2]):  # shorter than the mlp's window, and longer
        decoder = Decoder(view, [0, *item], 1, cache=True)
        assert decoder.cached
        expected = next_logits(view, torch.tensor([[0, *item]]))
        assert torch.allclose(torch.log_softmax(decoder.logits, -1), torch.log_softmax(expected, -1), atol=1e-6)
