"""``arpo invert FOLDER``: a run per image of a folder, and a caption file beside each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arpo.cli.app import err, errors, out, print_json, say, toolbox_for
from arpo.cli.display import BatchProgress


def invert_folder_command(
    folder: Path,
    *,
    out_dir: Path | None,
    recursive: bool,
    caption_extension: str,
    prefix: str,
    overwrite: bool,
    prompt: str | None,
    preset: str | None,
    as_json: bool,
    options: dict[str, Any],
    ray: dict[str, Any] | None = None,
) -> None:
    """Invert every image in ``folder`` through :func:`arpo.api.invert_folder` and say what
    happened: the counts, each image that failed or could not be read, the files written."""
    from arpo import api

    toolbox = toolbox_for(preset)
    progress = BatchProgress()
    with errors(progress.resume_hint), progress:
        summary = api.invert_folder(
            folder,
            out_dir=out_dir,
            recursive=recursive,
            caption_extension=caption_extension,
            prefix=prefix,
            overwrite=overwrite,
            prompt=prompt,
            toolbox=toolbox,
            on_progress=progress.update,
            ray=ray,
            **options,
        )
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    for image in summary.with_status("failed", "unreadable"):
        err.print(
            f"[yellow]{image.status}[/yellow] {image.name}: {image.error}",
            highlight=False,
            soft_wrap=True,
        )
    counts = ", ".join(
        f"{summary.count(status)} {status}"
        for status in ("finished", "skipped", "failed", "unreadable")
        if summary.count(status)
    )
    earlier = summary.already_finished
    earlier = f" ({earlier} by an earlier run of the batch)" if earlier else ""
    out.print(
        f"{len(summary.images)} images: {counts or 'none'}{earlier}; {summary.elapsed_s:.0f} s",
        highlight=False,
    )
    skipped = [i for i in summary.with_status("skipped") if i.error and "caption" in i.error]
    if skipped and not overwrite:
        say(f"{len(skipped)} already had a caption file: --overwrite replaces them")
    for path in (summary.batch_json, summary.batch_csv, summary.report):
        say(str(path))
