"""The one way in for images: whatever a caller names, resolved and checked the same way.

A caller names an image as a PIL image, bytes, a path (``os.PathLike``), or text: a local
path, base64 or a ``data:`` URL, an artifact id (64 hex characters from an earlier call), or an
http(s) URL. :func:`resolve_image` turns any of them into an RGB image through one format table
(:data:`arpo.tools.images.IMAGE_SUFFIXES`), one decoder with its size checks, one URL policy.

Who is asking decides where paths may point (:class:`SourcePolicy`):

- the local user (CLI, Python API; :func:`local_policy`): ``roots=None``, any readable path;
- a remote caller (the MCP server; :func:`policy_from_settings`): paths confined to allowed
  roots. Real paths are compared, so symlinks and ``..`` cannot leave them, and the file is
  opened race-free (:func:`open_confined`): the descriptor that is read is itself checked.

URLs are off unless enabled, and then only public addresses are fetched, checked again after
every redirect, within one deadline. No mcp imports: the server is a thin adapter over these
functions.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from arpo.errors import InvalidImageError
from arpo.tools.store import ARTIFACT_ID
from arpo.tools.urls import URL_MAX_BYTES, URL_TIMEOUT_S, Resolver

if TYPE_CHECKING:
    import httpx
    from PIL import Image

    from arpo.tools.store import ArtifactStore

logger = logging.getLogger(__name__)

_BASE64ISH = re.compile(r"[A-Za-z0-9+/_\-=\s]+")
_BASE64_LINES = re.compile(r"[A-Za-z0-9+/_\-=\r\n]+")  # base64 as pasted: lines, never spaces
_SCHEME_URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DATA_URL_START = re.compile(r"data:[^\s,]*,", re.IGNORECASE)
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_HOME_PATH = re.compile(r"~[\w.-]*(?:[\\/]|$)")
_PATH_PREFIXES = ("/", "./", "../", ".\\", "..\\")
MAX_INLINE_CHARS = 40_000_000  # base64 text larger than this is refused before decoding


@dataclass(frozen=True)
class SourcePolicy:
    """What a caller may point at: path roots, whether URLs are fetched, the limits.

    ``roots=None`` is the local user (CLI, Python API): any readable path. A sequence (even
    an empty one) confines paths to those folders: what a remote caller gets.
    ``url_timeout_s`` bounds a whole URL fetch: every redirect and the body read.
    """

    roots: Sequence[Path] | None
    allow_urls: bool = False
    max_pixels: int = 40_000_000
    url_max_bytes: int = URL_MAX_BYTES
    url_timeout_s: float = URL_TIMEOUT_S


def policy_from_settings(settings: Any) -> SourcePolicy:
    """The policy for a remote caller (the MCP server): paths confined to
    :func:`arpo.config.effective_roots` (which refuses implicitly broad roots), URLs per
    ``ARPO_ALLOW_URLS``."""
    from arpo.config import effective_roots

    return SourcePolicy(
        roots=effective_roots(settings),
        allow_urls=settings.allow_urls,
        max_pixels=settings.max_image_pixels,
    )


def local_policy(settings: Any) -> SourcePolicy:
    """The policy for the local user (CLI, Python API): any readable path, URLs per
    ``ARPO_ALLOW_URLS``; the same resolver, formats and size checks as a remote caller."""
    return SourcePolicy(
        roots=None, allow_urls=settings.allow_urls, max_pixels=settings.max_image_pixels
    )


def resolve_image(
    source: Any,
    policy: SourcePolicy,
    store: ArtifactStore,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Image.Image:
    """The RGB image ``source`` names, or :class:`InvalidImageError` saying what to pass.

    ``source`` is a ``str`` (see :func:`classify`), an ``os.PathLike`` (always a path),
    ``bytes`` or a PIL image (decoded as given). Paths, given either way, are confined to
    ``policy.roots`` unless those are ``None``.
    """
    from PIL import Image

    from arpo.tools.images import decode_base64_image, load_image

    if isinstance(source, bytes | bytearray | memoryview | Image.Image):
        return load_image(source, max_pixels=policy.max_pixels)
    if isinstance(source, os.PathLike):
        return _load_path(os.fsdecode(os.fspath(source)), policy)
    if not isinstance(source, str):
        raise InvalidImageError(
            f"cannot read image given as {type(source).__name__}: pass a file path, base64 "
            "image data, a data: URL, an artifact id, image bytes or a PIL image."
        )
    text = source.strip()
    if not text:
        raise InvalidImageError(
            "no image given: pass a file path, base64 image data, a data: URL or an artifact id."
        )
    kind = classify(text)
    if kind == "artifact":
        return store.get_image(text.lower())
    if kind == "url":
        if not policy.allow_urls:
            raise InvalidImageError(
                "image URLs are turned off on this server (ARPO_ALLOW_URLS=false): download the "
                "image and pass its path or base64 data, or ask the operator to enable URLs."
            )
        from arpo.tools.urls import fetch_url

        data = fetch_url(text, policy, resolver=resolver, transport=transport)
        return load_image(data, max_pixels=policy.max_pixels)
    if kind in ("base64", "data"):
        if len(text) > MAX_INLINE_CHARS:
            raise InvalidImageError(
                f"the inline image is {len(text):,} characters, over the limit of "
                f"{MAX_INLINE_CHARS:,}; pass a file path instead, or downscale the image."
            )
        return decode_base64_image(text, max_pixels=policy.max_pixels)
    return _load_path(text, policy)


def _load_path(text: str, policy: SourcePolicy) -> Image.Image:
    from arpo.tools.images import load_image, load_image_file

    _refuse_nul(text)
    if policy.roots is None:
        return load_image(Path(text).expanduser(), max_pixels=policy.max_pixels)
    handle, real = open_confined(text, policy.roots)
    with handle:
        return load_image_file(handle, repr(str(real)), max_pixels=policy.max_pixels)


# --------------------------------------------------------------------------- telling kinds apart


def names_image(text: Any) -> bool:
    r"""Whether ``text`` names an image rather than being a prompt, from the text alone.

    The filesystem is never consulted: whether a file exists is not evidence (and asking would
    tell a remote caller which files exist). ``text`` (stripped) names an image when it is

    - an artifact id (64 hex characters);
    - a ``data:`` URL (``data:`` then a media type with no spaces, up to a comma);
    - a URL with any scheme (``scheme://...``), or ``file:...``, with no whitespace; schemes
      other than http(s) are refused later by the resolver, with a message saying so;
    - base64: at least 64 characters of the base64 alphabet in lines, no spaces, no ``.``;
    - path-like, on a single line: starting with ``/``, ``~`` (``~``, ``~/``, ``~user/``),
      ``./``, ``../``, ``.\``, ``..\`` or a drive (``C:\``, ``C:/``); or without whitespace
      and containing ``/`` or ``\`` or ending in an image suffix (``cat.png``); or ending in an
      image suffix with no comma (``holiday photo 1.jpg``).

    So "a red fox in snow, watercolour" and "a black/white photo of a cat" are prompts. Run ids
    (``20250101-120000-abcdef``) are neither: callers that accept them check them first.
    Non-text sources (``os.PathLike``, bytes, PIL images) always name an image.
    """
    if not isinstance(text, str):
        return isinstance(text, os.PathLike | bytes | bytearray | memoryview) or _is_pil(text)
    return _kind(text.strip(), strict=True) is not None


def classify(text: str) -> str:
    """``artifact``, ``data``, ``url``, ``base64`` or ``path``: what kind of image source
    ``text`` is, for text the caller gives *as* an image (so anything else is a path).

    The same rules as :func:`names_image`, read leniently (a URL or base64 may hold spaces).
    URLs with a scheme other than http(s) are refused here, naming what to pass instead.
    """
    kind = _kind(text, strict=False)
    if kind == "scheme":
        scheme = text.split(":", 1)[0].lower()
        raise InvalidImageError(
            f"'{scheme}:' URLs are not supported: pass a file path, base64 image data, a data: "
            "URL, an artifact id or an http(s) URL."
        )
    return kind or "path"


def _kind(text: str, *, strict: bool) -> str | None:
    """The kind of source ``text`` names, or None (strict only) when it reads as a prompt."""
    from arpo.tools.images import IMAGE_SUFFIXES

    if not text:
        return None
    lowered = text.lower()
    spaced = any(char.isspace() for char in text)
    if ARTIFACT_ID.fullmatch(lowered):
        return "artifact"
    if _DATA_URL_START.match(text) if strict else lowered.startswith("data:"):
        return "data"
    if (_SCHEME_URL.match(text) or lowered.startswith("file:")) and not (strict and spaced):
        return "url" if lowered.startswith(("http://", "https://")) else "scheme"
    # Base64 has no '.', and image paths nearly always do (the extension): a long run of base64
    # letters is data; 'iVBOR...' (PNG) starts with such letters too. Base64 starts with '/'
    # only for a first byte of 0xFC-0xFF, which among images is JPEG's ('/9j/'): any other
    # text starting with '/' is an absolute path, even a long one without a '.'.
    base64ish = _BASE64_LINES if strict else _BASE64ISH
    absolute = text.startswith("/") and not text.startswith("/9j/")
    if len(text) >= 64 and "." not in text and not absolute and base64ish.fullmatch(text):
        return "base64"
    if not strict:
        return "path"
    if "\n" in text or "\r" in text:
        return None
    image_suffix = lowered.endswith(IMAGE_SUFFIXES)
    if (
        text.startswith(_PATH_PREFIXES)
        or _HOME_PATH.match(text)
        or _DRIVE.match(text)
        or (not spaced and ("/" in text or "\\" in text or image_suffix))
        or (image_suffix and "," not in text)
    ):
        return "path"
    return None


def _is_pil(value: object) -> bool:
    from PIL import Image

    return isinstance(value, Image.Image)


# --------------------------------------------------------------------------- confined paths


def confine_path(text: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """The real path of ``text`` when it lies inside one of ``roots`` (real paths compared).

    Relative paths are taken from the working directory. Symlinks are followed and the target
    checked, so neither a link nor ``..`` can reach outside a root. The refusal reads the same
    whether or not the file exists. This only checks a name: open the file with
    :func:`open_confined`, which also checks what was opened.
    """
    text = os.fsdecode(os.fspath(text))
    _refuse_nul(text)
    given = Path(text).expanduser()
    absolute = given if given.is_absolute() else Path.cwd() / given
    real = Path(os.path.realpath(absolute))
    real_roots = _real_roots(roots)
    if any(_inside(real, root) for root in real_roots):
        return real
    listing = _listing(real_roots)
    lexical = Path(os.path.normpath(absolute))
    if any(_inside(lexical, root) for root in real_roots) and ".." not in given.parts:
        why = "it is a symbolic link (or inside one) that leads outside the allowed folders"
    elif ".." in given.parts:
        why = "its '..' components lead outside the allowed folders"
    else:
        why = "it is outside the allowed folders"
    raise InvalidImageError(
        f"cannot read image {text!r}: {why} ({listing}). Copy the image into one of them, pass "
        "it as base64 or a data: URL, or add its folder to ARPO_ALLOWED_ROOTS."
    )


def open_confined(text: str | os.PathLike[str], roots: Sequence[Path]) -> tuple[BinaryIO, Path]:
    """Open the image file ``text`` names, inside ``roots``: ``(binary file, real path)``.

    No swap of a symlink between the check and the open can make it read outside the roots:
    the real path is checked (:func:`confine_path`), opened without following a final symlink
    and non-blocking (a FIFO cannot hang it), refused unless it is a regular file, and then the
    *open descriptor's* path is checked against the roots again: ``/proc/self/fd`` on Linux,
    ``F_GETPATH`` on macOS; elsewhere the name must still resolve to itself and to the same
    file (device and inode) as the descriptor. The caller closes the file.
    """
    from arpo.tools.images import open_image_file

    real = confine_path(text, roots)
    handle = open_image_file(real, follow_symlinks=False)
    try:
        if not _opened_inside(handle.fileno(), real, _real_roots(roots)):
            raise InvalidImageError(
                f"cannot read image {os.fsdecode(os.fspath(text))!r}: it changed while being "
                f"opened and then led outside the allowed folders "
                f"({_listing(_real_roots(roots))}). Pass a path that is not being changed, "
                "copy the image into one of them, or pass it as base64 or a data: URL."
            )
    except BaseException:
        handle.close()
        raise
    return handle, real


def _opened_inside(fd: int, real: Path, real_roots: Sequence[Path]) -> bool:
    opened = _descriptor_path(fd)
    if opened is not None:
        return any(_inside(opened, root) for root in real_roots)
    # No way to ask the kernel: the name must still be its own real path, naming this file.
    try:
        here, there = os.fstat(fd), os.stat(real, follow_symlinks=False)
    except OSError:
        return False
    same_file = (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
    return same_file and Path(os.path.realpath(real)) == real


def _descriptor_path(fd: int) -> Path | None:
    """The path the kernel has for an open descriptor, or None where it cannot say."""
    if sys.platform.startswith("linux"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        link = link.removesuffix(" (deleted)")
        return Path(link) if link.startswith("/") else None
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    get_path = getattr(fcntl, "F_GETPATH", None)  # macOS, some BSDs
    if get_path is None:
        return None
    try:
        raw = fcntl.fcntl(fd, get_path, bytes(1024))  # MAXPATHLEN
    except OSError:
        return None
    path = os.fsdecode(raw.split(b"\0", 1)[0])
    return Path(path) if path.startswith("/") else None


def _refuse_nul(text: str) -> None:
    if "\x00" in text:
        raise InvalidImageError("the image path contains a NUL character; pass a plain path.")


def _real_roots(roots: Sequence[Path]) -> list[Path]:
    return [Path(os.path.realpath(Path(root).expanduser())) for root in roots]


def _listing(real_roots: Sequence[Path]) -> str:
    return ", ".join(str(root) for root in real_roots) or "(none)"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
