"""``arpo.api.invert_folder``: a normal run per image of a folder, a caption file beside each,
and a batch that resumes where it stopped. On the demo preset, with small budgets."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from arpo import api
from arpo.api import batch as batch_module
from arpo.bench.dataset import demo_dataset
from arpo.config import Settings
from arpo.errors import ArpoError, InvalidOptionError
from arpo.tools.toolbox import Toolbox

FAST = {"iterations": 1, "budget": 4}


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Toolbox:
    toolbox = Toolbox(Settings(home=tmp_path_factory.mktemp("demo-home"), preset="demo"))
    toolbox.load_models()
    return toolbox


@pytest.fixture
def toolbox(demo_models: Toolbox, tmp_path: Path) -> Toolbox:
    """The demo world on a fresh data directory (the loaded models reused)."""
    settings = Settings(home=tmp_path / "home", preset="demo")
    return Toolbox(settings, renderer=demo_models.backend, scorer=demo_models.scorer)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two demo scenes: ``a.png`` and ``sub/b.png``."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    scenes = demo_dataset("demo:2").images
    scenes[0].load().save(root / "a.png")
    scenes[1].load().save(root / "sub" / "b.png")
    return root


def run_records(toolbox: Toolbox) -> list[str]:
    return sorted(p.parent.name for p in toolbox.settings.runs_dir.glob("*/run.json"))


def by_name(summary: api.BatchSummary) -> dict[str, api.BatchImage]:
    return {image.name: image for image in summary.images}


def test_every_image_gets_a_normal_run_and_its_caption_with_the_prefix(
    toolbox: Toolbox, folder: Path
) -> None:
    summary = api.invert_folder(folder, recursive=True, prefix="sks, ", toolbox=toolbox, **FAST)

    images = by_name(summary)
    assert set(images) == {"a.png", "sub/b.png"}
    for name, image in images.items():
        assert image.status == "finished"
        caption = folder / Path(name).with_suffix(".txt")
        assert image.caption == caption
        assert caption.read_text() == f"sks, {image.prompt}\n"
        details = api.run_details(image.run_id, settings=toolbox.settings)
        assert details.status == "finished"
        assert details.best_prompt == image.prompt
        assert image.report is not None and image.report.is_file()
    # the default output folder is per image folder, under ARPO_HOME
    assert summary.out_dir.parent == toolbox.settings.home / "batches"
    assert not list(folder.rglob(".tmp-*"))


def test_without_recursive_only_the_folder_itself(toolbox: Toolbox, folder: Path) -> None:
    summary = api.invert_folder(folder, toolbox=toolbox, **FAST)
    assert [image.name for image in summary.images] == ["a.png"]
    assert not (folder / "sub" / "b.txt").exists()


def test_batch_json_csv_and_report_list_every_image(toolbox: Toolbox, folder: Path) -> None:
    (folder / "notes.png").write_text("not an image")
    summary = api.invert_folder(folder, recursive=True, toolbox=toolbox, **FAST)

    state = json.loads(summary.batch_json.read_text())
    assert state["counts"] == {"finished": 2, "unreadable": 1}
    assert state["config"]["folder"] == str(folder.resolve())
    rows = {row["name"]: row for row in csv.DictReader(summary.batch_csv.open())}
    assert rows["a.png"]["status"] == "finished"
    assert rows["a.png"]["prompt"] == by_name(summary)["a.png"].prompt
    assert float(rows["a.png"]["image_score"]) == pytest.approx(
        by_name(summary)["a.png"].image_score
    )
    assert rows["notes.png"]["status"] == "unreadable"
    assert "not a supported image format" in rows["notes.png"]["error"]

    page = summary.report.read_text()
    for image in summary.with_status("finished"):
        assert image.prompt in page
        link = os.path.relpath(image.report, summary.out_dir)
        assert f'href="{link}"' in page
        assert (summary.out_dir / link).is_file()
    thumbs = list((summary.out_dir / "thumbs").glob("*.png"))
    assert len(thumbs) == 2
    assert max(Image.open(t).size[0] for t in thumbs) <= batch_module.THUMBNAIL_SIDE
    for thumb in thumbs:
        assert f'src="thumbs/{thumb.name}"' in page
    assert "notes.png" in page and "not a supported image format" in page


def test_an_image_with_a_caption_is_skipped_unless_overwrite(
    toolbox: Toolbox, folder: Path
) -> None:
    (folder / "a.txt").write_text("my own caption")
    summary = api.invert_folder(folder, toolbox=toolbox, **FAST)
    assert by_name(summary)["a.png"].status == "skipped"
    assert "--overwrite" in (by_name(summary)["a.png"].error or "")
    assert (folder / "a.txt").read_text() == "my own caption"
    assert run_records(toolbox) == []

    again = api.invert_folder(folder, toolbox=toolbox, overwrite=True, prefix="p, ", **FAST)
    image = by_name(again)["a.png"]
    assert image.status == "finished"
    assert (folder / "a.txt").read_text() == f"p, {image.prompt}\n"


def test_a_rerun_skips_finished_images(toolbox: Toolbox, folder: Path) -> None:
    first = api.invert_folder(folder, recursive=True, toolbox=toolbox, **FAST)
    runs = run_records(toolbox)
    caption = (folder / "a.txt").read_text()
    (folder / "a.txt").write_text(caption + "edited by hand\n")  # a rerun leaves it alone

    second = api.invert_folder(folder, recursive=True, toolbox=toolbox, **FAST)

    assert second.already_finished == 2
    assert run_records(toolbox) == runs
    assert [i.run_id for i in second.images] == [i.run_id for i in first.images]
    assert all(image.status == "finished" for image in second.images)
    assert (folder / "a.txt").read_text() == caption + "edited by hand\n"


def test_an_interrupted_batch_continues_the_run_it_stopped_in(
    toolbox: Toolbox, folder: Path
) -> None:
    def stop_in_b(event: dict[str, Any]) -> None:
        run = event.get("run") or {}
        if event.get("image") == "sub/b.png" and "iteration" in run:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.invert_folder(folder, recursive=True, toolbox=toolbox, on_progress=stop_in_b, **FAST)

    state = {
        e["name"]: e
        for e in json.loads(next(toolbox.settings.home.glob("batches/*/batch.json")).read_text())[
            "images"
        ]
    }
    assert state["a.png"]["status"] == "finished"
    assert state["sub/b.png"]["status"] == "interrupted"
    stopped = state["sub/b.png"]["run_id"]
    assert api.run_details(stopped, settings=toolbox.settings).resumable
    assert not (folder / "sub" / "b.txt").exists()  # nothing for an unfinished image

    summary = api.invert_folder(folder, recursive=True, toolbox=toolbox, **FAST)

    image = by_name(summary)["sub/b.png"]
    assert image.status == "finished"
    assert image.run_id == stopped  # continued, not started again
    assert summary.already_finished == 1
    assert len(run_records(toolbox)) == 2
    assert (folder / "sub" / "b.txt").read_text() == f"{image.prompt}\n"


def test_a_failing_image_is_retried_once_then_listed_as_failed(
    toolbox: Toolbox, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (48, 40), "white").save(folder / "0-bad.png")
    real = api.runs.reverse_prompt
    calls: list[tuple[int, int]] = []

    def flaky(image: Any, **kwargs: Any) -> Any:
        calls.append(image.size)
        if image.size == (48, 40):
            raise ArpoError("the model is having a bad day")
        return real(image, **kwargs)

    monkeypatch.setattr(api.runs, "reverse_prompt", flaky)
    events: list[dict[str, Any]] = []
    summary = api.invert_folder(folder, toolbox=toolbox, on_progress=events.append, **FAST)

    bad = by_name(summary)["0-bad.png"]
    assert bad.status == "failed"
    assert bad.attempts == 2
    assert bad.error == "the model is having a bad day"
    assert calls.count((48, 40)) == 2
    assert not (folder / "0-bad.txt").exists()
    assert by_name(summary)["a.png"].status == "finished"
    finals = [e["image"] for e in events if e["event"] == "image"]
    assert finals == ["a.png", "0-bad.png"]  # the retry came at the end


def test_unreadable_files_are_listed_and_skipped(toolbox: Toolbox, folder: Path) -> None:
    (folder / "notes.png").write_text("a text file with an image's name")
    (folder / "cut.png").write_bytes((folder / "a.png").read_bytes()[:200])
    (folder / "tiny.png").write_bytes(b"")
    summary = api.invert_folder(folder, toolbox=toolbox, **FAST)

    images = by_name(summary)
    assert {n for n, i in images.items() if i.status == "unreadable"} == {
        "notes.png",
        "cut.png",
        "tiny.png",
    }
    assert "truncated or corrupt" in (images["cut.png"].error or "")
    assert "empty" in (images["tiny.png"].error or "")
    assert images["a.png"].status == "finished"
    assert sorted(p.name for p in folder.glob("*.txt")) == ["a.txt"]
    assert len(run_records(toolbox)) == 1


def test_two_images_that_would_share_a_caption_file(toolbox: Toolbox, folder: Path) -> None:
    Image.open(folder / "a.png").save(folder / "a.jpg")
    summary = api.invert_folder(folder, toolbox=toolbox, **FAST)
    images = by_name(summary)
    assert images["a.jpg"].status == "finished"  # sorted first, it keeps a.txt
    assert images["a.png"].status == "skipped"
    assert "a.txt" in (images["a.png"].error or "")


class FailingReplace:
    """``os`` as atomic_write sees it, except that renaming onto a caption file fails."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def replace(source: str, target: Any) -> None:
        if str(target).endswith(".txt"):
            raise OSError(28, "No space left on device")
        os.replace(source, target)


