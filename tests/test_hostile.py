"""Hostile input and hostile conditions: every case works or ends with one line saying why, and a run
directory is never left half-written.

- generated files and strings (hypothesis): random Unicode, control characters, NUL, invalid UTF-8, a
  byte-order mark, CRLF and bare-CR line ends, huge lines, one repeated item, only whitespace;
- every command's options out of range, refused before any work;
- SIGKILL at random moments of training and saving, and a crash between any two file writes;
- a read-only run directory and a full disk;
- the same seed in fresh processes: the same split, losses, weights and samples.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from makemore.training.run_folder import BEST_WEIGHTS, META, METRICS, TRAIN_STATE, WEIGHTS, load_run, load_train_state, read_meta
from makemore.cli import main
from makemore.data.items import read_items
from makemore.errors import MakemoreError
from makemore.models import trainable_models
from makemore.training.pipeline import RunControl, RunSpec, resume, run
from makemore.training.loop import Recipe, TrainingInterrupted

from .conftest import call

RUN_FILES = (META, TRAIN_STATE, WEIGHTS, BEST_WEIGHTS, METRICS)
QUICK = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TINY_TRAIN = ["--steps", "3", "--batch-size", "8", "--eval-interval", "2", "--threads", "1", "--no-plot"]


def assert_works_or_one_line_error(code, out, err, codes=(1, 2)) -> None:
    """Exit 0, or an exit code of `codes` whose error is the last line of stderr: `makemore: error: ...`, no traceback."""
    assert "Traceback" not in err
    if code == 0:
        return
    assert code in codes, (code, err)
    lines = err.rstrip("\n").split("\n")
    assert lines[-1].startswith("makemore: error: "), err
    assert sum(line.startswith("makemore: error:") for line in lines) == 1, err
    assert all(line.startswith(("training ", "note: ", "resuming ")) for line in lines[:-1]), err


def assert_run_complete(run_dir: Path, resume_point_gone: bool = True) -> None:
    meta = read_meta(run_dir)
    assert meta["status"] == "complete"
    load_run(run_dir)
    if resume_point_gone:  # (a kill just after run.json said "complete" may leave it: ignored, then)
        assert not (run_dir / TRAIN_STATE).exists()
    assert not list(run_dir.glob(".*.tmp"))


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file() and p.name != ".lock"}


# ----------------------------------------------------------------------------- hostile files and strings

ANY_CHAR = st.characters(exclude_categories=("Cs",))  # every code point a UTF-8 file can hold: controls, NUL...
NASTY = "\x00\t\x0b\x0c\x1c\x1e\x7f\x85\u00a0\u200b\u200e\u2028\u2029\u202e\ufeff\ufffd\U0001f600é\u0301 .-'"


@st.composite
def hostile_files(draw) -> bytes:
    kind = draw(st.sampled_from(["lines"] * 4 + ["few", "repeated", "whitespace", "huge", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    text_chars = st.one_of(ANY_CHAR, st.sampled_from(NASTY), st.sampled_from("abcdef"))
    if kind == "repeated":
        lines = [draw(st.text(text_chars, min_size=1, max_size=6))] * draw(st.integers(5, 40))
    elif kind == "whitespace":
        lines = draw(st.lists(st.text(st.sampled_from(" \t\x0b\x0c\u00a0\u3000\u2028"), max_size=4), max_size=20))
    else:
        lines = draw(st.lists(st.text(text_chars, max_size=12), min_size=0 if kind == "few" else 12, max_size=40))
        if kind == "huge":
            lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from("ab\x00é")) * draw(st.integers(900, 2500)))
    end = draw(st.sampled_from(["\n", "\n", "\r\n", "\r\n", "\r", "mixed"]))
    if end == "mixed":
        text = "".join(line + draw(st.sampled_from(["\n", "\r\n", "\r"])) for line in lines)
    else:
        text = end.join(lines) + draw(st.sampled_from(["", end]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    data = text.encode("utf-8")
    if draw(st.integers(0, 4)) == 0:  # now and then a byte that is not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe9", b"\x80"])) + data[at:]
    return data


@settings(max_examples=36, derandomize=True, **QUICK)  # derandomized: a failure repeats on every run
@given(data=hostile_files(), model=st.sampled_from(trainable_models()))
def test_train_on_hostile_files_works_or_says_why_in_one_line(data, model):
    with tempfile.TemporaryDirectory() as tmp:
        path, run_dir = Path(tmp) / "data.txt", Path(tmp) / "run"
        path.write_bytes(data)
        code, out, err = call("train", "-i", path, "--model", model, "-o", run_dir, *TINY_TRAIN)
        assert_works_or_one_line_error(code, out, err, codes=(1,))  # refused data is exit code 1, as promised
        event("trained" if code == 0 else err.replace(str(path), "FILE")[17:60])
        if code != 0:  # the data is refused before anything is written
            assert not any((run_dir / name).exists() for name in RUN_FILES)
            return
        assert_run_complete(run_dir)
        items = read_items(path)
        code, out, err = call("sample", run_dir, "-n", "3", "--seed", "1", "--max-len", "30")
        assert code == 0 and err == "" and len(out.split("\n")) == 4
        code, out, err = call("score", run_dir, "--", *items[:3])  # items that begin with '-' too
        assert code == 0 and len(out.split("\n")) == 5, err
        code, out, err = call("next", run_dir, "--", items[0])
        assert code == 0, err


@pytest.fixture(scope="module")
def nasty_run(tmp_path_factory):
    """An MLP trained a few steps on items made of the nastiest characters a UTF-8 file can hold."""
    torch.set_num_threads(1)
    rng = random.Random(0)
    alphabet = NASTY + "abc\r"  # a CR inside an item is kept (only a line's last CR is a line end)
    items = sorted({"a" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(200)})
    items = [item for item in items if not item.endswith("\r")]
    root = tmp_path_factory.mktemp("nasty")
    path = root / "nasty.txt"
    path.write_bytes("\n".join(items).encode("utf-8") + b"\n")
    assert read_items(path) == items
    run(items, RunSpec(model="mlp", recipe=Recipe(steps=20, batch_size=32, optimizer="adamw", lr=0.01)), root / "run")
    return root / "run", set("".join(items))


STRINGS = st.text(st.one_of(st.characters(), st.sampled_from(NASTY + "abc")), max_size=25)  # lone surrogates too


@settings(max_examples=30, **QUICK)
@given(items=st.lists(STRINGS, max_size=4))
def test_score_takes_any_strings(nasty_run, items):
    run_dir, known = nasty_run
    code, out, err = call("score", run_dir, "--", *items, stdin=b"")  # no items: stdin is read (empty here)
    assert_works_or_one_line_error(code, out, err)
    if not items:
        assert code == 1 and "standard input was empty" in err
        return
    assert (code == 0) == all(set(item) <= known for item in items), err
    if code == 0:
        assert out.count("\n") == len(items) + 1
    else:
        assert "never seen" in err


@settings(max_examples=25, **QUICK)
@given(data=st.one_of(st.binary(max_size=200), st.lists(STRINGS, max_size=5).map(lambda s: "\r\n".join(s).encode("utf-8", "surrogatepass"))))
def test_score_takes_any_bytes_on_stdin(nasty_run, data):
    run_dir, _ = nasty_run
    assert_works_or_one_line_error(*call("score", run_dir, stdin=data))


@settings(max_examples=30, **QUICK)
@given(prefix=STRINGS, max_len=st.integers(1, 40), extra=st.sampled_from([[], ["--format", "json"], ["--min-len", "3"]]))
def test_sample_prefix_and_next_take_any_string(nasty_run, prefix, max_len, extra):
    run_dir, known = nasty_run
    code, out, err = call("sample", run_dir, "-n", "4", "--max-len", max_len, f"--prefix={prefix}", *extra)
    assert_works_or_one_line_error(code, out, err)
    fits = set(prefix) <= known and len(prefix) <= max_len and ("--min-len" not in extra or max_len >= 3)
    assert (code == 0) == fits, err
    if code == 0 and not extra:
        lines = out.split("\n")[:-1]
        assert len(lines) == 4 and all(line.startswith(prefix) and len(line) <= max_len for line in lines)
    code, out, err = call("next", run_dir, "-k", "3", "--", prefix)
    assert_works_or_one_line_error(code, out, err)
    assert (code == 0) == (set(prefix) <= known), err


def test_hostile_files_and_names_in_a_real_process(tmp_path):
    """No traceback from the real command: a valid but nasty file under a name that is not UTF-8, trained into a
    folder whose name is not UTF-8 either; then the same with a file that is not UTF-8 text."""
    rng = random.Random(1)
    items = ["\ufeffzero"] + ["x" + "".join(rng.choice(NASTY + "ab") for _ in range(rng.randint(1, 8))) for _ in range(40)]
    items.append("y" * 999)  # a huge line, just under the bound
    data = "\r\n".join(items).encode("utf-8")
    root = os.fsencode(tmp_path)
    src, run_dir = root + b"/in\xfe.txt", root + b"/run\xff"
    with open(src, "wb") as f:
        f.write(b"\xef\xbb\xbf" + data)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    train = subprocess.run([sys.executable, "-m", "makemore", "train", b"-i", src, "--model", "mlp", b"-o", run_dir,
                            *TINY_TRAIN], capture_output=True, env=env, timeout=120)
    assert train.returncode == 0, train.stderr.decode(errors="replace")
    sample = subprocess.run([sys.executable, "-m", "makemore", "sample", run_dir, "-n", "5", "--format", "json"],
                            capture_output=True, env=env, timeout=120)
    assert sample.returncode == 0, sample.stderr.decode(errors="replace")
    assert len(json.loads(sample.stdout.decode("utf-8"))["items"]) == 5
    with open(src, "wb") as f:
        f.write(data.replace(b"zero", b"z\xe9ro"))  # Latin-1 in a UTF-8 file
    bad = subprocess.run([sys.executable, "-m", "makemore", "train", b"-i", src, "--model", "mlp", b"-o",
                          run_dir + b"2", *TINY_TRAIN], capture_output=True, env=env, timeout=120)
    err = bad.stderr.decode()
    assert bad.returncode == 1 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("makemore: error: ") and "not UTF-8" in err
    assert not os.path.exists(run_dir + b"2/" + META.encode())


@pytest.mark.parametrize("content, words", [
    (b"anna\rbob\rcarl\rdave\r" * 5, "bare CR"),
    (b"x" * 2000 + b"\n" + b"y" * 3000 + b"\n", "every item is longer"),
    (b" \t\n\xc2\xa0\n\r\n", "no items"),
])
def test_files_refused_with_what_to_do(tmp_path, content, words):
    path = tmp_path / "f.txt"
    path.write_bytes(content)
    code, out, err = call("train", "-i", path, "-o", tmp_path / "r", "--skip-long", *TINY_TRAIN)
    assert_works_or_one_line_error(code, out, err)
    assert code == 1 and words in err and not (tmp_path / "r").exists()


def test_a_device_or_pipe_is_not_read_forever(tmp_path):
    code, out, err = call("train", "-i", "/dev/zero", "-o", tmp_path / "r", *TINY_TRAIN)
    assert code == 1 and "not a regular file" in err and not (tmp_path / "r").exists()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    code, out, err = call("plot-bigrams", "-i", fifo, "-o", tmp_path / "b.png")
    assert code == 1 and "not a regular file" in err


# ----------------------------------------------------------------------------- options out of range

MISSING = "/nonexistent/makemore-test"  # any work would fail on it with another message: the option must go first
OUT_OF_RANGE = [
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--steps", "0"], "--steps"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--steps", "-5"], "--steps"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--batch-size", "-1"], "--batch-size"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--lr", "0"], "--lr"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--lr", "-0.1"], "--lr"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--lr", "nan"], "--lr"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--lr", "inf"], "--lr"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--weight-decay", "nan"], "--weight-decay"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--eval-interval", "-1"], "--eval-interval"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--patience", "-1"], "patience"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--block-size", "0"], "--block-size"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--block-size", "100000"], "--block-size"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--model", "wavenet", "--block-size", "6"], "power of 2"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--n-embd", "0"], "--n-embd"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--n-hidden", "-3"], "--n-hidden"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--model", "bigram-counts", "--smoothing", "-1"], "--smoothing"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--model", "bigram-counts", "--smoothing", "0"], "--smoothing"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--max-item-len", "0"], "--max-item-len"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--threads", "0"], "--threads"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--threads", "100000"], "--threads"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--seed", str(2 ** 64)], "--seed"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--split-seed", str(-(2 ** 63) - 1)], "--split-seed"),
    (["train", "-i", MISSING, "-o", "{tmp}/r", "--device", "tpu9"], "device"),
    (["train", "--resume", "{tmp}/r", "--steps", "10"], "drop --steps"),
    (["sample", MISSING, "--max-len", "1000000000"], "--max-len"),
    (["sample", MISSING, "--seed", str(2 ** 64)], "--seed"),
    (["sample", MISSING, "--temperature", "inf"], "--temperature"),
    (["sample", MISSING, "--temperature", "nan"], "--temperature"),
    (["sample", MISSING, "--top-p", "nan"], "--top-p"),
    (["sample", MISSING, "--top-k", "-1"], "--top-k"),
    (["sample", MISSING, "-n", "-1"], "-n"),
    (["sample", MISSING, "--threads", "0"], "--threads"),
    (["score", MISSING, "emma", "--threads", "-2"], "--threads"),
    (["score", MISSING, "emma", "--format", "xml"], "--format"),
    (["next", MISSING, "em", "-k", "-1"], "-k"),
    (["eval", MISSING, "--threads", "0"], "--threads"),
    (["eval", MISSING, "--device", "tpu9"], "device"),
    (["reproduce", "-i", MISSING, "-o", "{tmp}/r", "--seed", str(2 ** 70)], "--seed"),
    (["reproduce", "-i", MISSING, "-o", "{tmp}/r", "--models", "mlp,gpt5"], "gpt5"),
    (["reproduce", "-i", MISSING, "-o", "{tmp}/r", "--max-item-len", "-1"], "--max-item-len"),
    (["diagnose", "-i", MISSING, "--batch-size", "0"], "--batch-size"),
    (["diagnose", "-i", MISSING, "--batch-size", "1000000000"], "--batch-size"),
    (["diagnose", "-i", MISSING, "--steps", "0"], "--steps"),
    (["diagnose", "-i", MISSING, "--compare-steps", "-1"], "--compare-steps"),
    (["diagnose", "-i", MISSING, "--seed", str(2 ** 64)], "--seed"),
    (["diagnose", "-i", MISSING, "--model", "mlp", "--init", "zeros"], "--init"),
    (["batchnorm", MISSING, "--batch-size", "0"], "--batch-size"),
    (["batchnorm", MISSING, "--index", "-1"], "--index"),
    (["batchnorm", MISSING, "--index", "32"], "--index"),
    (["backprop", "-i", MISSING, "--check", "--lr", "0"], "--lr"),
    (["backprop", "-i", MISSING, "--train", "--lr", "inf"], "--lr"),
    (["backprop", "-i", MISSING, "--check", "--batch-size", "1"], "--batch-size"),
    (["backprop", "-i", MISSING, "--train", "--steps", "0"], "--steps"),
    (["backprop", "-i", MISSING, "--check", "--seed", str(2 ** 64)], "--seed"),
    (["backprop", "-i", MISSING], "--check"),
    (["claims", "-i", MISSING, "--seed", str(2 ** 64)], "--seed"),
    (["claims", "-i", MISSING, "--threads", "0"], "--threads"),
    (["plot-bigrams", "-i", "/dev/zero", "-o", "{tmp}/b.png"], "not a regular file"),
]


@pytest.mark.parametrize("argv, words", OUT_OF_RANGE, ids=[" ".join(a[:1] + a[3:] if a[1] == "-i" else a[:1] + a[2:])
                                                              for a, _ in OUT_OF_RANGE])
def test_options_out_of_range_are_refused_before_any_work(tmp_path, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = call(*argv)
    assert code in (1, 2) and out == ""
    assert err.count("\n") == 1 and err.startswith("makemore: error: ") and "Traceback" not in err, err
    assert words in err, err
    assert "nonexistent" not in err  # not the missing file: the option, before any work
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("toml, words", [
    ("steps = -5", "steps"),
    ('lr = "inf"', "lr"),
    ("seed = 1e30", "seed"),
    ('no_plot = "yes"', "no_plot"),
    ('model = "gpt5"', "model"),
    ("input = 5\nsteps = [1, 2]", "steps"),
])
def test_toml_values_are_checked_like_options(tmp_path, toml, words):
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    code, out, err = call("train", "--config", config, "-o", tmp_path / "r")
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith(f"makemore: error: {config}: {words}"), err
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- killed while training or saving

# short steps and a checkpoint every 10 of them (saving takes a good share of the time): kills land in both
RECIPE = ["--model", "mlp", "--steps", "1500", "--batch-size", "32", "--eval-interval", "10", "--seed", "5",
          "--threads", "1", "--no-plot"]


def assert_consistent(run_dir: Path) -> str:
    """The run directory holds no run, or one whose files agree: load_run serves the resume point's weights."""
    if not (run_dir / META).exists():  # killed before run.json: nothing of a run is there
        assert not any((run_dir / name).exists() for name in RUN_FILES)
        return "empty"
    meta = read_meta(run_dir)  # never half a JSON file
    for name in (WEIGHTS, BEST_WEIGHTS, TRAIN_STATE):
        if (run_dir / name).exists():
            load_file(str(run_dir / name))  # never half a safetensors file
    if meta["status"] == "complete":
        load_run(run_dir)
        return "complete"
    assert meta["status"] == "training"
    if not (run_dir / TRAIN_STATE).exists():  # stopped before its first checkpoint
        with pytest.raises(MakemoreError, match="resume the run"):
            load_run(run_dir)
        return "no checkpoint yet"
    model, _, _ = load_run(run_dir)
    weights, _, state = load_train_state(run_dir)
    assert model.state_dict().keys() == weights.keys()
    assert all(torch.equal(model.state_dict()[k], weights[k]) for k in weights)  # load_run = the resume point
    if (run_dir / METRICS).exists():  # the loss log is the resume point's, or one checkpoint behind it
        steps = [int(line.split(",")[0]) for line in (run_dir / METRICS).read_text().splitlines()[1:]]
        assert steps == [s for s, _, _ in state.loss_curve][:len(steps)]
    return f"step {state.step}"


