"""``arpo serve``: an MCP server, a thin adapter over :mod:`arpo.api`.

Assistants reverse-prompt, render, score and caption images, and look at earlier runs. Models
load lazily on the first call that needs them (or in a background warm-up), so the server
answers ``initialize`` and ``tools/list`` at once; importing this module imports no torch.

Model work runs in worker threads. One lock per Toolbox serializes it (one copy of each model
per process, one device), so concurrent requests wait their turn, and say so in progress
notifications. A cancelled request stops its run at the next iteration boundary; the run
keeps its checkpoint and ``resume_run`` (or ``arpo invert --resume``) continues it.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hmac
import json
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from arpo import api
from arpo.config import Settings
from arpo.errors import ArpoError, InvalidOptionError
from arpo.runs import RunRecords, checkpointed_values, run_summary
from arpo.tools.previews import encode_preview, row, side_by_side
from arpo.tools.sources import SourcePolicy, policy_from_settings, resolve_image
from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ITERATIONS = 50
MAX_SIDE = 1024
MAX_STEPS = 100
MAX_CANDIDATES = 16
PREVIEW_BYTES = 250_000  # per result: base64 makes it ~333 KB, well under a 1 MiB result
WAITING = "waiting for the model (another request is running)"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ARTIFACT_URI = "arpo://artifacts/{artifact_id}"
RUN_URI = "arpo://runs/{run_id}"

IMAGE_HELP = (
    "The image: a local file path (inside the server's allowed folders), base64 image data, a "
    "'data:image/...;base64,' URL, an artifact id (64 hex characters) returned by an earlier "
    "call, or an http(s) URL when the server allows URLs."
)
ImageArg = Annotated[str, Field(description=IMAGE_HELP)]
Side = Annotated[
    int | None,
    Field(ge=64, le=MAX_SIDE, multiple_of=8, description="Render size in px (multiple of 8)."),
]
Steps = Annotated[int | None, Field(ge=1, le=MAX_STEPS, description="Diffusion steps.")]
Seed = Annotated[int | None, Field(ge=0, le=2**31 - 1, description="Seed of the renders.")]


# --------------------------------------------------------------------------- outputs


class RunOutput(BaseModel):
    """The answer of a reverse-prompt run."""

    run_id: str = Field(description="Id for get_run / resume_run.")
    best_prompt: str
    best_text_score: float = Field(description="CLIP similarity of the prompt to the image.")
    best_image_score: float | None = Field(description="CLIP similarity of its render.")
    initial_prompt: str
    iterations: int
    stop_reason: str | None
    strategy: str
    best_render: str = Field(description="Artifact id of the best prompt's render.")
    best_render_uri: str
    reference: str = Field(description="Artifact id of the reference image.")
    run_uri: str
    run_dir: str


class RenderedImage(BaseModel):
    artifact_id: str
    uri: str
    seed: int


class GenerateOutput(BaseModel):
    prompt: str
    images: list[RenderedImage]


class ScoredPrompt(BaseModel):
    prompt: str
    score: float = Field(description="CLIP cosine similarity to the image (higher is closer).")


class ScoreOutput(BaseModel):
    scores: list[ScoredPrompt] = Field(description="Best first.")


class CaptionOutput(BaseModel):
    prompt: str = Field(description="A starting prompt for the image.")
    text_score: float = Field(description="Its CLIP similarity to the image.")
    method: Literal["llm", "clip"] = Field(
        description="llm: the vision LLM was asked (CLIP interrogation if its answer did not "
        "parse); clip: CLIP interrogation over the phrase vocabulary."
    )


class StepOutput(BaseModel):
    iteration: int | None
    prompt: str | None
    text_score: float | None
    image_score: float | None
    render_uri: str | None = Field(description="arpo://artifacts/... of the step's render.")
    proposer: str | None = None
    note: str | None = None


class RunDetails(BaseModel):
    run_id: str
    status: str = Field(description="running, finished, failed or interrupted.")
    error: str | None
    created: str
    run_dir: str
    reference_uri: str
    options: dict[str, Any]
    initial_prompt: str | None
    best_prompt: str | None
    best_text_score: float | None
    best_image_score: float | None
    best_render_uri: str | None
    iterations: int
    stop_reason: str | None
    history: list[StepOutput]
    resumable: bool = Field(description="True when resume_run can continue it.")


class RunBrief(BaseModel):
    run_id: str
    status: str
    created: str
    best_prompt: str | None
    best_text_score: float | None
    iterations: int
    uri: str


class RunList(BaseModel):
    runs: list[RunBrief] = Field(description="Newest first.")


class PartsOutput(BaseModel):
    """A prompt split into components, and written back for the server's model."""

    parts: dict[str, Any] = Field(
        description="content, setting, composition, medium, style, lighting, palette, detail "
        "(lists of phrases) and negative (text)."
    )
    prompt: str = Field(description="The parts composed again for the server's model.")
    cut: list[str] = Field(description="Phrases left out to fit the model's token limit.")
    method: Literal["llm", "vocabulary"]


