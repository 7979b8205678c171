"""The HTML and SVG toolkit of arpo's reports (run, remix, bench): stdlib only.

Pages are self-contained: one inline style sheet, no scripts, no fonts, no CDN. Everything that
comes from a result goes through :func:`esc`; the readers (:func:`as_text`, :func:`as_number`,
:func:`as_mapping`, :func:`is_list`) take whatever a JSON file holds and never raise, so a page
renders from partial or old results.

Charts: a :class:`Frame` is an SVG canvas with margins, a :class:`Scale` maps data onto its
plot area, :func:`y_range` and :func:`nice_step` choose tick boundaries, and :func:`svg_axes`
draws the background, grid, ticks and axis labels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

__all__ = [
    "CSS",
    "Frame",
    "Scale",
    "as_mapping",
    "as_number",
    "as_text",
    "chips",
    "definition_list",
    "esc",
    "figure",
    "format_elapsed",
    "format_score",
    "image",
    "is_list",
    "nice_step",
    "page",
    "slug",
    "src_url",
    "svg_axes",
    "tick_label",
    "x_ticks",
    "y_range",
]


# --------------------------------------------------------------------------- reading values


def as_mapping(value: Any) -> Mapping[str, Any]:
    """*value* if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_text(value: Any) -> str:
    """A value as plain text ('' for None)."""
    return "" if value is None else str(value)


def as_number(value: Any) -> float | None:
    """A finite float, or None for anything that is not a usable number (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def is_list(value: Any) -> bool:
    """A sequence or set that is not a string."""
    return isinstance(value, Sequence | set | frozenset) and not isinstance(value, str | bytes)


# --------------------------------------------------------------------------- formatting


def esc(value: Any) -> str:
    """*value* as text, escaped for HTML content and attribute values."""
    return escape(as_text(value), quote=True)


def format_score(value: Any) -> str:
    """A similarity with three decimals, '—' when there is none."""
    number = as_number(value)
    return "—" if number is None else f"{number:.3f}"


def format_elapsed(value: Any) -> str:
    """Seconds as '12.3 s', '4 m 05 s' or '1 h 02 m 03 s'; '—' when there are none."""
    seconds = as_number(value)
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m {rest:02d} s" if hours else f"{minutes} m {rest:02d} s"


def slug(text: str) -> str:
    """*text* lower-cased with every non-alphanumeric character made '-' (for CSS classes)."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower())


# --------------------------------------------------------------------------- elements


def src_url(path: str) -> str:
    """A relative file path as an escaped URL for src/href (keeps '/', encodes the rest)."""
    return escape(quote(path.replace(os.sep, "/"), safe="/"), quote=True)


def image(path: Any, alt: str, width: int, placeholder: str = "no render") -> str:
    """A linked, lazily loaded image, or a dashed box saying *placeholder* (HTML) when there is
    no path."""
    path = as_text(path)
    if not path:
        return (
            f'<div class="placeholder" style="width:{width}px;height:{width}px">{placeholder}</div>'
        )
    src = src_url(path)
    return f'<a href="{src}"><img src="{src}" alt="{esc(alt)}" width="{width}" loading="lazy"></a>'


