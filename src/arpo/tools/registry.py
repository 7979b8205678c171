"""Builders by name, so that data (a preset's JSON) can say what to build.

Generic code looks builders up here by ``(kind, name)`` and never imports the module that
defines them. Two kinds:

- ``"renderer"``: a :class:`RendererBuilder`, which turns a model reference into a
  text-to-image backend (``build(ref, settings)``, or ``build(ref, settings, profile=...)``
  when it takes the family profile to render by) and can say, before anything heavy is
  imported, whether that reference can load (``check(ref)``) and which model family it is
  (``profile(ref, download)``). Built in: ``"diffusers"``, ``"openai-images"``
  (:mod:`arpo.tools.images_api`).
- ``"preset"``: a :data:`PresetBuilder`, ``(spec, root) -> PresetModels``: it builds the
  preset's models under ``root`` if they need building and says where they are. Built in:
  ``"tiny"`` (:mod:`arpo.tools.presets`).

A name may live in a *provider* module, named as data (``"provider": "arpo.demo.preset"`` in
a preset's JSON): :func:`lookup` imports it first, and the module registers its builders when
it is imported. An unknown name is an :class:`~arpo.errors.InvalidOptionError` that lists the
known ones.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    from arpo.config import Settings
    from arpo.tools.families import FamilyProfile
    from arpo.tools.presets import PresetModels
    from arpo.tools.t2i import Renderer

KINDS = ("renderer", "preset")

#: Modules of ``arpo.tools`` that register built-in builders when imported (imported lazily,
#: on the first lookup, because they import this module).
BUILTIN_PROVIDERS = ("arpo.tools.presets", "arpo.tools.images_api")

PresetBuilder = Callable[[dict[str, Any], Path], "PresetModels"]


def _no_check(ref: str) -> None:
    """A backend with nothing to check before it is built."""


@dataclass(frozen=True)
class RendererBuilder:
    """Builds a text-to-image backend from a model reference.

    ``check`` must stay cheap (no torch, no diffusers): ``Toolbox.load_models`` calls it
    first so that a missing model fails in about a second.
    """

    build: Callable[..., Renderer]
    check: Callable[[str], None] = _no_check
    # (ref, download) -> the model's family, or None when it cannot tell (nothing to read);
    # cheap like ``check``: with ``download`` it may fetch small JSON files, never weights
    profile: Callable[[str, bool], FamilyProfile | None] | None = None

    def make(self, ref: str, settings: Settings, profile: FamilyProfile | None = None) -> Renderer:
        """Build the backend, handing it ``profile`` when ``build`` takes one."""
        if profile is not None and _takes_profile(self.build):
            return self.build(ref, settings, profile=profile)
        return self.build(ref, settings)

    def family(self, ref: str, *, download: bool = False) -> FamilyProfile | None:
        return self.profile(ref, download) if self.profile is not None else None


def _takes_profile(build: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(build).parameters
    except (TypeError, ValueError):
        return False
    return "profile" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


_builders: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_lock = threading.RLock()
_builtins_loaded = False


def _kind(kind: str) -> dict[str, Any]:
    if kind not in _builders:
        raise ValueError(f"unknown builder kind '{kind}'; known: {', '.join(KINDS)}")
    return _builders[kind]


def register(kind: str, name: str, builder: Any, *, replace: bool = False) -> None:
    """Make ``builder`` known as ``name``; a second registration of a name needs ``replace``."""
    with _lock:
        table = _kind(kind)
        if name in table and table[name] is not builder and not replace:
            raise ValueError(f"a {kind} builder named '{name}' is already registered")
        table[name] = builder


def unregister(kind: str, name: str) -> None:
    with _lock:
        _kind(kind).pop(name, None)


def names(kind: str) -> list[str]:
    """The registered names of a kind (built-ins included), sorted."""
    _load_builtins()
    with _lock:
        return sorted(_kind(kind))


def load_provider(module: str) -> None:
    """Import the module that registers a preset's builders (once; later calls are free)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or not (module == error.name or module.startswith(error.name + ".")):
            raise  # the provider exists but something it imports does not: a real bug
        raise InvalidOptionError(
            f"builder provider module '{module}' cannot be imported ({error}); "
            "check the preset's 'provider' entry."
        ) from error


def lookup(kind: str, name: str, *, provider: str | None = None) -> Any:
    """The builder registered as ``name``, after importing ``provider`` if one is named."""
    _load_builtins()
    if provider:
        load_provider(provider)
    with _lock:
        table = _kind(kind)
        if name in table:
            return table[name]
        known = ", ".join(sorted(table)) or "none"
    where = f" (after importing '{provider}')" if provider else ""
    raise InvalidOptionError(f"unknown {kind} builder '{name}'{where}; known: {known}.")


def renderer_builder(name: str, *, provider: str | None = None) -> RendererBuilder:
    return lookup("renderer", name, provider=provider)


def preset_builder(name: str, *, provider: str | None = None) -> PresetBuilder:
    return lookup("preset", name, provider=provider)


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    for module in BUILTIN_PROVIDERS:
        importlib.import_module(module)
    _builtins_loaded = True


# --- built-in: diffusers -----------------------------------------------------------------


def _check_diffusers(ref: str) -> None:
    from arpo.tools.loading import check_diffusers_ref

    check_diffusers_ref(ref, "ARPO_T2I_MODEL")


def _build_diffusers(
    ref: str, settings: Settings, profile: FamilyProfile | None = None
) -> Renderer:
    from arpo.tools.pipelines import MemoryOptions
    from arpo.tools.t2i import DiffusersRenderer

    return DiffusersRenderer.from_pretrained(
        ref,
        device=settings.device,
        dtype=settings.dtype,
        batch_size=settings.render_batch_size,
        profile=profile,
        memory=MemoryOptions.from_settings(settings),
        true_cfg_scale=settings.true_cfg_scale,
    )


def _diffusers_profile(ref: str, download: bool) -> FamilyProfile | None:
    """The family from the model's ``model_index.json`` (a local folder, the Hugging Face
    cache, or, with ``download`` and the hub online, fetched); None when there is none."""
    from arpo.tools.families import detect_folder
    from arpo.tools.loading import diffusers_folder

    folder = diffusers_folder(ref, download=download)
    return detect_folder(folder, ref) if folder is not None else None


register(
    "renderer",
    "diffusers",
    RendererBuilder(build=_build_diffusers, check=_check_diffusers, profile=_diffusers_profile),
)
