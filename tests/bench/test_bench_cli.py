"""``arpo bench`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.config import Settings
from arpo.demo.clip_model import demo_judge_dir
from arpo.tools.toolbox import Toolbox


@pytest.fixture
def bench_cli(demo_models: Toolbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke ``arpo``; the demo preset's process toolbox reuses the loaded demo models."""
    monkeypatch.setenv("ARPO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    settings = Settings(preset="demo")
    api.toolboxes._toolboxes[settings.model_dump_json()] = Toolbox(
        settings, renderer=demo_models.backend, scorer=demo_models.scorer
    )

    def invoke(*args: object):
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_bench_command_prints_the_summary_and_writes_the_files(bench_cli, tmp_path) -> None:
    out = tmp_path / "bench"
    result = bench_cli("bench", "demo:2", "--methods", "interrogate", "--seeds", "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert "| interrogate-fast | 2 |" in result.stdout
    assert "| interrogate-best | 2 |" in result.stdout
    for name in ("results.csv", "summary.json", "report.html"):
        assert (out / name).is_file()
        assert str(out / name) in result.stdout
    assert "bench 4/4" in result.stderr  # the progress bar over every pair
    assert f"judge: local-dir:{demo_judge_dir()} (held out)" in result.stdout  # the default
    assert "paired against" not in result.stdout  # no ARPO method ran


def test_bench_command_pairs_against_the_method_asked_and_refuses_the_own_judge(
    bench_cli, tmp_path
) -> None:
    out = tmp_path / "bench"
    args = ("bench", "demo:2", "--methods", "interrogate", "--seeds", "1", "--out", out)
    result = bench_cli(*args, "--against", "interrogate-best")
    assert result.exit_code == 0, result.output
    assert "paired against interrogate-best" in result.stdout
    assert "| interrogate-fast | 2 |" in result.stdout.split("paired against")[1]
    from arpo.demo.clip_model import demo_clip_dir

    result = bench_cli(*args, "--judge", f"local-dir:{demo_clip_dir()}")
    assert result.exit_code == 2 and "--judge same" in result.stderr


def test_bench_command_reports_bad_input_in_one_line(bench_cli, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = bench_cli("bench", empty, "--out", tmp_path / "b")
    assert result.exit_code == 2
    assert "no image files" in result.stderr and "Traceback" not in result.stderr
    result = bench_cli("bench", "demo:2", "--methods", "pezz", "--out", tmp_path / "b")
    assert result.exit_code == 2 and "unknown method 'pezz'" in result.stderr