def test_sigkill_at_random_moments_then_resume_finishes_bit_for_bit(tmp_path, small_file):
    reference = tmp_path / "reference"
    assert main(["train", "-i", str(small_file), "-o", str(reference), *RECIPE]) == 0
    run_dir = tmp_path / "r"
    seed = random.randrange(2 ** 32)
    rng = random.Random(seed)
    seen = []
    for attempt in range(5):
        if (run_dir / META).exists():
            cmd = ["train", "--resume", str(run_dir), "--threads", "1", "--no-plot"]
        else:
            cmd = ["train", "-i", str(small_file), "-o", str(run_dir), *RECIPE]
        state = run_dir / TRAIN_STATE
        before = state.stat().st_mtime_ns if state.exists() else None
        proc = subprocess.Popen([sys.executable, "-m", "makemore", *cmd], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 60
        if attempt == 0:  # anywhere from start-up on, before run.json exists or after
            time.sleep(rng.uniform(0.3, 1.8))
        else:  # once this process has saved a checkpoint of its own, a random moment later
            while proc.poll() is None and time.time() < deadline and (
                    not state.exists() or state.stat().st_mtime_ns == before):
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.12))
        proc.kill()
        proc.wait()
        assert b"Traceback" not in proc.stderr.read()
        proc.stderr.close()
        seen.append(assert_consistent(run_dir))
        if seen[-1] == "complete":
            break
    if seen[-1] == "empty":
        code, out, err = call("train", "-i", small_file, "-o", run_dir, *RECIPE)
        assert code == 0, (seed, seen, err)
    elif seen[-1] != "complete":
        code, out, err = call("train", "--resume", run_dir, "--threads", "1", "--no-plot")
        assert code == 0, (seed, seen, err)
    assert_run_complete(run_dir, resume_point_gone=False)
    for name in (WEIGHTS, METRICS, BEST_WEIGHTS):  # killed and resumed = never stopped, bit for bit
        assert (run_dir / name).read_bytes() == (reference / name).read_bytes(), (name, seed, seen)


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even `except Exception`)."""


def test_a_crash_between_any_two_file_writes_leaves_a_consistent_resumable_run(tmp_path, small_file, monkeypatch):
    items = read_items(small_file)

    def spec():
        return RunSpec(model="mlp-bn", recipe=Recipe(steps=24, batch_size=32, optimizer="adamw", lr=0.01,
                                                     eval_interval=8), seed=3)

    real_replace, renames = os.replace, []
    monkeypatch.setattr(os, "replace", lambda a, b: (renames.append(Path(b).name), real_replace(a, b)))
    run(items, spec(), tmp_path / "reference")
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(renames) >= 12 and renames[0] == META and renames[-1] == META
    outcomes = set()
    for k in range(len(renames)):  # crash just before the k-th rename: every point between two writes
        run_dir = tmp_path / f"crash{k}"
        calls = {"n": 0}

        def crashing_replace(a, b):
            if calls["n"] == k:
                raise Crash
            calls["n"] += 1
            return real_replace(a, b)

        monkeypatch.setattr(os, "replace", crashing_replace)
        with pytest.raises(Crash):
            run(items, spec(), run_dir)
        monkeypatch.setattr(os, "replace", real_replace)
        outcome = assert_consistent(run_dir)
        outcomes.add(outcome.split()[0])
        if outcome == "empty":
            run(items, spec(), run_dir)
        else:
            resume(items, run_dir)
        for name in (WEIGHTS, METRICS):
            assert (run_dir / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), (k, renames[k])
    assert outcomes == {"empty", "no", "step"}


def test_overwrite_never_mixes_in_the_older_run(stopped_run, small_file, monkeypatch, tmp_path):
    """--overwrite of a stopped run, killed before its own first checkpoint: the old resume point must not be
    taken for the new run's (resuming then starts the new run over, as if the old one had never been there)."""
    items = read_items(small_file)

    def spec():
        return RunSpec(model="mlp", recipe=Recipe(steps=30, batch_size=16, optimizer="adamw", lr=0.005, eval_interval=10),
                       seed=11)

    real_replace, calls = os.replace, {"n": 0}

    def crash_after_run_json(a, b):
        calls["n"] += 1
        if calls["n"] > 1:
            raise Crash
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", crash_after_run_json)
    with pytest.raises(Crash):
        run(items, spec(), stopped_run)
    monkeypatch.setattr(os, "replace", real_replace)
    assert read_meta(stopped_run)["seed"] == 11
    assert assert_consistent(stopped_run) == "no checkpoint yet"  # nothing of the old run is left
    resume(items, stopped_run)
    run(items, spec(), tmp_path / "fresh")
    for name in (WEIGHTS, METRICS):
        assert (stopped_run / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


# ----------------------------------------------------------------------------- read-only place, full disk

@pytest.fixture
def stopped_run(tmp_path, small_file):
    """A run stopped at step 20 of 60 (as by Ctrl-C): the resume point, weights, metrics and run.json."""
    items = read_items(small_file)
    recipe = Recipe(steps=60, batch_size=32, optimizer="adamw", lr=0.01, eval_interval=10)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 20

    run_dir = tmp_path / "stopped"
    with pytest.raises(TrainingInterrupted):
        run(items, RunSpec(model="mlp", recipe=recipe), run_dir, control=RunControl(should_stop=stop),
            extra_meta={"dataset": {"path": str(small_file)}})
    assert {TRAIN_STATE, WEIGHTS, METRICS, META} <= set(snapshot(run_dir))
    return run_dir


@contextlib.contextmanager
def read_only(folder: Path, monkeypatch):
    """`folder` cannot be written: chmod where that stops writes; as root (where it does not), the system calls
    that would write there fail with EROFS, as on a read-only mount."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o444 if p.is_file() else 0o555)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    inside = str(folder.resolve())

    def guard(real, writes=lambda *a, **k: True):
        def call_(path, *args, **kwargs):
            if os.path.abspath(os.fsdecode(path)).startswith(inside) and writes(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
            return real(path, *args, **kwargs)
        return call_

    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    with monkeypatch.context() as m:
        m.setattr(os, "open", guard(os.open, lambda flags, *a, **k: bool(flags & writing)))
        for name in ("mkdir", "unlink", "rmdir"):
            m.setattr(os, name, guard(getattr(os, name)))
        for name in ("replace", "rename"):
            m.setattr(os, name, guard(getattr(os, name)))
        yield


def test_a_read_only_run_can_be_used_but_not_written_and_stays_as_it_was(stopped_run, tmp_path, monkeypatch):
    before = snapshot(stopped_run)
    with read_only(stopped_run, monkeypatch):
        for argv in (["sample", stopped_run, "-n", "3"], ["score", stopped_run, "emma"], ["eval", stopped_run]):
            code, out, err = call(*argv)
            assert code == 0 and out, err
        code, out, err = call("train", "--resume", stopped_run, "--threads", "1", "--no-plot")
        assert_works_or_one_line_error(code, out, err)
        assert code == 1 and str(stopped_run) in err
        assert any(words in err for words in ("Read-only file system", "Permission denied")), err
        code, out, err = call("train", "-i", read_meta(stopped_run)["dataset"]["path"], "-o", stopped_run / "new",
                              *TINY_TRAIN)
        assert_works_or_one_line_error(code, out, err)
        assert code == 1 and f"{stopped_run / 'new'}:" in err and "choose a writable location" in err, err
    assert snapshot(stopped_run) == before  # bytes identical
    code, out, err = call("train", "--resume", stopped_run, "--threads", "1", "--no-plot")
    assert code == 0, err


@pytest.mark.parametrize("where", ["fsync", "half-written"])
def test_a_full_disk_keeps_the_last_checkpoint_and_says_so(stopped_run, monkeypatch, where):
    import makemore.training.run_folder as ckpt

    before = snapshot(stopped_run)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with monkeypatch.context() as m:
        if where == "fsync":  # the data did not fit: the flush fails (ENOSPC)
            m.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(full))
        else:  # the disk fills up half-way through writing the file
            def half(tensors, path, metadata=None):
                with open(path, "wb") as f:
                    f.write(b"\0" * 100)
                raise full
            m.setattr(ckpt, "save_file", half)
        code, out, err = call("train", "--resume", stopped_run, "--threads", "1", "--no-plot")
    assert_works_or_one_line_error(code, out, err)
    assert code == 1 and "No space left on device" in err and "free some space" in err
    assert "the last checkpoint is kept: resume the run to go on from it" in err
    assert snapshot(stopped_run) == before  # the last checkpoint, bytes identical, no temporary file left
    code, out, err = call("train", "--resume", stopped_run, "--threads", "1", "--no-plot")
    assert code == 0, err
    assert_run_complete(stopped_run)


@pytest.mark.parametrize("fills_at", [0, 2, 7, -2])
def test_a_disk_filling_up_during_training_leaves_a_consistent_run(tmp_path, small_file, monkeypatch, fills_at):
    """Every write from the n-th on fails: one clear line, a run directory that is consistent, and once there
    is room again the run continues (or starts again, if nothing was saved) to the very result of a full run."""
    argv = ["train", "-i", small_file, "-o", tmp_path / "r", "--model", "mlp", "--steps", "30", "--batch-size", "32",
            "--eval-interval", "10", "--threads", "1", "--no-plot"]
    real_fsync, fsyncs = os.fsync, []
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    assert call(*argv[:4], tmp_path / "reference", *argv[5:])[0] == 0
    n = fills_at % len(fsyncs)
    count = {"n": 0}

    def fsync(fd):
        count["n"] += 1
        if count["n"] > n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, out, err = call(*argv)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert_works_or_one_line_error(code, out, err)
    assert code == 1 and "No space left on device" in err
    outcome = assert_consistent(tmp_path / "r")
    assert not list((tmp_path / "r").glob(".*.tmp"))
    if outcome == "empty":
        assert call(*argv, "--overwrite")[0] == 0
    else:
        assert "resume the run" in err
        assert call("train", "--resume", tmp_path / "r", "--threads", "1", "--no-plot")[0] == 0
    for name in (WEIGHTS, METRICS):
        assert (tmp_path / "r" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()


# ----------------------------------------------------------------------------- the same seed, fresh processes

DRIVER = r"""
import hashlib, json, sys
from makemore.cli import main
from makemore.data.items import read_items, split_items
commands = [c.split("\x1f") for c in sys.argv[1].split("\x1e")]
for command in commands:
    if command[0] == "split":  # the 80/10/10 split as this process computes it
        parts = split_items(read_items(command[1]), int(command[2]))
        print(hashlib.sha256(json.dumps(parts).encode()).hexdigest(), flush=True)
    elif main(command) != 0:
        sys.exit(1)
"""


def fresh_process(commands: list[list[str]], hash_seed: str) -> str:
    """Run makemore commands in a new Python process (its own hash seed), return their stdout."""
    payload = "\x1e".join("\x1f".join(str(a) for a in c) for c in commands)
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run([sys.executable, "-c", DRIVER, payload], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_same_seed_in_fresh_processes_gives_the_same_split_losses_weights_and_samples(tmp_path, small_file):
    a, b = tmp_path / "a", tmp_path / "b"
    train = ["train", "-i", small_file, "--model", "wavenet", "-o", a, "--seed", "7", "--split-seed", "3",
             "--steps", "40", "--batch-size", "64", "--eval-interval", "20", "--threads", "1", "--no-plot"]
    after = [["sample", "{run}", "-n", "20", "--seed", "1", "--format", "csv"], ["eval", "{run}", "--json"],
             ["split", small_file, "3"]]
    out_a = fresh_process([train] + [[str(x).replace("{run}", str(a)) for x in c] for c in after], "1")
    meta_a = json.loads((a / META).read_text())
    # the run records what repeats it: its command line (and the code's commit), seeds, recipe, data checksum
    recorded = meta_a["command"][1:]
    recorded[recorded.index("-o") + 1] = str(b)
    out_b = fresh_process([recorded] + [[str(x).replace("{run}", str(b)) for x in c] for c in after], "2")
    assert out_a == out_b  # the same NLLs, samples with their log-probs, eval, and split
    assert len(out_a.splitlines()) == 1 + 21 + 1 + 1
    for name in (WEIGHTS, BEST_WEIGHTS, METRICS):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    meta_b = json.loads((b / META).read_text())
    for key in ("command", "train_seconds", "eval_seconds"):
        meta_a.pop(key), meta_b.pop(key)
    assert meta_a == meta_b
    for key in ("seed", "split_seed", "recipe", "config", "model", "vocab", "git_commit", "versions"):
        assert key in meta_a
    assert {"path", "sha256", "text_options"} <= set(meta_a["dataset"])
    assert meta_a["dataset"]["sha256"] == hashlib.sha256(Path(small_file).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the README's promises

@pytest.mark.parametrize("field,value", [("lr", float("inf")), ("lr", float("nan")), ("lr", 0.0), ("weight_decay", -0.1),
                                         ("weight_decay", float("inf")), ("momentum", -1.0), ("warmup_steps", -5)])
def test_recipe_refuses_what_the_cli_refuses(field, value):
    # library callers get the same checks as the command line: a bad recipe fails before any step
    from makemore.errors import MakemoreError
    from makemore.training.loop import Recipe

    recipe = Recipe(**{field: value})
    with pytest.raises(MakemoreError):
        recipe.check()
