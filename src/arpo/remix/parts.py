"""A prompt as named components: what is in the picture apart from how it is made.

:class:`PromptParts` is also the schema the LLM fills (structured output), so its field
descriptions are written for the model as much as for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from pydantic import BaseModel, Field

from arpo.errors import InvalidOptionError
from arpo.tools.vocabulary import split_phrases

__all__ = [
    "COMPONENTS",
    "COMPONENT_ALIASES",
    "CONTENT_COMPONENTS",
    "STYLE_COMPONENTS",
    "PromptParts",
    "alias_notes",
    "check_component",
]

# Order is the order a composed prompt states them in (subject first, quality last).
COMPONENTS: tuple[str, ...] = (
    "content",
    "setting",
    "composition",
    "medium",
    "style",
    "lighting",
    "palette",
    "detail",
)
STYLE_COMPONENTS: tuple[str, ...] = ("medium", "style", "lighting", "palette")
CONTENT_COMPONENTS: tuple[str, ...] = tuple(c for c in COMPONENTS if c not in STYLE_COMPONENTS)
NEGATIVE = "negative"

_Phrases = list[str]


class PromptParts(BaseModel):
    """A text-to-image prompt split into components; each is a list of short phrases."""

    content: _Phrases = Field(
        default_factory=list,
        description="What is in the picture: subjects, objects, their attributes and actions.",
    )
    setting: _Phrases = Field(
        default_factory=list, description="Where and when: place, background, time of day."
    )
    composition: _Phrases = Field(
        default_factory=list, description="Framing and camera: shot size, angle, lens, layout."
    )
    medium: _Phrases = Field(
        default_factory=list,
        description="What it is made as: photo, oil painting, watercolour, 3d render, sketch.",
    )
    style: _Phrases = Field(
        default_factory=list, description="Art style or movement: ukiyo-e, art nouveau, anime."
    )
    lighting: _Phrases = Field(
        default_factory=list, description="Light: golden hour, studio lighting, moonlight."
    )
    palette: _Phrases = Field(
        default_factory=list, description="Colour palette: pastel colours, muted tones."
    )
    detail: _Phrases = Field(
        default_factory=list, description="Quality and detail modifiers: highly detailed, 8k."
    )
    negative: str = Field(default="", description="Negative prompt: what must not appear.")

    def phrases(self, components: tuple[str, ...] = COMPONENTS) -> list[str]:
        """Every phrase of ``components``, in component order."""
        return [phrase for _, phrase in self.items(components)]

    def items(self, components: tuple[str, ...] = COMPONENTS) -> Iterator[tuple[str, str]]:
        """(component, phrase) pairs in component order."""
        for component in components:
            for phrase in getattr(self, component):
                yield component, phrase

    def is_empty(self) -> bool:
        return not self.phrases()

    def with_changes(self, changes: Mapping[str, str | list[str] | None]) -> PromptParts:
        """A copy with whole components replaced. A string is split at commas into phrases;
        an empty string (or None) clears the component; ``negative`` replaces the negative
        prompt."""
        update: dict[str, object] = {}
        for name, value in changes.items():
            component = check_component(name, allow_negative=True)
            if component == NEGATIVE:
                update[NEGATIVE] = (
                    ", ".join(value) if isinstance(value, list) else (value or "")
                ).strip()
            elif isinstance(value, list):
                update[component] = [p.strip() for p in value if p.strip()]
            else:
                update[component] = split_phrases(value or "")
        return self.model_copy(update=update)

    def mix(self, other: PromptParts, take: tuple[str, ...]) -> PromptParts:
        """A copy whose ``take`` components come from ``other``."""
        return self.model_copy(update={c: list(getattr(other, c)) for c in take})

    def as_dict(self) -> dict[str, list[str] | str]:
        return self.model_dump()


#: Other names people give components: ``--set colour=...`` sets the palette.
COMPONENT_ALIASES: Mapping[str, str] = {
    "colour": "palette",
    "color": "palette",
    "colours": "palette",
    "colors": "palette",
    "subject": "content",
}


def alias_notes(names: Iterable[str]) -> list[str]:
    """A note for each of ``names`` that is another name for a component, saying which one
    it set ("'colour' set the palette component"), so nobody wonders where it went."""
    notes = []
    for name in names:
        component = check_component(name, allow_negative=True)
        if name.strip().lower().replace(" ", "_") != component:
            notes.append(f"'{name.strip()}' went to the {component} component (arpo's name for it)")
    return notes


def check_component(name: str, *, allow_negative: bool = False) -> str:
    """``name`` as a component name (case, spaces and :data:`COMPONENT_ALIASES` forgiven), or
    a clear error."""
    key = name.strip().lower().replace(" ", "_")
    key = COMPONENT_ALIASES.get(key, key)
    if key in COMPONENTS or (allow_negative and key == NEGATIVE):
        return key
    known = ", ".join((*COMPONENTS, NEGATIVE) if allow_negative else COMPONENTS)
    raise InvalidOptionError(f"unknown prompt component '{name}'; use one of: {known}.")
