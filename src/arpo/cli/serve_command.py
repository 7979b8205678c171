"""``arpo serve``: the MCP server for assistants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arpo.cli.app import PresetOption, app, errors, settings_for


@app.command()
def serve(
    transport: Annotated[
        str,
        typer.Option(
            metavar="stdio|http",
            help="stdio (for desktop assistants) or http (streamable HTTP, /mcp).",
        ),
    ] = "stdio",
    host: Annotated[
        str,
        typer.Option(
            metavar="HOST", help="HTTP bind address; other than 127.0.0.1 needs ARPO_AUTH_TOKEN."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="HOST",
            help="Extra Host header value the HTTP server answers to (repeatable).",
        ),
    ] = None,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            metavar="FOLDER",
            help="A folder whose images the server may read (repeatable; replaces "
            "ARPO_ALLOWED_ROOTS; default: ARPO_HOME/inbox).",
        ),
    ] = None,
    warm_up: Annotated[
        bool,
        typer.Option(
            "--warm-up/--no-warm-up",
            help="Load the models in the background at start (the default), so the first call "
            "waits less and hears what is loading; --no-warm-up loads them on the first call "
            "that needs them.",
        ),
    ] = True,
    preset: PresetOption = None,
) -> None:
    """Run the MCP server: assistants reverse-prompt, render, score, caption and remix images.
    It reads images only inside its allowed folders (logged at start on stderr)."""
    from arpo import server

    if transport not in ("stdio", "http"):
        raise typer.BadParameter(f"--transport {transport!r}: use stdio or http.")
    overrides: dict[str, Any] = {"allowed_roots": root} if root else {}
    settings = settings_for(preset, **overrides)
    with errors():
        server.serve(
            transport,  # type: ignore[arg-type]
            host=host,
            port=port,
            settings=settings,
            allowed_hosts=allowed_host or (),
            warm_up=warm_up,
        )
