import json
import subprocess
import sys
import urllib.error

import pytest
from safetensors.torch import load_file

from makemore.cli import main
from makemore.data.builtin import resolve_input
from makemore.errors import MakemoreError

from .conftest import call, write_lines

FAST = ["--steps", "40", "--batch-size", "64", "--threads", "1", "--no-plot"]




def test_train_with_its_default_plot(capsys, tmp_path, small_file):
    # the default path (no --no-plot) draws loss.png after training, from the metadata run() returns
    pytest.importorskip("matplotlib")
    run_dir = tmp_path / "run"
    code, out, err = call("train", "-i", small_file, "--model", "bigram-nn", "-o", run_dir,
                             "--steps", "20", "--threads", "1")
    assert code == 0, err
    assert (run_dir / "loss.png").stat().st_size > 0
    assert out.startswith("train ")


def test_train_eval_sample(capsys, tmp_path, small_file):
    run_dir = tmp_path / "run"
    code, out, err = call("train", "-i", small_file, "--model", "mlp-bn", "-o", run_dir, *FAST)
    assert code == 0, err
    assert out.startswith("train ") and "val" in out
    assert (run_dir / "metrics.csv").read_text().startswith("step,train_loss,lr,val_loss")
    code, out, err = call("eval", run_dir, "--json")
    metrics = json.loads(out)
    assert code == 0 and set(metrics) == {"train_nll", "val_nll", "test_nll"}
    recorded = json.loads((run_dir / "run.json").read_text())["metrics"]
    assert metrics["val_nll"] == pytest.approx(recorded["val_nll"], abs=1e-6)
    code, out, err = call("sample", run_dir, "-n", "7", "--seed", "3")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 7
    assert all("." not in line for line in lines)  # boundary token removed
    assert call("sample", run_dir, "-n", "7", "--seed", "3")[1] == out


def test_run_records_how_it_was_made(capsys, tmp_path, small_file):
    call("train", "-i", small_file, "--model", "mlp", "-o", tmp_path / "r", *FAST)
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["seed"] == 42 and meta["split_seed"] == 42
    assert meta["recipe"]["steps"] == 40 and meta["recipe_name"] == "fast+overrides"
    assert meta["command"][0] and "train" in meta["command"]
    assert {"torch", "python", "makemore"} <= set(meta["versions"])
    assert meta["dataset"]["items"] == 300


def test_same_seed_same_everything(capsys, tmp_path, small_file):
    outs = []
    for name in ("a", "b"):
        call("train", "-i", small_file, "--model", "wavenet", "-o", tmp_path / name, "--seed", "7", *FAST)
        outs.append(call("sample", tmp_path / name, "-n", "20", "--seed", "1")[1])
    wa, wb = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("a", "b"))
    assert all((wa[k] == wb[k]).all() for k in wa)
    ma, mb = (json.loads((tmp_path / n / "run.json").read_text()) for n in ("a", "b"))
    assert ma["metrics"] == mb["metrics"]
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()
    assert outs[0] == outs[1]


def test_dots_in_items_round_trip(capsys, tmp_path):
    items = [f"{a}.{b}" for a in "abcdef" for b in "xyz"]
    data = write_lines(tmp_path / "dots.txt", items)
    call("train", "-i", data, "--model", "bigram-counts", "-o", tmp_path / "r", "--no-plot")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert "." in meta["vocab"]
    code, out, _ = call("sample", tmp_path / "r", "-n", "200", "--seed", "0")
    assert code == 0 and any("." in line for line in out.splitlines())


def test_refuses_to_overwrite_a_run(capsys, tmp_path, small_file):
    call("train", "-i", small_file, "--model", "bigram-counts", "-o", tmp_path / "r", "--no-plot")
    code, _, err = call("train", "-i", small_file, "--model", "bigram-counts", "-o", tmp_path / "r")
    assert code == 1 and "--overwrite" in err


