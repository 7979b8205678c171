"""``arpo edit``, ``arpo fuse`` and ``arpo vary`` on the demo preset (no models to load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.demo import parse_prompt

A = "two red stars, on a black background, flat"
B = "a large blue dotted circle in the center, on a white background, watercolour"


@pytest.fixture
def arpo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ARPO_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--preset", "demo"])


def test_edit_fuse_and_vary(arpo, tmp_path: Path) -> None:
    edited = arpo("edit", A, "--set", "style=pixel art", "--seed", "3", "--json")
    assert edited.exit_code == 0, edited.output
    out = json.loads(edited.stdout)
    assert out["prompt"] == "two red stars, on a black background, pixel art"
    assert out["seed"] == 3 and Path(out["report"]).is_file()

    fused = arpo("fuse", A, B)
    assert fused.exit_code == 0, fused.output
    line = next(x for x in fused.stdout.splitlines() if x.startswith("fuse: "))
    stated = parse_prompt(line.removeprefix("fuse: "))
    assert stated.style == "watercolour" and stated.objects[0].shape == "star"

    varied = arpo("vary", A, "--count", "2", "--seed", "8", "--out", str(tmp_path / "v"))
    assert varied.exit_code == 0, varied.output
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["seed-8.png", "seed-9.png"]


def test_fusing_two_images_shows_progress_and_links_the_runs(arpo, tmp_path: Path) -> None:
    from arpo.demo.render import render_prompt

    render_prompt(A, 0).save(tmp_path / "a.png")
    render_prompt(B, 0).save(tmp_path / "b.png")
    fused = arpo("fuse", "a.png", "b.png", "--iterations", "2")

    assert fused.exit_code == 0, fused.output
    assert "reverse-prompting the content image, 1 of 2: a.png" in fused.output
    assert "reverse-prompting the style image, 2 of 2: b.png" in fused.output
    assert fused.output.count("iteration 2/2") >= 2  # one run display per image
    reports = [x.split(": ", 1)[1] for x in fused.stdout.splitlines() if x.startswith("  run ")]
    assert len(reports) == 2 and all(Path(r).is_file() for r in reports)


def test_an_interrupted_fusion_says_how_to_go_on_without_searching_again(
    arpo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the style image is reverse-prompted: continue that run, then fuse the
    content image's finished run with it."""
    (tmp_path / "a.png").write_bytes(b"")  # fuse's sources only need to look like images
    (tmp_path / "b b.png").write_bytes(b"")

    def interrupted_fuse(content, style, *, on_progress, **_):
        for run_id in ("20261201-000000-aaaaaa", "20261201-000001-bbbbbb"):
            on_progress(
                {"event": "started", "run_id": run_id, "iterations": 2, "run_dir": str(tmp_path)}
            )
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "fuse", interrupted_fuse)
    result = arpo("fuse", "a.png", "b b.png")
    assert result.exit_code == 130, result.output
    assert (
        "continue it with: arpo invert --resume 20261201-000001-bbbbbb; then fuse with: "
        "arpo fuse 20261201-000000-aaaaaa 20261201-000001-bbbbbb"
    ) in result.output


def test_bad_input_exits_with_one_line(arpo) -> None:
    unknown = arpo("edit", A, "--set", "mood=gloomy")
    assert unknown.exit_code == 2 and "unknown prompt component 'mood'" in unknown.output
    malformed = arpo("edit", A, "--set", "gloomy")
    assert malformed.exit_code == 2 and "COMPONENT=TEXT" in malformed.output
    missing = arpo("vary", "20990101-000000-abcdef")
    assert missing.exit_code == 1 and "no run '20990101-000000-abcdef'" in missing.output
    unreadable = arpo("fuse", "missing.png", "other.png")
    assert unreadable.exit_code == 1 and "missing.png" in unreadable.output


def test_an_edit_says_where_an_alias_went_and_what_the_renderer_cannot_show(arpo) -> None:
    edited = arpo("edit", A, "--set", "colour=green", "--set", "style=oil painting", "--json")
    assert edited.exit_code == 0, edited.output
    out = json.loads(edited.stdout)
    assert out["parts"]["palette"] == ["green"] and out["parts"]["style"] == ["oil painting"]
    assert out["notes"] == [
        "'colour' went to the palette component (arpo's name for it)",
        "the renderer cannot show oil painting, green: arpo-demo-renderer-v2 draws the same "
        "without it",
    ]
    shown = arpo("edit", A, "--instruction", "make it watercolor")
    assert shown.exit_code == 0, shown.output
    assert "edit: two red stars, on a black background, watercolour" in shown.stdout
    assert "cannot show" not in shown.stdout  # the demo world draws watercolour
