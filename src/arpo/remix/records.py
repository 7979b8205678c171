"""Remix records on disk: ``ARPO_HOME/remixes/<id>/`` holds ``remix.json``, the renders of the
result and of its sources (one seed), the images a run source was found from (an inverted
image: the user's own), and ``report.html`` showing them side by side."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arpo.report import REPORT_NAME, render_remix_report
from arpo.tools.store import ArtifactStore, atomic_write, new_record_id

__all__ = ["RemixRecord", "save_remix"]


@dataclass
class RemixRecord:
    remix_id: str
    kind: str
    prompt: str
    negative_prompt: str
    parts: dict[str, Any]
    cut: list[str]
    seed: int
    render: str  # artifact id
    sources: list[dict[str, Any]]  # role, kind, given, prompt, run_id, render, run_dir, ...
    notes: list[str]
    options: dict[str, Any]  # the render options used, defaults filled in
    settings: dict[str, Any] = field(default_factory=dict)  # preset, models, llm
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @classmethod
    def new(cls, **fields: Any) -> RemixRecord:
        return cls(remix_id=new_record_id(), **fields)


def save_remix(record: RemixRecord, remixes_dir: Path, store: ArtifactStore) -> Path:
    """Write the record's folder (images copied from the store) and return it."""
    folder = remixes_dir / record.remix_id
    folder.mkdir(parents=True, exist_ok=True)
    data = asdict(record)
    data["image"] = f"{record.kind}.png"
    shutil.copyfile(store.path(record.render), folder / data["image"])
    for source in data["sources"]:
        source["image"] = f"{source['role']}.png"
        shutil.copyfile(store.path(source["render"]), folder / source["image"])
        _link_run(source, folder)
    atomic_write(folder / "remix.json", json.dumps(data, indent=2).encode())
    atomic_write(folder / REPORT_NAME, render_remix_report(data).encode("utf-8"))
    return folder


def _link_run(source: dict[str, Any], folder: Path) -> None:
    """For a run source: copy its reference (the user's image, for an inverted one) in as
    ``ROLE-input.png`` and point ``run_report`` at the run's report, relative to ``folder``
    (so the pages link while ARPO_HOME moves as a whole)."""
    run_dir = Path(source["run_dir"]) if source.get("run_dir") else None
    if run_dir is None:
        return
    reference = run_dir / "reference.png"
    if reference.is_file():
        source["input_image"] = f"{source['role']}-input.png"
        shutil.copyfile(reference, folder / source["input_image"])
    report = run_dir / REPORT_NAME
    if report.is_file():
        try:
            source["run_report"] = os.path.relpath(report, folder)
        except ValueError:  # another drive (Windows): no relative path
            source["run_report"] = str(report)
