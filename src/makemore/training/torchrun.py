"""More than one process: data-parallel training on PyTorch's own engine (torch.distributed + DDP).

`torchrun --nproc-per-node N -m makemore train ...` starts N processes and tells each its place in
the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as nanoGPT reads it. The
command line hands that environment to `from_environ`; this module reads none itself.

What a recipe means does not change with the number of processes:
- the global batch is the recipe's batch_size: every rank draws the same batch order from the
  seed and takes its own disjoint share of each global batch (`Parallel.shard`);
- each rank's loss is weighted by its share of the batch's predicted characters, so DDP's average
  of the ranks' gradients is the gradient of the global batch's mean loss, exactly as one process;
- BatchNorm normalises with the statistics of the whole global batch (models/layers.BatchNorm
  reduces its sums across ranks, differentiably): training matches one process to float precision;
- the count models (bigram-counts, ngram) are fitted by every rank on the whole training split
  (counting is cheap and exact): the same table everywhere, rank 0 saves it;
- evaluation: each rank scores its share of the rows, and the sums are reduced.
Only rank 0 writes the run directory and talks to the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

import torch
import torch.distributed as dist

from ..errors import MakemoreError, ParameterError

TIMEOUT = timedelta(minutes=5)  # a rank that dies: the others' collectives fail after this, not hang forever


@dataclass(frozen=True)
class Launch:
    """Where this process stands in a torchrun job, as its environment says."""

    rank: int  # this process's number among all, 0 to world_size - 1
    world_size: int  # processes in the job
    local_rank: int  # this process's number on its machine: which GPU it takes


def from_environ(environ: Mapping[str, str]) -> Launch | None:
    """The launch torchrun describes in `environ` (RANK, WORLD_SIZE, LOCAL_RANK), or None for one plain process."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        return Launch(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", "0")))
    except ValueError:
        raise MakemoreError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers; start makemore with torchrun") from None


@dataclass(frozen=True)
class Parallel:
    """A started process group: this rank's place in it and the backend it talks over."""

    rank: int  # this process's number
    world_size: int  # processes in the group
    backend: str  # "nccl" (CUDA) or "gloo" (CPU)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch's rows: every world_size-th one, starting at its rank."""
        return rows[self.rank::self.world_size]

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor summed over every rank (in place, and returned)."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is True on any: ranks decide together (to stop, for instance)."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())


def start(launch: Launch, device: torch.device) -> tuple[Parallel, torch.device]:
    """Join the job's process group: NCCL on CUDA (one GPU per local rank), gloo on the CPU."""
    if device.type == "cuda":
        device = torch.device("cuda", launch.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ParameterError("device", f"must be cuda or cpu to train in several processes, got {device.type}")
    dist.init_process_group(backend=backend, rank=launch.rank, world_size=launch.world_size, timeout=TIMEOUT)
    return Parallel(launch.rank, launch.world_size, backend), device


def stop() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
