"""Run records on disk: ``run.json`` while a run lives, its lease, and the exported run folder.

Every run has a record at ``ARPO_HOME/runs/<run_id>/run.json``: options, reference, the models
that made it, status, and where its folder is (``--out`` may put it elsewhere). The graph's
SQLite checkpoints hold the loop's progress; the record holds what is needed to resume it.

A process working on a run holds its **lease** (pid, host, heartbeat) in ``run.json``, so two
processes never run the same run at once. A heartbeat thread renews it; a lease whose process is
gone (same host, pid not alive) or whose heartbeat is older than :data:`LEASE_TTL_S` is stale and
may be taken over. Every read-modify-write of ``run.json`` happens under an exclusive file lock
(``runs/<id>/.lock``), so a check and the update that follows cannot interleave with another
process's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arpo.errors import ArpoError, RunBusyError, RunNotFoundError
from arpo.report import write_report
from arpo.tools.store import ArtifactStore, atomic_write, new_record_id

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
LEASE_TTL_S = 30.0
HEARTBEAT_S = 5.0
# Files an export writes into a run folder (what deleting a run may remove from an --out folder).
EXPORT_FILES = ("reference.png", "best.png", "result.json", "report.html", "demo.json")

new_run_id = new_record_id


@dataclass
class RunRecord:
    run_id: str
    run_dir: Path
    reference: str
    options: dict[str, Any]
    models: dict[str, Any]
    initial_prompt: str | None = None
    status: str = "running"
    error: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # what picked the models (Toolbox.model_identity) and the settings that rebuild them
    identity: dict[str, Any] | None = None
    model_settings: dict[str, Any] | None = None
    lease: dict[str, Any] | None = None
    # renders the run had paid for when it last failed, counted by the backend as they came
    # back: a step that failed after rendering lost its state update, and a resume starts
    # its renders_spent from here (cost never undercounts)
    renders_paid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "run_dir": str(self.run_dir)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["run_dir"] = Path(known["run_dir"])
        return cls(**known)


# --------------------------------------------------------------------------- leases


def _this_host() -> str:
    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    except OSError:
        return False
    return True


def lease_is_live(lease: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether a process still holds ``lease``: its heartbeat is recent and, on this host, its
    pid is alive."""
    if not lease:
        return False
    now = time.time() if now is None else now
    if now - float(lease.get("heartbeat", 0)) > LEASE_TTL_S:
        return False
    return not (lease.get("host") == _this_host() and not _pid_alive(int(lease.get("pid", -1))))


def describe_lease(lease: dict[str, Any]) -> str:
    age = max(0.0, time.time() - float(lease.get("heartbeat", 0)))
    return f"pid {lease.get('pid')} on {lease.get('host')} (heartbeat {age:.0f} s ago)"


def refuse_if_running(record: RunRecord, what_to_do: str) -> None:
    """Raise :class:`RunBusyError` when a live process holds ``record``'s lease."""
    if lease_is_live(record.lease):
        raise RunBusyError(
            f"run '{record.run_id}' is being run by {describe_lease(record.lease or {})}; "
            f"{what_to_do}."
        )


def effective_status(record: RunRecord) -> str:
    """The record's status, except that a run marked running whose process is gone is
    ``interrupted``: killed processes cannot mark their runs."""
    if record.status == "running" and not lease_is_live(record.lease):
        return "interrupted"
    return record.status


