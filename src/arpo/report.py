"""Self-contained HTML report for one arpo run.

:func:`render_report` turns a run's ``result.json`` (as a mapping) into one HTML page: a header
card with the best prompt, the reference beside the best render, an inline SVG chart of the
scores per iteration, and one row per iteration with its render, prompt, scores, critique and
candidates. :func:`write_report` writes that page as ``RUN_DIR/report.html``.

The page needs nothing outside the run directory: no scripts, no fonts, no CDN. Images are
referenced by their paths relative to the run directory, which is where the report lives. Every
string taken from the result is HTML-escaped; the result is read defensively, so optional keys
may be missing and the history may be empty.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from arpo.errors import ArpoError, RunNotFoundError
from arpo.tools.store import atomic_write

__all__ = ["REPORT_NAME", "render_remix_report", "render_report", "write_report"]

REPORT_NAME = "report.html"
RESULT_NAME = "result.json"
MAX_CANDIDATES = 10

# Chart geometry (SVG user units).
_W, _H = 760, 320
_ML, _MR, _MT, _MB = 64, 24, 24, 76
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
    best = _mapping(result.get("best"))
    best_iter = _best_iteration(best, history)
    run_id = _text(result.get("run_id")) or "unknown run"
    body = "\n".join(
        [
            _header_card(result, best, best_iter, _iterations_run(result, history)),
            _images_section(result, best),
            _chart_section(history, best_iter),
            _iterations_section(history, _text(result.get("reference")), best_iter),
        ]
    )
    return _page(f"arpo report · {run_id}", body)


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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _history(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = result.get("history")
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        return []
    return [entry for entry in raw if isinstance(entry, Mapping)]


def _text(value: Any) -> str:
    """A value as plain text ('' for None)."""
    return "" if value is None else str(value)


def _esc(value: Any) -> str:
    return escape(_text(value), quote=True)


def _num(value: Any) -> float | None:
    """A finite float, or None for anything that is not a usable number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _score(value: Any) -> str:
    number = _num(value)
    return "—" if number is None else f"{number:.3f}"


def _elapsed(value: Any) -> str:
    seconds = _num(value)
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m {rest:02d} s" if hours else f"{minutes} m {rest:02d} s"


def _iteration_of(entry: Mapping[str, Any], index: int) -> int:
    number = _num(entry.get("iteration"))
    return int(number) if number is not None else index


def _best_iteration(best: Mapping[str, Any], history: list[Mapping[str, Any]]) -> int | None:
    number = _num(best.get("iteration"))
    if number is not None:
        return int(number)
    prompt = best.get("prompt")
    for index, entry in enumerate(history):
        if prompt is not None and entry.get("prompt") == prompt:
            return _iteration_of(entry, index)
    return None


def _src(path: str) -> str:
    """A relative file path as an escaped URL for src/href (keeps '/', encodes the rest)."""
    return escape(quote(path.replace(os.sep, "/"), safe="/"), quote=True)


def _image(path: Any, alt: str, width: int, placeholder: str = "no render") -> str:
    path = _text(path)
    if not path:
        return (
            f'<div class="placeholder" style="width:{width}px;height:{width}px">{placeholder}</div>'
        )
    src = _src(path)
    return f'<a href="{src}"><img src="{src}" alt="{_esc(alt)}" width="{width}" loading="lazy"></a>'


