"""Whole runs rendered through the images API (the fake server, drawing the demo world):
cost metering, --max-cost stop and resume, a refused candidate, the not-reproducible mark."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fake_images import FakeImages, Reply, hosted_demo_toolbox

from arpo import api
from arpo.api.records import RunRecords
from arpo.config import Settings
from arpo.demo.render import render_prompt
from arpo.errors import InvalidOptionError, RenderError
from arpo.tools.toolbox import Toolbox

PRICE = 0.04
REFERENCE = "a large red solid circle in the center, on a white background"
# a start far from REFERENCE, so every iteration has new candidates to render (the demo
# captioner's own first prompt can be REFERENCE itself, leaving the search little to do)
START = "a small blue outlined square at the top, on a black background, pixel art"


@pytest.fixture
def server() -> FakeImages:
    with FakeImages() as fake:
        yield fake


def hosted(server: FakeImages, home: Path, **settings: object) -> Toolbox:
    return hosted_demo_toolbox(server, home, PRICE, **settings)


def test_a_run_through_the_images_api_meters_its_cost_and_says_it_is_not_reproducible(
    server: FakeImages, tmp_path: Path
) -> None:
    toolbox = hosted(server, tmp_path)
    result = api.reverse_prompt(render_prompt(REFERENCE, 1), toolbox=toolbox, iterations=3)

    assert toolbox.backend.name == "openai-images:arpo-demo"
    assert toolbox.profile.name == "demo"  # the preset's world, rendered by the endpoint
    assert result.renders_spent == server.served > 0
    assert result.cost_usd == pytest.approx(result.renders_spent * PRICE)
    assert result.reproducible is False
    written = json.loads((result.run_dir / "result.json").read_text())
    assert written["cost"]["usd"] == pytest.approx(result.cost_usd)
    assert written["models"]["t2i"] == "openai-images:arpo-demo"
    assert written["models"]["profile"]["reproducible"] is False
    report = (result.run_dir / "report.html").read_text()
    assert f"${result.cost_usd:.2f} ({result.renders_spent} renders at $0.040)" in report
    assert "takes no seed" in report


def test_max_cost_stops_the_run_resumably_and_a_higher_limit_goes_on(
    server: FakeImages, tmp_path: Path
) -> None:
    toolbox = hosted(server, tmp_path)
    image = render_prompt(REFERENCE, 1)
    # 4 renders pay for the first prompt and one iteration (3 reranked), not a second
    paused = api.reverse_prompt(
        image, prompt=START, toolbox=toolbox, iterations=6, patience=0, max_cost=0.2
    )

    assert paused.stop_reason == "max_cost"
    assert paused.cost_usd is not None and paused.cost_usd <= 0.2 + 1e-9
    assert paused.max_cost == 0.2
    assert paused.iterations == 1
    record = RunRecords(toolbox.settings.runs_dir).load(paused.run_id)
    assert record.status == "interrupted" and "--max-cost" in (record.error or "")
    details = api.run_details(paused.run_id, settings=toolbox.settings)
    assert details.resumable
    served = server.served

    same = api.resume(paused.run_id, toolbox=toolbox)  # same limit: stops again, no render
    assert same.stop_reason == "max_cost" and server.served == served

    more = api.resume(paused.run_id, toolbox=toolbox, max_cost=10.0)
    assert more.stop_reason != "max_cost"
    assert more.renders_spent > paused.renders_spent
    assert more.cost_usd == pytest.approx(more.renders_spent * PRICE)
    assert server.served == more.renders_spent  # nothing rendered twice
    assert RunRecords(toolbox.settings.runs_dir).load(paused.run_id).status == "finished"


def test_max_cost_needs_a_price_and_must_pay_for_the_first_prompt(
    server: FakeImages, tmp_path: Path
) -> None:
    image = render_prompt(REFERENCE, 1)
    with pytest.raises(InvalidOptionError, match="cannot pay for the first prompt"):
        api.reverse_prompt(image, toolbox=hosted(server, tmp_path), max_cost=0.01)
    local = Toolbox(Settings(home=tmp_path / "local", preset="demo"))
    with pytest.raises(InvalidOptionError, match=r"needs a price per image.*ARPO_T2I_PRICE"):
        api.reverse_prompt(image, toolbox=local, max_cost=1.0)


def test_refused_candidates_score_lowest_with_a_note_and_the_run_goes_on(
    server: FakeImages, tmp_path: Path
) -> None:
    first: list[str] = []

    def everything_but_the_first_prompt(prompt: str) -> bool:
        first.append(prompt) if not first else None
        return prompt != first[0]

    server.refuse = everything_but_the_first_prompt
    result = api.reverse_prompt(render_prompt(REFERENCE, 1), toolbox=hosted(server, tmp_path))

    notes = " ".join(entry.get("note") or "" for entry in result.history)
    assert "candidate(s) refused by the text-to-image service, scored lowest" in notes
    assert result.best_prompt == first[0]
    assert result.renders_spent == server.served == 1  # refusals are neither spent nor paid
    assert result.cost_usd == pytest.approx(PRICE)


def test_a_render_that_times_out_keeps_the_batchs_other_renders_and_the_resume_pays_once(
    server: FakeImages, tmp_path: Path
) -> None:
    toolbox = hosted(server, tmp_path, t2i_timeout_s=0.5)
    # the first prompt renders; then one of the 4 reranked candidates hangs past the timeout
    server.script(Reply.ok(), Reply.stall(30.0))
    image = render_prompt(REFERENCE, 1)
    with pytest.raises(RenderError, match=r"within 0.5 s.*3 of 4 renders were made"):
        api.reverse_prompt(
            image, prompt=START, toolbox=toolbox, iterations=2, patience=0, rerank_top_k=4
        )

    run_id = RunRecords(toolbox.settings.runs_dir).list()[0]
    record = RunRecords(toolbox.settings.runs_dir).load(run_id)
    assert record.status == "failed"
    assert record.renders_paid == 4 == server.served  # the first prompt and 3 candidates

    resumed = api.resume(run_id, toolbox=toolbox)
    assert resumed.renders_spent == server.served  # every render paid for is counted once
    assert resumed.cost_usd == pytest.approx(server.served * PRICE)
    asked = Counter(request["prompt"] for request in server.requests)
    assert len(server.requests) == server.served + 1  # the one that timed out, asked again
    assert sorted(asked.values())[-1] == 2 and sorted(asked.values())[-2] == 1
