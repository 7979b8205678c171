"""The demo preset end to end: the loop recovers what a demo scene shows, from its image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.config import Settings
from arpo.demo.evaluate import heldout_scene
from arpo.errors import InvalidOptionError
from arpo.tools.toolbox import Toolbox


@pytest.fixture(scope="module")
def demo_toolbox(tmp_path_factory: pytest.TempPathFactory) -> Toolbox:
    return Toolbox(Settings(home=tmp_path_factory.mktemp("demo-home"), preset="demo"))


@pytest.mark.parametrize("index", [3, 4, 5])
def test_reverse_prompt_names_colour_and_shape_of_a_one_object_scene(
    demo_toolbox: Toolbox, index: int
) -> None:
    scene = heldout_scene(index, 1)
    outcome = api.demo(scene=index, objects=1, toolbox=demo_toolbox, iterations=8)

    obj = scene.objects[0]
    assert f"colour {obj.colour}" in outcome.hits, outcome.result.best_prompt
    assert f"shape {obj.shape}" in outcome.hits, outcome.result.best_prompt
    assert outcome.recall >= outcome.initial_recall
    written = json.loads((outcome.result.run_dir / "demo.json").read_text())
    assert written["true_prompt"] == outcome.true_prompt


def test_demo_with_a_prompt_recovers_that_prompt(demo_toolbox: Toolbox) -> None:
    outcome = api.demo(
        prompt="a large red solid circle in the center on a white background",
        toolbox=demo_toolbox,
        iterations=6,
    )
    assert "colour red" in outcome.hits and "shape circle" in outcome.hits


def test_demo_rejects_bad_settings(demo_toolbox: Toolbox, tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="1 to 3 objects"):
        api.demo(objects=4, toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="empty"):
        api.demo(prompt="  ", toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="demo preset"):
        api.demo(toolbox=Toolbox(Settings(home=tmp_path, preset="tiny")))


def test_arpo_demo_command_end_to_end(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ARPO_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "run"
    result = runner.invoke(app, ["demo", "--scene", "7", "-n", "4", "--out", str(out)], env=env)

    assert result.exit_code == 0, result.output
    assert "true prompt" in result.output and "recovered prompt" in result.output
    assert "attributes recovered" in result.output
    for name in ("reference.png", "best.png", "report.html", "result.json", "demo.json"):
        assert (out / name).is_file(), name
