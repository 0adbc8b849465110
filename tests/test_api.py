"""The two APIs of makemore: the Python one (`import makemore as mm`) and the HTTP one of `makemore.serve`,
as its OpenAPI document (/api/openapi.json) declares it: every status each route answers, with the body it has."""

from __future__ import annotations

import ast
import errno
import http.client
import importlib.metadata
import json
import math
import os
import re
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
import torch

import makemore as mm

from .conftest import REPO, call, names_dir_or_skip, write_lines
from .serving import running_server


# ----------------------------------------------------------------------------- the Python API

def test_python_api_end_to_end(tmp_path, small_file):
    items = mm.read_items(small_file)
    recipe = mm.get_recipe("mlp")
    recipe.steps = 50
    meta = mm.run(items, mm.RunSpec(model="mlp", recipe=recipe), tmp_path / "mlp")
    assert meta["status"] == "complete" and meta["step"] == 50
    model, vocab, loaded_meta = mm.load_run(tmp_path / "mlp")
    assert loaded_meta["metrics"] == meta["metrics"] and vocab.size == 27
    # the run's val_nll is the NLL per predicted character (each character and each end) of its validation
    # items: what score_items gives item by item, summed
    _, val, _ = mm.split_items(items, seed=meta["split_seed"])
    scores = mm.score_items(model, vocab, val)
    assert [s.item for s in scores] == val
    nll = -sum(s.log_prob for s in scores) / sum(len(item) + 1 for item in val)
    assert meta["metrics"]["val_nll"] == pytest.approx(nll, rel=1e-5)
    assert set(mm.__all__) >= {"read_items", "build_model", "train", "load_run", "score_items", "run", "resume"}


