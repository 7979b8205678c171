"""``arpo serve``: an MCP server, a thin adapter over :mod:`arpo.api`.

Assistants reverse-prompt, render, score and caption images, remix prompts, and look at earlier
runs. ``serve`` loads the models in a background warm-up from the start (``--no-warm-up``: on
the first call that needs them), so the server answers ``initialize`` and ``tools/list`` at
once, and a call that waits for the models hears what is loading; importing this package
imports no torch. One module per concept:

- ``app``: build_server, serve;    ``schemas``: argument limits and output models;
- ``jobs``: worker threads, the model lock, progress, cancellation;
- ``state``: the Toolbox and the confined image policy the tools share;
- ``run_tools``, ``image_tools``, ``history_tools``, ``remix_tools``: the tool groups;
- ``resources``: ``arpo://artifacts/...`` and ``arpo://runs/...``;
- ``app_view``: the interactive view (MCP Apps, ``ui://arpo/run``) for clients that negotiate it;
- ``results``: tool results with previews and links;    ``http``: transport and bearer auth.
"""

from __future__ import annotations

from arpo.server.app import INSTRUCTIONS, build_server, serve
from arpo.server.http import BearerAuth, http_app, transport_security
from arpo.server.jobs import WAITING

__all__ = [
    "INSTRUCTIONS",
    "WAITING",
    "BearerAuth",
    "build_server",
    "http_app",
    "serve",
    "transport_security",
]
