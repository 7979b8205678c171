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


#: The CLI's thresholds for the cyclic garbage collector (CPython's default: 700, 10, 10).
COLLECTOR_THRESHOLDS = (50_000, 20, 10)


def main() -> None:
    collect_less_often()
    try:
        app()
    except SystemExit as stop:
        leave_quickly(stop.code)
        raise
    leave_quickly(0)


def collect_less_often() -> None:
    """Run the cyclic garbage collector less often in the CLI's process.

    Importing torch, open_clip, transformers and LangGraph creates millions of objects that
    live as long as the process; at CPython's default thresholds the collector scans them
    again and again while they load (``arpo demo``: median 8.12 s with the defaults, 7.22 s
    with these, 7 alternating pairs, every pair faster). Garbage cycles are still collected,
    in larger batches. Only the CLI does this: a program that imports arpo keeps its own
    settings."""
    import gc

    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def leave_quickly(code: int | str | None) -> None:
    """End the process without tearing the interpreter down, once the command is done.

    torch (its ``_dynamo``, which torchvision imports), sympy and transformers leave millions
    of objects; the interpreter's teardown collects and frees them module by module, 0.3-2.5 s
    after a command's last line. Everything a normal exit does for others still happens here:
    the atexit handlers run (logging flushes, Ray shuts down, temporary folders go) and the
    standard streams are flushed; only the teardown is skipped. While another non-daemon
    thread still runs, the normal exit waits for it, so this returns and lets that happen,
    with the objects frozen (:func:`gc.freeze`) so that its collections skip them."""
    import atexit
    import contextlib
    import gc
    import os
    import sys
    import threading

    gc.freeze()
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if any(not t.daemon and t.is_alive() for t in others):
        return
    status = _exit_status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (arpo ... | head)
            stream.flush()
    os._exit(status)


def _exit_status(code: int | str | None) -> int:
    """The status a normal exit gives for ``SystemExit(code)``: a message prints, then 1."""
    import sys

    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
