"""Prompt remixing: a prompt as content and style components, edited, fused and recomposed.

Plain functions over :class:`PromptParts`; :mod:`arpo.api` adds models, renders and records.
"""

from __future__ import annotations

from arpo.remix.compose import Composed, Fitted, PromptTarget, compose, fit_prompt, target_for
from arpo.remix.decompose import CATEGORY_COMPONENTS, decompose_offline
from arpo.remix.edit import apply_instruction_offline, fuse_parts
from arpo.remix.parts import (
    COMPONENTS,
    CONTENT_COMPONENTS,
    STYLE_COMPONENTS,
    PromptParts,
    check_component,
)

__all__ = [
    "CATEGORY_COMPONENTS",
    "COMPONENTS",
    "CONTENT_COMPONENTS",
    "STYLE_COMPONENTS",
    "Composed",
    "Fitted",
    "PromptParts",
    "PromptTarget",
    "apply_instruction_offline",
    "check_component",
    "compose",
    "decompose_offline",
    "fit_prompt",
    "fuse_parts",
    "target_for",
]
