"""The Toolbox: every model a run needs, loaded lazily and once per process.

Callers may hand in already-loaded components (a renderer, a scorer, a chat model); anything
not given is built from :class:`~arpo.config.Settings` on first use. The graph receives a
Toolbox at build time; models never enter graph state.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from arpo.config import Settings

if TYPE_CHECKING:
    from arpo.tools.chat import StructuredChat
    from arpo.tools.clip import ClipScorer
    from arpo.tools.families import FamilyProfile
    from arpo.tools.phrases import Interrogator, OfflineProposer, PhraseRanker
    from arpo.tools.presets import PresetModels
    from arpo.tools.registry import RendererBuilder
    from arpo.tools.store import ArtifactStore
    from arpo.tools.t2i import RenderCache, Renderer
    from arpo.tools.vocabulary import Vocabulary


class Toolbox:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        renderer: Renderer | None = None,
        scorer: ClipScorer | None = None,
        chat: StructuredChat | None = None,
        vocabulary: Vocabulary | None = None,
        store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._given: dict[str, Any] = {
            "backend": renderer,
            "scorer": scorer,
            "chat": chat,
            "vocabulary": vocabulary,
            "store": store,
        }
        self._lock = threading.RLock()

    def _get(self, name: str, build: Any) -> Any:
        if self._given.get(name) is None:
            with self._lock:
                if self._given.get(name) is None:
                    self._given[name] = build()
        return self._given[name]

    @cached_property
    def preset(self) -> PresetModels | None:
        if self.settings.preset == "none":
            return None
        from arpo.tools.presets import prepare_preset

        return prepare_preset(self.settings.preset, self.settings.presets_dir)

    @property
    def option_defaults(self) -> dict[str, Any]:
        """Run-option defaults that suit the models (the tiny preset renders small and fast)."""
        return dict(self.preset.option_defaults) if self.preset else {}

    @cached_property
    def profile(self) -> FamilyProfile:
        """The configured text-to-image model's family, read without loading it: from the
        ``model_index.json`` of its local folder (or of its cached hub snapshot), else SD 1.x.
        """
        from pathlib import Path

        from arpo.tools.families import detect_family, profile_named, read_model_index

        _, ref = self._renderer_choice()
        folder: Path | None = Path(ref).expanduser()
        if not (folder / "model_index.json").is_file():
            from huggingface_hub import try_to_load_from_cache

            try:
                cached = try_to_load_from_cache(ref, "model_index.json")
            except ValueError:  # not a hub id either
                cached = None
            folder = Path(cached).parent if isinstance(cached, str) else None
        if folder is None:
            return profile_named("sd1")
        index, configs = read_model_index(folder)
        return detect_family(index, ref, configs)

    @property
    def store(self) -> ArtifactStore:
        from arpo.tools.store import ArtifactStore

        return self._get("store", lambda: ArtifactStore(self.settings.store_dir))

    def _renderer_choice(self) -> tuple[RendererBuilder, str]:
        """The registered builder of the text-to-image backend, and the reference it loads."""
        from arpo.tools import registry

        preset = self.preset
        if preset:
            builder = registry.renderer_builder(preset.renderer, provider=preset.provider)
            return builder, preset.t2i_model
        return registry.renderer_builder("diffusers"), self.settings.t2i_model

    @property
    def backend(self) -> Renderer:
        """The raw text-to-image backend; the graph uses :attr:`renderer` (cached) instead."""

        def build() -> Renderer:
            builder, ref = self._renderer_choice()
            return builder.build(ref, self.settings)

        return self._get("backend", build)

    @property
    def renderer(self) -> RenderCache:
        from arpo.tools.t2i import RenderCache

        return self._get("renderer", lambda: RenderCache(self.backend, self.store))

    @property
    def scorer(self) -> ClipScorer:
        def build() -> ClipScorer:
            from arpo.tools.clip import ClipScorer

            if self.preset:
                return ClipScorer.from_pretrained(
                    self.preset.clip_model, self.preset.clip_pretrained, device=self.settings.device
                )
            return ClipScorer.from_pretrained(
                self.settings.clip_model, self.settings.clip_pretrained, device=self.settings.device
            )

        return self._get("scorer", build)

    @property
    def llm_available(self) -> bool:
        """Whether LLM strategies can run, without building the client."""
        return self._given.get("chat") is not None or self.settings.llm_configured

    @property
    def chat(self) -> StructuredChat | None:
        """The LLM, or None when none is configured (LLM strategies then cannot run)."""
        if not self.llm_available:
            return None

        def build() -> StructuredChat:
            from arpo.tools.chat import StructuredChat

            return StructuredChat.from_settings(self.settings)

        return self._get("chat", build)

    @property
    def vocabulary(self) -> Vocabulary:
        def build() -> Vocabulary:
            from arpo.tools.vocabulary import load_vocabulary

            folder = self.settings.vocabulary_dir
            if folder is None and self.preset is not None:
                folder = self.preset.vocabulary_dir
            return load_vocabulary(folder)

        return self._get("vocabulary", build)

    @property
    def phrase_ranker(self) -> PhraseRanker:
        from arpo.tools.phrases import PhraseRanker

        return self._get("phrase_ranker", lambda: PhraseRanker(self.scorer, self.vocabulary))

    @property
    def interrogator(self) -> Interrogator:
        from arpo.tools.phrases import Interrogator

        return self._get(
            "interrogator",
            lambda: Interrogator(self.scorer, self.vocabulary, ranker=self.phrase_ranker),
        )

    @property
    def offline_proposer(self) -> OfflineProposer:
        from arpo.tools.phrases import OfflineProposer

        return self._get(
            "offline_proposer",
            lambda: OfflineProposer(self.scorer, self.vocabulary, ranker=self.phrase_ranker),
        )

    def load_models(self) -> None:
        """Load the renderer and scorer now, checking cheap things first, so a missing model
        fails in about a second, before any run is recorded."""
        from arpo.tools.clip import check_clip_ref

        preset = self.preset
        if self._given.get("backend") is None:
            builder, ref = self._renderer_choice()
            builder.check(ref)
        if self._given.get("scorer") is None:
            if preset:
                check_clip_ref(preset.clip_model, preset.clip_pretrained)
            else:
                check_clip_ref(self.settings.clip_model, self.settings.clip_pretrained)
        self.scorer  # noqa: B018
        self.backend  # noqa: B018

    def describe_models(self) -> dict[str, str | None]:
        """Model names for reports, without loading anything."""
        settings = self.settings
        given_backend = self._given.get("backend")
        given_scorer = self._given.get("scorer")
        t2i = (
            given_backend.name
            if given_backend
            else (self.preset.t2i_model if self.preset else settings.t2i_model)
        )
        if given_scorer:
            clip = given_scorer.name
        elif self.preset:
            clip = self.preset.clip_model
        else:
            clip = f"{settings.clip_model}/{settings.clip_pretrained}"
        chat = self._given.get("chat")
        llm = chat.name if chat else (settings.llm_model if settings.llm_configured else None)
        return {"t2i": t2i, "clip": clip, "llm": llm}

    def model_identity(self) -> dict[str, str | None]:
        """What picks the models, in names that do not depend on the data directory.

        ``{"preset": ..., "t2i": ..., "clip": ...}``: the preset's name (None without one)
        and its models' stable names ("tiny/t2i", "demo-clip"); without a preset, the
        configured ``t2i_model`` and ``clip_model/clip_pretrained``. A component handed in
        counts by its ``name``, unless that name is the preset's own model reference (the
        same models, loaded elsewhere), which counts by the preset's name for it. Two
        toolboxes with the same identity render and score alike. The LLM is not part of it.
        """
        settings, preset = self.settings, self.preset
        if preset:
            t2i, clip = preset.t2i_identity, preset.clip_identity
        else:
            t2i = settings.t2i_model
            clip = _clip_name(settings.clip_model, settings.clip_pretrained)
        backend, scorer = self._given.get("backend"), self._given.get("scorer")
        if backend is not None and not (preset and _same_model(backend.name, preset.t2i_model)):
            t2i = backend.name
        if scorer is not None and not (preset and _same_model(scorer.name, preset.clip_model)):
            clip = scorer.name
        return {
            "preset": None if settings.preset == "none" else settings.preset,
            "t2i": t2i,
            "clip": clip,
        }


def _clip_name(model: str, pretrained: str | None) -> str:
    """The name :class:`~arpo.tools.clip.ClipScorer` gives the model it loads."""
    if model.startswith(("local-dir:", "hf-hub:")) or not pretrained:
        return model
    return f"{model}/{pretrained}"


def _same_model(name: str, ref: str) -> bool:
    """Whether a loaded model's name is this reference (local folders compared by real path)."""
    if name == ref:
        return True
    prefix = "local-dir:"
    if name.startswith(prefix) != ref.startswith(prefix):
        return False
    first, second = name.removeprefix(prefix), ref.removeprefix(prefix)
    if not (os.path.isabs(first) and os.path.isabs(second)):
        return False
    return os.path.realpath(first) == os.path.realpath(second)
