"""What a run optimises, read from its options without importing the graph (stdlib only).

A run keeps the prompt with the highest CLIP text-image similarity to the reference
(``"text"``), unless it reranks (``rerank_top_k > 0``): then it renders the top candidates and
keeps the one whose render is most similar to the reference (``"image"``). This mirrors
:attr:`arpo.graph.context.RunOptions.objective`, for code that holds only a run's options as
stored (``result.json``, ``run.json``), such as the HTML report; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["OBJECTIVES", "Objective", "objective_of", "other_objective", "score_key"]

Objective = Literal["text", "image"]
OBJECTIVES: tuple[Objective, ...] = ("text", "image")


def objective_of(options: Mapping[str, Any] | Any) -> Objective:
    """``"image"`` when *options* rerank (``rerank_top_k > 0``), else ``"text"``.

    *options* is a mapping (a run's stored options) or anything with a ``rerank_top_k``
    attribute (``RunOptions``); a missing, null or non-numeric value means no reranking.
    """
    if isinstance(options, Mapping):
        top_k = options.get("rerank_top_k")
    else:
        top_k = getattr(options, "rerank_top_k", None)
    reranks = isinstance(top_k, int | float) and not isinstance(top_k, bool) and top_k > 0
    return "image" if reranks else "text"


def score_key(objective: str) -> str:
    """The key of *objective*'s score in history entries and best records."""
    return "image_score" if objective == "image" else "text_score"


def other_objective(objective: str) -> Objective:
    """The score a run with *objective* does not optimise."""
    return "text" if objective == "image" else "image"
