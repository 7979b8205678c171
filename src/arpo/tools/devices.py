"""Device, dtype and CPU-thread choice shared by the diffusion, CLIP and captioning wrappers."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch

    from arpo.tools.families import FamilyProfile

log = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")
# set by the user, these decide torch's CPU threads; arpo then chooses none
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_threads_set: list[int] = []  # what use_threads gave torch in this process, if anything


def use_threads(setting: int | None) -> int | None:
    """Give torch its CPU thread count, before a model loads; returns it (None: left alone).

    ``setting`` (ARPO_THREADS) when given; else, when the user set none of
    :data:`THREAD_VARIABLES`, :func:`free_cores` (at most torch's own default), once per
    process. Oversubscribed CPU threads wait for each other: on a 2-core machine busy with
    other work, one thread ran PEZ 10-20 times faster than torch's default two."""
    import torch

    if setting is None and (_threads_set or any(os.environ.get(v) for v in THREAD_VARIABLES)):
        return None
    if setting is not None:
        threads, why = setting, "ARPO_THREADS"
    else:
        threads = min(torch.get_num_threads(), free_cores())
        why = f"{usable_cores()} cores, load {_load():.1f}; ARPO_THREADS sets it"
    if not _threads_set or _threads_set[-1] != threads:
        torch.set_num_threads(threads)
        _threads_set.append(threads)
        log.info("torch CPU threads: %d (%s)", threads, why)
    return threads


def free_cores() -> int:
    """The cores this process may use (its CPU affinity) that other work does not keep busy
    (the one-minute load average), at least one."""
    cores = usable_cores()
    return max(1, min(cores, round(cores - _load())))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def _load() -> float:
    """Runnable processes over the last minute (0 where the OS does not say)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


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
