"""Small lists: recipes sized to the list, `--model auto`, and runs that start from another (`init_from`)."""

import json
from types import SimpleNamespace
from dataclasses import asdict

import pytest
import torch

from makemore.data.items import Vocab, make_splits
from makemore.data.labels import ItemLabels
from makemore.errors import MakemoreError
from makemore.models import build_model, eval_mode, trainable_models
from makemore.studies.ensemble import load_members, make_ensemble, members_splits
from makemore.studies import auto
from makemore.studies.auto import AutoSpec, train_auto
from makemore.training.init_from import Base, carry_over, choose_prior_weight, config_for, read_base
from makemore.training.loop import Recipe, TrainingInterrupted
from makemore.training.pipeline import RunControl, RunSpec, resume, run
from makemore.training.recipes import REFERENCE_EXAMPLES, ListSize, get_recipe, recipe_for, sized
from makemore.training.run_folder import read_meta

BASE_ITEMS = ["anna", "bob", "carla", "dan", "emma", "fred", "gina", "hugo", "ida", "jan", "kim", "leo"] * 3
NEW_ITEMS = ["anaé", "béa", "cléo", "dané", "éma", "ana", "bé", "clé", "déa", "aé", "cab", "bac"]  # drops e..k, r, u; adds é
TINY = Recipe(steps=30, batch_size=8, optimizer="adamw", lr=0.01, eval_interval=10)


# ----------------------------------------------------------------------------- sized recipes

