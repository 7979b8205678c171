"""The bench's page from hand-made results: tables that fit a narrow window, the best of each
column marked, one-value means that say why they have no interval, one row per contact sheet."""

from __future__ import annotations

import re

from arpo.bench.report import render_report
from arpo.bench.summary import summarize

METRICS = ["text_score", "image_score", "attribute_f1", "renders", "time_total_s"]
METHODS = ["caption", "random-search", "arpo-offline"]


def _row(image: str, method: str, score: float, renders: int) -> dict:
    return {
        "image": image,
        "method": method,
        "status": "done",
        "text_score": score,
        "image_score": score + 0.1,
        "attribute_f1": score - 0.2,
        "renders": renders,
        "time_total_s": 1.0 + renders / 10,
        "prompt": f"{method} prompt for {image}",
        "render": f"pairs/{image}/{method}.png",
    }


def _page(images: tuple[str, ...] = ("one", "two")) -> str:
    rows = []
    for k, image in enumerate(images):
        rows += [
            _row(image, "caption", 0.6 + k / 100, 0),
            _row(image, "random-search", 0.7 + k / 50, 12),
            _row(image, "arpo-offline", 0.8 + k / 40, 9),
        ]
    document = {"dataset": "demo:2", "budget": 12, "summary": summarize(rows, METRICS, METHODS)}
    return render_report(document, rows)


def _cell(page: str, group: str, method: str, column: int) -> str:
    table = page.split(f'<h3 class="label">{group}</h3>')[1].split("</table>")[0]
    row = table.split(f"<tr><td>{method}</td>")[1].split("</tr>")[0]
    return re.findall(r"<td[^>]*>.*?</td>", row)[column]


def test_the_summary_is_one_table_per_group_of_columns() -> None:
    page = _page()
    summary = page.split("<h2>Summary</h2>")[1].split("</section>")[0]
    titles = re.findall(r'<h3 class="label">([^<]+)</h3>', summary)
    assert titles == ["Similarity to the reference", "Attributes of the true prompt", "Cost"]
    assert summary.count('<div class="scroll"><table class="stats">') == 3
    for table in summary.split("<table")[1:]:
        assert table.split("</thead>")[0].count("<th>") <= 6  # method, images, 4 at most


def test_the_best_value_of_each_column_is_bold_and_marked() -> None:
    page = _page()
    best = _cell(page, "Similarity to the reference", "arpo-offline", 1)
    assert best.startswith('<td class="num best"><strong>0.812</strong>')
    assert '<span class="best-mark">▲</span>' in best
    other = _cell(page, "Similarity to the reference", "caption", 1)
    assert other.startswith('<td class="num">0.605<') and "▲" not in other
    fewest = _cell(page, "Cost", "caption", 2)  # renders: the lowest is best
    assert '<td class="num best"><strong>0.0</strong>' in fewest
    assert "the best in its column (highest; lowest time, renders and LLM calls" in page


def test_a_column_over_one_image_says_why_it_has_no_interval() -> None:
    page = _page(("one",))
    cell = _cell(page, "Similarity to the reference", "random-search", 1)
    assert '<span class="ci no-ci">n=1: no interval</span>' in cell
    two = _cell(_page(), "Similarity to the reference", "random-search", 1)
    assert '<span class="ci">± ' in two


def test_each_contact_sheet_is_one_row_of_its_figures() -> None:
    page = _page()
    sheets = re.findall(r'<div class="sheet" style="([^"]+)">(.*?)</div>', page)
    assert len(sheets) == 2
    for style, figures in sheets:
        count = figures.count("<figure>")
        assert count == 1 + len(METHODS)  # the reference and every method
        assert style == f"grid-template-columns:repeat({count}, minmax(0, 168px))"
