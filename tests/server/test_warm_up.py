"""The server's background warm-up: a call that waits for the models hears what is loading,
at least once a second, then succeeds; a warm-up failure is reported by the first call in the
words the CLI prints; ``arpo serve`` warms up by default and ``--no-warm-up`` loads nothing at
start (a real stdio subprocess on the tiny preset)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.config import Settings
from arpo.server import build_server
from arpo.server.jobs import WAITING, Job, ModelLoading, model_loading
from arpo.tools import registry
from arpo.tools.clip import ClipScorer
from arpo.tools.toolbox import Toolbox

T2I_SLEEP_S = 2.2
CLIP_SLEEP_S = 1.0


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


@pytest.fixture
def slow_toolbox(
    tiny_settings: Settings, tiny_models: Toolbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Toolbox]:
    """A tiny-preset Toolbox whose models load slowly: its builders sleep, then hand back the
    session's loaded tiny models."""
    real = registry.renderer_builder("diffusers")

    def slow_build(ref: str, settings: Settings) -> Any:
        time.sleep(T2I_SLEEP_S)
        return tiny_models.backend

    def slow_clip(*args: Any, **kwargs: Any) -> ClipScorer:
        time.sleep(CLIP_SLEEP_S)
        return tiny_models.scorer

    monkeypatch.setitem(
        registry._builders["renderer"],
        "diffusers",
        registry.RendererBuilder(build=slow_build, check=real.check),
    )
    monkeypatch.setattr(ClipScorer, "from_pretrained", staticmethod(slow_clip))
    toolbox = Toolbox(tiny_settings)
    yield toolbox
    model_loading(toolbox).done.wait(60)  # the warm-up goes on after the call: let it end


def test_a_call_during_warm_up_hears_what_loads_then_succeeds(slow_toolbox: Toolbox) -> None:
    events: list[tuple[float, str]] = []
    arrived: list[float] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        events.append((value, message or ""))
        arrived.append(time.monotonic())

    async def main() -> CallToolResult:
        with anyio.fail_after(60):
            async with Client(build_server(slow_toolbox, warm_up=True)) as client:
                return await client.call_tool(
                    "generate_image", {"prompt": "a red square"}, progress_callback=progress
                )

    result = run(main)
    assert not result.is_error, text_of(result)
    messages = [message for _, message in events]
    assert "waiting for the models: loading CLIP tiny/clip" in messages, messages
    t2i = [m for m in messages if m.endswith(": loading text-to-image model tiny/t2i")]
    # the T2I load takes 2.2 s: told when it starts, then at least every second
    assert len(t2i) >= 2, messages
    waiting_times = [at for at, (_, m) in zip(arrived, events, strict=True) if "waiting" in m]
    gaps = [b - a for a, b in itertools.pairwise(waiting_times)]
    assert max(gaps) < 2.0, gaps  # about 1 s; slack for a busy machine
    assert WAITING not in messages  # it waited for the warm-up, not for another request
    values = [value for value, _ in events]
    assert values == sorted(values) and len(set(values)) == len(values)  # rising, as MCP asks
    assert all(value < 1 for value in values)
    assert slow_toolbox._given["backend"] is not None and slow_toolbox._given["scorer"] is not None


def test_a_call_after_warm_up_does_not_wait(slow_toolbox: Toolbox) -> None:
    events: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        events.append(message or "")

    async def main() -> CallToolResult:
        server = build_server(slow_toolbox, warm_up=True)
        loading = model_loading(slow_toolbox)
        await anyio.to_thread.run_sync(loading.done.wait, 60)
        async with Client(server) as client:
            return await client.call_tool(
                "score_prompts",
                {"image": _reference(slow_toolbox), "prompts": ["a", "b"]},
                progress_callback=progress,
            )

    result = run(main)
    assert not result.is_error, text_of(result)
    assert events == []
    # the vocabulary was embedded by the warm-up (no LLM: interrogation and offline need it)
    vocabulary = slow_toolbox.vocabulary.categories
    phrase = next(iter(vocabulary.values()))[0]
    assert phrase in slow_toolbox.scorer._texts


def test_a_first_reverse_prompt_without_warm_up_says_what_loads_before_iterating(
    tmp_path: Path,
) -> None:
    """--no-warm-up: the call loads the models itself, and says so before its first iteration
    (the demo preset, in a data folder no process used yet)."""
    toolbox = Toolbox(Settings(home=tmp_path / "home", preset="demo"))
    messages: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async def main() -> CallToolResult:
        with anyio.fail_after(120):
            async with Client(build_server(toolbox, warm_up=False)) as client:
                return await client.call_tool(
                    "reverse_prompt",
                    {"image": _reference(toolbox), "iterations": 2},
                    progress_callback=progress,
                )

    result = run(main)
    assert not result.is_error, text_of(result)
    first_iteration = next(i for i, m in enumerate(messages) if m.startswith("iteration 1/2"))
    before = messages[:first_iteration]
    assert before[:2] == ["checking the model files", "loading CLIP demo-clip"]
    assert "loading text-to-image model arpo-demo-renderer-v2" in before
    assert any(m.startswith("embedding the phrase vocabulary (0/") for m in before)
    assert any(m.startswith("run ") and m.endswith("started: finding the first prompt")
               for m in before)  # fmt: skip


