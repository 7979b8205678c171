"""``build_server`` and ``serve``: the tool groups, resources and prompt on one MCPServer."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer

from arpo import api
from arpo.config import Settings
from arpo.server.app_view import AppsNegotiation, build_apps
from arpo.server.history_tools import add_history_tools
from arpo.server.image_tools import add_image_tools
from arpo.server.jobs import ModelLoading, model_loading
from arpo.server.remix_tools import add_remix_tools
from arpo.server.resources import add_resources
from arpo.server.run_tools import add_run_tools
from arpo.server.state import ServerState, start_warm_up
from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "arpo finds a text-to-image prompt that recreates an image (reverse prompting). Call "
    "reverse_prompt with an image to search for a prompt; it reports progress each iteration "
    "and returns the best prompt, its scores and a side-by-side preview. caption_image gives a "
    "quick starting prompt without the search; score_prompts compares prompts against an "
    "image; generate_image renders a prompt. Runs are saved: list_runs and get_run show earlier "
    "ones, resume_run continues an interrupted one. Images returned as artifact ids can be "
    "passed back as the image of any tool. To remix: decompose_prompt splits a prompt into "
    "content and style components, edit_prompt changes some of them and renders the result "
    "with the original's seed, fuse_images puts the content of one image (or prompt, or run) "
    "in the style of another, vary renders a prompt with several seeds."
)


def build_server(
    toolbox: Toolbox | None = None,
    settings: Settings | None = None,
    *,
    warm_up: bool = False,
) -> MCPServer:
    """The MCP server over ``toolbox`` (default: the process-wide one for ``settings``).

    The image roots are checked here (a root of ``/`` or the home directory reached by
    default is refused) and logged, and the inbox folder is created. ``warm_up`` starts
    loading the models in the background (:meth:`ServerState.warm_up`); ``serve`` does so by
    default, a server built here for tests or embedding does not."""
    toolbox = toolbox or api.get_toolbox(settings)
    _prepare_roots(toolbox.settings)
    state = ServerState(toolbox)
    server = MCPServer(
        "arpo",
        title="arpo: find the prompt inside an image",
        instructions=INSTRUCTIONS,
        version=_version(),
        log_level="WARNING",
        extensions=[build_apps(state)],  # the interactive view, for clients that negotiate it
        middleware=[AppsNegotiation(enabled=toolbox.settings.app_view)],
    )
    add_run_tools(server, state)
    add_image_tools(server, state)
    add_history_tools(server, state)
    add_remix_tools(server, state)
    add_resources(server, state)
    if warm_up:
        state.warm_up()
    return server


def _prepare_roots(settings: Settings) -> None:
    from arpo.config import describe_roots

    if settings.allowed_roots is None:
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    log.warning("arpo serve: %s", describe_roots(settings))


def serve(
    transport: Literal["stdio", "http"] = "stdio",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    allowed_hosts: Sequence[str] = (),
    warm_up: bool = True,
) -> None:
    """Run the server until the client disconnects (stdio) or the process is stopped (http).

    The models load in the background from the start (``warm_up``), so ``tools/list`` answers
    at once and the first call waits less, hearing what is loading."""
    from arpo.server.http import http_app

    settings = settings or Settings()
    toolbox = api.get_toolbox(settings)
    server = build_server(toolbox)
    app = None
    if transport == "http":  # its refusals come before anything loads
        app = http_app(server, settings, host=host, allowed_hosts=allowed_hosts)
    if warm_up:
        start_warm_up(toolbox)
    if app is None:
        server.run("stdio")
    else:
        _serve_http(app, host, port, token=settings.auth_token is not None)
    if warm_up:
        _exit_if_loading(model_loading(toolbox))


def _serve_http(app: object, host: str, port: int, *, token: bool) -> None:
    """uvicorn, quiet but for one line once the socket is bound: where clients connect (the
    port actually bound, so ``--port 0`` says which) and whether they need the token."""
    import uvicorn

    from arpo.server.http import listening_message

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                log.warning("arpo serve: %s", listening_message(host, bound, token=token))

    Announcing(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()


def _exit_if_loading(loading: ModelLoading) -> None:
    """Leave at once when the client goes while the warm-up is still loading: torch's threads
    abort the interpreter's ordinary exit (SIGABRT, "terminate called ...") while a load runs.
    Presets are built atomically and hub downloads resume, so nothing is left half-made."""
    if loading.done.is_set():
        return
    log.warning("arpo serve: exiting while the models were still loading")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _version() -> str:
    from arpo import __version__

    return __version__
