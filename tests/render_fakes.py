"""Pipelines that record what they are called with, for the family tests.

:class:`Recording` wraps a real pipeline (the tiny SD 1.5 one) and keeps its call signature.
:func:`fake_pipeline` makes a stand-in whose ``__call__`` has the signature of a real diffusers
pipeline class (SDXL, SD3, Flux: read from the class, no weights) and returns smooth float
images, or NaN, all-black images, or out-of-memory errors on request.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import numpy as np


def _without_self(signature: inspect.Signature) -> inspect.Signature:
    return signature.replace(parameters=list(signature.parameters.values())[1:])


class Recording:
    """A pipeline wrapper that records every call's keyword arguments; same signature."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[dict[str, Any]] = []
        self.__signature__ = inspect.signature(inner)
        self.dtype = getattr(inner, "dtype", None)

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.inner(**kwargs)

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1]


class FakePipeline:
    """Signature of ``pipeline_class.__call__``; images from the seeds; failure modes."""

    def __init__(
        self,
        pipeline_class: Any,
        *,
        mode: str = "ok",  # ok | nan | black | dark
        oom_above: int | None = None,  # raise OOM for batches larger than this (0: always)
        oom_error: type[BaseException] | None = None,
        drop: tuple[str, ...] = (),  # parameters the fake does not take (an older diffusers)
        dtype: Any = None,
    ) -> None:
        signature = _without_self(inspect.signature(pipeline_class.__call__))
        if drop:
            kept = [p for p in signature.parameters.values() if p.name not in drop]
            signature = signature.replace(parameters=kept)
        self.__signature__ = signature
        self.pipeline_class = pipeline_class
        self.mode = mode
        self.oom_above = oom_above
        self.oom_error = oom_error
        self.calls: list[dict[str, Any]] = []
        self.dtype = dtype

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        assert not args, "arpo passes keyword arguments only"
        bound = self.__signature__.bind(**kwargs)  # a TypeError here is what arpo must avoid
        self.calls.append(dict(bound.arguments))
        prompts = kwargs["prompt"]
        if self.oom_above is not None and len(prompts) > self.oom_above:
            import torch

            raise (self.oom_error or torch.OutOfMemoryError)(
                "CUDA out of memory. Tried to allocate 2.00 GiB"
            )
        height, width = kwargs["height"], kwargs["width"]
        images = np.empty((len(prompts), height, width, 3), dtype=np.float32)
        for i, generator in enumerate(kwargs["generator"]):
            seed = int(generator.initial_seed())
            shade = np.linspace(0.2, 0.8, width, dtype=np.float32)[None, :, None]
            tint = np.array([(seed % 7) / 7, (seed % 5) / 5, (seed % 3) / 3], dtype=np.float32)
            images[i] = shade * 0.5 + tint * 0.5
        if self.mode == "nan":
            images[:] = np.nan
        elif self.mode == "black":
            images[:] = 0.0
        elif self.mode == "dark":
            images[:] = 1 / 255  # very dark, not black
        if kwargs.get("output_type", "pil") == "np":
            return SimpleNamespace(images=images)
        from PIL import Image

        pixels = (np.nan_to_num(images) * 255).round().astype("uint8")
        return SimpleNamespace(images=[Image.fromarray(p) for p in pixels])

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1]

    def batch_sizes(self) -> list[int]:
        return [len(call["prompt"]) for call in self.calls]


def pipeline_class(name: str) -> Any:
    import diffusers

    return getattr(diffusers, name)