def _figure(path: Any, caption: str, width: int, placeholder: str = "no render") -> str:
    return (
        f"<figure>{_image(path, caption, width, placeholder)}"
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values must already be HTML."""
    rows = "".join(f"<dt>{_esc(key)}</dt><dd>{value}</dd>" for key, value in items)
    return f'<dl class="meta">{rows}</dl>'


def _kv(value: Any) -> str:
    """A mapping as 'key: value' chips, anything else as escaped text."""
    if isinstance(value, Mapping):
        if not value:
            return "—"
        chips = (
            f'<span class="chip"><span class="k">{_esc(k)}</span> {_esc(_plain(v))}</span>'
            for k, v in value.items()
        )
        return " ".join(chips)
    return _esc(value) if value is not None else "—"


def _plain(value: Any) -> str:
    return "none" if value is None else str(value)


# --------------------------------------------------------------------------- page sections


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f'<body>\n<main class="wrap">\n{body}\n</main>\n</body>\n</html>\n'
    )


def _header_card(
    result: Mapping[str, Any], best: Mapping[str, Any], best_iter: int | None, n_iters: int
) -> str:
    run_id = _text(result.get("run_id")) or "unknown run"
    status = _text(result.get("status")) or "unknown"
    prompt = _text(best.get("prompt"))
    prompt_html = (
        f'<pre class="best-prompt"><code>{_esc(prompt)}</code></pre>'
        if prompt
        else '<p class="muted">No best prompt recorded.</p>'
    )
    scores = (
        f'<div class="scores"><span class="score big">text {_score(best.get("text_score"))}</span>'
        f'<span class="score big">image {_score(best.get("image_score"))}</span>'
        f'<span class="score big">iteration {"—" if best_iter is None else best_iter}</span>'
        "</div>"
    )
    meta = _dl(
        [
            ("Strategy", _esc(result.get("strategy") or "—")),
            ("Stop reason", _esc(result.get("stop_reason") or "—")),
            ("Initial prompt", _initial_prompt(result.get("initial_prompt"))),
            ("Iterations run", str(n_iters)),
            ("Elapsed", _elapsed(result.get("elapsed_s"))),
            ("Models", _kv(result.get("models"))),
            ("Options", _kv(result.get("options"))),
            ("Components", _components(result.get("decomposition"))),
        ]
    )
    return (
        '<header class="card">'
        f'<div class="title-row"><h1>arpo run <span class="run-id">{_esc(run_id)}</span></h1>'
        f'<span class="badge status-{_esc(_slug(status))}">{_esc(status)}</span></div>'
        f'<h2 class="label">Best prompt</h2>{prompt_html}{scores}{meta}</header>'
    )


def _components(value: Any) -> str:
    """The best prompt's stored decomposition (content vs style, for remixing)."""
    parts = {
        name: ", ".join(phrases) if isinstance(phrases, list) else phrases
        for name, phrases in _mapping(value).items()
        if phrases
    }
    return _kv(parts) if parts else '<span class="muted">(not stored)</span>'


def _initial_prompt(value: Any) -> str:
    text = _text(value)
    return f"<code>{_esc(text)}</code>" if text else '<span class="muted">(none)</span>'


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


def _images_section(result: Mapping[str, Any], best: Mapping[str, Any]) -> str:
    reference = _figure(result.get("reference"), "Reference", 384, "no reference image")
    best_render = _figure(best.get("render"), "Best render", 384)
    return (
        '<section class="card"><h2>Reference vs best render</h2>'
        f'<div class="pair">{reference}{best_render}</div></section>'
    )


def render_remix_report(remix: Mapping[str, Any]) -> str:
    """The HTML page for an edit or fusion (``remix.json`` as a mapping): the sources' renders
    beside the result's, all with one seed, then each prompt and the result's components."""
    kind = _text(remix.get("kind")) or "remix"
    sources = [s for s in remix.get("sources") or [] if isinstance(s, Mapping)]
    figures = [
        _figure(
            s.get("image"), f"{_text(s.get('role')).capitalize()}: {_text(s.get('prompt'))}", 320
        )
        for s in sources
    ]
    result = "Edited" if kind == "edit" else "Fused"
    figures.append(_figure(remix.get("image"), f"{result}: {_text(remix.get('prompt'))}", 320))
    parts = _mapping(remix.get("parts"))
    components = [
        (name, _esc(", ".join(value) if isinstance(value, list) else _text(value)) or "—")
        for name, value in parts.items()
    ]
    rows = [
        ("seed", _esc(remix.get("seed"))),
        *(
            (f"{_text(s.get('role'))} run", _esc(s.get("run_id")))
            for s in sources
            if s.get("run_id")
        ),
        ("cut to fit", _esc(", ".join(remix.get("cut") or [])) or "—"),
        ("notes", "<br>".join(_esc(n) for n in remix.get("notes") or []) or "—"),
    ]
    body = (
        f'<section class="card"><h1>arpo {_esc(kind)} {_esc(remix.get("remix_id"))}</h1>'
        f'<pre class="best-prompt"><code>{_esc(remix.get("prompt"))}</code></pre>{_dl(rows)}'
        "</section>"
        f'<section class="card"><h2>Same seed, side by side</h2>'
        f'<div class="pair">{"".join(figures)}</div></section>'
        f'<section class="card"><h2>Components</h2>{_dl(components)}</section>'
    )
    return _page(f"arpo {kind}", body)


# --------------------------------------------------------------------------- score chart


def _chart_section(history: list[Mapping[str, Any]], best_iter: int | None) -> str:
    if not history:
        return (
            '<section class="card"><h2>Scores</h2>'
            '<p class="muted">No iterations recorded, so there is nothing to plot.</p></section>'
        )
    chart = _svg_chart(history, best_iter)
    return f'<section class="card"><h2>Scores per iteration</h2>{chart}</section>'


def _series(history: list[Mapping[str, Any]], key: str) -> list[tuple[int, float | None]]:
    return [
        (_iteration_of(entry, index), _num(entry.get(key))) for index, entry in enumerate(history)
    ]


def _nice_step(span: float, target_ticks: int = 5) -> float:
    raw = span / max(target_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _y_range(values: list[float]) -> tuple[float, float, float]:
    """(low, high, step) with nice tick boundaries covering *values*."""
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.05, high + 0.05
    pad = (high - low) * 0.08
    step = _nice_step(high - low + 2 * pad)
    return math.floor((low - pad) / step) * step, math.ceil((high + pad) / step) * step, step


def _x_ticks(xs: list[int]) -> list[int]:
    lo, hi = min(xs), max(xs)
    stride = max(1, math.ceil((hi - lo + 1) / 12))
    return list(range(lo, hi + 1, stride))


class _Scale:
    """Maps iteration numbers and scores to SVG coordinates."""

    def __init__(self, xs: list[int], low: float, high: float) -> None:
        self.x_lo, self.x_hi = min(xs), max(xs)
        self.low, self.high = low, high

    def x(self, iteration: float) -> float:
        width = _W - _ML - _MR
        if self.x_hi == self.x_lo:
            return _ML + width / 2
        return _ML + (iteration - self.x_lo) / (self.x_hi - self.x_lo) * width

    def y(self, score: float) -> float:
        height = _H - _MT - _MB
        return _MT + (self.high - score) / (self.high - self.low) * height


def _svg_chart(history: list[Mapping[str, Any]], best_iter: int | None) -> str:
    text = _series(history, "text_score")
    image = _series(history, "image_score")
    has_image = any(score is not None for _, score in image)
    values = [s for _, s in text + (image if has_image else []) if s is not None]
    low, high, step = _y_range(values)
    xs = [it for it, _ in text]
    scale = _Scale(xs, low, high)
    parts = [
        _svg_axes(scale, xs, low, high, step),
        _svg_best_marker(scale, best_iter, text),
        _svg_series(scale, text, "text", _TEXT_COLOR, "circle"),
    ]
    if has_image:
        parts.append(_svg_series(scale, image, "image", _IMAGE_COLOR, "square"))
    parts.append(_svg_legend(has_image, best_iter is not None))
    label = "Text and image scores" if has_image else "Text score"
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="{label} per iteration">'
        f"{''.join(parts)}</svg>"
    )


def _svg_axes(scale: _Scale, xs: list[int], low: float, high: float, step: float) -> str:
    left, right, top, bottom = _ML, _W - _MR, _MT, _H - _MB
    size = f'width="{right - left}" height="{bottom - top}"'
    out = [f'<rect x="{left}" y="{top}" {size} class="plot-bg"/>']
    count = round((high - low) / step)
    for i in range(count + 1):
        value = low + i * step
        y = scale.y(value)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{_tick_label(value, step)}</text>"
        )
    for it in _x_ticks(xs):
        x = scale.x(it)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" class="axis"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" class="tick">{it}</text>'
        )
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" class="axis"/>')
    out.append(
        f'<text x="{(left + right) / 2:.1f}" y="{bottom + 36}" text-anchor="middle" '
        'class="axis-label">iteration</text>'
    )
    out.append(
        f'<text x="16" y="{(top + bottom) / 2:.1f}" text-anchor="middle" class="axis-label" '
        f'transform="rotate(-90 16 {(top + bottom) / 2:.1f})">cosine similarity</text>'
    )
    return "".join(out)


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, min(4, -math.floor(math.log10(step)) + (0 if step >= 1 else 1)))
    label = f"{value:.{decimals}f}"
    return "0" if float(label) == 0 else label