def test_every_api_name_is_makemores_own_and_is_imported_on_first_use():
    for name in mm.__all__:
        value = getattr(mm, name)  # an AttributeError for a name that does not resolve
        if callable(value):
            assert value.__module__.startswith("makemore."), (name, value.__module__)
    assert mm.__version__ == importlib.metadata.version("makemore")
    assert "mlp" in mm.MODELS and "mlp" in mm.PRESETS and "temperature" in mm.BOUNDS
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        mm.no_such_name  # noqa: B018
    code = ("import sys, makemore as mm; first = 'torch' in sys.modules; mm.read_items; "
            "print(first, 'torch' in sys.modules, 'makemore.data.items' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]  # `import makemore` loads no model code; a name loads its own


def test_the_readme_studies_from_python(small_file):
    # the README's Python API section: the essay's studies as data, the same text as the commands print
    items = mm.read_items(small_file)
    report = mm.diagnose(items, model="mlp", init="kaiming", steps=20)
    assert report.before.loss > report.after.loss  # 20 steps of SGD lower the loss on the measured batch
    assert report.vocab_size == 27 and report.before.ideal_loss == pytest.approx(math.log(27))
    tanh_layers = sum(isinstance(m, torch.nn.Tanh) for m in mm.build_model("mlp", vocab_size=27).modules())
    assert len(report.before.layers) == len(report.after.layers) == tanh_layers == 1  # the essay's MLP: one tanh
    assert f"initial loss {report.before.loss:.4f}" in mm.format_diagnose(report)
    claims = mm.measure_claims(items)
    named = {c.claim: c for c in claims}
    examples = named["examples with a 3-character context"]  # one per character and one per end
    assert examples.measured_figure == sum(len(item) + 1 for item in items) == 2085 and examples.holds is False
    assert named["vocabulary (26 letters + .)"].measured_figure == 27 and named["vocabulary (26 letters + .)"].holds
    assert named["expected initial loss -log(1/27)"].measured_figure == pytest.approx(math.log(27))
    table = mm.format_claims(claims).splitlines()
    assert table[0].startswith("claim") and len(table) == 2 + len(claims)
    for row, claim in zip(table[2:], claims):  # each row: the claim and its verdict
        assert row.startswith(claim.claim) and re.search(r"\byes\b" if claim.holds else r"\bNO\b", row), row


# ----------------------------------------------------------------------------- the HTTP API's OpenAPI document

@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """One bigram-counts run on the first 300 names, as `makemore serve` loads it."""
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from makemore.serve.catalog import load_catalog

    names_dir = names_dir_or_skip()
    tmp = tmp_path_factory.mktemp("openapi")
    small = write_lines(tmp / "small.txt", (names_dir / "names.txt").read_text().splitlines()[:300])
    code, _, err = call("train", "-i", small, "--model", "bigram-counts", "-o", tmp / "counts", "--threads", "1",
                        "--no-plot")
    assert code == 0, err
    return load_catalog([tmp / "counts"], {})


Answer = tuple[str, str]  # (Content-Type, body) of one response


def example_body(request_schema: dict, run: str) -> dict:
    """The smallest body a POST route answers 200: its required fields ("run", and "items" for /api/score)."""
    body = {}
    for name in request_schema["required"]:
        kind = request_schema["properties"][name]["type"]
        body[name] = run if name == "run" else ["anna"] if kind == "array" else pytest.fail(f"no example for {name}")
    return body


def provoke(client, path: str, method: str, operation: dict, run: str,
            max_body_bytes: int) -> dict[int, list[Answer]]:
    """Every status but 500 and 503 that the route can be made to answer, each by the requests that cause it."""
    answers: dict[int, list[Answer]] = {}

    def send(expected: int, verb: str = method.upper(), **request) -> None:
        response = client.request(verb, path, **request)
        assert response.status_code == expected, (path, verb, request.get("headers"), response.text[:300])
        answers.setdefault(expected, []).append((response.headers.get("content-type", ""), response.text))

    if method == "get":
        params = {"run": run} if path == "/api/export" else None  # the one GET route that takes a run
        send(200, params=params)
        send(400, headers={"host": "attacker.example"}, params=params)  # not a loopback name, on a loopback server
        send(405, "POST", json={})
        if path == "/api/export":
            send(404, params={"run": "no/such/run"})
            send(422, params={"run": run, "format": "pdf"})
        return answers
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    body = example_body(schema, run)
    send(200, json=body)
    send(400, content=b'{"run": ', headers={"content-type": "application/json"})
    send(400, json=body, headers={"host": "attacker.example"})
    send(404, json={**body, "run": "no/such/run"})
    send(405, "GET")
    send(413, content=b" " * (max_body_bytes + 1), headers={"content-type": "application/json"})
    send(415, content=json.dumps(body).encode(), headers={"content-type": "text/plain"})
    send(422, json={**body, "no_such_field": 1})
    return answers


def over_the_connection_limit(url: str, path: str, method: str) -> tuple[int, Answer]:
    """A request to a real server (uvicorn) that already holds as many connections as it takes."""
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=20)
    try:
        connection.request(method.upper(), path, body=b"{}" if method == "post" else None,
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, (response.getheader("content-type", ""), response.read().decode())
    finally:
        connection.close()


def is_type(value, kind: str) -> bool:
    """Whether `value`, read from JSON, is of the JSON Schema type `kind`."""
    if kind in ("integer", "number"):
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and (kind == "number" or float(value).is_integer()))
    return isinstance(value, {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}[kind])


