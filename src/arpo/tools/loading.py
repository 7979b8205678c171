"""Turn a model reference (hub id or local path) into a load decision, with clear failures.

Offline, ``from_pretrained`` on an uncached hub id fails with a long, generic traceback (and
online, a missing file costs ~23 s of retries). Here we decide up front whether a reference is
a local directory, a cached hub repo, or neither, so the user gets one sentence naming the
model and the setting that points at a local copy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from arpo.errors import ModelNotAvailableError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", ".", "~")) or os.sep in ref.strip("/").replace("/", "", 1)


def check_diffusers_ref(ref: str, setting: str) -> str:
    """Return a loadable reference (local dir or hub id), or raise ModelNotAvailableError."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelNotAvailableError(
                f"'{ref}' is a directory but not a diffusers model (no model_index.json). "
                f"Point {setting} at a folder saved with pipeline.save_pretrained()."
            )
        return str(path)
    if not _HUB_ID.match(ref) or path.exists():
        raise ModelNotAvailableError(
            f"text-to-image model '{ref}' is neither a local diffusers directory nor a hub id "
            f"(owner/name). Set {setting} to one of those."
        )
    if hub_offline() and not _hub_repo_cached(ref):
        raise ModelNotAvailableError(
            f"text-to-image model '{ref}' is not in the Hugging Face cache and HF_HUB_OFFLINE=1 "
            f"forbids downloading it. Download it once with network access, or set {setting} "
            "to a local diffusers directory."
        )
    return ref


def _hub_repo_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json")
    return isinstance(found, str)


def model_load_error(
    kind: str, ref: str, setting: str, error: BaseException
) -> ModelNotAvailableError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelNotAvailableError(
        f"cannot load the {kind} '{ref}': {reason[:300]}. "
        f"Check the name, download it with network access, or set {setting} to a local copy."
    )
