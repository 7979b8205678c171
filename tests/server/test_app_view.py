"""The interactive view (MCP Apps) on the server side, on the demo preset: a client that
negotiates the extension sees it (capability, ``_meta.ui`` on the tools the view shows, the
app-only tools, the ``ui://`` resource with the app MIME type and an empty CSP); any other
client sees the server as it was, with the same results; the app-only tools give a run with
thumbnails of every step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult

from arpo.config import Settings
from arpo.demo.render import render_prompt
from arpo.server import build_server
from arpo.server.app_view import APP_ONLY_TOOLS, APP_URI
from arpo.tools.toolbox import Toolbox

VIEWED = {"reverse_prompt", "resume_run", "get_run", "edit_prompt", "vary", "fuse_images"}
APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
FAST = {"strategy": "offline", "iterations": 2, "candidates": 2}


@pytest.fixture
def toolbox(tmp_path: Path) -> Toolbox:
    home = tmp_path / "home"
    home.mkdir()
    return Toolbox(Settings(home=home, preset="demo", allowed_roots=[tmp_path]))


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    path = tmp_path / "scene.png"
    render_prompt("a large red solid circle in the center, on a white background", 1).save(path)
    return path


def connect(toolbox: Toolbox, *, apps: bool, mode: str = "auto") -> Client:
    return Client(build_server(toolbox), extensions=[APPS] if apps else [], mode=mode)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # the 2026 discover era, the handshake
def test_only_a_client_that_negotiates_sees_the_extension(toolbox: Toolbox, mode: str) -> None:
    async def main(client: Client) -> tuple[Any, dict[str, Any], list[str]]:
        async with client:
            tools = {tool.name: tool.meta for tool in (await client.list_tools()).tools}
            uris = [str(r.uri) for r in (await client.list_resources()).resources]
            return client.server_capabilities.extensions, tools, uris

    extensions, tools, uris = anyio.run(main, connect(toolbox, apps=True, mode=mode))
    assert extensions == {EXTENSION_ID: {}}
    assert {name for name, meta in tools.items() if meta} == VIEWED | APP_ONLY_TOOLS
    for name in VIEWED:
        assert tools[name]["ui"] == {"resourceUri": APP_URI}, name  # visible to model and app
        assert tools[name]["ui/resourceUri"] == APP_URI  # the key hosts before 2026-01 read
    for name in APP_ONLY_TOOLS:
        assert tools[name]["ui"] == {"resourceUri": APP_URI, "visibility": ["app"]}
    assert APP_URI in uris

    extensions, tools, uris = anyio.run(main, connect(toolbox, apps=False, mode=mode))
    assert not extensions
    assert not APP_ONLY_TOOLS & set(tools)
    assert all(meta is None for meta in tools.values()), tools
    assert not [uri for uri in uris if uri.startswith("ui://")]


def test_advertising_the_extension_without_the_app_mime_type_is_not_negotiating(
    toolbox: Toolbox,
) -> None:
    async def main() -> tuple[Any, set[str]]:
        async with Client(build_server(toolbox), extensions=[advertise(EXTENSION_ID)]) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            return client.server_capabilities.extensions, names

    extensions, names = anyio.run(main)
    assert not extensions and not APP_ONLY_TOOLS & names


def test_the_app_resource_is_html_with_the_app_mime_type_and_an_empty_csp(
    toolbox: Toolbox,
) -> None:
    async def main() -> Any:
        async with connect(toolbox, apps=True) as client:
            return (await client.read_resource(APP_URI)).contents

    (content,) = anyio.run(main)
    assert content.mime_type == APP_MIME_TYPE == "text/html;profile=mcp-app"
    assert content.text.lstrip().lower().startswith("<!doctype html>")
    assert content.meta["ui"]["csp"] == {}  # no domains: the host's restrictive default
    assert "permissions" not in content.meta["ui"]
    # self-contained: nothing fetched from outside, and data never written as HTML
    outside = [
        'src="http',
        'href="http',
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
        "WebSocket",
        "eval(",
    ]
    as_html = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"]
    for word in outside + as_html:
        assert word not in content.text, word


def test_results_are_the_same_for_clients_with_and_without_the_extension(
    tmp_path: Path, scene: Path
) -> None:
    async def main(client: Client) -> CallToolResult:
        async with client:
            return await client.call_tool("reverse_prompt", {"image": str(scene), **FAST})

    def fresh(name: str) -> Toolbox:  # each its own render cache: the same renders spent
        (tmp_path / name).mkdir()
        return Toolbox(Settings(home=tmp_path / name, preset="demo", allowed_roots=[tmp_path]))

    plain = anyio.run(main, connect(fresh("plain"), apps=False))
    viewed = anyio.run(main, connect(fresh("viewed"), apps=True))
    assert not plain.is_error and not viewed.is_error

    def shape(result: CallToolResult) -> tuple[Any, ...]:
        structured = dict(result.structured_content or {})
        for varying in ("run_id", "run_uri", "run_dir"):
            structured.pop(varying)
        return [block.type for block in result.content], structured, result.meta

    assert shape(plain) == shape(viewed)


def test_an_app_only_tool_is_unknown_to_a_client_without_the_extension(
    toolbox: Toolbox,
) -> None:
    async def main() -> CallToolResult:
        async with connect(toolbox, apps=False) as client:
            return await client.call_tool("run_view", {})

    result = anyio.run(main)
    assert result.is_error and "Unknown tool: run_view" in result.content[0].text


def test_run_view_gives_the_run_with_a_thumbnail_of_every_step(
    toolbox: Toolbox, scene: Path
) -> None:
    async def main() -> tuple[CallToolResult, CallToolResult, CallToolResult]:
        async with connect(toolbox, apps=True) as client:
            idle = await client.call_tool("run_view", {})
            done = await client.call_tool("reverse_prompt", {"image": str(scene), **FAST})
            run_id = done.structured_content["run_id"]
            return idle, done, await client.call_tool("run_view", {"run_id": run_id})

    idle, done, view = anyio.run(main)
    assert idle.structured_content == {"run": None, "images": {}}  # nothing running
    run, images = view.structured_content["run"], view.structured_content["images"]
    assert run["run_id"] == done.structured_content["run_id"] and run["status"] == "finished"
    wanted = {run["reference"], run["best_render"]} | {s["render"] for s in run["history"]}
    assert set(images) == wanted - {None}
    assert all(
        url.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
        for url in images.values()
    )


def test_artifact_previews_names_a_bad_id(toolbox: Toolbox) -> None:
    async def main() -> CallToolResult:
        async with connect(toolbox, apps=True) as client:
            return await client.call_tool("artifact_previews", {"artifact_ids": ["nope"]})

    result = anyio.run(main)
    assert result.is_error and "'nope' is not an artifact id" in result.content[0].text


def test_turned_off_no_client_sees_the_view(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    toolbox = Toolbox(Settings(home=home, preset="demo", app_view=False))

    async def main() -> tuple[Any, dict[str, Any], CallToolResult]:
        async with connect(toolbox, apps=True) as client:
            tools = {tool.name: tool.meta for tool in (await client.list_tools()).tools}
            refused = await client.call_tool("run_view", {})
            return client.server_capabilities.extensions, tools, refused

    extensions, tools, refused = anyio.run(main)
    assert not extensions and not APP_ONLY_TOOLS & set(tools)
    assert all(meta is None for meta in tools.values())
    assert refused.is_error and "Unknown tool: run_view" in refused.content[0].text
