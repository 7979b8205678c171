"""Graph state: prompts, scores and artifact hashes only, so every checkpoint serializes.

``TypedDict`` comes from ``typing_extensions``: on Python 3.11 pydantic cannot build a JSON
schema from ``typing.TypedDict``, and without one LangGraph Studio shows no input form."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from typing_extensions import TypedDict


def highest(current: int, update: int) -> int:
    """The reducer of a count that only grows: a lower update (a stale copy) changes nothing."""
    return max(current, update)


class Scored(TypedDict):
    prompt: str
    text_score: float
    tokens: NotRequired[dict[str, int]]  # the prompt in each text encoder's tokens
    image_score: NotRequired[float]  # set when it was rendered to choose (reranking)
    caption_score: NotRequired[float]  # the captioner's likelihood of it (caption_weight)


class Rendered(TypedDict):
    """A prompt with its renders (artifact hashes) and both scores."""

    iteration: int
    prompt: str
    text_score: float
    image_score: float | None
    renders: list[str]
    caption_score: NotRequired[float | None]  # the captioner's likelihood (caption_weight)


class ArpoState(TypedDict, total=False):
    reference: str  # artifact hash of the reference image (input)
    initial_prompt: str | None  # the caller's starting prompt (input); else a caption
    prompt: str  # the current prompt
    text_score: float  # its CLIP text-image similarity to the reference
    image_score: float | None  # mean image-image similarity of its renders to the reference
    # the captioner's mean token log-probability of it as the reference's caption, when the
    # run weighs the captioner's judgement (caption_weight); None otherwise
    caption_score: float | None
    renders: list[str]  # its renders
    iteration: int
    critique: list[str] | None
    candidates: list[Scored]  # this iteration's proposals, scored, best first
    candidates_scored: int  # prompts the proposer scored to choose them (offline: its edits)
    proposer: str  # who proposed them: "llm", "offline", "offline (LLM fallback)"
    note: str | None  # what happened this iteration (a cut, a fallback); cleared by select
    best: Rendered
    stale: int  # iterations in a row without improvement
    elapsed_s: float  # wall time of finished nodes; survives resume
    # renders the backend made for this run (cache hits free); survives resume. It only
    # grows: kept by max, so a resume can raise it to what a failed step paid for
    renders_spent: Annotated[int, highest]
    stop_reason: str | None
    # the captioner's other hypotheses, best first, each a start to restart from on a stall
    alternatives: list[Scored]
    history: Annotated[list[dict[str, Any]], operator.add]  # one record per rendered prompt
