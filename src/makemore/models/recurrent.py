"""Recurrent language models over whole items: one hidden state carried from character to character.

- `rnn`: the Elman network of Mikolov et al. 2010 ("Recurrent neural network based language model"),
  h_t = tanh(W x_t + U h_{t-1} + b);
- `gru`: gated recurrent units (Cho et al. 2014, "Learning Phrase Representations using RNN
  Encoder-Decoder for Statistical Machine Translation"): update and reset gates decide how much
  of the state to keep;
- `lstm`: long short-term memory as Graves uses it for text (Graves 2014, "Generating Sequences
  With Recurrent Neural Networks"; Hochreiter & Schmidhuber 1997): a gated memory cell.

One model, three cells (torch.nn.RNN / GRU / LSTM). Position t reads [0] + the item's first t
characters and predicts character t (or the end token), so unlike the windowed models the
context is the whole item so far, however long.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import cross_entropy
from .registry import register


@dataclass
class RecurrentConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    n_embd: int = 32  # E: size of each character's embedding
    n_hidden: int = 128  # H: size of the hidden state (of each layer)
    n_layer: int = 1  # recurrent layers stacked, each reading the hidden states of the one below
    dropout: float = 0.0  # dropout on the embeddings, between layers and before the output layer (training only)


class Recurrent(nn.Module):
    cell: type[nn.Module] = nn.RNN  # the recurrent layer: each subclass names its own

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        V, E, H = config.vocab_size, config.n_embd, config.n_hidden
        self.wte = nn.Embedding(V, E)  # character embedding table
        self.drop = nn.Dropout(config.dropout)
        self.rnn = self.cell(E, H, num_layers=config.n_layer, batch_first=True,
                             dropout=config.dropout if config.n_layer > 1 else 0.0)
        self.lm_head = nn.Linear(H, V)
        with torch.no_grad():  # near-uniform predictions at step 0: loss ≈ -log(1/V)
            self.lm_head.weight.mul_(0.1)
            self.lm_head.bias.zero_()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.drop(self.wte(idx.long()))  # (B, L, E)
        h, _ = self.rnn(x)  # (B, L, H): the state after reading each position, from a zero state
        logits = self.lm_head(self.drop(h))  # (B, L, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss


@register("rnn", config=RecurrentConfig, layout="sequence", mechanism="Elman RNN over the whole item")
class RNN(Recurrent):
    cell = nn.RNN


@register("gru", config=RecurrentConfig, layout="sequence", mechanism="GRU over the whole item")
class GRU(Recurrent):
    cell = nn.GRU


@register("lstm", config=RecurrentConfig, layout="sequence", mechanism="LSTM over the whole item")
class LSTM(Recurrent):
    cell = nn.LSTM
