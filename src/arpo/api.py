"""arpo as plain functions: what the CLI and the MCP server call.

Each function takes an optional :class:`~arpo.tools.toolbox.Toolbox` (models already loaded);
without one, a process-wide Toolbox built from settings is used, so models load once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.config import Settings
from arpo.errors import ArpoError, InvalidOptionError

if TYPE_CHECKING:
    from arpo.graph.context import RunOptions
    from arpo.runs import RunRecord
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]

_toolboxes: dict[str, Toolbox] = {}


def get_toolbox(settings: Settings | None = None) -> Toolbox:
    """The process-wide Toolbox for these settings (built once, models loaded lazily)."""
    from arpo.tools.toolbox import Toolbox

    settings = settings or Settings()
    secret = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    key = settings.model_dump_json() + secret
    if key not in _toolboxes:
        _toolboxes[key] = Toolbox(settings)
    return _toolboxes[key]


@dataclass(frozen=True)
class Result:
    """The answer of a reverse-prompt run."""

    run_id: str
    run_dir: Path
    best_prompt: str
    best_text_score: float
    best_image_score: float | None
    initial_prompt: str
    iterations: int
    stop_reason: str | None
    strategy: str
    history: list[dict[str, Any]]
    best_render: Path
    reference: Path
    report: Path
    best_render_id: str  # artifact ids in the store (what the MCP tools hand out)
    reference_id: str

    @classmethod
    def from_export(cls, run_dir: Path, result: dict[str, Any]) -> Result:
        best = result["best"]
        return cls(
            run_id=result["run_id"],
            run_dir=run_dir,
            best_prompt=best["prompt"],
            best_text_score=best["text_score"],
            best_image_score=best["image_score"],
            initial_prompt=result["initial_prompt"],
            iterations=result["iterations"],
            stop_reason=result["stop_reason"],
            strategy=result["strategy"],
            history=result["history"],
            best_render=run_dir / best["render"],
            reference=run_dir / result["reference"],
            best_render_id=best["artifact"],
            reference_id=result["reference_artifact"],
            report=run_dir / "report.html",
        )


def reverse_prompt(
    image: Any,
    *,
    prompt: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    toolbox: Toolbox | None = None,
    on_progress: ProgressCallback | None = None,
    **options: Any,
) -> Result:
    """Find a prompt that recreates ``image`` (a path, bytes, data URL or PIL image).

    ``prompt`` is an optional starting prompt (else a caption). ``options`` are
    :class:`~arpo.graph.context.RunOptions` fields (strategy, iterations, candidates, seed,
    steps, guidance, width, height, ...). The run is checkpointed: if it is interrupted,
    :func:`resume` continues it.
    """
    from arpo.graph.context import RunOptions, resolve_strategy
    from arpo.runs import RunRecord, RunRecords, new_run_id
    from arpo.tools.images import load_image

    toolbox = toolbox or get_toolbox()
    run_options = RunOptions.build(toolbox.option_defaults, **options)
    strategy = resolve_strategy(run_options.strategy, toolbox.llm_available)
    run_options = replace(run_options, strategy=strategy)  # type: ignore[arg-type]
    picture = load_image(image, max_pixels=toolbox.settings.max_image_pixels)
    toolbox.load_models()
    reference = toolbox.store.put_image(picture)
    run_id = new_run_id()
    records = RunRecords(toolbox.settings.runs_dir)
    record = RunRecord(
        run_id=run_id,
        run_dir=Path(out_dir).expanduser().resolve() if out_dir else records.runs_dir / run_id,
        reference=reference,
        options=run_options.to_dict(),
        models=toolbox.describe_models(),
        initial_prompt=prompt,
    )
    _check_out_dir(record.run_dir)
    records.save(record)
    record.run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(toolbox.store.path(reference), record.run_dir / "reference.png")
    state_in = {"reference": reference, "initial_prompt": prompt, "history": []}
    return _run(toolbox, record, run_options, state_in, on_progress)


def resume(
    run_id: str, *, toolbox: Toolbox | None = None, on_progress: ProgressCallback | None = None
) -> Result:
    """Continue an interrupted run from its last checkpoint (finished steps are not redone)."""
    from arpo.graph.context import RunOptions
    from arpo.runs import RunRecords

    toolbox = toolbox or get_toolbox()
    record = RunRecords(toolbox.settings.runs_dir).load(run_id)
    return _run(toolbox, record, RunOptions(**record.options), None, on_progress)


def _run(
    toolbox: Toolbox,
    record: RunRecord,
    options: RunOptions,
    state_in: dict[str, Any] | None,
    on_progress: ProgressCallback | None,
) -> Result:
    from arpo.graph import build_graph
    from arpo.runs import RunRecords, export_run

    records = RunRecords(toolbox.settings.runs_dir)
    config = {"configurable": {"thread_id": record.run_id}, "recursion_limit": 10_000}
    with _checkpointer(toolbox.settings) as checkpointer:
        graph = build_graph(toolbox, checkpointer)
        if state_in is None and not graph.get_state(config).next:
            state_in = _finished_or_missing(graph, config, record)
        if on_progress is not None:
            on_progress(
                {
                    "event": "started",
                    "run_id": record.run_id,
                    "run_dir": str(record.run_dir),
                    "iterations": options.iterations,
                }
            )
        try:
            for event in graph.stream(state_in, config, context=options, stream_mode="custom"):
                if on_progress is not None:
                    on_progress({"run_id": record.run_id, **event})
        except ArpoError as error:
            _mark(records, record, "failed", str(error))
            raise
        except BaseException as error:
            _mark(records, record, "interrupted", f"{type(error).__name__}: {error}")
            raise
        state = graph.get_state(config).values
    result = export_run(record, state, toolbox.store)
    _mark(records, record, "finished", None)
    return Result.from_export(record.run_dir, result)


def _finished_or_missing(graph: Any, config: dict[str, Any], record: RunRecord) -> None:
    """Resuming a run with no pending step: fine if it finished (re-export), else an error."""
    if graph.get_state(config).values.get("best") is None:
        raise ArpoError(
            f"run '{record.run_id}' has no checkpoint to resume from (it failed before its "
            "first step); start a new run with `arpo invert`."
        )
    return None


def _mark(records: Any, record: RunRecord, status: str, error: str | None) -> None:
    record.status, record.error = status, error
    with contextlib.suppress(OSError):
        records.save(record)


@contextlib.contextmanager
def _checkpointer(settings: Settings) -> Iterator[Any]:
    from arpo.graph import open_checkpointer

    settings.home.mkdir(parents=True, exist_ok=True)
    saver = open_checkpointer(str(settings.checkpoint_db))
    try:
        yield saver
    finally:
        saver.conn.close()


def _check_out_dir(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise InvalidOptionError(f"--out {run_dir} is a file; give a directory.")
    if run_dir.is_dir() and (run_dir / "result.json").exists():
        raise InvalidOptionError(
            f"{run_dir} already holds a run (result.json); choose another --out directory."
        )


def generate(
    prompt: str,
    *,
    seed: int = 0,
    count: int = 1,
    out_dir: str | os.PathLike[str] | None = None,
    toolbox: Toolbox | None = None,
    **render_options: Any,
) -> list[Path]:
    """Render ``prompt`` with seeds ``seed .. seed+count-1``; returns the image files.

    ``render_options``: negative_prompt, steps, guidance, width, height.
    """
    from arpo.graph.context import RunOptions

    if not prompt.strip():
        raise InvalidOptionError("the prompt is empty; give the text to render.")
    toolbox = toolbox or get_toolbox()
    options = RunOptions.build(
        toolbox.option_defaults, seed=seed, images_per_prompt=count, **render_options
    )
    hashes = toolbox.renderer.render([prompt] * count, options.seeds, options.render_params)
    paths = [toolbox.store.path(digest) for digest in hashes]
    if out_dir is None:
        return paths
    target = Path(out_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    copies = []
    for image_seed, path in zip(options.seeds, paths, strict=True):
        copy = target / f"seed-{image_seed}.png"
        shutil.copyfile(path, copy)
        copies.append(copy)
    return copies


def score(
    image: Any, prompts: list[str], *, toolbox: Toolbox | None = None
) -> list[tuple[str, float]]:
    """CLIP similarity of each prompt to ``image``, best first (one batch)."""
    from arpo.tools.images import load_image

    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise InvalidOptionError("give at least one non-empty prompt to score.")
    toolbox = toolbox or get_toolbox()
    picture = load_image(image, max_pixels=toolbox.settings.max_image_pixels)
    digest = toolbox.store.put_image(picture)
    reference = toolbox.scorer.encode_images([picture], keys=[digest])[0]
    scores = toolbox.scorer.text_similarity(prompts, reference)
    return sorted(zip(prompts, scores, strict=True), key=lambda pair: pair[1], reverse=True)


@dataclass(frozen=True)
class DemoResult:
    """A demo-world run: the scene's true prompt beside the recovered one."""

    result: Result
    true_prompt: str
    hits: list[str]
    misses: list[str]
    recall: float
    initial_recall: float