def test_no_partial_caption_is_left_when_writing_it_fails(
    toolbox: Toolbox, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arpo.tools.store

    monkeypatch.setattr(arpo.tools.store, "os", FailingReplace())
    summary = api.invert_folder(folder, toolbox=toolbox, **FAST)

    image = by_name(summary)["a.png"]
    assert image.status == "failed"
    assert "could not write its caption" in (image.error or "")
    assert "No space left" in (image.error or "")
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "sub"]  # no temp file either

    monkeypatch.undo()
    again = api.invert_folder(folder, toolbox=toolbox, **FAST)
    written = by_name(again)["a.png"]
    assert written.status == "finished"
    assert written.run_id == image.run_id  # the finished run's prompt, not a new run
    assert (folder / "a.txt").read_text() == f"{written.prompt}\n"


def test_bad_arguments_are_refused_before_any_run(toolbox: Toolbox, folder: Path) -> None:
    with pytest.raises(InvalidOptionError, match="not a folder"):
        api.invert_folder(folder / "a.png", toolbox=toolbox)
    with pytest.raises(InvalidOptionError, match="image extension"):
        api.invert_folder(folder, caption_extension=".png", toolbox=toolbox)
    with pytest.raises(InvalidOptionError, match="not a file extension"):
        api.invert_folder(folder, caption_extension="../x", toolbox=toolbox)
    with pytest.raises(InvalidOptionError, match="unknown run option"):
        api.invert_folder(folder, toolbox=toolbox, iteratons=2)
    assert run_records(toolbox) == []


