"""What the api returns: pydantic models that the CLI prints and the MCP server sends as they
are (``model_dump``), so no face serialises a result by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from arpo.objective import Objective
from arpo.remix.parts import PromptParts


class Result(BaseModel):
    """The answer of a reverse-prompt run."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(description="Id for get_run / resume_run / arpo runs show.")
    run_dir: Path
    best_prompt: str
    best_text_score: float = Field(description="CLIP similarity of the prompt to the image.")
    best_image_score: float | None = Field(description="CLIP similarity of its render.")
    best_caption_score: float | None = Field(
        None,
        description="The local captioner's mean token log-probability of the prompt as the "
        "image's caption, weighed beside CLIP (caption_weight); null when not weighed.",
    )
    objective: Objective = Field(
        "text", description="The score the search maximised: text-image or image-image."
    )
    initial_prompt: str
    iterations: int
    stop_reason: str | None
    renders_spent: int = Field(
        0, description="Renders the model really made for this run (cache hits are free)."
    )
    budget: int | None = Field(None, description="The run's render budget; null: none.")
    cost_usd: float | None = Field(
        None,
        description="US dollars the renders cost (images API: renders x price per image); "
        "null: the backend has no price.",
    )
    max_cost: float | None = Field(None, description="The run's cost limit in US dollars.")
    reproducible: bool = Field(
        True, description="False where the renderer takes no seed (images API): a replay differs."
    )
    strategy: str
    history: list[dict[str, Any]]
    best_render: Path
    reference: Path
    report: Path
    best_render_id: str = Field(description="Artifact id of the best prompt's render.")
    reference_id: str = Field(description="Artifact id of the reference image.")

    @property
    def best_score(self) -> float | None:
        """The best prompt's score by the run's objective."""
        return self.best_text_score if self.objective == "text" else self.best_image_score

    @classmethod
    def from_export(cls, run_dir: Path, result: dict[str, Any], objective: Objective) -> Result:
        best = result["best"]
        return cls(
            run_id=result["run_id"],
            run_dir=run_dir,
            best_prompt=best["prompt"],
            best_text_score=best["text_score"],
            best_image_score=best["image_score"],
            best_caption_score=best.get("caption_score"),
            objective=objective,
            initial_prompt=result["initial_prompt"],
            iterations=result["iterations"],
            stop_reason=result["stop_reason"],
            renders_spent=result.get("renders_spent") or 0,
            budget=(result.get("options") or {}).get("budget"),
            cost_usd=(result.get("cost") or {}).get("usd"),
            max_cost=(result.get("options") or {}).get("max_cost"),
            reproducible=((result.get("models") or {}).get("profile") or {}).get(
                "reproducible", True
            ),
            strategy=result["strategy"],
            history=result["history"],
            best_render=run_dir / best["render"],
            reference=run_dir / result["reference"],
            best_render_id=best["artifact"],
            reference_id=result["reference_artifact"],
            report=run_dir / "report.html",
        )


class RunStep(BaseModel):
    iteration: int | None
    prompt: str | None
    text_score: float | None
    image_score: float | None
    render: str | None = Field(description="Artifact id of the step's first render.")
    proposer: str | None = None
    note: str | None = None


class RunBrief(BaseModel):
    run_id: str
    status: str = Field(description="running, finished, failed or interrupted.")
    created: str
    best_prompt: str | None
    best_text_score: float | None
    best_image_score: float | None = None
    objective: Objective = Field("text", description="The score the search maximised.")
    iterations: int
    resumable: bool = Field(description="True when resume_run (arpo invert --resume) can go on.")


class RunDetails(RunBrief):
    error: str | None
    run_dir: str
    reference: str = Field(description="Artifact id of the reference image.")
    models: dict[str, Any]
    options: dict[str, Any]
    initial_prompt: str | None
    best_render: str | None = Field(description="Artifact id of the best prompt's render.")
    stop_reason: str | None
    lease: str | None = Field(description="Which process is running it, while one is.")
    history: list[RunStep]


