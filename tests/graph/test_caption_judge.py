"""The captioner as a second judge (``caption_weight``): where CLIP cannot see what the
scene holds, the captioner's likelihood of each candidate steers the choice to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from synthetic import WordScorer, captioned_toolbox, reference_image

from arpo import api
from arpo.errors import InvalidOptionError
from arpo.tools.toolbox import Toolbox

FAST = {"width": 64, "height": 64, "steps": 1, "strategy": "offline", "iterations": 8}
#: What the search's CLIP sees of the scene: the background and the style, never the subject.
#: Every subject phrase costs it similarity, so by CLIP alone the best edit drops the subject.
CLIP_SEES = "blue background, flat graphic"
SUBJECT = "red square"  # what the scene holds, which only the captioner can see
START = "house, blue background, flat graphic"  # the subject wrong


class JudgingCaptioner:
    """A captioner that scores captions: it finds ``SUBJECT`` likely, anything else not."""

    name = "judging-captioner"
    can_score = True

    def __init__(self) -> None:
        self.scored: list[str] = []

    def caption(self, pictures: list[Image.Image]) -> list[str]:
        return [START for _ in pictures]

    def hypotheses(self, picture: Image.Image, count: int) -> list[str]:
        return [START]

    def likelihood(self, picture: Image.Image, texts: list[str]) -> list[float]:
        self.scored += texts
        return [0.0 if SUBJECT in text else -1.0 for text in texts]


class BlindCaptioner(JudgingCaptioner):
    """The same captioner, but one that cannot score captions (a decoder-only chat model)."""

    can_score = False

    def likelihood(self, picture: Image.Image, texts: list[str]) -> list[float]:
        raise AssertionError("a captioner that cannot score is never asked to")


def toolbox(home: Path, captioner: Any) -> tuple[Toolbox, WordScorer]:
    return captioned_toolbox(home, captioner, CLIP_SEES)


def invert(tools: Toolbox, **options: Any) -> api.Result:
    return api.reverse_prompt(reference_image(), prompt=START, toolbox=tools, **FAST, **options)


def test_by_clip_alone_the_search_drops_the_subject_it_cannot_see(tmp_path: Path) -> None:
    tools, scorer = toolbox(tmp_path, JudgingCaptioner())
    result = invert(tools, caption_weight=0)
    assert SUBJECT not in result.best_prompt
    assert "house" not in result.best_prompt  # the wrong subject dropped: CLIP's best edit
    assert result.best_image_score == pytest.approx(scorer.image_score(CLIP_SEES))
    assert result.best_caption_score is None


def test_the_captioner_s_judgement_brings_the_subject_in(tmp_path: Path) -> None:
    captioner = JudgingCaptioner()
    tools, scorer = toolbox(tmp_path, captioner)
    result = invert(tools, caption_weight=0.3)
    assert SUBJECT in result.best_prompt and "house" not in result.best_prompt
    assert result.best_caption_score == 0.0
    # CLIP alone scores this answer lower than the prompt without a subject
    assert result.best_image_score < scorer.image_score(CLIP_SEES)
    chosen = [r for r in result.history if r["prompt"] == result.best_prompt]
    assert chosen and chosen[0]["caption_score"] == 0.0
    assert len(captioner.scored) == len(set(captioner.scored))  # each text judged once


def test_a_captioner_that_cannot_score_leaves_the_choice_to_clip(tmp_path: Path) -> None:
    tools, _ = toolbox(tmp_path, BlindCaptioner())
    judged = invert(tools, caption_weight=0.3)
    alone = invert(toolbox(tmp_path / "alone", BlindCaptioner())[0], caption_weight=0)
    assert judged.best_prompt == alone.best_prompt
    assert judged.best_caption_score is None


def test_a_negative_caption_weight_is_refused_naming_the_option(tmp_path: Path) -> None:
    tools, _ = toolbox(tmp_path, JudgingCaptioner())
    with pytest.raises(InvalidOptionError, match="caption_weight=-1"):
        invert(tools, caption_weight=-1)
    assert not list(tools.settings.runs_dir.glob("*"))  # nothing half-recorded
