"""More than one process: `torchrun --nproc-per-node 2 -m makemore train` on the CPU (gloo, loopback only)
trains like one process with the same seed and global batch, and a run resumes across world sizes.

Tolerance: two processes add the same numbers in another order (each rank's share, then DDP's
average; BatchNorm's statistics summed across ranks), so losses and weights agree to float32
rounding, not bit for bit: per-step losses within 2e-5, weights within 1e-4, after a few dozen steps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from makemore.training.run_folder import TRAIN_STATE, read_meta, read_metrics
from makemore.data.items import read_items
from makemore.training.pipeline import RunControl, RunSpec, run
from makemore.training.loop import Recipe, TrainingInterrupted

from .conftest import REPO, call

LOSS_TOL, WEIGHT_TOL = 2e-5, 1e-4
CASES = {  # a few dozen steps; --eval-interval 1: metrics.csv holds every step's training loss
    "mlp": ["--batch-size", "64"],
    "mlp-bn": ["--batch-size", "64"],  # BatchNorm: statistics of the global batch, across both ranks
    "transformer": ["--batch-size", "32", "--n-embd", "16", "--n-layer", "1", "--n-head", "2", "--dropout", "0"],
}
STEPS = ["--steps", "24", "--eval-interval", "1", "--seed", "5", "--no-plot", "--threads", "1"]


@pytest.fixture(scope="module")
def names_1000(tmp_path_factory) -> Path:
    from .conftest import _names_dir

    folder = _names_dir()
    if folder is None:
        pytest.skip("names.txt not found")
    path = tmp_path_factory.mktemp("data") / "names1000.txt"
    path.write_text("\n".join((folder / "names.txt").read_text().splitlines()[:1000]) + "\n")
    return path


def torchrun(*argv, nproc: int = 2) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "makemore",
           *map(str, argv)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def finished(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def assert_same_training(one: Path, two: Path) -> None:
    a, b = read_metrics(one), read_metrics(two)
    assert [r["step"] for r in a] == [r["step"] for r in b] and len(a) >= 24
    for ra, rb in zip(a, b):  # every step's training loss (eval interval 1), and val
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=LOSS_TOL), ra["step"]
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], abs=LOSS_TOL), ra["step"]
    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa) <= WEIGHT_TOL


@pytest.mark.parametrize("model", list(CASES))
def test_two_processes_train_as_one_with_the_same_seed_and_global_batch(tmp_path, names_1000, model):
    two = tmp_path / "two"
    proc = torchrun("train", "-i", names_1000, "--model", model, "-o", two, *STEPS, *CASES[model])
    one = tmp_path / "one"
    assert call("train", "-i", names_1000, "--model", model, "-o", one, *STEPS, *CASES[model])[0] == 0
    code, out, err = finished(proc)
    assert code == 0, err[-3000:]
    assert out.count("train ") == 1 and "Traceback" not in err  # rank 0 alone prints the result
    meta = read_meta(two)
    assert meta["world_size"] == 2 and meta["backend"] == "gloo" and read_meta(one)["world_size"] == 1
    assert_same_training(one, two)
    code, out, err = call("sample", two, "-n", "3", "--seed", "1", "--device", "cpu")  # one process, any device
    assert code == 0 and len(out.splitlines()) == 3


def test_stopped_under_torchrun_resumes_in_one_process_and_the_other_way_round(tmp_path, names_1000):
    options = ["--model", "mlp-bn", "--steps", "300", "--eval-interval", "10", "--seed", "5", "--no-plot",
               "--threads", "1", "--batch-size", "128"]
    reference = tmp_path / "reference"
    assert call("train", "-i", names_1000, "-o", reference, *options)[0] == 0
    # two processes, SIGTERM to the job after its first resume point: one resume point, every rank leaves
    a = tmp_path / "a"
    proc = torchrun("train", "-i", names_1000, "-o", a, *options)
    deadline = time.time() + 120
    while not (a / TRAIN_STATE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    code, out, err = finished(proc)
    assert code != 0 and "makemore train --resume" in err and read_meta(a)["status"] == "interrupted"
    assert call("train", "--resume", a, "--threads", "1", "--no-plot")[0] == 0  # ...resumed in one process
    assert_same_training(reference, a)
    # one process stopped at step 37, resumed by two
    b = tmp_path / "b"
    recipe = {**read_meta(reference)["recipe"]}  # the CLI's recipe: mlp-bn's, sized to the list, with the options
    recipe["betas"] = tuple(recipe["betas"])
    assert (recipe["steps"], recipe["batch_size"], recipe["eval_interval"]) == (300, 128, 10)
    calls = iter(range(10 ** 6))
    with pytest.raises(TrainingInterrupted):
        run(read_items(names_1000), RunSpec("mlp-bn", Recipe(**recipe), seed=5), b,
            control=RunControl(should_stop=lambda: next(calls) >= 36), extra_meta={"dataset": read_meta(reference)["dataset"]})
    torch.set_num_threads(1)
    code, out, err = finished(torchrun("train", "--resume", b, "--threads", "1", "--no-plot"))
    assert code == 0, err[-3000:]
    assert read_meta(b)["world_size"] == 2
    assert_same_training(reference, b)


def test_a_rank_that_dies_stops_the_others_with_a_clear_message(tmp_path, names_1000):
    run_dir = tmp_path / "r"
    proc = torchrun("train", "-i", names_1000, "--model", "mlp", "-o", run_dir, "--steps", "100000", "--batch-size",
                    "64", "--eval-interval", "50", "--no-plot", "--threads", "1")
    deadline = time.time() + 120
    while not (run_dir / TRAIN_STATE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(workers) == 2, workers
    os.kill(int(max(workers, key=int)), signal.SIGKILL)  # one rank dies without a word
    code, out, err = finished(proc)  # the other does not hang: it says why it stops
    assert code != 0 and "another process of this torchrun job stopped" in err, err[-2000:]
    # no traceback from makemore's ranks (torchrun's own report of the dead child is torchrun's)
    assert not any(line.startswith("[rank") and "Traceback" in line for line in err.splitlines()), err[-2000:]
