"""Text-to-image rendering: the diffusers backend and the render cache in front of any backend.

:class:`DiffusersRenderer` renders the way the model's family profile says
(:mod:`arpo.tools.families`): it loads in the profile's dtype for the device (``ARPO_DTYPE``
overrides), without a safety checker, with the memory settings (:class:`MemoryOptions`);
it builds each call's keyword arguments from the profile and checks them against the
pipeline's call signature (an argument the pipeline does not take is refused with its name,
never a TypeError); every render is checked for NaN and all-black images (a
:class:`~arpo.errors.RenderError` naming ``ARPO_DTYPE``); out of memory halves the batch and
retries, and at one image stops with the settings that help.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from arpo.errors import InvalidOptionError, RenderError
from arpo.tools.devices import dtype_name, resolve_device
from arpo.tools.families import (
    UNKNOWN,
    FamilyProfile,
    check_negative_prompt,
    check_render_options,
    detect_folder,
    profiles,
)
from arpo.tools.loading import check_diffusers_ref, diffusers_folder, model_load_error
from arpo.tools.pipelines import (
    MemoryOptions,
    choose_variant,
    free_memory,
    is_out_of_memory,
    load_oom_message,
    load_pipeline,
    model_index,
    names_component,
    place_pipeline,
)
from arpo.tools.waits import waiting_on_service

if TYPE_CHECKING:
    from PIL import Image

    from arpo.tools.store import ArtifactStore

log = logging.getLogger(__name__)

#: true_cfg_scale for a true-CFG family (Flux) when a negative prompt is given (ARPO_TRUE_CFG_SCALE)
DEFAULT_TRUE_CFG_SCALE = 4.0


@dataclass(frozen=True)
class RenderParams:
    """Everything besides prompt and seed that decides a render's pixels.

    Sizes must be positive here; the family's multiple (8 for SD, 16 for SD3 and Flux, ...) is
    checked where the family is known (:func:`arpo.tools.families.check_size`)."""

    negative_prompt: str = ""
    steps: int = 30
    guidance: float = 7.5
    width: int = 512
    height: int = 512

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 1:
                raise InvalidOptionError(
                    f"{name}={value} is not usable: image sizes must be positive (e.g. 512, 768)."
                )
        if self.steps < 1:
            raise InvalidOptionError(f"steps={self.steps} must be at least 1.")


class Renderer(Protocol):
    """Any text-to-image backend: one image per (prompt, seed) pair, deterministic.

    A backend may also have ``profile`` (its :class:`~arpo.tools.families.FamilyProfile`),
    ``check_params(params)`` (refuse, before any render, what it cannot render),
    ``seeded = False`` (it takes no seed: a seed then only names a sample, and a new sample of
    the same prompt differs), ``remote = True`` (it renders on another machine, so rendering
    is a wait that holds no model lock), ``price_per_image(params)`` (US dollars per render,
    or None) and ``reading(prompt)`` (what it takes from a prompt, comparable: equal readings
    draw alike; remixes use it to say which edits it cannot show)."""

    name: str

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]: ...


# what each call argument stands for, in the words a user can act on
_ARGUMENT_MEANS = {
    "prompt": "the prompt",
    "negative_prompt": "a negative prompt (--negative-prompt, option negative_prompt)",
    "true_cfg_scale": "true classifier-free guidance, which its family needs to use a negative "
    "prompt (ARPO_TRUE_CFG_SCALE)",
    "guidance_scale": "a guidance scale (--guidance, option guidance)",
    "num_inference_steps": "a number of steps (--steps, option steps)",
    "width": "a width (--width)",
    "height": "a height (--height)",
    "generator": "per-image seeds (generator)",
}


@dataclass(frozen=True)
class CallSignature:
    """The keyword arguments a pipeline's ``__call__`` takes, by name.

    A diffusers pipeline's ``**kwargs`` (SDXL's, for deprecated callbacks) swallows a name it
    does not know without using it, so only named parameters count; a callable that takes
    nothing but ``**kwargs`` (a wrapper) is taken at its word."""

    names: frozenset[str]
    any_keyword: bool  # only **kwargs: a wrapper that passes everything on

    @classmethod
    def of(cls, pipeline: Any) -> CallSignature:
        try:
            signature = inspect.signature(pipeline)
        except (TypeError, ValueError):  # a builtin or C callable: take its word for it
            return cls(frozenset(), True)
        variadic = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        named = frozenset(p.name for p in signature.parameters.values() if p.kind not in variadic)
        takes_any = any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
        )
        return cls(named, takes_any and not named)

    def takes(self, name: str) -> bool:
        return self.any_keyword or name in self.names


class DiffusersRenderer:
    """A diffusers text-to-image pipeline (``AutoPipelineForText2Image``), rendered the way
    its family profile says."""

    def __init__(
        self,
        pipeline: Any,
        *,
        name: str,
        device: str,
        batch_size: int = 4,
        profile: FamilyProfile | None = None,
        true_cfg_scale: float = DEFAULT_TRUE_CFG_SCALE,
        memory: MemoryOptions | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.name = name
        self.device = device
        self.profile = profile or profiles()[UNKNOWN]
        self.true_cfg_scale = true_cfg_scale
        self.memory = memory or MemoryOptions()
        self.signature = CallSignature.of(pipeline)
        dtype = getattr(pipeline, "dtype", "")
        self.dtype = str(dtype).removeprefix("torch.")
        # renders differ across devices and dtypes for the same seed: part of the cache key
        self.cache_id = f"{name}|{device}|{dtype}"
        if self.profile.negative_prompt == "true_cfg":
            self.cache_id += f"|true_cfg={true_cfg_scale:g}"
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(
        cls,
        ref: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
        profile: FamilyProfile | None = None,
        memory: MemoryOptions | None = None,
        true_cfg_scale: float = DEFAULT_TRUE_CFG_SCALE,
    ) -> DiffusersRenderer:
        """Load ``ref`` (a local diffusers folder or a hub id) in ``profile``'s dtype for the
        device (detected from its ``model_index.json`` when not given; ``dtype`` other than
        ``auto`` overrides), without a safety checker, placed by ``memory``."""
        source = check_diffusers_ref(ref, "ARPO_T2I_MODEL")
        memory = memory or MemoryOptions()
        device = resolve_device(device)
        folder = diffusers_folder(source, download=True)
        if profile is None:
            profile = detect_folder(folder, ref) if folder else profiles()[UNKNOWN]
        chosen = dtype_name(device, dtype, profile)
        index = model_index(folder)
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        kwargs: dict[str, Any] = {"dtype": getattr(torch, chosen)}
        has_checker = names_component(index, "safety_checker")
        if "safety_checker" in index or (not index and profile.safety_checker):
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        variant = choose_variant(memory.variant, chosen, folder)
        try:
            pipeline = load_pipeline(AutoPipelineForText2Image, source, kwargs, variant, memory)
        except Exception as error:  # diffusers raises OSError, ValueError, EnvironmentError...
            if is_out_of_memory(error):
                raise RenderError(load_oom_message(ref, device, chosen, memory)) from error
            raise model_load_error("text-to-image model", ref, "ARPO_T2I_MODEL", error) from error
        if has_checker:
            log.info(
                "%s: safety checker off (arpo scores every render, and its false positives "
                "are black images)",
                ref,
            )
        try:
            applied = place_pipeline(pipeline, device, memory)
        except Exception as error:
            if is_out_of_memory(error):
                raise RenderError(load_oom_message(ref, device, chosen, memory)) from error
            raise
        pipeline.set_progress_bar_config(disable=True)
        log.info(
            "loaded %s on %s (%s, family %s%s%s)",
            ref,
            device,
            chosen,
            profile.name,
            f", {variant} weights" if variant else "",
            f", {', '.join(applied)}" if applied else "",
        )
        return cls(
            pipeline,
            name=ref,
            device=device,
            batch_size=batch_size,
            profile=profile,
            true_cfg_scale=true_cfg_scale,
            memory=memory,
        )

    # ------------------------------------------------------------------ call arguments

    def call_kwargs(
        self, prompts: Sequence[str], params: RenderParams, generators: Any = None
    ) -> dict[str, Any]:
        """The keyword arguments of one pipeline call, as the family profile says; an
        argument the pipeline does not take is refused (InvalidOptionError naming it)."""
        count = len(prompts)
        kwargs: dict[str, Any] = {
            "prompt": list(prompts),
            "num_inference_steps": params.steps,
            "guidance_scale": params.guidance,  # Flux: its distilled guidance
            "width": params.width,
            "height": params.height,
            "generator": generators,
        }
        negative = params.negative_prompt
        if negative.strip():
            check_negative_prompt(self.profile, negative)
            kwargs["negative_prompt"] = [negative] * count
            if self.profile.negative_prompt == "true_cfg":
                kwargs["true_cfg_scale"] = self.true_cfg_scale
        for name in kwargs:
            if not self.signature.takes(name):
                raise InvalidOptionError(self._not_taken(name))
        if self.signature.takes("output_type"):
            kwargs["output_type"] = "np"  # floats: NaN stays visible
        return kwargs

    def _not_taken(self, name: str) -> str:
        pipeline = type(self.pipeline).__name__
        means = _ARGUMENT_MEANS.get(name, name)
        hint = {
            "negative_prompt": "drop the negative prompt",
            "true_cfg_scale": "drop the negative prompt, or update diffusers (pipelines of "
            "this family take true_cfg_scale in recent versions)",
        }.get(
            name,
            "drop that option, or set ARPO_FAMILY / ARPO_FAMILY_OVERRIDES to a family "
            "that matches the model",
        )
        return (
            f"{self.name} ({pipeline}, family {self.profile.name}) does not take `{name}`: "
            f"{means} cannot be used with it; {hint}."
        )

    def check_params(self, params: RenderParams) -> None:
        """Refuse, before any render, what this pipeline cannot render with ``params``."""
        check_render_options(
            self.profile,
            width=params.width,
            height=params.height,
            negative_prompt=params.negative_prompt,
        )
        self.call_kwargs([""], params)

    # ------------------------------------------------------------------ rendering

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        """One image per (prompt, seed), ``batch_size`` at a time. A failure after some
        batches were rendered raises :class:`RendersFailed` with those images."""
        self.check_params(params)
        images: list[Image.Image] = []
        try:
            self._render_batches(prompts, seeds, params, images)
        except RendersFailed:
            raise
        except Exception as error:
            if not images:
                raise
            made: list[Any] = [*images, *[None] * (len(prompts) - len(images))]
            raise RendersFailed(error, made) from error
        return images

    def _render_batches(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        params: RenderParams,
        images: list[Image.Image],
    ) -> None:
        """Render into ``images`` batch by batch, halving the batch on out of memory."""
        start = 0
        while start < len(prompts):
            size = self.batch_size
            batch = list(prompts[start : start + size])
            try:
                images.extend(self._render_batch(batch, seeds[start : start + size], params))
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                free_memory(self.device)
                if len(batch) == 1:
                    raise RenderError(self._oom_message(params)) from error
                self.batch_size = max(1, len(batch) // 2)
                log.warning(
                    "out of memory rendering %d images at %dx%d; retrying %d at a time "
                    "(ARPO_RENDER_BATCH_SIZE=%d avoids the retry)",
                    len(batch),
                    params.width,
                    params.height,
                    self.batch_size,
                    self.batch_size,
                )
                continue
            start += len(batch)

    def _render_batch(
        self, prompts: list[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        import torch

        generator_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(generator_device).manual_seed(int(seed)) for seed in seeds]
        kwargs = self.call_kwargs(prompts, params, generators)
        with torch.inference_mode():
            output = self.pipeline(**kwargs)
        return self.checked_images(output.images, params)

    def checked_images(self, images: Any, params: RenderParams) -> list[Image.Image]:
        """PIL images from a pipeline's output (floats, or PIL where it returns those);
        NaN or all-black images stop with a RenderError naming ARPO_DTYPE."""
        import numpy as np
        from PIL import Image

        if isinstance(images, list) and images and isinstance(images[0], Image.Image):
            black = [i for i, image in enumerate(images) if not np.asarray(image).any()]
            if black:
                raise RenderError(self._bad_render_message("all-black", len(black), len(images)))
            return list(images)
        array = np.asarray(images.float().cpu() if hasattr(images, "cpu") else images)
        if array.ndim == 3:
            array = array[None, ...]
        finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
        if not finite.all():
            bad = int((~finite).sum())
            raise RenderError(self._bad_render_message("NaN", bad, len(array)))
        black = ~array.reshape(len(array), -1).any(axis=1)
        if black.any():
            bad = int(black.sum())
            raise RenderError(self._bad_render_message("all-black", bad, len(array)))
        pixels = (array * 255).round().astype("uint8")
        if pixels.shape[-1] == 1:
            return [Image.fromarray(p.squeeze(-1), mode="L") for p in pixels]
        return [Image.fromarray(p) for p in pixels]

    def _bad_render_message(self, what: str, bad: int, total: int) -> str:
        dtype = self.dtype or "its dtype"
        if dtype == "float16":
            fix = "set ARPO_DTYPE=bfloat16 (or float32)"
        elif dtype == "bfloat16":
            fix = "set ARPO_DTYPE=float32"
        else:
            fix = (
                f"ARPO_DTYPE={dtype} already; the model's weights or its family settings are "
                "likely wrong (check ARPO_T2I_MODEL and ARPO_FAMILY)"
            )
        detail = "every pixel 0" if what == "all-black" else "not a number"
        return (
            f"{self.name} ({self.profile.title}) rendered {what} images ({bad} of {total}, "
            f"{detail}) in {dtype} on {self.device}: a numeric overflow, not a prompt to "
            f"optimise; {fix}."
        )

    def _oom_message(self, params: RenderParams) -> str:
        offload = {
            "none": "ARPO_OFFLOAD=model (or sequential: slowest, least memory)",
            "model": "ARPO_OFFLOAD=sequential (model offload is on already)",
            "sequential": "a smaller model (sequential offload is on already)",
        }[self.memory.offload]
        helps = [offload]
        if not self.memory.vae_tiling:
            helps.append("ARPO_VAE_TILING=true")
        if not self.memory.vae_slicing:
            helps.append("ARPO_VAE_SLICING=true")
        helps.append(f"a smaller --width/--height (now {params.width}x{params.height})")
        helps.append("ARPO_RENDER_BATCH_SIZE=1 (this failed at one image per call already)")
        return (
            f"out of memory rendering one {params.width}x{params.height} image with {self.name} "
            f"({self.profile.title}) on {self.device} ({self.dtype or 'its dtype'}), even one "
            f"at a time. What helps: {'; '.join(helps)}."
        )


class RendersRefused(RenderError):
    """The backend refused to render some prompts (an images API's content policy): not
    retried, and not a broken run. ``images`` holds the other renders (None where refused),
    ``reasons`` the refusal of each refused position; from :meth:`RenderCache.render_counted`,
    ``hashes`` holds artifact hashes instead (None where refused) and ``spent`` what the
    backend rendered."""

    def __init__(
        self,
        reasons: dict[int, str],
        images: list[Any] | None = None,
        hashes: list[str | None] | None = None,
        spent: int = 0,
    ) -> None:
        first = next(iter(reasons.values()), "")
        super().__init__(
            f"the text-to-image service refused {len(reasons)} prompt(s) (not retried): "
            f"{first}. Rephrase the prompt (or start from another one with --prompt)."
        )
        self.reasons = reasons
        self.images = images or []
        self.hashes = hashes or []
        self.spent = spent


class RendersFailed(RenderError):
    """A backend call failed after some of its renders were made (one request of a parallel
    batch timed out or kept failing; a later diffusers batch failed). ``images`` holds the
    renders made (None where not) and ``reasons`` any refusals, so the render cache stores
    them before the error goes on; from :meth:`RenderCache.render_some`, ``spent`` counts
    what the backend rendered. The message is the failure's own."""

    def __init__(
        self,
        error: BaseException,
        images: list[Any],
        reasons: dict[int, str] | None = None,
        spent: int = 0,
    ) -> None:
        made = sum(image is not None for image in images)
        message = (
            str(error) if isinstance(error, RenderError) else f"{type(error).__name__}: {error}"
        )
        super().__init__(f"{message} ({made} of {len(images)} renders were made and are kept)")
        self.error = error
        self.images = images
        self.reasons = reasons or {}
        self.spent = spent


@dataclass(frozen=True)
class RenderOutcome:
    """What :meth:`RenderCache.render_some` made: hashes (None where the backend refused),
    how many renders the backend really made, and the refusals by position."""

    hashes: list[str | None]
    spent: int
    refused: dict[int, str]


class RenderCache:
    """Serves renders from the artifact store by (model, prompt, negative, seed, size, steps,
    guidance); only misses reach the backend, in one batch. For a backend without seeds the
    seed names a sample (``sample`` in the key): a prompt's sample 0 is drawn once and then
    served from the store, sample 1 is another draw. A refusal is stored too, so the same
    prompt is not sent again."""

    def __init__(self, renderer: Renderer, store: ArtifactStore) -> None:
        self.renderer = renderer
        self.store = store
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    @property
    def remote(self) -> bool:
        """Whether the backend renders on another machine (an images API): its renders are
        a wait, during which the model lock is free (:mod:`arpo.tools.waits`)."""
        return bool(getattr(self.renderer, "remote", False))

    @property
    def seeded(self) -> bool:
        """Whether the backend's renders are reproducible from a seed."""
        return bool(getattr(self.renderer, "seeded", True))

    def price_per_image(self, params: RenderParams) -> float | None:
        """US dollars per render at ``params`` (None: the backend has no price)."""
        price = getattr(self.renderer, "price_per_image", None)
        return price(params) if callable(price) else None

    def key(self, prompt: str, seed: int, params: RenderParams) -> str:
        return json.dumps(
            {
                "model": getattr(self.renderer, "cache_id", self.renderer.name),
                "prompt": prompt,
                "seed" if self.seeded else "sample": seed,
                **asdict(params),
            },
            sort_keys=True,
        )

    def cached(self, prompt: str, seed: int, params: RenderParams) -> str | None:
        """The stored render of (prompt, seed), if there is one."""
        record = self.store.get_record(self.key(prompt, seed, params))
        digest = record.get("image") if record else None
        return digest if digest and self.store.has(digest) else None

    def refusal(self, prompt: str, seed: int, params: RenderParams) -> str | None:
        """The stored refusal of (prompt, seed), if the backend refused it."""
        record = self.store.get_record(self.key(prompt, seed, params))
        reason = record.get("refused") if record else None
        return str(reason) if reason else None

    def missing(self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams) -> int:
        """How many of these renders :meth:`render_counted` would pass to the backend."""
        pairs = zip(prompts, seeds, strict=True)
        return sum(
            1
            for prompt, seed in pairs
            if self.cached(prompt, seed, params) is None
            and self.refusal(prompt, seed, params) is None
        )

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[str]:
        """Artifact hashes of the renders, one per (prompt, seed)."""
        return self.render_counted(prompts, seeds, params)[0]

    def render_counted(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> tuple[list[str], int]:
        """Artifact hashes of the renders, one per (prompt, seed), and how many of them the
        backend really rendered (cache hits are free): what a run's render budget counts.
        A refusal raises :class:`RendersRefused` (with the other renders' hashes)."""
        outcome = self.render_some(prompts, seeds, params)
        if outcome.refused:
            raise RendersRefused(outcome.refused, hashes=outcome.hashes, spent=outcome.spent)
        return [digest for digest in outcome.hashes if digest is not None], outcome.spent

    def render_some(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> RenderOutcome:
        """As :meth:`render_counted`, but a prompt the backend refuses gets None and its
        reason instead of raising: the loop scores a refused candidate lowest. A call that
        fails partway (:class:`RendersFailed`) stores the renders it made first, then raises
        with ``spent`` set: paid renders are never lost."""
        if len(prompts) != len(seeds):
            raise ValueError("render needs one seed per prompt")
        pairs = list(zip(prompts, seeds, strict=True))
        hashes: list[str | None] = [self.cached(p, s, params) for p, s in pairs]
        refused = {
            i: reason
            for i, (p, s) in enumerate(pairs)
            if hashes[i] is None and (reason := self.refusal(p, s, params)) is not None
        }
        missing = [i for i, digest in enumerate(hashes) if digest is None and i not in refused]
        self.hits += len(prompts) - len(missing)
        self.misses += len(missing)
        if not missing:
            return RenderOutcome(hashes, 0, refused)
        failure: RendersFailed | None = None
        waiting = waiting_on_service() if self.remote else contextlib.nullcontext()
        with waiting, self._lock:  # one backend call at a time per device
            try:
                images: list[Any] = self.renderer.render(
                    [prompts[i] for i in missing], [seeds[i] for i in missing], params
                )
                new_refusals: dict[int, str] = {}
            except RendersRefused as error:
                images, new_refusals = error.images, error.reasons
            except RendersFailed as error:  # keep what was made (and paid for), then fail
                images, new_refusals, failure = error.images, error.reasons, error
        spent = 0
        for j, (i, image) in enumerate(zip(missing, images, strict=True)):
            key = self.key(prompts[i], seeds[i], params)
            if image is None:
                if failure is None or j in new_refusals:
                    refused[i] = new_refusals.get(j, "refused")
                    self.store.put_record(key, {"refused": refused[i]})
                continue
            digest = self.store.put_image(image)
            self.store.put_record(key, {"image": digest})
            hashes[i] = digest
            spent += 1
        if failure is not None:
            failure.spent = spent
            raise failure
        return RenderOutcome(hashes, spent, refused)
