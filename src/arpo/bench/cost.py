"""What a method spends: wall time by stage (render, score, LLM, other), real renders (cache
hits apart), LLM calls and tokens.

A method runs on a *metered* Toolbox whose renderer, CLIP scorer and chat model are thin
wrappers that time every call into the shared models; nothing in the method has to cooperate.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from arpo.tools.t2i import RenderParams
    from arpo.tools.toolbox import Toolbox

STAGES = ("render", "score", "llm")


@dataclass
class StageMeter:
    """Seconds per stage (outermost call only, so nested calls are not counted twice),
    the images the backend really rendered (in order), and LLM calls and tokens."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    rendered: list[Image.Image] = field(default_factory=list)
    llm_calls: int = 0
    llm_tokens: int = 0
    cost_usd: float | None = None  # the renders' price (images API); None: not priced
    _depth: int = 0

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds[name] += time.perf_counter() - start

    @property
    def renders(self) -> int:
        return len(self.rendered)


class MeteredRenderer:
    """A T2I backend wrapper: times renders and keeps the images it really rendered.

    Its ``cache_id`` is unique per wrapper, so the render cache never serves one method a
    render another method (or an interrupted attempt) paid for: budgets stay comparable.
    """

    def __init__(self, backend: Any, meter: StageMeter) -> None:
        self.backend = backend
        self.meter = meter
        self.name = backend.name
        base = getattr(backend, "cache_id", backend.name)
        self.cache_id = f"{base}|bench:{uuid.uuid4().hex}"
        # the family it renders by, and its check of render options, as the backend's
        self.profile = getattr(backend, "profile", None)
        if hasattr(backend, "check_params"):
            self.check_params = backend.check_params
        self.seeded = getattr(backend, "seeded", True)
        self.price_per_image = getattr(backend, "price_per_image", lambda params: None)

    def render(
        self, prompts: Sequence[str], seeds: Sequence[int], params: RenderParams
    ) -> list[Image.Image]:
        with self.meter.stage("render"):
            images = self.backend.render(prompts, seeds, params)
        self.meter.rendered.extend(images)
        price = self.price_per_image(params)
        if price is not None:
            self.meter.cost_usd = (self.meter.cost_usd or 0.0) + price * len(images)
        return images


class MeteredScorer:
    """A ClipScorer wrapper timing its public calls as the ``score`` stage."""

    _TIMED = frozenset(
        {"encode_texts", "encode_images", "encode_stored", "text_similarity", "image_similarity"}
    )

    def __init__(self, scorer: Any, meter: StageMeter) -> None:
        self._scorer = scorer
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._scorer, name)
        if name not in self._TIMED:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._meter.stage("score"):
                return value(*args, **kwargs)

        return timed


class MeteredChat:
    """A StructuredChat wrapper: times ``ask`` as the ``llm`` stage, counts calls (retries
    included) and the tokens the endpoint reports."""

    def __init__(self, chat: Any, meter: StageMeter) -> None:
        self._chat = chat
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chat, name)

    def ask(self, schema: Any, messages: Sequence[Any]) -> Any:
        from langchain_core.callbacks import get_usage_metadata_callback

        calls_before = self._chat.calls
        with self._meter.stage("llm"), get_usage_metadata_callback() as usage:
            try:
                return self._chat.ask(schema, messages)
            finally:
                self._meter.llm_calls += self._chat.calls - calls_before
                self._meter.llm_tokens += sum(
                    int(u.get("total_tokens", 0)) for u in usage.usage_metadata.values()
                )


def metered_toolbox(base: Toolbox, meter: StageMeter) -> Toolbox:
    """A Toolbox sharing ``base``'s loaded models, store and settings, metered by ``meter``."""
    from arpo.tools.toolbox import Toolbox

    chat = base.chat
    return Toolbox(
        base.settings,
        renderer=MeteredRenderer(base.backend, meter),  # type: ignore[arg-type]
        scorer=MeteredScorer(base.scorer, meter),  # type: ignore[arg-type]
        chat=MeteredChat(chat, meter) if chat is not None else None,  # type: ignore[arg-type]
        captioner=base.captioner if base.captioner_configured else None,  # loaded once
        vocabulary=base.vocabulary,
        store=base.store,
    )
