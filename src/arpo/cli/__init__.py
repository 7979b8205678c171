"""The ``arpo`` command line: a thin adapter over :mod:`arpo.api`.

Errors arpo understands print as one line on stderr with a non-zero exit code; ``--verbose``
adds logs (and tracebacks for unexpected errors). One module per group of commands; importing
them registers the commands on :data:`app`.
"""

from __future__ import annotations

from arpo.cli import (  # noqa: F401 - registers the commands
    bench_command,
    doctor_command,
    image_commands,
    remix_commands,
    run_commands,
    serve_command,
)
from arpo.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    finally:
        leave_quickly()


def leave_quickly() -> None:
    """Let the interpreter end without garbage-collecting what the imports made.

    torch (its ``_dynamo``, which torchvision imports), sympy and transformers leave millions
    of objects; Python's exit collects them again and again while it tears the modules down,
    1.5-2.5 s after a command's last line here. Frozen objects (:func:`gc.freeze`) are
    skipped by those collections; everything else still happens (atexit, flushed files)."""
    import gc

    gc.freeze()
