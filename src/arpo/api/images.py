"""Images a local caller names (CLI, Python API), read through the one image resolver.

The local user may name any file they can read, so the policy here does not confine paths;
everything else (formats, size limits, base64, artifact ids, URLs when allowed) is the same
resolver the MCP server uses with its confined policy. The server resolves its caller's
arguments itself and hands the api decoded images, so no remote argument reaches this.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from arpo.tools.toolbox import Toolbox


def read_image(image: Any, toolbox: Toolbox) -> Image.Image:
    """``image`` (a path, bytes, a data URL, base64, an artifact id or a PIL image) as RGB."""
    from arpo.tools.sources import local_policy, resolve_image

    return resolve_image(image, local_policy(toolbox.settings), toolbox.store)


def read_folder_image(path: Path, folder: Path, toolbox: Toolbox) -> Image.Image:
    """The image file ``path`` found in a batch's ``folder``, as RGB: the same resolver with
    the folder as its only root, so a symbolic link that leads out of the folder is refused
    (and the file opened race-free), as are non-images, corrupt files and images over
    ``ARPO_MAX_IMAGE_PIXELS``; URLs never apply."""
    from arpo.tools.sources import SourcePolicy, resolve_image

    policy = SourcePolicy(
        roots=[folder], allow_urls=False, max_pixels=toolbox.settings.max_image_pixels
    )
    return resolve_image(path, policy, toolbox.store)
