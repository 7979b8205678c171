"""Reverse-prompt runs: start one, continue one, and the life of its record.

A run is recorded (``running``, with this process's lease) only once its folder and reference
exist; whatever stops it then marks it ``finished``, ``failed`` (with the error) or
``interrupted``, and a killed process leaves a stale lease that the next one takes over. The
graph's checkpoints make ``failed`` and ``interrupted`` runs resumable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arpo.api.images import read_image
from arpo.api.results import Result
from arpo.api.toolboxes import get_toolbox, model_settings, toolbox_for_run
from arpo.config import Settings
from arpo.errors import (
    ArpoError,
    CostLimitReached,
    InvalidOptionError,
    RunBusyError,
    RunCancelled,
)

if TYPE_CHECKING:
    from arpo.api.records import Lease, RunRecord
    from arpo.graph.context import RunOptions
    from arpo.tools.toolbox import Toolbox

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any]], None]


def reverse_prompt(
    image: Any,
    *,
    prompt: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    toolbox: Toolbox | None = None,
    on_progress: ProgressCallback | None = None,
    run_id: str | None = None,
    **options: Any,
) -> Result:
    """Find a prompt that recreates ``image`` (a path, bytes, data URL or PIL image).

    ``prompt`` is an optional starting prompt (else a caption). ``run_id`` is the id the new
    run takes (default: a fresh one): a batch names its runs before they start, so that a
    run interrupted on another machine is continued, not started again. ``options`` are
    :class:`~arpo.graph.context.RunOptions` fields (strategy, iterations, candidates, seed,
    steps, guidance, width, height, ...). The run is checkpointed: if it is interrupted,
    :func:`resume` continues it.
    """
    from arpo.api.records import RunRecord, RunRecords, new_run_id
    from arpo.graph.context import RunOptions, resolve_strategy

    toolbox = toolbox or get_toolbox()
    early = RunOptions.build(toolbox.option_defaults, **options)  # bad options fail first
    strategy = resolve_strategy(early.strategy, toolbox.llm_available)
    picture = read_image(image, toolbox)
    toolbox.load_models()
    run_options = run_options_for(toolbox, picture.size, options)
    run_options = replace(run_options, strategy=strategy)  # type: ignore[arg-type]
    toolbox.check_render_params(run_options.render_params)
    check_max_cost(toolbox, run_options)
    records = RunRecords(toolbox.settings.runs_dir)
    if run_id is not None:
        records.record_path(run_id)  # a malformed id is refused before anything is written
        run_id = run_id.strip()
    reference = toolbox.store.put_image(picture)
    run_id = run_id or new_run_id()
    run_dir = Path(out_dir).expanduser().resolve() if out_dir else records.runs_dir / run_id
    check_out_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(toolbox.store.path(reference), run_dir / "reference.png")
    record = RunRecord(
        run_id=run_id,
        run_dir=run_dir,
        reference=reference,
        options=run_options.to_dict(),
        models={**toolbox.describe_models(), "profile": toolbox.describe_family()},
        initial_prompt=prompt,
        identity=toolbox.model_identity(),
        model_settings=model_settings(toolbox.settings),
    )
    lease = records.create(record)
    state_in = {"reference": reference, "initial_prompt": prompt, "history": []}
    return _run(toolbox, record, lease, run_options, state_in, on_progress)


def run_options_for(
    toolbox: Toolbox, reference_size: tuple[int, int] | None, options: dict[str, Any]
) -> RunOptions:
    """A run's options: the caller's over the model family's defaults, whose size is the
    family's native area at the reference's aspect ratio (rounded to the family's multiple)
    unless the caller sets one (with one side set, the other follows the aspect ratio)."""
    from arpo.graph.context import RunOptions

    defaults = toolbox.option_defaults_for(
        reference_size, width=options.get("width"), height=options.get("height")
    )
    return RunOptions.build(defaults, **options)


def check_max_cost(toolbox: Toolbox, options: RunOptions) -> None:
    """Refuse a ``max_cost`` that the backend cannot meter (no price per image) or that cannot
    pay for the first prompt's renders."""
    if options.max_cost is None:
        return
    price = toolbox.renderer.price_per_image(options.render_params)
    if price is None:
        raise InvalidOptionError(
            f"--max-cost {options.max_cost:g} needs a price per image, and "
            f"{toolbox.describe_models()['t2i']} has none; set ARPO_T2I_PRICE (US dollars per "
            "image), or drop --max-cost."
        )
    first = price * options.images_per_prompt
    if first > options.max_cost + 1e-9:
        raise InvalidOptionError(
            f"--max-cost {options.max_cost:g} cannot pay for the first prompt's "
            f"{options.images_per_prompt} render(s) at ${price:.3f} each (${first:.3f}); raise it."
        )


def resume(
    run_id: str,
    *,
    toolbox: Toolbox | None = None,
    settings: Settings | None = None,
    on_progress: ProgressCallback | None = None,
    max_cost: float | None = None,
) -> Result:
    """Continue an interrupted run from its last checkpoint (finished steps are not redone),
    with the models it was made with (see :func:`~arpo.api.toolboxes.toolbox_for_run`).
    ``max_cost`` replaces the run's limit in US dollars (a run stopped by it goes on with a
    higher one)."""
    from arpo.api.records import RunRecords
    from arpo.graph.context import RunOptions

    base = settings or (toolbox.settings if toolbox else Settings())
    record = RunRecords(base.runs_dir).load(run_id)
    toolbox = toolbox_for_run(record, toolbox, base)
    toolbox.load_models()
    records = RunRecords(toolbox.settings.runs_dir)
    record, lease = records.acquire(record.run_id)
    options = RunOptions(**record.options)
    if max_cost is not None:
        options = replace(options, max_cost=max_cost)
        record = records.update(record.run_id, options=options.to_dict())
    return _run(toolbox, record, lease, options, None, on_progress)


def _run(
    toolbox: Toolbox,
    record: RunRecord,
    lease: Lease,
    options: RunOptions,
    state_in: dict[str, Any] | None,
    on_progress: ProgressCallback | None,
) -> Result:
    """Stream the graph, export the result, and record how it ended."""
    try:
        result = _stream_and_export(toolbox, record, lease, options, state_in, on_progress)
    except (KeyboardInterrupt, RunCancelled) as error:
        lease.end("interrupted", str(error) or type(error).__name__)
        raise
    except ArpoError as error:
        lease.end("failed", str(error))
        raise
    except Exception as error:
        lease.end("failed", f"internal error: {type(error).__name__}: {error}")
        raise
    except BaseException as error:
        lease.end("interrupted", f"{type(error).__name__}: {error}")
        raise
    if result.get("status") == "paused":  # stopped by --max-cost: resumable
        lease.end("interrupted", result.get("pause"))
    else:
        lease.end("finished", None)
    return Result.from_export(record.run_dir, result, options.objective)


def _stream_and_export(
    toolbox: Toolbox,
    record: RunRecord,
    lease: Lease,
    options: RunOptions,
    state_in: dict[str, Any] | None,
    on_progress: ProgressCallback | None,
) -> dict[str, Any]:
    from arpo.api.records import export_run
    from arpo.graph import build_graph
    from arpo.graph.nodes import SpendMeter

    config = {"configurable": {"thread_id": record.run_id}, "recursion_limit": 10_000}
    meter = SpendMeter()
    with _checkpointer(toolbox.settings) as checkpointer:
        graph = build_graph(toolbox, checkpointer, meter=meter)
        if state_in is None and not graph.get_state(config).next:
            _require_checkpoint(graph, config, record)
        stream_in = state_in if state_in is not None else _resume_input(graph, config, record)
        if on_progress is not None:
            on_progress(
                {
                    "event": "started",
                    "run_id": record.run_id,
                    "run_dir": str(record.run_dir),
                    "iterations": options.iterations,
                    "objective": options.objective,
                }
            )
        paused = None
        try:
            for event in graph.stream(stream_in, config, context=options, stream_mode="custom"):
                if lease.lost.is_set():
                    raise RunBusyError(
                        f"another process took run '{record.run_id}' over (this one looked "
                        "stopped); it goes on there."
                    )
                if on_progress is not None:
                    on_progress({"run_id": record.run_id, **event})
        except CostLimitReached as error:
            paused = (
                f"{error}: resume with a higher limit, `arpo invert --resume {record.run_id} "
                "--max-cost DOLLARS`"
            )
            log.warning(paused)
        except BaseException:
            _record_paid(toolbox, record, meter.paid, graph.get_state(config).values)
            raise
        state = graph.get_state(config).values
    if paused is not None:
        state = {**state, "stop_reason": "max_cost"}
    decomposition = _run_decomposition(toolbox, state, options)
    price = toolbox.renderer.price_per_image(options.render_params)
    status = "finished" if paused is None else "paused"
    exported = export_run(
        record, state, toolbox.store, decomposition, price_per_image=price, status=status
    )
    return exported if paused is None else {**exported, "pause": paused}


def _resume_input(graph: Any, config: dict[str, Any], record: RunRecord) -> Any:
    """What a resume streams in: nothing, or where a step failed after rendering, the
    renders it paid for (the state keeps the higher count: :func:`arpo.graph.state.highest`)."""
    from langgraph.types import Command

    counted = graph.get_state(config).values.get("renders_spent", 0)
    if record.renders_paid is not None and record.renders_paid > counted:
        return Command(update={"renders_spent": record.renders_paid})
    return None


def _record_paid(toolbox: Toolbox, record: RunRecord, paid: int, state: dict[str, Any]) -> None:
    """A run stopped by an error: record the renders its failed step paid for, which its
    last checkpoint does not count."""
    from arpo.api.records import RunRecords

    if paid <= state.get("renders_spent", 0):
        return
    try:
        RunRecords(toolbox.settings.runs_dir).update(record.run_id, renders_paid=paid)
    except (OSError, ArpoError):
        log.warning("could not record the renders run %s paid for", record.run_id, exc_info=True)


def _run_decomposition(
    toolbox: Toolbox, state: dict[str, Any], options: RunOptions
) -> dict[str, Any] | None:
    """The best prompt's components, by the phrase vocabulary: no model or LLM call, so
    finishing a run stays instant and cannot fail on a remote service."""
    from arpo.api.remix import component_overrides
    from arpo.remix.decompose import decompose_offline

    prompt = (state.get("best") or {}).get("prompt") or ""
    if not prompt.strip():
        return None
    parts = decompose_offline(
        prompt,
        toolbox.vocabulary,
        negative_prompt=options.negative_prompt,
        overrides=component_overrides(toolbox),
    )
    return parts.as_dict()


def _require_checkpoint(graph: Any, config: dict[str, Any], record: RunRecord) -> None:
    """Resuming a run with no pending step: fine if it has a best prompt (it is exported
    again), else there is nothing to resume from."""
    if graph.get_state(config).values.get("best") is None:
        raise ArpoError(
            f"run '{record.run_id}' has no checkpoint to resume from (it failed before its "
            "first step); start a new run with `arpo invert`."
        )


@contextlib.contextmanager
def _checkpointer(settings: Settings) -> Iterator[Any]:
    from arpo.graph import open_checkpointer

    settings.home.mkdir(parents=True, exist_ok=True)
    saver = open_checkpointer(str(settings.checkpoint_db))
    try:
        yield saver
    finally:
        saver.conn.close()


def check_out_dir(run_dir: Path) -> None:
    """A new run's folder must be new or empty: a run never writes over other files."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InvalidOptionError(f"--out {run_dir} is a file; give a new or empty folder.")
    if not run_dir.is_dir():
        return
    present = sorted(child.name for child in run_dir.iterdir())
    if not present:
        return
    shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
    hint = ""
    if "result.json" in present or "reference.png" in present:
        hint = (
            " It holds a run: see `arpo runs list`, and continue one with "
            "`arpo invert --resume RUN_ID`."
        )
    raise InvalidOptionError(
        f"--out {run_dir} already holds files ({shown}); give a new or empty folder.{hint}"
    )


def best_scores(event: dict[str, Any]) -> str:
    """The best prompt's scores in a progress event, the run's objective first and the other
    labelled beside it: ``image 0.9560 (text 0.5812)``. With the image objective the text
    score of the image-best prompt may fall while the search improves, so it comes second."""
    from arpo.objective import other_objective

    objective = event.get("objective") or "text"
    other = other_objective(objective)
    first = event.get(f"best_{objective}_score")
    second = event.get(f"best_{other}_score")
    shown = f"{objective} {_score(first)}"
    return shown if second is None else f"{shown} ({other} {_score(second)})"


def _score(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"
