"""``kill -9`` mid-run, then a second process resumes it: the killed process's lease is stale,
the run reads as interrupted and resumable, and the resume continues where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from arpo import api
from arpo.api.records import RunRecords
from arpo.config import Settings


def arpo(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("arpo")), *args]
    return subprocess.Popen(command, env=env, **kwargs)


def test_kill_9_then_resume_from_a_second_process(
    process_home: tuple[Path, dict[str, str]], reference_png: Path
) -> None:
    home, env = process_home
    settings = Settings(home=home)
    iterations = 30
    first = arpo(
        "invert", str(reference_png), "--preset", "tiny", "--strategy", "offline",
        "--iterations", str(iterations), "--candidates", "2", "--patience", "0",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        run_id = _wait_for_progress(settings, first, at_least=2)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    record = RunRecords(settings.runs_dir).load(run_id)
    assert record.status == "running", "a killed process cannot mark its run"
    details = api.run_details(run_id, settings=settings)
    assert details.status == "interrupted" and details.resumable, details
    before = [(step.iteration, step.prompt) for step in details.history]
    assert 2 <= len(before) < iterations + 1

    second = arpo("invert", "--resume", run_id, "--json", env=env, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)  # fmt: skip
    output, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors
    result = json.loads(output)
    assert result["run_id"] == run_id and result["iterations"] == iterations
    exported = json.loads((Path(result["run_dir"]) / "result.json").read_text())
    after = [(entry["iteration"], entry["prompt"]) for entry in exported["history"]]
    assert after[: len(before)] == before, "the resume continued, it did not start again"
    final = api.run_details(run_id, settings=settings)
    assert final.status == "finished" and not final.resumable and final.lease is None


def _wait_for_progress(
    settings: Settings, process: subprocess.Popen, at_least: int, timeout: float = 180
) -> str:
    """The run id once its checkpoint holds ``at_least`` finished steps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        runs = api.list_runs(settings=settings).runs
        if runs:
            details = api.run_details(runs[0].run_id, settings=settings)
            if len(details.history) >= at_least:
                return details.run_id
        time.sleep(0.1)
    raise AssertionError("the run made no progress")
