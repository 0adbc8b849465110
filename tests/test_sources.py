"""Labelled training input: LABEL=PATH specs, several files, and .csv/.tsv tables with item and label columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from makemore.data.items import TextOptions, read_items
from makemore.errors import MakemoreError, ParameterError
from makemore.data.labelled import TABLE_SUFFIXES, LabelledItems, Source, parse_source, read_labelled

from .conftest import write_lines

GIRLS = [f"girl{i}" for i in range(12)]
BOYS = [f"boy{i}" for i in range(10)]


def one_line(error: pytest.ExceptionInfo) -> str:
    """The message a user reads, checked to be one line."""
    text = str(error.value)
    assert "\n" not in text
    return text


def table(path: Path, rows: list[list[str]], sep: str = ",") -> Path:
    path.write_text("".join(sep.join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_parse_source_forms(tmp_path, monkeypatch):
    assert parse_source("girl=path/f.txt") == Source("path/f.txt", "girl")
    assert parse_source("f.txt") == Source("f.txt", None)
    assert parse_source("a=b=c.txt") == Source("b=c.txt", "a")  # the label ends at the first "="
    monkeypatch.chdir(tmp_path)
    write_lines(tmp_path / "x=y.txt", ["a"])
    assert parse_source("x=y.txt") == Source("x=y.txt", None)  # an existing file is itself, "=" or not
    assert parse_source(str(tmp_path / "x=y.txt")).label is None
    for bad in ("=f.txt", "girl=", "=", " =f.txt"):
        with pytest.raises(MakemoreError) as e:
            parse_source(bad)
        assert "LABEL=PATH" in one_line(e) and repr(bad) in str(e.value)


def test_two_plain_files_are_labelled_by_stem_in_order(tmp_path):
    girls = write_lines(tmp_path / "girls.txt", GIRLS)
    boys = write_lines(tmp_path / "boys.txt", BOYS)
    data = read_labelled([str(girls), str(boys)])
    assert data.items == GIRLS + BOYS
    assert data.names == ["girls", "boys"]
    assert data.labels == [0] * 12 + [1] * 10
    assert data.counts() == {"girls": 12, "boys": 10}
    assert data.files == {"girls": [str(girls)], "boys": [str(boys)]}
    assert data.skipped_empty == 0
    reverse = read_labelled([str(boys), str(girls)])
    assert reverse.names == ["boys", "girls"] and reverse.items == BOYS + GIRLS


def test_explicit_labels_and_the_resolver(tmp_path):
    girls = write_lines(tmp_path / "g.txt", GIRLS)
    boys = write_lines(tmp_path / "b.txt", BOYS)
    data = read_labelled([f"girl={girls}", f"boy={boys}"])
    assert data.names == ["girl", "boy"] and data.files == {"girl": [str(girls)], "boy": [str(boys)]}
    # the label of an unlabelled input is the stem of the path *as given*, not of the file it resolves to
    builtin = {"names": girls}
    data = read_labelled(["names", f"boy={boys}"], resolve=lambda p: builtin.get(p, Path(p)))
    assert data.names == ["names", "boy"] and data.files["names"] == ["names"] and data.items[:12] == GIRLS
    # one plain file with an explicit label is a one-label run
    single = read_labelled([f"girl={girls}"])
    assert single.labels == [0] * 12 and single.names == ["girl"] and single.counts() == {"girl": 12}


def test_labels_that_coincide_are_refused(tmp_path):
    a = write_lines(tmp_path / "a.txt", GIRLS)
    (tmp_path / "b").mkdir()
    x = write_lines(tmp_path / "b" / "x.txt", BOYS)
    with pytest.raises(MakemoreError) as e:
        read_labelled([f"x={a}", str(x)])
    assert one_line(e) == f"two inputs have the label 'x' ({a} and {x}); name them apart with LABEL=PATH"
    y = write_lines(tmp_path / "x.txt", BOYS)
    with pytest.raises(MakemoreError, match=r"two inputs have the label 'x' \(.*b/x.txt and .*/x.txt\)"):
        read_labelled([str(x), str(y)])  # same stem, different folders
    with pytest.raises(MakemoreError, match="two inputs have the label 'kid'"):
        read_labelled([f"kid={a}", f"kid={y}"])  # one file per label, even when both are explicit


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".CSV"])
def test_table_with_item_and_label_columns(tmp_path, suffix):
    sep = TABLE_SUFFIXES[suffix.lower()]
    rows = [["id", "name", "sex"]]
    rows += [[str(i), name, "F"] for i, name in enumerate(GIRLS)]
    rows += [["99", "", "F"], ["98", "  ", "M"]]  # empty item cells: skipped, counted
    rows += [[str(i), name, " M "] for i, name in enumerate(BOYS)]
    path = table(tmp_path / f"kids{suffix}", rows, sep)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"\n")  # a BOM, and a trailing blank line (no row)
    data = read_labelled([str(path)], item_column="name", label_column="sex")
    assert data.items == GIRLS + BOYS
    assert data.names == ["F", "M"] and data.labels == [0] * 12 + [1] * 10
    assert data.files == {"F": [str(path)], "M": [str(path)]}
    assert data.skipped_empty == 2
    unlabelled = read_labelled([str(path)], item_column="id")  # the BOM is not part of the first column's name
    assert unlabelled.labels is None and unlabelled.names == [] and unlabelled.items[:2] == ["0", "1"]


def test_quoted_cells_and_options_apply_to_table_items(tmp_path):
    path = tmp_path / "n.csv"
    lines = ['name,sex', '"Smith, Anna",F', '"say ""hi""",F'] + [f"Name{i},F" for i in range(8)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_labelled([str(path)], item_column="name", label_column="sex",
                         options=TextOptions(lowercase=True))
    assert data.items[:2] == ["smith, anna", 'say "hi"'] and data.items[2] == "name0"
    assert data.names == ["F"]  # labels are not lower-cased
    path.write_text("name,sex\nAnna,F\n\"Bo\nb\",M\n", encoding="utf-8")
    with pytest.raises(MakemoreError, match="holds a line break"):
        read_labelled([str(path)], item_column="name")