def test_the_warm_up_hands_the_lock_to_a_waiting_call_between_vocabulary_chunks() -> None:
    lock = threading.Lock()
    loading = ModelLoading(lock)
    assert loading.begin("starting")
    loading.say("embedding the phrase vocabulary (0/10 phrases)")
    job = Job(lock, loading)
    order: list[str] = []

    def call() -> None:
        with job.model():
            order.append("call")

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not loading.waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    loading.step("embedding the phrase vocabulary (5/10 phrases)")  # the call goes first
    order.append("warm-up")
    loading.end()
    caller.join(5)
    assert order == ["call", "warm-up"]
    told = []
    while not job.events.empty():
        told.append(job.events.get()[2])
    assert told == ["waiting for the models: embedding the phrase vocabulary (0/10 phrases)"]


def test_a_warm_up_failure_is_reported_by_the_first_call_in_the_clis_words(
    tmp_path: Path,
    tiny_models: Toolbox,
    empty_hub_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, t2i_model="nobody/missing-model")
    toolbox = Toolbox(settings, scorer=tiny_models.scorer)
    events: list[str] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        events.append(message or "")

    async def main() -> tuple[CallToolResult, CallToolResult]:
        server = build_server(toolbox, warm_up=True)
        await anyio.to_thread.run_sync(model_loading(toolbox).done.wait, 30)
        async with Client(server) as client:
            first = await client.call_tool(
                "generate_image", {"prompt": "a cat"}, progress_callback=progress
            )
            second = await client.call_tool("generate_image", {"prompt": "a cat"})
            return first, second

    first, second = run(main)
    assert first.is_error and second.is_error
    message = text_of(first).removeprefix("Error executing tool generate_image: ")
    assert "nobody/missing-model" in message and "ARPO_T2I_MODEL" in message
    assert text_of(second) == text_of(first)
    assert events[0].startswith("loading the models at start failed (")
    assert message in events[0]
    assert events[1:] == ["loading text-to-image model missing-model"]  # it tries again

    # the CLI says the same for the same settings
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    env = {"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1", "ARPO_T2I_MODEL": "nobody/missing-model"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(app, ["generate", "a cat", "--out", str(tmp_path / "out")], env=env)
    assert done.exit_code != 0
    said, error = done.stderr.split("error: ")
    assert said.strip() == "loading text-to-image model missing-model"  # what it was doing
    assert " ".join(error.split()) == " ".join(message.split())


# --------------------------------------------------------------------------- stdio


@pytest.mark.parametrize("mode", ["default", "--no-warm-up"])
def test_stdio_serve_warms_up_by_default_and_not_with_no_warm_up(
    mode: str, process_home: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = process_home
    args = ["-v", "serve", "--preset", "tiny"] + ([mode] if mode != "default" else [])
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("arpo")), args=args, env=env, cwd=str(tmp_path)
    )
    log_path = tmp_path / "stderr.log"

    async def main() -> float:
        with log_path.open("w") as errlog, anyio.fail_after(120):
            start = time.perf_counter()
            async with Client(stdio_client(params, errlog=errlog)) as client:
                tools = await client.list_tools()
                startup = time.perf_counter() - start
                assert tools.tools
                if mode == "default":  # the models load meanwhile, in the background
                    while "models loaded in" not in log_path.read_text():
                        await anyio.sleep(0.2)
                else:
                    await anyio.sleep(1.0)
            return startup

    startup = run(main)
    log = log_path.read_text()
    print(f"\nstdio {mode}: spawn -> list_tools reply in {startup:.2f} s")
    assert startup < 10, log
    if mode == "default":
        assert "loading the models in the background" in log
        assert "loaded CLIP" in log, log
    else:
        assert "loading the models" not in log and "loaded CLIP" not in log, log


# --------------------------------------------------------------------------- helpers


def run(main: Any) -> Any:
    return anyio.run(main)


def _reference(toolbox: Toolbox) -> str:
    """An image inside the server's default root (the inbox)."""
    from PIL import Image

    inbox = toolbox.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / "reference.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(path)
    return str(path)


def test_stdio_client_leaving_during_warm_up_exits_cleanly(tmp_path: Path) -> None:
    """torch's threads abort an ordinary interpreter exit while a load runs (SIGABRT): the
    server leaves at once instead. A fresh ARPO_HOME makes the warm-up build the tiny preset."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"})
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("arpo")), "serve", "--preset", "tiny"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        text=True,
    )
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(hello) + "\n")
    process.stdin.flush()
    assert '"result"' in process.stdout.readline()
    time.sleep(1.5)  # the warm-up is importing torch or building the preset
    process.stdin.close()
    code = process.wait(60)
    log = process.stderr.read() if process.stderr else ""
    assert code == 0, log
    assert "exiting while the models were still loading" in log or "models loaded" in log, log


@pytest.mark.parametrize(
    ("name", "kind", "preset", "shown"),
    [
        ("stable-diffusion-v1-5/stable-diffusion-v1-5", "t2i", False, "stable-diffusion-v1-5"),
        ("/models/sdxl-base", "t2i", False, "sdxl-base"),
        ("ViT-L-14/openai", "clip", False, "ViT-L-14"),
        ("local-dir:/models/clip-b", "clip", False, "clip-b"),
        ("hf-hub:laion/CLIP-ViT-bigG-14", "clip", False, "CLIP-ViT-bigG-14"),
        ("tiny/t2i", "t2i", True, "tiny/t2i"),
    ],
)
def test_progress_names_models_shortly(name: str, kind: str, preset: bool, shown: str) -> None:
    from arpo.tools.toolbox import short_model_name

    assert short_model_name(name, kind=kind, preset=preset) == shown
