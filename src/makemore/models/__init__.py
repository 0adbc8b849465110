"""Every model makemore knows. Importing a model's module registers it.

All share one contract: `forward(idx, targets=None) -> (logits, loss)`, with idx
(B, block_size) context indices and logits (B, vocab_size) for the next character;
so training, evaluation and sampling are written once. idx and targets may come in any
integer dtype (datasets keep them as int8/int16 to save memory): models index with `.long()`.
"""

from . import bigram, mlp, ngram, wavenet  # noqa: F401  (registration side effect)
from .registry import MODELS, ModelSpec, build_model, get_spec, register

__all__ = ["MODELS", "ModelSpec", "build_model", "get_spec", "register"]
