"""The render budget (``RunOptions.budget``): a stop condition inside the graph that counts
the renders the backend really made for the run (cache hits are free), never lets an
iteration start that could exceed it, and carries its count over a resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from synthetic import POOR_START, Events, Painter, reference_image, synthetic_toolbox

from arpo import api
from arpo.errors import InvalidOptionError

OPTIONS: dict[str, Any] = {
    "strategy": "offline",
    "prompt": POOR_START,
    "candidates": 6,
    "patience": 0,
    "rerank_top_k": 0,  # the text objective unless a case asks for a rerank
    "width": 64,
    "height": 64,
    "steps": 1,
}


class StopAfter:
    """A progress callback that raises KeyboardInterrupt at the ``n``-th iteration event."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "iteration":
            self.seen += 1
            if self.seen >= self.n:
                raise KeyboardInterrupt


def spent_by_record(result: api.Result) -> list[int]:
    return [record["renders_spent"] for record in result.history]


@pytest.mark.parametrize(
    ("options", "per_iteration"),
    [
        ({"images_per_prompt": 2, "budget": 7}, 2),  # text objective: the chosen prompt's seeds
        ({"rerank_top_k": 3, "budget": 10}, 3),  # image objective: k candidates reranked
    ],
)
def test_the_budget_stops_the_run_before_it_could_be_exceeded(
    tmp_path: Path, options: dict[str, Any], per_iteration: int
) -> None:
    painter = Painter()
    toolbox = synthetic_toolbox(tmp_path / "home", painter=painter)
    events = Events()

    result = api.reverse_prompt(
        reference_image(),
        toolbox=toolbox,
        on_progress=events,
        **{**OPTIONS, "iterations": 50, **options},
    )

    budget = options["budget"]
    assert result.stop_reason == "budget"
    assert result.budget == budget
    assert result.renders_spent == len(painter.rendered) <= budget
    # it stopped because one more iteration's worst case would not have fitted
    assert result.renders_spent + per_iteration > budget
    assert result.iterations >= 1
    spent = spent_by_record(result)
    assert spent == sorted(spent) and spent[-1] == result.renders_spent
    assert events.iterations[-1]["stop_reason"] == "budget"
    assert events.iterations[-1]["budget"] == budget
    saved = (result.run_dir / "result.json").read_text()
    assert f'"renders_spent": {result.renders_spent}' in saved
    assert f"{result.renders_spent} of {budget} (budget)" in (result.report).read_text()


def test_cached_renders_are_free(tmp_path: Path) -> None:
    painter = Painter()
    toolbox = synthetic_toolbox(tmp_path / "home", painter=painter)
    first = api.reverse_prompt(reference_image(), toolbox=toolbox, **OPTIONS, iterations=4)
    assert first.renders_spent == len(painter.rendered) > 1
    assert first.budget == 32  # every model's default

    painter.calls.clear()
    # the same search again: every render is in the cache, so a budget of one render pays
    # for all of it (each iteration could still have cost one)
    again = api.reverse_prompt(
        reference_image(), toolbox=toolbox, **OPTIONS, iterations=4, budget=1
    )
    assert painter.rendered == []
    assert again.renders_spent == 0
    assert again.stop_reason == "max_iterations"
    assert again.best_prompt == first.best_prompt
    assert spent_by_record(again) == [0] * len(again.history)


def test_a_budget_that_pays_for_no_iteration_renders_the_first_prompt_only(
    tmp_path: Path,
) -> None:
    painter = Painter()
    toolbox = synthetic_toolbox(tmp_path / "home", painter=painter)
    result = api.reverse_prompt(
        reference_image(), toolbox=toolbox, **OPTIONS, images_per_prompt=2, budget=3
    )
    assert result.stop_reason == "budget"
    assert result.iterations == 0
    assert result.best_prompt == POOR_START
    assert result.renders_spent == len(painter.rendered) == 2


def test_a_budget_below_one_prompts_renders_is_refused(tmp_path: Path) -> None:
    toolbox = synthetic_toolbox(tmp_path / "home")
    with pytest.raises(InvalidOptionError, match="budget=1 renders cannot pay"):
        api.reverse_prompt(
            reference_image(), toolbox=toolbox, **OPTIONS, images_per_prompt=2, budget=1
        )


@pytest.mark.parametrize(("rerank_top_k", "budget"), [(0, 4), (2, 9)])
def test_the_count_survives_a_resume(tmp_path: Path, rerank_top_k: int, budget: int) -> None:
    home = tmp_path / "home"
    options = {**OPTIONS, "iterations": 50, "budget": budget, "rerank_top_k": rerank_top_k}
    painter = Painter()  # shared, as it knows which prompt painted each colour it painted
    stop = StopAfter(2)
    events = Events()

    def progress(event: dict[str, Any]) -> None:
        events(event)
        stop(event)

    with pytest.raises(KeyboardInterrupt):
        api.reverse_prompt(
            reference_image(),
            toolbox=synthetic_toolbox(home, painter=painter),
            on_progress=progress,
            **options,
        )
    first_part = len(painter.rendered)
    assert first_part > 0
    assert 0 < events.iterations[-1]["renders_spent"] <= first_part

    # a new Toolbox (render cache, graph): the count can only come from the checkpoint
    result = api.resume(events.run_id, toolbox=synthetic_toolbox(home, painter=painter))

    total = len(painter.rendered)
    assert result.stop_reason == "budget"
    assert total > first_part
    assert result.renders_spent == total <= budget  # the count went on from the first part
    spent = spent_by_record(result)
    assert spent == sorted(spent) and spent[-1] == total
