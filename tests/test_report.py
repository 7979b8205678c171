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
    assert "Candidates: top 10 of 25, chosen by text score" in text
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


# --------------------------------------------------------------------------- candidates


def _candidates_of(html_text: str, iteration: int) -> str:
    article = html_text.split(f'id="iteration-{iteration}"')[1].split("</article>")[0]
    return article.split('<details class="candidates">')[1].split("</details>")[0]


def test_candidates_say_top_n_of_all_scored() -> None:
    """The record keeps the best 8, and how many prompts were scored to find them."""
    result = _result()
    result["history"][0]["candidates"] = [
        {"prompt": f"cand {i}", "text_score": i / 100} for i in range(8)
    ]
    result["history"][0]["candidates_scored"] = 192
    table = _candidates_of(render_report(result), 0)
    assert "Candidates: top 8 of 192, chosen by text score" in table
    assert table.count("<tr>") == 1 + 8  # the heading row and one per kept candidate


def test_candidates_show_the_score_that_selected_them() -> None:
    """Reranking: the rendered candidates were chosen by their image score, the rest were
    ranked by text score; each row says which, and the chosen one and the current prompt
    are tagged."""
    result = _image_run()
    result["history"][0]["candidates"] = [
        {"prompt": "a cat, oil painting", "text_score": 0.64, "image_score": 0.944},
        {"prompt": "a cat", "text_score": 0.62, "image_score": 0.900},
        {"prompt": "a cat, photo", "text_score": 0.61, "image_score": 0.871},
        {"prompt": "a dog", "text_score": 0.30},
    ]
    result["history"][0]["candidates_scored"] = 57
    table = _candidates_of(render_report(result), 0)
    assert "Candidates: top 4 of 57; 3 rendered, chosen by image score" in table
    rows = table.split("<tr>")[2:]
    assert '<span class="by image">image</span> 0.944' in rows[0]
    assert '<span class="badge best">chosen</span>' in rows[0]  # iteration 1's prompt
    assert '<span class="badge">current</span>' in rows[1]
    assert '<span class="by">text</span> 0.300' in rows[3]
    assert "image" not in rows[3]


def test_a_run_recorded_before_the_count_shows_what_it_kept() -> None:
    table = _candidates_of(render_report(_result()), 0)
    assert "Candidates: top 2 of 2, chosen by text score" in table


# --------------------------------------------------------------------------- stalls


def _stalled_run() -> dict[str, Any]:
    """Iterations 0-1 improve; 2-5 keep iteration 1's prompt; 6 (final) is new."""
    result = _result()
    prompts = ["a cat", "a cat, oil painting", *["a cat, oil painting"] * 4, "a cat, dusk"]
    result["history"] = [
        {
            "iteration": i,
            "prompt": prompt,
            "text_score": 0.2 + 0.01 * min(i, 1) + (0.05 if i == 6 else 0.0),
            "image_score": 0.7,
            "render": f"renders/iter-{i:03d}.png",
            "candidates": [{"prompt": f"try {i}", "text_score": 0.1}],
        }
        for i, prompt in enumerate(prompts)
    ]
    result["best"].update(iteration=6, prompt="a cat, dusk", text_score=0.26)
    return result


def test_stalled_iterations_fold_into_one_line() -> None:
    text = render_report(_stalled_run())
    _parse(text)
    assert text.count('<details class="stall">') == 1
    stall = text.split('<details class="stall">')[1].split("</article></details>")[0]
    assert "<strong>iterations 2-5: no improvement</strong>" in stall
    assert "the prompt of iteration 1 kept; 4 rows folded" in stall
    folded = re.findall(r'id="iteration-(\d+)"', stall)
    assert folded == ["2", "3", "4", "5"]  # kept, folded, not dropped
    shown = re.findall(r'id="iteration-(\d+)"', text.replace(stall, ""))
    assert shown == ["0", "1", "6"]


def test_a_single_stalled_iteration_and_the_best_are_not_folded_wrongly() -> None:
    result = _stalled_run()
    del result["history"][3:6]  # iterations 0, 1, 2 (stalled), 6
    text = render_report(result)
    assert "<strong>iteration 2: no improvement</strong>" in text
    result["best"].update(iteration=2, prompt="a cat, oil painting")  # the best is never folded
    assert '<details class="stall">' not in render_report(result)


# --------------------------------------------------------------------------- demo world


def _demo_run(user_prompt: str | None) -> dict[str, Any]:
    result = _result()
    seeded = user_prompt is not None
    result["demo"] = {
        "true_prompt": "a large red outlined star in the top left, on a blue background, flat",
        "true_prompt_parts": [
            {"text": "a ", "seed": False},
            {"text": "large", "seed": seeded},
            {"text": " red ", "seed": False},
            {"text": "outlined", "seed": seeded},
            {"text": " star in the top left, on a blue background, flat", "seed": False},
        ],
        "user_prompt": user_prompt,
        "scene": None if seeded else 42,
        "hits": ["count 1", "shape star", "colour red"],
        "misses": ["position top left"],
        "wrong": ["background <green>"],
        "hidden": [],
        "seed_chosen": ["fill outlined", "size large"] if seeded else [],
        "seed_hits": ["size large"] if seeded else [],
        "recall": 0.75,
        "precision": 0.75,
        "f1": 0.75,
        "initial_recall": 0.5,
        "initial_f1": 0.4,
    }
    return result


def _demo_card(html_text: str) -> str:
    return html_text.split('<section class="card demo">')[1].split("</section>")[0]


def test_demo_report_shows_the_true_prompt_and_the_hits() -> None:
    text = render_report(_demo_run(None))
    _parse(text)
    card = _demo_card(text)
    assert "a large red outlined star in the top left, on a blue background, flat" in card
    assert "Held-out demo scene 42" in card
    assert (
        "3/4 recovered (recall 75%; precision 75%; F1 75%; the first prompt: recall 50%, F1 40%)"
        in card
    )
    assert '<span class="chip fact hit">shape star</span>' in card
    assert '<span class="chip fact miss">position top left</span>' in card
    assert '<span class="chip fact miss">background &lt;green&gt;</span>' in card
    assert "<mark" not in card.split("<dl")[1]  # nothing is the seed's in a held-out scene
    assert "Chosen by the seed" not in card
    assert "<code>a cat, oil painting</code>" in card  # the recovered (best) prompt


def test_demo_report_marks_what_the_seed_chose() -> None:
    card = _demo_card(render_report(_demo_run("a red star in the top left on blue, flat")))
    assert "Drawn from your prompt <code>a red star in the top left on blue, flat</code>" in card
    true_prompt = card.split("<dt>True prompt</dt>")[1].split("</dd>")[0]
    assert re.findall(r'<mark class="seed">([^<]*)</mark>', true_prompt) == ["large", "outlined"]
    assert re.sub(r"<[^>]+>", "", true_prompt).startswith("a large red outlined star")
    seed_row = card.split("<dt>Chosen by the seed</dt>")[1].split("</dd>")[0]
    assert "fill outlined" in seed_row and "size large" in seed_row
    assert "size large" in card.split("<dt>Recovered anyway</dt>")[1].split("</dd>")[0]


def test_a_run_without_demo_facts_has_no_demo_card() -> None:
    assert 'class="card demo"' not in render_report(_result())
