"""Tests for the self-contained HTML reports (arpo.report): the run report and the package's
layout."""

from __future__ import annotations

import ast
import copy
import json
import re
import sys
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import arpo.report
from arpo.errors import RunNotFoundError
from arpo.report import html, render_report, write_report

EVIL_PROMPT = 'a <script>alert("x")</script> cat & dog, "quoted" \'single\''
STRUCTURAL = (
    "html",
    "head",
    "body",
    "main",
    "section",
    "header",
    "article",
    "div",
    "svg",
    "details",
    "summary",
    "table",
    "tr",
    "ul",
    "li",
    "figure",
    "pre",
    "code",
    "dl",
)
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "area", "base", "col"}


def _png(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)


def _result() -> dict[str, Any]:
    return {
        "run_id": "20261127-071500-ab12cd",
        "status": "finished",
        "stop_reason": "max_iterations",
        "strategy": "offline",
        "models": {
            "t2i": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "clip": "ViT-L-14/openai",
            "llm": None,
        },
        "options": {"iterations": 3, "candidates": 4, "seed": 0, "steps": 30, "guidance": 7.5},
        "reference": "reference.png",
        "initial_prompt": "a cat",
        "best": {
            "prompt": "a cat, oil painting",
            "text_score": 0.31,
            "image_score": 0.82,
            "render": "best.png",
            "iteration": 1,
        },
        "history": [
            {
                "iteration": 0,
                "prompt": "a cat",
                "text_score": 0.25,
                "image_score": 0.71,
                "render": "renders/iter-000.png",
                "proposer": "offline",
                "critique": None,
                "note": None,
                "candidates": [
                    {"prompt": "a cat, oil painting", "text_score": 0.31},
                    {"prompt": "a cat, photo", "text_score": 0.28},
                ],
            },
            {
                "iteration": 1,
                "prompt": "a cat, oil painting",
                "text_score": 0.31,
                "image_score": 0.82,
                "render": "renders/iter-001.png",
                "proposer": "llm",
                "critique": ["colours too <b>dull</b>", "background & lighting off"],
                "note": "kept best",
                "candidates": [{"prompt": EVIL_PROMPT, "text_score": 0.29}],
            },
            {
                "iteration": 2,
                "prompt": EVIL_PROMPT,
                "text_score": 0.29,
                "image_score": 0.77,
                "render": "renders/iter-002.png",
                "proposer": "offline (LLM fallback)",
                "critique": None,
                "note": "LLM <timeout> & fallback",
                "candidates": [],
            },
        ],
        "elapsed_s": 12.3,
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    _png(tmp_path / "reference.png", (200, 30, 30))
    _png(tmp_path / "best.png", (30, 200, 30))
    for i in range(3):
        _png(tmp_path / "renders" / f"iter-{i:03d}.png", (30, 30, 60 * i + 40))
    (tmp_path / "result.json").write_text(json.dumps(_result()), encoding="utf-8")
    return tmp_path


class _Checker(HTMLParser):
    """Collects tags and checks that structural tags open and close in a balanced way."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_tags = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.script_tags += 1
        if tag in STRUCTURAL:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))  # self-closing: no push

    def handle_endtag(self, tag: str) -> None:
        if tag not in STRUCTURAL:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
            return
        self.stack.pop()


def _parse(html_text: str) -> _Checker:
    checker = _Checker()
    checker.feed(html_text)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed tags: {checker.stack}"
    return checker


def _points(html_text: str, name: str) -> list[str]:
    return re.findall(rf'class="point point-{name}" data-iteration="(-?\d+)"', html_text)


def test_write_report_reads_result_json_and_writes_file(run_dir: Path) -> None:
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    assert path.is_file()
    assert not list(run_dir.glob(".report.html.*.tmp"))  # the temp file was replaced
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "20261127-071500-ab12cd" in text
    assert "<title>" in text and "20261127-071500-ab12cd</title>" in text


def test_write_report_overwrites_existing(run_dir: Path) -> None:
    (run_dir / "report.html").write_text("old", encoding="utf-8")
    write_report(run_dir, _result())
    assert (run_dir / "report.html").read_text(encoding="utf-8") != "old"


def test_write_report_without_result_json_raises(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError):
        write_report(tmp_path)


def test_contains_every_prompt_escaped(run_dir: Path) -> None:
    text = write_report(run_dir).read_text(encoding="utf-8")
    for entry in _result()["history"]:
        assert _html_escape(entry["prompt"]) in text
    assert "a cat, oil painting" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; cat &amp; dog" in text
    assert "&#x27;single&#x27;" in text
    assert "<script" not in text.lower()
    assert "colours too &lt;b&gt;dull&lt;/b&gt;" in text
    assert "<b>dull</b>" not in text
    assert "LLM &lt;timeout&gt; &amp; fallback" in text
    assert _parse(text).script_tags == 0


def test_references_every_image(run_dir: Path) -> None:
    checker = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    srcs = {attrs.get("src") for tag, attrs in checker.tags if tag == "img"}
    expected = {"reference.png", "best.png"} | {f"renders/iter-{i:03d}.png" for i in range(3)}
    assert expected <= srcs
    for src in srcs:
        assert src is not None
        assert (run_dir / src).is_file(), src  # relative to the run dir, where the report lives
    assert all(attrs.get("width") for tag, attrs in checker.tags if tag == "img")


def test_svg_has_one_marker_per_iteration_and_best(run_dir: Path) -> None:
    text = write_report(run_dir).read_text(encoding="utf-8")
    assert text.count("<svg") == 1
    assert _points(text, "text") == ["0", "1", "2"]
    assert _points(text, "image") == ["0", "1", "2"]
    assert text.count('class="best-marker"') == 1
    assert "text score" in text and "image score" in text  # legend
    assert ">iteration<" in text  # x-axis label
    assert 'id="iteration-1"' in text
    article = text.split('id="iteration-1"')[0].rsplit("<article", 1)[1]
    assert "best-iter" in article


def test_structure_parses_and_balances(run_dir: Path) -> None:
    checker = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    tags = [tag for tag, _ in checker.tags]
    assert tags.count("article") == 3
    assert tags.count("details") == 2  # iteration 2 has no candidates
    assert "pre" in tags and "code" in tags
    # The critique is a list.
    assert tags.count("li") == 2


def test_image_score_null() -> None:
    result = _result()
    for entry in result["history"]:
        entry["image_score"] = None
    result["best"]["image_score"] = None
    text = render_report(result)
    _parse(text)
    assert _points(text, "text") == ["0", "1", "2"]
    assert _points(text, "image") == []
    assert 'class="legend-text">image score<' not in text  # no legend entry for a missing series
    assert 'class="legend-text">text score<' in text
    assert "image —" in text


def test_missing_render_shows_placeholder() -> None:
    result = _result()
    result["history"][1]["render"] = None
    del result["history"][2]["render"]
    text = render_report(result)
    checker = _parse(text)
    srcs = [attrs.get("src") for tag, attrs in checker.tags if tag == "img"]
    assert "renders/iter-001.png" not in srcs
    assert "renders/iter-000.png" in srcs
    assert text.count("no render") == 2


def test_empty_history() -> None:
    result = _result()
    result["history"] = []
    text = render_report(result)
    checker = _parse(text)
    assert "No iterations recorded" in text
    assert "<svg" not in text
    assert [tag for tag, _ in checker.tags].count("article") == 0
    assert "a cat, oil painting" in text  # best prompt still shown


def test_stored_decomposition_is_shown() -> None:
    result = _result()
    result["decomposition"] = {
        "content": ["a cat", "a <red> hat"],
        "medium": ["oil painting"],
        "lighting": [],
        "negative": "",
    }
    text = render_report(result)
    _parse(text)
    assert '<span class="k">content</span> a cat, a &lt;red&gt; hat' in text
    assert '<span class="k">medium</span> oil painting' in text
    assert '<span class="k">lighting</span>' not in text  # empty components are left out
    assert "(not stored)" in render_report(_result())


def test_minimal_result_tolerated() -> None:
    text = render_report({})
    _parse(text)
    assert "unknown run" in text
    text = render_report({"run_id": "x", "history": [{"prompt": "p"}], "best": None})
    _parse(text)
    assert _points(text, "text") == []
    assert "<svg" in text


def test_partial_scores_and_gaps() -> None:
    result = _result()
    result["history"][1]["text_score"] = None
    result["history"][0]["image_score"] = "n/a"
    text = render_report(result)
    _parse(text)
    assert _points(text, "text") == ["0", "2"]
    assert _points(text, "image") == ["1", "2"]
    assert 'class="line line-text"' not in text  # the gap leaves no two adjacent text points
    assert text.count('class="line line-image"') == 1


def test_render_report_is_pure() -> None:
    result = _result()
    snapshot = copy.deepcopy(result)
    assert render_report(result) == render_report(result)
    assert result == snapshot


def test_many_candidates_are_truncated() -> None:
    result = _result()
    result["history"][0]["candidates"] = [
        {"prompt": f"cand {i}", "text_score": i / 100} for i in range(25)
    ]
    text = render_report(result)
    _parse(text)
    assert "Candidates (25, top 10 shown)" in text
    assert "cand 24" in text and "cand 15" in text and "cand 14<" not in text
    assert text.index("cand 24") < text.index("cand 23")


def _html_escape(value: str) -> str:
    return escape(value, quote=True)


# --------------------------------------------------------------------------- package layout

REPORT_MODULES = ("__init__", "html", "run", "remix")
ALLOWED_ARPO = {"arpo.errors", "arpo.objective", "arpo.tools.store"}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement in the file at *path*."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_report_modules_import_only_the_stdlib_and_a_little_arpo() -> None:
    package = Path(arpo.report.__file__).parent
    for name in REPORT_MODULES:
        for module, _ in _imports(package / f"{name}.py"):
            top = module.split(".")[0]
            if top == "arpo":
                assert module.startswith("arpo.report") or module in ALLOWED_ARPO, (name, module)
            else:
                assert top in sys.stdlib_module_names, (name, module)


def test_bench_report_uses_only_public_report_names() -> None:
    bench = Path(arpo.report.__file__).parent.parent / "bench" / "report.py"
    used = [(m, names) for m, names in _imports(bench) if m.startswith("arpo.report")]
    assert used, "the bench page is built from the report toolkit"
    for module, names in used:
        assert module == "arpo.report.html", module
        assert all(not n.startswith("_") and n in html.__all__ for n in names), names


def test_package_exports() -> None:
    assert set(arpo.report.__all__) == {
        "REPORT_NAME",
        "RESULT_NAME",
        "render_remix_report",
        "render_report",
        "write_report",
    }
    assert arpo.report.REPORT_NAME == "report.html"
    assert arpo.report.RESULT_NAME == "result.json"
    assert all(hasattr(html, name) for name in html.__all__)


def test_scale_maps_ranges_onto_the_plot_area() -> None:
    frame = html.Frame(width=200, height=100, left=20, right=10, top=5, bottom=15)
    scale = html.Scale(frame, 0, 10, 0.0, 1.0)
    assert (scale.x(0), scale.x(10)) == (20, 190)
    assert (scale.y(1.0), scale.y(0.0)) == (5, 85)
    assert html.Scale(frame, 3, 3, 0.0, 1.0).x(3) == 105  # one point sits in the middle
    low, high, step = html.y_range([0.31, 0.82])
    assert low <= 0.31 and high >= 0.82 and step in (0.1, 0.2, 0.25)
    assert html.tick_label(-0.0, 0.05) == "0"


# --------------------------------------------------------------------------- the objective


def _image_run() -> dict[str, Any]:
    """A reranking run: image scores climb while text scores fall, as they may when the
    search keeps the candidate whose render looks most like the reference."""
    result = _result()
    result["options"]["rerank_top_k"] = 3
    scores = [(0.62, 0.900), (0.60, 0.944), (0.58, 0.956)]
    for entry, (text, image) in zip(result["history"], scores, strict=True):
        entry["text_score"], entry["image_score"] = text, image
    result["best"].update(text_score=0.58, image_score=0.956, iteration=2, prompt=EVIL_PROMPT)
    return result


def _deltas(html_text: str) -> list[tuple[str, str]]:
    return re.findall(r'<span class="delta (up|down|flat)">\(([+-]\d\.\d{3})\)</span>', html_text)


def _iteration_chips(html_text: str, iteration: int) -> str:
    article = html_text.split(f'id="iteration-{iteration}"')[1].split("</article>")[0]
    return article.split('<div class="scores">')[1].split("</div>")[0]


def test_image_objective_deltas_follow_the_image_score() -> None:
    text = render_report(_image_run())
    _parse(text)
    assert _deltas(text) == [("up", "+0.044"), ("up", "+0.012")]  # no red while it improves
    chips = _iteration_chips(text, 2)
    assert re.search(r'class="score objective"[^>]*>image 0\.956 <span class="delta up">', chips)
    assert chips.index("image 0.956") < chips.index("text 0.580")  # the other score beside it
    assert "text 0.580 <span" not in chips  # ... without a delta of its own


def test_text_objective_deltas_follow_the_text_score() -> None:
    text = render_report(_result())
    assert _deltas(text) == [("up", "+0.060"), ("down", "-0.020")]
    chips = _iteration_chips(text, 1)
    assert chips.index("text 0.310") < chips.index("image 0.820")
    assert re.search(r'class="score objective"[^>]*>text 0\.310', chips)


def test_header_leads_with_the_objective_and_names_it() -> None:
    image_run = render_report(_image_run())
    header = image_run.split("</header>")[0]
    assert re.search(r'class="score big objective"[^>]*>image 0\.956<', header)
    assert header.index("image 0.956") < header.index("text 0.580")
    assert "<dt>Objective</dt><dd>image: CLIP similarity of the prompt&#x27;s renders" in header
    text_run = render_report(_result()).split("</header>")[0]
    assert re.search(r'class="score big objective"[^>]*>text 0\.310<', text_run)
    assert "<dt>Objective</dt><dd>text: CLIP similarity of the prompt to the reference" in text_run
    assert "This run optimises the image score." in image_run


def test_best_marker_rings_the_objective_point() -> None:
    def ring_and_point(html_text: str, name: str, iteration: int) -> tuple[str, str]:
        ring = re.search(r'<circle cx="[\d.]+" cy="([\d.]+)" r="10"', html_text)
        point = re.search(
            rf'y="([\d.]+)" width="9" height="9" class="point point-{name}" '
            rf'data-iteration="{iteration}"'
            if name == "image"
            else rf'cy="([\d.]+)" r="5" class="point point-{name}" data-iteration="{iteration}"',
            html_text,
        )
        assert ring and point
        return ring.group(1), point.group(1)

    ring, square_top = ring_and_point(render_report(_image_run()), "image", 2)
    assert abs(float(ring) - (float(square_top) + 4.5)) < 0.11  # the square's centre
    ring, dot = ring_and_point(render_report(_result()), "text", 1)
    assert ring == dot


def test_results_without_options_are_text_runs() -> None:
    result = _image_run()
    del result["options"]
    assert _deltas(render_report(result))[0][0] == "down"  # read as text: 0.62 -> 0.60
