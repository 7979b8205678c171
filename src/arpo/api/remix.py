"""Remixing with models: split a prompt, compose it back, edit it, fuse two sources, vary the
seed. The plain prompt functions are in :mod:`arpo.remix`; this module adds sources (prompts,
finished runs, images), renders and records."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from arpo.api.results import Remix, RemixSide, Variations
from arpo.api.toolboxes import check_same_models, get_toolbox, toolbox_for_run
from arpo.errors import InvalidOptionError

if TYPE_CHECKING:
    from arpo.api.records import RunRecord
    from arpo.api.runs import ProgressCallback
    from arpo.remix.compose import Composed
    from arpo.remix.parts import PromptParts
    from arpo.tools.toolbox import Toolbox

RENDER_OPTIONS = ("negative_prompt", "steps", "guidance", "width", "height")
SourceKind = Literal["run", "image", "prompt"]


@dataclass(frozen=True)
class RemixSource:
    """One prompt a remix starts from: given as text, or a finished run's best prompt."""

    role: str  # original, content or style
    prompt: str
    parts: PromptParts
    run_id: str | None = None
    seed: int | None = None
    render_options: dict[str, Any] | None = None
    kind: SourceKind = "prompt"  # what the caller gave: a prompt, a run id or an image
    given: str | None = None  # that, as text (an image's path; "<bytes>" for raw data)
    run_dir: Path | None = None  # the run's folder: its reference image and report
    run_options: dict[str, Any] | None = None  # the run's options, defaults filled in


def source_kind(source: Any) -> SourceKind:
    """What a remix source names, from its form alone (never by looking at the disk): a run
    id, an image (anything the image resolver reads: a path-like text, base64, a data: or
    http(s) URL, an artifact id, bytes, a PIL image), or else a prompt."""
    from arpo.api.records import RUN_ID
    from arpo.tools.sources import names_image

    if not isinstance(source, str):
        return "image"
    text = source.strip()
    if RUN_ID.fullmatch(text):
        return "run"
    return "image" if names_image(text) else "prompt"


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
    overrides = component_overrides(toolbox)
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
    """``parts`` as one prompt for the configured text-to-image model, as its family's token
    budget says (comma-separated and cut to 75 CLIP tokens for CLIP-encoder models, sentences
    within the T5 limit for long text encoders). Nothing is loaded: without the pipeline's
    tokenizer, T5 tokens are estimated (:func:`arpo.tools.tokens.estimated_tokens`)."""
    from arpo.remix.compose import compose as compose_parts
    from arpo.remix.compose import target_for
    from arpo.tools.tokens import budget_for

    toolbox = toolbox or get_toolbox()
    return compose_parts(parts, target_for(budget_for(toolbox.profile)))


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
    ``use_llm`` and one is configured, else by vocabulary replacement. A run is edited with the
    models it was made with.
    """
    from arpo.remix.edit import apply_instruction_offline
    from arpo.remix.llm import edit_with_llm
    from arpo.remix.parts import alias_notes

    changes = dict(changes or {})
    instruction = (instruction or "").strip()
    if not changes and not instruction:
        raise InvalidOptionError(
            "nothing to change: give component changes (e.g. style='watercolor painting') "
            "and/or an instruction (e.g. 'make it night')."
        )
    toolbox = _toolbox_for([source], toolbox)
    original = _remix_source(source, "original", toolbox, use_llm=use_llm)
    parts, notes = original.parts.with_changes(changes), alias_notes(changes)
    if instruction:
        chat = toolbox.chat if use_llm else None
        if chat is not None:
            parts = edit_with_llm(parts, instruction, chat)
            notes.append(f"instruction applied by the LLM: {instruction}")
        else:
            parts, applied = apply_instruction_offline(
                parts, instruction, toolbox.vocabulary, component_overrides(toolbox)
            )
            notes += applied
    return _finish_remix(
        "edit", [original], parts, notes, seed, toolbox, render_options, use_llm=use_llm
    )


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
    path, bytes or PIL image; see :func:`source_kind`), which is reverse-prompted first with
    ``reverse_options``. Runs are fused with the models they were made with.
    """
    from arpo.remix.edit import fuse_parts

    toolbox = _toolbox_for([content_from, style_from], toolbox)
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
    return _finish_remix(
        "fuse", sides, parts, notes, seed, toolbox, render_options, use_llm=use_llm
    )


