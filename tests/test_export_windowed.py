"""The exported JavaScript runtime's windowed models (`export/assets/models_windowed.js`) against PyTorch.

Each model, unlabelled and labelled, trained a few steps on a small list: p(next | prefix) from the exported
module in Node matches PyTorch's `next_logits` within 1e-5 on 50 prefixes, shorter and longer than the block
size. Also the configs that change what the forward pass does (block sizes, n-gram orders and smoothings,
mlp-deep without batch norm).
"""

from __future__ import annotations

import pytest

from .exporting import held_out_prefixes, max_gap, node, node_probs, tiny_run, torch_probs

WINDOWED = ("bigram-counts", "bigram-nn", "mlp", "mlp-bn", "mlp-deep", "wavenet", "wavenet-conv", "ngram")

# (model, config) cases beyond the defaults: each changes what the forward pass reads or computes
CONFIGS = [
    ("bigram-counts", {"smoothing": 0.25}),
    ("mlp", {"block_size": 5, "init": "kaiming"}),
    ("mlp-bn", {"block_size": 1}),
    ("mlp-deep", {"batchnorm": False, "n_layers": 2, "init": "naive", "block_size": 4}),
    ("wavenet", {"block_size": 4, "n_embd": 6, "n_hidden": 16}),
    ("wavenet-conv", {"block_size": 16, "n_embd": 6, "n_hidden": 16}),
    ("ngram", {"block_size": 2, "discount": [0.5, 0.7, 0.9]}),
    ("ngram", {"block_size": 3, "smoothing": "add-k", "k": 0.3}),
    ("ngram", {"block_size": 6}),  # 31^7 > 2^31: the n-gram keys arrive as float64
]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    node()  # skips the module when Node is missing
    return tmp_path_factory.mktemp("export-windowed")


def gap(folder, model: str, labelled: bool, **config) -> float:
    run = tiny_run(model, folder / case_id(model, config), labelled=labelled, **config)
    queries = held_out_prefixes(run, 50)
    assert any(len(p) >= run.model.config.block_size for p, _ in queries)  # windows with no padding too
    return max_gap(torch_probs(run, queries), node_probs(run, queries, run.path))


def case_id(model: str, config: dict) -> str:
    return "-".join([model, *(f"{k}={v}" for k, v in config.items())]).translate(str.maketrans("", "", " []"))


@pytest.mark.parametrize("labelled", [False, True], ids=["unlabelled", "labelled"])
@pytest.mark.parametrize("model", WINDOWED)
def test_matches_pytorch(folder, model, labelled):
    assert gap(folder, model, labelled) < TOLERANCE


@pytest.mark.parametrize("labelled", [False, True], ids=["unlabelled", "labelled"])
@pytest.mark.parametrize("model, config", CONFIGS, ids=[case_id(m, c) for m, c in CONFIGS])
def test_matches_pytorch_with_other_configs(folder, model, config, labelled):
    assert gap(folder, model, labelled, **config) < TOLERANCE
