"""The Toolbox: every model a run needs, loaded lazily and once per process.

Callers may hand in already-loaded components (a renderer, a scorer, a chat model, a
captioner); anything
not given is built from :class:`~arpo.config.Settings` on first use. The graph receives a
Toolbox at build time; models never enter graph state.

What a Toolbox loads is said in words as it happens ("loading CLIP demo-clip", then "loaded
CLIP demo-clip in 2.1 s"), before any heavy import: to the listeners of the context that
loads (:meth:`Toolbox.listen`, an MCP request's) and to the process's
(:func:`listen_to_every_toolbox`, the CLI's).
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.config import Settings
from arpo.tools.loading import looks_like_path

if TYPE_CHECKING:
    from arpo.tools.captioner import Captioner
    from arpo.tools.chat import StructuredChat
    from arpo.tools.clip import ClipScorer
    from arpo.tools.families import FamilyProfile
    from arpo.tools.phrases import Interrogator, OfflineProposer, PhraseRanker
    from arpo.tools.presets import PresetModels
    from arpo.tools.registry import RendererBuilder
    from arpo.tools.store import ArtifactStore
    from arpo.tools.t2i import RenderCache, Renderer
    from arpo.tools.vocabulary import Vocabulary

LoadListener = Callable[[str], None]
_every_toolbox: list[LoadListener] = []  # hear what every Toolbox of the process loads
_every_toolbox_guard = threading.Lock()


@contextmanager
def listen_to_every_toolbox(listener: LoadListener) -> Iterator[None]:
    """Tell ``listener`` what any Toolbox of this process loads, in any thread, while inside:
    for the owner of the process (the CLI prints it)."""
    with _every_toolbox_guard:
        _every_toolbox.append(listener)
    try:
        yield
    finally:
        with _every_toolbox_guard:
            _every_toolbox.remove(listener)


class Toolbox:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        renderer: Renderer | None = None,
        scorer: ClipScorer | None = None,
        chat: StructuredChat | None = None,
        captioner: Captioner | None = None,
        vocabulary: Vocabulary | None = None,
        store: ArtifactStore | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._given: dict[str, Any] = {
            "backend": renderer,
            "scorer": scorer,
            "chat": chat,
            "captioner": captioner,
            "vocabulary": vocabulary,
            "store": store,
        }
        self._lock = threading.RLock()
        self._profile: FamilyProfile | None = None
        self._vocabulary_embedded = False
        # per context (thread, or a task that copied the context): who hears its loads
        self._listeners: ContextVar[tuple[LoadListener, ...]] = ContextVar(
            "arpo_load_listeners", default=()
        )

    @contextmanager
    def listen(self, listener: LoadListener) -> Iterator[None]:
        """Tell ``listener`` what this Toolbox loads in the current context while inside: this
        thread, and the threads LangGraph runs its nodes in for it (they copy the context),
        so an MCP request hears its own loads, not another request's."""
        token = self._listeners.set((*self._listeners.get(), listener))
        try:
            yield
        finally:
            self._listeners.reset(token)

    def _say(self, message: str) -> None:
        """Tell the listeners what is being loaded now."""
        with _every_toolbox_guard:
            everywhere = list(_every_toolbox)
        for listener in [*self._listeners.get(), *everywhere]:
            listener(message)

    @contextmanager
    def loading(self, what: str) -> Iterator[None]:
        """Around loading a model for this toolbox: say "loading WHAT" before it and "loaded
        WHAT in N s" once it has; torch's thread count is chosen on the way
        (:func:`~arpo.tools.devices.use_threads`)."""
        from arpo.tools.devices import use_threads

        self._say(f"loading {what}")
        began = time.perf_counter()
        use_threads(self.settings.threads)
        yield
        self._say(f"loaded {what} in {time.perf_counter() - began:.1f} s")

    def _captioner_label(self, ref: str) -> str:
        """The captioner's name for a progress line: a preset's own is "demo/captioner"."""
        short = short_model_name(ref, kind="t2i", preset=False)
        own = self.preset is not None and self.preset.caption_model == ref
        return f"{self.settings.preset}/{short}" if own else short

    def _label(self, kind: str) -> str:
        """The name a progress line gives the text-to-image ("t2i") or CLIP ("clip") model."""
        named = self.settings.preset != "none"
        return short_model_name(self.model_identity()[kind], kind=kind, preset=named)

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

        name = self.settings.preset
        with self._said_if_slow(f"building the {name} preset's models (once per data folder)"):
            return prepare_preset(self.settings.preset, self.settings.presets_dir)

    @contextmanager
    def _said_if_slow(self, message: str, after_s: float = 0.5) -> Iterator[None]:
        """Say ``message`` if what runs inside is still running after ``after_s``: a tiny
        preset's first use builds its models for seconds, its later uses take milliseconds
        and should not print a line in front of every error."""
        context = contextvars.copy_context()  # the listeners of this request, not another's
        timer = threading.Timer(after_s, context.run, args=(self._say, message))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    @property
    def profile(self) -> FamilyProfile:
        """The text-to-image model's family profile (:mod:`arpo.tools.families`), decided
        without importing torch: a backend handed in says its own (it renders by it);
        else ``ARPO_FAMILY`` names one, or the renderer builder detects it from the model
        (a diffusers model's ``model_index.json``: a local folder or the Hugging Face cache;
        ``unknown`` when neither holds it yet); then the preset's ``family_overrides`` and
        ``ARPO_FAMILY_OVERRIDES`` replace values. Final once the backend is loaded."""
        given = self._given.get("backend")
        own = getattr(given, "profile", None) if given is not None else None
        if own is not None:
            return own
        if self._profile is not None:
            return self._profile
        profile, final = self._choose_profile(download=False)
        if final:
            self._profile = profile
        return profile

    def _choose_profile(self, *, download: bool) -> tuple[FamilyProfile, bool]:
        """The profile from the settings and the model, and whether it is final (read from
        the model, or forced by ARPO_FAMILY) rather than a stand-in."""
        from arpo.tools.families import UNKNOWN, profile_named, profiles

        settings = self.settings
        if settings.family:
            profile, final = profile_named(settings.family), True
        else:
            builder, ref = self.renderer_choice()
            detected = builder.family(ref, download=download)
            profile, final = (detected, True) if detected else (profiles()[UNKNOWN], False)
        preset = self.preset
        if preset and preset.family_overrides:
            profile = profile.with_overrides(preset.family_overrides)
        if settings.family_overrides:
            profile = profile.with_overrides(settings.family_overrides)
        return profile, final

    def option_defaults_for(
        self,
        reference_size: tuple[int, int] | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
    ) -> dict[str, Any]:
        """Run-option defaults that suit the models: the family's steps and guidance, its
        native area at the reference's aspect ratio (:func:`~arpo.tools.families.size_for`;
        the native square without a reference), under the preset's ``option_defaults`` (a
        size there is fixed). With one of ``width``/``height`` given (the user's), the other
        follows the reference's aspect ratio. The caller's options go over these."""
        from arpo.tools.families import size_for

        profile = self.profile
        preset = dict(self.preset.option_defaults) if self.preset else {}
        preset_width, preset_height = preset.pop("width", None), preset.pop("height", None)
        if width is None and height is None:  # a preset's fixed size, if it has one
            width, height = preset_width, preset_height
        size = size_for(profile, reference_size, width=width, height=height)
        defaults: dict[str, Any] = {
            "steps": profile.steps,
            "guidance": profile.guidance,
            "width": size[0],
            "height": size[1],
        }
        return {**defaults, **preset}

    @property
    def option_defaults(self) -> dict[str, Any]:
        """:meth:`option_defaults_for` without a reference: the family's native square."""
        return self.option_defaults_for()

    def check_render_params(self, params: Any) -> None:
        """Refuse, before any render, what the model cannot render: sizes off the family's
        multiple, a negative prompt it would ignore, an argument its pipeline does not take
        (the backend's own check, when it is loaded and has one)."""
        from arpo.tools.families import check_render_options

        backend = self._given.get("backend")
        check = getattr(backend, "check_params", None) if backend is not None else None
        if check is not None:
            check(params)
            return
        check_render_options(
            self.profile,
            width=params.width,
            height=params.height,
            negative_prompt=params.negative_prompt,
        )

    @property
    def store(self) -> ArtifactStore:
        from arpo.tools.store import ArtifactStore

        return self._get("store", lambda: ArtifactStore(self.settings.store_dir))

    def renderer_choice(self) -> tuple[RendererBuilder, str]:
        """The registered builder of the text-to-image backend, and the reference it loads."""
        from dataclasses import replace

        from arpo.tools import registry

        preset = self.preset
        hosted = self.hosted_t2i
        if preset:
            builder = registry.renderer_builder(preset.renderer, provider=preset.provider)
            if hosted:  # the endpoint renders the preset's world: its family holds
                images = registry.renderer_builder("openai-images")
                return replace(images, profile=builder.profile), self.settings.t2i_model
            return builder, preset.t2i_model
        if hosted:
            return registry.renderer_builder("openai-images"), self.settings.t2i_model
        return registry.renderer_builder("diffusers"), self.settings.t2i_model

    @property
    def hosted_t2i(self) -> bool:
        """Whether ARPO_T2I_MODEL names an images-API model (``openai-images:MODEL``): it
        renders then, with a preset too (which still gives CLIP, vocabulary and sizes)."""
        return self.settings.t2i_model.startswith("openai-images:")

    @property
    def renders_reproducible(self) -> bool:
        """Whether a render is the same again for the same seed (False for the images API,
        which takes no seed), without loading the backend."""
        given = self._given.get("backend")
        if given is not None:
            return bool(getattr(given, "seeded", True))
        return not self.hosted_t2i

    @property
    def backend(self) -> Renderer:
        """The raw text-to-image backend; the graph uses :attr:`renderer` (cached) instead."""

        def build() -> Renderer:
            builder, ref = self.renderer_choice()
            with self.loading(f"text-to-image model {self._label('t2i')}"):
                # now that the model is about to load, its family may be read from the hub too
                self._profile, _ = self._choose_profile(download=True)
                return builder.make(ref, self.settings, self._profile)

        return self._get("backend", build)

    @property
    def renderer(self) -> RenderCache:
        from arpo.tools.t2i import RenderCache

        return self._get("renderer", lambda: RenderCache(self.backend, self.store))

    @property
    def scorer(self) -> ClipScorer:
        def build() -> ClipScorer:
            with self.loading(f"CLIP {self._label('clip')}"):
                from arpo.tools.clip import ClipScorer

                model, pretrained = self.clip_choice()
                return ClipScorer.from_pretrained(
                    model, pretrained, device=self.settings.device, dtype=self.settings.clip_dtype
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
    def caption_model(self) -> str | None:
        """The captioner a run uses, by name: one handed in, else ARPO_CAPTION_MODEL, else the
        preset's (the demo preset ships one); ``none`` in the setting turns a preset's off."""
        given = self._given.get("captioner")
        if given is not None:
            return str(given.name)
        ref = self.settings.caption_model
        if ref is None and self.preset is not None:
            ref = self.preset.caption_model
        return None if ref in (None, "none") else ref

    @property
    def captioner_configured(self) -> bool:
        """Whether a captioner is handed in or named (:attr:`caption_model`), without loading
        it."""
        return self.caption_model is not None

    @property
    def captioner(self) -> Captioner | None:
        """The local image-to-text model for first prompts, or None when none is configured."""
        ref = self.caption_model
        if ref is None:
            return None

        def build() -> Captioner:
            with self.loading(f"captioner {self._captioner_label(ref)}"):
                from arpo.tools.captioner import Captioner

                settings = self.settings
                return Captioner.from_pretrained(
                    ref,
                    device=settings.device,
                    dtype=settings.caption_dtype,
                    prompt=settings.caption_prompt,
                    max_new_tokens=settings.caption_max_new_tokens,
                )

        return self._get("captioner", build)

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

        def build() -> PhraseRanker:
            if hasattr(self.scorer, "remember_texts"):  # a real scorer: from the disk cache
                self.embed_vocabulary()  # the ranker scores every phrase anyway
            return PhraseRanker(self.scorer, self.vocabulary)

        return self._get("phrase_ranker", build)

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

    def clip_choice(self) -> tuple[str, str | None]:
        """The CLIP model and pretrained tag the scorer loads (the preset's, else settings')."""
        if self.preset:
            return self.preset.clip_model, self.preset.clip_pretrained
        return self.settings.clip_model, self.settings.clip_pretrained

    def load_models(self, on_progress: LoadListener | None = None) -> None:
        """Load the renderer and scorer (and the captioner, when one is configured) now,
        checking cheap things first, so a missing model fails in about a second, before any
        run is recorded.

        ``on_progress`` hears what is being done, in words ("loading CLIP ViT-L-14"), as the
        listeners do (:meth:`listen`): the MCP server relays it to requests that wait for the
        models."""
        with self._listening(on_progress):
            if self.settings.preset != "none" and "preset" not in self.__dict__:
                self._say(f"preparing the {self.settings.preset} preset")
            need_backend = self._given.get("backend") is None
            need_scorer = self._given.get("scorer") is None
            need_captioner = self._given.get("captioner") is None and self.captioner_configured
            if need_backend or need_scorer or need_captioner:
                self._say("checking the model files")
            if need_backend:
                builder, ref = self.renderer_choice()
                builder.check(ref)
            if need_scorer:
                from arpo.tools.clip import check_clip_ref

                check_clip_ref(*self.clip_choice())
            if need_captioner:
                from arpo.tools.captioner import check_captioner_ref

                check_captioner_ref(self.caption_model or "")
            self.scorer  # noqa: B018
            self.backend  # noqa: B018
            if need_captioner:
                self.captioner  # noqa: B018

    @contextmanager
    def _listening(self, listener: LoadListener | None) -> Iterator[None]:
        """:meth:`listen` for one call's optional ``on_progress``."""
        if listener is None:
            yield
            return
        with self.listen(listener):
            yield

    def embed_vocabulary(self, on_progress: LoadListener | None = None) -> None:
        """Embed every phrase of the vocabulary now (the scorer caches them by text), so the
        first interrogation or offline step does not pay for it; from the embeddings an
        earlier process stored under ARPO_HOME/cache when they still match the model
        (:class:`~arpo.tools.text_cache.TextEmbeddingCache`). Once per toolbox."""
        if self._vocabulary_embedded:
            return
        with self._listening(on_progress):
            self._embed_vocabulary()
        self._vocabulary_embedded = True

    def _embed_vocabulary(self) -> None:
        from arpo.tools.text_cache import TextEmbeddingCache

        say = self._say
        scorer = self.scorer
        phrases = list(
            dict.fromkeys(p for group in self.vocabulary.categories.values() for p in group)
        )
        stored = TextEmbeddingCache(self.settings.home / "cache" / "text-embeddings")
        real = hasattr(scorer, "remember_texts")  # stand-in scorers keep no such cache
        if real and stored.load(scorer, phrases):
            say(f"phrase vocabulary: {len(phrases)} embeddings from the cache")
        else:
            chunk = 256
            for start in range(0, len(phrases), chunk):
                say(f"embedding the phrase vocabulary ({start}/{len(phrases)} phrases)")
                scorer.encode_texts(phrases[start : start + chunk])
            if real:
                stored.save(scorer, phrases)

    def describe_family(self) -> dict[str, Any]:
        """The family profile a run renders by, as its record and report show it
        (:meth:`~arpo.tools.families.FamilyProfile.describe`), with the dtype the loaded
        backend renders in and the settings that shaped the profile."""
        described = dict(self.profile.describe())
        backend = self._given.get("backend")
        dtype = getattr(backend, "dtype", None) if backend is not None else None
        if dtype:
            described["dtype"] = str(dtype)
        if self.settings.family:
            described["forced_by"] = "ARPO_FAMILY"
        if self.settings.family_overrides:
            described["overrides"] = dict(self.settings.family_overrides)
        if not self.renders_reproducible:
            described["reproducible"] = False  # no seeds: a render is one sample of many
        return described

    def describe_models(self) -> dict[str, str | None]:
        """Model names (and the family's) for reports, without loading anything."""
        settings = self.settings
        given_backend = self._given.get("backend")
        given_scorer = self._given.get("scorer")
        preset_t2i = self.preset is not None and not self.hosted_t2i
        t2i = (
            given_backend.name
            if given_backend
            else (self.preset.t2i_model if self.preset and preset_t2i else settings.t2i_model)
        )
        if given_scorer:
            clip = given_scorer.name
        elif self.preset:
            clip = self.preset.clip_model
        else:
            clip = f"{settings.clip_model}/{settings.clip_pretrained}"
        chat = self._given.get("chat")
        llm = chat.name if chat else (settings.llm_model if settings.llm_configured else None)
        return {
            "t2i": t2i,
            "clip": clip,
            "llm": llm,
            "captioner": self.caption_model,
            "family": self.profile.name,
        }

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
            if self.hosted_t2i:
                t2i = settings.t2i_model
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


def short_model_name(name: str | None, *, kind: str, preset: bool) -> str:
    """A model's name for a progress line: "stable-diffusion-v1-5" for that hub id, a folder's
    own name for a local model, "ViT-L-14" for ``ViT-L-14/openai``; a preset's models keep
    their names ("tiny/t2i")."""
    text = name or "?"
    if preset:
        return text
    if text.startswith("hf-hub:"):
        return text.removeprefix("hf-hub:").rstrip("/").split("/")[-1]
    if text.startswith("local-dir:") or (kind == "t2i" and looks_like_path(text)):
        return Path(text.removeprefix("local-dir:")).expanduser().name or text
    if kind == "clip":
        return text.split("/")[0]  # architecture/pretrained tag
    return text.split("/")[-1]  # owner/name hub id


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
