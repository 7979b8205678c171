"""The ``arpo`` command line, through typer's CliRunner (and once as a real process)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import escape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.config import Settings
from arpo.tools.toolbox import Toolbox


@pytest.fixture
def cli(tiny_settings, tiny_models, monkeypatch, tmp_path):
    """Run ``arpo`` with ARPO_HOME set to this test's data directory.

    The CLI's process-wide toolbox for these settings is seeded with one that reuses the
    session's loaded tiny models, so no test loads models again.
    """
    home = tiny_settings.home
    env = {"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    settings = Settings(preset="tiny")
    assert settings.home == home
    api.toolboxes._toolboxes[settings.model_dump_json()] = Toolbox(
        settings, renderer=tiny_models.backend, scorer=tiny_models.scorer
    )
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    invoke.home = home
    return invoke


@pytest.fixture
def bare_cli(monkeypatch, tmp_path):
    """Run ``arpo`` with no models prepared (for messages given before any model loads)."""
    home = tmp_path / "home"
    monkeypatch.setenv("ARPO_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    invoke.home = home
    return invoke


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_invert_writes_a_complete_run_directory(cli, reference_png, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "invert", reference_png, "--preset", "tiny", "--strategy", "offline",
        "--iterations", "3", "--candidates", "2", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("result.json", "best.png", "reference.png", "report.html"):
        assert (out / name).is_file(), name
    renders = sorted(p.name for p in (out / "renders").iterdir())
    assert renders == [f"iter-{i:03d}.png" for i in range(4)]
    saved = json.loads((out / "result.json").read_text())
    assert saved["iterations"] == 3
    report = (out / "report.html").read_text()
    for entry in saved["history"]:
        assert escape(entry["prompt"], quote=True) in report
    assert "best prompt" in result.stdout
    assert saved["best"]["prompt"] in result.stdout
    assert f"run {saved['run_id']}: 3 iterations" in result.stdout
    assert (cli.home / "runs" / saved["run_id"] / "run.json").is_file()


def test_invert_budget_stops_the_run_and_the_final_line_says_what_it_spent(
    cli, reference_png, tmp_path
):
    out = tmp_path / "run"
    result = cli(
        "invert", reference_png, "--preset", "tiny", "--strategy", "offline",
        "--iterations", "20", "--candidates", "2", "--patience", "0",
        "--images-per-prompt", "2", "--budget", "5", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "result.json").read_text())
    assert saved["options"]["budget"] == 5
    assert saved["stop_reason"] == "budget"
    assert 0 < saved["renders_spent"] <= 5
    assert f"{saved['renders_spent']} renders of 5, stopped by budget" in result.stdout


def test_invert_json_output_parses(cli, reference_png):
    result = cli(
        "invert", reference_png, "--preset", "tiny", "--strategy", "offline",
        "--iterations", "1", "--candidates", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["strategy"] == "offline"
    assert summary["iterations"] == 1
    assert Path(summary["run_dir"]) == cli.home / "runs" / summary["run_id"]
    assert Path(summary["best_render"]).is_file()
    assert Path(summary["report"]).is_file()
    assert isinstance(summary["best_text_score"], float)


def test_invert_missing_file_is_a_one_line_error(cli, tmp_path):
    missing = tmp_path / "missing.png"
    result = cli("invert", missing, "--preset", "tiny", "--strategy", "offline")
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot read image")
    assert "file not found" in lines[0]
    assert "Traceback" not in result.output
    assert not (cli.home / "runs").exists()


@pytest.mark.parametrize(
    ("args", "phrase"),
    [(["--iterations", "0"], "iterations=0"), (["--width", "100"], "width=100")],
)
def test_invert_bad_options_exit_2(cli, reference_png, args, phrase):
    result = cli("invert", reference_png, "--preset", "tiny", "--strategy", "offline", *args)
    assert result.exit_code == 2
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert phrase in lines[0]
    assert not (cli.home / "runs").exists()


def test_invert_needs_an_image_or_resume(cli):
    result = cli("invert", "--preset", "tiny")
    assert result.exit_code != 0
    assert "--resume" in result.output


def test_invert_image_and_resume_together_is_refused(cli, reference_png):
    result = cli("invert", reference_png, "--resume", "20260101-000000-abcdef")
    assert result.exit_code != 0
    assert "not both" in result.output


def test_invert_resume_unknown_run(cli):
    result = cli("invert", "--resume", "20260101-000000-abcdef", "--preset", "tiny")
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no run '20260101-000000-abcdef'")
    assert "Traceback" not in result.output


def test_invert_bad_preset_is_a_usage_error(cli, reference_png):
    result = cli("invert", reference_png, "--preset", "huge")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "command", [["doctor"], ["edit", "a cat", "-i", "night"], ["generate", "a cat"]]
)
def test_a_bad_preset_option_names_the_option_the_value_and_the_presets(bare_cli, command):
    result = bare_cli(*command, "--preset", "bogus")
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: --preset 'bogus': not a preset; choose one of none, demo, tiny, tiny-flux, "
        "tiny-sd3, tiny-sdxl"
    ]


@pytest.mark.parametrize("command", [["doctor"], ["runs", "list"], ["vary", "a cat"]])
def test_a_bad_variable_names_the_variable_the_value_and_the_choices(bare_cli, command):
    result = bare_cli(*command, env={"ARPO_DEVICE": "gpu"})
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: ARPO_DEVICE='gpu': not a valid device; choose one of auto, cpu, cuda, mps"
    ]


def test_serve_refuses_a_whitespace_token_at_start(bare_cli):
    result = bare_cli("serve", "--transport", "http", env={"ARPO_AUTH_TOKEN": "   "})
    assert result.exit_code == 2
    [line] = error_lines(result)
    assert line.startswith("error: ARPO_AUTH_TOKEN: the token is only whitespace")
    assert "set a real token" in line


def test_score_prints_one_line_per_prompt_best_first(cli, reference_png):
    result = cli("score", reference_png, "a cat", "a red square", "--preset", "tiny")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    values = [float(line.split()[0]) for line in lines]
    assert values == sorted(values, reverse=True)
    assert sorted(line.split(None, 1)[1] for line in lines) == ["a cat", "a red square"]


def test_score_warns_of_words_the_demo_clip_cannot_read(bare_cli, reference_png):
    result = bare_cli(
        "score", reference_png, "a cat", "a lighthouse", "a red star", "--preset", "demo"
    )
    assert result.exit_code == 0, result.output
    cat, lighthouse = (float(line.split()[0]) for line in result.stdout.splitlines()[1:])
    assert cat == lighthouse  # "a [UNK]" both: why the warning is needed
    warnings = [line for line in error_lines(result) if line.startswith("warning:")]
    assert len(warnings) == 2 and all(w.startswith("warning: CLIP ") for w in warnings)
    assert "does not know 'cat' in 'a cat'" in warnings[0] + warnings[1]
    assert "does not know 'lighthouse' in 'a lighthouse'" in warnings[0] + warnings[1]
    as_json = json.loads(
        bare_cli("score", reference_png, "a cat", "a red star", "--preset", "demo", "--json").stdout
    )
    assert {item["prompt"]: item["unknown_words"] for item in as_json} == {
        "a cat": ["cat"],
        "a red star": [],
    }


def test_score_json(cli, reference_png):
    result = cli("score", reference_png, "a", "b", "--preset", "tiny", "--json")
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout)
    assert sorted(item["prompt"] for item in ranked) == ["a", "b"]
    assert ranked[0]["score"] >= ranked[1]["score"]


def test_score_bad_image(cli, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = cli("score", text, "a cat", "--preset", "tiny")
    assert result.exit_code == 1
    assert error_lines(result)[0].startswith("error: cannot read image")


def test_generate_writes_pngs(cli, tmp_path):
    out = tmp_path / "images"
    result = cli("generate", "a cat", "--count", "2", "-o", out, "--preset", "tiny")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["seed-0.png", "seed-1.png"]
    assert result.stdout.split() == [str(out / "seed-0.png"), str(out / "seed-1.png")]
    assert (out / "seed-0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_without_out_never_overwrites_and_never_duplicates(cli, tmp_path):
    first = cli("generate", "a cat", "--preset", "tiny")
    assert first.exit_code == 0, first.output
    assert first.stdout.split() == ["seed-0.png"]
    cat = (tmp_path / "seed-0.png").read_bytes()
    dog = cli("generate", "a dog", "--count", "2", "--preset", "tiny")
    assert dog.exit_code == 0, dog.output
    assert dog.stdout.split() == ["seed-0-2.png", "seed-1.png"]
    assert (tmp_path / "seed-0.png").read_bytes() == cat  # kept
    again = cli("generate", "a cat", "--preset", "tiny")
    assert again.stdout.split() == ["seed-0.png"]  # the same image: the same file
    assert sorted(p.name for p in tmp_path.glob("seed-*.png")) == [
        "seed-0-2.png", "seed-0.png", "seed-1.png"
    ]  # fmt: skip


def test_generate_into_a_named_folder_refuses_an_existing_file(cli, tmp_path):
    assert cli("generate", "a cat", "-o", ".", "--preset", "tiny").exit_code == 0
    refused = cli("generate", "a dog", "-o", ".", "--preset", "tiny")
    assert refused.exit_code == 2
    assert "seed-0.png exists already" in error_lines(refused)[0]


def test_the_resume_hint_is_one_line_however_narrow_the_terminal(bare_cli, monkeypatch, tmp_path):
    from arpo.cli import display

    shown = display.RunProgress.update

    def interrupt_after_start(self, event):
        shown(self, event)
        if event.get("event") != "started":
            raise KeyboardInterrupt  # Ctrl-C in the first iteration

    monkeypatch.setattr(display.RunProgress, "update", interrupt_after_start)
    result = bare_cli("demo", "--scene", "1", env={"COLUMNS": "30"})
    assert result.exit_code == 130
    lines = result.stderr.splitlines()
    [hint] = [line for line in lines if "--resume" in line]
    assert re.fullmatch(
        r"interrupted\. The run is saved; continue it with: arpo invert --resume \S+", hint
    )
    run_id = hint.split()[-1]  # and the paths printed at the start are whole lines too
    assert f"run {run_id} -> {bare_cli.home / 'runs' / run_id}" in lines
    assert f"reference image: {bare_cli.home / 'runs' / run_id / 'reference.png'}" in lines


def test_ctrl_c_is_not_echoed_while_a_live_line_is_drawn():
    import pty
    import termios

    from arpo.cli.display import control_echo_off

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        assert termios.tcgetattr(follower)[3] & termios.ECHOCTL
        with control_echo_off(terminal):
            assert not termios.tcgetattr(follower)[3] & termios.ECHOCTL
        assert termios.tcgetattr(follower)[3] & termios.ECHOCTL  # restored
    os.close(leader)


def test_generate_bad_size_exits_2(cli, tmp_path):
    result = cli("generate", "a cat", "--width", "100", "-o", tmp_path / "o", "--preset", "tiny")
    assert result.exit_code == 2
    assert error_lines(result)[0].startswith("error: width=100")


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("invert", "generate", "score"):
        assert command in result.stdout


def every_command_path() -> list[list[str]]:
    """["invert"], ["runs", "list"], ...: every command and group of ``arpo``."""
    import typer

    def walk(command, path):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


@pytest.mark.parametrize("path", every_command_path(), ids=" ".join)
def test_help_shows_words_not_python_types(bare_cli, path):
    result = bare_cli(*path, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for python_type in ("<bool>", "<str>", "<int>", "<float>", "<path>", "list[", "LIST[", "{"):
        assert python_type not in result.output, (path, python_type)


def test_help_names_arguments_and_values_as_words(bare_cli):
    score = bare_cli("score", "--help", env={"COLUMNS": "80"}).output
    assert "Usage: arpo score [OPTIONS] IMAGE PROMPTS..." in score
    invert = bare_cli("invert", "--help", env={"COLUMNS": "80"}).output
    assert "Usage: arpo invert [OPTIONS] [IMAGE|FOLDER]" in invert
    assert "--resume" in invert and "RUN_ID" in invert and "--preset" in invert
    edit = bare_cli("edit", "--help", env={"COLUMNS": "80"}).output
    assert "COMPONENT=TEXT" in edit


def test_command_descriptions_are_not_broken_where_the_source_was(bare_cli):
    import typer

    def helps(command):
        yield command.name, command.help or ""
        for sub in getattr(command, "commands", {}).values():
            yield from helps(sub)

    for name, text in helps(typer.main.get_command(app)):
        assert "\n" not in text.replace("\n\n", ""), name
    wide = bare_cli("--help", env={"COLUMNS": "200"}).output
    assert "summary.json (mean and 95% CI per method) and report.html" in wide


def test_version_is_the_installed_packages(bare_cli):
    from importlib.metadata import version

    import arpo

    result = bare_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"arpo {version('arpo')}"
    assert version("arpo") == arpo.__version__


def test_console_script_end_to_end(presets_home, reference_png, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    out = tmp_path / "run"
    script = Path(sys.executable).with_name("arpo")
    assert script.is_file(), script
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ARPO_")},
        "ARPO_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [str(script), "invert", str(reference_png), "--preset", "tiny", "--strategy",
         "offline", "--iterations", "1", "--candidates", "1", "--out", str(out), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["iterations"] == 1
    assert Path(summary["run_dir"]) == out
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in (out / "renders").iterdir()) == ["iter-000.png", "iter-001.png"]
