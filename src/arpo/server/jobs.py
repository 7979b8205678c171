"""The worker side of a tool call: a thread per request, one model lock per Toolbox, progress
relayed as MCP notifications, cancellation checked at iteration boundaries.

Before its first iteration a request hears what its own model work loads ("loading CLIP
demo-clip"), from the Toolbox's load events, before any heavy import.

One process holds one copy of each model on one device, so model work is serialised; a request
that has to wait says so in a progress notification. Waits on other machines (an LLM answer,
images-API renders) free the lock meanwhile (:mod:`arpo.tools.waits`). While the background
warm-up holds the lock (:class:`ModelLoading`), a waiting request relays what it is loading,
at least once a second. A cancelled request stops its run at the next iteration boundary; the
run keeps its checkpoint and ``resume_run`` continues it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
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
from arpo.tools.waits import lets_go_while_waiting

log = logging.getLogger(__name__)

T = TypeVar("T")
WAITING = "waiting for the model (another request is running)"
WAITING_FOR_LOAD = "waiting for the models: "
HEARTBEAT_S = 1.0  # while the warm-up loads, a waiting request hears from it this often

_model_locks: weakref.WeakKeyDictionary[Toolbox, threading.Lock] = weakref.WeakKeyDictionary()
_loadings: weakref.WeakKeyDictionary[Toolbox, ModelLoading] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def model_lock(toolbox: Toolbox) -> threading.Lock:
    """The process-wide lock around model work with ``toolbox`` (one device, one queue)."""
    with _locks_guard:
        return _model_locks.setdefault(toolbox, threading.Lock())


def model_loading(toolbox: Toolbox) -> ModelLoading:
    """The process-wide warm-up state beside :func:`model_lock` for ``toolbox``."""
    lock = model_lock(toolbox)
    with _locks_guard:
        return _loadings.setdefault(toolbox, ModelLoading(lock))


def failure_text(error: BaseException) -> str:
    """What a tool error says about ``error``: arpo's own message (the words the CLI prints),
    or an internal error without a traceback."""
    if isinstance(error, ArpoError):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory; lower the render size or ARPO_RENDER_BATCH_SIZE, and try again."
    return f"internal error: {type(error).__name__}: {error} (the server log has the details)"


class ModelLoading:
    """The background warm-up's side of the model lock: what it is loading, in words, while
    it holds the lock, and how it ended.

    Whether the lock is held and by whom is read together with the message, under one guard,
    so a waiting request never mistakes the warm-up for another request or the reverse."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self._guard = threading.Lock()
        self._message: str | None = None  # set exactly while the warm-up holds the lock
        self._error: BaseException | None = None
        self._error_reported = True
        self.waiting = 0  # requests waiting for the lock
        self.done = threading.Event()  # set while no warm-up is pending or running
        self.done.set()

    def begin(self, message: str) -> bool:
        """Take the lock for the warm-up if it is free (and no request waits for it)."""
        with self._guard:
            if self.waiting or not self.lock.acquire(blocking=False):
                return False
            self._message = message
            return True

    def say(self, message: str) -> None:
        """What the warm-up does now (it holds the lock)."""
        with self._guard:
            self._message = message

    def step(self, message: str) -> None:
        """A point where the warm-up's work may pause: requests waiting for the lock get it
        first, then the warm-up takes it back and goes on with ``message``."""
        with self._guard:
            if not self.waiting:
                self._message = message
                return
            self._message = None
            self.lock.release()
        while not self.begin(message):
            time.sleep(0.05)

    def end(self, error: BaseException | None = None) -> None:
        """The warm-up is over (failed with ``error``); release the lock."""
        with self._guard:
            self._message = None
            self._error = error
            self._error_reported = error is None
            self.lock.release()
        self.done.set()

    def acquire(self) -> tuple[bool, str | None]:
        """For a request: the lock if it is free, else what the warm-up is loading (None when
        another request holds the lock)."""
        with self._guard:
            if self.lock.acquire(blocking=False):
                return True, None
            return False, self._message

    def enter_waiting(self, delta: int) -> None:
        with self._guard:
            self.waiting += delta

    def take_failure(self) -> BaseException | None:
        """The warm-up's error, once: the first request after it reports it."""
        with self._guard:
            if self._error_reported:
                return None
            self._error_reported = True
            return self._error


