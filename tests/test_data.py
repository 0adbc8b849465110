import random

import pytest
import torch

from makemore.data.items import Vocab, build_windows, make_splits, read_items, split_items
from makemore.errors import MakemoreError

from .conftest import write_lines


def slow_windows(items, vocab, block_size):
    """The essay's build_dataset, one character at a time: the reference for the vectorised version."""
    X, Y = [], []
    for item in items:
        context = [0] * block_size
        for ch in list(item) + [None]:
            ix = 0 if ch is None else vocab.stoi[ch]
            X.append(list(context))
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def test_names_vocabulary_is_the_essays(names_path):
    items = read_items(names_path)
    vocab = Vocab.from_items(items)
    assert len(items) == 32_033
    assert vocab.size == 27
    assert vocab.stoi["a"] == 1 and vocab.stoi["z"] == 26
    assert vocab.display(0) == "."


def test_names_split_sizes(names_path):
    splits = make_splits(read_items(names_path), block_size=3)
    sizes = [splits.part(p)[0].shape[0] for p in ("train", "val", "test")]
    assert sizes == [182_625, 22_655, 22_866]
    assert sum(sizes) == 228_146
    assert splits.train[0].shape == (182_625, 3)


def test_split_is_the_essays_shuffle(names_path):
    items = read_items(names_path)
    expected = list(items)
    random.seed(42)
    random.shuffle(expected)
    train, val, test = split_items(items, seed=42)
    assert train + val + test == expected
    assert len(train) == int(0.8 * len(items))


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_windows_match_slow_reference(block_size):
    items = ["emma", "olivia", "a", "xy.z", "bob"]
    vocab = Vocab.from_items(items)
    X, Y = build_windows(items, vocab, block_size)
    Xr, Yr = slow_windows(items, vocab, block_size)
    assert torch.equal(X, Xr) and torch.equal(Y, Yr)
    assert X.shape == (sum(len(i) + 1 for i in items), block_size)


def test_boundary_never_collides_with_a_real_dot():
    items = ["a.b", "...", "dr. who", "x"]
    vocab = Vocab.from_items(items)
    assert "." in vocab.chars and vocab.stoi["."] != 0
    for item in items:
        assert vocab.decode(vocab.encode(item)) == item
    X, Y = build_windows(items, vocab, 3)
    # the real "." is a target as often as it occurs, distinct from the 4 end-of-item boundaries
    assert int((Y == vocab.stoi["."]).sum()) == sum(it.count(".") for it in items)
    assert int((Y == 0).sum()) == len(items)


def test_read_items_strips_cr_and_skips_blank_lines(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"anna\r\n\r\n  \nbob \n\ncarl")
    assert read_items(path) == ["anna", "bob ", "carl"]


@pytest.mark.parametrize("content, message", [
    (b"", "no items"),
    (b"\n \n\r\n", "no items"),
    (b"caf\xe9\n", "not UTF-8"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(MakemoreError, match=message):
        read_items(path)


def test_too_few_items(tmp_path):
    items = read_items(write_lines(tmp_path / "few.txt", ["a", "b", "c"]))
    with pytest.raises(MakemoreError, match="at least 10"):
        split_items(items)


def test_bom_is_not_part_of_the_first_item(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffanna\nbob\n".encode("utf-8"))
    assert read_items(path) == ["anna", "bob"]


def test_nothing_is_normalised_unless_asked(tmp_path):
    from makemore.data.items import TextOptions

    decomposed = "Jose\u0301"  # e + combining acute accent
    path = write_lines(tmp_path / "u.txt", [decomposed, "ÉLODIE", "anne-marie", "o'neil", "zoë 2"])
    assert read_items(path)[:2] == [decomposed, "ÉLODIE"]
    assert read_items(path, TextOptions(nfc=True))[0] == "José" and len(read_items(path, TextOptions(nfc=True))[0]) == 4
    assert read_items(path, TextOptions(lowercase=True))[1] == "élodie"
    vocab = Vocab.from_items(read_items(path))
    for item in read_items(path):
        assert vocab.decode(vocab.encode(item)) == item


def test_items_over_the_bound_are_refused_or_skipped_with_a_word(tmp_path):
    from makemore.data.items import TextOptions

    path = write_lines(tmp_path / "long.txt", ["ok", "x" * 50, "fine"])
    with pytest.raises(MakemoreError, match="line 2 is longer than 10"):
        read_items(path, TextOptions(max_item_len=10))
    notes = []
    assert read_items(path, TextOptions(max_item_len=10, skip_long=True), on_note=notes.append) == ["ok", "fine"]
    assert notes and "skipped 1" in notes[0]


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"anna\nbob\ncaf\xe9\n")
    with pytest.raises(MakemoreError, match="line 3"):
        read_items(path)
