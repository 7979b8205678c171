"""Remix tools (``decompose_prompt``, ``edit_prompt``, ``fuse_images``, ``vary``) and the
reverse-prompt-then-remix prompt template."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from arpo import api
from arpo.server.app_view import ui_meta
from arpo.server.jobs import Job, run_job
from arpo.server.results import generate_result, remix_result
from arpo.server.schemas import (
    MAX_ITERATIONS,
    SIDE_HELP,
    GenerateOutput,
    PartsOutput,
    RemixOutput,
    RemixSeed,
    RunOrPrompt,
)
from arpo.server.state import ServerState

REMIX_PROMPT = """Help me remix the image {image}.

1. Call reverse_prompt with the image to find a prompt that recreates it. Show me the prompt,
   its score and the preview, and keep the run id.
2. Call decompose_prompt on that prompt and show me its components: what is in the picture
   (content, setting, composition) apart from how it is made (medium, style, lighting, palette).
3. The change I want: {change}.
   - To change how it looks or what is in it, call edit_prompt with the run id as source and
     either `changes` (component replacements, e.g. {{"style": "ukiyo-e woodblock print"}}) or
     an `instruction`.
   - To put it in the style of another image (or its content in another's style), call
     fuse_images with the run id on one side and the other image on the other.
4. Show me the original and the remix side by side (the result's preview), the new prompt and
   any phrases cut to fit the model. Offer vary for more seeds of the result.
"""


def add_remix_tools(server: MCPServer, state: ServerState) -> None:
    @server.tool(
        name="decompose_prompt",
        title="Split a prompt into content and style",
        description="Split a text-to-image prompt into components: content, setting, "
        "composition (what and where) and medium, style, lighting, palette (how it is made), "
        "plus detail and negative; and compose them back for the server's model.",
    )
    async def decompose_prompt(
        prompt: Annotated[str, Field(description="The prompt to split.")],
        ctx: Context,
        negative_prompt: Annotated[str, Field(description="Its negative prompt.")] = "",
        use_llm: Annotated[bool, Field(description="Use the LLM if configured.")] = True,
    ) -> PartsOutput:
        def work(job: Job) -> PartsOutput:
            with job.model():
                parts = api.decompose(
                    prompt, negative_prompt=negative_prompt, toolbox=state.toolbox, use_llm=use_llm
                )
                composed = api.compose(parts, toolbox=state.toolbox)
            method = "llm" if use_llm and state.toolbox.llm_available else "vocabulary"
            return PartsOutput(
                parts=parts.as_dict(), prompt=composed.prompt, cut=composed.cut, method=method
            )

        return await run_job(ctx, work, state.job())

    @server.tool(
        name="edit_prompt",
        meta=ui_meta(),
        title="Edit a prompt and render it",
        description="Change components of a prompt (or of a finished run's best prompt) and "
        "render the result with the original's seed, so the change is visible by itself. "
        "Returns the new prompt, its components, and a preview: original | edited.",
    )
    async def edit_prompt(
        source: RunOrPrompt,
        ctx: Context,
        changes: Annotated[
            dict[str, str] | None,
            Field(
                description="Components to replace, e.g. {'style': 'ukiyo-e woodblock print'}; "
                "names: content, setting, composition, medium, style, lighting, palette, "
                "detail, negative; an empty value clears one."
            ),
        ] = None,
        instruction: Annotated[
            str | None, Field(description="Free-text change, e.g. 'make it night'.")
        ] = None,
        seed: RemixSeed = None,
    ) -> Annotated[CallToolResult, RemixOutput]:
        def work(job: Job) -> api.Remix:
            with job.model():
                return api.edit_prompt(
                    source, changes, instruction, seed=seed, toolbox=state.toolbox
                )

        return remix_result(await run_job(ctx, work, state.job()))

    @server.tool(
        name="fuse_images",
        meta=ui_meta(),
        title="Content of one, style of another",
        description="Take the content (subject, setting, composition) of one source and the "
        "style (medium, style, lighting, palette) of another, and render it. Each source is "
        f"{SIDE_HELP}. Returns the fused prompt and a preview: content | style | fused.",
    )
    async def fuse_images(
        content_from: Annotated[str, Field(description=f"Content source: {SIDE_HELP}.")],
        style_from: Annotated[str, Field(description=f"Style source: {SIDE_HELP}.")],
        ctx: Context,
        seed: RemixSeed = None,
        iterations: Annotated[
            int | None,
            Field(ge=1, le=MAX_ITERATIONS, description="Iterations to reverse-prompt an image."),
        ] = None,
    ) -> Annotated[CallToolResult, RemixOutput]:
        def work(job: Job) -> api.Remix:
            sides = [state.remix_source(side) for side in (content_from, style_from)]
            with job.model():
                return api.fuse(
                    *sides,
                    seed=seed,
                    toolbox=state.toolbox,
                    reverse_options={"iterations": iterations},
                    on_progress=job.on_run_progress(),
                )

        return remix_result(await run_job(ctx, work, state.job()))

    @server.tool(
        name="vary",
        meta=ui_meta(),
        title="Render variations",
        description="Render a prompt (or a finished run's best prompt) with several seeds in "
        "one batch. Returns previews and arpo://artifacts/... links.",
    )
    async def vary(
        source: RunOrPrompt,
        ctx: Context,
        count: Annotated[int, Field(ge=1, le=4, description="Images (seeds seed..).")] = 4,
        seed: Annotated[
            int | None, Field(ge=0, le=2**31 - 8, description="First seed (default: random).")
        ] = None,
    ) -> Annotated[CallToolResult, GenerateOutput]:
        def work(job: Job) -> api.Variations:
            with job.model():
                return api.vary(source, count=count, seed=seed, toolbox=state.toolbox)

        result = await run_job(ctx, work, state.job())
        return generate_result(result.prompt, result.renders, result.seeds)

    @server.prompt(
        name="reverse_prompt_and_remix",
        title="Reverse-prompt an image, then remix it",
        description="Walks the assistant through finding an image's prompt, splitting it into "
        "content and style, and changing one while keeping the other.",
    )
    def reverse_prompt_and_remix(image: str, change: str = "") -> str:
        wanted = change or "ask me what to change (for example: 'as a watercolour', 'at night')"
        return REMIX_PROMPT.format(image=image, change=wanted)
