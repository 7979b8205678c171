"""The run tools over MCP with a renderer that has a price (the images API, the fake server
drawing the demo world): the result shows the cost; ``max_cost`` pauses a run, the result
says how to resume it, and ``resume_run`` with a higher ``max_cost`` goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_images import FakeImages, hosted_demo_toolbox
from mcp import Client
from mcp.types import CallToolResult

from arpo.demo.render import render_prompt
from arpo.server import build_server
from arpo.tools.toolbox import Toolbox

PRICE = 0.04


@pytest.fixture
def server() -> Iterator[FakeImages]:
    with FakeImages() as fake:
        yield fake


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


def hosted_toolbox(server: FakeImages, home: Path) -> Toolbox:
    home.mkdir(exist_ok=True)
    return hosted_demo_toolbox(server, home, PRICE, allowed_roots=[home])


def test_max_cost_pauses_the_run_and_resume_run_with_a_higher_limit_goes_on(
    server: FakeImages, tmp_path: Path
) -> None:
    toolbox = hosted_toolbox(server, tmp_path / "home")
    reference = tmp_path / "home" / "reference.png"
    render_prompt("a large red solid circle in the center, on a white background", 1).save(
        reference
    )

    async def main() -> tuple[CallToolResult, CallToolResult]:
        async with Client(build_server(toolbox)) as client:
            paused = await client.call_tool(
                "reverse_prompt",
                {
                    "image": str(reference),
                    # far from the reference, so each iteration renders new candidates
                    "prompt": "a small blue outlined square at the top, on a black background",
                    "iterations": 6,
                    "patience": 0,
                    "max_cost": 0.2,
                },
            )
            run_id = (paused.structured_content or {}).get("run_id", "")
            resumed = await client.call_tool("resume_run", {"run_id": run_id, "max_cost": 10.0})
            return paused, resumed

    paused, resumed = anyio.run(main)
    assert not paused.is_error, text_of(paused)
    data: dict[str, Any] = paused.structured_content or {}
    assert data["stop_reason"] == "max_cost" and data["max_cost"] == 0.2
    assert data["cost_usd"] == pytest.approx(data["renders_spent"] * PRICE)
    assert data["cost_usd"] <= 0.2 + 1e-9
    hint = data["next_step"]
    assert f"call resume_run with run_id '{data['run_id']}' and a higher max_cost" in hint
    assert f"${data['cost_usd']:.2f} spent of $0.20" in hint
    assert hint in text_of(paused)  # said in words too, not only in the structured content

    assert not resumed.is_error, text_of(resumed)
    more: dict[str, Any] = resumed.structured_content or {}
    assert more["run_id"] == data["run_id"] and more["stop_reason"] != "max_cost"
    assert more["max_cost"] == 10.0 and more["next_step"] is None
    assert more["renders_spent"] == server.served > data["renders_spent"]
    assert more["cost_usd"] == pytest.approx(server.served * PRICE)
