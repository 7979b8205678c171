"""The HTML page of one remix (an edit or a fusion), from its ``remix.json``.

One grid, a column per source and one for the result, side by side down to phone widths: a
source found from an image (or a run) shows that image, the user's own, above the render of
its recovered prompt, linked to its run's report; every render has the remix's one seed, so
they differ only by the change. Then the settings used, each prompt and the result's
components. Stdlib only, like every report; older records (no inputs, no settings) render too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arpo.report.html import (
    as_mapping,
    as_text,
    chips,
    definition_list,
    esc,
    figure,
    page,
    src_url,
)

__all__ = ["render_remix_report"]

IMAGE_WIDTH = 320


def render_remix_report(remix: Mapping[str, Any]) -> str:
    """The HTML page for an edit or fusion (``remix.json`` as a mapping): the sources' own
    images and renders beside the result's, all with one seed, then the settings used, each
    prompt and the result's components."""
    kind = as_text(remix.get("kind")) or "remix"
    sources = [s for s in remix.get("sources") or [] if isinstance(s, Mapping)]
    body = (
        f'<section class="card"><h1>arpo {esc(kind)} {esc(remix.get("remix_id"))}</h1>'
        f'<pre class="best-prompt"><code>{esc(remix.get("prompt"))}</code></pre>'
        f"{definition_list(_facts(remix, sources))}</section>"
        f'<section class="card"><h2>Side by side, seed {esc(remix.get("seed"))}</h2>'
        f"{_grid(remix, kind, sources)}</section>"
        f'<section class="card"><h2>Components</h2>{definition_list(_components(remix))}'
        "</section>"
    )
    return page(f"arpo {kind}", body)


def _grid(remix: Mapping[str, Any], kind: str, sources: list[Mapping[str, Any]]) -> str:
    """A column per source (its own image above its render, when it has one) and the result's
    column, whose render spans both rows."""
    with_inputs = any(s.get("input_image") for s in sources)
    columns = [_source_column(s, with_inputs) for s in sources]
    result = "Edited" if kind == "edit" else "Fused"
    caption = f"{result}: {as_text(remix.get('prompt'))}"
    columns.append(
        f'<div class="remix-col result">{figure(remix.get("image"), caption, IMAGE_WIDTH)}</div>'
    )
    legend = (
        '<p class="muted">Top: your images; below each, the render of the prompt recovered '
        "from it. Right: the result.</p>"
        if with_inputs
        else ""
    )
    style = f"grid-template-columns:repeat({len(columns)}, minmax(0, 1fr))"
    return f'{legend}<div class="remix-grid" style="{style}">{"".join(columns)}</div>'


def _source_column(source: Mapping[str, Any], with_inputs: bool) -> str:
    role = as_text(source.get("role")) or "source"
    prompt = as_text(source.get("prompt"))
    cells = []
    if with_inputs:
        given = as_text(source.get("given"))
        if source.get("input_image"):
            name = given.replace("\\", "/").rsplit("/", 1)[-1]
            label = f"Your {role} image" + (f": {name}" if name else "")
            cells.append(figure(source.get("input_image"), label, IMAGE_WIDTH))
        else:
            cells.append(f'<p class="muted">{esc(role.capitalize())}: given as a prompt.</p>')
    caption = (
        f"{role.capitalize()}. Its recovered prompt, rendered: {prompt}"
        if source.get("run_id")
        else f"{role.capitalize()}: {prompt}"
    )
    cells.append(figure(source.get("image"), caption, IMAGE_WIDTH))
    cells.append(_run_link(source))
    return f'<div class="remix-col">{"".join(cells)}</div>'


def _run_link(source: Mapping[str, Any]) -> str:
    anchor = _run_anchor(source)
    return f'<p class="run-link">{anchor}</p>' if anchor else ""


def _run_anchor(source: Mapping[str, Any]) -> str:
    """``run ID: its report``, linked to the run's report when the record points at one."""
    run_id = as_text(source.get("run_id"))
    if not run_id:
        return ""
    report = as_text(source.get("run_report"))
    if not report:
        return f"run <code>{esc(run_id)}</code>"
    return f'<a href="{src_url(report)}">run <code>{esc(run_id)}</code>: its report</a>'


def _facts(remix: Mapping[str, Any], sources: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The settings the remix used, defaults filled in, and where each source came from."""
    settings = as_mapping(remix.get("settings"))
    rows = [("seed", esc(remix.get("seed")))]
    if settings:
        rows.append(("preset", esc(settings.get("preset") or "none (configured models)")))
        rows.append(("models", chips(settings.get("models"))))
        rows.append(("LLM", "yes" if settings.get("llm") else "no (offline split)"))
    for source in sources:
        rows.append((f"{as_text(source.get('role'))} source", _origin(source)))
    rows.append(("render options", chips(remix.get("options"))))
    rows.append(("cut to fit", esc(", ".join(remix.get("cut") or [])) or "—"))
    rows.append(("notes", "<br>".join(esc(n) for n in remix.get("notes") or []) or "—"))
    return rows


def _origin(source: Mapping[str, Any]) -> str:
    kind = as_text(source.get("kind"))
    given = esc(source.get("given"))
    run = _run_anchor(source)
    options = as_mapping(source.get("run_options"))
    used = (
        " " + chips({k: options.get(k) for k in ("strategy", "iterations", "budget", "seed")})
        if options
        else ""
    )
    if kind == "image":
        return f"image <code>{given}</code>, reverse-prompted: {run}{used}"
    if kind == "run" or (not kind and source.get("run_id")):
        return f"{run}{used}"
    return f"prompt <code>{esc(source.get('prompt'))}</code>"


def _components(remix: Mapping[str, Any]) -> list[tuple[str, str]]:
    parts = as_mapping(remix.get("parts"))
    return [
        (name, esc(", ".join(value) if isinstance(value, list) else as_text(value)) or "—")
        for name, value in parts.items()
    ]
