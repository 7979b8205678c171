"""Remix records on disk: ``ARPO_HOME/remixes/<id>/`` holds ``remix.json``, the renders of the
result and of its sources (one seed), and ``report.html`` showing them side by side."""

from __future__ import annotations

import json
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
    sources: list[dict[str, Any]]  # role, prompt, run_id, render (artifact id)
    notes: list[str]
    options: dict[str, Any]
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
    atomic_write(folder / "remix.json", json.dumps(data, indent=2).encode())
    atomic_write(folder / REPORT_NAME, render_remix_report(data).encode("utf-8"))
    return folder
