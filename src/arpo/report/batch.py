"""The index page of a batch (``report.html`` beside ``batch.json``): a row per image with its
thumbnail, status, best prompt, scores and a link to its run's report; the images left out
say why. Stdlib only, like every report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arpo.report.html import (
    as_mapping,
    as_text,
    definition_list,
    esc,
    format_score,
    image,
    page,
    slug,
    src_url,
)

__all__ = ["render_batch_report"]

THUMBNAIL_WIDTH = 96
STATUS_ORDER = ("finished", "skipped", "failed", "unreadable", "interrupted", "pending")


def render_batch_report(batch: Mapping[str, Any]) -> str:
    """The HTML page for a batch: ``folder``, ``config``, ``counts`` and ``images`` (rows
    with name, status, prompt, objective, scores, thumbnail and report paths relative to the
    page, caption, error)."""
    rows = [row for row in batch.get("images") or [] if isinstance(row, Mapping)]
    config = as_mapping(batch.get("config"))
    body = (
        f'<section class="card"><h1>arpo batch: {esc(batch.get("folder"))}</h1>'
        f"{definition_list(_facts(batch, config))}</section>"
        f'<section class="card"><h2>Images</h2>{_table(rows)}</section>'
    )
    return page("arpo batch", body)


def _facts(batch: Mapping[str, Any], config: Mapping[str, Any]) -> list[tuple[str, str]]:
    counts = as_mapping(batch.get("counts"))
    shown = ", ".join(f"{counts[status]} {status}" for status in STATUS_ORDER if counts.get(status))
    models = as_mapping(config.get("models"))
    facts = [
        ("images", esc(shown or "none")),
        ("models", esc(", ".join(f"{k} {v}" for k, v in models.items() if v)) or "—"),
        ("caption files", esc(f"name{as_text(config.get('caption_extension'))} beside each")),
        ("prefix", f"<code>{esc(config.get('prefix'))}</code>" if config.get("prefix") else "—"),
    ]
    if batch.get("already_finished"):
        facts.append(("finished earlier", esc(batch.get("already_finished"))))
    return facts


def _table(rows: list[Mapping[str, Any]]) -> str:
    if not rows:
        return '<p class="muted">No image files in the folder.</p>'
    head = "<tr><th></th><th>image</th><th>prompt</th><th>scores</th><th>run</th></tr>"
    return f"<table>{head}{''.join(_row(row) for row in rows)}</table>"


def _row(row: Mapping[str, Any]) -> str:
    status = as_text(row.get("status"))
    thumb = image(row.get("thumbnail"), as_text(row.get("name")), THUMBNAIL_WIDTH, "—")
    badge = f'<span class="badge status-{slug(status)}">{esc(status)}</span>'
    what = f'<pre class="prompt">{esc(row.get("prompt"))}</pre>' if row.get("prompt") else ""
    if row.get("error"):
        what += f'<p class="note muted">{esc(row.get("error"))}</p>'
    objective = as_text(row.get("objective"))
    scores = (
        f"text {format_score(row.get('text_score'))}<br>"
        f"image {format_score(row.get('image_score'))}"
        + (f'<br><span class="muted">{esc(objective)} objective</span>' if objective else "")
    )
    report = as_text(row.get("report"))
    run = as_text(row.get("run_id"))
    link = f'<a href="{src_url(report)}">{esc(run or "report")}</a>' if report else esc(run)
    return (
        f"<tr><td>{thumb}</td><td><code>{esc(row.get('name'))}</code><br>{badge}</td>"
        f'<td>{what}</td><td class="num">{scores}</td><td>{link}</td></tr>'
    )
