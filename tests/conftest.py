"""Shared fixtures. names.txt is read from $MAKEMORE_DATA or ../shared/data, never from the repo."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import pytest
import torch

from makemore.cli import main

REPO = Path(__file__).resolve().parents[1]


def _names_dir() -> Path | None:
    """The folder holding names.txt: $MAKEMORE_DATA's when it is set (and then only there), else ../shared/data."""
    given = [p for p in os.environ.get("MAKEMORE_DATA", "").split(os.pathsep) if p]
    for candidate in given or [str(REPO.parent / "shared" / "data")]:
        if candidate and (Path(candidate) / "names.txt").is_file():
            return Path(candidate).resolve()  # absolute: a notebook's kernel runs in another folder
    return None


def names_dir_or_skip() -> Path:
    """The folder holding names.txt, for a module-scoped fixture (which cannot take `names_path`); a skip without it."""
    names_dir = _names_dir()
    if names_dir is None:
        pytest.skip("names.txt not found: set MAKEMORE_DATA to the folder holding it")
    return names_dir


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Every test: one thread (fast and deterministic on 2 cores), a private cache, the shared data folder."""
    torch.set_num_threads(1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    names_dir = _names_dir()
    if names_dir is not None:
        monkeypatch.setenv("MAKEMORE_DATA", str(names_dir))


@pytest.fixture
def names_path() -> Path:
    """names.txt; skipped on a developer's machine without it, but a failure in CI (CI=true), where half the
    suite (resume, kill, full disk, determinism) needs it and must not pass as skipped."""
    names_dir = _names_dir()
    if names_dir is None:
        message = "names.txt not found: set MAKEMORE_DATA to the folder holding it"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message} (CI=true: a missing data set fails the suite instead of skipping half of it)")
        pytest.skip(message)
    return names_dir / "names.txt"


@pytest.fixture
def small_file(tmp_path, names_path) -> Path:
    """The first 300 names: big enough to split and train on, small enough for a fast test."""
    lines = names_path.read_text().splitlines()[:300]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def call(*argv, stdin: bytes | None = None) -> tuple[int, str, str]:
    """makemore in this process, as a user runs it: (exit code, stdout, stderr); argparse's exit becomes its code.

    The one way tests call the command line. `stdin` bytes are read as a real standard input would be.
    """
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", newline="\n")  # as a real stdin
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as e:
                code = e.code
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    """`call` as a fixture: cli("sample", run_dir, "-n", 5) -> (exit code, stdout, stderr)."""
    return call
