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
from arpo.demo.parse import parse_prompt
from arpo.demo.render import render_prompt
from arpo.demo.run import run_demo
from arpo.demo.scenes import attributes, canonical_prompt
from arpo.errors import InvalidOptionError
from arpo.tools.toolbox import Toolbox


@pytest.fixture(scope="module")
def demo_toolbox(tmp_path_factory: pytest.TempPathFactory) -> Toolbox:
    return Toolbox(Settings(home=tmp_path_factory.mktemp("demo-home"), preset="demo"))


def test_demo_reports_the_true_prompt_and_what_the_run_recovered(demo_toolbox: Toolbox) -> None:
    outcome = run_demo(scene=3, objects=1, toolbox=demo_toolbox, iterations=4)

    assert outcome.true_prompt == canonical_prompt(heldout_scene(3, 1))
    facts = len(outcome.hits) + len(outcome.misses)
    assert facts + len(outcome.hidden) == len(attributes(heldout_scene(3, 1)))
    assert outcome.recall == pytest.approx(len(outcome.hits) / facts)
    claims = len(outcome.hits) + len(outcome.wrong)
    assert outcome.precision == pytest.approx(len(outcome.hits) / claims if claims else 0.0)
    p, r = outcome.precision, outcome.recall
    assert outcome.f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    assert outcome.result.strategy == "offline"
    assert outcome.result.best_image_score >= outcome.result.history[0]["image_score"]
    written = json.loads((outcome.result.run_dir / "demo.json").read_text())
    assert written["true_prompt"] == outcome.true_prompt
    assert written["hits"] == outcome.hits


def test_demo_with_a_prompt_draws_that_prompt(demo_toolbox: Toolbox) -> None:
    outcome = run_demo(
        prompt="a large red solid circle in the center on a white background, flat",
        toolbox=demo_toolbox,
        iterations=2,
    )
    assert (
        outcome.true_prompt == "a large red solid circle in the center, on a white background, flat"
    )


@pytest.mark.parametrize(
    ("true_prompt", "shape", "colour"),
    [
        ("a large red solid circle in the center, on a white background, flat", "circle", "red"),
        (
            "a large green solid heart on the left, on a black background, pixel art",
            "heart",
            "green",
        ),
    ],
)
def test_reverse_prompt_of_a_one_object_scene_names_its_colour_and_shape(
    demo_toolbox: Toolbox, true_prompt: str, shape: str, colour: str
) -> None:
    image = render_prompt(true_prompt, seed=5)  # the run renders with seed 0: another layout

    result = api.reverse_prompt(image, toolbox=demo_toolbox, strategy="offline", iterations=8)

    (found,) = parse_prompt(result.best_prompt).objects
    assert (found.shape, found.colour) == (shape, colour), result.best_prompt
    assert result.best_image_score > result.history[0]["image_score"]


def test_demo_rejects_bad_settings(demo_toolbox: Toolbox, tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="1 to 3 objects"):
        run_demo(objects=4, toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="empty"):
        run_demo(prompt="  ", toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="demo preset"):
        run_demo(toolbox=Toolbox(Settings(home=tmp_path, preset="tiny")))


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