class RunRecords:
    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def record_path(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id.strip()):
            raise RunNotFoundError(
                f"'{run_id}' is not a run id; run ids look like 20261127-071500-ab12cd "
                "(`arpo runs list` shows them)."
            )
        return self.runs_dir / run_id.strip() / "run.json"

    def save(self, record: RunRecord) -> None:
        text = json.dumps(record.to_json(), indent=2)
        atomic_write(self.record_path(record.run_id), text.encode())

    def load(self, run_id: str) -> RunRecord:
        path = self.record_path(run_id)
        try:
            data = json.loads(path.read_text())
            return RunRecord.from_json(data)
        except FileNotFoundError:
            raise RunNotFoundError(
                f"no run '{run_id}' in {self.runs_dir}; list runs with `arpo runs list` "
                "(or check ARPO_HOME)."
            ) from None
        except (json.JSONDecodeError, OSError, KeyError, TypeError, AttributeError) as error:
            raise RunNotFoundError(
                f"the record of run '{run_id}' at {path} is unreadable: {error}"
            ) from error

    def list(self) -> list[str]:
        """Every run id with a record (in no particular order; see :func:`newest_first`)."""
        if not self.runs_dir.is_dir():
            return []
        return [
            p.parent.name
            for p in self.runs_dir.glob("*/run.json")
            if RUN_ID.fullmatch(p.parent.name)
        ]

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        """Hold the run's exclusive file lock (short critical sections only)."""
        lock_path = self.record_path(run_id).with_name(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as handle:
            _flock(handle.fileno())
            try:
                yield
            finally:
                _funlock(handle.fileno())

    def update(self, run_id: str, **changes: Any) -> RunRecord:
        """Load, change and save the record under its lock."""
        with self.locked(run_id):
            record = self.load(run_id)
            for name, value in changes.items():
                setattr(record, name, value)
            self.save(record)
            return record

    def create(self, record: RunRecord) -> Lease:
        """Save a new record, holding its lease from the first moment it says ``running``."""
        lease = Lease(self, record.run_id)
        with self.locked(record.run_id):
            if self.record_path(record.run_id).exists():
                raise ArpoError(f"run '{record.run_id}' exists already; start the run again.")
            record.status, record.lease = "running", lease.fields()
            self.save(record)
        lease.start()
        return lease

    def acquire(self, run_id: str) -> tuple[RunRecord, Lease]:
        """Take the run's lease to continue it, or raise :class:`RunBusyError` if a live
        process holds it. A stale lease (its process gone) is taken over."""
        lease = Lease(self, run_id)
        with self.locked(run_id):
            record = self.load(run_id)
            refuse_if_running(
                record, "wait for it to finish (arpo runs show shows its progress), or stop it"
            )
            if record.lease:
                log.info("taking over the stale lease of run %s (%s)", run_id, record.lease)
            record.status, record.error, record.lease = "running", None, lease.fields()
            self.save(record)
        lease.start()
        return record, lease

    def delete(self, run_id: str) -> RunRecord:
        """Remove the record's folder (and the files an export wrote into an ``--out`` folder);
        refuses a run that a live process holds."""
        with self.locked(run_id):
            record = self.load(run_id)
            refuse_if_running(record, "stop it before deleting it")
            record_dir = self.record_path(run_id).parent
            if record.run_dir.resolve() != record_dir.resolve():
                _remove_export(record.run_dir)
            for child in record_dir.iterdir():
                if child.name != ".lock":
                    _remove(child)
        shutil.rmtree(record_dir, ignore_errors=True)
        return record


class Lease:
    """This process's hold on a run: renewed by a heartbeat thread, released on :meth:`end`.

    If another process takes the run over (after this one looked dead), :attr:`lost` is set;
    the run's progress callback checks it and stops rather than write over the other's work.
    """

    def __init__(self, records: RunRecords, run_id: str) -> None:
        self.records = records
        self.run_id = run_id
        self.token = secrets.token_hex(8)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": _this_host(),
            "heartbeat": time.time(),
            "token": self.token,
        }

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._beat, name=f"arpo-lease-{self.run_id}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self.records.locked(self.run_id):
                    record = self.records.load(self.run_id)
                    if (record.lease or {}).get("token") != self.token:
                        self.lost.set()
                        return
                    record.lease = self.fields()
                    self.records.save(record)
            except (OSError, ArpoError):
                log.warning("could not renew the lease of run %s", self.run_id, exc_info=True)

    def end(self, status: str, error: str | None) -> None:
        """Record the outcome and release the lease (unless another process took it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S + 1)
        try:
            with self.records.locked(self.run_id):
                record = self.records.load(self.run_id)
                if (record.lease or {}).get("token") != self.token:
                    return
                record.status, record.error, record.lease = status, error, None
                self.records.save(record)
        except (OSError, ArpoError):
            log.warning("could not record the end of run %s", self.run_id, exc_info=True)


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock; leases still guard by heartbeat
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        except OSError as error:
            if error.errno != errno.EINTR:
                raise


def _funlock(fd: int) -> None:
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove_export(run_dir: Path) -> None:
    """Delete what an export wrote into a user's folder, never anything else."""
    if not run_dir.is_dir():
        return
    for name in EXPORT_FILES:
        (run_dir / name).unlink(missing_ok=True)
    renders = run_dir / "renders"
    if renders.is_dir():
        for child in renders.glob("iter-*.png"):
            child.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            renders.rmdir()
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # only when nothing of the user's is left