class Job:
    """One request's worker-thread side: progress out, cancellation in. Holding the model
    lock (:meth:`model`), it relays what ``toolbox`` loads for it."""

    def __init__(
        self,
        lock: threading.Lock,
        loading: ModelLoading | None = None,
        toolbox: Toolbox | None = None,
    ) -> None:
        if loading is not None and loading.lock is not lock:
            raise ValueError("the warm-up state belongs to another model lock")
        self.lock = lock
        self.loading = loading
        self.toolbox = toolbox
        self.cancelled = threading.Event()
        self.events: queue.SimpleQueue[tuple[float, float | None, str]] = queue.SimpleQueue()
        self._waits = 0  # waiting notifications sent: their progress values rise below 1
        self._held = False  # whether this request holds the lock now

    def progress(self, progress: float, total: float | None, message: str) -> None:
        self.events.put((progress, total, message))

    def check(self) -> None:
        if self.cancelled.is_set():
            raise RunCancelled("the request was cancelled")

    @contextmanager
    def model(self) -> Iterator[None]:
        """Hold the model lock, telling the client while it waits: what the warm-up is
        loading (at least every second), or that another request is running (once). While
        the work waits on another machine (an LLM answer, images-API renders:
        :func:`arpo.tools.waits.waiting_on_service`) the lock is free for other requests."""
        self._take()
        try:
            failure = self.loading.take_failure() if self.loading else None
            if failure is not None:
                self.progress(
                    self._wait_value(),
                    None,
                    f"loading the models at start failed ({failure_text(failure)}); trying again",
                )
            self.check()
            with lets_go_while_waiting(self._let_go):
                if self.toolbox is None:
                    yield
                else:
                    with self.toolbox.listen(self.tell):
                        yield
        finally:
            if self._held:
                self._held = False
                self.lock.release()

    def _take(self) -> None:
        if self.loading is None:
            if not self.lock.acquire(blocking=False):
                self.tell(WAITING)
                while not self.lock.acquire(timeout=0.1):
                    self.check()
        else:
            self._wait_with_warm_up(self.loading)
        self._held = True

    @contextmanager
    def _let_go(self) -> Iterator[None]:
        """Free the lock for a wait on another machine; take it back after (a cancellation
        while taking it back raises, the lock not held)."""
        self._held = False
        self.lock.release()
        try:
            yield
        finally:
            self._take()

    def _wait_with_warm_up(self, loading: ModelLoading) -> None:
        held, doing = loading.acquire()
        if held:
            return
        loading.enter_waiting(1)
        try:
            told: str | None = None
            told_at = 0.0
            while not held:
                message = WAITING if doing is None else WAITING_FOR_LOAD + doing
                now = time.monotonic()
                if message != told or (doing is not None and now - told_at >= HEARTBEAT_S):
                    self.tell(message)
                    told, told_at = message, now
                self.check()
                time.sleep(0.05)
                held, doing = loading.acquire()
        finally:
            loading.enter_waiting(-1)

    def _wait_value(self) -> float:
        """0, 1/2, 2/3, ...: rising (as MCP asks of progress), and below the first
        iteration's 1."""
        value = self._waits / (self._waits + 1)
        self._waits += 1
        return value

    def tell(self, message: str) -> None:
        """A notification before the first iteration (waiting, loading, starting)."""
        self.progress(self._wait_value(), None, message)

    def on_run_progress(self) -> Callable[[dict[str, Any]], None]:
        """A run's progress callback: one notification per iteration, with the score the run
        optimises; raises at an iteration boundary once the request is cancelled."""
        total: list[int] = [0]

        def update(event: dict[str, Any]) -> None:
            if event.get("event") == "started":
                total[0] = int(event["iterations"])
                self.tell(f"run {event.get('run_id', '')} started: finding the first prompt")
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
    except (ArpoError, MemoryError) as error:
        raise ToolError(failure_text(error)) from None
    except Exception as error:
        log.exception("tool failed")
        raise ToolError(failure_text(error)) from None


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
