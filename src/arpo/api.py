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
    from arpo.remix.compose import Composed
    from arpo.remix.parts import PromptParts
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
    result = export_run(record, state, toolbox.store, _run_decomposition(toolbox, state, options))
    _mark(records, record, "finished", None)
    return Result.from_export(record.run_dir, result)


def _run_decomposition(
    toolbox: Toolbox, state: dict[str, Any], options: RunOptions
) -> dict[str, Any] | None:
    """The best prompt's components, by the phrase vocabulary: no model or LLM call, so
    finishing a run stays instant and cannot fail on a remote service."""
    from arpo.remix.decompose import decompose_offline

    prompt = (state.get("best") or {}).get("prompt") or ""
    if not prompt.strip():
        return None
    parts = decompose_offline(
        prompt,
        toolbox.vocabulary,
        negative_prompt=options.negative_prompt,
        overrides=_component_overrides(toolbox),
    )
    return parts.as_dict()


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


# --------------------------------------------------------------------------- remixing

RENDER_OPTIONS = ("negative_prompt", "steps", "guidance", "width", "height")


@dataclass(frozen=True)
class RemixSource:
    """One prompt a remix starts from: given as text, or a finished run's best prompt."""

    role: str  # original, content or style
    prompt: str
    parts: PromptParts
    run_id: str | None = None
    seed: int | None = None
    render_options: dict[str, Any] | None = None


@dataclass(frozen=True)
class Remix:
    """An edited or fused prompt, its components, and its render beside its sources'."""

    kind: str  # edit or fuse
    remix_id: str
    remix_dir: Path
    prompt: str
    negative_prompt: str
    parts: PromptParts
    cut: list[str]  # phrases left out to fit the model's token limit
    seed: int
    render: Path
    render_id: str
    sources: list[dict[str, Any]]  # role, prompt, run_id, render, render_id
    notes: list[str]
    report: Path


@dataclass(frozen=True)
class Variations:
    prompt: str
    seeds: list[int]
    renders: list[Path]
    render_ids: list[str]


def decompose(
    prompt: str,
    *,
    negative_prompt: str = "",
    toolbox: Toolbox | None = None,
    use_llm: bool = True,
) -> PromptParts:
    """``prompt`` as components (content, setting, composition, medium, style, lighting,
    palette, detail, negative): the LLM's split when ``use_llm`` and one is configured, else
    the phrase vocabulary's."""
    from arpo.remix.decompose import decompose_offline, require_prompt
    from arpo.remix.llm import decompose_with_llm

    prompt = require_prompt(prompt)
    toolbox = toolbox or get_toolbox()
    overrides = _component_overrides(toolbox)
    if use_llm and toolbox.chat is not None:
        return decompose_with_llm(
            prompt,
            toolbox.chat,
            toolbox.vocabulary,
            negative_prompt=negative_prompt,
            overrides=overrides,
        )
    return decompose_offline(
        prompt, toolbox.vocabulary, negative_prompt=negative_prompt, overrides=overrides
    )


def compose(parts: PromptParts, *, toolbox: Toolbox | None = None) -> Composed:
    """``parts`` as one prompt for the configured text-to-image model (comma-separated and
    cut to 75 CLIP tokens for CLIP-encoder models, sentences for long text encoders)."""
    from arpo.remix.compose import compose as compose_parts
    from arpo.remix.compose import target_for_model

    toolbox = toolbox or get_toolbox()
    return compose_parts(parts, target_for_model(toolbox.describe_models()["t2i"] or ""))


