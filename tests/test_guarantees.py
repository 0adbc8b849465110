"""The README's guarantees where people use them: every registered model, at two threads, with batches
above the size where PyTorch's CPU kernels split work across threads, in real processes.

- Same seed, same bits: two fresh processes train every model and must write the same bytes.
- Stopped and resumed = never stopped: every trainable model (the sequence models with dropout) is
  stopped by SIGINT, then SIGTERM, then SIGKILL, resumed each time, and must end with the bytes of a
  run that was never stopped.

Sizes: each model's batch x context x width is above 49,152 gathered values (a WaveNet's default
batch of 256 x 8 x 24), where the backward of an indexing lookup (`C[idx]`) is not deterministic at two
threads (`layers.embed` says why).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from makemore.training.run_folder import BEST_WEIGHTS, META, METRICS, TRAIN_STATE, WEIGHTS, read_meta
from makemore.models import MODELS, trainable_models

from .conftest import REPO, _names_dir, call

SEQUENCE_OPTIONS = ["--batch-size", "128", "--n-layer", "2", "--n-hidden", "32", "--dropout", "0.2"]
MODEL_OPTIONS = {  # each model at a size above the parallel grain, dropout on where the model has it
    "bigram-counts": [], "ngram": [], "bigram-nn": [],  # bigram-nn: the full batch, 13k windows x 27
    "mlp": ["--batch-size", "2048"], "mlp-bn": ["--batch-size", "2048"],  # 2048 x 3 x 10 = 61,440
    "mlp-deep": ["--batch-size", "2048"],
    "wavenet": ["--batch-size", "256"],  # 256 x 8 x 24 = 49,152
    "wavenet-conv": ["--batch-size", "128"],  # 128 x (7 + 16) x 24 = 70,656
    "rnn": SEQUENCE_OPTIONS, "gru": SEQUENCE_OPTIONS, "lstm": SEQUENCE_OPTIONS,
    "transformer": ["--batch-size", "128", "--n-layer", "2", "--n-embd", "32", "--n-head", "4", "--dropout", "0.2"],
}
TRAINED = trainable_models()  # what `makemore train` makes (the ensemble is made from these: test_ensemble.py)
TRAINABLE = [m for m in TRAINED if getattr(MODELS[m].model_cls, "trainable", True)]
THREADS = ["--threads", "2"]


def test_every_registered_model_has_a_size_here():
    assert set(MODEL_OPTIONS) == set(TRAINED)


@pytest.fixture(scope="module")
def names_2000(tmp_path_factory) -> Path:
    """The first 2,000 names (13k windows): batches above the parallel grain, a few seconds per model."""
    folder = _names_dir()
    if folder is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("names.txt not found (CI=true)")
        pytest.skip("names.txt not found: set MAKEMORE_DATA to the folder holding it")
    path = tmp_path_factory.mktemp("data") / "names2000.txt"
    path.write_text("\n".join((folder / "names.txt").read_text().splitlines()[:2000]) + "\n")
    return path


# ----------------------------------------------------------------------------- same seed, same bits

DRIVER = """
import hashlib, io, contextlib, sys
from pathlib import Path
from makemore.cli import main
data, out, models = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
options = {options!r}
for model in models:
    run = out / model
    assert main(["train", "-i", data, "--model", model, "-o", str(run), "--steps", "12", "--eval-interval", "6",
                 "--seed", "7", "--no-plot", "--threads", "2", *options[model]]) == 0
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["sample", str(run), "-n", "20", "--seed", "1", "--format", "csv", "--threads", "2"]) == 0
    digest = hashlib.sha256()
    for name in ("model.safetensors", "metrics.csv", "best.safetensors"):
        if (run / name).exists():
            digest.update((run / name).read_bytes())
    digest.update(buf.getvalue().encode())
    print(model, digest.hexdigest(), flush=True)
