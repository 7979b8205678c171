"""Bench datasets: demo scenes and image folders, bad ones reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from arpo.bench.dataset import load_dataset
from arpo.demo.evaluate import heldout_scene
from arpo.demo.scenes import canonical_prompt
from arpo.errors import InvalidOptionError


def test_demo_dataset_is_held_out_scenes_with_their_true_prompts() -> None:
    data = load_dataset("demo:4")
    assert [i.name for i in data.images] == [
        "scene-10000-1obj", "scene-10001-2obj", "scene-10002-3obj", "scene-10003-1obj",
    ]  # fmt: skip
    first = data.images[0]
    assert first.scene == heldout_scene(10_000, 1)
    assert first.true_prompt == canonical_prompt(first.scene)
    assert first.load().size == (128, 128)
    assert {i.scene.total_objects for i in load_dataset("demo:3:2").images} == {2}


@pytest.mark.parametrize("spec", ["demo:", "demo:0", "demo:x", "demo:3:4"])
def test_a_bad_demo_spec_says_how_to_write_one(spec: str) -> None:
    with pytest.raises(InvalidOptionError, match="demo:N"):
        load_dataset(spec)


def test_folder_dataset_reads_images_and_sidecar_prompts(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "b.png")
    Image.new("RGB", (32, 32), "blue").save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("a blue square\n")
    (tmp_path / "notes.md").write_text("not an image")
    data = load_dataset(str(tmp_path))
    assert [(i.name, i.true_prompt) for i in data.images] == [
        ("a.jpg", "a blue square"),
        ("b.png", None),
    ]
    assert data.problems == []


def test_unreadable_images_are_reported_and_the_rest_kept(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    data = load_dataset(str(tmp_path))
    assert [i.name for i in data.images] == ["good.png"]
    assert [p["image"] for p in data.problems] == ["broken.png"]
    assert data.problems[0]["error"]


def test_an_empty_or_missing_folder_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match=r"no image files.*add images"):
        load_dataset(str(tmp_path))
    (tmp_path / "broken.png").write_bytes(b"junk")
    with pytest.raises(InvalidOptionError, match="1 unreadable image"):
        load_dataset(str(tmp_path))
    with pytest.raises(InvalidOptionError, match="not a folder"):
        load_dataset(str(tmp_path / "missing"))