def _svg_series(
    scale: _Scale, series: list[tuple[int, float | None]], name: str, color: str, shape: str
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


def _segments(scale: _Scale, series: list[tuple[int, float | None]]) -> list[str]:
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
    scale: _Scale, best_iter: int | None, text: list[tuple[int, float | None]]
) -> str:
    if best_iter is None or not (scale.x_lo <= best_iter <= scale.x_hi):
        return ""
    x = scale.x(best_iter)
    out = [
        f'<line x1="{x:.1f}" y1="{_MT}" x2="{x:.1f}" y2="{_H - _MB}" stroke="{_BEST_COLOR}" '
        'stroke-width="1.5" stroke-dasharray="5 4" class="best-line"/>',
        f'<text x="{x:.1f}" y="{_MT - 8}" text-anchor="middle" class="best-label" '
        f'fill="{_BEST_COLOR}">best</text>',
    ]
    score = next((s for it, s in text if it == best_iter and s is not None), None)
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
    x = _ML + 12
    y = _H - 15
    for label, color, shape in items:
        out.append(_legend_swatch(x, y, color, shape))
        out.append(f'<text x="{x + 14}" y="{y + 4}" class="legend-text">{label}</text>')
        x += 24 + 7 * len(label)
    width = x - _ML - 8
    box = f'<rect x="{_ML}" y="{y - 12}" width="{width}" height="24" rx="4" class="legend-box"/>'
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
    history: list[Mapping[str, Any]], reference: str, best_iter: int | None
) -> str:
    if not history:
        return (
            '<section class="card"><h2>Iterations</h2>'
            '<p class="muted">This run has no recorded iterations.</p></section>'
        )
    rows = []
    previous: float | None = None
    for index, entry in enumerate(history):
        rows.append(_iteration_row(entry, index, reference, best_iter, previous))
        previous = _num(entry.get("text_score"))
    return f'<section class="card"><h2>Iterations</h2>{"".join(rows)}</section>'


