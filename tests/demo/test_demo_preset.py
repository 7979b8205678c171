"""The demo preset's builders come from arpo.demo.preset, which the preset's JSON names."""

from __future__ import annotations

from pathlib import Path

from arpo.config import Settings
from arpo.demo.clip_model import demo_clip_dir
from arpo.demo.render import DemoRenderer
from arpo.demo.vocabulary_build import demo_vocabulary_dir
from arpo.tools import registry
from arpo.tools.presets import prepare_preset, preset_spec
from arpo.tools.toolbox import Toolbox


def test_the_demo_preset_names_its_provider_as_data():
    spec = preset_spec("demo")
    assert spec["provider"] == "arpo.demo.preset"
    assert (spec["builder"], spec["renderer"]) == ("demo", "demo")


def test_demo_models_are_the_packaged_ones(tmp_path: Path):
    models = prepare_preset("demo", tmp_path / "presets")
    assert models.renderer == "demo" and models.provider == "arpo.demo.preset"
    assert models.t2i_model == DemoRenderer.name
    assert models.clip_model == f"local-dir:{demo_clip_dir()}"
    assert models.vocabulary_dir == demo_vocabulary_dir()
    assert models.option_defaults == preset_spec("demo")["option_defaults"]
    assert not (tmp_path / "presets").exists()  # nothing to build
    assert "demo" in registry.names("renderer") and "demo" in registry.names("preset")


def test_toolbox_builds_the_demo_world_through_the_registry(tmp_path: Path):
    toolbox = Toolbox(Settings(home=tmp_path, preset="demo"))
    assert isinstance(toolbox.backend, DemoRenderer)
    assert toolbox.model_identity() == {
        "preset": "demo",
        "t2i": DemoRenderer.name,
        "clip": "demo-clip",
    }
    # handed-in demo models are the preset's own: the same identity
    given = Toolbox(Settings(home=tmp_path / "other", preset="demo"), renderer=DemoRenderer())
    assert given.model_identity() == toolbox.model_identity()
