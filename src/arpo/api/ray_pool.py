"""Run per-item work on a Ray cluster: actors that load the models once, jobs streamed to them.

:func:`run_on_ray` is a generic executor: it knows nothing of folders or captions. It takes
jobs (plain data that pickles), a ``work(job, toolbox) -> result`` function (importable on
the workers, e.g. :func:`arpo.api.batch.invert_one`) and an ``on_result(job, result)``
callback that runs in the driver, in this process, as each result arrives: the driver
writes files, the workers return data.

- Each worker is a Ray actor that builds its own :class:`~arpo.tools.toolbox.Toolbox` from
  the :class:`~arpo.config.Settings` passed in (models are never pickled) and loads the
  models once. By default one actor per GPU of the cluster (one per ``cpus_per_worker``
  CPUs where it has none); ``workers=N`` asks for N, sharing the GPUs when there are some.
- Each worker's torch uses ``cpus_per_worker`` threads (``ARPO_THREADS`` in its settings),
  the CPUs Ray reserves for it.
- At most ``max_in_flight`` jobs wait on one actor (one running, one queued behind it), so
  a fast worker takes more jobs and a dead worker holds few.
- A worker that dies (its process killed, its node gone) loses the job it was running; that
  job and the ones queued behind it go back to the queue for another worker, and a fresh
  actor takes the dead one's place (at most ``max_restarts`` times in all). A job that has
  killed ``max_attempts`` workers is given up (``on_lost``), so one poisonous input cannot
  eat the cluster.

Ray is an optional extra (``pip install 'arpo[ray]'``) imported only here, when called.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from arpo.config import Settings
from arpo.errors import ArpoError, InvalidOptionError

if TYPE_CHECKING:
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

INSTALL_HINT = "pip install 'arpo[ray]'"
MAX_IN_FLIGHT = 2  # jobs waiting on one actor: the one it runs and the next


class RayUnavailableError(ArpoError):
    """Ray is not installed, or the cluster cannot be reached or cannot hold the workers."""


class WorkersLostError(ArpoError):
    """Jobs were given up: each killed the workers that ran it, or no worker was left."""

    def __init__(self, message: str, lost: list[Any]) -> None:
        super().__init__(message)
        self.lost = lost


@dataclass(frozen=True)
class WorkerInfo:
    """Where one worker runs and what it loaded: reported once its models are in memory."""

    index: int  # the worker's number: replacements get new ones
    pid: int
    host: str
    threads: int
    device: str
    load_s: float


@dataclass
class PoolSummary(Generic[J]):
    """What a :func:`run_on_ray` call did."""

    workers: list[WorkerInfo] = field(default_factory=list)  # every worker that loaded
    results: int = 0  # results handed to on_result
    deaths: int = 0  # workers that died
    redone: list[J] = field(default_factory=list)  # jobs a dead worker was running
    lost: list[J] = field(default_factory=list)  # jobs given up (see on_lost)
    why: list[str] = field(default_factory=list)  # why each lost job was given up
    wall_s: float = 0.0  # from the first actor asked for to the last result


def import_ray() -> Any:
    """The ``ray`` module, or an error saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(
            f"running on Ray needs the ray package, which is not installed here ({error}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return ray


class _Worker:
    """The actor's body: one Toolbox, loaded once, running ``work`` on one job at a time."""

    def __init__(self, settings: Settings, work: Callable[[Any, Toolbox], Any], index: int):
        self._settings = settings
        self._work = work
        self._index = index
        self._toolbox: Toolbox | None = None

    def load(self) -> WorkerInfo:
        import torch

        from arpo.tools.devices import resolve_device
        from arpo.tools.toolbox import Toolbox

        began = time.perf_counter()
        toolbox = Toolbox(self._settings)
        toolbox.load_models()
        toolbox.embed_vocabulary()
        self._toolbox = toolbox
        return WorkerInfo(
            index=self._index,
            pid=os.getpid(),
            host=socket.gethostname(),
            threads=torch.get_num_threads(),
            device=resolve_device(self._settings.device),
            load_s=time.perf_counter() - began,
        )

    def run(self, job: Any) -> Any:
        if self._toolbox is None:
            self.load()
        return self._work(job, self._toolbox)


@dataclass
class _Ticket(Generic[J]):
    """A job in the driver's queue, with the number of workers that died running it."""

    job: J
    deaths: int = 0


@dataclass
class _Slot:
    """The driver's view of one actor: its handle and the jobs waiting on it."""

    index: int
    actor: Any
    ready: bool = False
    waiting: list[tuple[Any, _Ticket[Any]]] = field(default_factory=list)  # oldest first


@dataclass(frozen=True)
class WorkerPlan:
    """How many actors, and the CPUs and GPUs (a share, when below 1) each reserves."""

    workers: int
    cpus: float
    gpus: float


def run_on_ray(
    jobs: Iterable[J],
    work: Callable[[J, Toolbox], R],
    on_result: Callable[[J, R], None],
    *,
    settings: Settings | None = None,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: int = 1,
    gpus_per_worker: float | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
    max_attempts: int = 2,
    max_restarts: int | None = None,
    on_lost: Callable[[J, str], None] | None = None,
    on_worker: Callable[[WorkerInfo], None] | None = None,
) -> PoolSummary[J]:
    """Run ``work(job, toolbox)`` for every job on Ray actors; hand each result to
    ``on_result(job, result)`` here, in the order they finish. Returns when every job has a
    result or was given up.

    ``jobs`` is read lazily, one job as a worker has room for it (so taking a job is the
    moment it is sent), and read again after every result: an iterator that ``on_result``
    adds to (a failed job queued once more) has those jobs run too; a generator cannot grow
    once it has ended.

    ``settings``: what each worker builds its Toolbox from (default: this process's); its
    ``threads`` is replaced by ``cpus_per_worker``. ``address``: the cluster (default
    ``settings.ray_address``, ``ARPO_RAY_ADDRESS``; unset: a local Ray instance started for
    this call and stopped after it; an already connected ``ray.init`` is used as it is).
    ``workers``: how many actors (default: one per GPU, else one per ``cpus_per_worker``
    CPUs). ``gpus_per_worker``: default 1 with one actor per GPU, a share of the GPUs with
    ``workers=N`` on a cluster that has some, 0 on one that has none. ``on_worker`` hears
    of each worker once its models are loaded.

    A job whose worker died is redone on another (``summary.redone``) and a fresh actor
    takes the dead one's place (``max_restarts`` in all, by default as many as workers).
    After ``max_attempts`` deaths, or when no worker is left, a job is given up:
    ``on_lost(job, why)``, or without ``on_lost`` a :class:`WorkersLostError` once the other
    jobs are done. A worker that dies before its models load, or an exception raised by
    ``work`` or by loading, stops the call and is raised here.
    """
    _check_numbers(workers, cpus_per_worker, gpus_per_worker, max_in_flight, max_attempts)
    ray = import_ray()
    settings = settings or Settings()
    started_here = _connect(ray, address or settings.ray_address)
    try:
        plan = plan_workers(ray, workers, cpus_per_worker, gpus_per_worker)
        worker_settings = settings.model_copy(update={"threads": cpus_per_worker})
        restarts = plan.workers if max_restarts is None else max_restarts
        pool: _Pool[J, R] = _Pool(ray, plan, worker_settings, work, max_in_flight, restarts)
        summary = pool.run(iter(jobs), on_result, max_attempts, on_worker)
    finally:
        if started_here:
            ray.shutdown()
    _report_lost(summary, on_lost)
    return summary


def _check_numbers(
    workers: int | None,
    cpus_per_worker: int,
    gpus_per_worker: float | None,
    max_in_flight: int,
    max_attempts: int,
) -> None:
    if workers is not None and workers < 1:
        raise InvalidOptionError(f"workers={workers}: give at least 1 (or leave it unset)")
    if cpus_per_worker < 1:
        raise InvalidOptionError(f"cpus_per_worker={cpus_per_worker}: give at least 1")
    if gpus_per_worker is not None and gpus_per_worker < 0:
        raise InvalidOptionError(f"gpus_per_worker={gpus_per_worker}: give 0 or more")
    if max_in_flight < 1:
        raise InvalidOptionError(f"max_in_flight={max_in_flight}: give at least 1")
    if max_attempts < 1:
        raise InvalidOptionError(f"max_attempts={max_attempts}: give at least 1")


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to the cluster; True when a local instance was started here (to stop after)."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address)
            return False
        ray.init(address="local", include_dashboard=False)
    except ConnectionError as error:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address!r} ({error}); start one with "
            "`ray start --head` (or check ARPO_RAY_ADDRESS / --ray)"
        ) from None
    return True