def problems(value, schema: dict, document: dict, where: str = "body") -> list[str]:
    """How `value` breaks the JSON Schema `schema` ($ref into the document's components, type, required,
    properties, additionalProperties, maxLength, items): the subset the document uses, checked by hand."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return problems(value, document["components"]["schemas"][name], document, where)
    found = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(is_type(value, kind) for kind in kinds):
            return [f"{where}: {type(value).__name__} is not {' or '.join(kinds)}"]
    if isinstance(value, dict):
        found += [f"{where}: no {key!r}" for key in schema.get("required", []) if key not in value]
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            found += [f"{where}: {key!r} is not declared" for key in value if key not in properties]
        for key, sub in properties.items():
            if key in value:
                found += problems(value[key], sub, document, f"{where}.{key}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", math.inf):
        found.append(f"{where}: longer than {schema['maxLength']}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += problems(item, schema["items"], document, f"{where}[{i}]")
    return found


def test_the_openapi_document_declares_every_status_each_route_answers_and_its_body(catalog, monkeypatch):
    from fastapi.testclient import TestClient

    from makemore.serve import app as web
    from makemore.serve.config import ServeConfig

    config = ServeConfig(max_body_bytes=1_000)
    run = next(iter(catalog.runs))
    with TestClient(web.create_app(catalog, config), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as client:
        document = client.get("/api/openapi.json").json()
        routes = [(path, method) for path, methods in document["paths"].items() for method in methods]
        assert sorted(routes) == [("/api/export", "get"), ("/api/health", "get"), ("/api/inside", "post"),
                                  ("/api/next", "post"), ("/api/runs", "get"), ("/api/sample", "post"),
                                  ("/api/score", "post")]
        answers = {(path, method): provoke(client, path, method, document["paths"][path][method], run,
                                           config.max_body_bytes) for path, method in routes}

        def bug(*args, **kwargs):
            raise RuntimeError("secret internals")

        with monkeypatch.context() as patch:  # a bug in what each route calls first: 500
            for name in ("health", "list_runs", "parse_body", "bundle"):
                patch.setattr(web, name, bug)
            for path, method in routes:
                body = example_body(document["paths"][path][method]["requestBody"]["content"]["application/json"]
                                    ["schema"], run) if method == "post" else None
                params = {"run": run} if path == "/api/export" else None
                response = client.request(method.upper(), path, json=body, params=params)
                assert response.status_code == 500 and "secret" not in response.text, (path, response.text)
                answers[path, method][500] = [(response.headers["content-type"], response.text)]

    with running_server(catalog, max_connections=1) as url:  # uvicorn refuses every request: 503
        for path, method in routes:
            status, answer = over_the_connection_limit(url, path, method)
            assert status == 503, (path, answer)
            answers[path, method][503] = [answer]

    for (path, method), answered in answers.items():
        declared = document["paths"][path][method]["responses"]
        assert sorted(answered) == sorted(map(int, declared)), (path, method)  # each answered, each declared
        for status, content_type, text in ((s, *answer) for s, several in answered.items() for answer in several):
            media = content_type.split(";")[0]  # the one the route declares for this answer (an export: html or js)
            assert declared[str(status)]["description"] and media in declared[str(status)]["content"], (path, status)
            content = declared[str(status)]["content"][media]
            if media == "application/json":
                assert not problems(json.loads(text), content["schema"], document), (path, status, text)
            if status >= 400:
                assert "$ref" in content["schema"] or media == "text/plain", (path, status)  # a declared body
                error = json.loads(text)["error"] if media == "application/json" else None
                assert error is None or (error["message"] and "Traceback" not in text), (path, status, text)


def test_the_error_schema_refuses_bodies_that_are_not_an_api_error(catalog):
    from fastapi.testclient import TestClient

    from makemore.serve.app import create_app

    document = TestClient(create_app(catalog), base_url="http://127.0.0.1").get("/api/openapi.json").json()
    error = {"$ref": document["paths"]["/api/sample"]["post"]["responses"]["422"]["content"]["application/json"]
             ["schema"]["$ref"]}
    good = {"error": {"field": "n", "message": "n must be a whole number", "allowed": None}}
    assert problems(good, error, document) == []
    assert problems({"error": {"field": "n", "message": "m"}}, error, document) == ["body.error: no 'allowed'"]
    assert problems({"error": {**good["error"], "field": 3}}, error, document) == [
        "body.error.field: int is not string or null"]
    assert problems({"detail": "Not Found"}, error, document) == ["body: no 'error'", "body: 'detail' is not declared"]
    assert problems({"error": {**good["error"], "message": "x" * 501}}, error, document) == [
        "body.error.message: longer than 500"]


def request_schema(document: dict, path: str) -> dict:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def beyond(prop: dict) -> list[tuple[object, str]]:
    """Values just outside each bound the property declares, each with the field suffix its refusal names
    ("" for the field itself, "[0]" for its first entry)."""
    values: list[tuple[object, str]] = []
    for key, step in (("maximum", 1), ("minimum", -1), ("exclusiveMaximum", 0), ("exclusiveMinimum", 0)):
        if key in prop:
            values.append((prop[key] + step, ""))
    if "maxLength" in prop:
        values.append(("a" * (prop["maxLength"] + 1), ""))
    if "maxItems" in prop:
        values.append((["a"] * (prop["maxItems"] + 1), ""))
    if prop.get("minItems", 0) > 0:
        values.append(([], ""))
    entries = prop.get("items", {})
    if "maxLength" in entries:
        values.append((["a" * (entries["maxLength"] + 1)], "[0]"))
    if entries.get("minLength", 0) > 0:
        values.append(([""], "[0]"))
    if "maxProperties" in prop:
        values.append(({f"label{i}": 1 for i in range(prop["maxProperties"] + 1)}, ""))
    return values


def test_every_bound_the_document_declares_is_refused_with_a_422_naming_its_field(catalog):
    """The document and the server agree: a value just past any declared bound of any request field is refused,
    naming that field (or its entry); the API's own bounds (avoid, exclude, keys, blend) among them."""
    from fastapi.testclient import TestClient

    from makemore.bounds import MAX_REQUEST_AVOID, MAX_REQUEST_KEYS
    from makemore.serve.app import create_app

    run = next(iter(catalog.runs))
    with TestClient(create_app(catalog), base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        document = client.get("/api/openapi.json").json()
        sample = request_schema(document, "/api/sample")["properties"]
        assert sample["avoid"]["maxItems"] == sample["exclude"]["maxItems"] == MAX_REQUEST_AVOID == 10_000
        assert sample["keys"]["maxItems"] == MAX_REQUEST_KEYS == 1_000
        assert sample["avoid"]["items"]["minLength"] == sample["keys"]["items"]["minLength"] == 1
        assert sample["unique"]["type"] == "boolean" and sample["unique"]["default"] is False
        assert sample["min_log_prob"]["type"] == ["number", "null"] and sample["min_log_prob"]["maximum"] == 0
        assert sample["max_nll_per_char"]["type"] == ["number", "null"] and sample["max_nll_per_char"]["minimum"] == 0
        for path in ("/api/sample", "/api/score", "/api/next"):
            blend = request_schema(document, path)["properties"]["blend"]
            assert blend["type"] == ["object", "null"] and blend["additionalProperties"] == {"type": "number",
                                                                                              "minimum": 0}
        tried = 0
        for path, methods in document["paths"].items():
            if "post" not in methods:
                continue
            schema = request_schema(document, path)
            body = example_body(schema, run)
            for name, prop in schema["properties"].items():
                assert prop["description"], (path, name)
                for value, entry in beyond(prop):
                    response = client.post(path, json={**body, name: value})
                    assert response.status_code == 422, (path, name, response.text[:300])
                    error = response.json()["error"]
                    assert error["field"] == name + entry and error["allowed"], (path, name, error)
                    tried += 1
        assert tried >= 30


# ----------------------------------------------------------------------------- serve names parameters, not flags

def test_a_port_or_host_it_cannot_listen_on_is_named_as_its_serve_config_parameter():
    pytest.importorskip("fastapi", reason="the web extra is not installed: pip install -e '.[web]'")
    from makemore.cli.common import cli_message
    from makemore.serve.app import bind
    from makemore.serve.config import ServeConfig

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(mm.ParameterError) as refused:
            bind(ServeConfig(port=port))
    in_use = os.strerror(errno.EADDRINUSE)
    assert refused.value.parameter == "port"
    assert str(refused.value) == (f"port {port} cannot be listened on at host 127.0.0.1 ({in_use}); "
                                  f"choose another port or host")  # the library names ServeConfig's parameters
    assert cli_message(refused.value) == (f"--port {port} cannot be listened on at --host 127.0.0.1 ({in_use}); "
                                          f"choose another --port or --host")  # the command line names its flags
    with pytest.raises(mm.ParameterError) as refused:
        bind(ServeConfig(host="192.0.2.1", port=port))  # TEST-NET-1 (RFC 5737): no address of this machine
    assert refused.value.parameter == "host" and str(refused.value).startswith("host '192.0.2.1' is not an address")
    assert cli_message(refused.value).endswith("; choose another --host")


def test_the_serve_package_names_no_command_line_flag():
    """Its messages name request fields and ServeConfig parameters; the command line translates them."""
    for source in sorted((REPO / "src" / "makemore" / "serve").glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                assert not re.search(r"(?<![\w-])--[a-z]", node.value), f"{source.name}:{node.lineno}: {node.value}"
