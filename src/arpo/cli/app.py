"""The typer app and what every command shares: consoles, the preset option, the Toolbox, and
the one place errors become a line on stderr and an exit code."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from arpo.cli.readable import ReadableTyper
from arpo.config import Settings, describe_setting_problems
from arpo.errors import ArpoError, InvalidSettingError

app = ReadableTyper(
    name="arpo",
    help="Find the prompt inside an image: Automatic Reverse Prompt Optimization.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

PresetOption = Annotated[
    str | None,
    typer.Option(
        "--preset",
        metavar="NAME",
        help="'demo': the offline demo world (procedural renderer, small trained CLIP); "
        "'tiny' (SD 1.5), 'tiny-sdxl', 'tiny-sd3', 'tiny-flux': tiny random-weight models, "
        "smoke tests whose images are noise "
        "(default: ARPO_PRESET, else the configured models; a run's own models when "
        "continuing or remixing a run).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_state: dict[str, bool] = {"verbose": False}


def _print_version(wanted: bool) -> None:
    if wanted:
        out.print(f"arpo {installed_version()}", highlight=False)
        raise typer.Exit()


def installed_version() -> str:
    """arpo's version as installed (package metadata), else the source's ``__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("arpo")
    except PackageNotFoundError:
        from arpo import __version__

        return __version__


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print arpo's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    _state["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if ctx.invoked_subcommand != "serve":  # the server logs; it prints no lines of its own
        from arpo.cli.display import LoadLines
        from arpo.tools.toolbox import listen_to_every_toolbox

        ctx.with_resource(listen_to_every_toolbox(LoadLines(verbose)))


# the options that set a Settings field, to name them as the user typed them
SETTING_OPTIONS = {"preset": "--preset", "allowed_roots": "--root"}


def settings_for(preset: str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with ``--preset`` and other options on top; a bad value
    is one line on stderr and exit 2, naming the option or variable, the value and the valid
    ones."""
    if preset:
        overrides["preset"] = preset
    try:
        return Settings(**overrides)
    except InvalidSettingError as error:
        message = describe_setting_problems(error.problems, SETTING_OPTIONS)
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None


def toolbox_for(preset: str | None) -> Any:
    from arpo.api import get_toolbox

    return get_toolbox(settings_for(preset))


def run_toolbox(preset: str | None) -> Any:
    """For commands that may continue a run: the preset's Toolbox when ``--preset`` is given
    (the api refuses it if the run was made with other models), else None, so the api uses
    the run's own models."""
    return toolbox_for(preset) if preset else None


@contextmanager
def errors(resume_hint: Callable[[], str | None] = lambda: None) -> Iterator[None]:
    """One line per error, and the exit code it asks for; no tracebacks for known errors."""
    try:
        yield
    except ArpoError as error:
        hint = resume_hint()
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        if hint:
            err.print(hint, highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except (typer.Exit, typer.BadParameter):
        raise  # typer prints these (a usage error names its option)
    except KeyboardInterrupt:
        hint = resume_hint()
        err.print("interrupted." + (f" {hint}" if hint else ""), highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    except Exception as error:
        if _state["verbose"]:
            raise
        err.print(
            f"[red]internal error:[/red] {type(error).__name__}: {error} "
            "(rerun with --verbose for the traceback, and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def print_json(data: Any) -> None:
    import json

    out.print_json(json.dumps(data))


def say(text: str) -> None:
    out.print(text, highlight=False, soft_wrap=True)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