# --------------------------------------------------------------------------- export


def export_run(
    record: RunRecord,
    state: dict[str, Any],
    store: ArtifactStore,
    decomposition: dict[str, Any] | None = None,
    *,
    price_per_image: float | None = None,
    status: str = "finished",
) -> dict[str, Any]:
    """Write result.json, the reference, every render, the best render and report.html.

    ``decomposition``: the best prompt's components (see :mod:`arpo.remix`), kept so edits
    and fusions of the run start from them; ``price_per_image``: the backend's, in US dollars
    (the images API), for the run's ``cost``."""
    run_dir = record.run_dir
    (run_dir / "renders").mkdir(parents=True, exist_ok=True)
    _copy(store, record.reference, run_dir / "reference.png")
    history = []
    for entry in state.get("history", []):
        renders = entry.get("renders") or []
        paths = []
        for k, digest in enumerate(renders):
            suffix = "" if k == 0 else f"-seed{k}"
            name = f"renders/iter-{entry['iteration']:03d}{suffix}.png"
            _copy(store, digest, run_dir / name)
            paths.append(name)
        history.append({**entry, "render": paths[0] if paths else None, "renders": paths})
    best = state["best"]
    _copy(store, best["renders"][0], run_dir / "best.png")
    result = {
        "run_id": record.run_id,
        "status": status,  # "paused": stopped by --max-cost, resumable
        "stop_reason": state.get("stop_reason"),
        "strategy": record.options.get("strategy"),
        "models": record.models,
        "options": record.options,
        "reference": "reference.png",
        "reference_artifact": record.reference,
        "initial_prompt": history[0]["prompt"] if history else record.initial_prompt,
        "best": {
            "prompt": best["prompt"],
            "text_score": best["text_score"],
            "image_score": best["image_score"],
            "caption_score": best.get("caption_score"),
            "iteration": best["iteration"],
            "render": "best.png",
            "artifact": best["renders"][0],
        },
        # the history ends with the final prompt's render, except in a paused run
        "iterations": len(history) if status == "paused" else max(0, len(history) - 1),
        "history": history,
        "elapsed_s": state.get("elapsed_s"),
        "renders_spent": state.get("renders_spent", 0),
        "cost": run_cost(state.get("renders_spent", 0), price_per_image, record.options),
        "decomposition": decomposition,
    }
    atomic_write(run_dir / "result.json", json.dumps(result, indent=2).encode())
    write_report(run_dir, result)
    return result


def run_cost(
    renders: int, price_per_image: float | None, options: dict[str, Any]
) -> dict[str, Any] | None:
    """What a run's renders cost in US dollars at the backend's price per image, with its
    ``max_cost``; None for a backend without a price (local diffusers, the demo world)."""
    if price_per_image is None:
        return None
    return {
        "usd": round(renders * price_per_image, 6),
        "price_per_image": price_per_image,
        "renders": renders,
        "max_cost": options.get("max_cost"),
    }


def _copy(store: ArtifactStore, digest: str, target: Path) -> None:
    shutil.copyfile(store.path(digest), target)


def checkpointed_values(checkpoint_db: Path, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The latest checkpointed graph state of each run (``{}`` for a run with none).

    Read-only: a missing database is not created.
    """
    if not run_ids or not checkpoint_db.is_file():
        return {run_id: {} for run_id in run_ids}
    from arpo.graph import open_checkpointer

    saver = open_checkpointer(str(checkpoint_db))
    try:
        values = {}
        for run_id in run_ids:
            config = {"configurable": {"thread_id": run_id, "checkpoint_ns": ""}}
            found = saver.get_tuple(config)  # type: ignore[arg-type]
            values[run_id] = dict(found.checkpoint["channel_values"]) if found else {}
        return values
    finally:
        saver.conn.close()  # type: ignore[attr-defined]