def demo(
    *,
    scene: int | None = None,
    prompt: str | None = None,
    objects: int = 1,
    out_dir: str | os.PathLike[str] | None = None,
    toolbox: Toolbox | None = None,
    on_progress: ProgressCallback | None = None,
    **options: Any,
) -> DemoResult:
    """Reverse-prompt a demo-world image whose true prompt is known, offline.

    Without ``prompt``, held-out scene number ``scene`` (random when None) with ``objects``
    objects is drawn; with ``prompt``, that prompt is rendered (seed ``options['seed']``).
    """
    import json
    import random

    from arpo.demo.evaluate import heldout_scene, render_scene
    from arpo.demo.render import render_prompt, scene_for_prompt
    from arpo.demo.scenes import attribute_hits, attribute_recall, canonical_prompt
    from arpo.tools.store import atomic_write

    toolbox = toolbox or get_toolbox(Settings(preset="demo"))
    if toolbox.settings.preset != "demo":
        raise InvalidOptionError("the demo needs the demo preset (Settings(preset='demo')).")
    if not 1 <= objects <= 3:
        raise InvalidOptionError(f"objects={objects}: demo scenes have 1 to 3 objects.")
    if prompt is not None:
        if not prompt.strip():
            raise InvalidOptionError("the demo prompt is empty; give a scene to draw.")
        seed = int(options.get("seed") or 0)
        true_scene, image = scene_for_prompt(prompt, seed), render_prompt(prompt, seed)
    else:
        index = random.SystemRandom().randrange(1_000_000) if scene is None else scene
        true_scene = heldout_scene(index, objects)
        image = render_scene(true_scene, index)
    options.setdefault("strategy", "offline")
    result = reverse_prompt(
        image, out_dir=out_dir, toolbox=toolbox, on_progress=on_progress, **options
    )
    hits, misses = attribute_hits(true_scene, result.best_prompt)
    outcome = DemoResult(
        result=result,
        true_prompt=canonical_prompt(true_scene),
        hits=hits,
        misses=misses,
        recall=attribute_recall(true_scene, result.best_prompt),
        initial_recall=attribute_recall(true_scene, result.initial_prompt),
    )
    summary = {k: v for k, v in outcome.__dict__.items() if k != "result"}
    atomic_write(result.run_dir / "demo.json", json.dumps(summary, indent=2).encode())
    return outcome


def caption(image: Any, *, toolbox: Toolbox | None = None, use_llm: bool = True) -> str:
    """A starting prompt for ``image`` without running the loop: the vision LLM's caption when
    ``use_llm`` and an LLM is configured, else CLIP interrogation over the phrase vocabulary
    (the same caption a run starts from)."""
    from arpo.graph.nodes import caption_reference
    from arpo.tools.images import load_image

    toolbox = toolbox or get_toolbox()
    picture = load_image(image, max_pixels=toolbox.settings.max_image_pixels)
    digest = toolbox.store.put_image(picture)
    embedding = toolbox.scorer.encode_images([picture], keys=[digest])[0]
    return caption_reference(toolbox, digest, embedding, use_llm)
