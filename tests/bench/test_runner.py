"""Whole benches: outputs, resume, failures and bad images reported, determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from arpo.bench import run_bench
from arpo.bench.methods import METHODS, BenchTask, Method, MethodOutput
from arpo.errors import InvalidImageError, InvalidOptionError
from arpo.tools.toolbox import Toolbox

CHEAP = ["interrogate-fast", "random-search", "arpo-offline"]


def test_a_bench_writes_results_summary_and_report(demo_toolbox: Toolbox, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    events: list[dict] = []
    outcome = run_bench(
        "demo:2", out_dir=out, methods=[*CHEAP, "arpo-vanilla"], budget=6, replay_seeds=2,
        toolbox=demo_toolbox, on_progress=events.append,
    )  # fmt: skip
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["image"], r["method"]) for r in rows][:4] == [
        ("scene-10000-1obj", "interrogate-fast"), ("scene-10000-1obj", "random-search"),
        ("scene-10000-1obj", "arpo-offline"), ("scene-10000-1obj", "arpo-vanilla"),
    ]  # fmt: skip
    done = [r for r in outcome.rows if r["status"] == "done"]
    assert len(done) == 6
    for row in done:
        assert 0 < row["attribute_recall"] <= 1 and -1 <= row["image_score"] <= 1
        assert 0 <= row["attribute_precision"] <= 1 and 0 <= row["attribute_f1"] <= 1
        assert row["true_text_score"] is not None and row["prompt_tokens"] > 0
        assert row["renders"] <= 6 and (row["renders"] > 0) == METHODS[row["method"]].renders
        assert len(row["best_by_render"]) == row["renders"]
        assert (out / row["render"]).is_file()
    skipped = [r for r in outcome.rows if r["method"] == "arpo-vanilla"]
    assert all(r["status"] == "skipped" and "no LLM" in r["note"] for r in skipped)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["budget"] == 6 and summary["replay_seeds"] == 2
    stats = summary["summary"]["random-search"]
    assert stats["images"] == 2 and stats["metrics"]["image_score"]["n"] == 2
    assert summary["summary"]["arpo-vanilla"]["skipped"] == 2
    assert summary["judge"]["held_out"] is True  # the demo preset's held-out judge, by default
    paired = summary["paired"]
    assert paired["reference"] == "arpo-offline" and "arpo-offline" not in paired["methods"]
    fast = paired["methods"]["interrogate-fast"]
    assert fast["images"] == 2 and fast["metrics"]["attribute_f1"]["n"] == 2
    assert paired["methods"]["arpo-vanilla"]["images"] == 0  # skipped: nothing to pair

    report = (out / "report.html").read_text()
    assert "Best score against renders spent" in report and "<polyline" in report
    assert report.count('src="images/scene-10000-1obj/reference.png"') == 1
    assert "arpo-offline" in report and "no LLM configured" in report
    assert "Paired against arpo-offline" in report and "(held out)" in report
    assert "attribute F1" in report and "attribute precision" in report
    assert [e["done"] for e in events if e["event"] == "pair"] == list(range(1, 9))
    assert events[0] == {"event": "started", "total": 8, "out_dir": str(out.resolve())}


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A registered method that records every image it runs on."""
    calls: list[str] = []

    def run(task: BenchTask) -> MethodOutput:
        calls.append(task.workdir.parent.name)
        return MethodOutput("a red circle")

    monkeypatch.setitem(METHODS, "counting", Method("counting", run, "test"))
    return calls


def test_resume_skips_finished_pairs(demo_toolbox, tmp_path, counting) -> None:
    out = tmp_path / "bench"
    first = run_bench("demo:2", out_dir=out, methods=["counting"], toolbox=demo_toolbox)
    assert counting == ["scene-10000-1obj", "scene-10001-2obj"]
    again = run_bench("demo:2", out_dir=out, methods=["counting"], toolbox=demo_toolbox)
    assert counting == ["scene-10000-1obj", "scene-10001-2obj"]  # nothing redone
    assert again.rows == first.rows
    (out / "pairs" / "scene-10001-2obj" / "counting.json").unlink()  # as if interrupted there
    run_bench("demo:3", out_dir=out, methods=["counting"], toolbox=demo_toolbox)
    assert counting[2:] == ["scene-10001-2obj", "scene-10002-3obj"]


