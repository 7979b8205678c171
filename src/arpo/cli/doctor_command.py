"""``arpo doctor``: is this machine ready for a run? One line per check, with the fix."""

from __future__ import annotations

import typer

from arpo.cli.app import JsonOption, PresetOption, app, errors, out, print_json, settings_for


@app.command()
def doctor(preset: PresetOption = None, as_json: JsonOption = False) -> None:
    """Check Python and the libraries, the device and dtype, the data folder and its disk, the
    text-to-image model (offline too) and its family, the CLIP model, the LLM endpoint and its
    structured-output method, and the server's image folders. Downloads and loads nothing.
    Exit code 0 when a run can go ahead, 1 otherwise."""
    from rich.markup import escape

    from arpo import api

    with errors():
        diagnosis = api.doctor(settings_for(preset))
    if as_json:
        print_json([check.model_dump() for check in diagnosis.checks])
    else:
        width = max(len(check.check) for check in diagnosis.checks)
        for check in diagnosis.checks:
            mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
            fix = f" [yellow]-> fix:[/yellow] {escape(check.fix)}" if check.fix else ""
            out.print(
                f"{mark} {check.check:<{width}}  {escape(check.detail)}{fix}",
                highlight=False,
                soft_wrap=True,
                markup=True,
            )
    raise typer.Exit(0 if diagnosis.ok else 1)
