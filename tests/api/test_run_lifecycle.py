"""Runs that nothing can corrupt: a record says ``running`` only while a live process holds
its lease; whatever stops a run leaves it failed (with the error) or resumable; two processes
never run one run; ``--out`` and output files are never written over; runs list newest first;
a run's models travel with it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from arpo import api
from arpo.api import records as records_module
from arpo.api.records import RunRecord, RunRecords, lease_is_live
from arpo.config import Settings
from arpo.errors import ArpoError, InvalidOptionError, RunBusyError, RunCancelled
from arpo.tools.toolbox import Toolbox

FAST: dict[str, Any] = {"strategy": "offline", "candidates": 2, "patience": 0}


def record_json(toolbox: Toolbox, run_id: str) -> dict[str, Any]:
    return json.loads((toolbox.settings.runs_dir / run_id / "run.json").read_text())


class StopAfter:
    """A progress callback that raises ``error`` at the ``n``-th iteration event."""

    def __init__(self, n: int, error: BaseException) -> None:
        self.n, self.error, self.seen, self.run_id = n, error, 0, None

    def __call__(self, event: dict[str, Any]) -> None:
        self.run_id = event.get("run_id", self.run_id)
        if event.get("event") == "started":
            return
        self.seen += 1
        if self.seen >= self.n:
            raise self.error


# --------------------------------------------------------------------------- status


def test_a_run_is_recorded_only_once_its_folder_and_reference_exist(
    tiny_toolbox, reference_png, tmp_path, monkeypatch
):
    seen: list[tuple[bool, bool]] = []
    create = RunRecords.create

    def checking_create(self: RunRecords, record: RunRecord) -> Any:
        seen.append((record.run_dir.is_dir(), (record.run_dir / "reference.png").is_file()))
        return create(self, record)

    monkeypatch.setattr(RunRecords, "create", checking_create)
    api.reverse_prompt(reference_png, toolbox=tiny_toolbox, iterations=1, **FAST)
    assert seen == [(True, True)]


@pytest.mark.parametrize(
    ("error", "status", "in_error"),
    [
        (ArpoError("the model answered nonsense"), "failed", "nonsense"),
        (RuntimeError("GPU fell off the bus"), "failed", "internal error: RuntimeError"),
        (RunCancelled("the request was cancelled"), "interrupted", "cancelled"),
        (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
    ],
)
def test_whatever_stops_a_run_is_recorded_and_the_run_stays_resumable(
    tiny_toolbox, reference_png, error, status, in_error
):
    stop = StopAfter(2, error)
    with pytest.raises(type(error)):
        api.reverse_prompt(
            reference_png, toolbox=tiny_toolbox, on_progress=stop, iterations=5, **FAST
        )
    details = api.run_details(stop.run_id, settings=tiny_toolbox.settings)
    assert details.status == status
    assert in_error in (details.error or "")
    assert details.resumable and details.lease is None
    assert record_json(tiny_toolbox, stop.run_id)["lease"] is None
    result = api.resume(stop.run_id, toolbox=tiny_toolbox)
    assert result.iterations == 5
    assert api.run_details(stop.run_id, settings=tiny_toolbox.settings).status == "finished"


def test_a_failed_export_leaves_the_run_failed_and_resume_exports_it(
    tiny_toolbox, reference_png, monkeypatch
):
    from arpo.api import runs

    def broken_export(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(records_module, "export_run", broken_export)
    events: list[dict[str, Any]] = []
    with pytest.raises(OSError, match="disk full"):
        api.reverse_prompt(
            reference_png, toolbox=tiny_toolbox, on_progress=events.append, iterations=2, **FAST
        )
    run_id = events[0]["run_id"]
    details = api.run_details(run_id, settings=tiny_toolbox.settings)
    assert details.status == "failed" and "disk full" in (details.error or "")
    assert details.resumable
    monkeypatch.undo()
    assert runs.reverse_prompt  # the module is intact
    result = api.resume(run_id, toolbox=tiny_toolbox)
    assert (result.run_dir / "result.json").is_file()


# --------------------------------------------------------------------------- leases


def _lease(pid: int, host: str, age_s: float = 0.0) -> dict[str, Any]:
    return {"pid": pid, "host": host, "heartbeat": time.time() - age_s, "token": "someone"}


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_live_lease_refuses_a_second_runner_and_a_stale_one_is_taken_over(
    tiny_toolbox, reference_png
):
    stop = StopAfter(1, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        api.reverse_prompt(
            reference_png, toolbox=tiny_toolbox, on_progress=stop, iterations=3, **FAST
        )
    records = RunRecords(tiny_toolbox.settings.runs_dir)
    run_id = stop.run_id

    # another live process (this test's own pid stands in for it) holds the lease
    records.update(run_id, status="running", lease=_lease(os.getpid(), socket.gethostname()))
    details = api.run_details(run_id, settings=tiny_toolbox.settings)
    assert details.status == "running" and not details.resumable and details.lease
    with pytest.raises(RunBusyError, match=f"pid {os.getpid()}"):
        api.resume(run_id, toolbox=tiny_toolbox)
    with pytest.raises(RunBusyError):
        api.delete_run(run_id, settings=tiny_toolbox.settings)
    with pytest.raises(RunBusyError):
        api.collect_garbage(settings=tiny_toolbox.settings)

    # its process is gone: the lease is stale, the run reads as interrupted and resumes
    records.update(run_id, lease=_lease(_dead_pid(), socket.gethostname()))
    details = api.run_details(run_id, settings=tiny_toolbox.settings)
    assert details.status == "interrupted" and details.resumable
    assert "stopped without finishing" in (details.error or "")
    assert api.resume(run_id, toolbox=tiny_toolbox).iterations == 3

    # on another host, only the heartbeat tells: an old one is stale
    assert lease_is_live(_lease(1, "elsewhere", age_s=1.0))
    assert not lease_is_live(_lease(1, "elsewhere", age_s=records_module.LEASE_TTL_S + 1))


def test_a_run_taken_over_by_another_process_stops_and_leaves_its_record_alone(
    tiny_toolbox, reference_png, monkeypatch
):
    monkeypatch.setattr(records_module, "HEARTBEAT_S", 0.05)
    records = RunRecords(tiny_toolbox.settings.runs_dir)
    iterations: list[int] = []

    def take_over(event: dict[str, Any]) -> None:
        if event.get("event") == "started":
            return
        iterations.append(event["iteration"])
        if len(iterations) == 1:  # another process decides this one is dead and takes over
            records.update(event["run_id"], lease=_lease(4242, "another-host"))
        time.sleep(0.3)  # the heartbeat notices meanwhile

    with pytest.raises(RunBusyError, match=r"took run .* over"):
        api.reverse_prompt(
            reference_png, toolbox=tiny_toolbox, on_progress=take_over, iterations=6, **FAST
        )
    assert iterations == [0]  # the next iteration found the lease lost and stopped
    (run_id,) = records.list()
    record = records.load(run_id)
    assert record.status == "running" and record.lease and record.lease["pid"] == 4242


# --------------------------------------------------------------------------- files


def test_out_into_a_folder_holding_other_files_is_refused(tiny_toolbox, reference_png, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "holiday.jpg").write_bytes(b"mine")
    with pytest.raises(InvalidOptionError, match=r"already holds files \(holiday.jpg\)"):
        api.reverse_prompt(reference_png, out_dir=taken, toolbox=tiny_toolbox, **FAST)
    assert (taken / "holiday.jpg").read_bytes() == b"mine"
    assert sorted(p.name for p in taken.iterdir()) == ["holiday.jpg"]
    assert RunRecords(tiny_toolbox.settings.runs_dir).list() == []
    empty = tmp_path / "empty"
    empty.mkdir()
    result = api.reverse_prompt(
        reference_png, out_dir=empty, toolbox=tiny_toolbox, iterations=1, **FAST
    )
    assert result.run_dir == empty.resolve()


def test_generate_and_vary_never_overwrite_a_different_file(tiny_toolbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "seed-0.png").write_bytes(b"my drawing")
    with pytest.raises(InvalidOptionError, match=r"seed-0\.png exists already"):
        api.generate("a red square", out_dir=out, toolbox=tiny_toolbox)
    with pytest.raises(InvalidOptionError, match="exists already"):
        api.vary("a red square", seed=0, count=2, out_dir=out, toolbox=tiny_toolbox)
    assert (out / "seed-0.png").read_bytes() == b"my drawing"
    assert not (out / "seed-1.png").exists()
    paths = api.generate("a red square", out_dir=out, overwrite=True, toolbox=tiny_toolbox)
    assert paths == [out / "seed-0.png"] and paths[0].read_bytes() != b"my drawing"


def test_runs_list_newest_first_by_creation_time(tiny_settings):
    records = RunRecords(tiny_settings.runs_dir)
    # ids of one second sort by their random tail, not by when they were made
    for run_id, created in [
        ("20261201-100000-ffffff", "2026-12-01T10:00:00.100000+00:00"),
        ("20261201-100000-000000", "2026-12-01T10:00:00.900000+00:00"),
        ("20261201-100000-888888", "2026-12-01T10:00:00.500000+00:00"),
    ]:
        records.save(
            RunRecord(run_id, Path("/nowhere"), "0" * 64, {}, {}, status="failed", created=created)
        )
    (tiny_settings.runs_dir / "20261201-100001-aaaaaa").mkdir()
    (tiny_settings.runs_dir / "20261201-100001-aaaaaa" / "run.json").write_text("{broken")
    listing = api.list_runs(settings=tiny_settings)
    assert [run.run_id for run in listing.runs] == [
        "20261201-100000-000000",
        "20261201-100000-888888",
        "20261201-100000-ffffff",
    ]


# --------------------------------------------------------------------------- models


@pytest.fixture
def demo_toolbox(tmp_path: Path) -> Toolbox:
    return Toolbox(Settings(home=tmp_path / "demo-home", preset="demo"))


def _interrupted_demo_run(toolbox: Toolbox) -> str:
    from arpo.demo.render import render_prompt

    image = render_prompt("a large red solid circle in the center, on a white background", 1)
    stop = StopAfter(1, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        api.reverse_prompt(image, toolbox=toolbox, on_progress=stop, iterations=3, candidates=8)
    return stop.run_id


def test_resume_uses_the_runs_models_and_refuses_others(demo_toolbox, tiny_toolbox, monkeypatch):
    monkeypatch.setattr(api.toolboxes, "_toolboxes", {})
    run_id = _interrupted_demo_run(demo_toolbox)
    record = RunRecords(demo_toolbox.settings.runs_dir).load(run_id)
    assert record.identity == demo_toolbox.model_identity()
    assert record.model_settings and record.model_settings["preset"] == "demo"

    tiny_here = Toolbox(
        demo_toolbox.settings.model_copy(update={"preset": "tiny"}),
        renderer=tiny_toolbox.backend,
        scorer=tiny_toolbox.scorer,
    )
    with pytest.raises(InvalidOptionError, match=r"demo preset.*tiny preset"):
        api.resume(run_id, toolbox=tiny_here)
    with pytest.raises(InvalidOptionError, match="preset=demo, but preset=tiny is set"):
        api.resume(run_id, settings=demo_toolbox.settings.model_copy(update={"preset": "tiny"}))
    forced = demo_toolbox.settings.model_copy(update={"family": "sdxl"})
    with pytest.raises(InvalidOptionError, match="family=None, but family=sdxl is set"):
        api.resume(run_id, settings=forced)
    assert api.run_details(run_id, settings=demo_toolbox.settings).resumable

    # nothing asked for: the run's own (demo) models, though the settings name none
    plain = Settings(home=demo_toolbox.settings.home)
    assert plain.preset == "none"
    result = api.resume(run_id, settings=plain)
    assert result.iterations == 3
    finished = json.loads((result.run_dir / "result.json").read_text())
    assert finished["models"]["t2i"] == demo_toolbox.describe_models()["t2i"]

    # edits, variations and fusions of the run use its models too
    with pytest.raises(InvalidOptionError, match="demo preset"):
        api.vary(run_id, count=1, seed=0, toolbox=tiny_here)
    with pytest.raises(InvalidOptionError, match="demo preset"):
        api.edit_prompt(run_id, {"style": "flat"}, toolbox=tiny_here)
    with pytest.raises(InvalidOptionError, match="demo preset"):
        api.fuse(run_id, "a blue square", toolbox=tiny_here)
    varied = api.vary(run_id, count=1, seed=0, toolbox=demo_toolbox)
    assert varied.prompt == result.best_prompt
