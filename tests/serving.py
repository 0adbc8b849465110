"""Helpers for the `makemore serve` tests: a folder of runs as `reproduce` leaves it, and a server in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

from .conftest import call


def train_folder(folder: Path, data: Path, mlp_steps: int = 60, n_embd: int = 2) -> Path:
    """folder/bigram-counts and folder/mlp (a 2-d embedding, the essay's picture) trained on `data` with the
    command line, and the results.json that `reproduce` writes beside them (its rows, from the runs' own metrics)."""
    runs = {"bigram-counts": [], "mlp": ["--n-embd", str(n_embd), "--steps", str(mlp_steps), "--batch-size", "256"]}
    rows = []
    for model, options in runs.items():
        code, out, err = call("train", "-i", data, "--model", model, "-o", folder / model, "--threads", "1",
                              "--no-plot", *options)
        assert code == 0, err
        meta = json.loads((folder / model / "run.json").read_text())
        rows.append({"model": model, "mechanism": "", "params": meta["params"], **meta["metrics"],
                     "essay_val_nll": None, "seconds": round(meta["train_seconds"], 2), "recipe": meta["recipe"]})
    dataset = json.loads((folder / "mlp" / "run.json").read_text())["dataset"]
    (folder / "results.json").write_text(json.dumps({"dataset": dataset, "seed": 42, "split_seed": 42, "models": rows}))
    return folder


@contextlib.contextmanager
def running_server(catalog, workers: int = 2, **settings):
    """A real uvicorn server on a free 127.0.0.1 port, in a thread; yields its URL and stops it after.
    `settings`: more ServeConfig values (max_connections, max_body_bytes)."""
    from makemore.serve.app import build_server
    from makemore.serve.config import ServeConfig

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = ServeConfig(port=sock.getsockname()[1], workers=workers, **settings)
    server = build_server(catalog, config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start within 20 s"
    try:
        yield config.url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
