"""Device and dtype choice shared by the diffusion and CLIP wrappers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch


def resolve_device(setting: str = "auto") -> str:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an explicit choice must exist."""
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("ARPO_DEVICE=cuda, but torch sees no CUDA GPU; use auto or cpu.")
    if setting == "mps" and not torch.backends.mps.is_available():
        raise InvalidOptionError("ARPO_DEVICE=mps, but MPS is not available; use auto or cpu.")
    return setting


def resolve_dtype(device: str, setting: str = "auto") -> torch.dtype:
    """Half precision on accelerators (fp16 by default, bf16 on request), fp32 on the CPU."""
    import torch

    if setting != "auto":
        if device == "cpu" and setting == "float16":
            raise InvalidOptionError(
                "ARPO_DTYPE=float16 is not supported on the CPU; use float32 or bfloat16."
            )
        return getattr(torch, setting)
    return torch.float32 if device == "cpu" else torch.float16