def test_a_rerun_with_other_run_options_is_refused(toolbox: Toolbox, folder: Path) -> None:
    out = folder.parent / "batch"
    api.invert_folder(folder, out_dir=out, toolbox=toolbox, **FAST)
    with pytest.raises(InvalidOptionError, match="give a new --out folder"):
        api.invert_folder(folder, out_dir=out, toolbox=toolbox, iterations=3, budget=4)


def test_a_batch_killed_mid_run_continues_that_run(toolbox: Toolbox, folder: Path) -> None:
    """What ``kill -9`` leaves: batch.json says the image's run is running, and the run's
    record says running with the lease of a process that is gone."""
    from arpo.api.records import RunRecords

    def stop_in_a(event: dict[str, Any]) -> None:
        if "iteration" in (event.get("run") or {}):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.invert_folder(folder, toolbox=toolbox, on_progress=stop_in_a, **FAST)
    state_path = next(toolbox.settings.home.glob("batches/*/batch.json"))
    state = json.loads(state_path.read_text())
    (entry,) = state["images"]
    entry["status"] = "running"
    state_path.write_text(json.dumps(state))
    records = RunRecords(toolbox.settings.runs_dir)
    gone = {"pid": 2**22 + 12345, "host": "", "heartbeat": 0, "token": "dead"}
    records.update(entry["run_id"], status="running", lease=gone)

    summary = api.invert_folder(folder, toolbox=toolbox, **FAST)

    (image,) = summary.images
    assert image.status == "finished"
    assert image.run_id == entry["run_id"]
    assert run_records(toolbox) == [entry["run_id"]]


def test_an_output_folder_inside_the_image_folder_is_not_inverted(
    toolbox: Toolbox, folder: Path
) -> None:
    out = folder / "captions-batch"
    api.invert_folder(folder, out_dir=out, recursive=True, toolbox=toolbox, **FAST)
    assert list((out / "thumbs").glob("*.png"))  # images of its own, in the folder
    again = api.invert_folder(folder, out_dir=out, recursive=True, toolbox=toolbox, **FAST)
    assert [image.name for image in again.images] == ["a.png", "sub/b.png"]
    assert again.already_finished == 2
