"""Tools that run the search: ``reverse_prompt`` and ``resume_run``."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from arpo import api
from arpo.server.app_view import ui_meta
from arpo.server.jobs import Job, run_job
from arpo.server.results import run_result
from arpo.server.schemas import (
    MAX_CANDIDATES,
    MAX_ITERATIONS,
    Budget,
    ImageArg,
    MaxCost,
    RunId,
    RunOutput,
    Seed,
    Side,
    Steps,
)
from arpo.server.state import ServerState


def add_run_tools(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="reverse_prompt",
        meta=ui_meta(),
        title="Reverse-prompt an image",
        description="Search for a short text-to-image prompt that recreates the image (ARPO "
        "loop: render, critique, propose, select). Takes seconds to minutes; reports progress "
        "after every iteration. Returns the best prompt, its CLIP scores, the run id (for "
        "get_run / resume_run), what the renders cost (images API) and a preview: the "
        "reference beside the best render.",
    )
    async def reverse_prompt(
        image: ImageArg,
        ctx: Context,
        prompt: Annotated[
            str | None, Field(description="Starting prompt (default: a caption).")
        ] = None,
        strategy: Annotated[
            Literal["auto", "vanilla", "enhanced", "offline"],
            Field(description="auto: enhanced with an LLM configured, else offline."),
        ] = "auto",
        iterations: Annotated[
            int | None, Field(ge=1, le=MAX_ITERATIONS, description="Maximum iterations.")
        ] = None,
        candidates: Annotated[
            int | None, Field(ge=1, le=MAX_CANDIDATES, description="Candidates per iteration.")
        ] = None,
        seed: Seed = None,
        width: Side = None,
        height: Side = None,
        steps: Steps = None,
        negative_prompt: Annotated[str | None, Field(description="Negative prompt.")] = None,
        target_score: Annotated[
            float | None, Field(description="Stop once the best score reaches this.")
        ] = None,
        patience: Annotated[
            int | None,
            Field(
                ge=0,
                le=MAX_ITERATIONS,
                description="Stop after this many iterations without gain (0: never).",
            ),
        ] = None,
        budget: Budget = None,
        restarts: Annotated[
            int | None,
            Field(
                ge=0,
                le=MAX_ITERATIONS,
                description="Where patience would stop, restart from the local captioner's "
                "next-best caption, up to this many times (0: never).",
            ),
        ] = None,
        caption_weight: Annotated[
            float | None,
            Field(
                ge=0,
                le=10,
                description="How much the local captioner's likelihood of a prompt weighs "
                "beside CLIP's when choosing (0: CLIP alone).",
            ),
        ] = None,
        max_cost: MaxCost = None,
    ) -> Annotated[CallToolResult, RunOutput]:
        def work(job: Job) -> api.Result:
            picture = state.image(image)
            with job.model():
                return api.reverse_prompt(
                    picture,
                    prompt=prompt,
                    toolbox=state.toolbox,
                    on_progress=job.on_run_progress(),
                    strategy=strategy,
                    iterations=iterations,
                    candidates=candidates,
                    seed=seed,
                    width=width,
                    height=height,
                    steps=steps,
                    negative_prompt=negative_prompt,
                    target_score=target_score,
                    patience=patience,
                    budget=budget,
                    restarts=restarts,
                    caption_weight=caption_weight,
                    max_cost=max_cost,
                )

        return run_result(await run_job(ctx, work, state.job()))

    @server.tool(
        name="resume_run",
        meta=ui_meta(),
        title="Resume an interrupted run",
        description="Continue a reverse-prompt run that was interrupted, cancelled or paused "
        "by its max_cost, from its last checkpoint (finished iterations are not redone), with "
        "the models that made it; a paused run goes on with a higher max_cost. Same result as "
        "reverse_prompt.",
    )
    async def resume_run(
        run_id: RunId,
        ctx: Context,
        max_cost: Annotated[
            MaxCost,
            Field(description="A new cost limit in US dollars (default: the run's own)."),
        ] = None,
    ) -> Annotated[CallToolResult, RunOutput]:
        def work(job: Job) -> api.Result:
            with job.model():
                return api.resume(
                    run_id,
                    toolbox=state.toolbox,
                    on_progress=job.on_run_progress(),
                    max_cost=max_cost,
                )

        return run_result(await run_job(ctx, work, state.job()))
