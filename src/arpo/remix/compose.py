"""Writing components back as a prompt the target model reads well.

CLIP-encoder models (Stable Diffusion 1.x/2.x, SDXL) get comma-separated phrases within 75
tokens: phrases are cut, least important component first, until the prompt fits, and the cut
phrases are reported. Models with long text encoders (T5: SD3, Flux, PixArt...) get sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from arpo.errors import InvalidOptionError
from arpo.remix.parts import PromptParts
from arpo.tools.tokens import CLIP_PROMPT_TOKENS, clip_token_count

__all__ = ["CUT_ORDER", "Composed", "PromptTarget", "compose", "target_for_model"]

PromptForm = Literal["tags", "sentences"]
# Which component loses a phrase first when a prompt is too long.
CUT_ORDER: tuple[str, ...] = (
    "detail",
    "palette",
    "composition",
    "lighting",
    "setting",
    "style",
    "medium",
    "content",
)
_LONG_TEXT_MODELS = ("flux", "stable-diffusion-3", "sd3", "pixart", "sana", "hunyuan", "lumina")


@dataclass(frozen=True)
class PromptTarget:
    """How the target model wants its prompt: ``max_tokens`` None means no limit to enforce."""

    form: PromptForm = "tags"
    max_tokens: int | None = CLIP_PROMPT_TOKENS


def target_for_model(model_name: str) -> PromptTarget:
    """Long text encoders (by model name) get sentences; everything else CLIP-sized tags."""
    lowered = model_name.lower()
    if any(marker in lowered for marker in _LONG_TEXT_MODELS):
        return PromptTarget(form="sentences", max_tokens=None)
    return PromptTarget()


@dataclass(frozen=True)
class Composed:
    prompt: str
    negative_prompt: str
    tokens: int | None = None  # CLIP tokens of ``prompt`` when a limit applies
    max_tokens: int | None = None
    cut: list[str] = field(default_factory=list)  # phrases left out to fit max_tokens

    @property
    def over_limit(self) -> bool:
        """Still too long after cutting (one phrase alone exceeds the limit)."""
        return self.max_tokens is not None and (self.tokens or 0) > self.max_tokens


def compose(
    parts: PromptParts,
    target: PromptTarget | None = None,
    *,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> Composed:
    """``parts`` as one prompt for ``target`` (default: CLIP-sized comma-separated tags)."""
    target = target or PromptTarget()
    kept = list(parts.items())
    if not kept:
        raise InvalidOptionError(
            "nothing to compose: every prompt component is empty; give at least a content phrase."
        )
    write = _tags if target.form == "tags" else _sentences
    text, cut = write(kept), []
    if target.max_tokens is None:
        return Composed(text, parts.negative)
    tokens = count_tokens(text)
    while tokens > target.max_tokens and len(kept) > 1:
        cut.insert(0, kept.pop(_next_cut(kept))[1])
        text = write(kept)
        tokens = count_tokens(text)
    return Composed(text, parts.negative, tokens, target.max_tokens, cut)


def _next_cut(kept: list[tuple[str, str]]) -> int:
    """Index of the last phrase of the least important component still present."""
    present = {component for component, _ in kept}
    victim = next(c for c in CUT_ORDER if c in present)
    return max(i for i, (component, _) in enumerate(kept) if component == victim)


def _tags(kept: list[tuple[str, str]]) -> str:
    return ", ".join(phrase for _, phrase in kept)


_SENTENCES: tuple[tuple[str, ...], ...] = (
    ("content", "setting", "composition"),
    ("medium", "style"),
    ("lighting", "palette"),
    ("detail",),
)


def _sentences(kept: list[tuple[str, str]]) -> str:
    """One sentence per group of components: what and where, how made, light and colour,
    finish."""
    sentences = []
    for group in _SENTENCES:
        phrases = [phrase for component, phrase in kept if component in group]
        if phrases:
            sentence = ", ".join(phrases).rstrip(".")
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(sentences)