def test_missing_columns_name_the_columns_there_are(tmp_path):
    path = table(tmp_path / "n.csv", [["name", " sex", "year"], ["Anna", "F", "1990"]])
    with pytest.raises(ParameterError) as e:
        read_labelled([str(path)], item_column="nom")
    assert e.value.parameter == "item_column"
    assert one_line(e) == f"item_column is 'nom', a column that {path} does not have; its columns are: name, sex, year"
    with pytest.raises(ParameterError) as e:
        read_labelled([str(path)], item_column="name", label_column="gender")
    assert e.value.parameter == "label_column" and "'gender'" in str(e.value) and "name, sex, year" in str(e.value)


def test_a_table_needs_item_column(tmp_path):
    path = table(tmp_path / "n.tsv", [["name", "sex"], ["Anna", "F"]], "\t")
    with pytest.raises(ParameterError) as e:
        read_labelled([str(path)])
    assert e.value.parameter == "item_column"
    assert one_line(e) == f"item_column is needed to read the table {path}; its columns are: name, sex"
    girls = write_lines(tmp_path / "g.txt", GIRLS)
    with pytest.raises(ParameterError, match="item_column is needed"):
        read_labelled([str(girls), str(path)])  # also among several inputs


def test_column_parameters_without_a_table_are_refused(tmp_path):
    girls = write_lines(tmp_path / "g.txt", GIRLS)
    for parameter in ("item_column", "label_column"):
        with pytest.raises(ParameterError) as e:
            read_labelled([str(girls)], **{parameter: "name"})
        assert e.value.parameter == parameter and "only applies to a .csv or .tsv input" in one_line(e)


def test_a_label_column_table_must_be_the_only_input(tmp_path):
    path = table(tmp_path / "n.csv", [["name", "sex"]] + [[g, "F"] for g in GIRLS])
    boys = write_lines(tmp_path / "boys.txt", BOYS)
    with pytest.raises(ParameterError) as e:
        read_labelled([str(path), str(boys)], item_column="name", label_column="sex")
    assert e.value.parameter == "label_column" and "must be the only input (2 given)" in one_line(e)
    with pytest.raises(ParameterError, match="cannot also be labelled 'kid'"):
        read_labelled([f"kid={path}"], item_column="name", label_column="sex")
    # without a label column a table is one more input, labelled by its stem
    data = read_labelled([str(path), str(boys)], item_column="name")
    assert data.names == ["n", "boys"] and data.counts() == {"n": 12, "boys": 10}


def test_labels_too_small_to_split_are_all_named(tmp_path):
    rows = [["name", "race"]] + [[f"e{i}", "elf"] for i in range(3)] + [[f"h{i}", "human"] for i in range(10)]
    rows += [[f"d{i}", "dwarf"] for i in range(7)]
    path = table(tmp_path / "folk.csv", rows)
    with pytest.raises(MakemoreError) as e:
        read_labelled([str(path)], item_column="name", label_column="race")
    assert one_line(e) == ("labels with fewer than 10 items cannot be split 80/10/10: elf (3), dwarf (7); "
                           "add items or drop those labels")
    data = read_labelled([str(path)], item_column="name", label_column="race", min_items=3)
    assert data.counts() == {"elf": 3, "human": 10, "dwarf": 7}
    few = write_lines(tmp_path / "few.txt", GIRLS[:4])
    with pytest.raises(MakemoreError, match=r"80/10/10: few \(4\);"):
        read_labelled([str(few), str(write_lines(tmp_path / "boys.txt", BOYS))])


