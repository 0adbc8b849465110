"""sample (with controls), score, next and plot-bigrams: the library parts and the commands.

The data is a generated list with non-ASCII letters, spaces, hyphens, apostrophes, digits and '.',
so every check also covers characters outside a-z. Two tiny runs are shared by the whole module:
an MLP trained 30 steps and the fitted bigram counts.
"""

import io
import json
import math
import random

import pytest
import torch

from makemore import cli
from makemore.data.items import BOUNDARY, Vocab, build_windows
from makemore.data.builtin import sha256_of
from makemore.models import build_model
from makemore.training.pipeline import RunSpec, run
from makemore.generation import batches as sample_module
from makemore.generation.request import check_controls
from makemore.generation.sampler import truncate_logits

from .generating import generate
from makemore.generation.scoring import (bigram_count_matrix, explain_item, next_char_probs, percentile_of, score_items,
                              top_next_chars)
from makemore.training.run_folder import load_run
from makemore.errors import MakemoreError
from makemore.training.loop import Recipe

from .conftest import call, write_lines

SYLLABLES = ["an", "é", "ma", "ø", "ri", "ßa", "ka", "lu", "ño", "jo", "ël"]
SEPARATORS = ["", "", "", "", " ", "-", "'", "."]


def make_items(count: int = 240, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    items = set()
    while len(items) < count:
        parts = [rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))]
        item = parts[0] + "".join(rng.choice(SEPARATORS) + p for p in parts[1:])
        if rng.random() < 0.1:
            item += str(rng.randint(0, 9))
        items.add(item)
    return sorted(items)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("generate")
    items = make_items()
    path = write_lines(root / "unicode.txt", items)
    recorded = {"dataset": {"path": str(path), "sha256": sha256_of(path)}}
    mlp_dir, bc_dir = root / "mlp", root / "bigram"
    run(items, RunSpec(model="mlp", recipe=Recipe(steps=30, batch_size=32, optimizer="adamw", lr=0.01)), mlp_dir,
        extra_meta=recorded)
    run(items, RunSpec(model="bigram-counts", recipe=Recipe()), bc_dir, extra_meta=recorded)
    return {"items": items, "path": path, "mlp": mlp_dir, "bigram": bc_dir, "root": root}




def one_line_error(code, out, err, code_expected=1):
    assert code == code_expected and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("makemore: error:"), err
    return err


# ----------------------------------------------------------------------------- sample

def test_data_has_the_awkward_characters(data):
    chars = set(Vocab.from_items(data["items"]).chars)
    assert {".", " ", "-", "'", "é", "ø", "ß", "ñ", "ë"} <= chars and any(c.isdigit() for c in chars)


def test_same_seed_same_items_in_every_format(capsys, data):
    code, text, err = call("sample", data["mlp"], "-n", "25", "--seed", "3")
    assert code == 0, err
    items = text.splitlines()
    assert len(items) == 25 and all(set(it) <= set("".join(data["items"])) for it in items)
    assert call("sample", data["mlp"], "-n", "25", "--seed", "3")[1] == text
    assert call("sample", data["mlp"], "-n", "25", "--seed", "4")[1] != text
    payload = json.loads(call("sample", data["mlp"], "-n", "25", "--seed", "3", "--format", "json")[1])
    assert [r["item"] for r in payload["items"]] == items
    assert payload["seed"] == 3 and payload["settings"]["n"] == 25 and payload["max_len"] == payload["settings"]["max_len"]
    assert all(r["log_prob"] < 0 for r in payload["items"])
    import csv

    rows = list(csv.reader(io.StringIO(call("sample", data["mlp"], "-n", "25", "--seed", "3",
                                               "--format", "csv")[1])))
    assert rows[0] == ["item", "log_prob"] and [r[0] for r in rows[1:]] == items  # quoting keeps spaces, commas


def test_run_generate_is_the_model_level_generate_with_the_run_defaults(data):
    from makemore import GenerateRequest, Run

    run = Run.load(data["mlp"], "cpu")
    out = run.generate(GenerateRequest(n=12, seed=5))
    assert out.request.max_len == min(2 * run.max_item_len, 100_000) and out.request.seed == 5
    assert out.items == generate(run.model, run.vocab, 12, max_len=out.request.max_len, seed=5)
    assert [s.item for s in run.generate(GenerateRequest(n=12, seed=6)).items] != [s.item for s in out.items]
    model, vocab = run.model, run.vocab
    # more items than one batch: drawn batch after batch, still deterministic
    many = generate(model, vocab, 50, max_len=20, seed=1, batch_size=16)
    assert len(many) == 50 and many == generate(model, vocab, 50, max_len=20, seed=1, batch_size=16)


