"""A GPT-style Transformer decoder (Vaswani et al. 2017, "Attention Is All You Need"; as in nanoGPT).

Every position attends to itself and the positions before it (causal self-attention, several
heads), in pre-norm blocks x + attn(ln(x)), x + mlp(ln(x)); positions are learned embeddings.
It reads [0] + an item's characters and predicts every next character at once; block_size is
the most positions it has embeddings for, so items may have up to block_size - 1 characters.
Trained without an explicit block_size, it gets the longest item of its data plus one
(`runs.default_block_size`): 16 on names.txt, whatever a longer list needs.

Labels (makemore.data.labels): each label's learned vector is added to the token and position embeddings
of every position, so every layer's residual stream carries it from the first position on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ParameterError
from .layers import Dropout, LabelEmbedding, cross_entropy, split_labels
from .registry import register


@dataclass
class TransformerConfig:
    vocab_size: int = 27  # V: characters of the data + the boundary token
    # T: most positions (the position table); items of up to block_size - 1 characters. A run sets it from
    # its data (longest item + 1) unless given; 16 is names.txt's and a bare model's
    block_size: int = 16
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads per block; n_embd must be a multiple of it
    n_embd: int = 64  # C: width of the residual stream (each head gets C / n_head)
    dropout: float = 0.1  # dropout on the embeddings, attention weights and each residual branch (training only)
    n_labels: int = 1  # labels the items carry (makemore.data.labels); 1 = unlabelled


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # queries, keys, values of all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_drop = Dropout(config.dropout)  # on the attention weights, where they are written out (below)
        self.resid_drop = Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if self.training and self.dropout > 0 and x.device.type == "cpu":
            y = causal_attention(q, k, v, self.attn_drop)
        else:  # softmax(q k^T / sqrt(hs)) v, future masked, in one fused call
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_drop(self.c_proj(y))

    def step(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, t: int) -> torch.Tensor:
        """One new position t, x (B, C), attending to itself and the t cached positions before it: (B, C).

        keys, values (B, nh, room, hs) hold the cache; this position's key and value are written into
        slot t. Eval mode (no dropout)."""
        B, C = x.shape
        nh, hs, room = self.n_head, C // self.n_head, keys.shape[2]
        q, k, v = self.c_attn(x).split(C, dim=1)  # (B, C) each
        keys[:, :, t] = k.view(B, nh, hs)
        values[:, :, t] = v.view(B, nh, hs)
        # One query per row. Measured on the CPU: up to a few dozen rows one fused scaled_dot_product_attention
        # call is fastest (fewest ops); from about 64 rows on, these pieces are: the scores as one batched
        # matmul with the 1/sqrt(hs) folded in, softmax written out in place (torch.softmax's overhead dominates
        # on rows of ~10), the weighted sum of values elementwise. The newest position sees every cached one: no mask.
        if B <= FUSED_ROWS:
            y = F.scaled_dot_product_attention(q.reshape(B, nh, 1, hs), keys[:, :, :t + 1], values[:, :, :t + 1])
            return self.c_proj(y.view(B, C))
        past_keys = keys.view(B * nh, room, hs)[:, :t + 1]  # (B*nh, t+1, hs), a view: no copy of the cache
        att = torch.baddbmm(x.new_empty(()), q.reshape(B * nh, 1, hs), past_keys.transpose(1, 2),
                            beta=0, alpha=1.0 / math.sqrt(hs)).view(B, nh, t + 1)  # q k^T / sqrt(hs)
        att = att.sub_(att.amax(dim=-1, keepdim=True)).exp_()
        att = att.div_(att.sum(dim=-1, keepdim=True))  # (B, nh, t+1)
        y = (att[..., None] * values[:, :, :t + 1]).sum(2)  # (B, nh, hs)
        return self.c_proj(y.view(B, C))


FUSED_ROWS = 64  # up to this many rows, a cached step's attention is one fused call (`CausalSelfAttention.step`)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, drop: nn.Module) -> torch.Tensor:
    """softmax(q k^T / sqrt(hs), the future masked) v, with `drop` on the weights; q, k, v (B, nh, T, hs).

    What F.scaled_dot_product_attention computes, written out for training on the CPU: there its dropout
    draws a float per weight and it checks its masks for fully masked rows; written out, the weights go
    through `layers.Dropout`, which draws a quarter of the random numbers (`benchmarks/train_step.py` times
    the two)."""
    T = q.shape[2]
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))  # (B, nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu_(1)  # (T, T): True above the diagonal
    att = torch.softmax(att.masked_fill(future, float("-inf")), dim=-1)
    return drop(att) @ v  # (B, nh, T, hs)


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.drop = Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, 4C) inside, (B, T, C) out

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` in eval mode (no dropout) for one position per row, x (B, C), as plain function calls."""
        h = F.gelu(F.linear(x, self.c_fc.weight, self.c_fc.bias), approximate=self.gelu.approximate)  # as forward's
        return F.linear(h, self.c_proj.weight, self.c_proj.bias)


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # pre-norm: the residual stream itself is never normalised
        return x + self.mlp(self.ln_2(x))

    def step(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, t: int) -> torch.Tensor:
        """`forward` for one new position t, x (B, C), given this block's cache (written into at slot t).

        Written with function calls (`layer_norm`, `MLP.step`) rather than module calls: a module call's
        machinery (hooks, the eval-mode dropout) costs microseconds, and a cached step of a names
        transformer is so small that those microseconds show in sampling."""
        x = x + self.attn.step(layer_norm(self.ln_1, x), keys, values, t)
        return x + self.mlp.step(layer_norm(self.ln_2, x))