def test_resuming_with_other_options_is_refused(demo_toolbox, tmp_path, counting) -> None:
    out = tmp_path / "bench"
    run_bench("demo:1", out_dir=out, methods=["counting"], budget=8, toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match=r"different budget.*another --out"):
        run_bench("demo:1", out_dir=out, methods=["counting"], budget=9, toolbox=demo_toolbox)


def test_a_failing_method_is_recorded_and_the_rest_runs(
    demo_toolbox, tmp_path, monkeypatch
) -> None:
    def broken(task: BenchTask) -> MethodOutput:
        raise RuntimeError("boom")

    def refuses(task: BenchTask) -> MethodOutput:
        raise InvalidImageError("cannot use this image; give another")

    monkeypatch.setitem(METHODS, "broken", Method("broken", broken, "test"))
    monkeypatch.setitem(METHODS, "refuses", Method("refuses", refuses, "test"))
    outcome = run_bench(
        "demo:1", out_dir=tmp_path / "b", methods=["broken", "refuses", "interrogate-fast"],
        toolbox=demo_toolbox,
    )  # fmt: skip
    by_method = {r["method"]: r for r in outcome.rows}
    assert by_method["broken"]["status"] == "failed"
    assert by_method["broken"]["error"] == "RuntimeError: boom"
    assert by_method["refuses"]["error"] == "cannot use this image; give another"
    assert by_method["interrogate-fast"]["status"] == "done"
    assert outcome.summary["broken"]["failed"] == 1
    assert not (tmp_path / "b" / "pairs" / "scene-10000-1obj" / "broken.json").exists()


def test_an_unreadable_image_is_reported_and_the_others_benched(
    tiny_toolbox, tmp_path, reference_png
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.open(reference_png).save(folder / "good.png")
    (folder / "good.txt").write_text("a red square on a blue background")
    (folder / "broken.png").write_bytes(b"\x89PNG truncated")
    out = tmp_path / "bench"
    outcome = run_bench(
        str(folder), out_dir=out, methods=["interrogate-fast"], toolbox=tiny_toolbox,
        options={"width": 64, "height": 64, "steps": 1}, replay_seeds=1, judge="same",
    )  # fmt: skip
    assert [(r["image"], r["status"]) for r in outcome.rows] == [("good.png", "done")]
    assert outcome.rows[0]["true_text_score"] is not None
    assert outcome.rows[0]["attribute_recall"] is None
    assert [p["image"] for p in outcome.problems] == ["broken.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"][0]["image"] == "broken.png"
    assert "broken.png" in (out / "report.html").read_text()


def test_a_bench_is_deterministic_for_fixed_seeds(demo_toolbox: Toolbox, tmp_path: Path) -> None:
    def quality(out: Path) -> list[tuple]:
        outcome = run_bench(
            "demo:1", out_dir=out, methods=["random-search", "arpo-offline"], budget=5,
            replay_seeds=1, seed=7, toolbox=demo_toolbox,
        )  # fmt: skip
        return [(r["prompt"], r["image_score"], r["renders"]) for r in outcome.rows]

    assert quality(tmp_path / "one") == quality(tmp_path / "two")


def test_bad_bench_options_are_refused(demo_toolbox: Toolbox, tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="--budget 0"):
        run_bench("demo:1", out_dir=tmp_path, budget=0, toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="--seeds 0"):
        run_bench("demo:1", out_dir=tmp_path, replay_seeds=0, toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="multiples of 8"):
        run_bench("demo:1", out_dir=tmp_path, options={"width": 30}, toolbox=demo_toolbox)
    with pytest.raises(InvalidOptionError, match="too small"):  # fails on every pair: up front
        run_bench("demo:1", out_dir=tmp_path / "b", budget=1, methods=["arpo-offline"],
                  toolbox=demo_toolbox)  # fmt: skip
    with pytest.raises(InvalidOptionError, match=r"random search.*at least 2"):
        run_bench("demo:1", out_dir=tmp_path / "c", budget=1, methods=["random-search"],
                  options={"images_per_prompt": 2}, toolbox=demo_toolbox)  # fmt: skip
