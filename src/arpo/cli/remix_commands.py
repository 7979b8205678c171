"""Remixing: ``edit``, ``fuse``, ``vary``. A run id as source remixes with the run's models."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from arpo.cli.app import (
    JsonOption,
    PresetOption,
    app,
    err,
    errors,
    out,
    print_json,
    run_toolbox,
    say,
)
from arpo.cli.display import RunProgress
from arpo.cli.image_commands import OverwriteOption

SeedOption = Annotated[int | None, typer.Option(help="Seed (default: the original run's, else 0).")]


def _changes(values: list[str]) -> dict[str, str]:
    changes = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(
                f"'{value}' is not COMPONENT=TEXT (e.g. --set style='ukiyo-e woodblock print')."
            )
        changes[name.strip()] = text
    return changes


def _print_remix(remix: Any, as_json: bool) -> None:
    if as_json:
        print_json(remix.model_dump(mode="json"))
        return
    for source in remix.sources:
        say(f"{source.role}: {source.prompt}")
        if source.run_report is not None:
            say(f"  run {source.run_id}: {source.run_report}")
    say(f"[bold]{remix.kind}:[/bold] {remix.prompt}")
    for note in remix.notes:
        say(f"  {note}")
    say(f"render (seed {remix.seed}): {remix.render}")
    say(f"report: {remix.report}")


@app.command()
def edit(
    source: Annotated[str, typer.Argument(help="A prompt, or the id of a finished run.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            metavar="COMPONENT=TEXT",
            help="Replace a component: COMPONENT=TEXT (content, setting, composition, medium, "
            "style, lighting, palette, detail, negative); repeatable; empty TEXT clears it.",
        ),
    ] = None,
    instruction: Annotated[
        str | None, typer.Option("--instruction", "-i", help="Free text, e.g. 'make it night'.")
    ] = None,
    seed: SeedOption = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Edit offline.")] = False,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change parts of a prompt (or of a run's best prompt) and render it with the same seed."""
    from arpo import api

    changes = _changes(set_ or [])
    toolbox = run_toolbox(preset)
    with errors(), err.status("editing..."):
        remix = api.edit_prompt(
            source,
            changes,
            instruction,
            seed=seed,
            toolbox=toolbox,
            use_llm=not no_llm,
        )
    _print_remix(remix, as_json)


@app.command()
def fuse(
    content_from: Annotated[
        str, typer.Argument(help="Content source: an image file, a run id or a prompt.")
    ],
    style_from: Annotated[
        str, typer.Argument(help="Style source: an image file, a run id or a prompt.")
    ],
    seed: SeedOption = None,
    iterations: Annotated[
        int | None, typer.Option(help="Iterations when an image is reverse-prompted first.")
    ] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Decompose offline.")] = False,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """The content of CONTENT_FROM in the medium, style, lighting and palette of STYLE_FROM."""
    from arpo import api
    from arpo.api.remix import source_kind

    toolbox = run_toolbox(preset)
    images = [
        (role, side)
        for side, role in ((content_from, "content"), (style_from, "style"))
        if source_kind(side) == "image"
    ]
    progress = _InversionProgress(images, {"content": content_from, "style": style_from})
    with errors(progress.resume_hint), progress.runs if images else err.status("fusing..."):
        remix = api.fuse(
            content_from,
            style_from,
            seed=seed,
            toolbox=toolbox,
            use_llm=not no_llm,
            reverse_options={"iterations": iterations},
            on_progress=progress.update,
        )
    _print_remix(remix, as_json)


class _InversionProgress:
    """The run display of ``arpo invert`` for each image a fusion reverse-prompts first,
    each announced with its role and place ("reverse-prompting the style image, 2 of 2")."""

    def __init__(self, images: list[tuple[str, str]], sources: dict[str, str]) -> None:
        self.images, self.started, self.runs = images, 0, RunProgress()
        self.sources = dict(sources)  # role -> what fuse was given, then the run made of it

    def update(self, event: dict[str, Any]) -> None:
        starting = event.get("event") == "started" and self.started < len(self.images)
        if starting:
            role, given = self.images[self.started]
            self.started += 1
            self.runs.progress.console.print(
                f"reverse-prompting the {role} image, {self.started} of {len(self.images)}: "
                f"{given}",
                highlight=False,
            )
        self.runs.update(event)
        if starting and self.runs.run_id is not None:
            self.sources[self.images[self.started - 1][0]] = self.runs.run_id

    def resume_hint(self) -> str | None:
        """After an error or Ctrl-C in an inversion: continue that run, then fuse the runs
        (a run id is a source), so nothing already found is searched for again."""
        hint = self.runs.resume_hint()
        if hint is None:
            return None
        again = (
            f"arpo fuse {shlex.quote(self.sources['content'])} {shlex.quote(self.sources['style'])}"
        )
        return f"{hint}; then fuse with: {again}"


@app.command()
def vary(
    source: Annotated[str, typer.Argument(help="A prompt, or the id of a finished run.")],
    count: Annotated[int, typer.Option("--count", "-c", help="Variations (seeds).")] = 4,
    seed: Annotated[
        int | None,
        typer.Option(help="First seed (default: the run's seed for a run id, else random)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FOLDER", help="Copy the images into this folder."),
    ] = None,
    overwrite: OverwriteOption = False,
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render a prompt (or a run's best prompt) with COUNT seeds in one batch."""
    from arpo import api

    toolbox = run_toolbox(preset)
    with errors(), err.status("rendering variations..."):
        result = api.vary(
            source,
            count=count,
            seed=seed,
            out_dir=out_dir,
            overwrite=overwrite,
            toolbox=toolbox,
        )
    if as_json:
        images = [
            {"seed": s, "path": str(p)} for s, p in zip(result.seeds, result.renders, strict=True)
        ]
        out.print_json(data={"prompt": result.prompt, "images": images})
        return
    for image_seed, path in zip(result.seeds, result.renders, strict=True):
        say(f"seed {image_seed}: {path}")