def _iteration_row(
    entry: Mapping[str, Any],
    index: int,
    reference: str,
    best_iter: int | None,
    previous: float | None,
) -> str:
    it = _iteration_of(entry, index)
    is_best = best_iter is not None and it == best_iter
    badge = ' <span class="badge best">best</span>' if is_best else ""
    images = (
        f'<div class="pair small">{_figure(reference, "Reference", 192, "no reference image")}'
        f"{_figure(entry.get('render'), f'Render {it}', 192)}</div>"
    )
    details = (
        f"<h3>Iteration {it}{badge}</h3>"
        f'<pre class="prompt"><code>{_esc(entry.get("prompt"))}</code></pre>'
        f"{_iteration_scores(entry, previous)}"
        f"{_critique(entry.get('critique'))}{_note(entry.get('note'))}"
        f"{_candidates(entry.get('candidates'))}"
    )
    css = "iter best-iter" if is_best else "iter"
    return (
        f'<article class="{css}" id="iteration-{it}">{images}'
        f'<div class="iter-body">{details}</div></article>'
    )


def _iteration_scores(entry: Mapping[str, Any], previous: float | None) -> str:
    text = _num(entry.get("text_score"))
    delta = ""
    if text is not None and previous is not None:
        change = text - previous
        css = "up" if change > 0 else "down" if change < 0 else "flat"
        delta = f' <span class="delta {css}">({change:+.3f})</span>'
    proposer = _esc(entry.get("proposer") or "—")
    return (
        '<div class="scores">'
        f'<span class="score">text {_score(text)}{delta}</span>'
        f'<span class="score">image {_score(entry.get("image_score"))}</span>'
        f'<span class="score">proposer {proposer}</span></div>'
    )


def _critique(value: Any) -> str:
    if value is None or value == "" or value == []:
        return ""
    items = [value] if isinstance(value, str) else list(value) if _is_list(value) else [value]
    lis = "".join(f"<li>{_esc(item)}</li>" for item in items)
    return f'<div class="critique"><h4>Critique</h4><ul>{lis}</ul></div>'


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence | set | frozenset) and not isinstance(value, str | bytes)


def _note(value: Any) -> str:
    text = _text(value)
    return f'<p class="note"><strong>Note:</strong> {_esc(text)}</p>' if text else ""


def _candidates(value: Any) -> str:
    if not _is_list(value):
        return ""
    cands = [c for c in value if isinstance(c, Mapping)]
    if not cands:
        return ""
    ranked = sorted(cands, key=_candidate_key, reverse=True)
    shown = ranked[:MAX_CANDIDATES]
    more = f", top {len(shown)} shown" if len(ranked) > len(shown) else ""
    rows = "".join(
        f'<tr><td class="num">{rank}</td><td class="num">{_score(c.get("text_score"))}</td>'
        f"<td><code>{_esc(c.get('prompt'))}</code></td></tr>"
        for rank, c in enumerate(shown, start=1)
    )
    return (
        f'<details class="candidates"><summary>Candidates ({len(ranked)}{more})</summary>'
        "<table><thead><tr><th>#</th><th>text score</th><th>prompt</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></details>"
    )


def _candidate_key(candidate: Mapping[str, Any]) -> float:
    score = _num(candidate.get("text_score"))
    return -math.inf if score is None else score


# --------------------------------------------------------------------------- style

