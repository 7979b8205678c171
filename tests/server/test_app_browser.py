"""The MCP App view in a real browser: headless Chromium (the system's, driven by Playwright)
loads a small host page (``app_host.html``) that embeds the view in a sandboxed frame under
its CSP and bridges it to a real ``arpo serve --preset demo`` over stdio. The test plays the
assistant: it runs reverse_prompt with the view shown, waits for the run, edits the style
component, presses Render, and checks the edited render and prompt appear. The screenshot
is kept under the test's tmp_path (the path is printed)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

import arpo
from arpo.demo.render import render_prompt

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOST_PAGE = Path(__file__).with_name("app_host.html")
SCENE = "a large red solid circle in the center, on a white background, flat"
NEW_STYLE = "pixel art"
ITERATIONS = 4
WAIT_MS = 120_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium)"
)


def server_params(tmp_path: Path) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    source = str(Path(arpo.__file__).resolve().parents[1])  # the arpo this test imports
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    env.update(
        {
            "ARPO_HOME": str(tmp_path / "home"),
            "HF_HUB_OFFLINE": "1",
            "ARPO_ALLOWED_ROOTS": str(tmp_path),
        }
    )
    return StdioServerParameters(
        command=str(Path(sys.executable).with_name("arpo")),
        args=["serve", "--preset", "demo"],
        env=env,
        cwd=str(tmp_path),
    )


class Host:
    """The host's side of the bridge: what the view asks for goes to the arpo server, for
    tools the view may call (visibility with "app", the default) and resource reads."""

    def __init__(self, client: Client, tools: dict[str, Any]) -> None:
        self.client, self.tools = client, tools
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

    async def __call__(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "tools/call":
            name, arguments = params["name"], params.get("arguments") or {}
            ui = (self.tools[name].meta or {}).get("ui") or {}
            if "app" not in ui.get("visibility", ["model", "app"]):
                raise ValueError(f"the view may not call {name}")
            result = await self.client.call_tool(name, arguments)
            self.calls.append((name, arguments, result.structured_content))
            return wire(result)
        if method == "resources/read":
            return wire(await self.client.read_resource(params["uri"]))
        raise ValueError(f"this host does not serve {method}")


def wire(result: Any) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def test_the_view_shows_a_run_and_renders_an_edited_style(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.async_api", reason="pip install playwright")
    scene = tmp_path / "scene.png"
    render_prompt(SCENE, 5).save(scene)
    screenshot = tmp_path / "arpo-view.png"
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})

    async def main() -> tuple[Host, Any, dict[str, str]]:
        async with Client(server_params(tmp_path), extensions=[apps]) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            uri = tools["reverse_prompt"].meta["ui"]["resourceUri"]
            (resource,) = (await client.read_resource(uri)).contents
            assert resource.mime_type == APP_MIME_TYPE
            host = Host(client, tools)
            async with playwright.async_playwright() as driver:
                args = ["--no-sandbox"] if os.geteuid() == 0 else []
                browser = await driver.chromium.launch(executable_path=CHROMIUM, args=args)
                page = await browser.new_page(viewport={"width": 1000, "height": 1300})
                page.set_default_timeout(WAIT_MS)
                await page.expose_function("arpoHost", host)
                await page.goto(HOST_PAGE.as_uri())
                await page.evaluate(
                    "([html, csp]) => openView(html, csp)",
                    [resource.text, (resource.meta or {}).get("ui", {}).get("csp")],
                )
                await page.wait_for_function(
                    "window.viewLog.includes('ui/notifications/initialized')"
                )
                # the assistant calls reverse_prompt; the host shows the view meanwhile
                arguments = {"image": str(scene), "strategy": "offline", "iterations": ITERATIONS}
                await page.evaluate(
                    "(a) => notifyView('ui/notifications/tool-input', {arguments: a})", arguments
                )
                result = await client.call_tool("reverse_prompt", arguments)
                assert not result.is_error, result.content
                await page.evaluate(
                    "(r) => notifyView('ui/notifications/tool-result', r)", wire(result)
                )
                view = page.frame_locator("#view")
                style = view.locator("#part-style")
                await style.wait_for()
                shown = {
                    "steps": str(await view.locator("#steps li").count()),
                    "reference": await view.locator("#reference").get_attribute("src") or "",
                    "best_prompt": await view.locator("#best-prompt").text_content() or "",
                    "curve": str(await view.locator("#curve polyline").count()),
                }
                # the person edits the style and presses Render
                await style.fill(NEW_STYLE)
                await view.locator("#render").click()
                await view.locator("#edit-edited[src^='data:image/']").wait_for()
                shown["edited_prompt"] = await view.locator("#edit-prompt").text_content() or ""
                shown["original_src"] = (
                    await view.locator("#edit-original").get_attribute("src") or ""
                )
                shown["status"] = await view.locator("#status").text_content() or ""
                await page.screenshot(path=str(screenshot), full_page=True)
                await browser.close()
            return host, result, shown

    host, result, shown = anyio.run(main)
    print(f"screenshot of the view: {screenshot}")
    run = result.structured_content
    assert shown["best_prompt"] == run["best_prompt"]
    assert shown["reference"].startswith("data:image/")
    assert int(shown["steps"]) >= 2 and shown["curve"] == "2"  # text and image scores
    names = [name for name, _, _ in host.calls]
    assert "run_view" in names and "decompose_prompt" in names
    polled = [args for name, args, _ in host.calls if name == "run_view" and not args]
    assert polled, "the view did not poll for the run in progress"
    (edit,) = [(args, out) for name, args, out in host.calls if name == "edit_prompt"]
    assert edit[0] == {"source": run["run_id"], "changes": {"style": NEW_STYLE}}
    assert NEW_STYLE in shown["edited_prompt"] and shown["edited_prompt"] == edit[1]["prompt"]
    assert shown["original_src"].startswith("data:image/")
    assert shown["status"].startswith("edited")
    assert screenshot.stat().st_size > 10_000
