"""Milliseconds per training step of names' transformers, side by side: makemore's CPU dropout against
torch.nn.Dropout (with the fused scaled_dot_product_attention, as before it), on one thread and on two.

One process per setting (PyTorch's thread count is set once per process), each timing the same
steps of the same batches: AdamW at batch 256 over names.txt items cut to their longest (16 positions),
after a few warm-up steps, best of --repeats rounds of --steps steps.

    MAKEMORE_DATA=../shared/data python benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {"transformer": {"n_embd": 64, "n_layer": 4}, "transformer-small": {"n_embd": 44, "n_layer": 3}}


def time_steps(entry: str, dropout_kind: str, threads: int, steps: int, repeats: int) -> float:
    """Best milliseconds per step of one setting, in this process."""
    import torch
    import torch.nn as nn

    from makemore.data.items import read_items
    from makemore.data.builtin import locate_input
    from makemore.models import build_model
    from makemore.training.pipeline import splits_for

    torch.set_num_threads(threads)
    items = read_items(locate_input("names", os.environ))
    X, Y = splits_for(items, "transformer", 16).train
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=27, block_size=16, **CONFIGS[entry]).train()
    if dropout_kind == "torch":  # as before: nn.Dropout everywhere, and the fused attention with its own dropout
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.Dropout):
                    setattr(module, name, nn.Dropout(child.p))
        for block in model.blocks:
            block.attn.forward = _fused_forward.__get__(block.attn)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    g = torch.Generator().manual_seed(1)

    def step():
        ix = torch.randint(0, X.shape[0], (256,), generator=g)
        _, loss = model(X[ix], Y[ix])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps * 1000)
    return best


def _fused_forward(self, x):
    import torch.nn.functional as F

    B, T, C = x.shape
    q, k, v = self.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
    return self.resid_drop(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed round (default: 30)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, fastest kept (default: 3)")
    parser.add_argument("--one", nargs=3, metavar=("ENTRY", "DROPOUT", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one setting, its figure as JSON on stdout
        entry, kind, threads = args.one
        print(json.dumps(time_steps(entry, kind, int(threads), args.steps, args.repeats)))
        return
    print(f"ms per training step, batch 256, best of {args.repeats} x {args.steps} steps; one process per setting")
    print(f"{'entry':<18} {'threads':>7} {'torch dropout':>14} {'makemore':>9} {'ratio':>6}")
    figures = {}
    for entry in CONFIGS:
        for threads in (1, 2):
            row = {}
            for kind in ("torch", "makemore"):
                out = subprocess.run([sys.executable, __file__, "--one", entry, kind, str(threads), "--steps",
                                      str(args.steps), "--repeats", str(args.repeats)],
                                     check=True, capture_output=True, text=True).stdout
                row[kind] = json.loads(out)
            figures[(entry, threads)] = row
            print(f"{entry:<18} {threads:>7} {row['torch']:>14.1f} {row['makemore']:>9.1f} "
                  f"{row['torch'] / row['makemore']:>5.2f}x", flush=True)
    for entry in CONFIGS:
        one, two = figures[(entry, 1)]["makemore"], figures[(entry, 2)]["makemore"]
        print(f"{entry}: two threads {one / two:.2f}x faster than one (makemore's dropout)")


if __name__ == "__main__":
    main()
