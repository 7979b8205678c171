"""``arpo.objective.objective_of`` reads a run's objective from its options as
``RunOptions.objective`` decides it, without importing the graph."""

from __future__ import annotations

import json

import pytest

from arpo.graph.context import RunOptions
from arpo.objective import OBJECTIVES, objective_of, other_objective, score_key

OPTION_SETS = [
    {},
    {"rerank_top_k": 0},
    {"rerank_top_k": 1},
    {"rerank_top_k": 3, "candidates": 8},
    {"strategy": "offline", "iterations": 2, "target_score": 0.9},
    {"strategy": "enhanced", "rerank_top_k": 2, "patience": 0},
]


@pytest.mark.parametrize("given", OPTION_SETS)
def test_objective_of_agrees_with_run_options(given: dict) -> None:
    options = RunOptions.build(**given)
    stored = json.loads(json.dumps(options.to_dict()))  # as result.json and run.json hold it
    assert objective_of(options) == objective_of(stored) == options.objective


@pytest.mark.parametrize(
    "stored", [None, {}, {"rerank_top_k": None}, {"rerank_top_k": "3"}, {"rerank_top_k": True}]
)
def test_missing_or_odd_values_mean_text(stored: object) -> None:
    assert objective_of(stored) == "text"


def test_score_keys() -> None:
    assert [score_key(o) for o in OBJECTIVES] == ["text_score", "image_score"]
    assert [other_objective(o) for o in OBJECTIVES] == ["image", "text"]