class RemixSourceOutput(BaseModel):
    role: str = Field(description="original (edit), content or style (fuse).")
    prompt: str
    run_id: str | None
    render: str = Field(description="Artifact id of its render with the same seed.")
    render_uri: str


class RemixOutput(BaseModel):
    remix_id: str
    prompt: str = Field(description="The new prompt.")
    negative_prompt: str
    parts: dict[str, Any]
    cut: list[str] = Field(description="Phrases left out to fit the model's token limit.")
    seed: int
    render: str = Field(description="Artifact id of the new render.")
    render_uri: str
    sources: list[RemixSourceOutput]
    notes: list[str]
    report: str = Field(description="Path of the HTML report (renders side by side).")


# --------------------------------------------------------------------------- workers


class Cancelled(Exception):
    """The client cancelled the request; raised inside the worker to stop the run."""


_model_locks: weakref.WeakKeyDictionary[Toolbox, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def model_lock(toolbox: Toolbox) -> threading.Lock:
    """The process-wide lock around model work with ``toolbox`` (one device, one queue)."""
    with _locks_guard:
        return _model_locks.setdefault(toolbox, threading.Lock())


class Job:
    """One request's worker-thread side: progress out, cancellation in."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.cancelled = threading.Event()
        self.events: queue.SimpleQueue[tuple[float, float | None, str]] = queue.SimpleQueue()

    def progress(self, progress: float, total: float | None, message: str) -> None:
        self.events.put((progress, total, message))

    def check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled("the request was cancelled")

    @contextmanager
    def model(self) -> Iterator[None]:
        """Hold the model lock, telling the client while it waits."""
        if not self.lock.acquire(blocking=False):
            self.progress(0, None, WAITING)
            while not self.lock.acquire(timeout=0.1):
                self.check()
        try:
            self.check()
            yield
        finally:
            self.lock.release()


async def run_job(ctx: Context | None, work: Callable[[Job], T], job: Job) -> T:
    """Run ``work`` in a thread; relay its progress; on cancellation, stop it and wait."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="arpo-tool") as pool:
        future = pool.submit(work, job)
        try:
            while not future.done():
                await _relay(ctx, job)
                await anyio.sleep(0.02)
            await _relay(ctx, job)
        except anyio.get_cancelled_exc_class():
            job.cancelled.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(concurrent.futures.wait, [future])
            raise
    try:
        return future.result()
    except ArpoError as error:
        raise ToolError(str(error)) from None
    except Cancelled:
        raise ToolError("cancelled; the run is saved and resume_run continues it.") from None
    except Exception as error:
        log.exception("tool failed")
        raise ToolError(
            f"internal error: {type(error).__name__}: {error} (the server log has the details)"
        ) from None


async def _relay(ctx: Context | None, job: Job) -> None:
    while True:
        try:
            progress, total, message = job.events.get_nowait()
        except queue.Empty:
            return
        if ctx is not None:
            try:
                await ctx.report_progress(progress, total, message)
            except Exception:  # a client gone away must not fail the work
                log.debug("progress notification failed", exc_info=True)


# --------------------------------------------------------------------------- the server


class Arpo:
    """The state behind the tools: one Toolbox, its model lock, the image-source policy."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.settings = toolbox.settings
        self.policy: SourcePolicy = policy_from_settings(self.settings)
        self.lock = model_lock(toolbox)

    def image(self, source: str) -> Any:
        return resolve_image(source, self.policy, self.toolbox.store)

    def warm_up(self) -> threading.Thread:
        """Load the models in a background thread (holding the model lock)."""

        def load() -> None:
            try:
                with self.lock:
                    self.toolbox.load_models()
            except Exception as error:  # reported again, clearly, by the first tool call
                log.warning("warm-up failed: %s", error)

        thread = threading.Thread(target=load, name="arpo-warm-up", daemon=True)
        thread.start()
        return thread

    # -- tools' bodies (worker threads) -------------------------------------------------

    def reverse_prompt(
        self, job: Job, image: str, prompt: str | None, options: dict[str, Any]
    ) -> api.Result:
        picture = self.image(image)
        with job.model():
            return api.reverse_prompt(
                picture,
                prompt=prompt,
                toolbox=self.toolbox,
                on_progress=self._on_progress(job),
                **options,
            )

    def resume(self, job: Job, run_id: str) -> api.Result:
        with job.model():
            return api.resume(run_id, toolbox=self.toolbox, on_progress=self._on_progress(job))

    @staticmethod
    def _on_progress(job: Job) -> Callable[[dict[str, Any]], None]:
        total: list[int] = [0]

        def update(event: dict[str, Any]) -> None:
            if event.get("event") == "started":
                total[0] = int(event["iterations"])
                return
            job.check()  # at an iteration boundary: the run stops here, checkpointed
            done = int(event.get("iteration", 0)) + 1
            message = (
                f"iteration {done}/{total[0]}: best {event.get('best_text_score', 0):.4f} "
                f"- {event.get('best_prompt', '')}"
            )
            job.progress(done, total[0] or None, message)

        return update


def build_server(
    toolbox: Toolbox | None = None,
    settings: Settings | None = None,
    *,
    warm_up: bool = False,
) -> MCPServer:
    """The MCP server over ``toolbox`` (default: the process-wide one for ``settings``)."""
    state = Arpo(toolbox or api.get_toolbox(settings))
    server = MCPServer(
        "arpo",
        title="arpo: find the prompt inside an image",
        instructions=INSTRUCTIONS,
        version=_version(),
        log_level="WARNING",
    )
    _add_run_tools(server, state)
    _add_image_tools(server, state)
    _add_history_tools(server, state)
    _add_remix_tools(server, state)
    _add_resources(server, state)
    if warm_up:
        state.warm_up()
    return server


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


def _add_run_tools(server: MCPServer, state: Arpo) -> None:
    @server.tool(
        name="reverse_prompt",
        title="Reverse-prompt an image",
        description="Search for a short text-to-image prompt that recreates the image (ARPO "
        "loop: render, critique, propose, select). Takes seconds to minutes; reports progress "
        "after every iteration. Returns the best prompt, its CLIP scores, the run id (for "
        "get_run / resume_run) and a preview: the reference beside the best render.",
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
    ) -> Annotated[CallToolResult, RunOutput]:
        options = {
            "strategy": strategy,
            "iterations": iterations,
            "candidates": candidates,
            "seed": seed,
            "width": width,
            "height": height,
            "steps": steps,
            "negative_prompt": negative_prompt,
            "target_score": target_score,
            "patience": patience,
        }

        def work(job: Job) -> api.Result:
            return state.reverse_prompt(job, image, prompt, options)

        return _run_result(await run_job(ctx, work, Job(state.lock)))

    @server.tool(
        name="resume_run",
        title="Resume an interrupted run",
        description="Continue a reverse-prompt run that was interrupted or cancelled, from its "
        "last checkpoint (finished iterations are not redone). Same result as reverse_prompt.",
    )
    async def resume_run(
        run_id: Annotated[str, Field(description="The run id (see list_runs).")],
        ctx: Context,
    ) -> Annotated[CallToolResult, RunOutput]:

        def work(job: Job) -> api.Result:
            return state.resume(job, run_id)

        return _run_result(await run_job(ctx, work, Job(state.lock)))


def _add_image_tools(server: MCPServer, state: Arpo) -> None:
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
        def work(job: Job) -> list[Path]:
            with job.model():
                return api.generate(
                    prompt,
                    seed=seed or 0,
                    count=count,
                    toolbox=state.toolbox,
                    negative_prompt=negative_prompt,
                    width=width,
                    height=height,
                    steps=steps,
                )

        paths = await run_job(ctx, work, Job(state.lock))
        return _generate_result(prompt, paths, seed or 0)

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
        def work(job: Job) -> list[tuple[str, float]]:
            picture = state.image(image)
            with job.model():
                return api.score(picture, prompts, toolbox=state.toolbox)

        ranked = await run_job(ctx, work, Job(state.lock))
        return ScoreOutput(scores=[ScoredPrompt(prompt=p, score=s) for p, s in ranked])

    @server.tool(
        name="caption_image",
        title="Caption an image",
        description="A quick starting prompt for the image, without the search loop: the vision "
        "LLM's caption when one is configured, else CLIP interrogation over a phrase vocabulary.",
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
            method = "llm" if use_llm and state.toolbox.llm_available else "clip"
            return CaptionOutput(prompt=text, text_score=score, method=method)

        return await run_job(ctx, work, Job(state.lock))


def _add_history_tools(server: MCPServer, state: Arpo) -> None:
    @server.tool(
        name="get_run",
        title="Show a run",
        description="A run's status, options, best prompt and every step (prompt, scores, "
        "render as an arpo://artifacts/... resource), to pick up where an earlier call ended.",
    )
    async def get_run(
        run_id: Annotated[str, Field(description="The run id (see list_runs).")],
    ) -> RunDetails:
        def work(job: Job) -> RunDetails:
            record = RunRecords(state.settings.runs_dir).load(run_id)
            values = checkpointed_values(state.settings.checkpoint_db, [run_id])[run_id]
            return _run_details(run_summary(record, values))

        return await run_job(None, work, Job(state.lock))

    @server.tool(
        name="list_runs",
        title="List runs",
        description="Earlier reverse-prompt runs, newest first, with status and best prompt.",
    )
    async def list_runs(
        limit: Annotated[int, Field(ge=1, le=200, description="How many runs.")] = 20,
    ) -> RunList:
        def work(job: Job) -> RunList:
            records = RunRecords(state.settings.runs_dir)
            ids = list(reversed(records.list()))[:limit]
            values = checkpointed_values(state.settings.checkpoint_db, ids)
            briefs = []
            for run_id in ids:
                try:
                    summary = run_summary(records.load(run_id), values[run_id])
                except ArpoError:
                    continue  # an unreadable record: skip it, list the rest
                briefs.append(_run_brief(summary))
            return RunList(runs=briefs)

        return await run_job(None, work, Job(state.lock))


RunOrPrompt = Annotated[
    str, Field(description="A prompt, or the run id of a finished reverse_prompt run.")
]
RemixSeed = Annotated[
    int | None,
    Field(ge=0, le=2**31 - 1, description="Seed (default: the original run's seed, else 0)."),
]
SIDE_HELP = (
    "a prompt, the run id of a finished run (its best prompt is reused), or an image (as for "
    "reverse_prompt: path, base64, data URL, artifact id) that is reverse-prompted first"
)


def _add_remix_tools(server: MCPServer, state: Arpo) -> None:
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

        return await run_job(ctx, work, Job(state.lock))

    @server.tool(
        name="edit_prompt",
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

        return _remix_result(await run_job(ctx, work, Job(state.lock)))

    @server.tool(
        name="fuse_images",
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
            sides = [_fuse_side(state, side) for side in (content_from, style_from)]
            with job.model():
                return api.fuse(
                    *sides,
                    seed=seed,
                    toolbox=state.toolbox,
                    reverse_options={"iterations": iterations},
                    on_progress=Arpo._on_progress(job),
                )

        return _remix_result(await run_job(ctx, work, Job(state.lock)))

    @server.tool(
        name="vary",
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

        result = await run_job(ctx, work, Job(state.lock))
        return _generate_result(result.prompt, result.renders, result.seeds[0])

    @server.prompt(
        name="reverse_prompt_and_remix",
        title="Reverse-prompt an image, then remix it",
        description="Walks the assistant through finding an image's prompt, splitting it into "
        "content and style, and changing one while keeping the other.",
    )
    def reverse_prompt_and_remix(image: str, change: str = "") -> str:
        wanted = change or "ask me what to change (for example: 'as a watercolour', 'at night')"
        return REMIX_PROMPT.format(image=image, change=wanted)


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


def _fuse_side(state: Arpo, text: str) -> Any:
    """A fuse source: a run id or a prompt as text, anything naming an image as the image."""
    from arpo.runs import RUN_ID
    from arpo.tools.sources import classify

    stripped = text.strip()
    if RUN_ID.fullmatch(stripped):
        return stripped
    try:
        kind = classify(stripped)
    except ArpoError:
        return stripped  # "xyz://..." is no image source: treat it as a prompt
    image_suffix = Path(stripped).suffix.lower() in {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
    if kind != "path" or (image_suffix and "," not in stripped):
        return state.image(stripped)
    return stripped


def _add_resources(server: MCPServer, state: Arpo) -> None:
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
        description="result.json of a finished run, else its run.json record.",
        mime_type="application/json",
    )
    def run(run_id: str) -> str:
        records = RunRecords(state.settings.runs_dir)
        try:
            record = records.load(run_id)
        except ArpoError as error:
            raise ResourceNotFoundError(str(error)) from None
        result = record.run_dir / "result.json"
        if record.status == "finished" and result.is_file():
            return result.read_text()
        return json.dumps(record.to_json(), indent=2)


# --------------------------------------------------------------------------- results


def artifact_uri(artifact_id: str) -> str:
    return ARTIFACT_URI.format(artifact_id=artifact_id)


def run_uri(run_id: str) -> str:
    return RUN_URI.format(run_id=run_id)


def _run_result(result: api.Result) -> CallToolResult:
    from arpo.tools.images import load_image

    best, reference = result.best_render_id, result.reference_id
    output = RunOutput(
        run_id=result.run_id,
        best_prompt=result.best_prompt,
        best_text_score=result.best_text_score,
        best_image_score=result.best_image_score,
        initial_prompt=result.initial_prompt,
        iterations=result.iterations,
        stop_reason=result.stop_reason,
        strategy=result.strategy,
        best_render=best,
        best_render_uri=artifact_uri(best),
        reference=reference,
        run_uri=run_uri(result.run_id),
        run_dir=str(result.run_dir),
    )
    pair = side_by_side(load_image(result.reference), load_image(result.best_render))
    content: list[ContentBlock] = [
        TextContent(text=output.model_dump_json()),
        _image_block(pair, PREVIEW_BYTES),
        _link(artifact_uri(best), "best render", "image/png"),
        _link(run_uri(result.run_id), f"run {result.run_id}", "application/json"),
    ]
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))


def _generate_result(prompt: str, paths: Sequence[Path], seed: int) -> CallToolResult:
    """``paths`` are artifact-store files (named by their artifact id)."""
    from arpo.tools.images import load_image

    images = [
        RenderedImage(artifact_id=p.stem, uri=artifact_uri(p.stem), seed=seed + k)
        for k, p in enumerate(paths)
    ]
    output = GenerateOutput(prompt=prompt, images=images)
    content: list[ContentBlock] = [TextContent(text=output.model_dump_json())]
    for path, image in zip(paths, images, strict=True):
        content.append(_image_block(load_image(path), PREVIEW_BYTES // len(paths)))
        content.append(_link(image.uri, f"render seed {image.seed}", "image/png"))
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))


def _remix_result(remix: api.Remix) -> CallToolResult:
    from arpo.tools.images import load_image

    output = RemixOutput(
        remix_id=remix.remix_id,
        prompt=remix.prompt,
        negative_prompt=remix.negative_prompt,
        parts=remix.parts.as_dict(),
        cut=remix.cut,
        seed=remix.seed,
        render=remix.render_id,
        render_uri=artifact_uri(remix.render_id),
        sources=[
            RemixSourceOutput(
                role=s["role"],
                prompt=s["prompt"],
                run_id=s["run_id"],
                render=s["render_id"],
                render_uri=artifact_uri(s["render_id"]),
            )
            for s in remix.sources
        ],
        notes=remix.notes,
        report=str(remix.report),
    )
    images = [load_image(s["render"]) for s in remix.sources] + [load_image(remix.render)]
    content: list[ContentBlock] = [
        TextContent(text=output.model_dump_json()),
        _image_block(row(images), PREVIEW_BYTES),
        _link(output.render_uri, f"{remix.kind} render", "image/png"),
    ]
    return CallToolResult(content=content, structured_content=output.model_dump(mode="json"))


def _image_block(image: Any, max_bytes: int) -> ImageContent:
    preview = encode_preview(image, max_bytes=max_bytes)
    data = base64.b64encode(preview.data).decode("ascii")
    return ImageContent(data=data, mime_type=preview.mime_type)


def _link(uri: str, name: str, mime_type: str) -> ResourceLink:
    return ResourceLink(uri=uri, name=name, mime_type=mime_type)


def _maybe_uri(artifact_id: str | None) -> str | None:
    return artifact_uri(artifact_id) if artifact_id else None


def _run_details(summary: dict[str, Any]) -> RunDetails:
    steps = [
        StepOutput(
            **{k: v for k, v in step.items() if k != "render"},
            render_uri=_maybe_uri(step["render"]),
        )
        for step in summary["history"]
    ]
    resumable = summary["status"] in ("interrupted", "running", "failed") and bool(steps)
    return RunDetails(
        **{k: v for k, v in summary.items() if k not in ("history", "reference", "best_render")},
        reference_uri=artifact_uri(summary["reference"]),
        best_render_uri=_maybe_uri(summary["best_render"]),
        history=steps,
        resumable=resumable,
    )


def _run_brief(summary: dict[str, Any]) -> RunBrief:
    return RunBrief(
        run_id=summary["run_id"],
        status=summary["status"],
        created=summary["created"],
        best_prompt=summary["best_prompt"],
        best_text_score=summary["best_text_score"],
        iterations=summary["iterations"],
        uri=run_uri(summary["run_id"]),
    )


def _version() -> str:
    from arpo import __version__

    return __version__


# --------------------------------------------------------------------------- transports


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            body = b'{"error": "missing or wrong bearer token (Authorization: Bearer ...)"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b"Bearer"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

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


def serve(
    transport: Literal["stdio", "http"] = "stdio",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    allowed_hosts: Sequence[str] = (),
    warm_up: bool = False,
) -> None:
    """Run the server until the client disconnects (stdio) or the process is stopped (http)."""
    settings = settings or Settings()
    server = build_server(settings=settings, warm_up=warm_up)
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = http_app(server, settings, host=host, allowed_hosts=allowed_hosts)
    uvicorn.run(app, host=host, port=port, log_level="warning")
