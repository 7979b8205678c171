"""What the LangGraph Server tests share: an image as a client would send it."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageDraw


@pytest.fixture
def red_circle() -> str:
    """A 128x128 PNG of a red disc on white (a demo-world scene), as base64 text."""
    image = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(image).ellipse((24, 24, 104, 104), fill=(220, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
