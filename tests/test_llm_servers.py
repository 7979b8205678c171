"""LLM servers as the README documents them, end to end through ``arpo invert`` and ``arpo
doctor`` on the demo preset: Ollama serving a vision model without tool support (json_schema or
json_mode works, the default function_calling is refused with the method to set), and a server
that refuses the temperature (the run succeeds without it)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, ollama_like, rejecting_temperature
from PIL import Image
from typer.testing import CliRunner

from arpo import api
from arpo.cli import app
from arpo.demo.evaluate import heldout_scene, render_scene
from arpo.demo.scenes import canonical_prompt
from arpo.tools import chat as chat_module

SCENE = heldout_scene(7, 1)
TRUE_PROMPT = canonical_prompt(SCENE)


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """A model that answers whatever structure is asked for, about the demo scene."""
    name = FakeOpenAI.schema_name(request)
    if name == "Caption":
        return {"prompt": "a shape on a background"}
    if name == "Critique":
        return {"differences": ["the render's shape and colour differ from the reference"]}
    if name == "Candidates":
        return {"prompts": [TRUE_PROMPT, "a small shape on a background"]}
    if name == "_Ping":  # arpo doctor's probe
        return {"answer": "ok"}
    raise AssertionError(f"unexpected request for {name!r}")


@pytest.fixture
def arpo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``arpo`` in a fresh data directory, with a clean process (no toolbox, no server
    remembered as refusing the temperature)."""
    home = tmp_path / "home"
    monkeypatch.setenv("ARPO_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    monkeypatch.setattr(chat_module, "_REFUSED_TEMPERATURE", set())
    runner = CliRunner()

    def invoke(*args: object, **env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def scene_png(tmp_path: Path) -> Path:
    """A demo scene drawn at 1024 px: larger than what goes to the LLM."""
    path = tmp_path / "scene.png"
    render_scene(SCENE, 7, size=1024).save(path)
    return path


def llm_env(server: FakeOpenAI, model: str, **more: str) -> dict[str, str]:
    return {
        "ARPO_LLM_BASE_URL": server.base_url,
        "ARPO_LLM_MODEL": model,
        "ARPO_LLM_MAX_RETRIES": "0",
        **more,
    }


def invert(arpo, image: Path, strategy: str, env: dict[str, str]):
    return arpo(
        "invert", image, "--preset", "demo", "--strategy", strategy,
        "--iterations", 2, "--candidates", 2, "--json", **env,
    )  # fmt: skip


def image_sizes(request: dict[str, Any]) -> list[tuple[int, int]]:
    sizes = []
    for url in FakeOpenAI.images_in(request):
        assert url.startswith("data:image/jpeg;base64,"), url[:40]
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert image.format == "JPEG"
        sizes.append(image.size)
    return sizes


@pytest.mark.parametrize(
    ("method", "ollama_json_schema"), [("json_schema", True), ("json_mode", False)]
)
def test_ollama_runs_the_demo_with_a_json_method(
    arpo, scene_png: Path, method: str, ollama_json_schema: bool
) -> None:
    with ollama_like(json_schema=ollama_json_schema, default=answer) as server:
        env = llm_env(server, "llava:13b", ARPO_LLM_STRUCTURED_METHOD=method)
        done = invert(arpo, scene_png, "enhanced", env)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["strategy"] == "enhanced"
    assert summary["best_prompt"] == TRUE_PROMPT
    asked = [FakeOpenAI.schema_name(r) for r in server.requests]
    assert asked == ["Caption", *["Critique", "Candidates"] * 2]
    assert not any(r.get("tools") for r in server.requests)
    kinds = {r["response_format"]["type"] for r in server.requests}
    assert kinds == {"json_schema" if method == "json_schema" else "json_object"}
    # the 1024 px reference goes out as a 768 px JPEG; the demo's renders as they are
    caption, critique = server.requests[:2]
    assert image_sizes(caption) == [(768, 768)]
    reference, render = image_sizes(critique)
    assert reference == (768, 768) and max(render) <= 768


def test_ollama_with_the_default_method_says_which_to_set(arpo, scene_png: Path) -> None:
    with ollama_like(default=answer) as server:
        env = llm_env(server, "llava:13b")
        done = invert(arpo, scene_png, "vanilla", env)
        assert done.exit_code == 1
        [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert "does not support function calling (tools)" in line
        assert "registry.ollama.ai/library/llava:13b does not support tools" in line
        assert "ARPO_LLM_STRUCTURED_METHOD=json_schema" in line
        assert "try again later" not in line.lower()
        run_id = done.stderr.split("--resume ")[1].split()[0]

        doctor = arpo("doctor", "--preset", "demo", "--json", **env)
        # the setting the message names finishes the saved run
        fixed = arpo(
            "invert", "--resume", run_id, "--json", ARPO_LLM_STRUCTURED_METHOD="json_schema"
        )
    assert doctor.exit_code == 1
    rows = {row["check"]: row for row in json.loads(doctor.stdout)}
    structured = rows["llm structured output"]
    assert not structured["ok"]
    assert structured["detail"].startswith("function_calling is refused: HTTP 400")
    assert structured["fix"] == (
        "set ARPO_LLM_STRUCTURED_METHOD=json_schema (it works with this server)."
    )
    assert fixed.exit_code == 0, fixed.output
    resumed = json.loads(fixed.stdout)
    assert resumed["run_id"] == run_id and resumed["best_prompt"] == TRUE_PROMPT


def test_doctor_names_json_mode_where_only_json_mode_answers(arpo) -> None:
    with ollama_like(json_schema=False, default={"answer": "ok"}) as server:
        env = llm_env(server, "llava:13b", ARPO_LLM_STRUCTURED_METHOD="json_schema")
        doctor = arpo("doctor", "--preset", "demo", "--json", **env)
    rows = {row["check"]: row for row in json.loads(doctor.stdout)}
    structured = rows["llm structured output"]
    assert "json_schema is refused: HTTP 400" in structured["detail"]
    assert structured["fix"] == (
        "set ARPO_LLM_STRUCTURED_METHOD=json_mode (it works with this server)."
    )
    # json_schema, then function_calling refused (tools), then json_mode answered
    asked = [r.get("response_format", {}).get("type") or "tools" for r in server.requests]
    assert asked == ["json_schema", "tools", "json_object"]


def test_a_server_refusing_the_temperature_runs_without_it(arpo, scene_png: Path) -> None:
    with rejecting_temperature(model="mystery-reasoner", default=answer) as server:
        env = llm_env(server, "mystery-reasoner")
        done = invert(arpo, scene_png, "vanilla", env)
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["best_prompt"] == TRUE_PROMPT
        first, *rest = server.requests
        assert first["temperature"] == 0.7  # ARPO_LLM_TEMPERATURE's default, refused once
        assert len(rest) == 3  # the caption again, then two proposals
        assert all("temperature" not in request for request in rest)

        doctor = arpo("doctor", "--preset", "demo", "--json", **env)
    rows = {row["check"]: row for row in json.loads(doctor.stdout)}
    structured = rows["llm structured output"]
    assert structured["ok"]
    assert structured["detail"] == (
        "function_calling works (ARPO_LLM_STRUCTURED_METHOD); temperature left out: this "
        "model takes only its default"
    )
