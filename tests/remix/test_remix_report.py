"""A fusion of two images on the demo preset: the record says what was used (the inverted
runs' effective options, the preset and models, the render options with the seed), and the
page shows the user's own images above the renders of their recovered prompts, in one grid,
linked to the two runs' reports."""

from __future__ import annotations

import json
import re

import pytest

from arpo import api
from arpo.config import Settings
from arpo.demo.render import render_prompt
from arpo.report import render_remix_report
from arpo.tools.toolbox import Toolbox

CONTENT = "a large red solid star in the center, on a blue background, flat"
STYLE = "two small yellow striped hearts, on a black background, pixel art"


@pytest.fixture(scope="module")
def fused(tmp_path_factory: pytest.TempPathFactory) -> api.Remix:
    folder = tmp_path_factory.mktemp("fuse")
    toolbox = Toolbox(Settings(home=folder / "home", preset="demo"))
    paths = []
    for name, prompt in (("a.png", CONTENT), ("b.png", STYLE)):
        render_prompt(prompt, 0).save(folder / name)
        paths.append(folder / name)
    return api.fuse(
        str(paths[0]), str(paths[1]), toolbox=toolbox, reverse_options={"iterations": 2}
    )


def test_remix_json_records_the_options_actually_used(fused: api.Remix) -> None:
    record = json.loads((fused.remix_dir / "remix.json").read_text())

    assert record["settings"]["preset"] == "demo"
    assert record["settings"]["models"]["t2i"] == "arpo-demo-renderer-v2"
    assert record["settings"]["llm"] is False  # the demo preset has no LLM
    assert record["options"]["seed"] == fused.seed == 0
    assert {"steps", "guidance", "width", "height", "negative_prompt"} <= set(record["options"])
    assert "strategy" not in record["options"]  # render options only
    for source, role, name in zip(
        record["sources"], ("content", "style"), ("a.png", "b.png"), strict=True
    ):
        assert source["role"] == role and source["kind"] == "image"
        assert source["given"].endswith(name)
        used = source["run_options"]
        assert used["strategy"] == "offline"  # "auto" resolved: no LLM configured
        assert used["iterations"] == 2 and used["budget"] == 32 and used["seed"] == 0


def test_fuse_report_shows_the_users_images_beside_their_recovered_prompts(
    fused: api.Remix,
) -> None:
    page = fused.report.read_text()
    grid = page.split('<div class="remix-grid"')[1].split("</section>")[0]
    assert 'style="grid-template-columns:repeat(3, minmax(0, 1fr))"' in grid  # one row of 3
    columns = grid.split('<div class="remix-col')[1:]
    assert len(columns) == 3
    for column, role in zip(columns, ("content", "style"), strict=False):
        assert column.index(f'src="{role}-input.png"') < column.index(f'src="{role}.png"')
        assert f"Your {role} image: " in column
    assert 'src="fuse.png"' in columns[2]
    for role in ("content", "style"):
        assert (fused.remix_dir / f"{role}-input.png").is_file()


def test_fuse_report_links_to_both_runs_reports(fused: api.Remix) -> None:
    page = fused.report.read_text()
    links = re.findall(r'<a href="([^"]+/report\.html)">run <code>([^<]+)</code>', page)
    runs = {side.run_id for side in fused.sources}
    assert {run_id for _, run_id in links} == runs
    for href, _ in links:
        assert (fused.remix_dir / href).resolve().is_file(), href
    assert [side.run_report.is_file() for side in fused.sources if side.run_report] == [True] * 2


def test_a_remix_recorded_before_inputs_and_settings_still_renders() -> None:
    old = {
        "remix_id": "20260101-000000-abcdef",
        "kind": "edit",
        "prompt": "a cat, watercolor",
        "seed": 4,
        "sources": [{"role": "original", "prompt": "a cat", "run_id": None, "image": "o.png"}],
        "image": "edit.png",
        "parts": {"content": ["a cat"], "style": ["watercolor"]},
        "options": {"strategy": "auto", "seed": 4},
        "notes": [],
    }
    page = render_remix_report(old)
    assert "repeat(2, minmax(0, 1fr))" in page and "Your " not in page
    assert "Side by side, seed 4" in page and 'src="o.png"' in page
