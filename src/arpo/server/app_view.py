"""The interactive view (MCP Apps, the ``io.modelcontextprotocol/ui`` extension, SEP-1865).

One self-contained HTML app, ``ui://arpo/run`` (``app_ui/run.html``), that hosts such as
Claude and ChatGPT render in a sandboxed frame beside the results of ``reverse_prompt``,
``resume_run``, ``get_run`` and the remix tools: the run (reference, best render, score curve,
every iteration), the best prompt's components to edit and re-render, variations, and the fuse
view content | style | fused. It needs no network (an empty CSP: the host's restrictive
default) and no permissions; images reach it as data URLs from the two app-only tools here.

Only a client that negotiates the extension (``capabilities.extensions`` names it with the
``text/html;profile=mcp-app`` MIME type) sees any of it: :class:`AppsNegotiation` removes the
extension from other clients' ``initialize`` answer, the ``_meta.ui`` keys from their
``tools/list``, the app-only tools from it (which answer them as unknown tools) and the
``ui://`` resource from ``resources/list``. Tool results are the same for every client.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from importlib import resources
from typing import Annotated, Any

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID, Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from arpo import api
from arpo.server.jobs import Job, run_job
from arpo.server.schemas import RunDetailsOutput
from arpo.server.state import ServerState
from arpo.tools.previews import encode_preview

APP_URI = "ui://arpo/run"
RUN_VIEW_TOOL = "run_view"
PREVIEWS_TOOL = "artifact_previews"
APP_ONLY_TOOLS = frozenset({RUN_VIEW_TOOL, PREVIEWS_TOOL})
THUMBNAIL_SIDE = 256
THUMBNAIL_BYTES = 60_000
MAX_PREVIEWS = 16
UI_META_KEYS = ("ui", "ui/resourceUri")


def ui_meta() -> dict[str, Any]:
    """The ``_meta`` of a model-visible tool whose results the app shows: the current
    ``ui.resourceUri`` and the flat ``ui/resourceUri`` key hosts from before the stable
    spec read."""
    return {"ui": {"resourceUri": APP_URI}, "ui/resourceUri": APP_URI}


def app_html() -> str:
    return resources.files("arpo.server").joinpath("app_ui/run.html").read_text("utf-8")


class RunView(BaseModel):
    run: RunDetailsOutput | None = Field(
        description="The run (as get_run); null: no run id given and none is running."
    )
    images: dict[str, str] = Field(
        description="Artifact id -> data URL thumbnail of the reference, the best render and "
        "every step's render."
    )


class Previews(BaseModel):
    images: dict[str, str] = Field(description="Artifact id -> data URL thumbnail.")


def build_apps(state: ServerState) -> Apps:
    """The extension: the app resource and the two tools only the app calls."""
    apps = Apps()
    apps.add_html_resource(
        APP_URI,
        app_html(),
        name="arpo run view",
        title="arpo: a run and its remixes",
        description="Reference and best render, the score curve, every iteration, the best "
        "prompt's components to edit and render again, variations, and content | style | "
        "fused.",
        csp=ResourceCsp(),  # no domains at all: nothing outside the frame is reached
        prefers_border=True,
    )

    @apps.tool(
        resource_uri=APP_URI,
        visibility=["app"],
        name=RUN_VIEW_TOOL,
        title="A run for the view",
        description="For the arpo view: a run's details (as get_run) with thumbnails of its "
        "images; without run_id, the run now in progress (polled while reverse_prompt runs).",
    )
    async def run_view(
        ctx: Context,
        run_id: Annotated[
            str | None, Field(description="Run id (default: the running one).")
        ] = None,
    ) -> RunView:
        _refuse_unless_negotiated(ctx, state, RUN_VIEW_TOOL)

        def work(job: Job) -> RunView:
            chosen = run_id or _running_run_id(state)
            if chosen is None:
                return RunView(run=None, images={})
            details = RunDetailsOutput.of(api.run_details(chosen, settings=state.settings))
            ids = [details.reference, details.best_render] + [s.render for s in details.history]
            return RunView(run=details, images=_thumbnails(state, ids))

        return await run_job(None, work, state.job())

    @apps.tool(
        resource_uri=APP_URI,
        visibility=["app"],
        name=PREVIEWS_TOOL,
        title="Thumbnails for the view",
        description="For the arpo view: small data-URL thumbnails of artifacts by id.",
    )
    async def artifact_previews(
        ctx: Context,
        artifact_ids: Annotated[
            list[str], Field(max_length=MAX_PREVIEWS, description="Artifact ids (64 hex).")
        ],
    ) -> Previews:
        _refuse_unless_negotiated(ctx, state, PREVIEWS_TOOL)

        def work(job: Job) -> Previews:
            return Previews(images=_thumbnails(state, artifact_ids))

        return await run_job(None, work, state.job())

    return apps


def _refuse_unless_negotiated(ctx: Context, state: ServerState, name: str) -> None:
    """An app-only tool is unknown to a client without the extension (as it is to its
    ``tools/list``), and to every client with the view turned off."""
    if not (state.settings.app_view and client_supports_apps(ctx)):
        raise ToolError(f"Unknown tool: {name}")


def _running_run_id(state: ServerState) -> str | None:
    """The newest run in progress (runs queue on the model lock: usually the only one)."""
    for brief in api.list_runs(5, settings=state.settings).runs:
        if brief.status == "running":
            return brief.run_id
    return None


def _thumbnails(state: ServerState, artifact_ids: list[str | None]) -> dict[str, str]:
    images: dict[str, str] = {}
    for artifact_id in artifact_ids:
        if not artifact_id or artifact_id in images:
            continue
        picture = state.toolbox.store.get_image(artifact_id)  # ArpoError: a clear message
        preview = encode_preview(picture, max_side=THUMBNAIL_SIDE, max_bytes=THUMBNAIL_BYTES)
        data = base64.b64encode(preview.data).decode("ascii")
        images[artifact_id] = f"data:{preview.mime_type};base64,{data}"
    return images


def negotiates_apps(capabilities: Mapping[str, Any] | None) -> bool:
    """Whether ``capabilities`` (a client's, as sent) name the extension with the app MIME
    type: the test of :func:`mcp.server.apps.client_supports_apps`, on wire data."""
    extensions = (capabilities or {}).get("extensions") or {}
    settings = extensions.get(EXTENSION_ID) if isinstance(extensions, Mapping) else None
    mime_types = settings.get("mimeTypes") if isinstance(settings, Mapping) else None
    return isinstance(mime_types, list) and APP_MIME_TYPE in mime_types


class AppsNegotiation:
    """Server middleware: a client that did not negotiate MCP Apps gets the server as it is
    without them (see the module's docstring); with ``enabled`` false (``ARPO_APP_VIEW``),
    every client does."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "initialize":
            params = ctx.params or {}
            result = await call_next(ctx)
            if self.enabled and negotiates_apps(params.get("capabilities")):
                return _with_extension(result)
            return _without_extension(result)
        if ctx.request_id is None or (self.enabled and _supports_apps(ctx)):
            return await call_next(ctx)
        result = await call_next(ctx)
        if ctx.method == "tools/list":
            return _without_ui_tools(result)
        if ctx.method == "resources/list":
            return _without_ui_resources(result)
        if ctx.method == "server/discover":
            return _without_extension(result)
        return result


def _supports_apps(ctx: ServerRequestContext[Any, Any]) -> bool:
    try:
        return client_supports_apps(ctx)
    except AttributeError:  # a context without a session: no client to have negotiated
        return False


def _with_extension(result: HandlerResult) -> HandlerResult:
    """The SDK sieves ``extensions`` out of a handshake-era (2025) ``initialize`` answer;
    the Apps spec negotiates it there too (its example is a 2024-11-05 handshake)."""
    if not isinstance(result, dict):
        return result
    capabilities = dict(result.get("capabilities") or {})
    capabilities["extensions"] = {**(capabilities.get("extensions") or {}), EXTENSION_ID: {}}
    return {**result, "capabilities": capabilities}


def _without_extension(result: HandlerResult) -> HandlerResult:
    if not isinstance(result, dict):
        return result
    capabilities = dict(result.get("capabilities") or {})
    extensions = {k: v for k, v in (capabilities.get("extensions") or {}).items()}
    extensions.pop(EXTENSION_ID, None)
    if extensions:
        capabilities["extensions"] = extensions
    else:
        capabilities.pop("extensions", None)
    return {**result, "capabilities": capabilities}


def _without_ui_tools(result: HandlerResult) -> HandlerResult:
    if not isinstance(result, dict):
        return result
    tools = []
    for tool in result.get("tools") or []:
        if tool.get("name") in APP_ONLY_TOOLS:
            continue
        meta = {k: v for k, v in (tool.get("_meta") or {}).items() if k not in UI_META_KEYS}
        plain = {k: v for k, v in tool.items() if k != "_meta"}
        tools.append({**plain, "_meta": meta} if meta else plain)
    return {**result, "tools": tools}


def _without_ui_resources(result: HandlerResult) -> HandlerResult:
    if not isinstance(result, dict):
        return result
    listed = [r for r in result.get("resources") or [] if not str(r.get("uri")).startswith("ui://")]
    return {**result, "resources": listed}
