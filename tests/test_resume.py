"""Stopping and resuming: a resumed run is bit for bit the run that was never stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from makemore.training.run_folder import TRAIN_STATE, read_meta
from makemore.cli import main
from makemore.data.items import read_items
from makemore.errors import MakemoreError
from makemore.training.pipeline import RunControl, RunSpec, resume, run
from makemore.training.loop import Recipe, TrainingInterrupted

RECIPE = dict(steps=60, batch_size=32, optimizer="adamw", lr=0.01, schedule="cosine", eval_interval=20)


def stop_after(step_count):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] >= step_count

    return should_stop


@pytest.mark.parametrize("model, stop_at", [("mlp-bn", 25), ("wavenet", 7), ("mlp", 40)])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, small_file, model, stop_at):
    items = read_items(small_file)
    spec = RunSpec(model=model, recipe=Recipe(**RECIPE), seed=3)
    straight = run(items, spec, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted) as stop:
        run(items, RunSpec(model=model, recipe=Recipe(**RECIPE), seed=3), tmp_path / "stopped",
            control=RunControl(should_stop=stop_after(stop_at)))
    assert stop.value.step == stop_at
    assert read_meta(tmp_path / "stopped")["status"] == "interrupted"
    assert (tmp_path / "stopped" / TRAIN_STATE).exists()
    resumed = resume(items, tmp_path / "stopped")
    assert resumed["metrics"] == straight["metrics"]
    assert (tmp_path / "stopped" / "metrics.csv").read_text() == (tmp_path / "straight" / "metrics.csv").read_text()
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "stopped" / TRAIN_STATE).exists()  # complete: the resume point is gone
    with pytest.raises(MakemoreError, match="finished training"):
        resume(items, tmp_path / "stopped")


def test_best_checkpoint_and_early_stopping(tmp_path, small_file):
    items = read_items(small_file)
    # a high constant lr on 240 examples overfits fast: val stops improving, patience ends the run
    recipe = Recipe(steps=3000, batch_size=64, optimizer="adamw", lr=0.03, eval_interval=50, patience=3)
    meta = run(items, RunSpec(model="mlp", recipe=recipe), tmp_path / "r")
    assert meta["stopped_early"] and meta["step"] < 3000
    assert (tmp_path / "r" / "best.safetensors").exists()
    rows = [line.split(",") for line in (tmp_path / "r" / "metrics.csv").read_text().splitlines()[1:]]
    vals = [(int(r[0]), float(r[3])) for r in rows if r[3]]
    assert min(vals, key=lambda v: v[1]) == (meta["best_step"], pytest.approx(meta["best_val_nll"], abs=1e-6))
    # the run is used with the weights it validated best: model.safetensors holds best.safetensors' tensors, run.json
    # says their step, and the val printed is theirs (no second, different val beside it)
    assert meta["weights_step"] == meta["best_step"] < meta["step"]
    assert meta["metrics"]["val_nll"] == pytest.approx(meta["best_val_nll"], abs=1e-6)
    a, b = load_file(str(tmp_path / "r" / "model.safetensors")), load_file(str(tmp_path / "r" / "best.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from makemore import Run

    assert Run.load(tmp_path / "r", "cpu", inputs=[str(small_file)]).evaluate()["val"] == pytest.approx(meta["best_val_nll"], abs=1e-5)


def test_a_run_resumed_after_its_best_check_still_ends_with_the_best_weights(tmp_path, small_file):
    items = read_items(small_file)
    recipe = Recipe(steps=600, batch_size=64, optimizer="adamw", lr=0.03, eval_interval=50)  # overfits after ~100
    straight = run(items, RunSpec(model="mlp", recipe=recipe), tmp_path / "straight")
    assert straight["weights_step"] == straight["best_step"] < 600
    with pytest.raises(TrainingInterrupted):
        run(items, RunSpec(model="mlp", recipe=recipe), tmp_path / "stopped",
            control=RunControl(should_stop=stop_after(straight["best_step"] + 100)))
    resumed = resume(items, tmp_path / "stopped")  # this session never saw the best check: the file has it
    assert resumed["weights_step"] == straight["weights_step"] and resumed["metrics"] == straight["metrics"]
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path, small_file):
    items = read_items(small_file)
    recipe = Recipe(steps=400, batch_size=32, optimizer="sgd", lr=1e30, eval_interval=200)
    with pytest.raises(MakemoreError, match="diverged.*lower the learning rate"):
        run(items, RunSpec(model="mlp", recipe=recipe), tmp_path / "r")
    assert read_meta(tmp_path / "r")["status"] == "diverged"


def test_toml_config_with_command_line_override(capsys, tmp_path, small_file):
    config = tmp_path / "c.toml"
    config.write_text(f'input = "{small_file}"\nmodel = "mlp"\nsteps = 30\nbatch-size = 16\nlr = 0.5\nno_plot = true\n')
    assert main(["train", "--config", str(config), "-o", str(tmp_path / "r"), "--lr", "0.01", "--threads", "1"]) == 0
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["model"] == "mlp" and meta["recipe"]["steps"] == 30 and meta["recipe"]["batch_size"] == 16
    assert meta["recipe"]["lr"] == 0.01  # the command line wins
    assert "steps = 30" in meta["config_file"]["content"]
    assert "git_commit" in meta
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    capsys.readouterr()
    assert main(["train", "--config", str(bad), "-o", str(tmp_path / "x")]) == 1
    assert "unknown option(s) stepz" in capsys.readouterr().err


def test_sigterm_saves_and_resume_finishes(tmp_path, small_file):
    """A real process, a real signal: it saves, says how to resume, and the resume completes."""
    run_dir = tmp_path / "r"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "makemore", "train", "-i", str(small_file), "--model", "mlp", "-o", str(run_dir),
           "--steps", "1000000", "--batch-size", "32", "--threads", "1", "--no-plot", "--eval-interval", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (run_dir / "run.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # let it take some steps
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err and "makemore train --resume" in err
    meta = read_meta(run_dir)
    assert meta["status"] == "interrupted" and meta["step"] > 0
    assert (run_dir / TRAIN_STATE).exists() and (run_dir / "model.safetensors").exists()


def test_a_diverging_run_never_checkpoints_bad_weights(small_file):
    from makemore.data.items import Vocab, build_windows
    from makemore.models import build_model
    from makemore.training.loop import TrainHooks, TrainingDiverged, train

    items = read_items(small_file)
    vocab = Vocab.from_items(items)
    X, Y = build_windows(items, vocab, 3)
    torch.manual_seed(0)
    model = build_model("mlp-bn", vocab_size=vocab.size)
    saved_at = []

    def corrupt(step, lr):  # from step 250 on, the gradients blow up
        if step >= 250:
            model.W2.grad.fill_(float("nan"))

    def checkpoint(state, optimizer):
        assert all(torch.isfinite(p).all() for p in model.parameters())
        saved_at.append(state.step)

    hooks = TrainHooks(on_step=corrupt, on_checkpoint=checkpoint)
    with pytest.raises(TrainingDiverged) as bad:
        train(model, (X, Y), Recipe(steps=1000, batch_size=32, optimizer="adamw", lr=0.01, eval_interval=100),
              val_data=(X, Y), hooks=hooks)
    assert saved_at == [100, 200] and bad.value.step == 300
    assert bad.value.last_good_loss is not None


def test_second_writer_is_refused_and_a_killed_owner_leaves_no_stale_lock(capsys, tmp_path, small_file):
    run_dir = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom makemore.training.lock import run_lock\n"
        f"with run_lock({str(run_dir)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    argv = ["train", "-i", str(small_file), "--model", "bigram-counts", "-o", str(run_dir), "--no-plot"]
    assert main(argv) == 1
    assert "in use by process" in capsys.readouterr().err
    holder.kill()  # SIGKILL: no cleanup code runs
    holder.wait()
    assert main(argv) == 0
