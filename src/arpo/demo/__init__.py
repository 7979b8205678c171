"""The demo world: a small, fully offline world where every part is real.

Prompts describe scenes of simple shapes (:mod:`arpo.demo.world` holds the words),
:func:`parse_prompt` reads them out of any text, :class:`DemoRenderer` draws them procedurally,
and :func:`sample_scene` / :func:`caption` make scenes whose true prompts are known.
"""

from __future__ import annotations

from arpo.demo.parse import PartialObject, PartialScene, parse_prompt
from arpo.demo.render import DEMO_RENDER_PARAMS, DemoRenderer, draw_scene, render_prompt
from arpo.demo.scenes import (
    AttributeScore,
    Scene,
    SceneObject,
    attribute_hits,
    attribute_recall,
    attribute_score,
    attributes,
    canonical_prompt,
    caption,
    complete_scene,
    sample_scene,
    scene_from_partial,
)
from arpo.demo.vocabulary_build import (
    demo_vocabulary_dir,
    demo_vocabulary_phrases,
    write_demo_vocabulary,
)
from arpo.demo.world import Background

__all__ = [
    "DEMO_RENDER_PARAMS",
    "AttributeScore",
    "Background",
    "DemoRenderer",
    "PartialObject",
    "PartialScene",
    "Scene",
    "SceneObject",
    "attribute_hits",
    "attribute_recall",
    "attribute_score",
    "attributes",
    "canonical_prompt",
    "caption",
    "complete_scene",
    "demo_vocabulary_dir",
    "demo_vocabulary_phrases",
    "draw_scene",
    "parse_prompt",
    "render_prompt",
    "sample_scene",
    "scene_from_partial",
    "write_demo_vocabulary",
]
