"""Data: the items of a list and what is made of them, below every other layer.

- `items`: reading a one-item-per-line file, the vocabulary, the seeded 80/10/10 split, context windows
  or padded whole items as tensors;
- `labelled`: reading labelled input (several files, a label each, or a CSV/TSV with a label column);
- `labels`: the label set, each item's label, a model seen as one label's;
- `builtin`: built-in dataset names (`names`): the data folder, the cache, a checksum-verified download;
- `atomic`: files written whole (a temporary name, then a rename).

Imports only `makemore.errors`, `makemore.bounds` and `makemore.device`.
"""
