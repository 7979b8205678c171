"""Device and dtype choice shared by the diffusion, CLIP and captioning wrappers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch

    from arpo.tools.families import FamilyProfile

DTYPES = ("float32", "float16", "bfloat16")


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


def dtype_name(
    device: str,
    setting: str = "auto",
    profile: FamilyProfile | None = None,
    *,
    name: str = "ARPO_DTYPE",
) -> str:
    """The diffusion dtype's name: ``setting`` (ARPO_DTYPE) when not ``auto``; else the family
    profile's dtype for the device (Flux and SD3 want bfloat16: Flux in float16 renders NaN);
    without a profile, float16 on accelerators and float32 on the CPU. No torch import.
    ``name`` is the setting that errors name (the captioner's is ARPO_CAPTION_DTYPE)."""
    if setting != "auto":
        if setting not in DTYPES:
            raise InvalidOptionError(f"{name}={setting} is unknown; use auto, {', '.join(DTYPES)}.")
        if device == "cpu" and setting == "float16":
            raise InvalidOptionError(
                f"{name}=float16 is not supported on the CPU; use float32 or bfloat16."
            )
        return setting
    if profile is not None:
        chosen = profile.dtype_for(device)
        return "float32" if device == "cpu" and chosen == "float16" else chosen
    return "float32" if device == "cpu" else "float16"


def resolve_dtype(
    device: str, setting: str = "auto", profile: FamilyProfile | None = None
) -> torch.dtype:
    """:func:`dtype_name` as a torch dtype."""
    import torch

    return getattr(torch, dtype_name(device, setting, profile))


def clip_dtype_name(device: str, setting: str = "auto") -> str:
    """CLIP's dtype: ``setting`` (ARPO_CLIP_DTYPE) when not ``auto``; else float16 on CUDA
    (open_clip's mixed precision, as OpenAI's CLIP runs: weights in float16, LayerNorm in
    float32), float32 on the CPU and MPS. Similarities are always computed in float32."""
    if setting != "auto":
        if setting not in DTYPES:
            raise InvalidOptionError(
                f"ARPO_CLIP_DTYPE={setting} is unknown; use auto, {', '.join(DTYPES)}."
            )
        if device == "cpu" and setting == "float16":
            raise InvalidOptionError(
                "ARPO_CLIP_DTYPE=float16 is not supported on the CPU; use float32 or bfloat16."
            )
        return setting
    return "float16" if device == "cuda" else "float32"
