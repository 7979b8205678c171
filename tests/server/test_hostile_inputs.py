"""Every tool argument that can name an image, over stdio, against hostile values.

One real ``arpo serve`` process (tiny preset, URLs on so that the address checks are what
refuse them) gets each hostile value in each image argument. Each call must be refused with a
clear message, the server must keep answering, and afterwards nothing from outside the allowed
root may be in the artifact store or the runs folder. A second server started from ``/`` with
no ARPO_ALLOWED_ROOTS confines to its inbox.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult
from PIL import Image

from arpo.tools.images import encode_png, load_image

# (tool, argument) for every argument that can name an image; the other arguments a call needs
IMAGE_ARGUMENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("reverse_prompt", "image", {"strategy": "offline", "iterations": 1}),
    ("score_prompts", "image", {"prompts": ["a red square"]}),
    ("caption_image", "image", {}),
    ("fuse_images", "content_from", {"style_from": "a watercolor painting"}),
    ("fuse_images", "style_from", {"content_from": "a red fox"}),
]


# bad values of the other run arguments: (tool, arguments, what the refusal must say)
BAD_COSTS = [-1, 0, "NaN", "inf", "lots", [1]]
BAD_WEIGHTS = [-1, "NaN", "inf", 11, "lots"]


def bad_option_calls(reference: Path) -> list[tuple[str, dict[str, Any], str]]:
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("reverse_prompt", {"image": str(reference), "max_cost": cost}, "max_cost")
        for cost in BAD_COSTS
    ]
    calls += [("resume_run", {"run_id": "20990101-000000-abcdef", "max_cost": -1}, "max_cost")]
    calls += [
        ("reverse_prompt", {"image": str(reference), "caption_weight": weight}, "caption_weight")
        for weight in BAD_WEIGHTS
    ]
    return calls


def png_bytes(size: tuple[int, int] = (32, 32), colour: str = "black") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A valid PNG header declaring 1.6 gigapixels over a few bytes of compressed zeros."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 8)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    Image.new("RGB", (64, 64), "red").save(root / "reference.png")
    (root / "bomb.png").write_bytes(bomb_png())
    secret = Image.new("RGB", (40, 40), (12, 34, 56))
    for name, fmt in [
        ("secret.png", "PNG"),
        ("secret.jpg", "JPEG"),
        ("secret.gif", "GIF"),
        ("secret.tif", "TIFF"),
        ("secret", "PNG"),
    ]:
        secret.save(outside / name, format=fmt)
    (outside / "notes.txt").write_text("not an image, and not yours")
    (root / "escape.png").symlink_to(outside / "secret.png")
    (root / "escape-dir").symlink_to(outside, target_is_directory=True)
    return {"base": base, "root": root, "outside": outside}


def hostile_values(world: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(label, value, what the refusal must say)."""
    root, outside = world["root"], world["outside"]
    data_bomb = "data:image/png;base64," + base64.b64encode(bomb_png()).decode()
    return [
        ("outside png", str(outside / "secret.png"), "outside the allowed folders"),
        ("outside jpeg", str(outside / "secret.jpg"), "outside the allowed folders"),
        ("outside gif", str(outside / "secret.gif"), "outside the allowed folders"),
        ("outside tiff", str(outside / "secret.tif"), "outside the allowed folders"),
        ("outside, no suffix", str(outside / "secret"), "outside the allowed folders"),
        ("outside, missing", str(outside / "nothing-here.png"), "outside the allowed folders"),
        ("outside non-image", str(outside / "notes.txt"), "outside the allowed folders"),
        ("system file", "/etc/passwd", "outside the allowed folders"),
        ("dot-dot", str(root / ".." / "outside" / "secret.gif"), "'..'"),
        ("relative dot-dot", "../outside/secret", "outside the allowed folders"),
        ("symlink escape", str(root / "escape.png"), "symbolic link"),
        ("symlinked folder", str(root / "escape-dir" / "secret.tif"), "symbolic link"),
        ("file url", f"file://{outside / 'secret.png'}", "'file:' URLs are not supported"),
        ("loopback url", "http://127.0.0.1:9/x.png", "loopback, private"),
        ("private url", "http://10.1.2.3/x.png", "loopback, private"),
        ("link-local url", "http://169.254.169.254/latest/meta-data", "loopback, private"),
        ("nat64 url", "http://[64:ff9b::7f00:1]/x.png", "loopback, private"),
        ("bad base64", "data:image/png;base64,@@@@", "base64"),
        ("bomb in root", str(root / "bomb.png"), "too large"),
        ("bomb as data url", data_bomb, "too large"),
    ]


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if block.type == "text")


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(home), "HF_HUB_OFFLINE": "1", **extra})
    return env


def arpo_command() -> str:
    return str(Path(sys.executable).with_name("arpo"))