def figure(path: Any, caption: str, width: int, placeholder: str = "no render") -> str:
    """:func:`image` with *caption* (plain text) under it."""
    return (
        f"<figure>{image(path, caption, width, placeholder)}"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def definition_list(items: Iterable[tuple[str, str]]) -> str:
    """A definition list of (plain-text key, HTML value) pairs."""
    rows = "".join(f"<dt>{esc(key)}</dt><dd>{value}</dd>" for key, value in items)
    return f'<dl class="meta">{rows}</dl>'


def chips(value: Any) -> str:
    """A mapping as 'key: value' chips, anything else as escaped text ('—' for nothing)."""
    if isinstance(value, Mapping):
        if not value:
            return "—"
        found = (
            f'<span class="chip"><span class="k">{esc(k)}</span> {esc(_plain(v))}</span>'
            for k, v in value.items()
        )
        return " ".join(found)
    return esc(value) if value is not None else "—"


def _plain(value: Any) -> str:
    return "none" if value is None else str(value)


def page(title: str, body: str) -> str:
    """A whole HTML document: *title* (plain text), the shared style sheet, *body* (HTML)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f'<body>\n<main class="wrap">\n{body}\n</main>\n</body>\n</html>\n'
    )


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class Frame:
    """An SVG canvas of ``width`` x ``height`` user units and the margins around its plot."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom


class Scale:
    """Maps x values in [x_lo, x_hi] and scores in [low, high] onto *frame*'s plot area (a
    single x value sits in the middle)."""

    def __init__(self, frame: Frame, x_lo: float, x_hi: float, low: float, high: float) -> None:
        self.frame = frame
        self.x_lo, self.x_hi = x_lo, x_hi
        self.low, self.high = low, high

    def x(self, value: float) -> float:
        frame = self.frame
        width = frame.plot_width
        if self.x_hi == self.x_lo:
            return frame.left + width / 2
        return frame.left + (value - self.x_lo) / (self.x_hi - self.x_lo) * width

    def y(self, score: float) -> float:
        frame = self.frame
        return frame.top + (self.high - score) / (self.high - self.low) * frame.plot_height


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A tick step of 1, 2, 2.5 or 5 times a power of ten giving about *target_ticks* ticks."""
    raw = span / max(target_ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def y_range(values: list[float]) -> tuple[float, float, float]:
    """(low, high, step) with nice tick boundaries covering *values*; similarities never
    exceed 1, so the axis stops at 1 when the values do."""
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    bounded = high <= 1.0 + 1e-6  # a render identical to the reference scores 1 (or a hair over)
    if high - low < 1e-9:
        low, high = low - 0.05, high + 0.05
    pad = (high - low) * 0.08
    step = nice_step(high - low + 2 * pad)
    top = math.ceil((high + pad) / step) * step
    return math.floor((low - pad) / step) * step, min(top, 1.0) if bounded else top, step


def x_ticks(xs: list[int]) -> list[int]:
    """At most about 12 integer ticks from min(xs) to max(xs)."""
    lo, hi = min(xs), max(xs)
    stride = max(1, math.ceil((hi - lo + 1) / 12))
    return list(range(lo, hi + 1, stride))


def tick_label(value: float, step: float) -> str:
    """*value* with as many decimals as *step* needs ('0', never '-0.00')."""
    decimals = max(0, min(4, -math.floor(math.log10(step)) + (0 if step >= 1 else 1)))
    label = f"{value:.{decimals}f}"
    return "0" if float(label) == 0 else label


def svg_axes(scale: Scale, xs: list[int], step: float, x_label: str, y_label: str) -> str:
    """The plot background, horizontal grid lines with score ticks every *step*, integer x
    ticks at :func:`x_ticks` of *xs*, both axes and their labels."""
    frame = scale.frame
    left, right, top, bottom = frame.left, frame.plot_right, frame.top, frame.plot_bottom
    low, high = scale.low, scale.high
    size = f'width="{right - left}" height="{bottom - top}"'
    out = [f'<rect x="{left}" y="{top}" {size} class="plot-bg"/>']
    count = round((high - low) / step)
    for i in range(count + 1):
        value = low + i * step
        y = scale.y(value)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{tick_label(value, step)}</text>"
        )
    for it in x_ticks(xs):
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
        f'class="axis-label">{esc(x_label)}</text>'
    )
    out.append(
        f'<text x="16" y="{(top + bottom) / 2:.1f}" text-anchor="middle" class="axis-label" '
        f'transform="rotate(-90 16 {(top + bottom) / 2:.1f})">{esc(y_label)}</text>'
    )
    return "".join(out)


# --------------------------------------------------------------------------- style

CSS = """
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
.score.objective { border-color:var(--accent); background:#eef4ff; font-weight:600; }
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
.pair { display:grid; grid-template-columns:repeat(2, minmax(0, 384px)); gap:16px; }
.pair figure img { width:100%; }
.pair.small { grid-template-columns:repeat(2, minmax(0, 192px)); }
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
details.candidates { margin-top:-8px; grid-column:1 / -1; min-width:0; }
details.candidates summary { cursor:pointer; color:var(--accent); font-size:.9rem; }
details.candidates th { white-space:nowrap; }
table { border-collapse:collapse; width:100%; margin-top:6px; font-size:.88rem; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td.num { font-variant-numeric:tabular-nums; white-space:nowrap; }
details.stall { border-top:1px solid var(--line); padding:10px 0; }
details.stall > summary { cursor:pointer; }
details.stall[open] > summary { margin-bottom:8px; }
.by { display:inline-block; min-width:3.4em; color:var(--muted); font-size:.8rem; }
.by.image { color:#b45309; font-weight:600; }
mark.seed { background:#fef3c7; color:inherit; border-bottom:2px dotted #d97706;
  padding:0 1px; }
.chip.fact.hit { background:#dcfce7; border-color:#86efac; }
.chip.fact.miss { background:#fee2e2; border-color:#fca5a5; }
.demo pre.prompt { margin:0; }
.remix-grid { display:grid; gap:16px; align-items:start; }
.remix-col { display:flex; flex-direction:column; gap:10px; min-width:0; }
.remix-col.result { align-self:center; }
.remix-col figure img { width:100%; max-width:384px; }
.run-link { margin:0; font-size:.88rem; }
@media (max-width:720px) { .iter { grid-template-columns:1fr; } }
@media (max-width:560px) { .remix-grid { grid-template-columns:1fr !important; } }
"""
