"""Reading user images safely into RGB, and encoding images for storage and vision LLMs."""

from __future__ import annotations

import base64
import binascii
import errno
import functools
import io
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from arpo.errors import InvalidImageError, InvalidOptionError

MIN_SIDE = 16
DEFAULT_MAX_PIXELS = 40_000_000

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image
OutputFormat = Literal["PNG", "JPEG", "WEBP"]

# The one format table: the formats we let Pillow try, and the file name suffixes that say a
# file holds one. Leaving out the rest keeps exotic decoders (EPS runs Ghostscript) away from
# untrusted input.
_FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "PNG": (".png", ".apng"),
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "MPO": (".mpo",),
    "WEBP": (".webp",),
    "GIF": (".gif",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "AVIF": (".avif", ".avifs"),
}
_ALLOWED_FORMATS = tuple(_FORMAT_SUFFIXES)
IMAGE_SUFFIXES: tuple[str, ...] = tuple(s for group in _FORMAT_SUFFIXES.values() for s in group)
"""Lower-case suffixes (with the dot) of the files arpo reads as images: "does this name look
like an image" everywhere (bench folders, telling an image from a prompt)."""
_FORMATS_HINT = "PNG, JPEG, WebP, GIF, BMP or TIFF"
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "P", "RGB", "RGBA"})
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_DATA_URL = re.compile(r"data:(image/[\w.+-]+)(?:;[^,;]*)*?;base64,(.*)", re.IGNORECASE | re.DOTALL)

# os.open flags (absent ones are 0 on platforms that lack them).
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of hanging
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_SYMLINK_ERRNOS = frozenset({errno.ELOOP, getattr(errno, "EMLINK", errno.ELOOP)})  # BSD: EMLINK

# Image.MAX_IMAGE_PIXELS is process-global; the lock makes our temporary changes restore cleanly.
_PIL_LOCK = threading.Lock()


