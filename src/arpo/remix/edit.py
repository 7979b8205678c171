"""Editing and fusing decomposed prompts without an LLM."""

from __future__ import annotations

import re
from collections.abc import Mapping

from arpo.remix.decompose import component_of
from arpo.remix.parts import CONTENT_COMPONENTS, STYLE_COMPONENTS, PromptParts
from arpo.tools.vocabulary import Vocabulary, split_phrases

__all__ = ["apply_instruction_offline", "fuse_parts"]

_LEAD = re.compile(
    r"^(?:please\s+)?(?:(?:make|turn|change|render|redo|draw|paint|show)\s+"
    r"(?:it|this|the\s+(?:image|picture|scene|prompt))\s+)?"
    r"(?:into|to|as|look\s+like|like|in|at)?\s*",
    re.IGNORECASE,
)
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+|\s+with\s+", re.IGNORECASE)


def apply_instruction_offline(
    parts: PromptParts,
    instruction: str,
    vocabulary: Vocabulary,
    overrides: Mapping[str, str] | None = None,
) -> tuple[PromptParts, list[str]]:
    """Apply a free-text instruction by replacement: each phrase of the instruction that the
    vocabulary files under a component (e.g. "watercolor painting" -> medium) replaces that
    component, written as the vocabulary writes it (another spelling, "watercolor" for its
    "watercolour", still finds it); other phrases are added to the content. Returns the parts
    and notes saying what was done."""
    text = _LEAD.sub("", instruction.strip(), count=1) or instruction.strip()
    replaced: dict[str, list[str]] = {}
    added: list[str] = []
    respelled: list[str] = []
    notes = []
    for phrase in (p.strip() for chunk in split_phrases(text) for p in _AND.split(chunk)):
        if not phrase:
            continue
        component = component_of(phrase, vocabulary, overrides)
        bare = _ARTICLE.sub("", phrase)
        if component == "content" and bare != phrase:
            component = component_of(bare, vocabulary, overrides)
            phrase = bare if component != "content" else phrase
        if component == "content":
            added.append(phrase)
            continue
        spelled = vocabulary.spelled(phrase) or phrase
        if spelled.casefold() != phrase.casefold():
            respelled.append(f"'{phrase}' as '{spelled}'")
        replaced.setdefault(component, []).append(spelled)
    for component, phrases in replaced.items():
        notes.append(f"{component} replaced by: {', '.join(phrases)}")
    if respelled:
        notes.append(f"written as the vocabulary spells it: {', '.join(respelled)}")
    if added:
        notes.append(f"added to content (the vocabulary does not place it): {', '.join(added)}")
    changed = parts.with_changes({c: list(p) for c, p in replaced.items()})
    if added:
        changed = changed.model_copy(update={"content": [*changed.content, *added]})
    return changed, notes


def fuse_parts(content_from: PromptParts, style_from: PromptParts) -> PromptParts:
    """Content, setting, composition and detail of one; medium, style, lighting and palette
    of the other. Negative prompts are combined."""
    fused = content_from.mix(style_from, STYLE_COMPONENTS)
    negatives = split_phrases(content_from.negative) + split_phrases(style_from.negative)
    fused = fused.model_copy(update={"negative": ", ".join(dict.fromkeys(negatives))})
    assert all(getattr(fused, c) == getattr(content_from, c) for c in CONTENT_COMPONENTS)
    return fused
