"""Text embeddings kept on disk, so a second process starts from its vocabulary's embeddings
instead of embedding thousands of phrases again (about 4 s for the demo vocabulary on a CPU).

One safetensors file per (scorer, device and dtype, texts): its name is a hash of all three,
so a changed vocabulary or another model is another file. A model can change under the same
name (a retrained local folder), so a file is trusted only when two of its rows, embedded
again now, match; a file that is unreadable, of the wrong shape or stale is rebuilt, never
used. Writes are atomic (a temporary file, then a rename).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TOLERANCE = 1e-3  # embeddings are float32 and normalised: a changed model differs far more


class TextEmbeddingCache:
    """Embeddings of whole text lists, on disk under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, scorer: Any, texts: Sequence[str]) -> Path:
        identity = f"{scorer.name}\0{scorer.device}\0{scorer.input_dtype}\0" + "\n".join(texts)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
        return self.folder / f"{digest}.safetensors"

    def load(self, scorer: Any, texts: Sequence[str]) -> bool:
        """Seed ``scorer``'s text cache with the stored rows of ``texts``; False when there
        are none to trust (the caller embeds them and :meth:`save` s)."""
        if not texts:
            return False
        path = self.path(scorer, texts)
        rows = _read(path, len(texts))
        if rows is None:
            return False
        probes = sorted({0, len(texts) - 1})
        fresh = scorer.embed_uncached([texts[i] for i in probes])
        if not bool((fresh - rows[probes]).abs().max() <= TOLERANCE):
            log.info("text embeddings in %s are from another model; embedding again", path)
            return False
        scorer.remember_texts(list(texts), rows)
        return True

    def save(self, scorer: Any, texts: Sequence[str]) -> None:
        """Store ``scorer``'s embeddings of ``texts``; a full disk or a read-only home only
        costs the next process the time to embed them again."""
        from safetensors.torch import save_file

        if not texts:
            return
        path = self.path(scorer, texts)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = scorer.encode_texts(list(texts)).contiguous()
            save_file({"embeddings": rows}, str(partial))
            os.replace(partial, path)
        except OSError as error:
            log.warning("could not store text embeddings in %s: %s", path, error)
            partial.unlink(missing_ok=True)


def _read(path: Path, count: int) -> torch.Tensor | None:
    """The stored rows, or None when the file is missing, unreadable or not ``count`` rows."""
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    try:
        rows = load_file(str(path))["embeddings"].float()
    except Exception as error:  # a torn or foreign file: rebuild it rather than trust it
        log.warning("text embeddings in %s are unreadable (%s); embedding again", path, error)
        return None
    if rows.ndim != 2 or rows.shape[0] != count:
        return None
    return rows
