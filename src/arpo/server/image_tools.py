"""Tools that call a model once: ``generate_image``, ``score_prompts``, ``caption_image``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from arpo import api
from arpo.server.jobs import Job, run_job
from arpo.server.results import generate_result
from arpo.server.schemas import (
    CaptionOutput,
    GenerateOutput,
    ImageArg,
    ScoredPrompt,
    ScoreOutput,
    Seed,
    Side,
    Steps,
)
from arpo.server.state import ServerState

if TYPE_CHECKING:
    from arpo.tools.toolbox import Toolbox


def add_image_tools(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="generate_image",
        title="Render a prompt",
        description="Render a prompt with the server's text-to-image model. Returns small "
        "previews inline and the full-size PNGs as arpo://artifacts/... resources.",
    )
    async def generate_image(
        prompt: Annotated[str, Field(description="The prompt to render.")],
        ctx: Context,
        negative_prompt: Annotated[str | None, Field(description="Negative prompt.")] = None,
        seed: Seed = 0,
        count: Annotated[int, Field(ge=1, le=4, description="Images (seeds seed..).")] = 1,
        width: Side = None,
        height: Side = None,
        steps: Steps = None,
    ) -> Annotated[CallToolResult, GenerateOutput]:
        first = seed or 0

        def work(job: Job) -> list[Path]:
            with job.model():
                return api.generate(
                    prompt,
                    seed=first,
                    count=count,
                    toolbox=state.toolbox,
                    negative_prompt=negative_prompt,
                    width=width,
                    height=height,
                    steps=steps,
                )

        paths = await run_job(ctx, work, state.job())
        return generate_result(prompt, paths, [first + k for k in range(count)])

    @server.tool(
        name="score_prompts",
        title="Score prompts against an image",
        description="CLIP similarity of each prompt to the image, best first: which description "
        "is closest to the picture.",
    )
    async def score_prompts(
        image: ImageArg,
        prompts: Annotated[list[str], Field(min_length=1, max_length=64)],
        ctx: Context,
    ) -> ScoreOutput:
        def work(job: Job) -> ScoreOutput:
            picture = state.image(image)
            with job.model():
                ranked = api.score(picture, prompts, toolbox=state.toolbox)
                unread = api.unknown_words([p for p, _ in ranked], toolbox=state.toolbox)
            return ScoreOutput(
                scores=[
                    ScoredPrompt(prompt=p, score=s, unknown_words=unread.get(p, []))
                    for p, s in ranked
                ]
            )

        return await run_job(ctx, work, state.job())

    @server.tool(
        name="caption_image",
        title="Caption an image",
        description="A quick starting prompt for the image, without the search loop: the vision "
        "LLM's caption when one is configured, else a local captioning model's (when "
        "configured) completed with vocabulary phrases, else CLIP interrogation over a phrase "
        "vocabulary.",
    )
    async def caption_image(
        image: ImageArg,
        ctx: Context,
        use_llm: Annotated[bool, Field(description="Use the LLM if configured.")] = True,
    ) -> CaptionOutput:
        def work(job: Job) -> CaptionOutput:
            picture = state.image(image)
            with job.model():
                text = api.caption(picture, toolbox=state.toolbox, use_llm=use_llm)
                score = api.score(picture, [text], toolbox=state.toolbox)[0][1] if text else 0.0
            method = _caption_method(state.toolbox, use_llm)
            return CaptionOutput(prompt=text, text_score=score, method=method)

        return await run_job(ctx, work, state.job())


def _caption_method(toolbox: Toolbox, use_llm: bool) -> Literal["llm", "captioner", "clip"]:
    """Which model wrote a caption (the order ``api.caption`` tries them in)."""
    if use_llm and toolbox.llm_available:
        return "llm"
    return "captioner" if toolbox.captioner_configured else "clip"
