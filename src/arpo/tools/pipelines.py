"""Loading a diffusers pipeline and making it fit: the fp16 weight variant, CPU offload,
VAE slicing and tiling, attention slicing (:class:`MemoryOptions`), and telling an
out-of-memory error from others so the renderer can back off (:func:`is_out_of_memory`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from arpo.errors import InvalidOptionError, ModelNotAvailableError
from arpo.tools.loading import has_weight_variant

if TYPE_CHECKING:
    from arpo.config import Settings

log = logging.getLogger(__name__)

Offload = Literal["none", "model", "sequential"]
Variant = Literal["auto", "fp16", "none"]


@dataclass(frozen=True)
class MemoryOptions:
    """How a pipeline is made to fit: CPU offload (``model``: one component on the GPU at a
    time; ``sequential``: layer by layer, least memory, slowest), VAE slicing (decode a batch
    one image at a time) and tiling (decode large images in tiles), attention slicing, and
    the fp16 weight variant (``auto``: when loading in float16 and the model has one)."""

    offload: Offload = "none"
    vae_slicing: bool = False
    vae_tiling: bool = False
    attention_slicing: bool = False
    variant: Variant = "auto"

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryOptions:
        return cls(
            offload=settings.offload,
            vae_slicing=settings.vae_slicing,
            vae_tiling=settings.vae_tiling,
            attention_slicing=settings.attention_slicing,
            variant=settings.variant,
        )


def model_index(folder: Path | None) -> dict[str, Any]:
    if folder is None:
        return {}
    try:
        return json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return {}


def names_component(index: dict[str, Any], name: str) -> bool:
    """Whether ``model_index.json`` names a real ``name`` component (``[null, null]`` is none)."""
    entry = index.get(name)
    return isinstance(entry, list) and any(part is not None for part in entry)


def choose_variant(setting: str, dtype: str, folder: Path | None) -> str | None:
    """The weight variant to load (ARPO_VARIANT): ``fp16`` asks for it; ``auto`` asks for
    it when loading in float16 and the model's files (a local folder or cached snapshot)
    include fp16 weights; ``none`` never."""
    if setting == "none":
        return None
    if setting == "fp16":
        return "fp16"
    if setting != "auto":
        raise InvalidOptionError(f"ARPO_VARIANT={setting} is unknown; use auto, fp16 or none.")
    return "fp16" if dtype == "float16" and has_weight_variant(folder, "fp16") else None


def load_pipeline(
    loader: Any, source: str, kwargs: dict[str, Any], variant: str | None, memory: MemoryOptions
) -> Any:
    if variant is None:
        return loader.from_pretrained(source, **kwargs)
    try:
        return loader.from_pretrained(source, variant=variant, **kwargs)
    except (OSError, ValueError) as error:
        if memory.variant != "auto" and "variant" in str(error).lower():
            raise ModelNotAvailableError(
                f"'{source}' has no {variant} weights (ARPO_VARIANT={variant}): {error}. "
                "Set ARPO_VARIANT=auto or none."
            ) from error
        if memory.variant != "auto":
            raise
        log.info("%s: no usable %s weights (%s); loading the full ones", source, variant, error)
        return loader.from_pretrained(source, **kwargs)


def place_pipeline(pipeline: Any, device: str, memory: MemoryOptions) -> list[str]:
    """Put the pipeline on ``device`` as ``memory`` says; returns what was switched on."""
    applied: list[str] = []
    if memory.offload != "none" and device == "cpu":
        log.warning("ARPO_OFFLOAD=%s does nothing on the CPU; ignored", memory.offload)
    if memory.offload == "model" and device != "cpu":
        pipeline.enable_model_cpu_offload(device=device)
        applied.append("model CPU offload")
    elif memory.offload == "sequential" and device != "cpu":
        pipeline.enable_sequential_cpu_offload(device=device)
        applied.append("sequential CPU offload")
    else:
        pipeline.to(device)
    vae = getattr(pipeline, "vae", None)
    for wanted, method, label in (
        (memory.vae_slicing, "enable_slicing", "VAE slicing"),
        (memory.vae_tiling, "enable_tiling", "VAE tiling"),
    ):
        if not wanted:
            continue
        try:
            getattr(vae, method)()
        except (AttributeError, NotImplementedError):
            log.warning("%s is not available for %s; ignored", label, type(vae).__name__)
            continue
        applied.append(label)
    if memory.attention_slicing:
        try:
            pipeline.enable_attention_slicing()
        except (AttributeError, NotImplementedError, ValueError) as error:
            log.warning("attention slicing is not available here (%s); ignored", error)
        else:
            applied.append("attention slicing")
    return applied


_OOM_WORDS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(error: BaseException) -> bool:
    """torch's OutOfMemoryError (CUDA), a MemoryError, or a RuntimeError whose message says
    out of memory (MPS, the CPU allocator)."""
    if isinstance(error, MemoryError):
        return True
    try:
        import torch

        oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
        if isinstance(error, oom):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return isinstance(error, RuntimeError) and any(
        word in str(error).lower() for word in _OOM_WORDS
    )


def free_memory(device: str) -> None:
    import gc

    gc.collect()
    try:
        import torch

        if device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
        elif device == "mps" and torch.backends.mps.is_available():
            torch.mps.empty_cache()
    except Exception:  # freeing is best effort
        pass


def load_oom_message(ref: str, device: str, dtype: str, memory: MemoryOptions) -> str:
    helps = (
        "ARPO_OFFLOAD=model (or sequential: slowest, least memory)"
        if memory.offload == "none"
        else "ARPO_OFFLOAD=sequential"
        if memory.offload == "model"
        else "a smaller model"
    )
    return (
        f"out of memory loading {ref} on {device} in {dtype}. What helps: {helps}; "
        "ARPO_DEVICE=cpu as a last resort (slow)."
    )
