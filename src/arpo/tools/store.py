"""Content-addressed artifact store: images live on disk as PNGs named by their sha256.

Graph state holds only these hashes, so every checkpoint serializes and a resumed run finds
its images again. Writes go to a temp file and are renamed into place, so a crash never
leaves a half-written artifact under a valid name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.errors import InvalidImageError

if TYPE_CHECKING:
    from PIL import Image

ARTIFACT_ID = re.compile(r"[0-9a-f]{64}")


def new_record_id() -> str:
    """A sortable, unique id for a run or a remix: UTC time to the second plus 6 hex digits."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file and rename: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ArtifactStore:
    """Images by sha256 of their PNG bytes, plus a small key -> hash index for caches."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._images = self.root / "images"
        self._index = self.root / "index"

    def put_image(self, image: Image.Image) -> str:
        from arpo.tools.images import encode_png

        data = encode_png(image)
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            atomic_write(path, data)
        return digest

    def path(self, digest: str) -> Path:
        if not isinstance(digest, str) or not ARTIFACT_ID.fullmatch(digest):
            raise InvalidImageError(
                f"'{digest}' is not an artifact id; ids are 64 hex characters returned by arpo."
            )
        return self._images / digest[:2] / f"{digest}.png"

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def get_image(self, digest: str) -> Image.Image:
        from arpo.tools.images import load_image

        path = self.path(digest)
        if not path.is_file():
            raise InvalidImageError(
                f"artifact {digest} is not in the store at {self.root}; "
                "it may have been deleted, or ARPO_HOME points elsewhere."
            )
        return load_image(path)

    # -- key/value index used by caches (render cache): small JSON documents by key hash --

    def put_record(self, key: str, record: dict[str, Any]) -> None:
        atomic_write(self._record_path(key), json.dumps(record).encode())

    def get_record(self, key: str) -> dict[str, Any] | None:
        path = self._record_path(key)
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _record_path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self._index / digest[:2] / f"{digest}.json"

    # -- housekeeping (arpo gc) -----------------------------------------------------------

    def artifacts(self) -> list[Path]:
        """Every stored image file."""
        if not self._images.is_dir():
            return []
        return [p for p in self._images.glob("*/*.png") if ARTIFACT_ID.fullmatch(p.stem)]

    def record_files(self) -> list[Path]:
        """Every cache record file (JSON naming an artifact under ``image``)."""
        if not self._index.is_dir():
            return []
        return list(self._index.glob("*/*.json"))
