"""Tools that look back: ``get_run`` and ``list_runs`` (the api decides what they say)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from arpo import api
from arpo.server.app_view import ui_meta
from arpo.server.jobs import Job, run_job
from arpo.server.schemas import RunBriefOutput, RunDetailsOutput, RunId, RunListOutput
from arpo.server.state import ServerState


def add_history_tools(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="get_run",
        meta=ui_meta(),
        title="Show a run",
        description="A run's status, options, models, best prompt and every step (prompt, "
        "scores, render as an arpo://artifacts/... resource), and whether resume_run can "
        "continue it, to pick up where an earlier call ended.",
    )
    async def get_run(run_id: RunId) -> RunDetailsOutput:
        def work(job: Job) -> RunDetailsOutput:
            return RunDetailsOutput.of(api.run_details(run_id, settings=state.settings))

        return await run_job(None, work, state.job())

    @server.tool(
        name="list_runs",
        title="List runs",
        description="Earlier reverse-prompt runs, newest first, with status and best prompt.",
    )
    async def list_runs(
        limit: Annotated[int, Field(ge=1, le=200, description="How many runs.")] = 20,
    ) -> RunListOutput:
        def work(job: Job) -> RunListOutput:
            listing = api.list_runs(limit, settings=state.settings)
            return RunListOutput(runs=[RunBriefOutput.of(brief) for brief in listing.runs])

        return await run_job(None, work, state.job())
