"""Resources: full-size images by artifact id, and runs by id."""

from __future__ import annotations

import json
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from arpo import api
from arpo.errors import ArpoError
from arpo.server.schemas import ARTIFACT_URI, RUN_URI
from arpo.server.state import ServerState


def add_resources(server: MCPServer, state: ServerState) -> None:
    @server.resource(
        ARTIFACT_URI,
        name="artifact",
        title="An image arpo stored",
        description="A full-size PNG (a reference or a render) by its sha256.",
        mime_type="image/png",
    )
    def artifact(artifact_id: str) -> bytes:
        try:
            path = state.toolbox.store.path(artifact_id)
        except ArpoError as error:
            raise ResourceNotFoundError(str(error)) from None
        if not path.is_file():
            raise ResourceNotFoundError(f"no artifact {artifact_id} in this server's store.")
        return path.read_bytes()

    @server.resource(
        RUN_URI,
        name="run",
        title="A reverse-prompt run",
        description="result.json of a finished run, else its details so far (as get_run).",
        mime_type="application/json",
    )
    def run(run_id: str) -> str:
        try:
            details = api.run_details(run_id, settings=state.settings)
        except ArpoError as error:
            raise ResourceNotFoundError(str(error)) from None
        result = Path(details.run_dir) / "result.json"
        if details.status == "finished" and result.is_file():
            return result.read_text(encoding="utf-8")
        return json.dumps(details.model_dump(mode="json"), indent=2)
