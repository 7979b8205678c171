"""The HTML page of one remix (an edit or a fusion), from its ``remix.json``.

The sources' renders stand beside the result's, all with one seed, so they differ only by the
change; then each prompt and the result's components. Stdlib only, like every report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arpo.report.html import as_mapping, as_text, definition_list, esc, figure, page

__all__ = ["render_remix_report"]


def render_remix_report(remix: Mapping[str, Any]) -> str:
    """The HTML page for an edit or fusion (``remix.json`` as a mapping): the sources' renders
    beside the result's, all with one seed, then each prompt and the result's components."""
    kind = as_text(remix.get("kind")) or "remix"
    sources = [s for s in remix.get("sources") or [] if isinstance(s, Mapping)]
    figures = [
        figure(
            s.get("image"),
            f"{as_text(s.get('role')).capitalize()}: {as_text(s.get('prompt'))}",
            320,
        )
        for s in sources
    ]
    result = "Edited" if kind == "edit" else "Fused"
    figures.append(figure(remix.get("image"), f"{result}: {as_text(remix.get('prompt'))}", 320))
    parts = as_mapping(remix.get("parts"))
    components = [
        (name, esc(", ".join(value) if isinstance(value, list) else as_text(value)) or "—")
        for name, value in parts.items()
    ]
    rows = [
        ("seed", esc(remix.get("seed"))),
        *(
            (f"{as_text(s.get('role'))} run", esc(s.get("run_id")))
            for s in sources
            if s.get("run_id")
        ),
        ("cut to fit", esc(", ".join(remix.get("cut") or [])) or "—"),
        ("notes", "<br>".join(esc(n) for n in remix.get("notes") or []) or "—"),
    ]
    body = (
        f'<section class="card"><h1>arpo {esc(kind)} {esc(remix.get("remix_id"))}</h1>'
        f'<pre class="best-prompt"><code>{esc(remix.get("prompt"))}</code></pre>'
        f"{definition_list(rows)}"
        "</section>"
        f'<section class="card"><h2>Same seed, side by side</h2>'
        f'<div class="pair">{"".join(figures)}</div></section>'
        f'<section class="card"><h2>Components</h2>{definition_list(components)}</section>'
    )
    return page(f"arpo {kind}", body)
