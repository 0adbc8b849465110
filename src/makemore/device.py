"""Choosing where tensors live."""

from __future__ import annotations

import torch

from .errors import ParameterError


def pick_device(name: str = "auto") -> torch.device:
    """"auto" takes CUDA, then Apple MPS, then the CPU; any other name must be available here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ParameterError("device", f"must be auto, cpu, cuda or mps, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device", "is cuda, but no CUDA GPU is available here; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError("device", "is mps, but Apple MPS is not available here; use auto or cpu")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's tensors live (its parameters, or its buffers for a count model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def full_float32(device: torch.device) -> None:
    """On CUDA, cuDNN's RNNs and convolutions in full float32, not TensorFloat-32 (PyTorch's default for them).

    TF32 rounds their products to 10 bits of mantissa: about 1e-3 in an item's log-probability, enough for a
    cached step (one position, other kernels) and the whole item read again to draw different items from the
    same seed, and for a run to score differently on a GPU than on the CPU. makemore's models are small
    enough that the tensor cores' speed does not matter to them. Process-wide, as PyTorch's flags are."""
    if torch.device(device).type != "cuda":
        return
    cudnn = torch.backends.cudnn
    if hasattr(cudnn, "rnn") and hasattr(cudnn.rnn, "fp32_precision"):  # PyTorch 2.9+: one flag per operator
        cudnn.rnn.fp32_precision = "ieee"
        cudnn.conv.fp32_precision = "ieee"
    else:
        cudnn.allow_tf32 = False


def make_reproducible(device: torch.device) -> None:
    """What PyTorch's reproducibility notes ask for where training runs on CUDA; nothing on the CPU.

    cuDNN picks deterministic kernels and stops autotuning (which may pick different kernels run to
    run), and every op with a deterministic implementation uses it (those without one warn). cuBLAS
    also needs CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment before CUDA starts: setting the
    environment is the caller's part (the command line does it).
    """
    full_float32(device)
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def active_world_size() -> int:
    """Processes in the running torch.distributed group, 1 when there is none (BatchNorm asks: sync its
    statistics or not)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