def edit_prompt(
    source: str,
    changes: dict[str, str] | None = None,
    instruction: str | None = None,
    *,
    seed: int | None = None,
    toolbox: Toolbox | None = None,
    use_llm: bool = True,
    **render_options: Any,
) -> Remix:
    """Change some components of a prompt (or of a finished run's best prompt, by run id) and
    render the result with the original's seed, beside the original's render.

    ``changes`` replace whole components (``{"style": "ukiyo-e woodblock print"}``; an empty
    value clears one); ``instruction`` is free text ("make it night"), applied by the LLM when
    ``use_llm`` and one is configured, else by vocabulary replacement.
    """
    from arpo.remix.edit import apply_instruction_offline
    from arpo.remix.llm import edit_with_llm

    changes = dict(changes or {})
    instruction = (instruction or "").strip()
    if not changes and not instruction:
        raise InvalidOptionError(
            "nothing to change: give component changes (e.g. style='watercolor painting') "
            "and/or an instruction (e.g. 'make it night')."
        )
    toolbox = toolbox or get_toolbox()
    original = _remix_source(source, "original", toolbox, use_llm=use_llm)
    parts, notes = original.parts.with_changes(changes), []
    if instruction:
        chat = toolbox.chat if use_llm else None
        if chat is not None:
            parts = edit_with_llm(parts, instruction, chat)
            notes.append(f"instruction applied by the LLM: {instruction}")
        else:
            parts, notes = apply_instruction_offline(
                parts, instruction, toolbox.vocabulary, _component_overrides(toolbox)
            )
    return _finish_remix("edit", [original], parts, notes, seed, toolbox, render_options)


def fuse(
    content_from: Any,
    style_from: Any,
    *,
    seed: int | None = None,
    toolbox: Toolbox | None = None,
    use_llm: bool = True,
    reverse_options: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
    **render_options: Any,
) -> Remix:
    """The content components (content, setting, composition, detail) of one source with the
    style components (medium, style, lighting, palette) of the other, rendered.

    Each source is a prompt, a finished run's id (its best prompt is reused), or an image (a
    path, bytes or PIL image), which is reverse-prompted first with ``reverse_options``.
    """
    from arpo.remix.edit import fuse_parts

    toolbox = toolbox or get_toolbox()
    sides = [
        _remix_source(
            side,
            role,
            toolbox,
            use_llm=use_llm,
            images=True,
            reverse_options=reverse_options,
            on_progress=on_progress,
        )
        for side, role in ((content_from, "content"), (style_from, "style"))
    ]
    parts = fuse_parts(sides[0].parts, sides[1].parts)
    notes = [
        "content, setting, composition and detail from the content source; medium, style, "
        "lighting and palette from the style source"
    ]
    return _finish_remix("fuse", sides, parts, notes, seed, toolbox, render_options)


def vary(
    source: str,
    *,
    count: int = 4,
    seed: int | None = None,
    toolbox: Toolbox | None = None,
    **render_options: Any,
) -> Variations:
    """Render a prompt (or a finished run's best prompt) with ``count`` seeds in one batch:
    seeds ``seed .. seed+count-1`` (a random first seed when None)."""
    import random

    if not 1 <= count <= 64:
        raise InvalidOptionError(f"count={count}: render 1 to 64 variations at a time.")
    toolbox = toolbox or get_toolbox()
    origin = _remix_source(source, "original", toolbox, use_llm=False)
    first = random.SystemRandom().randrange(2**31 - count) if seed is None else seed
    options = {**(origin.render_options or {}), **_given(render_options)}
    paths = generate(origin.prompt, seed=first, count=count, toolbox=toolbox, **options)
    return Variations(
        prompt=origin.prompt,
        seeds=[first + k for k in range(count)],
        renders=paths,
        render_ids=[path.stem for path in paths],
    )


def _given(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(RENDER_OPTIONS))
    if unknown:
        raise InvalidOptionError(
            f"unknown render option(s): {', '.join(unknown)}; known: {', '.join(RENDER_OPTIONS)}."
        )
    return {k: v for k, v in options.items() if v is not None}


def _component_overrides(toolbox: Toolbox) -> dict[str, str]:
    return dict(toolbox.preset.vocabulary_components) if toolbox.preset else {}


def _remix_source(
    source: Any,
    role: str,
    toolbox: Toolbox,
    *,
    use_llm: bool,
    images: bool = False,
    reverse_options: dict[str, Any] | None = None,
    on_progress: ProgressCallback | None = None,
) -> RemixSource:
    """A prompt, a finished run's id, or (``images``) an image to reverse-prompt first."""
    from arpo.runs import RUN_ID

    if isinstance(source, str) and RUN_ID.fullmatch(source.strip()):
        return _run_source(source.strip(), role, toolbox)
    if images and _is_image(source):
        options = {"strategy": "auto", **(reverse_options or {})}
        result = reverse_prompt(source, toolbox=toolbox, on_progress=on_progress, **options)
        return _run_source(result.run_id, role, toolbox)
    if not isinstance(source, str):
        raise InvalidOptionError(
            f"the {role} source must be a prompt, a run id"
            + (" or an image" if images else "")
            + f", not {type(source).__name__}."
        )
    parts = decompose(source, toolbox=toolbox, use_llm=use_llm)
    return RemixSource(role=role, prompt=source.strip(), parts=parts)


