"""Tool results: structured content (the output model), the same JSON as text, a preview
image within a byte budget, and resource links to the full-size data."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent

from arpo.api import Remix, Result
from arpo.server.schemas import (
    GenerateOutput,
    RemixOutput,
    RenderedImage,
    RunOutput,
    artifact_uri,
    run_uri,
)
from arpo.tools.previews import encode_preview, row, side_by_side

PREVIEW_BYTES = 250_000  # per result: base64 makes it ~333 KB, well under a 1 MiB result


def run_result(result: Result) -> CallToolResult:
    from arpo.tools.images import load_image

    output = RunOutput.of(result)
    pair = side_by_side(load_image(result.reference), load_image(result.best_render))
    content: list[ContentBlock] = [
        TextContent(text=output.model_dump_json()),
        image_block(pair, PREVIEW_BYTES),
        link(output.best_render_uri, "best render", "image/png"),
        link(run_uri(result.run_id), f"run {result.run_id}", "application/json"),
    ]
    if output.next_step:
        content.insert(1, TextContent(text=output.next_step))
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))


def generate_result(prompt: str, paths: Sequence[Path], seeds: Sequence[int]) -> CallToolResult:
    """``paths`` are artifact-store files (named by their artifact id)."""
    from arpo.tools.images import load_image

    images = [
        RenderedImage(artifact_id=p.stem, uri=artifact_uri(p.stem), seed=seed)
        for p, seed in zip(paths, seeds, strict=True)
    ]
    output = GenerateOutput(prompt=prompt, images=images)
    content: list[ContentBlock] = [TextContent(text=output.model_dump_json())]
    for path, image in zip(paths, images, strict=True):
        content.append(image_block(load_image(path), PREVIEW_BYTES // len(paths)))
        content.append(link(image.uri, f"render seed {image.seed}", "image/png"))
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))


def remix_result(remix: Remix) -> CallToolResult:
    from arpo.tools.images import load_image

    output = RemixOutput.of(remix)
    images = [load_image(side.render) for side in remix.sources] + [load_image(remix.render)]
    content: list[ContentBlock] = [
        TextContent(text=output.model_dump_json()),
        image_block(row(images), PREVIEW_BYTES),
        link(output.render_uri, f"{remix.kind} render", "image/png"),
    ]
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))


def image_block(image: Any, max_bytes: int) -> ImageContent:
    preview = encode_preview(image, max_bytes=max_bytes)
    data = base64.b64encode(preview.data).decode("ascii")
    return ImageContent(data=data, mime_type=preview.mime_type)


def link(uri: str, name: str, mime_type: str) -> ResourceLink:
    return ResourceLink(uri=uri, name=name, mime_type=mime_type)