"""


def fresh_process(data: Path, out: Path, hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    code = DRIVER.format(options=MODEL_OPTIONS)
    proc = subprocess.run([sys.executable, "-c", code, str(data), str(out), *TRAINED], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if line.split()[0] in TRAINED]  # train's own lines left out


def test_same_seed_gives_the_same_bits_for_every_model_at_two_threads(tmp_path, names_2000):
    first = fresh_process(names_2000, tmp_path / "a", "1")
    second = fresh_process(names_2000, tmp_path / "b", "2")
    assert len(first) == len(TRAINED)
    differ = [a.split()[0] for a, b in zip(first, second) if a != b]
    assert not differ, f"same seed, different bits: {differ}"


# ----------------------------------------------------------------------------- stopped, killed, resumed

STEPS = ["--steps", "120", "--eval-interval", "10", "--seed", "3", "--no-plot"]


def launch(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "makemore", *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def finish(proc: subprocess.Popen) -> int:
    """Wait for a launched run to end by itself; its exit code (stderr checked for tracebacks)."""
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err and proc.returncode == 0, err[-3000:]
    return proc.returncode


def signal_after_next_checkpoint(proc: subprocess.Popen, run_dir: Path, sig: int) -> str:
    """Wait until the process has saved a resume point of its own, then send `sig`; its stderr."""
    state = run_dir / TRAIN_STATE
    before = state.stat().st_mtime_ns if state.exists() else None
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline and (not state.exists() or state.stat().st_mtime_ns == before):
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before it could be stopped: give it more steps"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return err


@pytest.mark.parametrize("model", TRAINABLE)
def test_sigint_sigterm_sigkill_then_resume_ends_with_the_bytes_of_a_run_never_stopped(tmp_path, names_2000, model):
    options = [*MODEL_OPTIONS[model], *THREADS]
    reference, run_dir = tmp_path / "reference", tmp_path / "r"
    # every run in a fresh process, as a user's are (the test process has run hundreds of other tests)
    assert finish(launch(["train", "-i", names_2000, "--model", model, "-o", reference, *STEPS, *options])) == 0

    err = signal_after_next_checkpoint(launch(["train", "-i", names_2000, "--model", model, "-o", run_dir, *STEPS,
                                               *options]), run_dir, signal.SIGINT)
    assert "makemore train --resume" in err and read_meta(run_dir)["status"] == "interrupted"
    stopped_at = read_meta(run_dir)["step"]
    resume = ["train", "--resume", run_dir, *THREADS, "--no-plot"]
    err = signal_after_next_checkpoint(launch(resume), run_dir, signal.SIGTERM)
    assert "makemore train --resume" in err and read_meta(run_dir)["step"] > stopped_at
    signal_after_next_checkpoint(launch(resume), run_dir, signal.SIGKILL)  # no handler runs: the last resume point
    assert read_meta(run_dir)["status"] != "complete"
    assert finish(launch(resume)) == 0
    assert read_meta(run_dir)["status"] == "complete"
    for name in (WEIGHTS, METRICS, BEST_WEIGHTS):  # stopped three ways and resumed = never stopped, bit for bit
        assert (run_dir / name).read_bytes() == (reference / name).read_bytes(), name
    assert not (run_dir / TRAIN_STATE).exists() and (run_dir / META).exists()


VML_CPU_CACHE = """
import ctypes, shutil, subprocess, sys
from pathlib import Path
import torch
lib = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
if not lib.exists() or shutil.which("readelf") is None:
    sys.exit("skip: no libtorch_cpu.so or no readelf here")
symbols = subprocess.run(["readelf", "-Ws", str(lib)], capture_output=True, text=True).stdout.splitlines()
offset = [int(s.split()[1], 16) for s in symbols if s.endswith(" mkl_vml_serv_cpu_detect.vml_cpu_type")]
if not offset:
    sys.exit("skip: this PyTorch does not link oneMKL's vector math statically")
base = min(int(line.split("-")[0], 16) for line in open("/proc/self/maps") if line.rstrip().endswith(str(lib)))
cached = ctypes.c_int.from_address(base + offset[0])  # -1 until the first vector-math call detects the CPU
before = cached.value
import makemore.models
after = cached.value
torch.tanh(torch.zeros(1))
print(before, after, cached.value)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads oneMKL's cache through /proc/self/maps")
def test_the_models_settle_onemkl_vector_math_before_any_of_them_runs():
    """What made the three-signal test fail now and then (models/layers.py, settle_vector_math): the first
    vector-math call of a process (a model's first tanh, on two threads) lets oneMKL 2024.2 cache the CPU it
    detects in a global that holds the raw CPU code for a moment; a thread reading it then runs the AVX2
    low-accuracy tanh on its chunk, and that process's bits differ. Importing the models must leave the cache
    final, so that no model's first step can race for it (a fresh process: the cache is per process)."""
    proc = subprocess.run([sys.executable, "-c", VML_CPU_CACHE], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    if proc.returncode != 0 and proc.stderr.startswith("skip:"):
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, after, later = map(int, proc.stdout.split())
    assert before == -1, "something ran oneMKL's vector math before makemore was imported"
    assert after != -1 and after == later, (before, after, later)


# ----------------------------------------------------------------------------- the data the suite needs

def test_a_missing_names_txt_fails_the_suite_in_ci_and_is_skipped_elsewhere(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    test = "tests/test_api.py::test_python_api_end_to_end"
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    runs = {}
    for ci in ("true", None):
        env = {**base, "MAKEMORE_DATA": str(empty), **({"CI": ci} if ci else {})}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", test], cwd=REPO,
                              capture_output=True, text=True, env=env, timeout=300)
        runs[ci] = proc
    assert runs["true"].returncode != 0 and "CI=true" in runs["true"].stdout
    assert runs[None].returncode == 0 and "SKIPPED" in runs[None].stdout

