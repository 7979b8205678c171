"""The streamable-HTTP transport: bearer token on every request, DNS-rebinding protection, and
no non-loopback binding without a token. uvicorn runs in a thread on a free loopback port."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

import arpo as arpo_package
from arpo.config import Settings
from arpo.errors import InvalidOptionError
from arpo.server import build_server, http_app
from arpo.server.http import listening_message
from arpo.tools.toolbox import Toolbox

TOKEN = "s3cret-token"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def serve_in_thread(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def toolbox(tiny_settings: Settings, tiny_models: Toolbox) -> Toolbox:
    settings = tiny_settings.model_copy(update={"auth_token": SecretStr(TOKEN)})
    return Toolbox(settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)


@pytest.fixture
def url(toolbox: Toolbox) -> Iterator[str]:
    yield from serve_in_thread(http_app(build_server(toolbox), toolbox.settings))


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer"])
def test_missing_or_wrong_token_is_401(url: str, authorization: str | None) -> None:
    headers = dict(MCP_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.post(url, json=INITIALIZE, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in response.json()["error"]


def test_right_token_serves_and_tools_work(url: str) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(url, json=INITIALIZE, headers=headers, timeout=10).status_code == 200

    async def main() -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            tools = await client.list_tools()
            generated = await client.call_tool("generate_image", {"prompt": "a red square"})
            return tools, generated

    tools, generated = anyio.run(main)
    assert "reverse_prompt" in {tool.name for tool in tools.tools}
    assert not generated.is_error


def test_dns_rebinding_protection_rejects_foreign_hosts(url: str) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example:8000"}
    response = httpx.post(url, json=INITIALIZE, headers=headers, timeout=10)
    assert response.status_code in (403, 421)
    origin = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}
    assert httpx.post(url, json=INITIALIZE, headers=origin, timeout=10).status_code == 403


def test_loopback_without_token_serves(tiny_settings: Settings, tiny_models: Toolbox) -> None:
    toolbox = Toolbox(tiny_settings, renderer=tiny_models.backend, scorer=tiny_models.scorer)
    for url in serve_in_thread(http_app(build_server(toolbox), toolbox.settings)):
        response = httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS, timeout=10)
        assert response.status_code == 200


def test_other_addresses_need_a_token(tiny_settings: Settings) -> None:
    server = build_server(Toolbox(tiny_settings))
    with pytest.raises(InvalidOptionError, match="ARPO_AUTH_TOKEN"):
        http_app(server, tiny_settings, host="0.0.0.0")
    with_token = tiny_settings.model_copy(update={"auth_token": SecretStr(TOKEN)})
    assert http_app(server, with_token, host="0.0.0.0") is not None


def test_listening_message_says_where_and_how_to_connect() -> None:
    assert listening_message("127.0.0.1", 8000, token=False) == (
        "listening on http://127.0.0.1:8000/mcp; no token: only this machine can connect"
    )
    assert listening_message("::1", 9, token=True) == (
        "listening on http://[::1]:9/mcp; clients send 'Authorization: Bearer <ARPO_AUTH_TOKEN>'"
    )
    assert "(every address of this machine)" in listening_message("0.0.0.0", 1, token=True)


def test_cli_says_where_it_listens_and_the_readme_client_connects(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env.update({"ARPO_HOME": str(tmp_path / "home"), "ARPO_AUTH_TOKEN": f"  {TOKEN}\n"})
    env["PYTHONPATH"] = str(Path(arpo_package.__file__).parents[1])  # the sources under test
    arpo = str(Path(sys.executable).with_name("arpo"))
    command = [arpo, "serve", "--transport", "http", "--port", "0", "--no-warm-up"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "listening on" not in line:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([server.stderr], [], [], max(left, 0))
            assert ready and server.poll() is None, "no 'listening on' line within 60 s"
            line = server.stderr.readline()
        url = line.split("listening on ")[1].split(";")[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        assert "Authorization: Bearer" in line

        async def readme_client(token: str) -> list[str]:  # the README's example, as written
            http = httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=300)
            )
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                return [tool.name for tool in (await client.list_tools()).tools]

        assert "reverse_prompt" in anyio.run(readme_client, TOKEN)  # sent without the spaces
        assert httpx.post(url, json=INITIALIZE, headers=MCP_HEADERS, timeout=10).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_cli_refuses_public_bind_without_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARPO_")}
    env["ARPO_HOME"] = str(tmp_path / "home")
    arpo = str(Path(sys.executable).with_name("arpo"))
    done = subprocess.run(
        [arpo, "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert "ARPO_AUTH_TOKEN" in done.stderr


# --------------------------------------------------------------------------- every ASGI scope


class Recorder:
    """A stand-in ASGI app that records which scopes reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope["type"])


def drive(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    return sent


def test_bearer_check_covers_websockets_and_unknown_scopes() -> None:
    from arpo.server import BearerAuth

    inner = Recorder()
    app = BearerAuth(inner, TOKEN)
    good = [(b"authorization", f"Bearer {TOKEN}".encode())]

    closed = drive(app, {"type": "websocket", "headers": []})
    assert closed == [{"type": "websocket.close", "code": 1008, "reason": "unauthorized"}]
    refused = drive(app, {"type": "http", "headers": [(b"authorization", b"Bearer nope")]})
    assert refused[0]["status"] == 401
    assert inner.seen == [], "nothing unauthorized reached the app"

    drive(app, {"type": "websocket", "headers": good})
    drive(app, {"type": "http", "headers": good})
    drive(app, {"type": "lifespan"})
    assert inner.seen == ["websocket", "http", "lifespan"]
    with pytest.raises(RuntimeError, match="no bearer check"):
        drive(app, {"type": "webtransport", "headers": good})
    assert inner.seen == ["websocket", "http", "lifespan"]
