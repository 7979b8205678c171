"""``langgraph dev`` on langgraph.json, driven by the LangGraph SDK as a Studio user would be:
a thread, a streamed run on the demo preset with a base64 image, the final state; a bad image
comes back with arpo's own message.

Needs the ``studio`` extra (``pip install -e '.[dev]'`` brings it); skipped without it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

for _module in ("langgraph_cli", "langgraph_api", "langgraph_runtime_inmem", "langgraph_sdk"):
    pytest.importorskip(
        _module, reason=f"{_module} is not installed: pip install -e '.[studio]' (or '.[dev]')"
    )

from langgraph_sdk import get_sync_client  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 90
LANGGRAPH_CLI = "import sys; from langgraph_cli.cli import cli; sys.exit(cli())"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config_in(folder: Path) -> Path:
    """The repository's langgraph.json with absolute paths and no ``env`` file, so the server
    runs in ``folder`` and a developer's own .env cannot change what it loads."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    config.pop("env", None)
    config["dependencies"] = [str(ROOT / entry) for entry in config["dependencies"]]
    config["graphs"] = {
        name: str(ROOT / spec.removeprefix("./")) for name, spec in config["graphs"].items()
    }
    path = folder / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``langgraph dev`` on a free loopback port, with the demo preset and a fresh ARPO_HOME;
    yields its URL and that home."""
    folder = tmp_path_factory.mktemp("langgraph-dev")
    home = folder / "home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update(
        ARPO_HOME=str(home),
        ARPO_PRESET="demo",
        HF_HUB_OFFLINE="1",
        LANGSMITH_TRACING="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])),
    )
    command = [sys.executable, "-c", LANGGRAPH_CLI, "dev", "--config", str(config_in(folder))]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"]
    log = folder / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield url, home
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"langgraph dev did not answer within {STARTUP_S} s:\n{log.read_text()}")


def stream(url: str, image: str, context: dict[str, Any] | None = None) -> tuple[str, list[Any]]:
    client = get_sync_client(url=url)
    thread = client.threads.create()
    parts = list(
        client.runs.stream(
            thread["thread_id"],
            "arpo",
            input={"image": image},
            context=context,
            stream_mode=["custom", "values"],
        )
    )
    return thread["thread_id"], parts


def test_studio_sees_the_input_form(server: tuple[str, Path]) -> None:
    client = get_sync_client(url=server[0])
    (assistant,) = client.assistants.search(graph_id="arpo")
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    assert schemas["input_schema"]["required"] == ["image"]
    assert "best_prompt" in schemas["output_schema"]["properties"]
    assert "iterations" in schemas["context_schema"]["properties"]


def test_a_base64_image_runs_on_the_preset_defaults_and_is_recorded(
    server: tuple[str, Path], red_circle: str
) -> None:
    url, home = server
    thread_id, parts = stream(url, red_circle, context={"iterations": 2})

    assert [p.data for p in parts if p.event == "error"] == []
    progress = [p.data for p in parts if p.event == "custom"]
    assert progress[0]["event"] == "started"
    assert [event["iteration"] for event in progress[1:]] == [0, 1]
    final = get_sync_client(url=url).threads.get_state(thread_id)["values"]
    assert final["best_prompt"].strip()
    assert 0.0 < final["best_text_score"] <= 1.0
    assert final["best_score"] == final[f"best_{final['objective']}_score"]
    assert final["previews"]["side_by_side"].startswith("data:image/")
    assert final["links"]["report"] == (Path(final["report"])).as_uri()
    assert len(final["image"]) == 64  # the input became its artifact id once stored

    run_dir = Path(final["run_dir"])
    assert run_dir.parent == home / "runs"
    assert (run_dir / "report.html").is_file()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished"
    # the demo preset's defaults, as the CLI gets them: not RunOptions' 512 px, 30 steps
    options = record["options"]
    assert options["iterations"] == 2
    assert (options["width"], options["height"], options["steps"]) == (128, 128, 1)
    assert options["guidance"] == 0.0


def test_a_bad_image_gets_arpos_message(server: tuple[str, Path]) -> None:
    _, parts = stream(server[0], "data:image/png;base64,bm90IGFuIGltYWdl")
    (error,) = [p.data for p in parts if p.event == "error"]
    assert error["error"] == "InvalidImageError"
    assert "not a supported image format" in error["message"]


def test_a_bad_option_gets_arpos_message(server: tuple[str, Path], red_circle: str) -> None:
    _, parts = stream(server[0], red_circle, context={"iterations": 0})
    (error,) = [p.data for p in parts if p.event == "error"]
    assert error == {
        "error": "InvalidOptionError",
        "message": "iterations=0 must be at least 1.",
    }


def test_a_cancelled_run_stops_and_records_itself_resumable(
    server: tuple[str, Path], red_circle: str
) -> None:
    """Cancelling the LangGraph run stops arpo's run at its next iteration, recorded
    ``interrupted`` (``arpo invert --resume`` continues it), not left to finish unseen."""
    url, home = server
    client = get_sync_client(url=url)
    thread = client.threads.create()
    before = set(home.glob("runs/*/run.json"))
    long = {"iterations": 50, "patience": 0, "budget": 0, "restarts": 0}
    run = client.runs.create(thread["thread_id"], "arpo", input={"image": red_circle}, context=long)
    record_path = wait_for(lambda: next(iter(set(home.glob("runs/*/run.json")) - before), None))
    wait_for(lambda: iterations_of(record_path) >= 1 or None)
    client.runs.cancel(thread["thread_id"], run["run_id"])

    record = wait_for(lambda: ended(record_path))
    assert record["status"] == "interrupted"
    assert "cancelled" in (record["error"] or "")
    from arpo import api

    details = api.run_details(record["run_id"], settings=arpo_settings(home))
    assert details.resumable and len(details.history) < 50


def wait_for(probe: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"nothing came within {timeout_s} s")


def iterations_of(record_path: Path) -> int:
    from arpo.api.history import run_details

    try:
        return len(
            run_details(
                record_path.parent.name, settings=arpo_settings(record_path.parents[2])
            ).history
        )
    except Exception:  # the record being written
        return 0


def ended(record_path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("status") != "running" else None


def arpo_settings(home: Path) -> Any:
    from arpo.config import Settings

    return Settings(home=home, preset="demo")
