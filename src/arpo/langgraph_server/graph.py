"""The graph ``langgraph.json`` serves: ``store_image -> reverse_prompt -> present``.

``reverse_prompt`` is one node that makes a normal arpo run (:func:`arpo.api.reverse_prompt`):
the run's own checkpoints, record and report are where every other run's are, so
``arpo runs list`` shows it and ``arpo invert --resume`` continues it; each iteration reaches
the client as a ``custom`` stream event. Models load once per server process, on the first run
(:func:`arpo.api.get_toolbox`, from ``ARPO_*`` settings); runs take turns on them.

LangGraph Server shows a client the message of a node's exception only for built-in types such
as ``ValueError`` (others read "An internal error occurred"), so arpo's errors leave each node
as a ``ValueError`` of the same name and message (:func:`for_the_client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from arpo import api
from arpo.errors import ArpoError, RunCancelled
from arpo.langgraph_server.schemas import (
    RunOptionsGiven,
    StudioInput,
    StudioOutput,
    StudioState,
    given_options,
)

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph
    from PIL import Image

_ONE_RUN_AT_A_TIME = threading.Lock()  # one process, one set of models


@functools.cache
def _client_class(error_type: type[ArpoError]) -> type[ValueError]:
    return type(error_type.__name__, (ValueError,), {"__module__": __name__})


@contextlib.contextmanager
def for_the_client() -> Iterator[None]:
    """Re-raise an :class:`~arpo.errors.ArpoError` as a ``ValueError`` of the same name and
    message (chained to it), which LangGraph Server passes to the client as it is."""
    try:
        yield
    except ArpoError as error:
        raise _client_class(type(error))(str(error)) from error


def store_image(state: StudioState) -> dict[str, Any]:
    """Resolve the input image through the one resolver, confined to the allowed roots as for
    any remote caller, and keep it in the artifact store; the input becomes its artifact id,
    so later checkpoints do not carry the pixels again."""
    from arpo.tools.sources import policy_from_settings, resolve_image

    with for_the_client():
        toolbox = api.get_toolbox()
        policy = policy_from_settings(toolbox.settings)
        picture = resolve_image(state.get("image") or "", policy, toolbox.store)
        reference = toolbox.store.put_image(picture)
    return {"reference": reference, "image": reference}


async def reverse_prompt(state: StudioState, runtime: Runtime[Any]) -> dict[str, Any]:
    """A normal arpo run on the stored image, with the options the client gave over the
    preset's and model family's defaults; its progress events go to the ``custom`` stream.

    The run works in a thread. When the client cancels the LangGraph run, the run stops at
    its next progress event (an iteration at most), records itself ``interrupted`` (so
    ``arpo invert --resume`` continues it), and only then does the node give up."""
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()

    def on_progress(event: dict[str, Any]) -> None:
        if cancelled.is_set():
            raise RunCancelled("the LangGraph run was cancelled")
        loop.call_soon_threadsafe(runtime.stream_writer, event)

    options = given_options(runtime.context)
    work = asyncio.ensure_future(asyncio.to_thread(_run, state, on_progress, options))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        cancelled.set()
        with contextlib.suppress(BaseException):
            await work  # the run records how it ended before the node goes
        raise


def _run(
    state: StudioState, on_progress: Callable[[dict[str, Any]], None], options: dict[str, Any]
) -> dict[str, Any]:
    with for_the_client():
        toolbox = api.get_toolbox()
        picture = toolbox.store.get_image(state["reference"])
        with _ONE_RUN_AT_A_TIME:
            result = api.reverse_prompt(
                picture,
                prompt=state.get("prompt") or None,
                toolbox=toolbox,
                on_progress=on_progress,
                **options,
            )
    return _answer(result)


def present(state: StudioState) -> dict[str, Any]:
    """Base64 previews a client can show: the reference beside the best render, and the best
    render alone (each within :data:`~arpo.tools.previews.PREVIEW_MAX_BYTES`)."""
    from arpo.tools.previews import side_by_side

    with for_the_client():
        store = api.get_toolbox().store
        best = store.get_image(state["best_render_id"])
        reference = store.get_image(state["reference"])
    return {
        "previews": {
            "side_by_side": _data_url(side_by_side(reference, best)),
            "best_render": _data_url(best),
        }
    }


def build_studio_graph() -> CompiledStateGraph:
    """The LangGraph Server graph, compiled without a checkpointer (the server has its own)."""
    builder: StateGraph[Any, Any, Any, Any] = StateGraph(
        StudioState,
        context_schema=RunOptionsGiven,
        input_schema=StudioInput,
        output_schema=StudioOutput,
    )
    builder.add_node("store_image", store_image)
    builder.add_node("reverse_prompt", reverse_prompt)
    builder.add_node("present", present)
    builder.add_edge(START, "store_image")
    builder.add_edge("store_image", "reverse_prompt")
    builder.add_edge("reverse_prompt", "present")
    builder.add_edge("present", END)
    return builder.compile(name="arpo")


def _answer(result: api.Result) -> dict[str, Any]:
    """The run's answer as the output schema has it, with ``file://`` links to its files."""
    fields = set(StudioOutput.__annotations__) - {"links", "previews", "best_score"}
    files = {
        "report": result.report,
        "best_render": result.best_render,
        "reference": result.reference,
        "run_dir": result.run_dir,
    }
    return {
        **result.model_dump(mode="json", include=fields),
        "best_score": result.best_score,
        "links": {name: Path(path).resolve().as_uri() for name, path in files.items()},
    }


def _data_url(image: Image.Image) -> str:
    import base64

    from arpo.tools.previews import encode_preview

    preview = encode_preview(image)
    return f"data:{preview.mime_type};base64,{base64.b64encode(preview.data).decode('ascii')}"


graph = build_studio_graph()
