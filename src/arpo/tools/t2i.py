"""Text-to-image rendering: the diffusers backend and the render cache in front of any backend."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from arpo.errors import InvalidOptionError
from arpo.tools.devices import resolve_device, resolve_dtype
from arpo.tools.loading import check_diffusers_ref, model_load_error

if TYPE_CHECKING:
    from PIL import Image

    from arpo.tools.store import ArtifactStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderParams:
    """Everything besides prompt and seed that decides a render's pixels."""

    negative_prompt: str = ""
    steps: int = 30
    guidance: float = 7.5
    width: int = 512
    height: int = 512

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 8 or value % 8:
                raise InvalidOptionError(
                    f"{name}={value} is not usable: image sizes must be positive multiples of 8 "
                    "(e.g. 512, 768)."
                )
        if self.steps < 1:
            raise InvalidOptionError(f"steps={self.steps} must be at least 1.")


class Renderer(Protocol):
    """Any text-to-image backend: one image per (prompt, seed) pair, deterministic."""

    name: str

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]: ...


class DiffusersRenderer:
    """A diffusers text-to-image pipeline (``AutoPipelineForText2Image``)."""

    def __init__(self, pipeline: Any, *, name: str, device: str, batch_size: int = 4) -> None:
        self.pipeline = pipeline
        self.name = name
        self.device = device
        # renders differ across devices and dtypes for the same seed: part of the cache key
        self.cache_id = f"{name}|{device}|{getattr(pipeline, 'dtype', '')}"
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls, ref: str, *, device: str = "auto", dtype: str = "auto", batch_size: int = 4
    ) -> DiffusersRenderer:
        source = check_diffusers_ref(ref, "ARPO_T2I_MODEL")
        device = resolve_device(device)
        torch_dtype = resolve_dtype(device, dtype)
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        try:
            pipeline = AutoPipelineForText2Image.from_pretrained(source, dtype=torch_dtype)
        except Exception as error:  # diffusers raises OSError, ValueError, EnvironmentError...
            raise model_load_error("text-to-image model", ref, "ARPO_T2I_MODEL", error) from error
        pipeline = pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        log.info("loaded %s on %s (%s)", ref, device, torch_dtype)
        return cls(pipeline, name=ref, device=device, batch_size=batch_size)

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        import torch

        images: list[Image.Image] = []
        generator_device = "cpu" if self.device == "mps" else self.device
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start : start + self.batch_size])
            generators = [
                torch.Generator(generator_device).manual_seed(int(seed))
                for seed in seeds[start : start + self.batch_size]
            ]
            with torch.inference_mode():
                output = self.pipeline(
                    prompt=batch,
                    negative_prompt=[params.negative_prompt] * len(batch)
                    if params.negative_prompt
                    else None,
                    num_inference_steps=params.steps,
                    guidance_scale=params.guidance,
                    width=params.width,
                    height=params.height,
                    generator=generators,
                )
            images.extend(output.images)
        return images


class RenderCache:
    """Serves renders from the artifact store by (model, prompt, negative, seed, size, steps,
    guidance); only misses reach the backend, in one batch."""

    def __init__(self, renderer: Renderer, store: ArtifactStore) -> None:
        self.renderer = renderer
        self.store = store
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def key(self, prompt: str, seed: int, params: RenderParams) -> str:
        return json.dumps(
            {
                "model": getattr(self.renderer, "cache_id", self.renderer.name),
                "prompt": prompt,
                "seed": seed,
                **asdict(params),
            },
            sort_keys=True,
        )

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[str]:
        """Artifact hashes of the renders, one per (prompt, seed)."""
        if len(prompts) != len(seeds):
            raise ValueError("render needs one seed per prompt")
        hashes: list[str | None] = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            record = self.store.get_record(self.key(prompt, seed, params))
            cached = record.get("image") if record else None
            hashes.append(cached if cached and self.store.has(cached) else None)
        missing = [i for i, digest in enumerate(hashes) if digest is None]
        self.hits += len(prompts) - len(missing)
        self.misses += len(missing)
        if missing:
            with self._lock:  # one backend call at a time per device
                images = self.renderer.render(
                    [prompts[i] for i in missing], [seeds[i] for i in missing], params
                )
            for i, image in zip(missing, images, strict=True):
                digest = self.store.put_image(image)
                self.store.put_record(self.key(prompts[i], seeds[i], params), {"image": digest})
                hashes[i] = digest
        return [digest for digest in hashes if digest is not None]
