"""Run records on disk: ``run.json`` while a run lives, and the exported run directory.

Every run has a record at ``ARPO_HOME/runs/<run_id>/run.json`` (options, reference, status, and
where its directory is, which ``--out`` may put elsewhere). The graph's SQLite checkpoints hold
the loop's progress; the record holds what is needed to resume it.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arpo.errors import RunNotFoundError
from arpo.report import write_report
from arpo.tools.store import ArtifactStore, atomic_write

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


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

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "run_dir": str(self.run_dir)}


class RunRecords:
    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def record_path(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise RunNotFoundError(
                f"'{run_id}' is not a run id; run ids look like 20261127-071500-ab12cd."
            )
        return self.runs_dir / run_id / "run.json"

    def save(self, record: RunRecord) -> None:
        text = json.dumps(record.to_json(), indent=2)
        atomic_write(self.record_path(record.run_id), text.encode())

    def load(self, run_id: str) -> RunRecord:
        path = self.record_path(run_id)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RunNotFoundError(
                f"no run '{run_id}' in {self.runs_dir}; list runs with `ls {self.runs_dir}` "
                "(or check ARPO_HOME)."
            ) from None
        except (json.JSONDecodeError, OSError) as error:
            raise RunNotFoundError(
                f"the record of run '{run_id}' at {path} is unreadable: {error}"
            ) from error
        data["run_dir"] = Path(data["run_dir"])
        return RunRecord(**data)

    def list(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.runs_dir.glob("*/run.json"))


def export_run(
    record: RunRecord,
    state: dict[str, Any],
    store: ArtifactStore,
    decomposition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write result.json, the reference, every render, the best render and report.html.

    ``decomposition``: the best prompt's components (see :mod:`arpo.remix`), kept so edits
    and fusions of the run start from them."""
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
        "status": "finished",
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
            "iteration": best["iteration"],
            "render": "best.png",
            "artifact": best["renders"][0],
        },
        "iterations": max(0, len(history) - 1),
        "history": history,
        "elapsed_s": state.get("elapsed_s"),
        "decomposition": decomposition,
    }
    atomic_write(run_dir / "result.json", json.dumps(result, indent=2).encode())
    write_report(run_dir, result)
    return result


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


def run_summary(record: RunRecord, values: dict[str, Any]) -> dict[str, Any]:
    """What an assistant needs to pick a run up again: status, best prompt, every step
    (prompt, scores, artifact id of its first render), and the options it ran with."""
    best = values.get("best") or {}
    history = [
        {
            "iteration": entry.get("iteration"),
            "prompt": entry.get("prompt"),
            "text_score": entry.get("text_score"),
            "image_score": entry.get("image_score"),
            "render": (entry.get("renders") or [None])[0],
            "proposer": entry.get("proposer"),
            "note": entry.get("note"),
        }
        for entry in values.get("history", [])
    ]
    return {
        "run_id": record.run_id,
        "status": record.status,
        "error": record.error,
        "created": record.created,
        "run_dir": str(record.run_dir),
        "reference": record.reference,
        "options": record.options,
        "initial_prompt": history[0]["prompt"] if history else record.initial_prompt,
        "best_prompt": best.get("prompt"),
        "best_text_score": best.get("text_score"),
        "best_image_score": best.get("image_score"),
        "best_render": (best.get("renders") or [None])[0],
        "iterations": values.get("iteration", 0),
        "stop_reason": values.get("stop_reason"),
        "history": history,
    }
