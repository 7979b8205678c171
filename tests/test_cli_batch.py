"""``arpo invert FOLDER``: the CLI's thin adapter over ``arpo.api.invert_folder``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from arpo import api
from arpo.bench.dataset import demo_dataset
from arpo.cli import app
from arpo.config import Settings
from arpo.tools.toolbox import Toolbox


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Toolbox:
    toolbox = Toolbox(Settings(home=tmp_path_factory.mktemp("demo-home"), preset="demo"))
    toolbox.load_models()
    return toolbox


@pytest.fixture
def cli(demo_models: Toolbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Run ``arpo`` with ARPO_HOME in this test's folder and the demo models loaded once."""
    home = tmp_path / "home"
    env = {"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    settings = Settings(preset="demo")
    api.toolboxes._toolboxes[settings.model_dump_json()] = Toolbox(
        settings, renderer=demo_models.backend, scorer=demo_models.scorer
    )
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    root.mkdir()
    for k, scene in enumerate(demo_dataset("demo:2").images):
        scene.load().save(root / f"scene-{k}.png")
    (root / "notes.png").write_text("not an image")
    return root


FAST = ("--preset", "demo", "-n", "1", "--budget", "4")


def test_invert_a_folder_writes_captions_and_says_what_happened(cli: Any, folder: Path) -> None:
    result = cli("invert", folder, *FAST, "--prefix", "sks, ")
    assert result.exit_code == 0, result.output
    assert "3 images: 2 finished, 1 unreadable" in result.stdout
    assert "unreadable notes.png: cannot read image" in result.stderr
    assert "batch.json" in result.stdout and "report.html" in result.stdout
    for k in range(2):
        assert (folder / f"scene-{k}.txt").read_text().startswith("sks, ")

    again = cli("invert", folder, *FAST, "--prefix", "sks, ", "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["already_finished"] == 2
    assert {i["name"]: i["status"] for i in summary["images"]} == {
        "notes.png": "unreadable",
        "scene-0.png": "finished",
        "scene-1.png": "finished",
    }


def test_existing_captions_are_skipped_and_the_output_says_how_to_replace_them(
    cli: Any, folder: Path
) -> None:
    (folder / "scene-0.txt").write_text("mine")
    result = cli("invert", folder, *FAST, "--out", folder.parent / "batch")
    assert result.exit_code == 0, result.output
    assert "1 already had a caption file: --overwrite replaces them" in result.stdout
    assert (folder / "scene-0.txt").read_text() == "mine"
    assert (folder.parent / "batch" / "batch.csv").is_file()


def test_folder_options_with_one_image_are_refused(cli: Any, folder: Path) -> None:
    result = cli("invert", folder / "scene-0.png", "--prefix", "sks, ", "--recursive")
    assert result.exit_code == 2
    assert "--recursive, --prefix only apply to a FOLDER" in result.output


def test_ray_options_with_one_image_are_refused(cli: Any, folder: Path) -> None:
    image = next(folder.glob("*.png"))
    result = cli("invert", str(image), "--ray", "--workers", "2")
    assert result.exit_code == 2
    assert "--ray, --ray-address and --workers only apply to a FOLDER" in result.output


def test_ctrl_c_says_how_to_continue(
    cli: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arpo.api import batch

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "invert_one", interrupted)
    result = cli("invert", folder, *FAST)
    assert result.exit_code == 130
    assert "interrupted." in result.stderr
    assert "run the same command again to continue it" in result.stderr