def test_prefix_conditions_every_item(capsys, data):
    for prefix in ("é", "ma ", "lu.", "ka-ñ"):
        code, out, err = call("sample", data["mlp"], "-n", "30", "--prefix", prefix, "--seed", "1")
        assert code == 0, err
        items = out.splitlines()
        assert len(items) == 30 and all(it.startswith(prefix) for it in items)
    model, vocab, _ = load_run(data["bigram"])
    # conditioning, not filtering: the first character after the prefix follows p(next | prefix)
    got = generate(model, vocab, 4000, max_len=10, seed=0, prefix="ma")
    first = [s.item[2] if len(s.item) > 2 else None for s in got]
    probs = next_char_probs(model, vocab, "ma")
    for index in torch.topk(probs, 3).indices.tolist():
        expected = probs[index].item()
        share = sum(f == (None if index == BOUNDARY else vocab.chars[index - 1]) for f in first) / len(first)
        assert abs(share - expected) < 0.03


def test_prefix_with_unknown_characters_names_them(capsys, data):
    err = one_line_error(*call("sample", data["mlp"], "--prefix", "Qéz"))
    assert "'Q'" in err and "'z'" in err and "'é'" not in err


def test_length_bounds_hold_while_sampling(capsys, data):
    code, out, err = call("sample", data["mlp"], "-n", "200", "--min-len", "6", "--max-len", "8")
    lengths = [len(it) for it in out.splitlines()]
    assert code == 0 and len(lengths) == 200 and min(lengths) >= 6 and max(lengths) <= 8
    model, vocab, _ = load_run(data["mlp"])
    cut = generate(model, vocab, 200, max_len=3, seed=0)
    assert max(len(s.item) for s in cut) == 3 and any(len(s.item) < 3 for s in cut)
    exact = generate(model, vocab, 50, max_len=5, min_len=5, seed=0, prefix="an")
    assert all(len(s.item) == 5 and s.item.startswith("an") for s in exact)


def test_novel_gives_exactly_n_new_distinct_items(capsys, data):
    training = set(data["items"])
    code, out, err = call("sample", data["mlp"], "-n", "300", "--novel", "--seed", "2")
    items = out.splitlines()
    assert code == 0, err
    assert len(items) == 300 and len(set(items)) == 300 and not (set(items) & training)


def test_novel_gives_up_with_a_clear_message(capsys, data):
    # greedy decoding has one possible item: it cannot give 5 different ones
    err = one_line_error(*call("sample", data["mlp"], "-n", "5", "--novel", "--top-k", "1"))
    assert err.startswith("makemore: error: --novel") and "only 1 distinct item was found" in err and "5 were asked" in err


def test_novel_without_the_training_file_says_to_pass_i(capsys, data, tmp_path):
    moved = data["root"] / "mlp-moved"
    if not moved.exists():
        import shutil

        shutil.copytree(data["mlp"], moved)
        meta = json.loads((moved / "run.json").read_text())
        meta["dataset"]["path"] = str(tmp_path / "gone.txt")
        (moved / "run.json").write_text(json.dumps(meta))
    err = one_line_error(*call("sample", moved, "-n", "5", "--novel"))
    assert "-i" in err
    other = write_lines(tmp_path / "other.txt", ["x"] * 20)
    assert "sha256" in one_line_error(*call("sample", moved, "-n", "5", "--novel", "-i", other))
    code, out, err = call("sample", moved, "-n", "5", "--novel", "-i", data["path"])
    assert code == 0 and len(out.splitlines()) == 5


def greedy_decode(model, vocab, max_len):
    context, out = [BOUNDARY] * model.config.block_size, []
    for _ in range(max_len):
        logits, _ = model(torch.tensor([context]))
        ix = int(logits[0].argmax())
        if ix == BOUNDARY:
            break
        out.append(ix)
        context = context[1:] + [ix]
    return vocab.decode(out)


