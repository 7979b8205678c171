"""Self-contained HTML report for one arpo run.

:func:`render_report` turns a run's ``result.json`` (as a mapping) into one HTML page: a header
card with the best prompt, for a demo-world run (``arpo demo``) the true prompt and what the run
recovered of it, the reference beside the best render, an inline SVG chart of the scores per
iteration, and one row per iteration with its render, prompt, scores, critique and candidates
("top 8 of 192", each with the score that selected it). Iterations that kept the prompt before
them (no improvement) fold into one line. :func:`write_report` writes that page as
``RUN_DIR/report.html``.

Scores lead with the run's objective (:func:`arpo.objective.objective_of` of its options: the
text score, or the image score when it reranks): the header's best line, each iteration's
change from the one before, and the chart's best marker use it; the other score stands beside.

The page needs nothing outside the run directory: no scripts, no fonts, no CDN. Images are
referenced by their paths relative to the run directory, which is where the report lives. Every
string taken from the result is HTML-escaped; the result is read defensively, so optional keys
may be missing and the history may be empty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from arpo.errors import ArpoError, RunNotFoundError
from arpo.objective import Objective, objective_of, other_objective, score_key
from arpo.report.html import (
    Frame,
    Scale,
    as_mapping,
    as_number,
    as_text,
    chips,
    definition_list,
    esc,
    figure,
    format_elapsed,
    format_score,
    is_list,
    page,
    slug,
    svg_axes,
    y_range,
)
from arpo.tools.store import atomic_write

__all__ = ["REPORT_NAME", "RESULT_NAME", "render_report", "write_report"]

REPORT_NAME = "report.html"
RESULT_NAME = "result.json"
MAX_CANDIDATES = 10

CHART = Frame(width=760, height=320, left=64, right=24, top=24, bottom=76)
_OBJECTIVE_TEXT = {
    "text": "text: CLIP similarity of the prompt to the reference",
    "image": "image: CLIP similarity of the prompt's renders to the reference (reranking)",
}
_TEXT_COLOR = "#2563eb"
_IMAGE_COLOR = "#d97706"
_BEST_COLOR = "#16a34a"


# --------------------------------------------------------------------------- public API


def write_report(run_dir: Path, result: Mapping[str, Any] | None = None) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path.

    When *result* is None it is read from ``run_dir/result.json``.
    """
    run_dir = Path(run_dir)
    if result is None:
        result = _load_result(run_dir)
    target = run_dir / REPORT_NAME
    atomic_write(target, render_report(result).encode("utf-8"))
    return target


def render_report(result: Mapping[str, Any]) -> str:
    """Render the HTML page for a run result (pure: no file access)."""
    history = _history(result)
    best = as_mapping(result.get("best"))
    best_iter = _best_iteration(best, history)
    objective = objective_of(as_mapping(result.get("options")))
    run_id = as_text(result.get("run_id")) or "unknown run"
    reference = as_text(result.get("reference"))
    body = "\n".join(
        [
            _header_card(result, best, best_iter, _iterations_run(result, history), objective),
            _demo_section(as_mapping(result.get("demo")), as_text(best.get("prompt"))),
            _images_section(result, best),
            _chart_section(history, best_iter, objective),
            _iterations_section(history, reference, best_iter, objective),
        ]
    )
    return page(f"arpo report · {run_id}", body)


def _iterations_run(result: Mapping[str, Any], history: list[Mapping[str, Any]]) -> int:
    """Improvement rounds; the history also holds the final prompt's render."""
    value = result.get("iterations")
    return value if isinstance(value, int) and not isinstance(value, bool) else len(history)


# --------------------------------------------------------------------------- I/O


