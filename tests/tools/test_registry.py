"""The builder registry, and the Toolbox that builds through it."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from arpo.config import Settings
from arpo.errors import InvalidOptionError, ModelNotAvailableError
from arpo.tools import registry
from arpo.tools.presets import PRESETS, PresetModels, preset_spec
from arpo.tools.registry import RendererBuilder
from arpo.tools.toolbox import Toolbox

PROVIDER = "arpo_test_provider"


@pytest.fixture
def provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A provider module outside arpo that registers a renderer 'fake' when imported."""
    (tmp_path / f"{PROVIDER}.py").write_text(
        textwrap.dedent(
            """
            from types import SimpleNamespace
            from arpo.tools import registry

            calls = []

            def check(ref):
                calls.append(("check", ref))
                if ref == "missing":
                    from arpo.errors import ModelNotAvailableError
                    raise ModelNotAvailableError("no model 'missing'")

            def build(ref, settings):
                calls.append(("build", ref))
                return SimpleNamespace(name=f"fake:{ref}")

            registry.register("renderer", "fake", registry.RendererBuilder(build, check))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield PROVIDER
    registry.unregister("renderer", "fake")
    sys.modules.pop(PROVIDER, None)


def fake_scorer(name: str = "fake-clip") -> SimpleNamespace:
    return SimpleNamespace(name=name)


def toolbox_with_preset(tmp_path: Path, preset: PresetModels, **given) -> Toolbox:
    toolbox = Toolbox(Settings(home=tmp_path / "home", preset="tiny"), **given)
    toolbox.__dict__["preset"] = preset  # stand in for prepare_preset (a cached_property)
    return toolbox


def test_diffusers_is_built_in():
    assert "diffusers" in registry.names("renderer")
    assert "tiny" in registry.names("preset")
    assert isinstance(registry.renderer_builder("diffusers"), RendererBuilder)


def test_diffusers_check_is_the_cheap_reference_check(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="ARPO_T2I_MODEL"):
        registry.renderer_builder("diffusers").check(str(tmp_path / "missing"))


@pytest.mark.parametrize("kind", ["renderer", "preset"])
def test_unknown_name_is_an_option_error_listing_the_known_ones(kind):
    with pytest.raises(InvalidOptionError) as info:
        registry.lookup(kind, "no-such-builder")
    message = str(info.value)
    assert f"unknown {kind} builder 'no-such-builder'" in message
    for known in registry.names(kind):
        assert known in message


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown builder kind 'painter'"):
        registry.register("painter", "x", object())


def test_provider_registers_its_builders_on_import(provider):
    assert "fake" not in registry.names("renderer")
    builder = registry.renderer_builder("fake", provider=provider)
    assert builder.build("ref", Settings()).name == "fake:ref"
    assert registry.renderer_builder("fake") is builder  # known from now on


def test_missing_provider_is_an_option_error():
    with pytest.raises(InvalidOptionError, match="'arpo_no_such_provider' cannot be imported"):
        registry.lookup("renderer", "fake", provider="arpo_no_such_provider")


def test_provider_that_lacks_the_name_lists_what_is_known(provider):
    with pytest.raises(InvalidOptionError) as info:
        registry.lookup("renderer", "other", provider=provider)
    assert f"unknown renderer builder 'other' (after importing '{provider}')" in str(info.value)
    assert "diffusers" in str(info.value) and "fake" in str(info.value)


def test_a_name_is_registered_once():
    builder = RendererBuilder(build=lambda ref, settings: None)
    registry.register("renderer", "twice", builder)
    try:
        registry.register("renderer", "twice", builder)  # the same builder again is fine
        with pytest.raises(ValueError, match="already registered"):
            registry.register("renderer", "twice", RendererBuilder(build=lambda r, s: None))
        replacement = RendererBuilder(build=lambda r, s: None)
        registry.register("renderer", "twice", replacement, replace=True)
        assert registry.lookup("renderer", "twice") is replacement
    finally:
        registry.unregister("renderer", "twice")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_names_registered_builders(name):
    spec = preset_spec(name)
    provider = spec.get("provider")
    registry.preset_builder(spec["builder"], provider=provider)
    registry.renderer_builder(spec["renderer"], provider=provider)


def test_toolbox_builds_the_presets_renderer_by_name(tmp_path, provider):
    preset = PresetModels("some-ref", "clip", None, renderer="fake", provider=provider)
    toolbox = toolbox_with_preset(tmp_path, preset, scorer=fake_scorer())
    toolbox.load_models()
    assert toolbox.backend.name == "fake:some-ref"
    calls = sys.modules[provider].calls
    assert calls == [("check", "some-ref"), ("build", "some-ref")]  # checked first, built once


def test_toolbox_checks_before_building(tmp_path, provider):
    preset = PresetModels("missing", "clip", None, renderer="fake", provider=provider)
    toolbox = toolbox_with_preset(tmp_path, preset, scorer=fake_scorer())
    with pytest.raises(ModelNotAvailableError, match="no model 'missing'"):
        toolbox.load_models()
    assert sys.modules[provider].calls == [("check", "missing")]


def test_toolbox_with_an_unknown_renderer_name_says_so(tmp_path):
    preset = PresetModels("ref", "clip", None, renderer="painter")
    toolbox = toolbox_with_preset(tmp_path, preset, scorer=fake_scorer())
    with pytest.raises(InvalidOptionError, match="unknown renderer builder 'painter'"):
        toolbox.load_models()


def test_handed_in_renderer_is_neither_checked_nor_built(tmp_path, provider):
    preset = PresetModels("missing", "clip", None, renderer="fake", provider=provider)
    given = SimpleNamespace(name="mine")
    toolbox = toolbox_with_preset(tmp_path, preset, renderer=given, scorer=fake_scorer())
    toolbox.load_models()
    assert toolbox.backend is given


# --- model_identity ----------------------------------------------------------------------


def test_identity_of_the_tiny_preset_does_not_depend_on_the_data_directory(
    tiny_settings, tiny_toolbox, presets_home
):
    expected = {"preset": "tiny", "t2i": "tiny/t2i", "clip": "tiny/clip"}
    assert Toolbox(tiny_settings).model_identity() == expected
    assert Toolbox(Settings(home=presets_home, preset="tiny")).model_identity() == expected
    # the session's models, loaded from another data directory, are the preset's models
    assert tiny_toolbox.model_identity() == expected


def test_identity_without_a_preset_is_the_configuration(tmp_path):
    settings = Settings(home=tmp_path, t2i_model="org/model", clip_model="ViT-B-32")
    assert Toolbox(settings).model_identity() == {
        "preset": None,
        "t2i": "org/model",
        "clip": "ViT-B-32/openai",
    }
    local = Settings(home=tmp_path, clip_model="local-dir:/models/clip")
    assert Toolbox(local).model_identity()["clip"] == "local-dir:/models/clip"


def test_identity_of_handed_in_components_is_their_name(tmp_path, tiny_settings):
    renderer, scorer = SimpleNamespace(name="my-t2i"), fake_scorer("my-clip")
    plain = Toolbox(Settings(home=tmp_path), renderer=renderer, scorer=scorer)
    assert plain.model_identity() == {"preset": None, "t2i": "my-t2i", "clip": "my-clip"}
    preset = Toolbox(tiny_settings, renderer=renderer, scorer=scorer)
    assert preset.model_identity() == {"preset": "tiny", "t2i": "my-t2i", "clip": "my-clip"}


def test_identity_loads_no_model(tmp_path, tiny_settings):
    toolbox = Toolbox(tiny_settings)
    toolbox.model_identity()
    assert toolbox._given["backend"] is None and toolbox._given["scorer"] is None