_CSS = """
:root { color-scheme: light; --fg:#1f2328; --muted:#656d76; --line:#d0d7de; --bg:#f6f8fa;
  --card:#ffffff; --accent:#2563eb; --best:#16a34a; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.wrap { max-width:1100px; margin:0 auto; padding:24px 16px 48px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:20px 24px; margin-bottom:20px; }
h1 { font-size:1.4rem; margin:0; }
h2 { font-size:1.1rem; margin:0 0 12px; }
h3 { font-size:1rem; margin:0 0 8px; }
h4 { font-size:.85rem; margin:8px 0 4px; color:var(--muted); text-transform:uppercase;
  letter-spacing:.04em; }
h2.label { font-size:.8rem; color:var(--muted); text-transform:uppercase; letter-spacing:.06em;
  margin:16px 0 6px; }
.title-row { display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
.run-id { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight:600; }
pre, code { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { white-space:pre-wrap; word-break:break-word; margin:0; }
pre.best-prompt { font-size:1.25rem; line-height:1.45; background:#eef4ff;
  border:1px solid #c7d7fe; border-radius:8px; padding:14px 16px; user-select:all; }
pre.prompt { background:var(--bg); border:1px solid var(--line); border-radius:6px;
  padding:8px 10px; font-size:.92rem; }
.scores { display:flex; flex-wrap:wrap; gap:8px; margin:10px 0; }
.score { background:var(--bg); border:1px solid var(--line); border-radius:999px;
  padding:2px 10px; font-size:.85rem; font-variant-numeric:tabular-nums; }
.score.big { font-size:1rem; padding:4px 14px; }
.badge { display:inline-block; border-radius:999px; padding:1px 10px; font-size:.78rem;
  font-weight:600; background:#e5e7eb; color:#374151; vertical-align:middle; }
.badge.best, .status-finished { background:#dcfce7; color:#166534; }
.status-failed, .status-error { background:#fee2e2; color:#991b1b; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:6px 16px; margin:12px 0 0; }
dl.meta dt { color:var(--muted); font-size:.88rem; }
dl.meta dd { margin:0; }
.chip { display:inline-block; background:var(--bg); border:1px solid var(--line);
  border-radius:6px; padding:0 6px; margin:0 4px 4px 0; font-size:.85rem; }
.chip .k { color:var(--muted); }
.muted { color:var(--muted); }
.pair { display:flex; flex-wrap:wrap; gap:16px; }
figure { margin:0; }
figure img { display:block; height:auto; max-width:100%; border-radius:6px;
  border:1px solid var(--line); background:var(--bg); }
figcaption { font-size:.82rem; color:var(--muted); margin-top:4px; }
.placeholder { display:flex; align-items:center; justify-content:center; max-width:100%;
  border:2px dashed var(--line); border-radius:6px; color:var(--muted); font-size:.9rem;
  background:var(--bg); }
.chart { display:block; width:100%; height:auto; max-width:760px; }
.chart .plot-bg { fill:#fbfcfd; }
.chart .grid { stroke:#e5e7eb; stroke-width:1; }
.chart .axis { stroke:#6b7280; stroke-width:1.2; }
.chart .tick { font-size:11px; fill:#4b5563; font-variant-numeric:tabular-nums; }
.chart .axis-label { font-size:12px; fill:#374151; }
.chart .best-label { font-size:11px; font-weight:600; }
.chart .legend-box { fill:#ffffff; stroke:#e5e7eb; }
.chart .legend-text { font-size:12px; fill:#374151; }
.iter { display:grid; grid-template-columns:auto 1fr; gap:20px; padding:16px 0;
  border-top:1px solid var(--line); }
.iter:first-of-type { border-top:none; padding-top:0; }
.iter.best-iter { background:linear-gradient(90deg, #f0fdf4, transparent 70%);
  box-shadow:inset 4px 0 0 var(--best); padding-left:14px; border-radius:4px; }
.iter-body { min-width:0; }
.pair.small { gap:10px; }
.critique ul { margin:0; padding-left:20px; }
.note { margin:8px 0; font-size:.92rem; }
.delta.up { color:#15803d; }
.delta.down { color:#b91c1c; }
.delta.flat { color:var(--muted); }
details.candidates { margin-top:10px; }
details.candidates summary { cursor:pointer; color:var(--accent); font-size:.9rem; }
table { border-collapse:collapse; width:100%; margin-top:6px; font-size:.88rem; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.num { font-variant-numeric:tabular-nums; white-space:nowrap; }
@media (max-width:720px) { .iter { grid-template-columns:1fr; } }
"""
