"""The tests' shorthand for the model-level generation calls: keyword controls in, one GenerateRequest made.

`makemore.generation.sampler.generate` and `makemore.generation.search.most_likely` take a request; most
tests vary one or two controls at a time, so these build it from keywords (seed 0 unless given).
"""

from __future__ import annotations

from makemore.generation import sampler, search
from makemore.generation.request import GenerateRequest


def generate(model, vocab, n, *, exclude=None, batch_size=sampler.BATCH_SIZE, cache=True, seed=0, **controls):
    request = GenerateRequest(n=n, seed=seed, **controls)
    return sampler.generate(model, vocab, request, exclude=exclude, batch_size=batch_size, cache=cache)


def most_likely(model, vocab, n, *, exclude=None, **controls):
    return search.most_likely(model, vocab, GenerateRequest(most_likely=n, **controls), exclude=exclude)
