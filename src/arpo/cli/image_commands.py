"""Single model calls: ``generate`` and ``score``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arpo.cli.app import JsonOption, PresetOption, app, err, errors, print_json, say, toolbox_for

OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace existing seed-N.png files in --out.")
]

WIDTH_HELP = "Width (a multiple of the model family's; default: its native square)."
HEIGHT_HELP = "Height (a multiple of the model family's; default: its native square)."


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The prompt to render.")],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FOLDER",
            help="Folder for the images (default: the working directory, where an existing "
            "seed-N.png is kept and the new image is written as seed-N-2.png, -3...).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    count: Annotated[
        int, typer.Option("--count", "-c", help="Images to render (seeds seed..).")
    ] = 1,
    steps: Annotated[int | None, typer.Option(help="Diffusion steps.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    width: Annotated[int | None, typer.Option(help=WIDTH_HELP)] = None,
    height: Annotated[int | None, typer.Option(help=HEIGHT_HELP)] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="Negative prompt.")] = None,
    overwrite: OverwriteOption = False,
    preset: PresetOption = None,
) -> None:
    """Render PROMPT with the configured text-to-image model into FOLDER/seed-N.png. An
    existing file is never replaced without --overwrite: with --out it is refused, without it
    the new image takes the next free name."""
    from arpo import api

    toolbox = toolbox_for(preset)
    with errors(), err.status("rendering..."):
        paths = api.generate(
            prompt,
            seed=seed,
            count=count,
            out_dir=Path(".") if out_dir is None else out_dir,
            overwrite=overwrite,
            keep_existing=out_dir is None,
            toolbox=toolbox,
            steps=steps,
            guidance=guidance,
            width=width,
            height=height,
            negative_prompt=negative_prompt,
        )
    for path in paths:
        say(str(path))


@app.command()
def score(
    image: Annotated[Path, typer.Argument(help="The image to score against.")],
    prompts: Annotated[list[str], typer.Argument(help="One or more prompts.")],
    preset: PresetOption = None,
    as_json: JsonOption = False,
) -> None:
    """CLIP similarity of each PROMPT to IMAGE, best first."""
    from arpo import api

    toolbox = toolbox_for(preset)
    with errors():
        ranked = api.score(image, prompts, toolbox=toolbox)
        unread = api.unknown_words([p for p, _ in ranked], toolbox=toolbox)
    if as_json:
        print_json(
            [{"prompt": p, "score": s, "unknown_words": unread.get(p, [])} for p, s in ranked]
        )
        return
    for prompt, value in ranked:
        say(f"{value:.4f}  {prompt}")
    for prompt, words in unread.items():
        err.print(
            f"[yellow]warning:[/yellow] CLIP {toolbox.scorer.name} does not know "
            f"{', '.join(repr(w) for w in words)} in {prompt!r}: every word outside its "
            "vocabulary reads as one unknown token, so the score ignores it",
            highlight=False,
            soft_wrap=True,
        )
