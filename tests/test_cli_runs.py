"""``arpo runs [list|show|rm]`` and ``arpo gc`` on demo-preset runs, and the models of a run
travelling with it through the CLI (``vary RUN_ID`` and ``invert --resume``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app

ARTIFACT = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def arpo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presets_home: Path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    monkeypatch.setenv("ARPO_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    runner = CliRunner()

    def invoke(*args: object):
        return runner.invoke(app, [str(a) for a in args])

    invoke.home = home
    return invoke


def demo_run(arpo, scene: int, *extra: object) -> str:
    result = arpo("demo", "--scene", scene, "-n", "1", "--candidates", "8", *extra)
    assert result.exit_code == 0, result.output
    return re.search(r"run (\d{8}-\d{6}-[0-9a-f]{6})", result.stderr + result.stdout).group(1)


def store_ids(home: Path) -> set[str]:
    return {p.stem for p in (home / "artifacts" / "images").glob("*/*.png")}


def test_runs_list_show_rm_and_gc(arpo, tmp_path: Path) -> None:
    first = demo_run(arpo, 1)
    out = tmp_path / "kept"
    second = demo_run(arpo, 2, "--out", out)
    (out / "my-notes.txt").write_text("mine")

    listed = arpo("runs")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines] == [second, first], "newest first"
    assert all("finished" in line for line in lines)

    shown = arpo("runs", "show", first, "--json")
    details = json.loads(shown.stdout)
    assert details["status"] == "finished" and details["resumable"] is False
    assert details["models"]["t2i"] and len(details["history"]) == 2

    gone = arpo("runs", "rm", second)
    assert gone.exit_code == 0, gone.output
    assert sorted(p.name for p in out.iterdir()) == ["my-notes.txt"], "only the run's files"
    assert "no run" in arpo("runs", "show", second).stderr
    assert [run.run_id for run in api.list_runs(settings=api.get_toolbox().settings).runs] == [
        first
    ]

    before = store_ids(arpo.home)
    dry = arpo("gc", "--dry-run", "--grace", "0", "--json")
    would = json.loads(dry.stdout)
    assert would["dry_run"] and would["artifacts"] > 0
    assert store_ids(arpo.home) == before, "a dry run removes nothing"
    fresh = json.loads(arpo("gc", "--json").stdout)
    assert fresh["artifacts"] == 0, "the grace period keeps images made just now"
    done = json.loads(arpo("gc", "--grace", "0", "--json").stdout)
    assert done["artifacts"] == would["artifacts"]
    after = store_ids(arpo.home)
    assert len(after) == len(before) - done["artifacts"]

    # everything the remaining run refers to is still there, and it still remixes
    kept_run = arpo.home / "runs" / first
    referenced = set(ARTIFACT.findall((kept_run / "result.json").read_text()))
    assert referenced and referenced <= after
    varied = arpo("vary", first, "-c", "1", "--seed", "0")
    assert varied.exit_code == 0, varied.output


def test_vary_of_a_run_starts_from_the_runs_seed_as_edit_does(arpo) -> None:
    run_id = demo_run(arpo, 4, "--seed", "41")
    varied = arpo("vary", run_id, "-c", "2", "--json")
    assert varied.exit_code == 0, varied.output
    images = json.loads(varied.stdout)["images"]
    assert [image["seed"] for image in images] == [41, 42]
    edited = arpo("edit", run_id, "--set", "style=pixel art", "--json")
    assert edited.exit_code == 0, edited.output
    assert json.loads(edited.stdout)["seed"] == 41
    run_dir = Path(json.loads(arpo("runs", "show", run_id, "--json").stdout)["run_dir"])
    with Image.open(images[0]["path"]) as first, Image.open(run_dir / "best.png") as best:
        assert first.tobytes() == best.tobytes()  # the first variation is the run's render


def test_a_runs_models_travel_with_it_through_the_cli(arpo) -> None:
    run_id = demo_run(arpo, 3)
    # no --preset: the run's own (demo) models, though the settings name none
    varied = arpo("vary", run_id, "-c", "1", "--seed", "0", "--json")
    assert varied.exit_code == 0, varied.output
    assert [image["seed"] for image in json.loads(varied.stdout)["images"]] == [0]
    refused = arpo("vary", run_id, "--preset", "tiny")
    assert refused.exit_code == 2
    assert "demo preset" in refused.stderr and "tiny preset" in refused.stderr
    resumed = arpo("invert", "--resume", run_id, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["run_id"] == run_id
    wrong = arpo("invert", "--resume", run_id, "--preset", "tiny")
    assert wrong.exit_code == 2 and "demo preset" in wrong.stderr
    assert "continue it with" not in wrong.stderr, "no hint to rerun what was just refused"
