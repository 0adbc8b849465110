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

Labels (makemore.data.labels): each label's learned vector (E wide) is added to every input embedding,
the start token's included, so the cell reads the label at every step (not only in its initial state,
where a long item could wash it out).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import Dropout, LabelEmbedding, cross_entropy, split_labels
from .registry import register


@dataclass
class RecurrentConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    n_embd: int = 32  # E: size of each character's embedding
    n_hidden: int = 128  # H: size of the hidden state (of each layer)
    n_layer: int = 1  # recurrent layers stacked, each reading the hidden states of the one below
    dropout: float = 0.0  # dropout on the embeddings, between layers and before the output layer (training only)
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


class Recurrent(nn.Module):
    cell: type[nn.Module] = nn.RNN  # the recurrent layer: each subclass names its own

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        V, E, H = config.vocab_size, config.n_embd, config.n_hidden
        self.wte = nn.Embedding(V, E)  # character embedding table
        self.label_emb = LabelEmbedding(config.n_labels, E)
        self.drop = Dropout(config.dropout)
        self.rnn = self.cell(E, H, num_layers=config.n_layer, batch_first=True,
                             dropout=config.dropout if config.n_layer > 1 else 0.0)
        self.lm_head = nn.Linear(H, V)
        with torch.no_grad():  # near-uniform predictions at step 0: loss ≈ -log(1/V)
            self.lm_head.weight.mul_(0.1)
            self.lm_head.bias.zero_()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.drop(self.embedding(idx))  # (B, L, E)
        h, _ = self.rnn(x)  # (B, L, H): the state after reading each position, from a zero state
        logits = self.lm_head(self.drop(h))  # (B, L, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    def embedding(self, idx: torch.Tensor) -> torch.Tensor:
        """Label-carrying indices (...) -> (..., E): the character's embedding plus the label's vector."""
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)
        return self.label_emb.add(self.wte(chars), labels)

    # incremental decoding (makemore.models.decoding): the recurrent state is all a position passes on, so carrying
    # it makes each new character one step of the cell. Stored batch first, (B, n_layer, H), as the decoder
    # keeps rows; the LSTM carries its memory cell beside its hidden state.

    def init_state(self, batch_size: int, label: int = 0) -> tuple[torch.Tensor, ...]:
        """The zero state forward starts from: (h,) or, for the LSTM, (h, c), each (B, n_layer, H).

        The same for every label: the label arrives with each index read (`step`)."""
        zeros = self.lm_head.weight.new_zeros(batch_size, self.config.n_layer, self.config.n_hidden)
        return (zeros, zeros) if self.cell is nn.LSTM else (zeros,)

    def step(self, idx: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """Read one more position idx (B,): (logits (B, V), the new state)."""
        if self.cell is nn.RNN:
            return self._elman_step(idx, state[0])
        if self.cell is nn.LSTM:
            return self._lstm_step(idx, *state)
        x = self.embedding(idx)[:, None]  # (B, 1, E)
        hx = tuple(s.transpose(0, 1).contiguous() for s in state)  # (n_layer, B, H): what nn.GRU/LSTM take
        h, hx = self.rnn(x, hx if self.cell is nn.LSTM else hx[0])  # h (B, 1, H)
        hx = hx if isinstance(hx, tuple) else (hx,)
        return self.lm_head(h[:, 0]), tuple(s.transpose(0, 1) for s in hx)  # (B, V); state (B, n_layer, H)

    def _input_table(self, idx: torch.Tensor) -> torch.Tensor:
        """The first layer's input term x W_ih^T + b_ih + b_hh for each row, (B, gates * H): a row of a (V, gates * H)
        table, the embedding table through W_ih (plus the label's vector through W_ih, a row of an (n_labels,
        gates * H) table). Both biases are folded in: one op less per step than adding b_hh to each row."""
        rnn = self.rnn
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)
        x = F.linear(self.wte.weight, rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0)[chars]
        return x if labels is None else x + F.linear(self.label_emb.weight, rnn.weight_ih_l0)[labels]

    def _lstm_step(self, idx: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """nn.LSTM's formulas written out for one position, per layer: the gates x W_ih^T + b_ih + h W_hh^T + b_hh,
        in PyTorch's order (i, f, g, o); c' = σ(f) c + σ(i) tanh(g); h' = σ(o) tanh(c'). As for the Elman RNN,
        nn.LSTM called on one position spends much of its time arranging its input and output."""
        rnn, H = self.rnn, self.config.n_hidden
        x, hs, cs = self._input_table(idx), [], []  # x (B, 4H)
        for layer in range(self.config.n_layer):
            if layer:
                bias = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
                x = torch.addmm(bias, x, getattr(rnn, f"weight_ih_l{layer}").t())
            gates = torch.addmm(x, h[:, layer], getattr(rnn, f"weight_hh_l{layer}").t())  # (B, 4H)
            ifo = torch.sigmoid(gates)  # σ of all four (the g column's is unused): one op instead of three
            cell = ifo[:, H:2 * H] * c[:, layer] + ifo[:, :H] * torch.tanh(gates[:, 2 * H:3 * H])  # (B, H)
            x = ifo[:, 3 * H:] * torch.tanh(cell)  # (B, H): this layer's new hidden state
            hs.append(x)
            cs.append(cell)
        if len(hs) == 1:  # one layer: views, no copies
            return self.lm_head(x), (x[:, None], cs[0][:, None])
        return self.lm_head(x), (torch.stack(hs, dim=1), torch.stack(cs, dim=1))  # (B, V); (B, n_layer, H) each

    def _elman_step(self, idx: torch.Tensor, h: torch.Tensor):
        """nn.RNN's formula written out for one position, h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) per layer:
        at batch 1,024 nn.RNN spends as long stacking its one-position output as computing it. The first
        layer's input term comes from `_input_table`."""
        rnn, layers = self.rnn, []
        x = self._input_table(idx)  # (B, H)
        for layer in range(self.config.n_layer):
            w_hh = getattr(rnn, f"weight_hh_l{layer}")
            if layer:
                bias = getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")
                x = torch.addmm(bias, x, getattr(rnn, f"weight_ih_l{layer}").t())
            x = torch.tanh(torch.addmm(x, h[:, layer], w_hh.t()))  # (B, H): this layer's new state
            layers.append(x)
        state = x[:, None] if len(layers) == 1 else torch.stack(layers, dim=1)  # one layer: a view, no copy
        return self.lm_head(x), (state,)  # (B, V); (B, n_layer, H)


@register("rnn", config=RecurrentConfig, layout="sequence", mechanism="Elman RNN over the whole item")
class RNN(Recurrent):
    cell = nn.RNN


@register("gru", config=RecurrentConfig, layout="sequence", mechanism="GRU over the whole item")
class GRU(Recurrent):
    cell = nn.GRU


@register("lstm", config=RecurrentConfig, layout="sequence", mechanism="LSTM over the whole item")
class LSTM(Recurrent):
    cell = nn.LSTM
