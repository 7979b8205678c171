"""Progress shows the score the run optimises first, and the other labelled beside it."""

from __future__ import annotations

from arpo.api.runs import best_scores
from arpo.cli.display import RunProgress


def test_best_scores_put_the_objective_first() -> None:
    image_run = {"objective": "image", "best_image_score": 0.956, "best_text_score": 0.58}
    assert best_scores(image_run) == "image 0.9560 (text 0.5800)"
    text_run = {"objective": "text", "best_text_score": 0.3121, "best_image_score": None}
    assert best_scores(text_run) == "text 0.3121"
    assert best_scores({"best_text_score": 0.5}) == "text 0.5000", "older events: text"


def test_the_cli_bar_shows_the_objectives_score() -> None:
    progress = RunProgress()
    with progress:
        progress.update({"event": "started", "run_id": "r", "run_dir": "/tmp/r", "iterations": 3})
        progress.update(
            {
                "iteration": 1,
                "prompt": "two red stars",
                "objective": "image",
                "best_image_score": 0.9,
                "best_text_score": 0.4,
            }
        )
    (task,) = progress.progress.tasks
    assert task.fields["best"] == "image 0.9000 (text 0.4000)"
    assert task.completed == 2


def test_the_display_goes_live_with_its_first_bar_not_while_models_load() -> None:
    """Nothing redraws while the models load (the redraw thread would compete with the
    imports); the run's ``started`` event brings the bar, and leaving stops it."""
    progress = RunProgress()
    with progress:
        assert not progress.progress.live.is_started
        progress.update({"event": "started", "run_id": "r", "run_dir": "/tmp/r", "iterations": 3})
        assert progress.progress.live.is_started
    assert not progress.progress.live.is_started


def test_a_display_that_never_went_live_leaves_quietly() -> None:
    with RunProgress() as progress:
        pass  # a run that failed before it started: nothing was drawn, nothing to stop
    assert not progress.progress.live.is_started and progress.resume_hint() is None
