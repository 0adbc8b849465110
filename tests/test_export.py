"""`makemore export` from the command line and from `makemore serve`: formats, atomic writes, refusals, escaping.

The forward passes themselves are compared with PyTorch model by model in test_export_windowed.py,
test_export_sequence.py and test_export_onnx.py; the page in Chromium in test_export_page.py.
"""

import json
import re
import shutil
import subprocess

import pytest

from makemore.export.bundle import bundle, inline_json
from makemore.export.web import page_text

from .conftest import call
from .exporting import node, tiny_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    return folder, tiny_run("mlp", folder)


def one_line(code, out, err):
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (code, err)
    return err


def test_the_module_runs_in_node_and_says_what_it_wrote(runs, tmp_path):
    folder, run = runs
    out_file = tmp_path / "names.mjs"
    code, out, err = call("export", str(run.path), "-o", str(out_file))
    assert code == 0, err
    assert re.fullmatch(r"wrote .*names\.mjs \(js, [\d,]+ KB\): mlp, \d+ characters\n", out), out
    script = tmp_path / "use.mjs"
    script.write_text('import { sample, score, next, info } from "./names.mjs";\n'
                      'const a = sample({ n: 5, seed: 3 }), b = sample({ n: 5, seed: 3 });\n'
                      'console.log(JSON.stringify({ info: info(), a, b, s: score(["anna"]), x: next("an", { k: 3 }) }));\n')
    done = subprocess.run([node(), str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["a"] == got["b"] and len(got["a"]["items"]) == 5  # the same seed, the same items
    assert got["info"]["model"] == "mlp" and len(got["x"]["next"]) == 3
    assert got["s"]["items"][0]["log_prob"] == pytest.approx(run.score(["anna"]).items[0].log_prob, abs=1e-5)


def test_existing_files_unknown_formats_and_bad_runs_are_one_line_refusals(runs, tmp_path):
    folder, run = runs
    target = tmp_path / "page.html"
    target.write_text("mine")
    err = one_line(*call("export", str(run.path), "-o", str(target)))
    assert "--overwrite is needed" in err and target.read_text() == "mine"  # nothing written over it
    code, _, err = call("export", str(run.path), "-o", str(target), "--overwrite")
    assert code == 0 and target.read_text().lower().startswith("<!doctype html>"), err
    assert "--format cannot be told from 'names.txt'" in one_line(*call("export", str(run.path), "-o",
                                                                        str(tmp_path / "names.txt")))
    assert not (tmp_path / "names.txt").exists()
    one_line(*call("export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.html")))
    assert "--with-training-items applies to html and js" in one_line(
        *call("export", str(run.path), "-o", str(tmp_path / "x.onnx"), "--with-training-items"))
    damaged = tmp_path / "damaged"
    shutil.copytree(run.path, damaged)
    (damaged / "model.safetensors").write_bytes((damaged / "model.safetensors").read_bytes()[:100])
    assert "truncated or damaged" in one_line(*call("export", str(damaged), "-o", str(tmp_path / "x.html")))
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run.path, unfinished)
    meta = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**meta, "status": "stopped"}))
    assert "is unfinished" in one_line(*call("export", str(unfinished), "-o", str(tmp_path / "x.html")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged", "page.html", "unfinished"]  # nothing else


def test_hostile_strings_cannot_leave_the_json(runs):
    hostile = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "\"'\\", "a\u2028b", "<!--", "&amp;"]
    text = inline_json({"items": hostile})
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == {"items": hostile}
    _, run = runs
    data = bundle(run)
    data["training_items"] = hostile  # as --with-training-items would embed them
    page = page_text(data)
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the JSON data, and the code
    assert "{{" not in page.split('id="bundle">')[0]  # every placeholder filled


def test_the_server_offers_both_downloads_by_run_id(runs):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from makemore.serve.app import create_app
    from makemore.serve.catalog import load_catalog

    folder, run = runs
    catalog = load_catalog([run.path], {})
    (run_id,) = list(catalog.runs)
    with TestClient(create_app(catalog), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        page = client.get("/api/export", params={"run": run_id, "format": "html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["content-disposition"] == f'attachment; filename="{run_id}.html"'
        assert "Content-Security-Policy" in page.text and "default-src 'none'" in page.text
        module = client.get("/api/export", params={"run": run_id, "format": "js"})
        assert module.status_code == 200 and "export const sample" in module.text
        assert client.get("/api/export", params={"run": "../etc/passwd"}).json()["error"]["field"] == "run"
        bad = client.get("/api/export", params={"run": run_id, "format": "onnx"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "format"
        assert client.get("/api/export").status_code == 422
        document = client.get("/api/openapi.json").json()
        declared = document["paths"]["/api/export"]["get"]["responses"]
        assert {"200", "404", "422"} <= set(declared) and "text/html" in declared["200"]["content"]
