"""Small previews of images for tool results: a capped long side, a byte budget, and the
reference beside its best render.

MCP clients limit a whole tool result (Claude Desktop: 1 MiB of JSON), and inline images
travel as base64 (4/3 of their bytes), so previews are encoded to a byte budget: PNG when it
fits, else WebP, else JPEG, shrinking until one does.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from arpo.tools.images import encode_png, thumbnail

PREVIEW_MAX_SIDE = 512
PREVIEW_MAX_BYTES = 200_000
_GAP = 8


@dataclass(frozen=True)
class Preview:
    data: bytes
    mime_type: str
    width: int
    height: int


def side_by_side(left: Image.Image, right: Image.Image, *, height: int = 256) -> Image.Image:
    """``left | right`` on white, both scaled to ``height`` (aspect kept; never above the
    taller input, so small images are not blown up), a small gap between."""
    return row([left, right], height=height)


def row(images: Sequence[Image.Image], *, height: int = 256) -> Image.Image:
    """The images left to right on white, as :func:`side_by_side` lays out two."""
    height = max(1, min(height, max(image.height for image in images)))
    scaled = [_to_height(image.convert("RGB"), height) for image in images]
    width = sum(image.width for image in scaled) + _GAP * (len(scaled) - 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for image in scaled:
        canvas.paste(image, (x, 0))
        x += image.width + _GAP
    return canvas


def encode_preview(
    image: Image.Image,
    *,
    max_side: int = PREVIEW_MAX_SIDE,
    max_bytes: int = PREVIEW_MAX_BYTES,
) -> Preview:
    """Encode a copy of ``image`` with long side <= ``max_side`` in at most ``max_bytes``."""
    side = max_side
    while True:
        small = thumbnail(image.convert("RGB"), side)
        for mime, encode in _ENCODERS:
            data = encode(small)
            if len(data) <= max_bytes:
                return Preview(data, mime, small.width, small.height)
        if side <= 32:
            return Preview(data, mime, small.width, small.height)
        side = max(32, int(side * 0.7))


def _to_height(image: Image.Image, height: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _lossy(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()


_ENCODERS = (
    ("image/png", encode_png),
    ("image/webp", lambda image: _lossy(image, "WEBP", 80)),
    ("image/jpeg", lambda image: _lossy(image, "JPEG", 75)),
)
