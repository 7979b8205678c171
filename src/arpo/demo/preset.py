"""The demo world's builders for the ``demo`` preset, registered by name on import.

``tools/presets/demo.json`` names this module as its ``provider``; the registry imports it
before looking up the preset's builders, so nothing in ``arpo.tools`` imports the demo world:

- renderer ``"demo"``: :class:`~arpo.demo.render.DemoRenderer` (procedural, nothing to load),
  whose family profile is :data:`~arpo.demo.render.DEMO_PROFILE`;
- preset ``"demo"``: the packaged demo CLIP folder, the held-out judge CLIP folder (which
  ``arpo bench`` judges with; the search never loads it), the demo captioner folder (the
  first prompt of every run without an LLM) and the demo vocabulary folder (the demo world
  ships with the package: nothing to build).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.demo.clip_model import demo_captioner_dir, demo_clip_dir, demo_judge_dir
from arpo.demo.render import DEMO_PROFILE, DemoRenderer
from arpo.demo.vocabulary_build import demo_vocabulary_dir
from arpo.tools import registry
from arpo.tools.families import FamilyProfile
from arpo.tools.presets import PresetModels

if TYPE_CHECKING:
    from arpo.config import Settings

#: The demo CLIP's name where a name must not depend on where the package is installed.
DEMO_CLIP_NAME = "demo-clip"
#: Vocabulary category -> prompt component, where the demo vocabulary's differ (none today:
#: its subject phrases carry their colours). The preset's JSON may add to these.
VOCABULARY_COMPONENTS: dict[str, str] = {}


def build_renderer(ref: str, settings: Settings) -> DemoRenderer:
    return DemoRenderer()


def demo_models(spec: dict[str, Any], root: Path) -> PresetModels:
    return PresetModels(
        t2i_model=DemoRenderer.name,
        clip_model=f"local-dir:{demo_clip_dir()}",
        clip_pretrained=None,
        vocabulary_dir=demo_vocabulary_dir(),
        vocabulary_components=dict(VOCABULARY_COMPONENTS),
        t2i_name=DemoRenderer.name,
        clip_name=DEMO_CLIP_NAME,
        judge_model=f"local-dir:{demo_judge_dir()}",
        caption_model=str(demo_captioner_dir()),
    )


def demo_profile(ref: str, download: bool) -> FamilyProfile:
    return DEMO_PROFILE


registry.register(
    "renderer", "demo", registry.RendererBuilder(build=build_renderer, profile=demo_profile)
)
registry.register("preset", "demo", demo_models)