def test_every_image_argument_refuses_every_hostile_value(
    world: dict[str, Path], presets_home: Path
) -> None:
    home = world["base"] / "home"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    params = StdioServerParameters(
        command=arpo_command(),
        args=["serve", "--preset", "tiny"],
        env=server_env(home, ARPO_ALLOWED_ROOTS=str(world["root"]), ARPO_ALLOW_URLS="true"),
        cwd=str(world["root"]),  # so "../outside/..." is relative to the root
    )
    values = hostile_values(world)
    cases = [
        (tool, argument, label, {**others, argument: value}, expected)
        for tool, argument, others in IMAGE_ARGUMENTS
        for label, value, expected in values
    ]

    options = bad_option_calls(world["root"] / "reference.png")

    async def main() -> tuple[list[CallToolResult], CallToolResult]:
        with anyio.fail_after(240):
            async with Client(params) as client:
                results = [await client.call_tool(tool, args) for tool, _, _, args, _ in cases]
                results += [await client.call_tool(tool, args) for tool, args, _ in options]
                still = await client.call_tool(
                    "score_prompts",
                    {"image": str(world["root"] / "reference.png"), "prompts": ["red"]},
                )
                return results, still

    results, still = anyio.run(main)
    print(f"\nhostile battery: {len(cases)} cases over {len(IMAGE_ARGUMENTS)} arguments")
    failures = []
    labelled = [
        (f"{tool}.{argument} <- {label}", expected) for tool, argument, label, _, expected in cases
    ]
    labelled += [(f"{tool} <- {args}", expected) for tool, args, expected in options]
    for (label, expected), result in zip(labelled, results, strict=True):
        message = text_of(result)
        if not result.is_error or expected not in message or "Traceback" in message:
            failures.append(f"{label}: {message[:200]}")
    assert not failures, "\n".join(failures)
    assert not still.is_error, text_of(still)

    # the same words whether or not the outside file exists: no probing for files
    by_label = {
        label: text_of(r)
        for (t, a, label, _, _), r in zip(cases, results[: len(cases)], strict=True)
        if (t, a) == ("score_prompts", "image")
    }
    present = by_label["outside png"].replace(str(world["outside"] / "secret.png"), "PATH")
    missing = by_label["outside, missing"].replace(
        str(world["outside"] / "nothing-here.png"), "PATH"
    )
    assert present == missing

    # nothing from outside was read into the store, and no run was recorded
    stored = {p.stem for p in (home / "artifacts" / "images").glob("*/*.png")}
    secrets = {
        hashlib.sha256(encode_png(load_image(path))).hexdigest()
        for path in world["outside"].iterdir()
        if path.name != "notes.txt"
    }
    reference = hashlib.sha256(encode_png(load_image(world["root"] / "reference.png"))).hexdigest()
    assert stored == {reference}
    assert not secrets & stored
    assert not list((home / "runs").glob("*/run.json"))
    assert not (home / "remixes").exists()