def _load_result(run_dir: Path) -> Mapping[str, Any]:
    path = run_dir / RESULT_NAME
    if not path.is_file():
        raise RunNotFoundError(
            f"No {RESULT_NAME} in {run_dir}: pass the directory of a finished or stopped run."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArpoError(f"Cannot read {path}: {exc}. Re-run arpo to regenerate it.") from exc
    if not isinstance(data, Mapping):
        raise ArpoError(f"{path} does not hold a JSON object; re-run arpo to regenerate it.")
    return data


# --------------------------------------------------------------------------- small helpers


def _history(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = result.get("history")
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        return []
    return [entry for entry in raw if isinstance(entry, Mapping)]


def _iteration_of(entry: Mapping[str, Any], index: int) -> int:
    number = as_number(entry.get("iteration"))
    return int(number) if number is not None else index


def _best_iteration(best: Mapping[str, Any], history: list[Mapping[str, Any]]) -> int | None:
    number = as_number(best.get("iteration"))
    if number is not None:
        return int(number)
    prompt = best.get("prompt")
    for index, entry in enumerate(history):
        if prompt is not None and entry.get("prompt") == prompt:
            return _iteration_of(entry, index)
    return None


# --------------------------------------------------------------------------- page sections


def _header_card(
    result: Mapping[str, Any],
    best: Mapping[str, Any],
    best_iter: int | None,
    n_iters: int,
    objective: Objective,
) -> str:
    run_id = as_text(result.get("run_id")) or "unknown run"
    status = as_text(result.get("status")) or "unknown"
    prompt = as_text(best.get("prompt"))
    prompt_html = (
        f'<pre class="best-prompt"><code>{esc(prompt)}</code></pre>'
        if prompt
        else '<p class="muted">No best prompt recorded.</p>'
    )
    scores = (
        '<div class="scores">'
        f"{_score_chips(best, objective, None, 'score big')}"
        f'<span class="score big">iteration {"—" if best_iter is None else best_iter}</span>'
        "</div>"
    )
    meta = definition_list(
        [
            ("Strategy", esc(result.get("strategy") or "—")),
            ("Objective", esc(_OBJECTIVE_TEXT[objective])),
            ("Stop reason", esc(result.get("stop_reason") or "—")),
            ("Initial prompt", _initial_prompt(result.get("initial_prompt"))),
            ("Iterations run", str(n_iters)),
            ("Elapsed", format_elapsed(result.get("elapsed_s"))),
            ("Renders", esc(renders_line(result))),
            *hosted_rows(result),
            ("Models", chips(_model_names(result.get("models")))),
            ("Family", esc(family_line(result.get("models")))),
            ("Options", chips(result.get("options"))),
            ("Components", _components(result.get("decomposition"))),
        ]
    )
    return (
        '<header class="card">'
        f'<div class="title-row"><h1>arpo run <span class="run-id">{esc(run_id)}</span></h1>'
        f'<span class="badge status-{esc(slug(status))}">{esc(status)}</span></div>'
        f'<h2 class="label">Best prompt</h2>{prompt_html}{scores}{meta}</header>'
    )


def renders_line(result: Mapping[str, Any]) -> str:
    """``12 of 32 (budget)`` or ``12 (no budget)``: the renders the model really made for the
    run, cache hits apart; a run recorded before renders were counted shows a dash."""
    spent = as_number(result.get("renders_spent"))
    if spent is None:
        return "—"
    options = result.get("options")
    budget = as_number(options.get("budget")) if isinstance(options, Mapping) else None
    if budget is None:
        return f"{int(spent)} (no budget)"
    return f"{int(spent)} of {int(budget)} (budget)"


def hosted_rows(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The cost line of a run whose renderer has a price (images API), and a warning where
    its renders are not reproducible (no seed); none for local models."""
    rows = []
    cost = as_mapping(result.get("cost"))
    usd, price = as_number(cost.get("usd")), as_number(cost.get("price_per_image"))
    if usd is not None and price is not None:
        limit = as_number(cost.get("max_cost"))
        line = f"${usd:.2f} ({as_text(cost.get('renders'))} renders at ${price:.3f})"
        rows.append(("Cost", esc(line + (f", limit ${limit:.2f}" if limit is not None else ""))))
    profile = as_mapping(as_mapping(result.get("models")).get("profile"))
    if profile.get("reproducible") is False:
        rows.append(
            (
                "Reproducible",
                esc("no: the text-to-image service takes no seed; a render again is a new sample"),
            )
        )
    return rows


def _model_names(models: Any) -> Any:
    """The models' names, without the family profile's details (shown on their own line)."""
    if not isinstance(models, Mapping):
        return models
    return {k: v for k, v in models.items() if not isinstance(v, Mapping)}


def family_line(models: Any) -> str:
    """``FLUX.1 [dev] (1024 px, 28 steps, guidance 3.5)`` from a result's ``models``; a run
    recorded before families were recorded shows its family name, or a dash."""
    if not isinstance(models, Mapping):
        return "—"
    profile = models.get("profile")
    if not isinstance(profile, Mapping):
        return as_text(models.get("family")) or "—"
    title = as_text(profile.get("title")) or as_text(profile.get("family")) or "unknown family"
    parts = []
    if profile.get("native_size") is not None:
        parts.append(f"{as_text(profile.get('native_size'))} px")
    if profile.get("steps") is not None:
        parts.append(f"{as_text(profile.get('steps'))} steps")
    guidance = profile.get("guidance")
    if isinstance(guidance, int | float) and not isinstance(guidance, bool):
        parts.append(f"guidance {float(guidance):g}")
    shown = f"{title} ({', '.join(parts)})" if parts else title
    extra = [as_text(profile.get(key)) for key in ("family", "dtype") if profile.get(key)]
    return f"{shown}; profile {', '.join(extra)}" if extra else shown


def _score_chips(
    entry: Mapping[str, Any], objective: Objective, previous: float | None, css: str
) -> str:
    """The objective's score first, marked, with its change from *previous* when given; then
    the other score."""
    score = as_number(entry.get(score_key(objective)))
    delta = ""
    if score is not None and previous is not None:
        change = score - previous
        trend = "up" if change > 0 else "down" if change < 0 else "flat"
        delta = f' <span class="delta {trend}">({change:+.3f})</span>'
    other = other_objective(objective)
    return (
        f'<span class="{css} objective" title="the score this run optimises">'
        f"{objective} {format_score(score)}{delta}</span>"
        f'<span class="{css}">{other} {format_score(entry.get(score_key(other)))}</span>'
    )


def _components(value: Any) -> str:
    """The best prompt's stored decomposition (content vs style, for remixing)."""
    parts = {
        name: ", ".join(phrases) if isinstance(phrases, list) else phrases
        for name, phrases in as_mapping(value).items()
        if phrases
    }
    return chips(parts) if parts else '<span class="muted">(not stored)</span>'


def _initial_prompt(value: Any) -> str:
    text = as_text(value)
    return f"<code>{esc(text)}</code>" if text else '<span class="muted">(none)</span>'


def _images_section(result: Mapping[str, Any], best: Mapping[str, Any]) -> str:
    reference = figure(result.get("reference"), "Reference", 384, "no reference image")
    best_render = figure(best.get("render"), "Best render", 384)
    return (
        '<section class="card"><h2>Reference vs best render</h2>'
        f'<div class="pair">{reference}{best_render}</div></section>'
    )


# --------------------------------------------------------------------------- score chart


def _chart_section(
    history: list[Mapping[str, Any]], best_iter: int | None, objective: Objective
) -> str:
    if not history:
        return (
            '<section class="card"><h2>Scores</h2>'
            '<p class="muted">No iterations recorded, so there is nothing to plot.</p></section>'
        )
    chart = _svg_chart(history, best_iter, objective)
    note = f'<p class="muted">This run optimises the {objective} score.</p>'
    return f'<section class="card"><h2>Scores per iteration</h2>{note}{chart}</section>'


def _series(history: list[Mapping[str, Any]], key: str) -> list[tuple[int, float | None]]:
    return [
        (_iteration_of(entry, index), as_number(entry.get(key)))
        for index, entry in enumerate(history)
    ]


def _svg_chart(
    history: list[Mapping[str, Any]], best_iter: int | None, objective: Objective
) -> str:
    text = _series(history, "text_score")
    image = _series(history, "image_score")
    has_image = any(score is not None for _, score in image)
    values = [s for _, s in text + (image if has_image else []) if s is not None]
    low, high, step = y_range(values)
    xs = [it for it, _ in text]
    scale = Scale(CHART, min(xs), max(xs), low, high)
    parts = [
        svg_axes(scale, xs, step, "iteration", "cosine similarity"),
        _svg_best_marker(scale, best_iter, image if objective == "image" else text),
        _svg_series(scale, text, "text", _TEXT_COLOR, "circle"),
    ]
    if has_image:
        parts.append(_svg_series(scale, image, "image", _IMAGE_COLOR, "square"))
    parts.append(_svg_legend(has_image, best_iter is not None))
    label = "Text and image scores" if has_image else "Text score"
    return (
        f'<svg class="chart" viewBox="0 0 {CHART.width} {CHART.height}" '
        f'width="{CHART.width}" height="{CHART.height}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{label} per iteration">'
        f"{''.join(parts)}</svg>"
    )


def _svg_series(
    scale: Scale, series: list[tuple[int, float | None]], name: str, color: str, shape: str
) -> str:
    out = [
        f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2.5" '
        f'stroke-linejoin="round" class="line line-{name}"/>'
        for points in _segments(scale, series)
    ]
    for it, score in series:
        if score is not None:
            out.append(_svg_point(scale.x(it), scale.y(score), it, score, name, color, shape))
    return "".join(out)


def _segments(scale: Scale, series: list[tuple[int, float | None]]) -> list[str]:
    """Polyline point lists for runs of consecutive present scores (gaps break the line)."""
    segments: list[list[str]] = [[]]
    for it, score in series:
        if score is None:
            segments.append([])
        else:
            segments[-1].append(f"{scale.x(it):.1f},{scale.y(score):.1f}")
    return [" ".join(seg) for seg in segments if len(seg) > 1]


def _svg_point(x: float, y: float, it: int, score: float, name: str, color: str, shape: str) -> str:
    tip = f"<title>iteration {it}: {name} score {score:.3f}</title>"
    attrs = f'class="point point-{name}" data-iteration="{it}" fill="{color}" stroke="#fff"'
    if shape == "square":
        return (
            f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" {attrs}>{tip}</rect>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" {attrs}>{tip}</circle>'


def _svg_best_marker(
    scale: Scale, best_iter: int | None, optimised: list[tuple[int, float | None]]
) -> str:
    """A dashed line at the best iteration and a ring on its point of the *optimised* series."""
    if best_iter is None or not (scale.x_lo <= best_iter <= scale.x_hi):
        return ""
    x = scale.x(best_iter)
    out = [
        f'<line x1="{x:.1f}" y1="{CHART.top}" x2="{x:.1f}" y2="{CHART.plot_bottom}" '
        f'stroke="{_BEST_COLOR}" '
        'stroke-width="1.5" stroke-dasharray="5 4" class="best-line"/>',
        f'<text x="{x:.1f}" y="{CHART.top - 13}" text-anchor="middle" class="best-label" '
        f'fill="{_BEST_COLOR}">best</text>',
    ]
    score = next((s for it, s in optimised if it == best_iter and s is not None), None)
    if score is not None:
        out.append(
            f'<circle cx="{x:.1f}" cy="{scale.y(score):.1f}" r="10" fill="none" '
            f'stroke="{_BEST_COLOR}" stroke-width="2.5" class="best-marker"/>'
        )
    return "".join(out)


def _svg_legend(has_image: bool, has_best: bool) -> str:
    items = [("text score", _TEXT_COLOR, "circle")]
    if has_image:
        items.append(("image score", _IMAGE_COLOR, "square"))
    if has_best:
        items.append(("best iteration", _BEST_COLOR, "ring"))
    out = []
    x = CHART.left + 12
    y = CHART.height - 15
    for label, color, shape in items:
        out.append(_legend_swatch(x, y, color, shape))
        out.append(f'<text x="{x + 14}" y="{y + 4}" class="legend-text">{label}</text>')
        x += 24 + 7 * len(label)
    width = x - CHART.left - 8
    box = (
        f'<rect x="{CHART.left}" y="{y - 12}" width="{width}" height="24" rx="4" '
        'class="legend-box"/>'
    )
    return f'<g class="legend">{box}{"".join(out)}</g>'


def _legend_swatch(x: int, y: int, color: str, shape: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" fill="{color}"/>'
    if shape == "ring":
        return f'<circle cx="{x}" cy="{y}" r="5" fill="none" stroke="{color}" stroke-width="2"/>'
    return (
        f'<line x1="{x - 7}" y1="{y}" x2="{x + 7}" y2="{y}" stroke="{color}" stroke-width="2"/>'
        f'<circle cx="{x}" cy="{y}" r="3.5" fill="{color}"/>'
    )


# --------------------------------------------------------------------------- iterations


def _iterations_section(
    history: list[Mapping[str, Any]], reference: str, best_iter: int | None, objective: Objective
) -> str:
    if not history:
        return (
            '<section class="card"><h2>Iterations</h2>'
            '<p class="muted">This run has no recorded iterations.</p></section>'
        )
    rows: list[tuple[int, str, bool]] = []  # (iteration, html, whether it kept the prompt)
    previous: float | None = None  # the objective's score one entry earlier
    for index, entry in enumerate(history):
        scores = _iteration_scores(entry, objective, previous)
        following = history[index + 1].get("prompt") if index + 1 < len(history) else None
        html = _iteration_row(entry, index, reference, best_iter, scores, following)
        it = _iteration_of(entry, index)
        kept = index > 0 and entry.get("prompt") == history[index - 1].get("prompt")
        rows.append((it, html, kept and it != best_iter))
        previous = as_number(entry.get(score_key(objective)))
    return f'<section class="card"><h2>Iterations</h2>{"".join(_fold_stalls(rows))}</section>'


def _fold_stalls(rows: list[tuple[int, str, bool]]) -> list[str]:
    """Runs of iterations that kept the prompt before them (their select found nothing
    better) as one folded line, "iterations 11-13: no improvement", the rows inside."""
    out: list[str] = []
    k = 0
    while k < len(rows):
        if not rows[k][2]:
            out.append(rows[k][1])
            k += 1
            continue
        end = k
        while end + 1 < len(rows) and rows[end + 1][2]:
            end += 1
        first, last = rows[k][0], rows[end][0]
        span = f"iteration {first}" if first == last else f"iterations {first}-{last}"
        kept_from = rows[k - 1][0] if k else first
        out.append(
            f'<details class="stall"><summary><strong>{span}: no improvement</strong> '
            f'<span class="muted">(the prompt of iteration {kept_from} kept; '
            f"{end - k + 1} rows folded)</span></summary>"
            f"{''.join(html for _, html, _ in rows[k : end + 1])}</details>"
        )
        k = end + 1
    return out


def _iteration_row(
    entry: Mapping[str, Any],
    index: int,
    reference: str,
    best_iter: int | None,
    scores: str,
    following: Any = None,
) -> str:
    """One iteration; ``following``: the next entry's prompt (the candidate it chose)."""
    it = _iteration_of(entry, index)
    is_best = best_iter is not None and it == best_iter
    badge = ' <span class="badge best">best</span>' if is_best else ""
    images = (
        f'<div class="pair small">{figure(reference, "Reference", 192, "no reference image")}'
        f"{figure(entry.get('render'), f'Render {it}', 192)}</div>"
    )
    details = (
        f"<h3>Iteration {it}{badge}</h3>"
        f'<pre class="prompt"><code>{esc(entry.get("prompt"))}</code></pre>'
        f"{scores}"
        f"{_critique(entry.get('critique'))}{_note(entry.get('note'))}"
    )
    css = "iter best-iter" if is_best else "iter"
    return (
        f'<article class="{css}" id="iteration-{it}">{images}'
        f'<div class="iter-body">{details}</div>{_candidates(entry, following)}</article>'
    )


def _iteration_scores(
    entry: Mapping[str, Any], objective: Objective, previous: float | None
) -> str:
    proposer = esc(entry.get("proposer") or "—")
    return (
        f'<div class="scores">{_score_chips(entry, objective, previous, "score")}'
        f'<span class="score">proposer {proposer}</span></div>'
    )


def _critique(value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    items = [value] if isinstance(value, str) else list(value) if is_list(value) else [value]
    lis = "".join(f"<li>{esc(item)}</li>" for item in items)
    return f'<div class="critique"><h4>Critique</h4><ul>{lis}</ul></div>'


def _note(value: Any) -> str:
    text = as_text(value)
    return f'<p class="note"><strong>Note:</strong> {esc(text)}</p>' if text else ""


def _candidates(entry: Mapping[str, Any], following: Any = None) -> str:
    """The iteration's best candidates, "top 8 of 192" (of every prompt scored, the current
    one included), each with the score that selected it: the image score of the rendered ones
    (reranking), else the text score; the current prompt and the one chosen are tagged."""
    value = entry.get("candidates")
    if not is_list(value):
        return ""
    cands = [c for c in value if isinstance(c, Mapping)]
    if not cands:
        return ""
    ranked = sorted(cands, key=_candidate_key, reverse=True)
    shown = ranked[:MAX_CANDIDATES]
    scored = as_number(entry.get("candidates_scored"))
    total = max(len(ranked), int(scored)) if scored is not None else len(ranked)
    rendered = sum(1 for c in shown if as_number(c.get("image_score")) is not None)
    by = f"; {rendered} rendered, chosen by image score" if rendered else ", chosen by text score"
    rows = "".join(
        f'<tr><td class="num">{rank}</td><td class="num">{_selected_by(c)}</td>'
        f"<td><code>{esc(c.get('prompt'))}</code>{_candidate_tags(c, entry, following)}</td></tr>"
        for rank, c in enumerate(shown, start=1)
    )
    return (
        f'<details class="candidates"><summary>Candidates: top {len(shown)} of {total}'
        f"{by}</summary>"
        "<table><thead><tr><th>#</th><th>selected by</th><th>prompt</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></details>"
    )


def _selected_by(candidate: Mapping[str, Any]) -> str:
    image = as_number(candidate.get("image_score"))
    if image is not None:
        return f'<span class="by image">image</span> {format_score(image)}'
    return f'<span class="by">text</span> {format_score(candidate.get("text_score"))}'


def _candidate_tags(candidate: Mapping[str, Any], entry: Mapping[str, Any], following: Any) -> str:
    prompt = candidate.get("prompt")
    if prompt == entry.get("prompt"):
        return ' <span class="badge">current</span>'
    if following is not None and prompt == following:
        return ' <span class="badge best">chosen</span>'
    return ""


def _candidate_key(candidate: Mapping[str, Any]) -> float:
    score = as_number(candidate.get("text_score"))
    return -math.inf if score is None else score


# --------------------------------------------------------------------------- demo world


def _demo_section(demo: Mapping[str, Any], recovered: str) -> str:
    """What a demo-world run knows beside the prompt: the true prompt (the seed's part
    marked when the user gave a prompt), the recovered one, and the attributes it hits."""
    if not demo:
        return ""
    user_prompt = as_text(demo.get("user_prompt"))
    origin = (
        f"Drawn from your prompt <code>{esc(user_prompt)}</code>; "
        '<mark class="seed">highlighted</mark>: not in your prompt, the seed chose it '
        "(not judged)."
        if user_prompt
        else f"Held-out demo scene {esc(demo.get('scene'))}, drawn at random."
    )
    facts = definition_list(
        [
            ("True prompt", f'<pre class="prompt"><code>{_true_prompt(demo)}</code></pre>'),
            ("Recovered", f'<pre class="prompt"><code>{esc(recovered)}</code></pre>'),
            ("Attributes", esc(_recovered_line(demo))),
            ("Hits", _fact_chips(demo.get("hits"), "hit")),
            ("Misses", _fact_chips(demo.get("misses"), "miss")),
            ("Wrong", _fact_chips(demo.get("wrong"), "miss")),
            ("Not shown by the render", _fact_chips(demo.get("hidden"), "")),
        ]
        + (
            [
                ("Chosen by the seed", _fact_chips(demo.get("seed_chosen"), "")),
                ("Recovered anyway", _fact_chips(demo.get("seed_hits"), "")),
            ]
            if user_prompt
            else []
        )
    )
    return (
        '<section class="card demo"><h2>Demo world: the true prompt</h2>'
        f'<p class="muted">{origin}</p>{facts}</section>'
    )


def _true_prompt(demo: Mapping[str, Any]) -> str:
    parts = [p for p in demo.get("true_prompt_parts") or [] if isinstance(p, Mapping)]
    if not parts:
        return esc(demo.get("true_prompt"))
    return "".join(
        f'<mark class="seed">{esc(p.get("text"))}</mark>' if p.get("seed") else esc(p.get("text"))
        for p in parts
    )


def _recovered_line(demo: Mapping[str, Any]) -> str:
    """``4/8 recovered (recall 50%, precision 50%, F1 50%; the first prompt: ...)``, the
    numbers the CLI prints."""
    hits, misses = demo.get("hits") or [], demo.get("misses") or []
    line = f"{len(hits)}/{len(hits) + len(misses)} recovered"
    rates = [(name, as_number(demo.get(name))) for name in ("recall", "precision", "f1")]
    shown = [f"{'F1' if n == 'f1' else n} {v:.0%}" for n, v in rates if v is not None]
    first = [(n, as_number(demo.get(f"initial_{n}"))) for n in ("recall", "f1")]
    before = [f"{'F1' if n == 'f1' else n} {v:.0%}" for n, v in first if v is not None]
    if before:
        shown.append(f"the first prompt: {', '.join(before)}")
    return f"{line} ({'; '.join(shown)})" if shown else line


def _fact_chips(value: Any, kind: str) -> str:
    items = [as_text(item) for item in value] if is_list(value) else []
    if not items:
        return '<span class="muted">none</span>'
    css = f"chip fact {kind}".strip()
    return " ".join(f'<span class="{css}">{esc(item)}</span>' for item in items)