def _is_image(source: Any) -> bool:
    if isinstance(source, (bytes, Path)) or hasattr(source, "convert"):  # PIL images convert
        return True
    if not isinstance(source, str) or "," in source or len(source) > 1024:
        return False
    text = source.strip()
    suffix = Path(text).suffix.lower()
    return suffix in {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"} or (
        Path(text).expanduser().is_file()
    )


def _run_source(run_id: str, role: str, toolbox: Toolbox) -> RemixSource:
    """A finished run's best prompt, its stored decomposition and its render settings."""
    import json

    from arpo.graph.context import RunOptions
    from arpo.remix.parts import PromptParts
    from arpo.runs import RunRecords

    record = RunRecords(toolbox.settings.runs_dir).load(run_id)
    result_file = record.run_dir / "result.json"
    if record.status != "finished" or not result_file.is_file():
        raise InvalidOptionError(
            f"run '{run_id}' is {record.status}, not finished; continue it with "
            f"`arpo invert --resume {run_id}` (or resume_run), then remix it."
        )
    result = json.loads(result_file.read_text())
    options = RunOptions(**record.options)
    stored = result.get("decomposition")
    prompt = result["best"]["prompt"]
    parts = (
        PromptParts.model_validate(stored)
        if stored
        else decompose(prompt, negative_prompt=options.negative_prompt, toolbox=toolbox)
    )
    render_options = {name: getattr(options, name) for name in RENDER_OPTIONS}
    return RemixSource(role, prompt, parts, run_id, options.seed, render_options)


def _finish_remix(
    kind: str,
    sources: list[RemixSource],
    parts: PromptParts,
    notes: list[str],
    seed: int | None,
    toolbox: Toolbox,
    render_options: dict[str, Any],
) -> Remix:
    """Compose, render the remix and its sources with one seed, and record it."""
    from arpo.graph.context import RunOptions
    from arpo.remix.records import RemixRecord, save_remix

    if parts.is_empty():
        raise InvalidOptionError(
            "the change leaves every component empty; keep at least a content phrase."
        )
    composed = compose(parts, toolbox=toolbox)
    if composed.cut:
        notes = [*notes, f"cut to fit {composed.max_tokens} tokens: {', '.join(composed.cut)}"]
    first = sources[0]
    seed = seed if seed is not None else (first.seed if first.seed is not None else 0)
    options = {**(first.render_options or {}), **_given(render_options)}
    run_options = RunOptions.build(
        toolbox.option_defaults,
        seed=seed,
        **{**options, "negative_prompt": composed.negative_prompt},
    )
    params = run_options.render_params
    renders = toolbox.renderer.render([composed.prompt], [seed], params)
    for source in sources:  # each with its own negative prompt: only the change differs
        own = replace(params, negative_prompt=source.parts.negative)
        renders += toolbox.renderer.render([source.prompt], [seed], own)
    record = RemixRecord.new(
        kind=kind,
        prompt=composed.prompt,
        negative_prompt=composed.negative_prompt,
        parts=parts.as_dict(),
        cut=composed.cut,
        seed=seed,
        render=renders[0],
        sources=[
            {"role": s.role, "prompt": s.prompt, "run_id": s.run_id, "render": digest}
            for s, digest in zip(sources, renders[1:], strict=True)
        ],
        notes=notes,
        options=run_options.to_dict(),
    )
    remix_dir = save_remix(record, toolbox.settings.home / "remixes", toolbox.store)
    return Remix(
        kind=kind,
        remix_id=record.remix_id,
        remix_dir=remix_dir,
        prompt=composed.prompt,
        negative_prompt=composed.negative_prompt,
        parts=parts,
        cut=composed.cut,
        seed=seed,
        render=toolbox.store.path(renders[0]),
        render_id=renders[0],
        sources=[
            {**source, "render_id": source["render"], "render": toolbox.store.path(digest)}
            for source, digest in zip(record.sources, renders[1:], strict=True)
        ],
        notes=notes,
        report=remix_dir / "report.html",
    )
