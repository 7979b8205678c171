"""Toolbox.profile: which family profile a Toolbox renders by, decided without torch, and the
option defaults it gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from arpo.config import Settings
from arpo.errors import InvalidOptionError
from arpo.tools.toolbox import Toolbox


def test_the_tiny_preset_is_sd15_at_its_own_size(tiny_settings):
    toolbox = Toolbox(tiny_settings)
    profile = toolbox.profile
    assert profile.name == "sd1"
    assert (profile.native_size, profile.steps, profile.guidance) == (128, 2, 5.0)
    assert toolbox.option_defaults == {"steps": 2, "guidance": 5.0, "width": 128, "height": 128}
    wide = toolbox.option_defaults_for((1600, 900))
    assert (wide["width"], wide["height"]) == (168, 96)
    assert toolbox.option_defaults_for((1600, 900), width=256)["height"] == 144
    assert toolbox.describe_models()["family"] == "sd1"


def test_the_family_of_a_local_folder_is_read_without_torch(presets_home, tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from arpo.config import Settings
        from arpo.tools.toolbox import Toolbox
        toolbox = Toolbox(Settings(home=Path(sys.argv[1]), t2i_model=sys.argv[2]))
        print("FAMILY", toolbox.profile.name, toolbox.option_defaults)
        print("TORCH", "torch" in sys.modules)
        """
    )
    folder = presets_home / "presets" / "tiny" / "t2i"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "home"), str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "HF_HUB_OFFLINE": "1",
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
    )
    assert done.returncode == 0, done.stderr
    assert "FAMILY sd1 {'steps': 30, 'guidance': 7.5, 'width': 512, 'height': 512}" in done.stdout
    assert "TORCH False" in done.stdout


def test_arpo_family_forces_a_profile_and_overrides_replace_values(
    presets_home, tmp_path, monkeypatch
):
    folder = str(presets_home / "presets" / "tiny" / "t2i")
    forced = Toolbox(Settings(home=tmp_path, t2i_model=folder, family="flux-dev"))
    assert forced.profile.name == "flux-dev"
    assert forced.option_defaults == {"steps": 28, "guidance": 3.5, "width": 1024, "height": 1024}
    assert forced.describe_family()["forced_by"] == "ARPO_FAMILY"
    monkeypatch.setenv("ARPO_FAMILY_OVERRIDES", '{"steps": 8, "native_size": 768}')
    settings = Settings(home=tmp_path, t2i_model=folder)
    assert settings.family_overrides == {"steps": 8, "native_size": 768}
    toolbox = Toolbox(settings)
    assert (toolbox.profile.name, toolbox.profile.steps) == ("sd1", 8)
    assert toolbox.option_defaults["width"] == 768
    assert toolbox.describe_family()["overrides"] == {"steps": 8, "native_size": 768}


def test_bad_family_settings_are_clear(tmp_path):
    with pytest.raises(InvalidOptionError, match=r"unknown model family 'sd9'.*flux-dev"):
        Toolbox(Settings(home=tmp_path, family="sd9")).profile  # noqa: B018
    bad = Toolbox(Settings(home=tmp_path, family="sd1", family_overrides={"stepz": 3}))
    with pytest.raises(InvalidOptionError, match=r"unknown family value.*stepz"):
        bad.profile  # noqa: B018


def test_hub_ids_are_read_from_the_cache_or_left_unknown(empty_hub_cache, tmp_path):
    missing = Toolbox(Settings(home=tmp_path, t2i_model="nobody/missing"))
    assert missing.profile.name == "unknown"
    snapshot = empty_hub_cache / "models--someone--xl" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionXLPipeline", "unet": ["diffusers", "X"]})
    )
    (empty_hub_cache / "models--someone--xl" / "refs").mkdir()
    (empty_hub_cache / "models--someone--xl" / "refs" / "main").write_text("0" * 40)
    cached = Toolbox(Settings(home=tmp_path, t2i_model="someone/xl"))
    assert cached.profile.name == "sdxl"
    assert cached.option_defaults_for((1600, 900))["width"] == 1368


def test_an_unknown_profile_is_not_kept_until_the_model_is_read(empty_hub_cache, tmp_path):
    toolbox = Toolbox(Settings(home=tmp_path, t2i_model="someone/later"))
    assert toolbox.profile.name == "unknown"
    snapshot = empty_hub_cache / "models--someone--later" / "snapshots" / ("1" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text('{"_class_name": "StableDiffusion3Pipeline"}')
    (empty_hub_cache / "models--someone--later" / "refs").mkdir()
    (empty_hub_cache / "models--someone--later" / "refs" / "main").write_text("1" * 40)
    assert toolbox.profile.name == "sd3"  # downloaded since: read now, and kept


def test_a_given_backend_says_its_own_profile(tiny_toolbox, tiny_models):
    assert tiny_toolbox.profile is tiny_models.backend.profile
    described = tiny_toolbox.describe_family()
    assert described["family"] == "sd1" and described["dtype"] == "float32"
    assert described["native_size"] == 128


def test_the_demo_renderer_has_its_profile(tmp_path):
    toolbox = Toolbox(Settings(home=tmp_path, preset="demo"))
    assert toolbox.profile.name == "demo"
    assert toolbox.option_defaults["width"] == 128
    from arpo.demo.render import DemoRenderer

    assert DemoRenderer().profile is toolbox.profile