def vary(
    source: str,
    *,
    count: int = 4,
    seed: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    toolbox: Toolbox | None = None,
    **render_options: Any,
) -> Variations:
    """Render a prompt (or a finished run's best prompt, with the run's models) with ``count``
    seeds in one batch: seeds ``seed .. seed+count-1``. With no ``seed``, a run's variations
    start from the run's own seed (the first is the run's render), as :func:`edit_prompt`
    does; a prompt's from a random one. With
    ``out_dir`` the images are copied there as ``seed-N.png`` (never over other files unless
    ``overwrite``)."""
    import random

    from arpo.api.rendering import check_targets, copy_out, generate, seed_files

    if not 1 <= count <= 64:
        raise InvalidOptionError(f"count={count}: render 1 to 64 variations at a time.")
    toolbox = _toolbox_for([source], toolbox)
    origin = _remix_source(source, "original", toolbox, use_llm=False)
    first = seed if seed is not None else origin.seed
    if first is None:
        first = random.SystemRandom().randrange(2**31 - count)
    seeds = [first + k for k in range(count)]
    targets = seed_files(out_dir, seeds) if out_dir is not None else None
    if targets is not None:
        check_targets(targets, overwrite)
    options = {**(origin.render_options or {}), **_given(render_options)}
    stored = generate(origin.prompt, seed=first, count=count, toolbox=toolbox, **options)
    return Variations(
        prompt=origin.prompt,
        seeds=seeds,
        renders=copy_out(stored, targets, overwrite) if targets is not None else stored,
        render_ids=[path.stem for path in stored],
    )


def not_drawn(parts: PromptParts, phrases: list[str], toolbox: Toolbox) -> list[str]:
    """Those of ``phrases`` (phrases of ``parts``) the renderer draws nothing for: the prompt
    reads the same to it without them. Only a renderer that can say what it reads from a
    prompt (a ``reading(prompt)`` method, as the demo world's has) tells; for others
    (diffusion models) nothing is claimed and this is empty."""
    from arpo.remix.parts import COMPONENTS

    reading = getattr(toolbox.backend, "reading", None)
    if reading is None or not phrases:
        return []
    whole = reading(compose(parts, toolbox=toolbox).prompt)
    unseen = []
    for phrase in phrases:
        rest = parts.model_copy(
            update={c: [p for p in getattr(parts, c) if p != phrase] for c in COMPONENTS}
        )
        if not rest.is_empty() and reading(compose(rest, toolbox=toolbox).prompt) == whole:
            unseen.append(phrase)
    return unseen


def component_overrides(toolbox: Toolbox) -> dict[str, str]:
    """Vocabulary category -> prompt component, where a preset's vocabulary differs."""
    return dict(toolbox.preset.vocabulary_components) if toolbox.preset else {}


def _given(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(RENDER_OPTIONS))
    if unknown:
        raise InvalidOptionError(
            f"unknown render option(s): {', '.join(unknown)}; known: {', '.join(RENDER_OPTIONS)}."
        )
    return {k: v for k, v in options.items() if v is not None}


def _toolbox_for(sources: list[Any], toolbox: Toolbox | None) -> Toolbox:
    """The given Toolbox, or the process-wide one; with run ids among the sources, the models
    the runs were made with (all of them the same)."""
    records = [_record(source, toolbox) for source in sources if source_kind(source) == "run"]
    if not records:
        return toolbox or get_toolbox()
    chosen = toolbox_for_run(records[0], toolbox)
    check_same_models(records[1:], chosen)
    return chosen


def _record(run_id: str, toolbox: Toolbox | None) -> RunRecord:
    from arpo.api.records import RunRecords
    from arpo.config import Settings

    settings = toolbox.settings if toolbox else Settings()
    return RunRecords(settings.runs_dir).load(run_id.strip())


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
    from arpo.api.runs import reverse_prompt

    kind = source_kind(source)
    if kind == "run":
        return replace(_run_source(source.strip(), role, toolbox), kind="run", given=source.strip())
    if kind == "image":
        if not images:
            raise InvalidOptionError(
                f"the {role} source must be a prompt or a run id, not an image; "
                "reverse-prompt the image first (arpo invert / reverse_prompt)."
            )
        options = {"strategy": "auto", **(reverse_options or {})}
        result = reverse_prompt(source, toolbox=toolbox, on_progress=on_progress, **options)
        found = _run_source(result.run_id, role, toolbox)
        return replace(found, kind="image", given=_given_image(source))
    parts = decompose(source, toolbox=toolbox, use_llm=use_llm)
    return RemixSource(role=role, prompt=source.strip(), parts=parts, given=source.strip())


