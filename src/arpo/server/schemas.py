"""What the tools take and return: argument annotations (with the limits a remote caller
gets) and output models, which give each tool its ``outputSchema``.

Outputs are the api's result types plus ``arpo://`` links, built from them by ``of``: the
server never re-serialises a result field by field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from arpo.api import Remix, Result, RunBrief, RunDetails, RunStep

MAX_ITERATIONS = 50
MAX_SIDE = 1024
MAX_STEPS = 100
MAX_CANDIDATES = 16
MAX_BUDGET = 10_000  # renders per run: far past what real models spend (32 suits them)
ARTIFACT_URI = "arpo://artifacts/{artifact_id}"
RUN_URI = "arpo://runs/{run_id}"

IMAGE_HELP = (
    "The image: a local file path (inside the server's allowed folders), base64 image data, a "
    "'data:image/...;base64,' URL, an artifact id (64 hex characters) returned by an earlier "
    "call, or an http(s) URL when the server allows URLs."
)
SIDE_HELP = (
    "a prompt, the run id of a finished run (its best prompt is reused), or an image (as for "
    "reverse_prompt: path, base64, data URL, artifact id) that is reverse-prompted first"
)
ImageArg = Annotated[str, Field(description=IMAGE_HELP)]
Side = Annotated[
    int | None,
    Field(ge=64, le=MAX_SIDE, multiple_of=8, description="Render size in px (multiple of 8)."),
]
Steps = Annotated[int | None, Field(ge=1, le=MAX_STEPS, description="Diffusion steps.")]
Seed = Annotated[int | None, Field(ge=0, le=2**31 - 1, description="Seed of the renders.")]
Budget = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_BUDGET,
        description="Render budget: renders the model may make for this run (cache hits are "
        "free); the run stops before an iteration that could exceed it. Default: 32.",
    ),
]
MaxCost = Annotated[
    float | None,
    Field(
        gt=0,
        allow_inf_nan=False,
        description="US dollars the run's renders may cost (a renderer with a price per "
        "image: the images API); the run pauses, resumable with resume_run and a higher "
        "max_cost, before renders that would pass it. Default: no limit.",
    ),
]
RunId = Annotated[str, Field(description="The run id (see list_runs).")]
RunOrPrompt = Annotated[
    str, Field(description="A prompt, or the run id of a finished reverse_prompt run.")
]
RemixSeed = Annotated[
    int | None,
    Field(ge=0, le=2**31 - 1, description="Seed (default: the original run's seed, else 0)."),
]


def artifact_uri(artifact_id: str) -> str:
    return ARTIFACT_URI.format(artifact_id=artifact_id)


def run_uri(run_id: str) -> str:
    return RUN_URI.format(run_id=run_id)


def _maybe_uri(artifact_id: str | None) -> str | None:
    return artifact_uri(artifact_id) if artifact_id else None


class RunOutput(BaseModel):
    """The answer of a reverse-prompt run."""

    run_id: str = Field(description="Id for get_run / resume_run.")
    best_prompt: str
    best_text_score: float = Field(description="CLIP similarity of the prompt to the image.")
    best_image_score: float | None = Field(description="CLIP similarity of its render.")
    objective: Literal["text", "image"] = Field(description="The score the search maximised.")
    initial_prompt: str
    iterations: int
    stop_reason: str | None
    renders_spent: int = Field(description="Renders the model really made (cache hits free).")
    budget: int | None = Field(description="The run's render budget; null: none.")
    cost_usd: float | None = Field(
        description="US dollars the renders cost (images API: renders x price per image); "
        "null: the renderer has no price."
    )
    max_cost: float | None = Field(description="The run's cost limit in US dollars; null: none.")
    strategy: str
    best_render: str = Field(description="Artifact id of the best prompt's render.")
    best_render_uri: str
    reference: str = Field(description="Artifact id of the reference image.")
    run_uri: str
    run_dir: str
    next_step: str | None = Field(
        None,
        description="What to do next, when the run did not end on its own: a run paused by "
        "max_cost says how to resume it with a higher limit.",
    )

    @classmethod
    def of(cls, result: Result) -> RunOutput:
        shared = result.model_dump(mode="json", include=set(cls.model_fields))
        shared.update(best_render=result.best_render_id, reference=result.reference_id)
        return cls(
            **shared,
            best_render_uri=artifact_uri(result.best_render_id),
            run_uri=run_uri(result.run_id),
            next_step=next_step(result),
        )


def next_step(result: Result) -> str | None:
    """What a caller does next with ``result``: for a run paused by its cost limit, how to
    resume it with a higher one; else None."""
    if result.stop_reason != "max_cost":
        return None
    spent = f"${result.cost_usd:.2f}" if result.cost_usd is not None else "its renders"
    limit = f"${result.max_cost:.2f}" if result.max_cost is not None else "its limit"
    return (
        f"paused by max_cost: {spent} spent of {limit}, and the next iteration could pass it. "
        f"The best prompt so far is above; to go on, call resume_run with run_id "
        f"'{result.run_id}' and a higher max_cost."
    )


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
    unknown_words: list[str] = Field(
        default_factory=list,
        description="Words of the prompt this CLIP cannot read (all read as one unknown "
        "token, so the score ignores them); empty for CLIP's usual tokenizer.",
    )


class ScoreOutput(BaseModel):
    scores: list[ScoredPrompt] = Field(description="Best first.")


class CaptionOutput(BaseModel):
    prompt: str = Field(description="A starting prompt for the image.")
    text_score: float = Field(description="Its CLIP similarity to the image.")
    method: Literal["llm", "captioner", "clip"] = Field(
        description="llm: the vision LLM was asked (the fallback below if its answer did not "
        "parse); captioner: the local captioning model (ARPO_CAPTION_MODEL), completed with "
        "vocabulary phrases; clip: CLIP interrogation over the phrase vocabulary."
    )


class StepOutput(RunStep):
    render_uri: str | None = Field(description="arpo://artifacts/... of the step's render.")


class RunBriefOutput(RunBrief):
    uri: str

    @classmethod
    def of(cls, brief: RunBrief) -> RunBriefOutput:
        return cls(**brief.model_dump(), uri=run_uri(brief.run_id))


class RunDetailsOutput(RunDetails):
    history: list[StepOutput]  # type: ignore[assignment]
    reference_uri: str
    best_render_uri: str | None
    uri: str

    @classmethod
    def of(cls, details: RunDetails) -> RunDetailsOutput:
        fields = details.model_dump(exclude={"history"})
        steps = [
            StepOutput(**step.model_dump(), render_uri=_maybe_uri(step.render))
            for step in details.history
        ]
        return cls(
            **fields,
            history=steps,
            reference_uri=artifact_uri(details.reference),
            best_render_uri=_maybe_uri(details.best_render),
            uri=run_uri(details.run_id),
        )


class RunListOutput(BaseModel):
    runs: list[RunBriefOutput] = Field(description="Newest first.")


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

    @classmethod
    def of(cls, remix: Remix) -> RemixOutput:
        shared = remix.model_dump(mode="json", include=set(cls.model_fields) - {"sources"})
        shared.update(parts=remix.parts.as_dict(), render=remix.render_id)
        sources = [
            RemixSourceOutput(
                role=side.role,
                prompt=side.prompt,
                run_id=side.run_id,
                render=side.render_id,
                render_uri=artifact_uri(side.render_id),
            )
            for side in remix.sources
        ]
        return cls(**shared, render_uri=artifact_uri(remix.render_id), sources=sources)