@pytest.mark.parametrize("model", trainable_models())
def test_a_list_as_large_as_names_keeps_the_fast_recipe(model):
    """names.txt's figures stay the fast recipes' own: sizing leaves them alone at its size (ten val checks added)."""
    fast = get_recipe(model)
    big = sized(fast, ListSize(25_626, REFERENCE_EXAMPLES), "windows")
    expected = asdict(fast) | ({"eval_interval": fast.steps // 10} if fast.steps >= 10 else {})
    assert asdict(big) == expected


def test_a_small_list_is_checked_within_a_pass_and_stops_on_patience():
    items = ["abcdef"] * 240
    recipe = recipe_for("wavenet", "fast", items, {})
    examples = 240 * 7
    assert 32 <= recipe.batch_size < get_recipe("wavenet").batch_size
    assert recipe.eval_interval <= examples / recipe.batch_size  # at least one val check per pass over the list
    assert recipe.patience > 0 and recipe.weight_decay > get_recipe("wavenet").weight_decay
    assert recipe.steps <= get_recipe("wavenet").steps
    own = recipe_for("wavenet", "fast", items, {"batch_size": 100, "patience": 0})
    assert own.batch_size == 100 and own.patience == 0  # the caller's values win


# ----------------------------------------------------------------------------- init_from: the vocabulary

def _base(tmp_path, model, labels=None, items=BASE_ITEMS):
    meta = run(items, RunSpec(model=model, recipe=TINY, seed=1), tmp_path / f"base-{model}", labels=labels)
    assert meta["status"] == "complete"
    return read_base(tmp_path / f"base-{model}")


def test_bigram_rows_carried_added_and_dropped(tmp_path):
    """W[i, j] of bigram-nn: carried where both characters are shared, the fresh init where one is new."""
    base = _base(tmp_path, "bigram-nn")
    vocab = Vocab.from_items(NEW_ITEMS)
    torch.manual_seed(5)
    fresh = build_model("bigram-nn", **config_for(base, vocab, 1, 5, {}))
    model = build_model("bigram-nn", **config_for(base, vocab, 1, 5, {}))
    model.load_state_dict(fresh.state_dict())
    record = carry_over(base, model, vocab, ())
    assert record["added"] == "é" and record["dropped"] == "efghijkru" and record["carried"] == "abcdlmno"
    old = {ch: i for i, ch in enumerate(("",) + base.vocab.chars)}
    new = ("",) + vocab.chars
    for i, a in enumerate(new):
        for j, b in enumerate(new):
            if a in old and b in old:
                assert model.W[i, j] == base.model.W[old[a], old[b]]
            else:
                assert model.W[i, j] == fresh.W[i, j]


@pytest.mark.parametrize("model_name", [m for m in trainable_models() if m not in ("bigram-counts", "ngram")])
def test_every_model_predicts_as_its_base_over_the_shared_characters(tmp_path, model_name):
    """A list whose characters are a subset of the base's: each carried logit is the base's, for every model
    (embeddings, output rows and positions all carried; the dropped characters' columns simply gone)."""
    base = _base(tmp_path, model_name)
    vocab = Vocab(tuple("abcdel"))
    model = build_model(model_name, **config_for(base, vocab, 1, 6, {}))
    carry_over(base, model, vocab, ())
    old = {ch: i for i, ch in enumerate(("",) + base.vocab.chars)}
    columns = [old[ch] for ch in ("",) + vocab.chars]
    contexts = [[0, 1, 4, 3], [0, 2, 5, 6], [0, 0, 1, 2]]  # new indices: .ade, .bel, ..ab
    x_new = torch.tensor(contexts)
    x_old = torch.tensor([[columns[i] for i in row] for row in contexts])
    if model.layout == "windows":
        block = model.config.block_size
        pad = lambda x: torch.cat([torch.zeros(x.shape[0], max(0, block - x.shape[1]), dtype=torch.long), x], 1)[:, -block:]
        x_new, x_old = pad(x_new), pad(x_old)
    with torch.no_grad(), eval_mode(model), eval_mode(base.model):
        got, want = model(x_new)[0], base.model(x_old)[0]
    torch.testing.assert_close(got, want[..., columns], rtol=1e-5, atol=1e-5)


def test_labels_recurring_by_name_keep_their_vectors(tmp_path):
    labels = ItemLabels([i % 2 for i in range(len(BASE_ITEMS))], ["girls", "boys"], {})
    base = _base(tmp_path, "wavenet", labels)
    assert base.labels == ("girls", "boys")
    vocab = Vocab.from_items(BASE_ITEMS)
    model = build_model("wavenet", **config_for(base, vocab, 2, 5, {}))
    record = carry_over(base, model, vocab, ("boys", "pets"))
    assert record["labels_carried"] == ["boys"]
    table, old = dict(model.named_parameters()), dict(base.model.named_parameters())
    name = next(k for k in table if "label" in k)
    assert torch.equal(table[name][0], old[name][1])  # boys: the base's vector
    assert torch.equal(table[name][1], torch.zeros_like(table[name][1]))  # pets: new, as a label table starts


def test_unlabelled_base_fine_tuned_on_two_files_becomes_labelled(tmp_path):
    base = _base(tmp_path, "lstm")
    items = NEW_ITEMS * 2
    labels = ItemLabels([0] * 12 + [1] * 12, ["a", "b"], {})
    meta = run(items, RunSpec(model="lstm", recipe=TINY, init_from=str(base.path)), tmp_path / "ft", labels=labels)
    assert meta["config"]["n_labels"] == 2 and [lb["name"] for lb in meta["labels"]] == ["a", "b"]
    assert meta["init_from"]["model"] == "lstm" and len(meta["init_from"]["sha256"]) == 64


def test_a_transformer_grows_its_position_table(tmp_path):
    base = _base(tmp_path, "transformer")
    longer = ["abcdeabcdeabcde" + "a" * k for k in range(12)]
    meta = run(longer, RunSpec(model="transformer", recipe=TINY, init_from=str(base.path)), tmp_path / "ft")
    assert meta["config"]["block_size"] == 27 > base.model.config.block_size


# ----------------------------------------------------------------------------- init_from: the count models

def test_bigram_counts_prior_is_the_base_counts_mapped():
    base_model = build_model("bigram-counts", vocab_size=4)  # a, b, c
    x = torch.tensor([[0], [1], [1], [2], [3]])
    y = torch.tensor([1, 2, 2, 3, 0])
    base_model.fit(x, y)
    base = Base(path=None, model=base_model, vocab=Vocab(tuple("abc")), meta={"model": "bigram-counts"})
    vocab = Vocab(tuple("bcz"))  # b, c carried; a dropped; z added
    model = build_model("bigram-counts", **config_for(base, vocab, 1, 3, {}))
    carry_over(base, model, vocab, ())
    # base: a->b 2 (index 1->2), b->c 1, c->. 1; in the new indices b=1, c=2: b->c is the one pair both share
    assert model.prior[1, 2] == 1 and model.prior[2, 0] == 1 and model.prior.sum() == 2  # .->a dropped with a
    model.config.prior_weight = 2.0
    model.fit(torch.tensor([[0]]), torch.tensor([1]))
    assert model.counts[1, 2] == 2 and model.counts[0, 1] == 1


def test_ngram_prior_weight_is_chosen_on_val_and_helps_a_list_like_its_base(tmp_path):
    base = _base(tmp_path, "ngram")
    items = BASE_ITEMS[:12] + ["anna", "emma", "ida", "leo", "dan", "gina"]
    scratch = run(items, RunSpec(model="ngram", recipe=Recipe(steps=1)), tmp_path / "scratch")
    meta = run(items, RunSpec(model="ngram", recipe=Recipe(steps=1), init_from=str(base.path)), tmp_path / "ft")
    assert meta["config"]["prior_weight"] > 0
    assert meta["metrics"]["val_nll"] < scratch["metrics"]["val_nll"]
    model = build_model("ngram", **meta["config"])
    splits = make_splits(items, model.config.block_size, vocab=Vocab(tuple(meta["vocab"])))
    assert choose_prior_weight(model, splits) == 0.0  # no prior set: nothing to weigh


# ----------------------------------------------------------------------------- init_from: runs and refusals

def test_a_fine_tuned_run_resumes_bit_for_bit(tmp_path):
    base = _base(tmp_path, "wavenet")
    spec = lambda: RunSpec(model="wavenet", recipe=Recipe(**{**asdict(TINY), "steps": 40}), init_from=str(base.path))
    straight = run(NEW_ITEMS, spec(), tmp_path / "straight")
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 15

    with pytest.raises(TrainingInterrupted):
        run(NEW_ITEMS, spec(), tmp_path / "stopped", control=RunControl(should_stop=stop))
    resumed = resume(NEW_ITEMS, tmp_path / "stopped")
    assert resumed["metrics"] == straight["metrics"]
    assert resumed["init_from"] == straight["init_from"]


def test_init_from_refuses_what_cannot_be_started_from(tmp_path, cli):
    base = _base(tmp_path, "mlp")
    new = tmp_path / "new.txt"
    new.write_text("\n".join(NEW_ITEMS) + "\n")
    (tmp_path / "empty").mkdir()
    cases = [
        (["--init-from", str(tmp_path / "empty")], "holds no checkpoint"),
        (["--init-from", str(base.path), "--n-hidden", "20"], "--n-hidden would change the shape"),
        (["--init-from", str(base.path), "--model", "lstm"], "is a mlp run"),
        (["--budget", "0"], "--budget: must be between 1 and 86,400"),  # a usage error, as every bound: exit 2
    ]
    for extra, message in cases:
        code, out, err = cli("train", "-i", new, "-o", tmp_path / "out", *extra)
        assert code == (2 if "--budget" in extra else 1) and message in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert not (tmp_path / "out").exists()
    (base.path / "model.safetensors").write_bytes(b"damaged")
    code, _, err = cli("train", "-i", new, "-o", tmp_path / "out", "--init-from", base.path)
    assert code == 1 and "damaged" in err and not (tmp_path / "out").exists()


def test_an_ensemble_is_refused_as_a_base(tmp_path):
    members = load_members([_base(tmp_path, "mlp").path, _base(tmp_path, "ngram").path])
    make_ensemble(members, members_splits(BASE_ITEMS, members), tmp_path / "mix")
    with pytest.raises(MakemoreError, match="mixture of other runs"):
        read_base(tmp_path / "mix")


# ----------------------------------------------------------------------------- auto

def test_auto_keeps_the_best_on_val_and_records_what_it_tried(tmp_path):
    meta = train_auto(BASE_ITEMS, AutoSpec(budget=60, models=["bigram-counts", "ngram"]), tmp_path / "auto")
    tried = {t["model"]: t for t in meta["auto"]["tried"]}
    assert set(tried) == {"bigram-counts", "ngram"}
    best_single = min(t["val_nll"] for t in tried.values())
    chosen = meta["auto"]["chose"]
    assert meta["metrics"]["val_nll"] <= best_single + 1e-9
    assert chosen == "ensemble" or tried[chosen]["val_nll"] == best_single
    assert read_meta(tmp_path / "auto")["auto"]["chose"] == chosen


def test_auto_is_the_default_command(tmp_path, cli):
    items = tmp_path / "list.txt"
    items.write_text("\n".join(BASE_ITEMS) + "\n")
    code, out, err = cli("train", "-i", items, "-o", tmp_path / "run", "--budget", "1")
    assert code == 0, err
    assert "chose:" in out and "candidate" in out and out.strip().splitlines()[-1].startswith("train ")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["auto"]["budget"] == 1.0 and meta["auto"]["tried"][0]["model"] == "ngram"
    assert cli("sample", tmp_path / "run", "-n", 3)[0] == 0
    code, _, err = cli("train", "-i", items, "-o", tmp_path / "x", "--model", "auto", "--steps", "5")
    assert code == 1 and "--steps" in err and "auto" in err


def test_auto_starts_no_candidate_once_the_budget_is_spent(tmp_path, monkeypatch):
    clock = iter(range(0, 10 ** 6, 30))  # each look at auto's clock: 30 s later
    monkeypatch.setattr(auto, "time", SimpleNamespace(perf_counter=lambda: next(clock)))  # auto's clock alone
    meta = train_auto(BASE_ITEMS, AutoSpec(budget=50, models=["ngram", "bigram-counts", "mlp"]), tmp_path / "auto")
    status = {t["model"]: t["status"] for t in meta["auto"]["tried"]}
    assert status["ngram"] == "complete" and status["mlp"] == "skipped: the budget was spent"
    assert meta["auto"]["chose"] == "ngram"  # the one candidate that finished


def test_a_run_told_to_finish_ends_there_complete_with_its_best_weights(tmp_path):
    """RunControl.should_finish (auto's budget): the run ends at that step as early stopping ends it, complete."""
    calls = {"n": 0}

    def finish() -> bool:
        calls["n"] += 1
        return calls["n"] >= 25

    recipe = Recipe(steps=200, batch_size=8, optimizer="adamw", lr=0.01, eval_interval=10)
    meta = run(BASE_ITEMS, RunSpec(model="mlp", recipe=recipe), tmp_path / "r", control=RunControl(should_finish=finish))
    assert meta["status"] == "complete" and meta["stopped_early"] and meta["step"] == 25
    assert meta["weights_step"] in (10, 20, 25) and read_meta(tmp_path / "r")["status"] == "complete"


def test_auto_refuses_a_list_too_small_to_choose_on(tmp_path, cli):
    with pytest.raises(MakemoreError, match="at least 20 items"):
        train_auto(BASE_ITEMS[:12], AutoSpec(), tmp_path / "auto")
    assert not (tmp_path / "auto").exists()
    small = tmp_path / "small.txt"
    small.write_text("\n".join(BASE_ITEMS[:12]) + "\n")
    code, out, err = cli("train", "-i", small, "-o", tmp_path / "auto")
    assert code == 1 and "ngram, lstm, wavenet, gru, mlp" in err and "has 12" in err and out == ""
    assert not (tmp_path / "auto").exists()  # refused before the run folder (or its lock) is made


def test_init_from_names_uses_the_base_kept_in_the_cache(tmp_path, cli):
    """`--init-from names` finds its base in the cache folder (trained there once; here put there beforehand)."""
    folder = tmp_path / "cache" / "makemore" / "bases" / "names-mlp"  # conftest: XDG_CACHE_HOME is tmp_path/cache
    run(BASE_ITEMS, RunSpec(model="mlp", recipe=TINY, seed=1), folder)
    new = tmp_path / "new.txt"
    new.write_text("\n".join(NEW_ITEMS) + "\n")
    code, out, err = cli("train", "-i", new, "--init-from", "names", "--model", "mlp", "-o", tmp_path / "ft",
                         "--steps", "20", "--no-plot")
    assert code == 0, err
    meta = read_meta(tmp_path / "ft")
    assert meta["init_from"]["path"] == str(folder) and meta["recipe_name"] == "finetune+overrides"
    assert meta["init_from"]["added"] == "é" and "training the mlp base" not in err
