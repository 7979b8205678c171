"""The worker side of a tool call: a thread per request, one model lock per Toolbox, progress
relayed as MCP notifications, cancellation checked at iteration boundaries.

One process holds one copy of each model on one device, so model work is serialised; a request
that has to wait says so in a progress notification. A cancelled request stops its run at the
next iteration boundary; the run keeps its checkpoint and ``resume_run`` continues it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from arpo.api.runs import best_scores
from arpo.errors import ArpoError, RunCancelled
from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

T = TypeVar("T")
WAITING = "waiting for the model (another request is running)"

_model_locks: weakref.WeakKeyDictionary[Toolbox, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def model_lock(toolbox: Toolbox) -> threading.Lock:
    """The process-wide lock around model work with ``toolbox`` (one device, one queue)."""
    with _locks_guard:
        return _model_locks.setdefault(toolbox, threading.Lock())


class Job:
    """One request's worker-thread side: progress out, cancellation in."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.cancelled = threading.Event()
        self.events: queue.SimpleQueue[tuple[float, float | None, str]] = queue.SimpleQueue()

    def progress(self, progress: float, total: float | None, message: str) -> None:
        self.events.put((progress, total, message))

    def check(self) -> None:
        if self.cancelled.is_set():
            raise RunCancelled("the request was cancelled")

    @contextmanager
    def model(self) -> Iterator[None]:
        """Hold the model lock, telling the client while it waits."""
        if not self.lock.acquire(blocking=False):
            self.progress(0, None, WAITING)
            while not self.lock.acquire(timeout=0.1):
                self.check()
        try:
            self.check()
            yield
        finally:
            self.lock.release()

    def on_run_progress(self) -> Callable[[dict[str, Any]], None]:
        """A run's progress callback: one notification per iteration, with the score the run
        optimises; raises at an iteration boundary once the request is cancelled."""
        total: list[int] = [0]

        def update(event: dict[str, Any]) -> None:
            if event.get("event") == "started":
                total[0] = int(event["iterations"])
                return
            self.check()  # at an iteration boundary: the run stops here, checkpointed
            done = int(event.get("iteration", 0)) + 1
            message = (
                f"iteration {done}/{total[0]}: best {best_scores(event)} "
                f"- {event.get('best_prompt', '')}"
            )
            self.progress(done, total[0] or None, message)

        return update


async def run_job(ctx: Context | None, work: Callable[[Job], T], job: Job) -> T:
    """Run ``work`` in a thread; relay its progress; on cancellation, stop it and wait.

    arpo's errors become tool errors the model can read; anything else is logged and reported
    as an internal error, without a traceback."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="arpo-tool") as pool:
        future = pool.submit(work, job)
        try:
            while not future.done():
                await _relay(ctx, job)
                await anyio.sleep(0.02)
            await _relay(ctx, job)
        except anyio.get_cancelled_exc_class():
            job.cancelled.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(concurrent.futures.wait, [future])
            raise
    try:
        return future.result()
    except RunCancelled:
        raise ToolError("cancelled; the run is saved and resume_run continues it.") from None
    except ArpoError as error:
        raise ToolError(str(error)) from None
    except MemoryError:
        raise ToolError(
            "out of memory; lower the render size or ARPO_RENDER_BATCH_SIZE, and try again."
        ) from None
    except Exception as error:
        log.exception("tool failed")
        raise ToolError(
            f"internal error: {type(error).__name__}: {error} (the server log has the details)"
        ) from None


async def _relay(ctx: Context | None, job: Job) -> None:
    while True:
        try:
            progress, total, message = job.events.get_nowait()
        except queue.Empty:
            return
        if ctx is not None:
            try:
                await ctx.report_progress(progress, total, message)
            except Exception:  # a client gone away must not fail the work
                log.debug("progress notification failed", exc_info=True)
