"""Offline decomposition: each phrase of a prompt goes to the component its vocabulary
category names; phrases the vocabulary does not know are content (or setting, when they read
like a place: "in a misty forest")."""

from __future__ import annotations

import re
from collections.abc import Mapping

from arpo.errors import InvalidOptionError
from arpo.remix.parts import COMPONENTS, PromptParts
from arpo.tools.vocabulary import Vocabulary, split_phrases

__all__ = ["CATEGORY_COMPONENTS", "component_of", "decompose_offline", "require_prompt"]

# Vocabulary category -> prompt component. The packaged vocabulary's categories, then the demo
# world's (its subjects carry their colours, sizes and fills).
CATEGORY_COMPONENTS: Mapping[str, str] = {
    "subject": "content",
    "medium": "medium",
    "style": "style",
    "lighting": "lighting",
    "colour": "palette",
    "composition": "composition",
    "detail": "detail",
    "background": "setting",
    "position": "content",
    "size": "content",
    "fill": "content",
}

_PLACE = re.compile(
    r"^(in|on|at|under|inside|beneath|above|over|near|by|beside|among|amid|through|across)\s"
)
_STYLE_WRAPPER = re.compile(r"^(in the style of|in the manner of)\s|\sstyle$")


def require_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise InvalidOptionError("the prompt is empty; give the prompt text to work on.")
    return prompt.strip()


def component_of(
    phrase: str, vocabulary: Vocabulary, overrides: Mapping[str, str] | None = None
) -> str:
    """The component ``phrase`` belongs to."""
    category = vocabulary.category_of(phrase)
    if category is not None:
        mapping = {**CATEGORY_COMPONENTS, **(overrides or {})}
        component = mapping.get(category, "content")
        return component if component in COMPONENTS else "content"
    lowered = phrase.strip().lower()
    if _STYLE_WRAPPER.search(lowered):
        return "style"
    if _PLACE.match(lowered):
        return "setting"
    return "content"


def decompose_offline(
    prompt: str,
    vocabulary: Vocabulary,
    *,
    negative_prompt: str = "",
    overrides: Mapping[str, str] | None = None,
) -> PromptParts:
    """Split ``prompt`` at commas and file each phrase under its component (order kept)."""
    groups: dict[str, list[str]] = {component: [] for component in COMPONENTS}
    for phrase in split_phrases(require_prompt(prompt)):
        groups[component_of(phrase, vocabulary, overrides)].append(phrase)
    return PromptParts(**groups, negative=negative_prompt.strip())