def test_a_server_started_from_root_confines_to_its_inbox(
    world: dict[str, Path], presets_home: Path
) -> None:
    home = world["base"] / "home-from-root"
    home.mkdir()
    (home / "presets").symlink_to(presets_home / "presets")
    env = server_env(home)
    params = StdioServerParameters(
        command=arpo_command(), args=["serve", "--preset", "tiny"], env=env, cwd="/"
    )
    elsewhere = world["base"] / "Pictures"
    elsewhere.mkdir()
    Image.new("RGB", (64, 64), "blue").save(elsewhere / "holiday.png")

    async def main() -> tuple[CallToolResult, CallToolResult]:
        with anyio.fail_after(240):
            async with Client(params) as client:
                refused = await client.call_tool(
                    "score_prompts", {"image": str(elsewhere / "holiday.png"), "prompts": ["x"]}
                )
                (home / "inbox" / "holiday.png").write_bytes(
                    (elsewhere / "holiday.png").read_bytes()
                )
                served = await client.call_tool(
                    "score_prompts",
                    {"image": str(home / "inbox" / "holiday.png"), "prompts": ["x"]},
                )
                return refused, served

    refused, served = anyio.run(main)
    assert refused.is_error and "outside the allowed folders" in text_of(refused)
    assert str((home / "inbox").resolve()) in text_of(refused)
    assert not served.is_error, text_of(served)

    # the effective roots are logged at start, on stderr
    started = subprocess.run(
        [arpo_command(), "serve", "--preset", "tiny"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=60,
    )
    assert f"image paths confined to: {(home / 'inbox').resolve()}" in started.stderr


def test_serving_with_a_broad_root_reached_implicitly_is_refused(
    world: dict[str, Path], presets_home: Path
) -> None:
    home = world["base"] / "home-broad"
    home.mkdir()
    started = subprocess.run(
        [arpo_command(), "serve"],
        input="",
        capture_output=True,
        text=True,
        env=server_env(home, ARPO_ALLOWED_ROOTS="."),
        cwd="/",
        timeout=60,
    )
    assert started.returncode != 0
    assert "error:" in started.stderr and "ARPO_ALLOWED_ROOTS" in started.stderr
    assert "Traceback" not in started.stderr


def test_a_batch_over_a_folder_reads_only_its_own_images(tmp_path: Path, tiny_toolbox: Any) -> None:
    """``arpo invert FOLDER`` goes through the same resolver, the folder as its only root: a
    link out of it, a non-image named .png and a decompression bomb are listed as unreadable,
    get no caption, and nothing from outside reaches the store."""
    from arpo import api

    folder, outside = tmp_path / "photos", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    Image.new("RGB", (64, 64), "red").save(folder / "good.png")
    Image.new("RGB", (40, 40), (12, 34, 56)).save(outside / "secret.png")
    (folder / "escape.png").symlink_to(outside / "secret.png")
    (folder / "escape-dir").symlink_to(outside, target_is_directory=True)
    (folder / "notes.png").write_text("not an image, though named like one")
    (folder / "bomb.png").write_bytes(bomb_png())

    summary = api.invert_folder(
        folder, recursive=True, toolbox=tiny_toolbox, strategy="offline", iterations=1, budget=2
    )

    found = {image.name: image for image in summary.images}
    assert set(found) == {"good.png", "escape.png", "notes.png", "bomb.png"}  # no escape-dir/
    assert found["good.png"].status == "finished"
    expected = {
        "escape.png": "symbolic link",
        "notes.png": "not a supported image format",
        "bomb.png": "too large",
    }
    for name, words in expected.items():
        assert found[name].status == "unreadable", name
        assert words in (found[name].error or ""), found[name].error
    assert sorted(p.name for p in folder.glob("*.txt")) == ["good.txt"]
    assert not list(outside.glob("*.txt"))
    stored = {p.stem for p in tiny_toolbox.store.artifacts()}
    secret = hashlib.sha256(encode_png(load_image(outside / "secret.png"))).hexdigest()
    assert secret not in stored


def test_the_app_only_tools_refuse_every_hostile_id(world: dict[str, Path]) -> None:
    """The MCP App's own tools take ids, never images: an artifact id or run id that is a
    path, a URL or a data URL is refused by name, and nothing is read for it."""
    from mcp.client.extension import advertise
    from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

    from arpo.config import Settings
    from arpo.server import build_server
    from arpo.tools.toolbox import Toolbox

    home = world["base"] / "app-home"
    home.mkdir()
    toolbox = Toolbox(
        Settings(home=home, preset="demo", allowed_roots=[world["root"]], allow_urls=True)
    )
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    values = [value for _, value, _ in hostile_values(world)]

    async def main() -> list[CallToolResult]:
        async with Client(build_server(toolbox), extensions=[apps]) as client:
            found = [
                await client.call_tool("artifact_previews", {"artifact_ids": [value]})
                for value in values
            ]
            found += [await client.call_tool("run_view", {"run_id": value}) for value in values]
            return found

    results = anyio.run(main)
    failures = [
        f"{value[:60]}: {text_of(result)[:160]}"
        for value, result, expected in zip(
            values * 2,
            results,
            ["is not an artifact id"] * len(values) + ["is not a run id"] * len(values),
            strict=True,
        )
        if not result.is_error or expected not in text_of(result)
    ]
    assert not failures, "\n".join(failures)
    assert not list((home / "artifacts").glob("images/*/*.png"))


def test_the_langgraph_server_graph_s_image_input_refuses_every_hostile_value(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LangGraph Server's input ``image`` goes through the one resolver, confined to the
    allowed roots as for any remote caller: each hostile value is refused by name (as the
    client sees it: a ValueError of the arpo error's name) and nothing reaches the store."""
    from arpo.langgraph_server.graph import graph

    home = world["base"] / "langgraph-home"
    monkeypatch.setenv("ARPO_HOME", str(home))
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", str(world["root"]))
    monkeypatch.setenv("ARPO_ALLOW_URLS", "true")
    monkeypatch.chdir(world["root"])  # so "../outside/..." is relative to the root
    failures = []
    for label, value, expected in hostile_values(world):
        try:
            anyio.run(
                functools.partial(
                    graph.ainvoke,
                    {"image": value},
                    context={"strategy": "offline", "iterations": 1},
                )
            )
        except ValueError as error:
            if expected not in str(error) or type(error).__name__ != "InvalidImageError":
                failures.append(f"{label}: {type(error).__name__}: {str(error)[:160]}")
        else:
            failures.append(f"{label}: accepted")
    assert not failures, "\n".join(failures)
    assert not list(home.glob("artifacts/images/*/*.png"))
    assert not list(home.glob("runs/*/run.json"))