class RunList(BaseModel):
    runs: list[RunBrief] = Field(description="Newest first.")


class Deleted(BaseModel):
    run_id: str
    run_dir: str


class Collected(BaseModel):
    """What ``arpo gc`` removed (or, in a dry run, would remove)."""

    dry_run: bool
    artifacts: int = Field(description="Unreferenced images removed.")
    bytes: int
    cache_records: int = Field(description="Render-cache entries whose image is gone.")
    kept: int = Field(description="Artifacts kept: referenced, or newer than the grace period.")


class RemixSide(BaseModel):
    role: str = Field(description="original (edit), content or style (fuse).")
    prompt: str
    run_id: str | None
    render: Path
    render_id: str = Field(description="Artifact id of its render with the same seed.")
    run_report: Path | None = Field(
        default=None, description="The report of the run it came from (an inverted image's)."
    )


class Remix(BaseModel):
    """An edited or fused prompt, its components, and its render beside its sources'."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="edit or fuse.")
    remix_id: str
    remix_dir: Path
    prompt: str = Field(description="The new prompt.")
    negative_prompt: str
    parts: PromptParts
    cut: list[str] = Field(description="Phrases left out to fit the model's token limit.")
    seed: int
    render: Path
    render_id: str = Field(description="Artifact id of the new render.")
    sources: list[RemixSide]
    notes: list[str]
    report: Path = Field(description="The HTML report (renders side by side).")


class Variations(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt: str
    seeds: list[int]
    renders: list[Path]
    render_ids: list[str]


class Check(BaseModel):
    """One line of ``arpo doctor``: what was checked, whether it is fine, and the fix."""

    model_config = ConfigDict(frozen=True)

    check: str = Field(description="What was checked: python, torch, device, t2i model, ...")
    ok: bool = Field(description="False when it stands in the way of a run.")
    detail: str
    fix: str | None = Field(None, description="What to do, where something is wrong.")


class Diagnosis(BaseModel):
    """``arpo doctor``'s answer: one check per line, in the order they ran."""

    model_config = ConfigDict(frozen=True)

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """Whether everything a run needs is fine."""
        return all(check.ok for check in self.checks)


BatchStatus = Literal["finished", "skipped", "failed", "unreadable", "interrupted", "pending"]


class BatchImage(BaseModel):
    """One image of a batch: what happened to it, and where its run and caption are."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Its path inside the folder (with '/').")
    status: BatchStatus = Field(
        description="finished (run done, caption written), skipped (it has a caption already, "
        "or shares one), failed (after one retry), unreadable (not a usable image), "
        "interrupted (the batch stopped during it: a rerun continues its run), pending (not "
        "reached)."
    )
    run_id: str | None = None
    prompt: str | None = Field(None, description="The run's best prompt.")
    objective: Objective | None = None
    text_score: float | None = None
    image_score: float | None = None
    caption: Path | None = Field(None, description="The caption file beside the image.")
    report: Path | None = Field(None, description="The run's report.html.")
    attempts: int = Field(0, description="Runs started or continued for it, every batch run.")
    error: str | None = None


class BatchSummary(BaseModel):
    """A batch over a folder: every image's outcome and the files written about them."""

    model_config = ConfigDict(frozen=True)

    folder: Path
    out_dir: Path = Field(description="batch.json, batch.csv, report.html and thumbnails.")
    images: list[BatchImage] = Field(description="In the folder's order (sorted paths).")
    already_finished: int = Field(
        0, description="Images skipped because an earlier run of the batch finished them."
    )
    elapsed_s: float
    batch_json: Path
    batch_csv: Path
    report: Path

    def count(self, status: str) -> int:
        """How many images ended with ``status``."""
        return sum(1 for image in self.images if image.status == status)

    def with_status(self, *statuses: str) -> list[BatchImage]:
        return [image for image in self.images if image.status in statuses]
