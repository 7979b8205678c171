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
    return check_model_ref(
        ref,
        setting,
        kind="text-to-image model",
        library="diffusers",
        marker="model_index.json",
        saved_with="pipeline.save_pretrained()",
    )


def check_transformers_ref(ref: str, setting: str, kind: str) -> str:
    """:func:`check_diffusers_ref` for a transformers model (its ``config.json``)."""
    return check_model_ref(
        ref,
        setting,
        kind=kind,
        library="transformers",
        marker="config.json",
        saved_with="model.save_pretrained() and processor.save_pretrained()",
    )


def check_model_ref(
    ref: str, setting: str, *, kind: str, library: str, marker: str, saved_with: str
) -> str:
    """A loadable reference to a ``library`` model: a local folder holding ``marker``, or a
    hub id (cached, when HF_HUB_OFFLINE=1); else ModelNotAvailableError naming ``setting``."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / marker).is_file():
            raise ModelNotAvailableError(
                f"'{ref}' is a directory but not a {library} model (no {marker}). "
                f"Point {setting} at a folder saved with {saved_with}."
            )
        return str(path)
    if not _HUB_ID.match(ref) or path.exists():
        raise ModelNotAvailableError(
            f"{kind} '{ref}' is neither a local {library} directory nor a hub id "
            f"(owner/name). Set {setting} to one of those."
        )
    if hub_offline() and not _hub_repo_cached(ref, marker):
        raise ModelNotAvailableError(
            f"{kind} '{ref}' is not in the Hugging Face cache and HF_HUB_OFFLINE=1 "
            f"forbids downloading it. Download it once with network access, or set {setting} "
            f"to a local {library} directory."
        )
    return ref


def _hub_repo_cached(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return isinstance(found, str)


def model_load_error(
    kind: str, ref: str, setting: str, error: BaseException
) -> ModelNotAvailableError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelNotAvailableError(
        f"cannot load the {kind} '{ref}': {reason[:300]}. "
        f"Check the name, download it with network access, or set {setting} to a local copy."
    )


# --------------------------------------------------------------------------- model folders


def diffusers_folder(ref: str, *, download: bool = False) -> Path | None:
    """The folder holding ``ref``'s ``model_index.json`` without importing torch: a local
    diffusers folder, or the hub repo's snapshot in the Hugging Face cache. With ``download``
    (and the hub not offline), a hub repo's ``model_index.json`` and the component configs a
    family hint reads are fetched first (small JSON files). None when it cannot be read."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return path if (path / "model_index.json").is_file() else None
    if not _HUB_ID.match(ref):
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref, "model_index.json")
    if isinstance(found, str):
        return Path(found).parent
    if not download or hub_offline():
        return None
    try:
        from huggingface_hub import hf_hub_download

        index_file = Path(hf_hub_download(ref, "model_index.json"))
        for component in ("transformer", "text_encoder"):  # what family hints read
            try:
                hf_hub_download(ref, f"{component}/config.json")
            except Exception:  # a pipeline without that component
                continue
    except Exception:  # unreachable, gated, missing: the load says why
        return None
    return index_file.parent


def has_weight_variant(folder: Path | None, variant: str) -> bool:
    """Whether a diffusers folder (or cached snapshot) holds ``variant`` weight files, e.g.
    ``unet/diffusion_pytorch_model.fp16.safetensors`` (diffusers' naming, sharded too)."""
    if folder is None or not folder.is_dir():
        return False
    pattern = re.compile(rf"\.{re.escape(variant)}(-\d{{5}}-of-\d{{5}})?\.(safetensors|bin)$")
    for component in folder.iterdir():
        if (
            component.is_dir()
            and not component.name.startswith(".")
            and any(pattern.search(child.name) for child in component.iterdir())
        ):
            return True
    return False