def test_reproduce_writes_results_json(capsys, tmp_path, small_file):
    code, out, err = call("reproduce", "-i", small_file, "-o", tmp_path / "rep",
                             "--models", "bigram-counts,bigram-nn", "--threads", "1")
    assert code == 0, err
    results = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert results["dataset"]["items"] == 300 and results["dataset"]["vocab_size"] == 27
    assert [m["model"] for m in results["models"]] == ["bigram-counts", "bigram-nn"]
    for m in results["models"]:
        assert {"model", "params", "train_nll", "val_nll", "test_nll", "seconds"} <= set(m)
    assert "bigram-counts" in out and "essay val" in out
    pytest.importorskip("matplotlib")
    assert (tmp_path / "rep" / "nll.png").read_bytes()[:4] == b"\x89PNG"


def test_names_resolves_through_makemore_data(names_path, tmp_path):
    assert resolve_input("names", data_dirs=[names_path.parent], cache_dir=tmp_path) == names_path


def test_names_offline_and_missing_says_where_to_put_it(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(MakemoreError, match="put names.txt in"):
        resolve_input("names", data_dirs=[], cache_dir=tmp_path / "cache")


def test_names_with_wrong_checksum_is_refused(tmp_path):
    write_lines(tmp_path / "names.txt", ["not", "the", "real", "file"])
    with pytest.raises(MakemoreError, match="sha256"):
        resolve_input("names", data_dirs=[tmp_path], cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("case", ["missing", "empty", "blank", "not-utf8", "unknown-model", "no-checkpoint", "few-items"])
def test_bad_input_is_one_line_error(capsys, tmp_path, case):
    f = tmp_path / "f.txt"
    argv = ["train", "-i", f, "--model", "bigram-counts", "-o", tmp_path / "out"]
    if case == "empty":
        f.write_bytes(b"")
    elif case == "blank":
        f.write_bytes(b"\n  \n\n")
    elif case == "not-utf8":
        f.write_bytes(b"\xff\xfe\x00a\nb\n")
    elif case == "few-items":
        write_lines(f, ["ann", "bob", "cy"])
    elif case == "unknown-model":
        write_lines(f, ["ann"] * 20)
        argv[4] = "transformerz"
    elif case == "no-checkpoint":
        (tmp_path / "out").mkdir()
        argv = ["sample", tmp_path / "out"]
    if case == "unknown-model":  # argparse refuses it with its usage line and exit code 2
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in argv])
        assert exc.value.code == 2
        assert "invalid choice" in capsys.readouterr().err
        return
    code, out, err = call(*argv)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("makemore: error:")
    assert not (tmp_path / "out" / "run.json").exists()


def test_no_traceback_from_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "makemore", "sample", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_items_may_follow_options(capsys, tmp_path, small_file):
    run_dir = tmp_path / "run"
    assert call("train", "-i", small_file, "--model", "bigram-counts", "-o", run_dir, "--no-plot")[0] == 0
    code, out, _ = call("score", run_dir, "--explain", "emma", "ann")
    assert code == 0 and "emma" in out and "ann" in out
    code, out, err = call("score", run_dir, "--bogus", "emma")
    assert code == 2 and out == "" and "unrecognized arguments: --bogus" in err


def test_soft_targets_and_sequence_model_options_reach_the_run(capsys, tmp_path, small_file):
    run_dir = tmp_path / "soft"
    code, _, err = call("train", "-i", small_file, "--model", "mlp", "-o", run_dir, *FAST, "--no-soft-targets")
    assert code == 0, err
    assert json.loads((run_dir / "run.json").read_text())["recipe"]["soft_targets"] is False
    run_dir = tmp_path / "tf"
    code, _, err = call("train", "-i", small_file, "--model", "transformer", "-o", run_dir, *FAST,
                           "--n-layer", "2", "--n-head", "2", "--n-embd", "16", "--dropout", "0.05", "--soft-targets")
    assert code == 0, err
    meta = json.loads((run_dir / "run.json").read_text())
    assert {k: meta["config"][k] for k in ("n_layer", "n_head", "n_embd", "dropout")} == \
        {"n_layer": 2, "n_head": 2, "n_embd": 16, "dropout": 0.05}
    assert meta["recipe"]["soft_targets"] is True  # recorded; whole items train on their characters regardless