# --------------------------------------------------------------------------- public API


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return ``source`` as a fully loaded RGB image, or raise :class:`InvalidImageError`.

    A ``str`` is a file path, unless it is a ``data:image/...;base64,`` URL. Paths are not
    confined here (this is the local user's own reading); a remote caller's text goes through
    :func:`arpo.tools.sources.resolve_image`, which confines paths to the allowed roots.
    """
    if isinstance(source, Image.Image):
        label = f"given as a PIL image ({source.mode}, {source.width}x{source.height})"
        return _finish(source, label, max_pixels)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return _load_bytes(data, f"given as bytes ({len(data):,} bytes)", max_pixels)
    if isinstance(source, str) and not source.strip():
        raise InvalidImageError("no image given: the path is empty. Pass the path of an image.")
    if isinstance(source, str) and _is_data_url(source):
        return _load_bytes(decode_data_url(source), _data_url_label(source), max_pixels)
    if isinstance(source, str | os.PathLike):
        return _load_path(Path(source), max_pixels)
    raise InvalidImageError(
        f"cannot read image given as {type(source).__name__}: "
        "pass a file path, image bytes, a base64 data URL or a PIL image."
    )


def decode_base64_image(text: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode raw base64 or a ``data:image/...;base64,`` URL into an RGB image."""
    text = text.strip()
    if _is_data_url(text):
        return _load_bytes(decode_data_url(text), _data_url_label(text), max_pixels)
    label = f"given as base64 ({len(text):,} chars)"
    return _load_bytes(_b64decode(text, label), label, max_pixels)


def decode_data_url(url: str) -> bytes:
    """Return the bytes inside a ``data:image/<type>;base64,<data>`` URL."""
    match = _DATA_URL.fullmatch(url.strip())
    if match is None:
        preview = url if len(url) <= 40 else url[:40] + "..."
        raise InvalidImageError(
            f"not an image data URL: {preview!r}. Expected 'data:image/<type>;base64,<data>'; "
            "pass such a URL, raw base64 image data, or a file path."
        )
    return _b64decode(match.group(2), _data_url_label(url))


def encode_png(image: Image.Image) -> bytes:
    """Encode ``image`` as PNG with no metadata, so the same pixels always give the same bytes."""
    if image.mode not in _PNG_MODES:
        image = _to_rgb(image)
    buffer = io.BytesIO()
    _bare(image).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def image_to_data_url(
    image: Image.Image,
    *,
    fmt: OutputFormat = "PNG",
    max_side: int | None = None,
    quality: int = 90,
) -> str:
    """Encode ``image`` as a ``data:`` URL (for vision LLMs), shrunk first to ``max_side``."""
    fmt = fmt.upper()  # type: ignore[assignment]
    if fmt not in _MIME:
        raise InvalidOptionError(f"image format {fmt!r} is not supported: use PNG, JPEG or WEBP.")
    if not 1 <= quality <= 100:
        raise InvalidOptionError(f"image quality must be between 1 and 100, got {quality}.")
    if max_side is not None:
        image = thumbnail(image, max_side)
    payload = encode_png(image) if fmt == "PNG" else _encode_lossy(image, fmt, quality)
    return f"data:{_MIME[fmt]};base64,{base64.b64encode(payload).decode('ascii')}"


def thumbnail(image: Image.Image, max_side: int) -> Image.Image:
    """Return a copy whose long side is at most ``max_side``, aspect kept; never upscales."""
    if max_side < 1:
        raise InvalidOptionError(f"max_side must be at least 1 pixel, got {max_side}.")
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- reading


def open_image_file(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for reading as an image file, refusing anything but a regular file.

    The file is opened non-blocking, so a FIFO or a device never hangs the caller, and then
    checked with ``fstat`` on the open descriptor (not on the name, which could change). With
    ``follow_symlinks=False`` a symbolic link as the last component is refused (``O_NOFOLLOW``).
    """
    label = repr(os.fspath(path))
    flags = os.O_RDONLY | _O_BINARY | _O_NONBLOCK | _O_CLOEXEC
    if not follow_symlinks:
        flags |= _O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidImageError(
            f"cannot read image {label}: file not found. "
            "Pass the path of an existing PNG, JPEG or WebP file."
        ) from None
    except PermissionError:
        raise InvalidImageError(
            f"cannot read image {label}: permission denied. "
            "Make the file readable by this user, or copy it somewhere readable."
        ) from None
    except IsADirectoryError:
        raise _directory(label) from None
    except OSError as exc:
        if not follow_symlinks and exc.errno in _SYMLINK_ERRNOS:
            raise InvalidImageError(
                f"cannot read image {label}: it is a symbolic link, and links are not followed "
                "here. Pass the path of the image file itself."
            ) from None
        raise InvalidImageError(
            f"cannot read image {label}: {exc.strerror or exc}. "
            "Pass the path of a readable PNG, JPEG or WebP file."
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise _directory(label)
        if not stat.S_ISREG(mode):
            raise InvalidImageError(
                f"cannot read image {label}: it is not a regular file (a {_file_kind(mode)}). "
                "Pass the path of an image file."
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load_image_file(
    handle: IO[bytes], label: str, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode an already open binary file (read from its current position) into RGB.

    ``label`` names the image in error messages (e.g. ``repr(path)``). The caller keeps
    ownership of ``handle``: it is fully read before this returns, and is not closed.
    """
    if _is_empty_file(handle):
        raise _empty(label)
    return _decode(handle, label, max_pixels)


def _load_path(path: Path, max_pixels: int) -> Image.Image:
    with open_image_file(path) as handle:
        return load_image_file(handle, repr(str(path)), max_pixels=max_pixels)


def _is_empty_file(handle: IO[bytes]) -> bool:
    try:
        info = os.fstat(handle.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False  # not backed by a descriptor (BytesIO): the decoder reports emptiness
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _load_bytes(data: bytes, label: str, max_pixels: int) -> Image.Image:
    if not data:
        raise _empty(label)
    return _decode(io.BytesIO(data), label, max_pixels)


def _decode(fp: IO[bytes], label: str, max_pixels: int) -> Image.Image:
    # Header parsing only; our own size check below refuses bombs before any pixel is decoded.
    with _pil_pixel_limit(None):
        image = _open(fp, label)
    return _finish(image, label, max_pixels)


def _open(fp: IO[bytes], label: str) -> Image.Image:
    try:
        return Image.open(fp, formats=_formats())
    except UnidentifiedImageError:
        raise InvalidImageError(
            f"cannot read image {label}: not a supported image format. "
            f"Pass a {_FORMATS_HINT} file (convert other formats to PNG first)."
        ) from None
    except _DECODE_ERRORS as exc:
        raise _corrupt(label, exc) from None


def _finish(image: Image.Image, label: str, max_pixels: int) -> Image.Image:
    _check_size(image.size, label, max_pixels)
    with _pil_pixel_limit(max_pixels):
        _load_first_frame(image, label, max_pixels)
    return _to_rgb(_exif_transpose(image))


def _load_first_frame(image: Image.Image, label: str, max_pixels: int) -> None:
    try:
        if getattr(image, "is_animated", False) and image.tell() != 0:
            image.seek(0)
        image.load()
    except _BOMB_ERRORS:
        raise _too_large(label, max_pixels) from None
    except _DECODE_ERRORS as exc:
        raise _corrupt(label, exc) from None


def _check_size(size: tuple[int, int], label: str, max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise _too_large(label, max_pixels, size)
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(
            f"image {label} is too small: {width}x{height} pixels, but both sides must be at "
            f"least {MIN_SIDE} px. Pass a larger image."
        )


def _exif_transpose(image: Image.Image) -> Image.Image:
    # A broken EXIF block should not cost the user an otherwise good image.
    try:
        return ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        return image.copy()


@contextmanager
def _pil_pixel_limit(limit: int | None) -> Iterator[None]:
    """Temporarily make Pillow's own bomb check use ``limit`` (None: off), as an error."""
    with _PIL_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@functools.cache
def _formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in _ALLOWED_FORMATS if name in Image.OPEN)


# --------------------------------------------------------------------------- colour


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return _stretch_to_rgb(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return _flatten_on_white(image.convert("RGBA"))
    if image.mode == "RGB":
        return image.copy()
    try:
        return image.convert("RGB")
    except ValueError:
        raise InvalidImageError(
            f"cannot convert image with colour mode {image.mode!r} to RGB. "
            "Re-save it as an 8-bit RGB PNG or JPEG."
        ) from None


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _stretch_to_rgb(image: Image.Image) -> Image.Image:
    """Map high-depth greyscale to 0..255 by its actual range; 16-bit data rarely spans 0..65535."""
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return Image.new("RGB", image.size)
    low, high = float(values[finite].min()), float(values[finite].max())
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    if high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:  # flat image: no range to stretch, keep its level on the nominal scale
        full_scale = 65535.0 if image.mode.startswith("I;16") else 255.0
        scaled = np.full_like(values, low * 255.0 / full_scale)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


# --------------------------------------------------------------------------- encoding


def _encode_lossy(image: Image.Image, fmt: str, quality: int) -> bytes:
    if image.mode not in ("RGB", "L"):
        image = _to_rgb(image)
    buffer = io.BytesIO()
    _bare(image).save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()


def _bare(image: Image.Image) -> Image.Image:
    """A copy without metadata (EXIF, ICC, text, dpi), which Pillow would otherwise write."""
    copy = image.copy()
    copy.info = {}
    return copy


# --------------------------------------------------------------------------- base64


def _is_data_url(text: str) -> bool:
    return text.lstrip()[:5].lower() == "data:"


def _data_url_label(url: str) -> str:
    match = _DATA_URL.fullmatch(url.strip())
    kind = match.group(1).lower() if match else "unknown type"
    return f"given as a data URL ({kind}, {len(url):,} chars)"


def _b64decode(text: str, label: str) -> bytes:
    """Decode base64 leniently: whitespace, URL-safe letters and missing padding are fine."""
    compact = "".join(text.split())
    if not compact.isascii():
        raise _not_base64(label, "it contains non-ASCII characters")
    compact = compact.translate(str.maketrans("-_", "+/")).rstrip("=")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error as exc:
        raise _not_base64(label, str(exc)) from None


# --------------------------------------------------------------------------- errors


def _not_base64(label: str, detail: str) -> InvalidImageError:
    return InvalidImageError(
        f"image {label} is not valid base64 ({detail}). Pass the base64 of a PNG, JPEG or "
        "WebP file, or a 'data:image/<type>;base64,<data>' URL."
    )


def _directory(label: str) -> InvalidImageError:
    return InvalidImageError(
        f"cannot read image {label}: it is a directory. Pass the path of an image file."
    )


def _empty(label: str) -> InvalidImageError:
    return InvalidImageError(
        f"cannot read image {label}: it is empty. Pass a non-empty PNG, JPEG or WebP file."
    )


def _corrupt(label: str, exc: BaseException) -> InvalidImageError:
    return InvalidImageError(
        f"cannot decode image {label}: the file is truncated or corrupt ({exc}). "
        "Re-export or re-download the image."
    )


def _too_large(
    label: str, max_pixels: int, size: tuple[int, int] | None = None
) -> InvalidImageError:
    if size:
        what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels, over the limit of"
    else:
        what = "a frame has more pixels than the limit of"
    return InvalidImageError(
        f"image {label} is too large: {what} {max_pixels:,} pixels. "
        "Downscale it first, or raise ARPO_MAX_IMAGE_PIXELS if you trust the file."
    )