def plan_workers(ray: Any, workers: int | None, cpus: int, gpus: float | None) -> WorkerPlan:
    """How many actors, and what each reserves, on the cluster ``ray`` is connected to:
    ``workers`` (default: one per GPU, else one per ``cpus`` CPUs), ``gpus`` each (default: 1
    with one per GPU, 1/k with up to k per GPU, 0 without GPUs); refused when the cluster
    cannot hold them."""
    total = ray.cluster_resources()
    total_cpus, total_gpus = float(total.get("CPU", 0)), int(total.get("GPU", 0))
    if workers is None:
        count = total_gpus if total_gpus >= 1 else max(1, int(total_cpus // cpus))
    else:
        count = workers
    if gpus is None:
        per_gpu = -(-count // total_gpus) if total_gpus >= 1 else 0  # actors per GPU
        gpus = 1.0 / per_gpu if per_gpu else 0.0
    if count * cpus > total_cpus or count * gpus > total_gpus + 1e-9:
        raise RayUnavailableError(
            f"{count} workers with {cpus} CPUs and {gpus:g} GPUs each do not fit the Ray "
            f"cluster ({total_cpus:g} CPUs, {total_gpus:g} GPUs); ask for fewer workers "
            "(--workers), fewer CPUs each, or add nodes (ray start --address ...)"
        )
    return WorkerPlan(count, float(cpus), gpus)


class _Pool(Generic[J, R]):
    """The driver's loop: the actors, the queue, the refs in flight."""

    def __init__(
        self,
        ray: Any,
        plan: WorkerPlan,
        settings: Settings,
        work: Callable[[J, Toolbox], R],
        max_in_flight: int,
        restarts: int,
    ) -> None:
        self.ray = ray
        self.plan = plan
        self.settings = settings
        self.work = work
        self.max_in_flight = max_in_flight
        self.actor_class = ray.remote(_Worker).options(
            num_cpus=plan.cpus, num_gpus=plan.gpus, max_restarts=0, scheduling_strategy="SPREAD"
        )
        self.slots: list[_Slot] = []
        self.pending: dict[Any, _Slot] = {}  # ref -> the actor it waits on
        self.queue: deque[_Ticket[J]] = deque()  # jobs to redo first, then the next one
        self.started = 0
        self.restarts = restarts  # replacements for dead actors still allowed

    def run(
        self,
        jobs: Iterator[J],
        on_result: Callable[[J, R], None],
        max_attempts: int,
        on_worker: Callable[[WorkerInfo], None] | None,
    ) -> PoolSummary[J]:
        summary: PoolSummary[J] = PoolSummary()
        began = time.perf_counter()
        try:
            for _ in range(self.plan.workers):
                self._start_actor()
            while self._feed(jobs):
                done, _ = self.ray.wait(list(self.pending), num_returns=1)
                for ref in done:
                    if ref in self.pending:  # else its actor died: its jobs are queued again
                        self._settle(ref, summary, on_result, max_attempts, on_worker)
            while self._more(jobs):  # no worker left
                summary.lost.append(self.queue.popleft().job)
                summary.why.append("no Ray worker was left to run it")
        finally:
            for slot in self.slots:
                self.ray.kill(slot.actor)
        summary.wall_s = time.perf_counter() - began
        return summary

    def _start_actor(self) -> None:
        index = self.started
        self.started += 1
        slot = _Slot(index, self.actor_class.remote(self.settings, self.work, index))
        self.slots.append(slot)
        self.pending[slot.actor.load.remote()] = slot

    def _more(self, jobs: Iterator[J]) -> bool:
        """Whether a job is left: one to redo, or the next from the iterator (queued)."""
        if self.queue:
            return True
        try:
            self.queue.append(_Ticket(next(jobs)))
        except StopIteration:
            return False
        return True

    def _feed(self, jobs: Iterator[J]) -> bool:
        """Give each ready actor jobs until ``max_in_flight`` wait on it; False when there is
        nothing to wait for (every job done, or no worker left)."""
        for slot in self.slots:
            while slot.ready and len(slot.waiting) < self.max_in_flight and self._more(jobs):
                ticket = self.queue.popleft()
                ref = slot.actor.run.remote(ticket.job)
                slot.waiting.append((ref, ticket))
                self.pending[ref] = slot
        working = any(slot.waiting for slot in self.slots)
        return working or (bool(self.slots) and self._more(jobs))

    def _settle(
        self,
        ref: Any,
        summary: PoolSummary[J],
        on_result: Callable[[J, R], None],
        max_attempts: int,
        on_worker: Callable[[WorkerInfo], None] | None,
    ) -> None:
        """Take one finished ref: a loaded worker, a result, or a dead worker."""
        slot = self.pending.pop(ref)
        ticket = next((t for r, t in slot.waiting if r == ref), None)
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as error:
            self._bury(slot, error, summary, max_attempts)
            return
        except self.ray.exceptions.RayTaskError as error:
            raise _cause(error, ticket.job if ticket else None) from None
        if ticket is None:  # the actor's load
            slot.ready = True
            summary.workers.append(value)
            log.info("Ray worker %d ready on %s (pid %d)", value.index, value.host, value.pid)
            if on_worker is not None:
                on_worker(value)
            return
        slot.waiting = [(r, t) for r, t in slot.waiting if r != ref]
        summary.results += 1
        on_result(ticket.job, value)

    def _bury(
        self, slot: _Slot, error: Exception, summary: PoolSummary[J], max_attempts: int
    ) -> None:
        """A worker died: the job it ran (the oldest not answered: an answer still on its
        way when the process died is lost with it) counts a death; it and the ones queued
        behind it go back to the front of the queue; a fresh actor takes the dead one's
        place while restarts last."""
        if not slot.ready:
            raise RayUnavailableError(
                f"a Ray worker died before its models were loaded: {error}"
            ) from None
        summary.deaths += 1
        self.slots.remove(slot)
        for ref, _ in slot.waiting:
            self.pending.pop(ref, None)
        log.warning("Ray worker %d died (%s); its jobs go to another", slot.index, error)
        if slot.waiting:
            (_, running), *queued = slot.waiting
            self.queue.extendleft(reversed([t for _, t in queued]))
            running.deaths += 1
            if running.deaths >= max_attempts:
                summary.lost.append(running.job)
                summary.why.append(f"its worker died {running.deaths} times running it")
            else:
                summary.redone.append(running.job)
                self.queue.appendleft(running)
        if self.restarts > 0:
            self.restarts -= 1
            self._start_actor()


def _cause(error: Exception, job: Any) -> BaseException:
    """The exception ``work`` (or loading) raised, as itself when it was rebuilt here."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    where = f"the work on {job!r}" if job is not None else "loading the models"
    return ArpoError(f"{where} failed on a Ray worker: {error}")


def _report_lost(summary: PoolSummary[Any], on_lost: Callable[[Any, str], None] | None) -> None:
    """Hand the lost jobs to ``on_lost``, or raise naming them."""
    why = summary.why
    if on_lost is not None:
        for job, reason in zip(summary.lost, why, strict=True):
            on_lost(job, reason)
        return
    if summary.lost:
        names = ", ".join(repr(job) for job in summary.lost[:5])
        more = f" and {len(summary.lost) - 5} more" if len(summary.lost) > 5 else ""
        raise WorkersLostError(
            f"{len(summary.lost)} job(s) were given up ({'; '.join(dict.fromkeys(why))}): "
            f"{names}{more}; the other "
            "jobs are done. Run again to retry them.",
            summary.lost,
        )
