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


def _rows(method: str, scores: dict[str, float | None], status: str = "done") -> list[dict]:
    return [
        {"image": image, "method": method, "status": status, "attribute_f1": value}
        for image, value in scores.items()
    ]


def test_paired_differences_have_the_known_mean_and_student_t_interval() -> None:
    from arpo.bench.summary import paired_summary

    arpo = {"a": 0.50, "b": 0.60, "c": 0.70, "d": 0.80}
    # differences against arpo: -0.1, -0.2, -0.3 on a, b, c; d is missing for the baseline,
    # e only the baseline has, f is None for the baseline, g failed for arpo
    baseline = {"a": 0.40, "b": 0.40, "c": 0.40, "e": 0.90, "f": None, "g": 0.1}
    rows = _rows("arpo-offline", arpo) + _rows("baseline", baseline)
    rows += _rows("arpo-offline", {"f": 0.3}) + _rows("arpo-offline", {"g": 0.5}, "failed")
    paired = paired_summary(rows, ["attribute_f1"], ["baseline", "arpo-offline"], "arpo-offline")
    assert paired["reference"] == "arpo-offline" and list(paired["methods"]) == ["baseline"]
    entry = paired["methods"]["baseline"]
    assert entry["images"] == 4  # a, b, c and f both finished; f has no baseline value
    stat = entry["metrics"]["attribute_f1"]
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(-0.2)
    assert stat["ci95"] == pytest.approx(4.303 * 0.1 / math.sqrt(3))  # sd of the differences


def test_a_constant_difference_has_a_zero_interval_though_the_scores_vary() -> None:
    from arpo.bench.summary import paired_markdown, paired_summary

    arpo = {"a": 0.1, "b": 0.5, "c": 0.9}
    rows = _rows("arpo-offline", arpo) + _rows("x", {k: v + 0.05 for k, v in arpo.items()})
    paired = paired_summary(rows, ["attribute_f1"], ["x", "arpo-offline"], "arpo-offline")
    stat = paired["methods"]["x"]["metrics"]["attribute_f1"]
    assert stat["mean"] == pytest.approx(0.05) and stat["ci95"] == pytest.approx(0.0, abs=1e-12)
    unpaired = summarize(rows, ["attribute_f1"], ["x", "arpo-offline"])["x"]["metrics"]
    assert unpaired["attribute_f1"]["ci95"] > 0.5  # the per-method interval hides it
    text = paired_markdown(paired).splitlines()
    assert text[0].startswith("paired against arpo-offline")
    assert text[1] == "| method | images | attribute F1 |"
    assert text[3] == "| x | 3 | +0.050 ± 0.000 |"


def test_the_reference_is_arpo_offline_else_the_first_arpo_method_or_the_one_asked() -> None:
    from arpo.bench.summary import reference_method
    from arpo.errors import InvalidOptionError

    assert reference_method(["pez", "arpo-vanilla", "arpo-offline"]) == "arpo-offline"
    assert reference_method(["pez", "arpo-enhanced", "arpo-vanilla"]) == "arpo-enhanced"
    assert reference_method(["pez", "caption"]) is None
    assert reference_method(["pez", "caption"], "pez") == "pez"
    with pytest.raises(InvalidOptionError, match="not benched"):
        reference_method(["pez"], "arpo-offline")


def test_a_mean_over_one_value_says_why_it_has_no_interval() -> None:
    summary = summarize(ROWS, ["text_score"], ["x", "z"])
    lines = markdown_table(summary).splitlines()
    assert lines[3] == "| z | 1 | 0.900 (n=1) |"
    assert "n=1" not in lines[2]  # two values: an interval
    assert lines[4] == "(n=1): one value, so no interval"
    assert "n=1" not in markdown_table(summarize(ROWS, ["text_score"], ["x"]))


def test_the_best_of_a_column_is_the_highest_score_or_the_lowest_cost() -> None:
    from arpo.bench.summary import best_methods

    metrics = ["image_score", "renders", "prompt_tokens", "llm_calls"]
    values = {"a": (0.8, 30, 20, 0), "b": (0.9, 12, 9, 0), "c": (0.9, 40, 30, 0)}
    rows = [
        {"image": "i", "method": method, "status": "done", **dict(zip(metrics, v, strict=True))}
        for method, v in values.items()
    ]
    summary = summarize(rows, metrics, ["a", "b", "c"])
    assert best_methods(summary, "image_score") == {"b", "c"}  # a tie marks both
    assert best_methods(summary, "renders") == {"b"}
    assert best_methods(summary, "prompt_tokens") == set()  # fewer tokens is not better
    assert best_methods(summary, "llm_calls") == set()  # all the same: nothing to mark
