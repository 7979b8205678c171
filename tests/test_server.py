"""The MCP server (``arpo serve``) through the SDK's in-memory client and a real stdio
subprocess, on the tiny preset: tools and schemas, every tool, progress, cancellation and
resume, bad inputs as tool errors, result size, concurrency, and a light import."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult
from PIL import Image

from arpo import api
from arpo.api.records import RunRecords
from arpo.config import Settings
from arpo.server import WAITING, build_server
from arpo.tools.toolbox import Toolbox

TOOLS = {
    "reverse_prompt",
    "resume_run",
    "generate_image",
    "score_prompts",
    "caption_image",
    "get_run",
    "list_runs",
    "decompose_prompt",
    "edit_prompt",
    "fuse_images",
    "vary",
}
FAST = {"strategy": "offline", "candidates": 2, "patience": 0}
ONE_MIB = 1024 * 1024


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(main)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """The allowed root: a reference, a noisy large image, a text file; a secret outside."""
    root = tmp_path / "images"
    root.mkdir()
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[:] = (30, 60, 200)
    pixels[16:48, 16:48] = (220, 30, 30)
    Image.fromarray(pixels).save(root / "reference.png")
    Image.effect_noise((1024, 1024), 90).convert("RGB").save(root / "noise.png")
    Image.new("RGB", (100, 100), "green").save(root / "big.png")
    (root / "notes.txt").write_text("not an image")
    secret = tmp_path / "secret"
    secret.mkdir()
    Image.new("RGB", (32, 32), "black").save(secret / "secret.png")
    (root / "escape.png").symlink_to(secret / "secret.png")
    return root


def toolbox_for(tiny_settings: Settings, tiny_models: Toolbox, **settings: Any) -> Toolbox:
    copy = tiny_settings.model_copy(update=settings)
    return Toolbox(copy, renderer=tiny_models.backend, scorer=tiny_models.scorer)


@pytest.fixture
def toolbox(tiny_settings: Settings, tiny_models: Toolbox, images: Path) -> Toolbox:
    return toolbox_for(
        tiny_settings, tiny_models, allowed_roots=[images], max_image_pixels=5_000_000
    )


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


def result_bytes(result: CallToolResult) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


# --------------------------------------------------------------------------- basics


def test_server_module_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import arpo.server\n"
        "heavy = ('torch', 'diffusers', 'transformers', 'open_clip', 'langchain_openai')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    env = {**os.environ, "ARPO_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_list_tools_with_schemas(toolbox: Toolbox) -> None:
    async def main() -> Any:
        async with Client(build_server(toolbox)) as client:
            tools = (await client.list_tools()).tools
            templates = (await client.list_resource_templates()).resource_templates
            return tools, templates

    tools, templates = run(main)
    assert {tool.name for tool in tools} == TOOLS
    for tool in tools:
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
    by_name = {tool.name: tool for tool in tools}
    props = by_name["reverse_prompt"].input_schema["properties"]
    assert by_name["reverse_prompt"].input_schema["required"] == ["image"]
    assert "artifact id" in props["image"]["description"]
    assert _bound(props["iterations"], "maximum") == 50
    assert _bound(props["width"], "maximum") == 1024
    assert _bound(props["budget"], "minimum") == 1
    assert _bound(props["budget"], "maximum") == 10_000
    assert set(by_name["reverse_prompt"].output_schema["properties"]) >= {
        "run_id",
        "best_prompt",
        "best_text_score",
        "best_image_score",
        "iterations",
        "renders_spent",
        "budget",
        "best_render_uri",
    }
    assert {t.uri_template for t in templates} == {
        "arpo://artifacts/{artifact_id}",
        "arpo://runs/{run_id}",
    }


def _bound(schema: dict[str, Any], key: str) -> Any:
    for option in schema.get("anyOf", [schema]):
        if key in option:
            return option[key]
    return None


# --------------------------------------------------------------------------- every tool


def test_reverse_prompt_progress_preview_and_links(toolbox: Toolbox, images: Path) -> None:
    events: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        events.append((value, total, message))

    async def main() -> Any:
        async with Client(build_server(toolbox)) as client:
            result = await client.call_tool(
                "reverse_prompt",
                {"image": str(images / "noise.png"), "iterations": 3, **FAST},
                progress_callback=progress,
            )
            data = result.structured_content
            render = await client.read_resource(data["best_render_uri"])
            record = await client.read_resource(data["run_uri"])
            return result, render, record

    result, render, record = run(main)
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["iterations"] == 3 and data["stop_reason"] == "max_iterations"
    assert data["best_prompt"] and isinstance(data["best_text_score"], float)
    iteration_events = [e for e in events if (e[2] or "").startswith("iteration")]
    assert [(e[0], e[1]) for e in iteration_events] == [(1, 3), (2, 3), (3, 3)]
    # the score the run optimises (image: the default reranks) first, the other labelled beside it
    assert all(
        re.search(r"best image 0\.\d{4} \(text 0\.\d{4}\)", e[2] or "") for e in iteration_events
    )
    assert [block.type for block in result.content] == [
        "text",
        "image",
        "resource_link",
        "resource_link",
    ]
    assert json.loads(result.content[0].text) == data
    preview = Image.open(io.BytesIO(base64.b64decode(result.content[1].data)))
    assert max(preview.size) <= 512 and preview.width > preview.height  # side by side
    assert result_bytes(result) < ONE_MIB / 2, result_bytes(result)
    png = base64.b64decode(render.contents[0].blob)
    assert render.contents[0].mime_type == "image/png" and png.startswith(b"\x89PNG")
    assert json.loads(record.contents[0].text)["status"] == "finished"


def test_reverse_prompt_budget_is_a_stop_condition(toolbox: Toolbox, images: Path) -> None:
    async def main() -> Any:
        async with Client(build_server(toolbox)) as client:
            args = {"image": str(images / "noise.png"), "iterations": 20, "patience": 0}
            refused = await client.call_tool("reverse_prompt", {**args, "budget": 0, **FAST})
            result = await client.call_tool("reverse_prompt", {**args, "budget": 2, **FAST})
            return refused, result

    refused, result = run(main)
    assert refused.is_error
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["stop_reason"] == "budget" and data["budget"] == 2
    assert 0 < data["renders_spent"] <= 2


def test_generate_score_caption_and_history(toolbox: Toolbox, images: Path) -> None:
    async def main() -> dict[str, CallToolResult]:
        async with Client(build_server(toolbox)) as client:
            out = {}
            out["generate"] = await client.call_tool(
                "generate_image", {"prompt": "a red square", "seed": 3, "count": 2}
            )
            render_id = out["generate"].structured_content["images"][0]["artifact_id"]
            out["score"] = await client.call_tool(
                "score_prompts",
                {"image": render_id, "prompts": ["a red square", "a blue circle", " "]},
            )
            out["caption"] = await client.call_tool(
                "caption_image", {"image": str(images / "reference.png")}
            )
            out["reverse"] = await client.call_tool(
                "reverse_prompt",
                {"image": str(images / "reference.png"), "iterations": 1, **FAST},
            )
            run_id = out["reverse"].structured_content["run_id"]
            out["get"] = await client.call_tool("get_run", {"run_id": run_id})
            out["list"] = await client.call_tool("list_runs", {})
            return out

    out = run(main)
    for name, result in out.items():
        assert not result.is_error, (name, text_of(result))
    generated = out["generate"].structured_content
    assert [image["seed"] for image in generated["images"]] == [3, 4]
    assert [block.type for block in out["generate"].content].count("image") == 2
    scores = out["score"].structured_content["scores"]
    assert {s["prompt"] for s in scores} == {"a red square", "a blue circle"}
    assert scores[0]["score"] >= scores[1]["score"]
    caption = out["caption"].structured_content
    assert caption["prompt"] and caption["method"] == "clip"
    details = out["get"].structured_content
    assert details["status"] == "finished" and details["resumable"] is False
    assert [step["iteration"] for step in details["history"]] == [0, 1]
    assert all(step["render_uri"].startswith("arpo://artifacts/") for step in details["history"])
    assert details["best_prompt"] == out["reverse"].structured_content["best_prompt"]
    runs = out["list"].structured_content["runs"]
    assert runs[0]["run_id"] == details["run_id"] and runs[0]["status"] == "finished"


def test_caption_matches_the_runs_initial_prompt(toolbox: Toolbox, images: Path) -> None:
    caption = api.caption(images / "reference.png", toolbox=toolbox)
    result = api.reverse_prompt(images / "reference.png", toolbox=toolbox, iterations=1, **FAST)
    assert caption == result.initial_prompt


def test_list_runs_is_newest_first(toolbox: Toolbox, images: Path) -> None:
    first = api.reverse_prompt(images / "reference.png", toolbox=toolbox, iterations=1, **FAST)
    time.sleep(1.1)  # run ids start with the second
    second = api.reverse_prompt(images / "reference.png", toolbox=toolbox, iterations=1, **FAST)

    async def main() -> Any:
        async with Client(build_server(toolbox)) as client:
            return (await client.call_tool("list_runs", {"limit": 5})).structured_content

    runs = run(main)["runs"]
    assert [r["run_id"] for r in runs] == [second.run_id, first.run_id]


# --------------------------------------------------------------------------- bad input


def bad_inputs(images: Path) -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("score_prompts", {"image": "data:image/png;base64,@@@", "prompts": ["x"]}, "base64"),
        ("score_prompts", {"image": "/etc/hostname", "prompts": ["x"]}, "outside the allowed"),
        (
            "score_prompts",
            {"image": str(images / ".." / "secret" / "secret.png"), "prompts": ["x"]},
            "'..'",
        ),
        ("caption_image", {"image": str(images / "escape.png")}, "symbolic link"),
        ("reverse_prompt", {"image": str(images / "notes.txt")}, "not a supported image"),
        ("reverse_prompt", {"image": str(images / "missing.png")}, "file not found"),
        ("score_prompts", {"image": "0" * 64, "prompts": ["x"]}, "not in the store"),
        ("reverse_prompt", {"image": "https://example.com/a.png"}, "ARPO_ALLOW_URLS"),
        ("reverse_prompt", {"image": str(images / "reference.png"), "iterations": 500}, "50"),
        ("reverse_prompt", {"image": str(images / "reference.png"), "width": 4096}, "1024"),
        (
            "reverse_prompt",
            {"image": str(images / "reference.png"), "strategy": "vanilla"},
            "needs an LLM",
        ),
        ("score_prompts", {"image": str(images / "reference.png"), "prompts": [" "]}, "prompt"),
        ("generate_image", {"prompt": "  "}, "empty"),
        ("get_run", {"run_id": "20990101-000000-abcdef"}, "no run"),
        ("resume_run", {"run_id": "../etc"}, "not a run id"),
    ]


def test_bad_inputs_are_tool_errors_and_the_server_keeps_serving(
    tiny_settings: Settings, tiny_models: Toolbox, images: Path
) -> None:
    small = toolbox_for(tiny_settings, tiny_models, allowed_roots=[images], max_image_pixels=5000)
    cases = [
        *bad_inputs(images),
        ("score_prompts", {"image": str(images / "big.png"), "prompts": ["x"]}, "too large"),
    ]

    async def main() -> list[CallToolResult]:
        async with Client(build_server(small)) as client:
            results = [await client.call_tool(name, args) for name, args, _ in cases]
            results.append(
                await client.call_tool(
                    "score_prompts",
                    {"image": str(images / "reference.png"), "prompts": ["still serving"]},
                )
            )
            return results

    results = run(main)
    for (name, args, expected), result in zip(cases, results, strict=False):
        message = text_of(result)
        assert result.is_error, (name, args)
        assert expected in message, (name, message)
        assert "Traceback" not in message and 'File "' not in message
    assert not results[-1].is_error
    assert not list(RunRecords(small.settings.runs_dir).list()), "no run recorded for bad input"


def test_loopback_url_is_refused_when_urls_are_on(
    tiny_settings: Settings, tiny_models: Toolbox, images: Path
) -> None:
    toolbox = toolbox_for(tiny_settings, tiny_models, allowed_roots=[images], allow_urls=True)

    async def main() -> CallToolResult:
        async with Client(build_server(toolbox)) as client:
            return await client.call_tool(
                "score_prompts", {"image": "http://127.0.0.1:9/x.png", "prompts": ["x"]}
            )

    result = run(main)
    assert result.is_error and "loopback, private" in text_of(result)


# --------------------------------------------------------------------------- cancel, concurrency


def test_cancellation_stops_the_run_and_it_resumes(toolbox: Toolbox, images: Path) -> None:
    seen: list[str] = []

    async def main() -> str:
        async with Client(build_server(toolbox)) as client:
            with anyio.CancelScope() as scope:

                async def progress(value: float, total: float | None, message: str | None) -> None:
                    seen.append(message or "")
                    if (message or "").startswith("iteration 1/"):
                        scope.cancel()

                await client.call_tool(
                    "reverse_prompt",
                    {"image": str(images / "reference.png"), "iterations": 8, **FAST},
                    progress_callback=progress,
                )
            assert scope.cancelled_caught, "the call was cancelled, not finished"
            run_id = _wait_for_status(toolbox, "interrupted")
            details = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
            assert details["status"] == "interrupted" and details["resumable"]
            assert 1 <= len(details["history"]) < 8
            resumed = await client.call_tool("resume_run", {"run_id": run_id})
            assert not resumed.is_error, text_of(resumed)
            assert resumed.structured_content["iterations"] == 8
            return run_id

    run_id = run(main)
    record = RunRecords(toolbox.settings.runs_dir).load(run_id)
    assert record.status == "finished"
    history = json.loads((record.run_dir / "result.json").read_text())["history"]
    assert [entry["iteration"] for entry in history] == list(range(9))


def _wait_for_status(toolbox: Toolbox, status: str, timeout: float = 60) -> str:
    records = RunRecords(toolbox.settings.runs_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_id in records.list():
            if records.load(run_id).status == status:
                return run_id
        time.sleep(0.05)
    raise AssertionError(f"no run became {status}")


def test_concurrent_runs_both_complete_one_waits(toolbox: Toolbox, images: Path) -> None:
    messages: list[list[str]] = [[], []]
    results: list[CallToolResult | None] = [None, None]

    async def main() -> None:
        async with Client(build_server(toolbox)) as client:

            async def one(k: int) -> None:
                async def progress(value: float, total: float | None, message: str | None) -> None:
                    messages[k].append(message or "")

                results[k] = await client.call_tool(
                    "reverse_prompt",
                    {"image": str(images / "reference.png"), "iterations": 2, "seed": k, **FAST},
                    progress_callback=progress,
                )

            async with anyio.create_task_group() as group:
                group.start_soon(one, 0)
                group.start_soon(one, 1)

    run(main)
    for result in results:
        assert result is not None and not result.is_error, text_of(result)
        assert result.structured_content["iterations"] == 2
    assert results[0].structured_content["run_id"] != results[1].structured_content["run_id"]
    assert sum(WAITING in m for m in messages[0] + messages[1]) == 1, messages
    for m in messages:
        assert len([x for x in m if x.startswith("iteration")]) == 2


# --------------------------------------------------------------------------- stdio


def test_stdio_subprocess(presets_home: Path, tmp_path: Path, images: Path) -> None:
    home = tmp_path / "stdio-home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1", "ARPO_ALLOWED_ROOTS": str(images)})
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("arpo")),
        args=["serve", "--preset", "tiny"],
        env=env,
        cwd=str(tmp_path),
    )
    events: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        events.append(message or "")

    async def main() -> tuple[float, dict[str, CallToolResult]]:
        start = time.perf_counter()
        with anyio.fail_after(300):
            return await session(start)

    async def session(start: float) -> tuple[float, dict[str, CallToolResult]]:
        async with Client(params) as client:
            tools = await client.list_tools()
            startup = time.perf_counter() - start
            assert {tool.name for tool in tools.tools} == TOOLS
            out = {
                "bad": await client.call_tool(
                    "score_prompts", {"image": "/etc/passwd", "prompts": ["x"]}
                ),
                "generate": await client.call_tool("generate_image", {"prompt": "a red square"}),
                "reverse": await client.call_tool(
                    "reverse_prompt",
                    {"image": str(images / "reference.png"), "iterations": 2, **FAST},
                    progress_callback=progress,
                ),
            }
            return startup, out

    startup, out = run(main)
    print(f"\nstdio: spawn -> list_tools reply in {startup:.2f} s")
    assert startup < 10
    assert out["bad"].is_error and "outside the allowed" in text_of(out["bad"])
    assert not out["generate"].is_error, text_of(out["generate"])
    assert not out["reverse"].is_error, text_of(out["reverse"])
    assert out["reverse"].structured_content["iterations"] == 2
    assert len([e for e in events if e.startswith("iteration")]) == 2


def test_stdio_demo_preset_reverse_prompt_with_the_default_budget(tmp_path: Path) -> None:
    from arpo.demo.parse import parse_prompt
    from arpo.demo.render import render_prompt

    scene = tmp_path / "scene.png"
    render_prompt("a large red solid circle in the center, on a white background, flat", 5).save(
        scene
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update(
        {
            "ARPO_HOME": str(tmp_path / "home"),
            "HF_HUB_OFFLINE": "1",
            "ARPO_ALLOWED_ROOTS": str(tmp_path),
        }
    )
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("arpo")),
        args=["serve", "--preset", "demo"],
        env=env,
        cwd=str(tmp_path),
    )
    messages: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async def main() -> CallToolResult:
        with anyio.fail_after(300):
            async with Client(params) as client:
                return await client.call_tool(
                    "reverse_prompt",
                    {"image": str(scene), "strategy": "offline", "iterations": 8},
                    progress_callback=progress,
                )

    result = run(main)
    assert not result.is_error, text_of(result)
    # a one-object scene comes back as one object with its size (how well the search recovers
    # scenes is measured on random held-out ones: tests/demo/test_demo_run.py)
    (found,) = parse_prompt(result.structured_content["best_prompt"]).objects
    assert found.size == "large", result.structured_content
    assert result.structured_content["renders_spent"] <= 32  # the default budget
    # runs rerank by image similarity by default: progress shows that score, never falling
    assert result.structured_content["objective"] == "image"
    shown = [float(m) for m in re.findall(r"best image (0\.\d{4}) \(text", " ".join(messages))]
    assert len(shown) == result.structured_content["iterations"]
    assert shown == sorted(shown)
