"""Restarts: where single phrase edits stall, the run starts again from the captioner's
next-best caption, within the render budget, and still answers with the best prompt seen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from synthetic import WordScorer, captioned_toolbox, reference_image

from arpo import api
from arpo.tools.toolbox import Toolbox

FAST = {"width": 64, "height": 64, "steps": 1}
#: The scene holds a subject the vocabulary has no phrase for: edits of vocabulary phrases can
#: never state it, so a search that starts without it provably stalls below the target.
TARGET = "purple hexagon, blue background, flat graphic"
HYPOTHESES = ["a house, white background", "purple hexagon"]


class BeamCaptioner:
    """A captioner whose best caption misses the subject and whose runner-up names it."""

    name = "beam-captioner"

    def __init__(self, hypotheses: list[str]) -> None:
        self.found = hypotheses
        self.asked: list[int] = []

    def caption(self, pictures: list[Image.Image]) -> list[str]:
        return [self.found[0] for _ in pictures]

    def hypotheses(self, picture: Image.Image, count: int) -> list[str]:
        self.asked.append(count)
        return self.found[:count]


def toolbox(home: Path, captioner: BeamCaptioner) -> tuple[Toolbox, WordScorer]:
    return captioned_toolbox(home, captioner, TARGET)


def invert(tools: Toolbox, **options: Any) -> api.Result:
    loop = {"strategy": "offline", "iterations": 12, "patience": 2, **FAST}
    return api.reverse_prompt(reference_image(), toolbox=tools, **{**loop, **options})


def test_without_restarts_single_edits_stall_below_the_target(tmp_path: Path) -> None:
    tools, scorer = toolbox(tmp_path, BeamCaptioner(HYPOTHESES))
    result = invert(tools, restarts=0)
    assert result.stop_reason == "patience"
    assert "hexagon" not in result.best_prompt
    assert result.best_image_score < scorer.image_score(TARGET) - 0.1


def test_a_restart_from_the_next_hypothesis_gets_past_the_stall(tmp_path: Path) -> None:
    captioner = BeamCaptioner(HYPOTHESES)
    tools, _ = toolbox(tmp_path, captioner)
    stalled = invert(toolbox(tmp_path / "a", BeamCaptioner(HYPOTHESES))[0], restarts=0)
    result = invert(tools, restarts=2)
    assert captioner.asked == [3]  # the start and two hypotheses to restart from
    assert "purple hexagon" in result.best_prompt
    assert result.best_image_score > stalled.best_image_score + 0.1
    notes = [r["note"] or "" for r in result.history]
    (restart,) = [i for i, note in enumerate(notes) if note.startswith("restarted from")]
    assert result.history[restart]["prompt"].startswith("purple hexagon")
    assert result.history[0]["prompt"].startswith("a house")
    assert result.stop_reason in ("patience", "max_iterations", "budget")
    assert result.renders_spent <= 32


def test_restarts_stay_within_the_render_budget(tmp_path: Path) -> None:
    restarted = []
    for budget in range(4, 30, 5):
        tools, _ = toolbox(tmp_path / str(budget), BeamCaptioner(HYPOTHESES))
        result = invert(tools, restarts=2, budget=budget)
        assert result.renders_spent <= budget
        restarted.append(any((r["note"] or "").startswith("restarted") for r in result.history))
    assert restarted[0] is False  # 4 renders: the first prompt and one iteration
    assert restarted[-1] is True  # 29: room for the restart, which the stall needs


def test_a_given_prompt_has_no_hypotheses_to_restart_from(tmp_path: Path) -> None:
    captioner = BeamCaptioner(HYPOTHESES)
    tools, _ = toolbox(tmp_path, captioner)
    result = invert(tools, prompt="a house", restarts=2)
    assert captioner.asked == []
    assert not any((r["note"] or "").startswith("restarted") for r in result.history)


def test_a_negative_restart_count_is_refused_naming_the_option(tmp_path: Path) -> None:
    import pytest

    from arpo.errors import InvalidOptionError

    tools, _ = toolbox(tmp_path, BeamCaptioner(HYPOTHESES))
    with pytest.raises(InvalidOptionError, match="restarts=-1"):
        invert(tools, restarts=-1)
    assert not list(tools.settings.runs_dir.glob("*"))  # nothing half-recorded
