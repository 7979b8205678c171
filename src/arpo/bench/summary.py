"""Per method: mean and 95% confidence interval of every metric over the images it finished;
and paired: each method against a reference (ARPO) on the same images.

The interval is Student's t (``mean ± t(0.975, n-1) · sd / sqrt(n)``): benches are often a
handful of images, where the normal 1.96 is too narrow. Paired differences are the honest
comparison: per-method intervals over possibly different image subsets overlap even when one
method beats the other on nearly every image.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# t quantiles (0.975) for 1..30 degrees of freedom
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """Student's t 0.975 quantile; past 30 degrees of freedom ``1.96 + 2.4 / df`` is within
    0.002 of it."""
    if df < 1:
        raise ValueError("a confidence interval needs at least two values")
    return _T975[df - 1] if df <= len(_T975) else 1.96 + 2.4 / df


def mean_ci(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"mean", "ci95", "n"}``: ``ci95`` is the half-width (None below two values)."""
    clean = [v for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return {"mean": None, "ci95": None, "n": 0}
    mean = statistics.fmean(clean)
    if len(clean) < 2:
        return {"mean": mean, "ci95": None, "n": 1}
    half = t_quantile_975(len(clean) - 1) * statistics.stdev(clean) / math.sqrt(len(clean))
    return {"mean": mean, "ci95": half, "n": len(clean)}


def summarize(
    rows: Iterable[Mapping[str, Any]], metrics: Sequence[str], methods: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """For each method (in ``methods`` order): how many images it finished, failed and
    skipped, and ``mean_ci`` of each metric over its finished images."""
    rows = list(rows)
    summary: dict[str, dict[str, Any]] = {}
    for method in methods:
        mine = [r for r in rows if r.get("method") == method]
        done = [r for r in mine if r.get("status") == "done"]
        summary[method] = {
            "images": len(done),
            "failed": sum(1 for r in mine if r.get("status") == "failed"),
            "skipped": sum(1 for r in mine if r.get("status") == "skipped"),
            "metrics": {m: mean_ci([r[m] for r in done if _is_number(r.get(m))]) for m in metrics},
        }
    return summary


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: The summary table's columns: metric key -> heading (cost detail stays in summary.json).
TABLE_COLUMNS: dict[str, str] = {
    "text_score": "text-image",
    "image_score": "replay image-image",
    "search_image_score": "best search render",
    "true_text_score": "text-text to true",
    "attribute_recall": "attribute recall",
    "attribute_precision": "attribute precision",
    "attribute_f1": "attribute F1",
    "prompt_tokens": "tokens",
    "time_total_s": "s / image",
    "renders": "renders",
    "llm_calls": "LLM calls",
}


#: The summary's columns in groups, each a table of its own on the bench's page (so it fits a
#: narrow window instead of being clipped).
TABLE_GROUPS: dict[str, tuple[str, ...]] = {
    "Similarity to the reference": (
        "text_score",
        "image_score",
        "search_image_score",
        "true_text_score",
    ),
    "Attributes of the true prompt": ("attribute_recall", "attribute_precision", "attribute_f1"),
    "Cost": ("prompt_tokens", "time_total_s", "renders", "llm_calls"),
}

#: Which way is better in a column: higher, lower, or neither (None: not ranked).
BETTER: dict[str, str | None] = {
    **dict.fromkeys(TABLE_GROUPS["Similarity to the reference"], "higher"),
    **dict.fromkeys(TABLE_GROUPS["Attributes of the true prompt"], "higher"),
    "prompt_tokens": None,  # shorter is not better, nor longer
    "time_total_s": "lower",
    "renders": "lower",
    "llm_calls": "lower",
}


def table_columns(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The metric columns some method has a value for (attribute recall only on the demo
    world, say), in :data:`TABLE_COLUMNS` order."""
    return [
        key
        for key in TABLE_COLUMNS
        if any(s["metrics"].get(key, {}).get("mean") is not None for s in summary.values())
    ]


def best_methods(summary: Mapping[str, Mapping[str, Any]], key: str) -> set[str]:
    """The methods with the best mean in column ``key`` (ties: all of them); none where the
    column is not ranked (:data:`BETTER`) or every method has the same value."""
    direction = BETTER.get(key)
    means = {method: entry["metrics"].get(key, {}).get("mean") for method, entry in summary.items()}
    values = {method: mean for method, mean in means.items() if mean is not None}
    if direction is None or len(set(values.values())) < 2:
        return set()
    best = max(values.values()) if direction == "higher" else min(values.values())
    return {method for method, mean in values.items() if mean == best}


def summary_table(summary: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headings and one row of text cells per method: ``mean ± ci95`` per column; columns
    no method has a value for (e.g. attribute recall off the demo world) are left out."""
    columns = table_columns(summary)
    rows = []
    for method, entry in summary.items():
        counts = image_counts(entry)
        cells = [_table_cell(entry["metrics"].get(key, {}), key) for key in columns]
        rows.append([method, counts, *cells])
    return ["method", "images", *(TABLE_COLUMNS[key] for key in columns)], rows


def image_counts(entry: Mapping[str, Any]) -> str:
    """A method's images: ``6``, ``5 (1 failed)``, or ``skipped``."""
    if entry["skipped"] and not entry["images"]:
        return "skipped"
    return f"{entry['images']}" + (f" ({entry['failed']} failed)" if entry["failed"] else "")


#: What a mean over one value says instead of an interval.
NO_INTERVAL = "n=1: no interval"


def format_mean(stat: Mapping[str, Any], key: str = "") -> str:
    """The mean alone, with the column's decimals ("-" without one)."""
    mean = stat.get("mean")
    return "-" if mean is None else f"{mean:.{_digits(key)}f}"


def format_interval(stat: Mapping[str, Any], key: str = "") -> str:
    """``± half-width``; over one value, why there is none (:data:`NO_INTERVAL`)."""
    if stat.get("mean") is None:
        return ""
    half = stat.get("ci95")
    return NO_INTERVAL if half is None else f"± {half:.{_digits(key)}f}"


def format_mean_ci(stat: Mapping[str, Any], key: str = "") -> str:
    """``mean ± ci95``; ``mean (n=1: no interval)`` over one value; "-" without one."""
    mean, interval = format_mean(stat, key), format_interval(stat, key)
    if not interval:
        return mean
    return f"{mean} ({interval})" if interval == NO_INTERVAL else f"{mean} {interval}"


def _digits(key: str) -> int:
    return 1 if key in ("prompt_tokens", "renders", "llm_calls") else 2 if "time" in key else 3


#: A table cell's mark for a mean over one value, and the line under the table saying why.
ONE_VALUE, ONE_VALUE_NOTE = "(n=1)", "(n=1): one value, so no interval"


def _table_cell(stat: Mapping[str, Any], key: str, signed: bool = False) -> str:
    """A markdown cell: ``mean ± ci95``, or ``mean (n=1)`` over one value (explained under
    the table: a cell per metric saying so would fill it)."""
    interval = format_interval(stat, key)
    text = format_mean(stat, key)
    mean = stat.get("mean")
    if signed and mean is not None and mean >= 0:
        text = "+" + text
    if interval == NO_INTERVAL:
        return f"{text} {ONE_VALUE}"
    return f"{text} {interval}" if interval else text


def _with_note(lines: list[str], rows: list[list[str]]) -> str:
    if any(cell.endswith(ONE_VALUE) for row in rows for cell in row):
        lines.append(ONE_VALUE_NOTE)
    return "\n".join(lines)


def markdown_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    headings, rows = summary_table(summary)
    lines = ["| " + " | ".join(headings) + " |", "|" + " --- |" * len(headings)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return _with_note(lines, rows)


# --------------------------------------------------------------------------- paired

#: The method others are paired against by default, else the first ARPO method benched.
DEFAULT_REFERENCE = "arpo-offline"


def reference_method(methods: Sequence[str], reference: str | None = None) -> str | None:
    """The method every other is paired against: ``reference`` (which must be benched),
    else ``arpo-offline``, else the first ``arpo-*`` method; None when no ARPO method ran."""
    if reference is not None:
        if reference not in methods:
            from arpo.errors import InvalidOptionError

            raise InvalidOptionError(
                f"--against {reference}: that method is not benched; choose one of "
                f"{', '.join(methods)}."
            )
        return reference
    if DEFAULT_REFERENCE in methods:
        return DEFAULT_REFERENCE
    return next((m for m in methods if m.startswith("arpo")), None)


def paired_summary(
    rows: Iterable[Mapping[str, Any]],
    metrics: Sequence[str],
    methods: Sequence[str],
    reference: str,
) -> dict[str, Any]:
    """Each method against ``reference`` on the same images: per metric, ``mean_ci`` of the
    per-image difference (method minus reference) over the images where both finished and
    both have a value. An image one of the two lacks is left out of that pair.

    ``{"reference": name, "methods": {method: {"images": n, "metrics": {metric: stat}}}}``.
    """
    done: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("status") == "done":
            done.setdefault(str(row.get("method")), {})[str(row.get("image"))] = row
    base = done.get(reference, {})
    paired: dict[str, Any] = {}
    for method in methods:
        if method == reference:
            continue
        mine = done.get(method, {})
        shared = [image for image in mine if image in base]
        stats = {}
        for metric in metrics:
            differences = [
                float(mine[image][metric]) - float(base[image][metric])
                for image in shared
                if _is_number(mine[image].get(metric)) and _is_number(base[image].get(metric))
            ]
            stats[metric] = mean_ci(differences)
        paired[method] = {"images": len(shared), "metrics": stats}
    return {"reference": reference, "methods": paired}


def paired_table(paired: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headings and one row per method: ``mean difference ± ci95`` (method minus the
    reference) per summary-table column that any pair has a value for."""
    entries = paired.get("methods") or {}
    columns = table_columns(entries)
    rows = [
        [method, str(entry["images"])]
        + [_table_cell(entry["metrics"].get(key, {}), key, signed=True) for key in columns]
        for method, entry in entries.items()
    ]
    return ["method", "images", *(TABLE_COLUMNS[key] for key in columns)], rows


def format_difference(stat: Mapping[str, Any], key: str = "") -> str:
    text = format_mean_ci(stat, key)
    mean = stat.get("mean")
    return text if mean is None or mean < 0 else "+" + text


def paired_markdown(paired: Mapping[str, Any] | None) -> str:
    """The section "paired against REFERENCE": a heading line and its table ("" without a
    reference or other methods)."""
    if not paired or not paired.get("methods"):
        return ""
    headings, rows = paired_table(paired)
    lines = [
        f"paired against {paired['reference']} (mean per-image difference, method minus "
        f"{paired['reference']}, ± 95% CI, on the images both finished):",
        "| " + " | ".join(headings) + " |",
        "|" + " --- |" * len(headings),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return _with_note(lines, rows)
