"""The bench report: one self-contained HTML page (no scripts, fonts or CDN).

Who judged (the held-out judge, or the search's own CLIP, said plainly), the summary table
(mean ± 95% CI per method), each method paired against ARPO on the same images, a plot of the
best image-image score against renders spent, and a contact sheet per image: the reference,
then each method's replay render with its prompt. Image paths are relative to the bench
folder, where the page lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from arpo.report.html import Frame, Scale, esc, format_score, image, nice_step, page, y_range
from arpo.tools.store import atomic_write

CHART = Frame(width=760, height=340, left=64, right=200, top=20, bottom=48)
_PALETTE = ("#2563eb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
_EXTRA_CSS = """<style>
.sheet { display:grid; gap:10px; margin-bottom:16px; }
.sheet figure { min-width:0; }
.sheet figure img { width:100%; }
.sheet figcaption { overflow-wrap:anywhere; }
.sheet figcaption code { display:block; white-space:normal; word-break:break-word;
  font-size:.75rem; color:var(--fg); }
@media (max-width:640px) {
  .sheet { grid-template-columns:repeat(auto-fill, minmax(104px, 1fr)) !important; } }
.problems li { color:#991b1b; }
.scroll { overflow-x:auto; margin-bottom:12px; }
table.stats { width:auto; min-width:60%; }
table.stats th { white-space:normal; vertical-align:bottom; }
table.stats td:first-child { white-space:nowrap; }
table.stats td.num { text-align:right; }
table.stats .ci { display:block; font-size:.76rem; color:var(--muted); }
table.stats .ci.no-ci { font-style:italic; }
table.stats td.best { background:#f0fdf4; }
.best-mark { color:var(--best); }
.warn { color:#92400e; }
</style>"""


def write_report(out: Path, document: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Path:
    target = out / "report.html"
    atomic_write(target, render_report(document, rows).encode("utf-8"))
    return target


def render_report(document: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    summary = document.get("summary") or {}
    body = "\n".join(
        [
            _EXTRA_CSS,
            _header(document),
            _summary_section(summary),
            _paired_section(document.get("paired")),
            _plot_section(rows, list(summary), document.get("budget")),
            _sheets_section(rows, list(summary)),
        ]
    )
    return page(f"arpo bench · {document.get('dataset', '')}", body)


def _header(document: Mapping[str, Any]) -> str:
    models = document.get("models") or {}
    facts = [
        f"dataset <code>{esc(document.get('dataset'))}</code>",
        f"budget {esc(document.get('budget'))} renders per image",
        f"{esc(document.get('replay_seeds'))} replay seeds"
        + (
            " (new samples: the renderer takes no seed, so image_score is not reproducible)"
            if document.get("reproducible") is False
            else ""
        ),
        f"seed {esc(document.get('seed'))}",
        "models "
        + ", ".join(f"{esc(k)}: <code>{esc(v or 'none')}</code>" for k, v in models.items()),
    ]
    from arpo.bench.judge import judge_label

    judge = judge_label(dict(document))
    held_out = isinstance(document.get("judge"), dict) and document["judge"].get("held_out")
    judge_html = f'<p class="{"muted" if held_out else "warn"}"><strong>{esc(judge)}</strong>'
    if not held_out:
        judge_html += (
            ": the similarity columns are scored by the CLIP the search optimises; only the "
            "attribute columns are independent of it"
        )
    judge_html += "</p>"
    problems = document.get("problems") or []
    listed = "".join(
        f"<li><code>{esc(p.get('image'))}</code>: {esc(p.get('error'))}</li>" for p in problems
    )
    problem_html = (
        f'<h2 class="label">Images left out</h2><ul class="problems">{listed}</ul>'
        if problems
        else ""
    )
    return (
        '<header class="card"><h1>arpo bench</h1>'
        f'<p class="muted">{" · ".join(facts)}</p>{judge_html}{problem_html}</header>'
    )


def _summary_section(summary: Mapping[str, Any]) -> str:
    from arpo.bench.summary import best_methods, image_counts

    best = {key: best_methods(summary, key) for key in _columns(summary)}
    counts = {method: image_counts(entry) for method, entry in summary.items()}
    return (
        '<section class="card"><h2>Summary</h2>'
        '<p class="muted">Mean ± 95% confidence half-width (Student t) over the images each '
        "method finished. Replay: the prompt rendered with seeds the search never used. "
        '<strong class="best-mark">▲ bold</strong>: the best in its column (highest; lowest '
        "time, renders and LLM calls; tokens are not ranked).</p>"
        f"{_tables(summary, counts, best, signed=False)}</section>"
    )


def _paired_section(paired: Mapping[str, Any] | None) -> str:
    if not paired or not paired.get("methods"):
        return ""
    entries = paired["methods"]
    counts = {method: str(entry["images"]) for method, entry in entries.items()}
    reference = esc(paired.get("reference"))
    return (
        f'<section class="card"><h2>Paired against {reference}</h2>'
        f'<p class="muted">Mean per-image difference, method minus {reference}, ± 95% '
        "confidence half-width (Student t), over the images both finished; positive: the "
        f"method scored higher than {reference}.</p>"
        f"{_tables(entries, counts, {}, signed=True)}</section>"
    )


def _columns(entries: Mapping[str, Any]) -> list[str]:
    from arpo.bench.summary import table_columns

    return table_columns(entries)


def _tables(
    entries: Mapping[str, Any],
    counts: Mapping[str, str],
    best: Mapping[str, set[str]],
    *,
    signed: bool,
) -> str:
    """One table per column group (similarity, attributes, cost) that has columns, a row per
    method: narrow enough for a small window, and scrolling sideways if it is not."""
    from arpo.bench.summary import TABLE_COLUMNS, TABLE_GROUPS

    present = set(_columns(entries))
    tables = []
    for title, group in TABLE_GROUPS.items():
        keys = [key for key in group if key in present]
        if not keys:
            continue
        head = "<th>method</th><th>images</th>" + "".join(
            f"<th>{esc(TABLE_COLUMNS[key])}</th>" for key in keys
        )
        body = "".join(
            f'<tr><td>{esc(method)}</td><td class="num">{esc(counts[method])}</td>'
            + "".join(
                _stat_cell(entry["metrics"].get(key, {}), key, method in best.get(key, ()), signed)
                for key in keys
            )
            + "</tr>"
            for method, entry in entries.items()
        )
        tables.append(
            f'<h3 class="label">{esc(title)}</h3><div class="scroll"><table class="stats">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )
    return "".join(tables)


def _stat_cell(stat: Mapping[str, Any], key: str, is_best: bool, signed: bool) -> str:
    """The mean, its interval under it (or why there is none), bold with ▲ when best."""
    from arpo.bench.summary import NO_INTERVAL, format_interval, format_mean

    mean, interval = format_mean(stat, key), format_interval(stat, key)
    if signed and isinstance(stat.get("mean"), int | float) and stat["mean"] >= 0:
        mean = "+" + mean
    shown = f'<strong>{mean}</strong> <span class="best-mark">▲</span>' if is_best else mean
    css = "num best" if is_best else "num"
    note = " no-ci" if interval == NO_INTERVAL else ""
    extra = f'<span class="ci{note}">{esc(interval)}</span>' if interval else ""
    return f'<td class="{css}">{shown}{extra}</td>'


# --------------------------------------------------------------------------- plot


def mean_curves(
    rows: Sequence[Mapping[str, Any]], methods: Sequence[str]
) -> dict[str, list[float]]:
    """Per rendering method, the mean over images of the best score after r renders
    (a method that stopped early keeps its last best)."""
    curves: dict[str, list[float]] = {}
    for method in methods:
        series = [
            list(r["best_by_render"])
            for r in rows
            if r.get("method") == method and r.get("status") == "done" and r.get("best_by_render")
        ]
        if not series:
            continue
        length = max(len(s) for s in series)
        padded = [s + [s[-1]] * (length - len(s)) for s in series]
        curves[method] = [sum(col) / len(col) for col in zip(*padded, strict=True)]
    return curves


def _flat_levels(rows: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> dict[str, float]:
    """Methods that never render: their mean replay image score, drawn as a level line."""
    levels = {}
    for method in methods:
        scores = [
            r["image_score"]
            for r in rows
            if r.get("method") == method
            and r.get("status") == "done"
            and not r.get("best_by_render")
            and isinstance(r.get("image_score"), int | float)
        ]
        if scores:
            levels[method] = sum(scores) / len(scores)
    return levels


def _plot_section(rows: Sequence[Mapping[str, Any]], methods: list[str], budget: Any) -> str:
    curves = mean_curves(rows, methods)
    levels = _flat_levels(rows, [m for m in methods if m not in curves])
    if not curves and not levels:
        return ""
    return (
        '<section class="card"><h2>Best score against renders spent</h2>'
        '<p class="muted">Best image-image CLIP similarity to the reference among a method\'s '
        "renders so far, mean over images. Dashed: methods that do not render (their replay "
        "score).</p>"
        f"{_svg_plot(curves, levels, methods, budget)}</section>"
    )


def _svg_plot(
    curves: dict[str, list[float]], levels: dict[str, float], methods: list[str], budget: Any
) -> str:
    values = [v for c in curves.values() for v in c] + list(levels.values())
    low, high, step = y_range(values)
    x_max = max([len(c) for c in curves.values()] + [budget if isinstance(budget, int) else 1, 1])
    scale = Scale(CHART, 0, x_max, low, high)
    x, y = scale.x, scale.y
    left, width, height = CHART.left, CHART.plot_width, CHART.plot_height
    parts = [
        f'<rect class="plot-bg" x="{left}" y="{CHART.top}" width="{width}" height="{height}"/>'
    ]
    tick = low
    while tick <= high + 1e-9:
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + width}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="tick" x="{left - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick:.{_decimals(step)}f}</text>'
        )
        tick += step
    x_step = max(1, int(nice_step(x_max, 8)))
    for r in range(0, x_max + 1, x_step):
        parts.append(
            f'<text class="tick" x="{x(r):.1f}" y="{CHART.top + height + 16}" '
            f'text-anchor="middle">{r}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{left + width / 2}" y="{CHART.height - 8}" '
        'text-anchor="middle">renders spent</text>'
    )
    for index, method in enumerate(methods):
        colour = _PALETTE[index % len(_PALETTE)]
        legend_y = CHART.top + 14 + 18 * index
        if method in curves:
            points = " ".join(f"{x(i + 1):.1f},{y(v):.1f}" for i, v in enumerate(curves[method]))
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            )
            dash = ""
        elif method in levels:
            level = y(levels[method])
            parts.append(
                f'<line x1="{left}" x2="{left + width}" y1="{level:.1f}" y2="{level:.1f}" '
                f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="5 4"/>'
            )
            dash = ' stroke-dasharray="5 4"'
        else:
            continue
        parts.append(
            f'<line x1="{left + width + 12}" x2="{left + width + 36}" y1="{legend_y}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text class="legend-text" x="{left + width + 42}" y="{legend_y + 4}">'
            f"{esc(method)}</text>"
        )
    return (
        f'<svg class="chart" viewBox="0 0 {CHART.width} {CHART.height}" role="img" '
        f'aria-label="best score against renders">{"".join(parts)}</svg>'
    )


def _decimals(step: float) -> int:
    return 0 if step >= 1 else 2 if step >= 0.01 else 3


# --------------------------------------------------------------------------- contact sheets


def _sheets_section(rows: Sequence[Mapping[str, Any]], methods: list[str]) -> str:
    images = list(dict.fromkeys(r["image"] for r in rows))
    if not images:
        return ""
    sheets = "".join(_sheet(name, rows, methods) for name in images)
    return f'<section class="card"><h2>Contact sheets</h2>{sheets}</section>'


def _sheet(name: str, rows: Sequence[Mapping[str, Any]], methods: list[str]) -> str:
    from arpo.bench.runner import slug

    mine = {r["method"]: r for r in rows if r["image"] == name}
    true_prompt = next((r.get("true_prompt") for r in mine.values() if r.get("true_prompt")), None)
    caption = f"<code>{esc(true_prompt)}</code>" if true_prompt else ""
    figures = [
        f"<figure>{image(f'images/{slug(name)}/reference.png', name, 150)}"
        f"<figcaption><strong>reference</strong>{caption}</figcaption></figure>"
    ]
    for method in methods:
        row = mine.get(method)
        if row is None:
            continue
        if row.get("status") != "done":
            why = row.get("error") or row.get("note") or row.get("status")
            figures.append(
                f"<figure>{image(None, method, 150, esc(row.get('status')))}"
                f"<figcaption><strong>{esc(method)}</strong> {esc(why)}</figcaption></figure>"
            )
            continue
        figures.append(
            f"<figure>{image(row.get('render'), method, 150)}"
            f"<figcaption><strong>{esc(method)}</strong> "
            f"image {format_score(row.get('image_score'))}"
            f" · text {format_score(row.get('text_score'))}<code>{esc(row.get('prompt'))}</code>"
            "</figcaption></figure>"
        )
    style = f"grid-template-columns:repeat({len(figures)}, minmax(0, 168px))"
    return f'<h3>{esc(name)}</h3><div class="sheet" style="{style}">{"".join(figures)}</div>'
