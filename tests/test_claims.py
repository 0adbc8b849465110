"""`claims`: a row holds only against the figure it prints in its own essay column."""

from __future__ import annotations

import re

import pytest

from makemore.studies.claims import COMPARISONS, Claim, format_claims, judge, measure_claims, table_claims
from makemore.data.items import read_items

NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:e-?\d+)?")


def numbers_in(text: str) -> list[tuple[float, float]]:
    """Each number of `text` with half a unit of its last printed digit: (value, rounding)."""
    found = []
    for token in NUMBER.findall(text):
        decimals = len(token.split(".")[1]) if "." in token and "e" not in token else 0
        found.append((float(token.replace(",", "")), 0.5 * 10 ** -decimals + 1e-12))
    return found


def assert_judged_against_its_own_column(c: Claim) -> None:
    if c.essay_figure is None:  # a property ("same model", "equal"): no figure to hold it against
        assert c.compare is None and c.rule
        return
    assert c.compare in COMPARISONS
    # the figure the verdict uses is the one the essay column shows...
    assert any(abs(n - c.essay_figure) < 1e-9 for n, _ in numbers_in(c.essay)), (c.claim, c.essay, c.essay_figure)
    # ...the measured figure is the one the makemore column shows, to its printed precision (a distance: its size)...
    assert any(abs(abs(n) - abs(c.measured_figure)) <= r for n, r in numbers_in(c.measured)), \
        (c.claim, c.measured, c.measured_figure)
    # ...and the verdict is the comparison of those two, no other rule
    assert c.holds == judge(c.compare, c.measured_figure, c.essay_figure, c.tolerance), c.claim


RESULTS = {"models": [  # the README's reproduce table on names.txt
    {"model": "bigram-counts", "val_nll": 2.4533, "essay_val_nll": 2.45},
    {"model": "bigram-nn", "val_nll": 2.4604, "essay_val_nll": 2.46},
    {"model": "mlp", "val_nll": 2.0857, "essay_val_nll": 2.10},
    {"model": "mlp-bn", "val_nll": 2.0816, "essay_val_nll": 2.05},
    {"model": "wavenet", "val_nll": 1.9747, "essay_val_nll": 1.99},
]}


def test_the_table_rows_hold_against_the_essays_figure_only():
    rows = {c.claim: c for c in table_claims(RESULTS)}
    assert not rows["mlp-bn: val NLL"].holds  # 2.0816 is not the essay's 2.05: NO, with the measured value
    assert rows["mlp-bn: val NLL"].measured == "2.0816" and rows["mlp-bn: val NLL"].essay == "2.05"
    assert rows["mlp: val NLL"].holds and rows["wavenet: val NLL"].holds and rows["bigram-nn: val NLL"].holds
    below = rows["mlp-bn: val NLL below the plain mlp's (same seed)"]  # what does hold, said as its own row
    assert below.holds and below.measured == "2.0816 < 2.0857"
    for c in rows.values():
        assert_judged_against_its_own_column(c)


@pytest.mark.parametrize("compare, measured, essay, tol, holds", [
    ("equal", 27, 27, None, True), ("equal", 28, 27, None, False),
    ("within", 2.4546, 2.4543, 0.001, True), ("within", 2.4560, 2.4543, 0.001, False),
    ("at most (2 decimals)", 2.0816, 2.05, None, False), ("at most (2 decimals)", 2.0549, 2.05, None, True),
    ("below", 0.008, 0.01, None, True), ("above", 93.8, 97, None, False),
])
def test_judge(compare, measured, essay, tol, holds):
    assert judge(compare, measured, essay, tol) is holds


def test_every_measured_row_is_judged_against_its_own_essay_column(small_file):
    claims = measure_claims(read_items(small_file))  # the quick claims and the gradient check, on 300 names
    assert sum(c.essay_figure is not None for c in claims) >= 8
    for c in claims:
        assert_judged_against_its_own_column(c)
    table = format_claims(claims)
    assert table.splitlines()[0].split()[-2:] == ["holds", "rule"]
    for c in claims:  # each row shows its rule
        assert c.rule in next(line for line in table.splitlines() if line.startswith(c.claim))