def test_top_k_1_is_greedy_and_tiny_top_p_too(data):
    model, vocab, _ = load_run(data["mlp"])
    greedy = greedy_decode(model, vocab, 12)
    assert {s.item for s in generate(model, vocab, 40, max_len=12, top_k=1, seed=0)} == {greedy}
    assert {s.item for s in generate(model, vocab, 40, max_len=12, top_k=1, seed=9)} == {greedy}
    assert {s.item for s in generate(model, vocab, 40, max_len=12, top_p=1e-6, seed=3)} == {greedy}


def capture_draw_probs(monkeypatch):
    """Record the probabilities each draw of the sampler (`makemore.generation.sampler.draw`) draws from."""
    seen = []
    real = sample_module.draw

    def spy(probs, *args, **kwargs):
        seen.append(probs.clone())
        return real(probs, *args, **kwargs)

    monkeypatch.setattr(sample_module, "draw", spy)
    return seen


def test_draw_follows_the_probabilities_and_never_draws_a_zero():
    """The inverse-CDF draw against the probabilities it was given: 200,000 draws, within 4 standard errors."""
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]]).repeat(100_000, 1)
    drawn = sample_module.draw(probs, torch.Generator().manual_seed(0)).view(100_000, 2)
    assert bool((drawn[:, 1] == 3).all())
    freq = torch.bincount(drawn[:, 0], minlength=5).double() / 100_000
    expected = probs[0].double()
    assert freq[1] == 0 and freq[4] == 0
    assert torch.all((freq - expected).abs() <= 4 * (expected * (1 - expected) / 100_000).sqrt() + 1e-12)
    same = sample_module.draw(probs, torch.Generator().manual_seed(0)).view(100_000, 2)
    assert torch.equal(drawn, same)  # the same generator state gives the same draws


@pytest.mark.parametrize("chars", ["abc", "é ø-ß'", "a\0b", "x😀y"])
def test_batch_decoding_is_decode_of_each_row(chars):
    """`sample.texts` (a batch at once, through numpy strings) against `Vocab.decode` row by row: any characters
    (NUL, which a numpy string cannot end on, takes the row-by-row path), with and without a prefix."""
    vocab = Vocab(tuple(chars))
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(0, 7, (200,), generator=g)
    out = torch.randint(1, vocab.size, (200, 7), generator=g)
    out[torch.arange(7)[None] >= lengths[:, None]] = BOUNDARY  # each row: its characters, then boundaries
    rows = sample_module.index_lists(out, [])
    assert [len(r) for r in rows] == lengths.tolist()
    for prefix in ("", vocab.chars[-1]):
        assert sample_module.texts(vocab, out, prefix) == [prefix + vocab.decode(r) for r in rows]

@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_temperature_scales_the_logits(monkeypatch, data, temperature):
    model, vocab, _ = load_run(data["mlp"])
    seen = capture_draw_probs(monkeypatch)
    generate(model, vocab, 4, max_len=5, seed=0, temperature=temperature)
    logits, _ = model(torch.zeros((1, model.config.block_size), dtype=torch.long))
    expected = torch.softmax(logits[0] / temperature, dim=-1)
    assert torch.allclose(seen[0][0], expected, atol=1e-6)


