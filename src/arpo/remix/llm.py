"""Decomposing and editing prompts with the LLM (structured output: :class:`PromptParts`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from arpo.remix.decompose import component_of
from arpo.remix.parts import PromptParts
from arpo.tools.vocabulary import Vocabulary, split_phrases

if TYPE_CHECKING:
    from arpo.tools.chat import StructuredChat

__all__ = ["DECOMPOSE", "EDIT", "decompose_with_llm", "edit_with_llm"]

DECOMPOSE = (
    "Split this text-to-image prompt into its components. Keep the prompt's own wording: "
    "put every comma-separated phrase of the prompt into exactly one component, and add "
    "nothing.\n\nPrompt: {prompt}"
)

EDIT = (
    "Here is a text-to-image prompt split into components (JSON):\n{parts}\n\n"
    "Apply this change: {instruction}\n\n"
    "Change only the components the change is about, so the rest of the picture stays the "
    "same; copy every other component exactly. Components are lists of short phrases."
)


def decompose_with_llm(
    prompt: str,
    chat: StructuredChat,
    vocabulary: Vocabulary,
    *,
    negative_prompt: str = "",
    overrides: Mapping[str, str] | None = None,
) -> PromptParts:
    """The LLM's decomposition; any phrase of ``prompt`` it dropped is put back offline, so
    composing the parts again keeps every phrase."""
    answer = chat.ask(PromptParts, [chat.user_message(DECOMPOSE.format(prompt=prompt))])
    parts = _clean(answer).model_copy(update={"negative": negative_prompt.strip()})
    seen = {phrase.casefold() for phrase in parts.phrases()}
    for phrase in split_phrases(prompt):
        if phrase.casefold() not in seen:
            component = component_of(phrase, vocabulary, overrides)
            parts = parts.model_copy(update={component: [*getattr(parts, component), phrase]})
    return parts


def edit_with_llm(parts: PromptParts, instruction: str, chat: StructuredChat) -> PromptParts:
    """The parts after the LLM applied ``instruction``."""
    text = EDIT.format(parts=parts.model_dump_json(indent=1), instruction=instruction)
    return _clean(chat.ask(PromptParts, [chat.user_message(text)]))


def _clean(parts: PromptParts) -> PromptParts:
    """Phrases stripped, empty ones dropped, phrases with commas split."""
    update = {
        component: [p for raw in getattr(parts, component) for p in split_phrases(raw)]
        for component in PromptParts.model_fields
        if component != "negative"
    }
    return parts.model_copy(update={**update, "negative": parts.negative.strip()})