def _given_image(source: Any) -> str:
    """An image source as the caller named it: its path or URL, else its type."""
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        return text if len(text) <= 300 else f"{text[:80]}... ({len(text)} characters)"
    return f"<{type(source).__name__}>"


def _run_source(run_id: str, role: str, toolbox: Toolbox) -> RemixSource:
    """A finished run's best prompt, its stored decomposition and its render settings."""
    import json

    from arpo.api.records import RunRecords, effective_status
    from arpo.graph.context import RunOptions
    from arpo.remix.parts import PromptParts

    record = RunRecords(toolbox.settings.runs_dir).load(run_id)
    result_file = record.run_dir / "result.json"
    if record.status != "finished" or not result_file.is_file():
        raise InvalidOptionError(
            f"run '{run_id}' is {effective_status(record)}, not finished; continue it with "
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
    return RemixSource(
        role,
        prompt,
        parts,
        run_id,
        options.seed,
        render_options,
        run_dir=record.run_dir,
        run_options=dict(record.options),
    )


def _source_record(source: RemixSource, render: str) -> dict[str, Any]:
    """One source in ``remix.json``: what the caller gave, the prompt used, its render with
    the remix's seed, and for a run (an inverted image's too) its folder and options."""
    record: dict[str, Any] = {
        "role": source.role,
        "kind": source.kind,
        "given": source.given,
        "prompt": source.prompt,
        "run_id": source.run_id,
        "render": render,
    }
    if source.run_dir is not None:
        record["run_dir"] = str(source.run_dir)
        record["run_options"] = source.run_options
    return record


def _remix_settings(toolbox: Toolbox, use_llm: bool) -> dict[str, Any]:
    """What made the remix besides its options: the preset, the models and whether an LLM
    split and edited the prompts (asked for, and configured)."""
    return {
        "preset": toolbox.settings.preset,
        "models": toolbox.describe_models(),
        "llm": bool(use_llm and toolbox.chat is not None),
    }


def _finish_remix(
    kind: str,
    sources: list[RemixSource],
    parts: PromptParts,
    notes: list[str],
    seed: int | None,
    toolbox: Toolbox,
    render_options: dict[str, Any],
    use_llm: bool = True,
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
    unseen = not_drawn(
        parts, [p for p in parts.phrases() if p not in first.parts.phrases()], toolbox
    )
    if unseen:
        notes = [
            *notes,
            f"the renderer cannot show {', '.join(unseen)}: {toolbox.backend.name} draws the "
            "same without it",
        ]
    seed = seed if seed is not None else (first.seed if first.seed is not None else 0)
    options = {**(first.render_options or {}), **_given(render_options)}
    run_options = RunOptions.build(
        toolbox.option_defaults,
        seed=seed,
        **{**options, "negative_prompt": composed.negative_prompt},
    )
    params = run_options.render_params
    toolbox.check_render_params(params)
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
        sources=[_source_record(s, digest) for s, digest in zip(sources, renders[1:], strict=True)],
        notes=notes,
        options={"seed": seed, **{name: getattr(run_options, name) for name in RENDER_OPTIONS}},
        settings=_remix_settings(toolbox, use_llm),
    )
    remix_dir = save_remix(record, toolbox.settings.remixes_dir, toolbox.store)
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
            RemixSide(
                role=side["role"],
                prompt=side["prompt"],
                run_id=side["run_id"],
                render=toolbox.store.path(digest),
                render_id=digest,
                run_report=Path(side["run_dir"]) / "report.html" if side.get("run_dir") else None,
            )
            for side, digest in zip(record.sources, renders[1:], strict=True)
        ],
        notes=notes,
        report=remix_dir / "report.html",
    )
