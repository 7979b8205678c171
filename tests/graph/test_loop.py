"""The ARPO loop end to end on synthetic models: it improves, stops for the right reason,
streams one event per iteration, exports the run and keeps pixels out of its checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from synthetic import (
    POOR_START,
    TARGET,
    Events,
    Painter,
    WordScorer,
    checkpoint_snapshots,
    reference_image,
    synthetic_toolbox,
)

from arpo import api
from arpo.errors import InvalidOptionError
from arpo.tools.toolbox import Toolbox

FAST = {"width": 64, "height": 64, "steps": 1}


def invert(toolbox: Toolbox, **options: Any) -> api.Result:
    """A text-objective run (no rerank) without a render budget, unless ``options`` say so."""
    loop = {"patience": 0, "rerank_top_k": 0, "budget": 0}
    options = {"strategy": "offline", "prompt": POOR_START, **loop, **FAST, **options}
    return api.reverse_prompt(reference_image(), toolbox=toolbox, **options)


@pytest.fixture
def toolbox(tmp_path: Path) -> Toolbox:
    return synthetic_toolbox(tmp_path / "home")


def test_loop_improves_the_prompt_greedily_and_keeps_the_best(toolbox: Toolbox) -> None:
    result = invert(toolbox, iterations=6, candidates=6)

    scores = [record["text_score"] for record in result.history]
    assert result.initial_prompt == POOR_START
    assert result.best_text_score > scores[0]
    assert scores == sorted(scores), "a greedy text search never goes back"
    best_seen = max(result.history, key=lambda record: record["text_score"])
    assert result.best_prompt == best_seen["prompt"]
    assert result.best_text_score == best_seen["text_score"]
    assert result.stop_reason == "max_iterations"
    assert result.iterations == 6
    assert [record["iteration"] for record in result.history] == list(range(7))
    assert {record["proposer"] for record in result.history[:-1]} == {"offline"}


def test_run_directory_holds_the_exported_run(toolbox: Toolbox) -> None:
    result = invert(toolbox, iterations=3, candidates=4)

    run_dir = result.run_dir
    assert run_dir == toolbox.settings.runs_dir / result.run_id
    for name in ("result.json", "reference.png", "best.png", "report.html", "run.json"):
        assert (run_dir / name).is_file(), name
    renders = sorted(p.name for p in (run_dir / "renders").iterdir())
    assert renders == [f"iter-{i:03d}.png" for i in range(len(result.history))]
    exported = json.loads((run_dir / "result.json").read_text())
    assert exported["best"]["prompt"] == result.best_prompt
    assert exported["history"] == result.history
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert Image.open(result.best_render).size == (64, 64)
    assert result.best_prompt in (run_dir / "report.html").read_text()


def test_patience_stops_when_nothing_improves(toolbox: Toolbox) -> None:
    result = invert(toolbox, prompt=TARGET, iterations=20, patience=2)

    assert result.stop_reason == "patience"
    assert result.iterations == 2
    assert {record["prompt"] for record in result.history} == {TARGET}


def test_target_score_stops_once_reached(toolbox: Toolbox) -> None:
    result = invert(toolbox, iterations=30, candidates=6, target_score=0.8)

    assert result.stop_reason == "target_score"
    assert result.best_text_score >= 0.8
    assert result.iterations < 30
    assert all(record["text_score"] < 0.8 for record in result.history[:-1]), "stops at once"


def test_time_budget_stops_a_slow_run(tmp_path: Path) -> None:
    toolbox = synthetic_toolbox(tmp_path / "home", painter=Painter(delay_s=0.1))

    result = invert(toolbox, iterations=20, time_budget_s=0.05)

    assert result.stop_reason == "time_budget"
    assert result.iterations == 1


def test_rerank_renders_top_candidates_and_picks_by_image_similarity(tmp_path: Path) -> None:
    # "glossy" weighs most in the reference, so text similarity loves it, but renders do not
    # show it: reranking by image similarity must see through that.
    painter = Painter()
    weights = dict.fromkeys(["red", "square", "blue", "background", "flat", "graphic"], 1.0)
    scorer = WordScorer(painter, {**weights, "glossy": 3.0}, invisible={"glossy"})
    toolbox = synthetic_toolbox(tmp_path / "home", painter, scorer)

    result = invert(toolbox, iterations=5, candidates=6, rerank_top_k=3)

    steps = list(zip(result.history, result.history[1:-1], strict=False))
    assert steps
    picked_other_than_text_top = False
    for record, following in steps:
        top = [c["prompt"] for c in record["candidates"][:3] if c["prompt"] != record["prompt"]]
        assert set(top) <= set(painter.rendered), "top-k candidates are rendered"
        by_image = max(top, key=scorer.image_score)
        if scorer.image_score(by_image) > record["image_score"] + 1e-6:
            assert following["prompt"] == by_image
            picked_other_than_text_top |= by_image != record["candidates"][0]["prompt"]
        else:
            assert following["prompt"] == record["prompt"]
    assert picked_other_than_text_top, "this search should once prefer a render over text"
    image_scores = [record["image_score"] for record in result.history]
    assert result.best_image_score == max(image_scores)
    assert image_scores == sorted(image_scores), "a greedy image search never goes back"


def test_each_iteration_records_how_many_prompts_it_scored_and_what_chose(
    tmp_path: Path,
) -> None:
    """The report's "top 8 of 192": the record keeps the best candidates, how many prompts
    were scored to find them (the proposer's edits and the current prompt), and, reranking,
    the image score of each rendered candidate."""
    toolbox = synthetic_toolbox(tmp_path / "home")
    result = invert(toolbox, iterations=3, candidates=4, rerank_top_k=2)

    for record in result.history[:-1]:
        kept = record["candidates"]
        assert len(kept) <= 8 < record["candidates_scored"]  # the offline edits outnumber them
        rendered = [c for c in kept[:2] if c["prompt"] != record["prompt"]]
        assert rendered and all(isinstance(c["image_score"], float) for c in rendered)
        assert all("image_score" not in c for c in kept[2:] if c["prompt"] != record["prompt"])
        current = [c for c in kept if c["prompt"] == record["prompt"]]
        assert all(c["image_score"] == record["image_score"] for c in current)
        assert isinstance(record["improved"], bool)
        assert record["improved"] == (
            result.history[record["iteration"] + 1]["prompt"] != record["prompt"]
        )


def test_rerank_treats_an_image_score_of_zero_as_a_score(tmp_path: Path) -> None:
    # The reference shows only what renders cannot: every render scores exactly 0.0, so no
    # candidate improves on the current prompt and patience must end the run.
    painter = Painter()
    scorer = WordScorer(painter, {"glossy": 1.0}, invisible={"glossy"})
    toolbox = synthetic_toolbox(tmp_path / "home", painter, scorer)

    result = invert(toolbox, iterations=8, candidates=4, rerank_top_k=2, patience=2)

    assert {record["image_score"] for record in result.history} == {0.0}
    assert result.stop_reason == "patience"
    assert {record["prompt"] for record in result.history} == {POOR_START}


def test_one_progress_event_per_iteration(toolbox: Toolbox) -> None:
    events = Events()

    result = invert(toolbox, iterations=4, on_progress=events)

    assert events.all[0]["event"] == "started"
    assert events.all[0]["run_id"] == result.run_id
    assert len(events.iterations) == len(events.all) - 1 == result.iterations == 4
    assert [e["iteration"] for e in events.iterations] == [0, 1, 2, 3]
    keys = {"iteration", "prompt", "text_score", "best_prompt", "best_text_score", "render"}
    for event, record in zip(events.iterations, result.history, strict=False):
        assert keys <= set(event)
        assert event["prompt"] != "" and event["best_prompt"] != ""
        assert isinstance(event["text_score"], float)
        assert event["best_text_score"] >= record["text_score"]
        assert toolbox.store.has(event["render"])
        assert event["objective"] == "text"
        assert event["best_score"] == event["best_text_score"]
        assert "best_image_score" in event
    assert events.iterations[-1]["best_text_score"] <= result.best_text_score


def test_progress_events_of_a_reranking_run_report_the_image_objective(tmp_path: Path) -> None:
    # The rerank test's world: text similarity favours a word that renders never show, so
    # the best image score, which this run optimises, is not what the text score says.
    painter = Painter()
    weights = dict.fromkeys(["red", "square", "blue", "background", "flat", "graphic"], 1.0)
    scorer = WordScorer(painter, {**weights, "glossy": 3.0}, invisible={"glossy"})
    toolbox = synthetic_toolbox(tmp_path / "home", painter, scorer)
    events = Events()

    result = invert(toolbox, iterations=5, candidates=6, rerank_top_k=3, on_progress=events)

    iterations = events.iterations
    assert len(iterations) == result.iterations == 5
    assert {e["objective"] for e in iterations} == {"image"}
    for event in iterations:
        assert event["best_score"] == event["best_image_score"]
        assert isinstance(event["best_score"], float)
        assert {"best_prompt", "best_text_score"} <= set(event)  # the existing keys stay
    best = [e["best_score"] for e in iterations]
    assert best == sorted(best), "the best score by the objective never decreases"
    assert best[-1] > best[0], "this search improves the image score"
    assert best[-1] <= result.best_image_score


def test_checkpoints_hold_no_pixels(toolbox: Toolbox) -> None:
    result = invert(toolbox, iterations=3)

    snapshots = checkpoint_snapshots(toolbox, result.run_id)
    assert len(snapshots) > 3 * 4, "one checkpoint per step"
    for values in snapshots:
        json.dumps(values)  # raises on images, tensors, arrays or bytes
    assert snapshots[0]["best"]["prompt"] == result.best_prompt


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"iterations": 0}, "iterations=0 must be at least 1"),
        ({"candidates": 0}, "candidates=0 must be at least 1"),
        ({"width": 100}, "width=100 is not usable: image sizes must be positive multiples of 8"),
        ({"colour": "red"}, "unknown run option(s): colour; known: budget, candidates"),
        ({"strategy": "bogus"}, "strategy 'bogus' is unknown; choose one of auto, vanilla"),
        ({"strategy": "enhanced"}, "needs an LLM"),
    ],
)
def test_invalid_options_are_refused_before_a_run_starts(
    toolbox: Toolbox, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        invert(toolbox, **options)

    assert message in str(caught.value)
    assert not toolbox.settings.runs_dir.exists()


def test_llm_strategy_without_llm_says_how_to_configure_one(toolbox: Toolbox) -> None:
    with pytest.raises(InvalidOptionError, match="ARPO_LLM") as caught:
        invert(toolbox, strategy="vanilla")

    assert "--strategy offline" in str(caught.value)
