"""The remix MCP tools through the SDK's in-memory client (tiny preset): decompose, edit,
fuse (an image against a prompt), vary, the remix prompt template, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client
from mcp.types import CallToolResult
from PIL import Image

from arpo.config import Settings
from arpo.server import build_server
from arpo.tools.toolbox import Toolbox

FOX = "a red fox, in a misty forest, oil painting, golden hour"


def make_toolbox(tiny_settings: Settings, tiny_models: Toolbox, root: Path) -> Toolbox:
    settings = tiny_settings.model_copy(update={"allowed_roots": [root]})
    return Toolbox(settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)


def call_all(toolbox: Toolbox, calls: list[tuple[str, dict[str, Any]]]) -> list[CallToolResult]:
    async def main() -> list[CallToolResult]:
        async with Client(build_server(toolbox)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(main)


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


def test_decompose_edit_and_vary(tiny_settings: Settings, tiny_models: Toolbox, tmp_path) -> None:
    toolbox = make_toolbox(tiny_settings, tiny_models, tmp_path)
    parts, edited, varied = call_all(
        toolbox,
        [
            ("decompose_prompt", {"prompt": FOX}),
            ("edit_prompt", {"source": FOX, "changes": {"lighting": "moonlight"}, "seed": 2}),
            ("vary", {"source": FOX, "count": 2, "seed": 4}),
        ],
    )
    assert not parts.is_error
    assert parts.structured_content["parts"]["lighting"] == ["golden hour"]
    assert parts.structured_content["prompt"] == FOX
    assert parts.structured_content["method"] == "vocabulary"

    assert not edited.is_error, text_of(edited)
    out = edited.structured_content
    assert out["prompt"] == "a red fox, in a misty forest, oil painting, moonlight"
    assert out["seed"] == 2 and out["sources"][0]["prompt"] == FOX
    assert out["render_uri"] == f"arpo://artifacts/{out['render']}"
    kinds = [block.type for block in edited.content]
    assert kinds == ["text", "image", "resource_link"]  # preview: original | edited

    assert not varied.is_error
    assert [image["seed"] for image in varied.structured_content["images"]] == [4, 5]
    assert [block.type for block in varied.content].count("image") == 2


def test_fuse_an_image_with_a_prompt(
    tiny_settings: Settings, tiny_models: Toolbox, tmp_path
) -> None:
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[16:48, 16:48] = (220, 30, 30)
    Image.fromarray(pixels).save(tmp_path / "square.png")
    toolbox = make_toolbox(tiny_settings, tiny_models, tmp_path)
    (fused,) = call_all(
        toolbox,
        [
            (
                "fuse_images",
                {
                    "content_from": str(tmp_path / "square.png"),
                    "style_from": "a lighthouse, watercolor painting, moonlight",
                    "iterations": 1,
                },
            )
        ],
    )
    assert not fused.is_error, text_of(fused)
    out = fused.structured_content
    assert out["parts"]["medium"] == ["watercolor painting"]
    assert out["parts"]["lighting"] == ["moonlight"]
    content, style = out["sources"]
    assert content["run_id"] and style["run_id"] is None  # the image was reverse-prompted
    assert "watercolor painting" in out["prompt"]


def test_bad_remix_input_is_a_tool_error(
    tiny_settings: Settings, tiny_models: Toolbox, tmp_path
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    toolbox = make_toolbox(tiny_settings, tiny_models, tmp_path)
    results = call_all(
        toolbox,
        [
            ("edit_prompt", {"source": FOX, "changes": {"mood": "gloomy"}}),
            ("edit_prompt", {"source": "20990101-000000-abcdef", "instruction": "at night"}),
            ("decompose_prompt", {"prompt": " "}),
            ("fuse_images", {"content_from": str(tmp_path / "gone.png"), "style_from": FOX}),
            ("fuse_images", {"content_from": FOX, "style_from": str(tmp_path / "notes.txt")}),
        ],
    )
    messages = [text_of(result) for result in results]
    assert all(result.is_error for result in results), messages
    assert "unknown prompt component 'mood'" in messages[0]
    assert "no run '20990101-000000-abcdef'" in messages[1]
    assert "prompt is empty" in messages[2]
    assert "gone.png" in messages[3]
    assert "notes.txt" in messages[4]


def test_remix_prompt_template(tiny_settings: Settings, tiny_models: Toolbox, tmp_path) -> None:
    toolbox = make_toolbox(tiny_settings, tiny_models, tmp_path)

    async def main() -> Any:
        async with Client(build_server(toolbox)) as client:
            listed = (await client.list_prompts()).prompts
            got = await client.get_prompt(
                "reverse_prompt_and_remix", {"image": "cat.png", "change": "as a watercolour"}
            )
            return listed, got

    listed, got = anyio.run(main)
    assert [p.name for p in listed] == ["reverse_prompt_and_remix"]
    text = got.messages[0].content.text
    assert "cat.png" in text and "as a watercolour" in text
    for tool in ("reverse_prompt", "decompose_prompt", "edit_prompt", "fuse_images", "vary"):
        assert tool in text
