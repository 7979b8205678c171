"""Shared fixtures: tiny models built once per test session, offline, with a fake LLM server.

No test touches the network or a model hub: HF_HUB_OFFLINE is set before anything imports
huggingface_hub, and the tiny preset builds random-weight models in-process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("OPENAI_API_KEY", None)
for _name in [k for k in os.environ if k.startswith("ARPO_")]:
    del os.environ[_name]
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from fake_openai import fake_openai  # noqa: E402, F401
from PIL import Image  # noqa: E402

from arpo.config import Settings  # noqa: E402
from arpo.tools.toolbox import Toolbox  # noqa: E402


@pytest.fixture(scope="session")
def presets_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose tiny preset models are built once for the whole session."""
    home = tmp_path_factory.mktemp("arpo-home")
    from arpo.tools.presets import prepare_preset

    prepare_preset("tiny", home / "presets")
    return home


@pytest.fixture(scope="session")
def family_presets_home(presets_home: Path) -> Path:
    """``presets_home`` with the tiny SDXL, SD3 and Flux presets built too (once a session),
    so a test that links ``presets_home / "presets"`` into its own data directory sees them."""
    from arpo.tools.presets import prepare_preset
    from arpo.tools.presets.tiny_families import TINY_FAMILIES

    for name in TINY_FAMILIES:
        prepare_preset(name, presets_home / "presets")
    return presets_home


@pytest.fixture
def process_home(presets_home: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A data directory for an ``arpo`` subprocess (the session's presets linked in) and the
    environment to start it with: offline, no ARPO_* from outside, ARPO_HOME set."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    return home, env


@pytest.fixture
def tiny_settings(presets_home: Path, tmp_path: Path) -> Settings:
    """Settings for the tiny preset with a fresh data directory per test (presets shared)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    return Settings(home=home, preset="tiny")


@pytest.fixture(scope="session")
def tiny_models(presets_home: Path) -> Toolbox:
    """The tiny preset's models, loaded once for the session (reuse them via Toolbox(...))."""
    toolbox = Toolbox(Settings(home=presets_home, preset="tiny"))
    toolbox.backend, toolbox.scorer  # noqa: B018 - load now
    return toolbox


@pytest.fixture
def tiny_toolbox(tiny_settings: Settings, tiny_models: Toolbox) -> Toolbox:
    """A Toolbox on a fresh data directory that reuses the session's loaded tiny models."""
    return Toolbox(tiny_settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)


@pytest.fixture
def reference_png(tmp_path: Path) -> Path:
    """A 64x64 RGB reference image: a red square on a blue background."""
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:] = (30, 60, 200)
    pixels[16:48, 16:48] = (220, 30, 30)
    path = tmp_path / "reference.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache with HF_HUB_OFFLINE=1: nothing is cached, nothing fetched."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
