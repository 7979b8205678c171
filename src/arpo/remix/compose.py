"""Writing components back as a prompt the target model reads well, and cutting prompts to
what the model reads.

The target follows the model's family (:func:`target_for`, from its
:class:`~arpo.tools.tokens.TokenBudget`): CLIP-encoder models (Stable Diffusion 1.x/2.x, SDXL)
get comma-separated phrases within 75 CLIP tokens; models with long text encoders (T5: SD3,
Flux, PixArt...) get sentences within their T5 limit. A prompt over its limit loses whole
phrases, least important component first (:data:`CUT_ORDER`), and the cut phrases are
reported: :func:`compose` does so for components, :func:`fit_prompt` for a finished prompt (the
loop's candidates), keeping the order of what stays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from arpo.errors import InvalidOptionError
from arpo.remix.parts import PromptParts
from arpo.tools.tokens import CLIP_PROMPT_TOKENS, TokenBudget, clip_token_count

__all__ = [
    "CUT_ORDER",
    "Composed",
    "Fitted",
    "PromptTarget",
    "compose",
    "cut_to_fit",
    "fit_prompt",
    "target_for",
]

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


@dataclass(frozen=True)
class PromptTarget:
    """How the target model wants its prompt: ``form``, and at most ``max_tokens`` tokens as
    ``count_tokens`` counts them (None: no limit to enforce)."""

    form: PromptForm = "tags"
    max_tokens: int | None = CLIP_PROMPT_TOKENS
    count_tokens: Callable[[str], int] = field(default=clip_token_count, compare=False)


def target_for(budget: TokenBudget) -> PromptTarget:
    """The prompt a family's model reads well: its style, within what its longest-reading
    text encoder reads, counted in that encoder's tokens."""
    return PromptTarget(form=budget.style, max_tokens=budget.max_tokens, count_tokens=budget.count)


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
    count_tokens: Callable[[str], int] | None = None,
) -> Composed:
    """``parts`` as one prompt for ``target`` (default: CLIP-sized comma-separated tags);
    ``count_tokens`` overrides the target's counter."""
    target = target or PromptTarget()
    kept = list(parts.items())
    if not kept:
        raise InvalidOptionError(
            "nothing to compose: every prompt component is empty; give at least a content phrase."
        )
    write = _tags if target.form == "tags" else _sentences
    if target.max_tokens is None:
        return Composed(write(kept), parts.negative)
    kept, cut, text, tokens = cut_to_fit(
        kept, write, count_tokens or target.count_tokens, target.max_tokens
    )
    return Composed(text, parts.negative, tokens, target.max_tokens, cut)


Item = TypeVar("Item", bound=tuple[str, ...])


def cut_to_fit(
    kept: Sequence[Item],
    write: Callable[[list[Item]], str],
    count_tokens: Callable[[str], int],
    max_tokens: int,
) -> tuple[list[Item], list[str], str, int]:
    """Drop items ``(component, phrase, ...)`` until ``write(items)`` is within ``max_tokens``:
    the last phrase of the least important component present first (:data:`CUT_ORDER`), never
    the last item. Returns the items kept, the phrases cut (in prompt order), the text and its
    token count (still over the limit when one phrase alone is)."""
    kept = list(kept)
    cut: list[str] = []
    text = write(kept)
    tokens = count_tokens(text)
    while tokens > max_tokens and len(kept) > 1:
        cut.insert(0, kept.pop(_next_cut(kept))[1])
        text = write(kept)
        tokens = count_tokens(text)
    return kept, cut, text, tokens


def _next_cut(kept: Sequence[tuple[str, ...]]) -> int:
    """Index of the last phrase of the least important component still present."""
    present = {item[0] for item in kept}
    victim = next((c for c in CUT_ORDER if c in present), None)
    if victim is None:  # components outside CUT_ORDER: the last phrase goes first
        return len(kept) - 1
    return max(i for i, item in enumerate(kept) if item[0] == victim)


@dataclass(frozen=True)
class Fitted:
    """A prompt cut to what the model reads: ``cut`` lists what was left out (phrases, or the
    words cut off the end of a phrase too long alone), empty when it fitted as it was."""

    prompt: str
    tokens: int
    max_tokens: int
    cut: list[str] = field(default_factory=list)


# phrase separators inside a sentence, and sentence ends
_PHRASE = re.compile(r"[,;\n\r]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def fit_prompt(
    prompt: str,
    max_tokens: int,
    *,
    count_tokens: Callable[[str], int],
    component_of: Callable[[str], str],
) -> Fitted:
    """``prompt`` as the model reads it: unchanged when within ``max_tokens``, else cut at
    phrase boundaries by :func:`cut_to_fit` (each phrase filed under ``component_of(phrase)``),
    the order of the phrases kept and each sentence keeping its end; if one phrase alone is
    still over, words are cut from its end. What is returned always fits (bar a single word
    longer than the limit)."""
    prompt = prompt.strip()
    tokens = count_tokens(prompt)
    if tokens <= max_tokens:
        return Fitted(prompt, tokens, max_tokens)
    items = [
        (component_of(phrase), phrase, str(sentence), end)
        for sentence, (text, end) in enumerate(_sentences_of(prompt))
        for phrase in _phrases_of(text)
    ]
    kept, cut, text, tokens = cut_to_fit(items, _punctuated, count_tokens, max_tokens)
    if tokens > max_tokens and kept:
        words = text.split()
        dropped: list[str] = []
        while len(words) > 1 and count_tokens(" ".join(words)) > max_tokens:
            dropped.insert(0, words.pop())
        text = " ".join(words).rstrip(",;")
        tokens = count_tokens(text)
        cut.append(" ".join(dropped))
    return Fitted(text, tokens, max_tokens, cut)


def _sentences_of(prompt: str) -> list[tuple[str, str]]:
    """Each sentence without its end mark, and the mark ("." or "" where there is none)."""
    found = []
    for sentence in _SENTENCE.split(prompt):
        sentence = sentence.strip()
        end = sentence[-1] if sentence and sentence[-1] in ".!?" else ""
        found.append((sentence[: len(sentence) - len(end)], end))
    return found


def _phrases_of(sentence: str) -> list[str]:
    return [phrase.strip() for phrase in _PHRASE.split(sentence) if phrase.strip()]


def _punctuated(kept: list[tuple[str, str, str, str]]) -> str:
    """Phrases joined with commas within their sentence, each sentence with its end mark."""
    sentences: dict[str, tuple[list[str], str]] = {}
    for _, phrase, sentence, end in kept:
        sentences.setdefault(sentence, ([], end))[0].append(phrase)
    return " ".join(", ".join(phrases) + end for phrases, end in sentences.values())


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
