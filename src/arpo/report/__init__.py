"""arpo's HTML reports: self-contained pages (no scripts, fonts or CDN), stdlib only.

- :mod:`arpo.report.html`: the toolkit every report uses (escaping, the page and its CSS,
  images, figures, definition lists, score formatting, chart frames, scales and axes);
- :mod:`arpo.report.run`: a run's ``report.html`` from its ``result.json``;
- :mod:`arpo.report.remix`: a remix's ``report.html`` from its ``remix.json``.

The bench's page (:mod:`arpo.bench.report`) is built from the same toolkit.
"""

from __future__ import annotations

from arpo.report.remix import render_remix_report
from arpo.report.run import REPORT_NAME, RESULT_NAME, render_report, write_report

__all__ = ["REPORT_NAME", "RESULT_NAME", "render_remix_report", "render_report", "write_report"]
