"""makemore: character-level language models, from counting bigrams to a WaveNet."""

__version__ = "0.1.0"
