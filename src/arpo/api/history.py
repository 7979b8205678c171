"""Earlier runs: list them, show one, delete one, and collect the artifacts nothing refers to.

What "resumable" means lives here and nowhere else: a run whose process is gone (interrupted,
or failed) and whose checkpoint holds state to continue from.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.api.results import Collected, Deleted, RunBrief, RunDetails, RunList, RunStep
from arpo.config import Settings
from arpo.errors import ArpoError
from arpo.objective import objective_of

if TYPE_CHECKING:
    from arpo.api.records import RunRecord

log = logging.getLogger(__name__)

GC_GRACE_S = 3600.0  # artifacts younger than this are kept: a caller may hold their ids
_ARTIFACT_TEXT = re.compile(rb"[0-9a-f]{64}")


def is_resumable(status: str, values: dict[str, Any]) -> bool:
    """True when ``resume`` can continue the run: nothing is running it, it did not finish,
    and its checkpoint has state."""
    return status in ("interrupted", "failed") and bool(values)


def run_details(run_id: str, *, settings: Settings | None = None) -> RunDetails:
    """A run's status, options, models, best prompt and every step so far."""
    from arpo.api.records import RunRecords, checkpointed_values

    settings = settings or Settings()
    record = RunRecords(settings.runs_dir).load(run_id)
    values = checkpointed_values(settings.checkpoint_db, [record.run_id])[record.run_id]
    return _details(record, values)


def list_runs(limit: int | None = 20, *, settings: Settings | None = None) -> RunList:
    """Runs newest first (by creation time); unreadable records are left out and logged."""
    from arpo.api.records import RunRecords, checkpointed_values

    settings = settings or Settings()
    records = RunRecords(settings.runs_dir)
    loaded = []
    for run_id in records.list():
        try:
            loaded.append(records.load(run_id))
        except ArpoError as error:
            log.warning("skipping run %s: %s", run_id, error)
    loaded.sort(key=lambda record: (record.created, record.run_id), reverse=True)
    chosen = loaded if limit is None else loaded[:limit]
    values = checkpointed_values(settings.checkpoint_db, [r.run_id for r in chosen])
    return RunList(runs=[_brief(record, values[record.run_id]) for record in chosen])


def delete_run(run_id: str, *, settings: Settings | None = None) -> Deleted:
    """Delete a run: its record, its checkpoints and the files its export wrote (never other
    files in an ``--out`` folder). Its artifacts stay until :func:`collect_garbage`."""
    from arpo.api.records import RunRecords

    settings = settings or Settings()
    record = RunRecords(settings.runs_dir).delete(run_id)
    if settings.checkpoint_db.is_file():
        from arpo.graph import open_checkpointer

        saver = open_checkpointer(str(settings.checkpoint_db))
        try:
            saver.delete_thread(record.run_id)
        finally:
            saver.conn.close()
    return Deleted(run_id=record.run_id, run_dir=str(record.run_dir))


def collect_garbage(
    *, settings: Settings | None = None, dry_run: bool = False, grace_s: float = GC_GRACE_S
) -> Collected:
    """Remove stored images that no run, checkpoint or remix refers to, and render-cache
    entries whose image is gone. Images younger than ``grace_s`` are kept (an assistant may
    hold the id ``generate_image`` returned); nothing is removed while a run is running."""
    from arpo.api.records import RunRecords, refuse_if_running
    from arpo.tools.store import ArtifactStore

    settings = settings or Settings()
    records = RunRecords(settings.runs_dir)
    for run_id in records.list():
        try:
            record = records.load(run_id)
        except ArpoError:
            continue
        refuse_if_running(record, "collect garbage once it has finished")
    referenced = _referenced(settings, records)
    store = ArtifactStore(settings.store_dir)
    now, removed, size, kept = time.time(), set(), 0, 0
    for path in store.artifacts():
        if path.stem in referenced or now - path.stat().st_mtime < grace_s:
            kept += 1
            continue
        removed.add(path.stem)
        size += path.stat().st_size
        if not dry_run:
            path.unlink(missing_ok=True)
    stale_records = 0
    for path in store.record_files():
        match = _ARTIFACT_TEXT.search(path.read_bytes())
        digest = match.group().decode() if match else None
        if digest is None or digest in removed or not store.has(digest):
            stale_records += 1
            if not dry_run:
                path.unlink(missing_ok=True)
    return Collected(
        dry_run=dry_run,
        artifacts=len(removed),
        bytes=size,
        cache_records=stale_records,
        kept=kept,
    )


def _referenced(settings: Settings, records: Any) -> set[str]:
    """Every artifact id named in run records, results, remix records and checkpoints (the
    raw database and its write-ahead log are scanned: conservative, keeps more)."""
    files: list[Path] = [settings.checkpoint_db, Path(f"{settings.checkpoint_db}-wal")]
    for run_id in records.list():
        files.append(records.record_path(run_id))
        try:
            files.append(records.load(run_id).run_dir / "result.json")
        except ArpoError:
            continue
    remixes = settings.remixes_dir
    if remixes.is_dir():
        files.extend(remixes.glob("*/remix.json"))
    found: set[str] = set()
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found.update(match.decode() for match in _ARTIFACT_TEXT.findall(data))
    return found


def _brief(record: RunRecord, values: dict[str, Any]) -> RunBrief:
    from arpo.api.records import effective_status

    status, best = effective_status(record), values.get("best") or {}
    return RunBrief(
        run_id=record.run_id,
        status=status,
        created=record.created,
        best_prompt=best.get("prompt"),
        best_text_score=best.get("text_score"),
        best_image_score=best.get("image_score"),
        objective=objective_of(record.options),
        iterations=values.get("iteration", 0),
        resumable=is_resumable(status, values),
    )


def _details(record: RunRecord, values: dict[str, Any]) -> RunDetails:
    from arpo.api.records import describe_lease, lease_is_live

    brief, best = _brief(record, values), values.get("best") or {}
    history = [
        RunStep(
            iteration=entry.get("iteration"),
            prompt=entry.get("prompt"),
            text_score=entry.get("text_score"),
            image_score=entry.get("image_score"),
            render=(entry.get("renders") or [None])[0],
            proposer=entry.get("proposer"),
            note=entry.get("note"),
        )
        for entry in values.get("history", [])
    ]
    error = record.error
    if brief.status == "interrupted" and record.status == "running":
        error = "the process running it stopped without finishing"
        if record.lease:
            error += f" ({describe_lease(record.lease)})"
    live = record.lease if lease_is_live(record.lease) else None
    return RunDetails(
        **brief.model_dump(),
        error=error,
        run_dir=str(record.run_dir),
        reference=record.reference,
        models=record.models,
        options=record.options,
        initial_prompt=history[0].prompt if history else record.initial_prompt,
        best_render=(best.get("renders") or [None])[0],
        stop_reason=values.get("stop_reason"),
        lease=describe_lease(live) if live else None,
        history=history,
    )