def layer_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """norm(x) as one function call (`Block.step`)."""
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


@register("transformer", config=TransformerConfig, layout="sequence",
          mechanism="GPT decoder: causal self-attention over the item")
class Transformer(nn.Module):
    positions_from_data = True  # block_size is a table of positions: by default, what the training data needs

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ParameterError("n_embd", f"must be a multiple of n_head ({config.n_head}) in a transformer, "
                                           f"got {config.n_embd}")
        if config.block_size < 2:
            raise ParameterError("block_size", f"must be at least 2 in a transformer, got {config.block_size}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned position embeddings
        self.drop = Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # GPT-2 init: N(0, 0.02), and residual projections scaled by 1/sqrt(2 * n_layer) so the stream's
        # variance does not grow with depth; the small head gives a step-0 loss near -log(1/V)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)
        self.label_emb = LabelEmbedding(config.n_labels, config.n_embd)  # after the init above: it starts at zero

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.config.block_size:
            raise ParameterError("block_size", f"is {self.config.block_size}, too small for an item of {T - 1} "
                                               f"characters (the transformer reads block_size - 1); train it with "
                                               f"block_size {T} or more", related=("block_size",))
        pos = torch.arange(T, device=idx.device)
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)  # (B, T) each
        x = self.drop(self.label_emb.add(self.wte(chars) + self.wpe(pos), labels))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    # incremental decoding (makemore.models.decoding): a key/value cache per layer, so each new character is one
    # position of work instead of the whole item again. Valid in eval mode (dropout off), up to block_size
    # positions: past them the uncached path reads the last block_size positions with new position numbers.
    # The caches are written in place, in room allocated CACHE_ROOM positions at a time (doubling), so a
    # character costs no copy of the cache and memory follows the items' length, not block_size.
    CACHE_ROOM = 4

    def init_state(self, batch_size: int, label: int = 0) -> tuple[torch.Tensor, ...]:
        """(positions read (B,), then keys and values (B, nh, room, hs) of each layer: k_1, v_1, k_2, ...)."""
        C, nh = self.config.n_embd, self.config.n_head
        w = self.lm_head.weight
        room = min(self.CACHE_ROOM, self.config.block_size)
        caches = (w.new_empty(batch_size, nh, room, C // nh) for _ in range(2 * self.config.n_layer))
        return (torch.zeros(batch_size, dtype=torch.long, device=w.device), *caches)

    def step(self, idx: torch.Tensor, state: tuple[torch.Tensor, ...]):
        """Read one more position idx (B,): (logits (B, V), the state, its caches written in place)."""
        pos, caches = state[0], state[1:]
        t = int(pos[0]) if pos.numel() else 0  # every row has read as many positions: this one's number
        if t == caches[0].shape[2]:  # the room is full: double it (slots past t are never read before written)
            caches = tuple(self._grown(c, min(2 * t, self.config.block_size)) for c in caches)
        chars, labels = split_labels(idx, self.config.vocab_size, self.config.n_labels)  # (B,) each
        x = self.label_emb.add(F.embedding(chars, self.wte.weight) + self.wpe.weight[t], labels)  # (B, C)
        for i, block in enumerate(self.blocks):
            x = block.step(x, caches[2 * i], caches[2 * i + 1], t)  # (B, C)
        return F.linear(layer_norm(self.ln_f, x), self.lm_head.weight), (pos + 1, *caches)  # (B, V)

    @staticmethod
    def _grown(cache: torch.Tensor, room: int) -> torch.Tensor:
        """The cache (B, nh, t, hs) copied into room for `room` positions (B, nh, room, hs)."""
        grown = cache.new_empty(cache.shape[0], cache.shape[1], room, cache.shape[3])
        grown[:, :, :cache.shape[2]] = cache
        return grown
