"""The streamable-HTTP transport: DNS-rebinding protection and the bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from arpo.config import Settings
from arpo.errors import InvalidOptionError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_UNAUTHORIZED = b'{"error": "missing or wrong bearer token (Authorization: Bearer ...)"}'


class BearerAuth:
    """ASGI middleware: every connection must carry ``Authorization: Bearer <token>``.

    HTTP requests without it get 401; websocket handshakes are closed (403) before they are
    accepted; ``lifespan`` events pass (they carry no request); any other scope type is
    refused, so a transport added later cannot bypass the check."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind == "lifespan" or (kind in ("http", "websocket") and self._authorized(scope)):
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
        elif kind == "http":
            await self._refuse_http(send)
        else:
            raise RuntimeError(f"refusing ASGI scope type {kind!r}: no bearer check for it")

    async def _refuse_http(self, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})

    def _authorized(self, scope: Any) -> bool:
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self.token
                )
        return False


def transport_security(host: str, extra_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: only requests whose Host (and Origin, when sent) name this
    server are served. ``extra_hosts``: more names (``name`` or ``name:port``) it is reached by."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    bound = f"[{host}]" if ":" in host else host
    if bound not in names and host not in ("0.0.0.0", "::"):
        names.append(bound)
    names.extend(extra_hosts)
    hosts = [h for name in names for h in ((name,) if _has_port(name) else (name, f"{name}:*"))]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")],
    )


def listening_message(host: str, port: int, *, token: bool) -> str:
    """The line ``arpo serve --transport http`` prints once it listens."""
    shown = f"[{host}]" if ":" in host else host
    where = " (every address of this machine)" if host in ("0.0.0.0", "::") else ""
    auth = (
        "clients send 'Authorization: Bearer <ARPO_AUTH_TOKEN>'"
        if token
        else "no token: only this machine can connect"
    )
    return f"listening on http://{shown}:{port}/mcp{where}; {auth}"


def _has_port(name: str) -> bool:
    return "]:" in name if name.startswith("[") else ":" in name


def http_app(
    server: MCPServer,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] = (),
) -> Any:
    """The streamable-HTTP ASGI app (path ``/mcp``), behind the bearer token when one is set.

    Binding anything but loopback without ``ARPO_AUTH_TOKEN`` is refused.
    """
    token = settings.auth_token.get_secret_value() if settings.auth_token else ""
    if host not in LOOPBACK and not token:
        raise InvalidOptionError(
            f"binding {host} exposes the server beyond this machine: set ARPO_AUTH_TOKEN (clients "
            "then send 'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )
    app = server.streamable_http_app(
        host=host, transport_security=transport_security(host, allowed_hosts)
    )
    return BearerAuth(app, token) if token else app
