"""Bench fixtures: the demo preset's models loaded once, a fresh data directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from arpo.config import Settings
from arpo.tools.toolbox import Toolbox


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Toolbox:
    toolbox = Toolbox(Settings(home=tmp_path_factory.mktemp("demo-home"), preset="demo"))
    toolbox.backend, toolbox.scorer  # noqa: B018 - load now
    return toolbox


@pytest.fixture
def demo_toolbox(demo_models: Toolbox, tmp_path: Path) -> Toolbox:
    """The demo world (procedural renderer, shipped demo CLIP) on a fresh data directory."""
    settings = Settings(home=tmp_path / "demo-home", preset="demo")
    return Toolbox(settings, renderer=demo_models.backend, scorer=demo_models.scorer)
