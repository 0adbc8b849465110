"""The essay as notebooks (notebooks/): each one runs top to bottom from a clean kernel, and its figures are true.

- At the fast setting (MAKEMORE_NOTEBOOK_FAST=1: fewer steps, the same cells), every notebook is executed by
  nbclient in a fresh kernel, as a learner's Jupyter or CI would run it, so a change to the library that breaks
  a notebook fails here.
- Every notebook ends with its claims: the essay's figures beside the ones just measured, each judged by the
  rule of the claims table (`makemore.studies.claims`), as `{"fast", "claims"}` JSON in that cell's output. The
  essay figures a notebook prints must be the essay's own (found in its text), and the committed outputs,
  those of a full run (`python notebooks/run.py`), must hold every claim.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
ESSAY = REPO.parent / "shared" / "seed" / "makemore-from-bigrams-to-wavenet.txt"
SECTIONS = 8


def claims_output(nb: dict) -> dict | None:
    """The {"fast", "claims"} JSON that the notebook's claims cell displayed, or None."""
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {}).get("application/json")
            if isinstance(data, dict) and "claims" in data:
                return data
    return None


def essay_text() -> str:
    if not ESSAY.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the essay is not at {ESSAY}")
        pytest.skip(f"the essay is not at {ESSAY}")
    return re.sub(r"(?<=\d),(?=\d)", "", ESSAY.read_text(encoding="utf-8"))  # 228,146 and 228146 alike


def numbers(text: str) -> list[str]:
    """The figures in a text, thousands separators dropped: "228,146 (~2.4x)" -> ["228146", "2.4"]."""
    return [n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]


def test_there_is_one_notebook_per_section_of_the_essay():
    assert len(NOTEBOOKS) == SECTIONS, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_committed_outputs_are_a_full_run_that_holds_every_claim(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "run top to bottom, once"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0].get("ename")
    found = claims_output(nb)
    assert found is not None, "the notebook ends with its claims"
    assert found["fast"] is False, "committed outputs come from a full run: python notebooks/run.py"
    essay = essay_text()
    for claim in found["claims"]:
        assert claim["holds"], f"{claim['claim']}: essay {claim['essay']}, measured {claim['measured']} ({claim['rule']})"
        for figure in numbers(claim["essay"]):
            assert figure in essay, f"{claim['claim']}: {figure} is not a figure of the essay"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_runs_from_a_clean_kernel_at_the_fast_setting(path, tmp_path):
    pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -e '.[test]'")
    sys.path.insert(0, str(REPO / "notebooks"))
    try:
        from run import execute
    finally:
        sys.path.pop(0)
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    execute(copy, fast=True)
    found = claims_output(json.loads(copy.read_text(encoding="utf-8")))
    assert found is not None and found["fast"] is True and found["claims"]
    essay = essay_text()
    for claim in found["claims"]:  # at the fast setting the measured figures differ; the essay's do not
        for figure in numbers(claim["essay"]):
            assert figure in essay, f"{claim['claim']}: {figure} is not a figure of the essay"
