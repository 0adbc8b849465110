"""Every model makemore knows. Importing a model's module registers it.

All share one contract: `forward(idx, targets=None) -> (logits, loss)`. The windowed models
(layout "windows") take idx (B, block_size) context indices and give logits (B, vocab_size) for
the next character; the sequence models (layout "sequence": rnn, gru, lstm, transformer,
wavenet-conv) take whole padded items idx (B, L) and give logits (B, L, vocab_size), one
prediction per position (registry.py). Training, evaluation and sampling are written once for
both (`makemore.models.reading`). idx and targets may come in any
integer dtype (datasets keep them as int8/int16 to save memory): models index with `.long()`.

The sequence models also decode incrementally, beside that contract: `init_state(batch_size)` and
`step(idx, state) -> (logits, state)` read one more position given what they carry (a key/value
cache, a recurrent state, a queue per WaveNet level); `makemore.models.decoding` says how they are used.

`ensemble` is a weighted mixture of trained runs of the others, made by `makemore ensemble` (its
weights fitted on val) rather than trained.
"""

from . import bigram, mlp, ngram, wavenet  # noqa: F401  (registration side effect)
from . import recurrent, transformer, wavenet_conv  # noqa: F401  (the sequence models)
from . import ensemble  # noqa: F401  (a mixture of trained runs, made by `makemore ensemble`)
from .layers import eval_mode
from .registry import MODELS, ModelSpec, build_model, get_spec, register, trainable_models

__all__ = ["eval_mode", "MODELS", "ModelSpec", "build_model", "get_spec", "register", "trainable_models"]
