"""Load on `makemore serve`: 2,000 mixed requests from 50 concurrent clients, on 127.0.0.1 only.

    MAKEMORE_DATA=../shared/data .venv/bin/python benchmarks/serve_load.py runs/essay
    MAKEMORE_DATA=../shared/data .venv/bin/python benchmarks/serve_load.py            # a small mlp trained here

It starts `makemore serve` as its own process on a free 127.0.0.1 port (the command as a user runs
it, 2 workers), waits for GET /api/health, then 50 client threads, each with one keep-alive
connection, send 2,000 requests in a fixed mix over every run served: POST /api/next 40% (a
prefix, as the page sends while one types), /api/score 25% (1-5 items, explained), /api/sample
20% (10-20 items, some with a prefix), GET /api/runs 10%, /api/health 5%. It prints requests per
second, p50/p99 latency per route and overall, and the error count (any answer but 200, or no
answer), which must be 0; the exit status is 1 otherwise. Bounded: 2,000 requests, 10 s per
request, 300 s in all, then the server is stopped (SIGINT, as Ctrl-C).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic anywhere else
REQUESTS = 2_000
CLIENTS = 50
REQUEST_TIMEOUT = 10.0  # seconds per request
DEADLINE = 300.0  # seconds for all requests; the clients stop by themselves after it
MIX = (("next", 40), ("score", 25), ("sample", 20), ("runs", 10), ("health", 5))
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "kaelynn", "zara", "mateo", "jaxon", "liam", "nora", "aria"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(run_dirs: list[str], port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "makemore", "serve", *run_dirs, "--host", HOST, "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))


def wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"makemore serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"makemore serve did not answer within {timeout:.0f} s:\n{log.read_text()}")


def plan(runs: list[dict], seed: int = 0) -> list[tuple[str, str, str, dict | None]]:
    """The 2,000 requests: (kind, method, path, body), shuffled with a fixed seed."""
    rng = random.Random(seed)
    kinds = [kind for kind, share in MIX for _ in range(REQUESTS * share // 100)]
    rng.shuffle(kinds)
    out = []
    for i, kind in enumerate(kinds):
        run = runs[i % len(runs)]
        chars = run["data"]["chars"] or "a"
        word = "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))
        known = [n for n in NAMES if set(n) <= set(chars)] or [word]
        if kind == "next":
            out.append((kind, "POST", "/api/next", {"run": run["id"], "prefix": word, "k": 10}))
        elif kind == "score":
            items = rng.sample(known, min(len(known), rng.randint(1, 5)))
            out.append((kind, "POST", "/api/score", {"run": run["id"], "items": items, "explain": True}))
        elif kind == "sample":
            body = {"run": run["id"], "n": rng.randint(10, 20), "seed": i, "prefix": word[:2] if i % 3 == 0 else ""}
            out.append((kind, "POST", "/api/sample", body))
        else:
            out.append((kind, "GET", f"/api/{kind}", None))
    return out


def client(port: int, work: list, lock: threading.Lock, results: list, stop_at: float) -> None:
    """Take requests off the shared list until it is empty or the deadline passes; record (kind, seconds, ok)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    while time.monotonic() < stop_at:
        with lock:
            if not work:
                break
            kind, method, path, body = work.pop()
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        start = time.perf_counter()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        results.append((kind, time.perf_counter() - start, ok))
    conn.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(results: list, seconds: float, planned: int) -> int:
    errors = sum(not ok for _, _, ok in results) + (planned - len(results))  # not sent before the deadline: errors
    print(f"{'route':<14} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, _ in MIX + (("all", 0),):
        times = [t * 1000 for k, t, _ in results if kind in (k, "all")]
        if times:
            print(f"{kind:<14} {len(times):>8,} {percentile(times, 50):>8.1f} {percentile(times, 99):>8.1f}")
    print(f"{len(results):,} requests in {seconds:.1f} s: {len(results) / seconds:.1f} requests per second")
    print(f"errors: {errors}")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="*", help="what to serve (default: a small mlp trained in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dirs = args.run_dirs
        if not run_dirs:
            run_dirs = [str(Path(tmp) / "mlp")]
            subprocess.run([sys.executable, "-m", "makemore", "train", "-i", "names", "--model", "mlp", "--steps", "500",
                            "--no-plot", "-o", run_dirs[0]], check=True, stdout=subprocess.DEVNULL)
        port, log = free_port(), Path(tmp) / "serve.log"
        proc = start_server(run_dirs, port, log)
        try:
            wait_ready(proc, port, log)
            conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
            conn.request("GET", "/api/runs")
            runs = json.loads(conn.getresponse().read())["runs"]
            work = plan(runs)
            planned = len(work)
            print(f"serve load: {planned:,} requests, {CLIENTS} concurrent clients, {len(runs)} run(s) "
                  f"({', '.join(r['id'] for r in runs)}) on http://{HOST}:{port}/, {os.cpu_count()} CPU cores")
            results: list = []
            lock = threading.Lock()
            start = time.perf_counter()
            stop_at = time.monotonic() + DEADLINE
            threads = [threading.Thread(target=client, args=(port, work, lock, results, stop_at)) for _ in range(CLIENTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            errors = report(results, time.perf_counter() - start, planned)
        finally:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: the server stops cleanly
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
