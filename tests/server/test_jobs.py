"""The model lock of the MCP server's jobs covers model work, not waits on other machines: a
request's render goes on while another request waits for the LLM's answer, and a request's
scoring while another's renders are in flight at an images API (the tiny preset in process,
fake servers that take seconds to answer)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_images import FakeImages
from fake_openai import FakeOpenAI
from mcp import Client
from mcp.types import CallToolResult

from arpo.config import Settings
from arpo.errors import RunCancelled
from arpo.server import WAITING, build_server
from arpo.server.jobs import Job
from arpo.tools.toolbox import Toolbox
from arpo.tools.waits import waiting_on_service

LLM_S = 2.0  # each LLM answer takes this long


def answer(request: dict[str, Any]) -> dict[str, Any]:
    if FakeOpenAI.schema_name(request) == "Caption":
        return {"prompt": "a red square on a blue background"}
    return {"prompts": ["a red square", "a red square on blue", "red and blue"]}


@pytest.fixture
def slow_llm() -> Any:
    with FakeOpenAI(answer, latency_s=LLM_S) as server:
        yield server


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


def test_a_render_goes_on_while_another_request_waits_for_the_llm(
    tiny_settings: Settings, tiny_models: Toolbox, slow_llm: FakeOpenAI, reference_png: Path
) -> None:
    settings = Settings(
        home=tiny_settings.home,
        preset="tiny",
        llm_base_url=slow_llm.base_url,
        llm_api_key="test",
        llm_max_retries=0,
        llm_timeout_s=30,
        allowed_roots=[reference_png.parent],
    )
    toolbox = Toolbox(settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)
    told: list[str] = []
    timings: dict[str, float] = {}

    async def main() -> tuple[CallToolResult, CallToolResult]:
        async with Client(build_server(toolbox)) as client:
            results: dict[str, CallToolResult] = {}

            async def run_a() -> None:
                results["a"] = await client.call_tool(
                    "reverse_prompt",
                    {"image": str(reference_png), "strategy": "vanilla", "iterations": 1},
                )

            async def run_b() -> None:
                while slow_llm.in_flight == 0:  # A is waiting for the LLM now
                    await anyio.sleep(0.01)
                timings["b_start"] = time.monotonic()

                async def progress(value: float, total: float | None, message: str | None) -> None:
                    told.append(message or "")

                results["b"] = await client.call_tool(
                    "generate_image", {"prompt": "a blue circle"}, progress_callback=progress
                )
                timings["b_end"] = time.monotonic()

            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:
                    group.start_soon(run_a)
                    group.start_soon(run_b)
            return results["a"], results["b"]

    a, b = anyio.run(main)
    assert not a.is_error, text_of(a)
    assert not b.is_error, text_of(b)
    waited_on = [span for span in slow_llm.spans if span[0] <= timings["b_start"] <= span[1]]
    assert waited_on, (slow_llm.spans, timings)
    assert timings["b_end"] < waited_on[0][1], "B's render waited for A's LLM answer"
    assert WAITING not in told  # B found the model free


def test_scoring_goes_on_while_another_requests_renders_are_at_the_images_api(
    tiny_settings: Settings, tiny_models: Toolbox, reference_png: Path
) -> None:
    with FakeImages(latency_s=LLM_S) as images:
        settings = Settings(
            home=tiny_settings.home,
            preset="tiny",
            t2i_model="openai-images:arpo-demo",
            t2i_base_url=images.base_url,
            t2i_api_key="test",
            allowed_roots=[reference_png.parent],
        )
        toolbox = Toolbox(settings, scorer=tiny_models.scorer)
        timings: dict[str, float] = {}

        async def main() -> tuple[CallToolResult, CallToolResult]:
            async with Client(build_server(toolbox)) as client:
                results: dict[str, CallToolResult] = {}

                async def render() -> None:
                    results["a"] = await client.call_tool(
                        "generate_image", {"prompt": "a red circle", "width": 64, "height": 64}
                    )
                    timings["a_end"] = time.monotonic()

                async def score() -> None:
                    while images.in_flight == 0:  # A's render is at the images API now
                        await anyio.sleep(0.01)
                    results["b"] = await client.call_tool(
                        "score_prompts", {"image": str(reference_png), "prompts": ["red"]}
                    )
                    timings["b_end"] = time.monotonic()

                with anyio.fail_after(120):
                    async with anyio.create_task_group() as group:
                        group.start_soon(render)
                        group.start_soon(score)
                return results["a"], results["b"]

        a, b = anyio.run(main)
    assert not a.is_error, text_of(a)
    assert not b.is_error, text_of(b)
    assert timings["b_end"] < timings["a_end"], "scoring waited for the images API"


def test_a_wait_frees_the_lock_and_takes_it_back() -> None:
    lock = threading.Lock()
    job = Job(lock)
    with job.model():
        assert lock.locked()
        with waiting_on_service():
            assert not lock.locked()  # another request may use the models now
            with waiting_on_service():  # a wait inside the wait frees nothing more
                assert not lock.locked()
        assert lock.locked()
    assert not lock.locked()
    with waiting_on_service():  # outside a job: nothing to let go of
        assert not lock.locked()


def test_a_cancel_while_taking_the_lock_back_leaves_it_to_its_holder() -> None:
    lock = threading.Lock()
    job = Job(lock)
    with pytest.raises(RunCancelled), job.model(), waiting_on_service():
        lock.acquire()  # another request takes it meanwhile
        job.cancelled.set()
    assert lock.locked()  # still the other request's: not released by the cancelled one
    lock.release()