def test_top_k_and_top_p_keep_the_right_characters(monkeypatch, data):
    model, vocab, _ = load_run(data["mlp"])
    logits, _ = model(torch.zeros((1, model.config.block_size), dtype=torch.long))
    p = torch.softmax(logits[0], dim=-1)
    seen = capture_draw_probs(monkeypatch)
    generate(model, vocab, 2, max_len=3, seed=0, top_k=5)
    kept = seen[0][0] > 0
    assert int(kept.sum()) == 5 and set(kept.nonzero().flatten().tolist()) == set(torch.topk(p, 5).indices.tolist())
    assert torch.allclose(seen[0][0][kept], p[kept] / p[kept].sum(), atol=1e-6)
    seen.clear()
    generate(model, vocab, 2, max_len=3, seed=0, top_p=0.5)
    kept = seen[0][0] > 0
    ordered = torch.sort(p, descending=True).values
    smallest = int((torch.cumsum(ordered, 0) < 0.5).sum()) + 1  # fewest characters with mass >= 0.5
    assert int(kept.sum()) == smallest and p[kept].sum() >= 0.5 - 1e-6
    # the filter alone, on a known row
    row = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(truncate_logits(row, top_p=0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(truncate_logits(row, top_k=3, top_p=0.95)).tolist() == [[True, True, True, False]]


def test_min_len_masks_the_end_token(monkeypatch, data):
    model, vocab, _ = load_run(data["mlp"])
    seen = capture_draw_probs(monkeypatch)
    generate(model, vocab, 3, max_len=6, min_len=2, seed=0)
    assert seen[0][:, BOUNDARY].eq(0).all() and seen[1][:, BOUNDARY].eq(0).all()
    assert seen[2][:, BOUNDARY].gt(0).all()


def test_batchnorm_model_samples_in_eval_mode_and_is_restored():
    torch.manual_seed(0)
    model = build_model("mlp-bn", vocab_size=5)
    vocab = Vocab(("a", "b", "c", "d"))
    model.train()
    items = generate(model, vocab, 30, max_len=6, seed=0)
    assert model.training and len(items) == 30
    model.eval()
    assert generate(model, vocab, 30, max_len=6, seed=0) == items


# ----------------------------------------------------------------------------- score

def test_sampled_log_prob_equals_score(capsys, data):
    code, out, err = call("sample", data["mlp"], "-n", "20", "--prefix", "é", "--max-len", "6",
                             "--format", "json", "--seed", "7")
    sampled = json.loads(out)["items"]
    assert code == 0 and any(len(r["item"]) == 6 for r in sampled)  # some were ended by --max-len
    code, out, err = call("score", data["mlp"], *[r["item"] for r in sampled], "--format", "json")
    assert code == 0, err
    scored = json.loads(out)["items"]
    for s, r in zip(sampled, scored):
        assert s["item"] == r["item"] and s["log_prob"] == pytest.approx(r["log_prob"], abs=1e-4)


def test_score_nll_per_char_is_the_loss_on_the_item_windows(data):
    model, vocab, _ = load_run(data["mlp"])
    for item in ("é-ma", "lu.ka 3", "an"):
        (score,) = score_items(model, vocab, [item])
        X, Y = build_windows([item], vocab, model.config.block_size)
        _, loss = model(X, Y)
        assert score.predicted == len(item) + 1 == X.shape[0]
        assert score.nll_per_char == pytest.approx(loss.item(), abs=1e-5)
        steps = explain_item(model, vocab, item)
        assert [s.index for s in steps][-1] == BOUNDARY
        assert sum(math.log(s.prob) for s in steps) == pytest.approx(score.log_prob, abs=1e-5)


def test_score_table_percentile_and_explain(capsys, data):
    code, out, err = call("score", data["mlp"], "ma", "é-ø", "--explain")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["item", "log_prob", "nll/char", "percentile"]
    row = lines[1].split()
    assert row[0] == "ma" and 0 <= float(row[3]) <= 100
    assert "<end>" in out and "'é'" in out and "'-'" in out
    model, vocab, meta = load_run(data["mlp"])
    from makemore.data.items import split_items

    train = sorted(s.log_prob for s in score_items(model, vocab, split_items(data["items"], 42)[0]))
    payload = json.loads(call("score", data["mlp"], "ma", "--format", "json")[1])
    assert payload["items"][0]["percentile"] == pytest.approx(percentile_of(payload["items"][0]["log_prob"], train))
    assert percentile_of(1.0, [0.0, 1.0, 2.0, 3.0]) == 37.5


def test_score_reads_stdin_and_omits_percentile_without_training_file(capsys, monkeypatch, data, tmp_path):
    moved = tmp_path / "r"
    import shutil

    shutil.copytree(data["mlp"], moved)
    meta = json.loads((moved / "run.json").read_text())
    del meta["dataset"]
    (moved / "run.json").write_text(json.dumps(meta))
    monkeypatch.setattr("sys.stdin", io.StringIO("ma ri\r\n\nlu.ka\n"))
    code, out, err = call("score", moved)
    assert code == 0 and "note: percentile omitted" in err
    lines = out.splitlines()
    assert lines[0].split() == ["item", "log_prob", "nll/char"] and len(lines) == 3
    assert lines[1].startswith("ma ri ") and lines[2].startswith("lu.ka ")


def test_score_unknown_characters_is_one_line_naming_them(capsys, data):
    err = one_line_error(*call("score", data["mlp"], "ma", "xyz-é"))
    assert "'x'" in err and "'y'" in err and "'z'" in err


# ----------------------------------------------------------------------------- next

def test_next_matches_the_softmax_of_the_logits(capsys, data):
    model, vocab, _ = load_run(data["mlp"])
    context = [BOUNDARY] * model.config.block_size + vocab.encode("ma")
    logits, _ = model(torch.tensor([context[-model.config.block_size:]]))
    expected = torch.softmax(logits[0], dim=-1)
    top = top_next_chars(model, vocab, "ma", k=8)
    assert len(top) == 8 and sum(p for _, p in top) <= 1 + 1e-9
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    for index, p in top:
        assert p == pytest.approx(expected[index].item(), abs=1e-6)
    everything = top_next_chars(model, vocab, "ma", k=1000)
    assert len(everything) == vocab.size and sum(p for _, p in everything) == pytest.approx(1, abs=1e-5)
    code, out, err = call("next", data["bigram"], "lu", "-k", str(vocab.size))
    assert code == 0, err
    shown = [line.split()[0] for line in out.splitlines()[1:]]
    assert "<end>" in shown and "'.'" in shown and "' '" not in shown  # ' ' splits; check it below
    assert "' '" in out
    probs = [float(line.split()[-1]) for line in out.splitlines()[1:]]
    assert len(probs) == vocab.size and sum(probs) == pytest.approx(1, abs=1e-3)
    err = one_line_error(*call("next", data["mlp"], "maQ"))
    assert "'Q'" in err and "prefix" in err


# ----------------------------------------------------------------------------- plot-bigrams

def test_bigram_counts_and_plot(capsys, data, tmp_path):
    counts, vocab = bigram_count_matrix(data["items"])
    X, Y = build_windows(data["items"], vocab, 1)
    model = build_model("bigram-counts", vocab_size=vocab.size)
    model.fit(X, Y)
    assert torch.equal(counts, model.counts) and int(counts.sum()) == sum(len(it) + 1 for it in data["items"])
    pytest.importorskip("matplotlib")
    png = tmp_path / "b.png"
    code, out, err = call("plot-bigrams", "-i", data["path"], "-o", png)
    assert code == 0 and out == "" and "wrote" in err
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_is_one_line(capsys, monkeypatch, data, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    err = one_line_error(*call("plot-bigrams", "-i", data["path"], "-o", tmp_path / "b.png"))
    assert "pip install 'makemore[plot]'" in err


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("options, words, code", [
    (["--temperature", "0"], "--temperature", 2),
    (["--temperature", "-1"], "--temperature", 2),
    (["--top-k", "0"], "--top-k", 2),
    (["--top-p", "0"], "--top-p", 2),
    (["--top-p", "1.5"], "--top-p", 2),
    (["--min-len", "5", "--max-len", "3"], "--min-len", 1),
    (["--max-len", "0"], "--max-len", 2),
    (["--min-len", "-1"], "--min-len", 2),
    (["-n", "0"], "-n", 2),
    (["-n", "1000001"], "-n", 2),
    (["--prefix", "anan", "--max-len", "3"], "prefix", 1),
])
def test_bad_sample_options_are_refused_before_any_work(capsys, tmp_path, options, words, code):
    # a run directory that does not exist: the options must be refused before it is looked at; a value out of
    # its bound is a usage error (2, from the argument parser), two values that contradict each other are 1
    err = one_line_error(*call("sample", tmp_path / "no-run", *options), code_expected=code)
    assert words in err


@pytest.mark.parametrize("argv", [["sample", "R", "--temperature", "hot"], ["sample", "R", "--format", "xml"],
                                  ["next", "R", "ma", "-k", "0"]])
def test_malformed_values_are_argparse_errors(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_check_controls_is_the_library_guard():
    check_controls(n=1, max_len=1, temperature=0.1, top_k=1, top_p=1.0, min_len=1)
    for bad in ({"temperature": float("nan")}, {"top_p": 0.0}, {"top_k": 0}, {"n": 0}, {"min_len": 3, "max_len": 2}):
        with pytest.raises(MakemoreError):
            check_controls(**bad)