def test_empty_label_cells_and_empty_tables_are_one_line_errors(tmp_path):
    path = table(tmp_path / "n.csv", [["name", "sex"], ["Anna", "F"], ["Bob", " "]])
    with pytest.raises(MakemoreError) as e:
        read_labelled([str(path)], item_column="name", label_column="sex")
    assert one_line(e) == f"{path} line 3 has an empty 'sex' cell; give every row a label"
    table(path, [["name", "sex"]])
    with pytest.raises(MakemoreError, match="has no items .it has a header but no rows"):
        read_labelled([str(path)], item_column="name")
    table(path, [["name", "sex"], ["", "F"], [" ", "M"]])
    with pytest.raises(MakemoreError, match="every row's 'name' cell is empty"):
        read_labelled([str(path)], item_column="name")
    path.write_text("")
    with pytest.raises(MakemoreError, match="is empty; a table needs a header row"):
        read_labelled([str(path)], item_column="name")
    table(path, [["id", "name"], ["1"]])
    with pytest.raises(MakemoreError, match="line 2 has 1 cell.s. but the header has 2"):
        read_labelled([str(path)], item_column="name")


def test_a_single_plain_file_reads_exactly_as_read_items(tmp_path):
    path = tmp_path / "odd.txt"
    path.write_bytes("\ufeffAnna\r\n\n  \nzoë \nBob\n".encode("utf-8"))
    options = TextOptions(lowercase=True)
    data = read_labelled([str(path)], options=options)
    assert data == LabelledItems(read_items(path, options), None, [], {})
    assert data.items == ["anna", "zoë ", "bob"] and data.counts() == {}


def test_missing_files_and_directories(tmp_path):
    with pytest.raises(MakemoreError, match="input file not found"):
        read_labelled([str(tmp_path / "nope.txt"), str(write_lines(tmp_path / "b.txt", BOYS))])
    with pytest.raises(MakemoreError) as e:
        read_labelled([str(tmp_path / "nope.csv")], item_column="name")
    assert one_line(e).startswith(f"input file not found: {tmp_path / 'nope.csv'}")
    (tmp_path / "dir.tsv").mkdir()
    with pytest.raises(MakemoreError, match="input is a directory, not a file"):
        read_labelled([str(tmp_path / "dir.tsv")], item_column="name")


def test_long_items_are_refused_or_skipped_with_a_note(tmp_path):
    rows = [["name", "sex"]] + [[g, "F"] for g in GIRLS] + [["x" * 30, "F"]]
    path = table(tmp_path / "n.csv", rows)
    options = TextOptions(max_item_len=20)
    with pytest.raises(ParameterError) as e:
        read_labelled([str(path)], item_column="name", label_column="sex", options=options)
    assert e.value.parameter == "max_item_len" and e.value.related == ("max_item_len", "skip_long")
    assert f"is exceeded in {path}: line 14 is longer than 20 characters (1 such line(s))" in one_line(e)
    notes = []
    skipping = TextOptions(max_item_len=20, skip_long=True)
    data = read_labelled([str(path)], item_column="name", label_column="sex", options=skipping, on_note=notes.append)
    assert data.items == GIRLS and notes == ["skipped 1 item(s) longer than 20 characters (first on line 14)"]
    # several inputs: each note names its file
    boys = write_lines(tmp_path / "boys.txt", BOYS + ["y" * 25])
    notes.clear()
    data = read_labelled([str(boys), str(path)], item_column="name", options=skipping, on_note=notes.append)
    assert data.counts() == {"boys": 10, "n": 12}
    assert notes == [f"{boys}: skipped 1 item(s) longer than 20 characters (first on line 11)",
                     f"{path}: skipped 1 item(s) longer than 20 characters (first on line 14)"]


def test_a_table_that_is_not_utf8_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "n.csv"
    path.write_bytes(b"name,sex\nAnna,F\nZo\xeb,F\n")  # Latin-1
    with pytest.raises(MakemoreError) as e:
        read_labelled([str(path)], item_column="name", label_column="sex")
    assert one_line(e) == f"{path} is not UTF-8 text (bad byte 0xeb on line 3); re-save it as UTF-8"
