"""Summary statistics on hand-made results."""

from __future__ import annotations

import math

import pytest

from arpo.bench.summary import markdown_table, mean_ci, summarize, t_quantile_975


def test_mean_ci_is_student_t_half_width() -> None:
    stat = mean_ci([1.0, 2.0, 3.0])  # sd 1, n 3, t(0.975, 2) = 4.303
    assert stat["mean"] == pytest.approx(2.0)
    assert stat["ci95"] == pytest.approx(4.303 / math.sqrt(3))
    assert stat["n"] == 3


def test_mean_ci_of_one_value_has_no_interval_and_of_none_no_mean() -> None:
    assert mean_ci([0.5]) == {"mean": 0.5, "ci95": None, "n": 1}
    assert mean_ci([]) == {"mean": None, "ci95": None, "n": 0}
    assert mean_ci([float("nan"), 2.0, 4.0])["mean"] == pytest.approx(3.0)


def test_t_quantile_tends_to_the_normal_one() -> None:
    assert t_quantile_975(1) == pytest.approx(12.706)
    assert t_quantile_975(30) == pytest.approx(2.042)
    assert t_quantile_975(40) == pytest.approx(2.021, abs=0.002)
    assert t_quantile_975(1000) == pytest.approx(1.96, abs=0.003)
    with pytest.raises(ValueError):
        t_quantile_975(0)


ROWS = [
    {"image": "a", "method": "x", "status": "done", "text_score": 0.2, "renders": 4},
    {"image": "b", "method": "x", "status": "done", "text_score": 0.4, "renders": 4},
    {"image": "c", "method": "x", "status": "failed", "text_score": None},
    {"image": "a", "method": "y", "status": "skipped"},
    {"image": "a", "method": "z", "status": "done", "text_score": 0.9, "renders": None},
]


def test_summarize_counts_outcomes_and_averages_finished_images_only() -> None:
    summary = summarize(ROWS, ["text_score", "renders"], ["x", "y", "z"])
    assert list(summary) == ["x", "y", "z"]
    x = summary["x"]
    assert (x["images"], x["failed"], x["skipped"]) == (2, 1, 0)
    assert x["metrics"]["text_score"]["mean"] == pytest.approx(0.3)
    assert x["metrics"]["text_score"]["ci95"] == pytest.approx(12.706 * 0.1414214 / math.sqrt(2))
    assert x["metrics"]["renders"] == {"mean": 4.0, "ci95": 0.0, "n": 2}
    assert summary["y"]["skipped"] == 1 and summary["y"]["metrics"]["text_score"]["n"] == 0
    assert summary["z"]["metrics"]["renders"]["n"] == 0


def test_markdown_table_has_a_row_per_method_and_drops_empty_columns() -> None:
    summary = summarize(ROWS, ["text_score", "renders", "attribute_recall"], ["x", "y"])
    lines = markdown_table(summary).splitlines()
    assert lines[0] == "| method | images | text-image | renders |"
    assert lines[2].startswith("| x | 2 (1 failed) | 0.300 ± ")
    assert lines[3] == "| y | skipped | - | - |"
