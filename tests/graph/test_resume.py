"""Resuming runs: after a crash a run continues from its last checkpoint without redoing
finished iterations; finished runs are re-exported; unknown ids are refused clearly."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from synthetic import (
    POOR_START,
    Crash,
    CrashingPainter,
    Events,
    Painter,
    checkpoint_snapshots,
    reference_image,
    run_record,
    synthetic_toolbox,
)

from arpo import api
from arpo.errors import RunNotFoundError
from arpo.tools.toolbox import Toolbox

OPTIONS: dict[str, Any] = {
    "strategy": "offline",
    "prompt": POOR_START,
    "iterations": 6,
    "candidates": 6,
    "patience": 0,
    "width": 64,
    "height": 64,
    "steps": 1,
}


def stored_images(toolbox: Toolbox) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in toolbox.store.root.rglob("*.png")}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("error", "status"),
    [(RuntimeError("GPU fell off the bus"), "failed"), (Crash("power cut"), "interrupted")],
)
def test_resume_after_a_crash_continues_without_redoing_finished_iterations(
    tmp_path: Path, error: BaseException, status: str
) -> None:
    home = tmp_path / "home"
    crashing = synthetic_toolbox(home, painter=CrashingPainter(crash_on=4, error=error))
    events = Events()

    with pytest.raises(type(error)):
        api.reverse_prompt(reference_image(), toolbox=crashing, on_progress=events, **OPTIONS)

    record = run_record(crashing, events.run_id)
    assert record["status"] == status
    assert str(error) in record["error"]
    assert record["lease"] is None
    finished = checkpoint_snapshots(crashing, events.run_id)[0]["history"]
    assert 1 <= len(finished) < 6, "the crash hit mid-run"
    artifacts = stored_images(crashing)

    painter = Painter()
    healthy = synthetic_toolbox(home, painter=painter)
    result = api.resume(events.run_id, toolbox=healthy)

    uninterrupted = Painter()
    expected = api.reverse_prompt(
        reference_image(), toolbox=synthetic_toolbox(tmp_path / "other", uninterrupted), **OPTIONS
    )
    assert result.stop_reason == "max_iterations"
    assert [r["iteration"] for r in result.history] == list(range(7))
    assert result.history == expected.history, "same as if it had never crashed"
    assert not {r["prompt"] for r in finished} & set(painter.rendered), "no re-renders"
    assert len(painter.calls) == len(uninterrupted.calls) - 3, "only the crashed call redone"
    for path, data in artifacts.items():
        assert path.read_bytes() == data
        assert sha256(path) == path.stem, "content-addressed artifacts are intact"
    for exported, original in zip(result.history, finished, strict=False):
        render = result.run_dir / exported["render"]
        assert sha256(render) == original["renders"][0]
        Image.open(render).verify()
    assert run_record(healthy, events.run_id)["status"] == "finished"


def test_resuming_a_finished_run_reexports_it_without_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = api.reverse_prompt(reference_image(), toolbox=synthetic_toolbox(home), **OPTIONS)
    (first.run_dir / "result.json").unlink()
    (first.run_dir / "report.html").unlink()

    painter = CrashingPainter(crash_on=1, error=AssertionError("nothing should render"))
    events = Events()
    again = api.resume(first.run_id, toolbox=synthetic_toolbox(home, painter), on_progress=events)

    assert painter.calls == []
    assert [e["event"] for e in events.all] == ["started"]
    assert again == first
    assert (first.run_dir / "result.json").is_file()
    assert (first.run_dir / "report.html").is_file()


def test_resuming_an_unknown_run_is_refused_clearly(tmp_path: Path) -> None:
    toolbox = synthetic_toolbox(tmp_path / "home")

    with pytest.raises(RunNotFoundError, match="no run '20990101-000000-abcdef' in") as caught:
        api.resume("20990101-000000-abcdef", toolbox=toolbox)
    assert str(toolbox.settings.runs_dir) in str(caught.value)

    with pytest.raises(RunNotFoundError, match="is not a run id"):
        api.resume("../escape", toolbox=toolbox)
