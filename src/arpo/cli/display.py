"""Live displays on stderr: what the models' loading does, a run's iterations, a bench's pairs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, Self

from arpo.cli.app import err


class LoadLines:
    """What loading the models does, one line each on stderr as it starts ("loading CLIP
    demo-clip"), so a command is never silent while torch imports; a run of messages that
    differ only in their counts ("embedding the phrase vocabulary (256/4494 phrases)")
    prints once, and "loaded ... in N s" only with ``--verbose``."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self._last = ""

    def __call__(self, message: str) -> None:
        if message.startswith("loaded ") and not self.verbose:
            return
        topic = message.split(" (")[0]
        if topic == self._last:
            return
        self._last = topic
        err.print(f"[dim]{message}[/dim]", highlight=False, soft_wrap=True)


@contextmanager
def control_echo_off(stream: IO[str]) -> Iterator[None]:
    """While a live display redraws its line, the terminal must not echo Ctrl-C as "^C": at
    the end of a full-width line the echo wraps, and the wrapped copy of the line stays on
    screen above the redrawn one (the last progress line printed twice). Clears ECHOCTL on
    ``stream``'s terminal, and restores it; does nothing where ``stream`` is no terminal."""
    try:
        import termios
    except ImportError:  # Windows
        yield
        return
    try:
        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, AttributeError, termios.error):
        yield  # no terminal: a pipe, a file, a test's buffer
        return
    quiet = list(saved)
    quiet[3] &= ~termios.ECHOCTL
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


class LiveDisplay:
    """A rich ``Progress`` display, used as a context manager.

    The display goes live with its first bar (:meth:`show`), not on entering: while the models
    load there is nothing to draw, and its redraws (ten a second, in a thread) would compete
    for the interpreter with the imports (0.5 s more to ``arpo demo`` in a terminal)."""

    progress: Any
    _quiet_echo: AbstractContextManager[None] | None = None

    def __enter__(self) -> Self:
        self._quiet_echo = control_echo_off(self.progress.console.file)
        self._quiet_echo.__enter__()
        return self

    def show(self) -> None:
        """Go live (once): the first bar is about to be added."""
        self.progress.start()

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # stopping a display that never went live is a no-op
        if self._quiet_echo is not None:
            self._quiet_echo.__exit__(None, None, None)


class BenchProgress(LiveDisplay):
    """One bar over every (image, method) pair of a bench."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]bench"),
            MofNCompleteColumn(),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"),
            console=err,
        )
        self.task: Any = None

    def update(self, event: dict[str, Any]) -> None:
        if event.get("event") == "started":
            self.show()
            self.task = self.progress.add_task("bench", total=event["total"], last="")
        elif event.get("event") == "pair" and self.task is not None:
            last = f"{event['method']} on {event['image']}: {event['status']}"
            self.progress.update(self.task, completed=event["done"], last=last)


class RunProgress(LiveDisplay):
    """Live display of a run: iteration bar, the best prompt's scores (the objective's first),
    the current prompt."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        self.run_id: str | None = None
        self.progress = Progress(
            TextColumn("[bold]iteration", table_column=Column(no_wrap=True)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            BarColumn(bar_width=16),
            TextColumn("best {task.fields[best]}", table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TextColumn(
                "{task.fields[prompt]}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=err,
            transient=False,
            expand=True,
        )
        self.task: Any = None

    def update(self, event: dict[str, Any]) -> None:
        from arpo.api.runs import best_scores

        if event.get("event") == "started":
            self.run_id = event.get("run_id", self.run_id)
            self.show()
            self.task = self.progress.add_task(
                "run", total=event["iterations"], best="-", prompt="captioning..."
            )
            run_dir = Path(event["run_dir"])
            console = self.progress.console  # paths on one line, to copy whole
            console.print(f"run {self.run_id} -> {run_dir}", highlight=False, soft_wrap=True)
            console.print(
                f"reference image: {run_dir / 'reference.png'}", highlight=False, soft_wrap=True
            )
            return
        if self.task is None:
            return
        self.progress.update(
            self.task,
            completed=event.get("iteration", 0) + 1,
            best=best_scores(event),
            prompt=event.get("prompt") or "",
        )

    def resume_hint(self) -> str | None:
        """Shown after an error or Ctrl-C, only once the run has started (so it exists and
        is resumable); the command it names uses the run's own models."""
        if self.run_id is None:
            return None
        return f"The run is saved; continue it with: arpo invert --resume {self.run_id}"


class BatchProgress(LiveDisplay):
    """One bar over every image of a batch, with the time left, the image being run (its
    iteration and best score) or the last image's outcome."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        self.progress = Progress(
            TextColumn("[bold]images", table_column=Column(no_wrap=True)),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            BarColumn(bar_width=20),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            TextColumn("eta", table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            TextColumn(
                "{task.fields[now]}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=err,
            expand=True,
        )
        self.task: Any = None
        self.out_dir: str | None = None

    def update(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "batch_started":
            self.out_dir = event["out_dir"]
            self.show()
            self.task = self.progress.add_task(
                "batch", total=event["total"], completed=event["done"], now=""
            )
            self.progress.console.print(f"batch -> {self.out_dir}", highlight=False, soft_wrap=True)
        elif self.task is None:
            return
        elif kind == "run":
            self.progress.update(self.task, now=_run_line(event["image"], event["run"]))
        elif kind == "image":
            line = f"{event['image']}: {event['status']}"
            self.progress.update(self.task, completed=event["done"], now=line)

    def resume_hint(self) -> str | None:
        if self.out_dir is None:
            return None
        return (
            f"The batch is saved in {self.out_dir}; run the same command again to continue it "
            "(finished images are skipped, an interrupted run continues)."
        )


def _run_line(image: str, event: dict[str, Any]) -> str:
    from arpo.api.runs import best_scores

    if event.get("event") == "started":
        return f"{image}: captioning..."
    if "iteration" not in event:
        return image
    return f"{image}: iteration {event['iteration'] + 1}, best {best_scores(event)}"
