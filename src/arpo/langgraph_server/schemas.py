"""What the LangGraph Server graph takes and gives: its input form, its output, its options.

The TypedDicts come from ``typing_extensions``: on Python 3.11 pydantic builds no JSON schema
from ``typing.TypedDict``, and LangGraph Studio draws its input form from that schema.
"""

from __future__ import annotations

from dataclasses import field, fields, make_dataclass
from typing import Annotated, Any, NotRequired, get_type_hints

from pydantic import Field
from typing_extensions import TypedDict

from arpo.graph.context import RunOptions

IMAGE_HELP = (
    "The reference image: a file path inside the allowed roots (ARPO_ALLOWED_ROOTS, default "
    "ARPO_HOME/inbox), base64 image data or a data: URL, an artifact id, or an http(s) URL "
    "when ARPO_ALLOW_URLS=true."
)


class StudioInput(TypedDict):
    image: Annotated[str, Field(description=IMAGE_HELP)]
    prompt: NotRequired[
        Annotated[str | None, Field(description="Starting prompt (default: a caption).")]
    ]


class StudioOutput(TypedDict, total=False):
    run_id: str  # for `arpo runs show` and `arpo invert --resume`
    run_dir: str
    report: str  # the run's report.html
    best_prompt: str
    best_text_score: float  # CLIP similarity of the prompt to the image
    best_image_score: float | None  # CLIP similarity of its render to the image
    best_score: float | None  # the one the search maximised (``objective``)
    objective: str  # "text" or "image"
    initial_prompt: str
    iterations: int
    stop_reason: str | None
    strategy: str
    renders_spent: int
    reference_id: str  # artifact ids
    best_render_id: str
    links: dict[str, str]  # file:// URIs: report, best_render, reference, run_dir
    previews: dict[str, str]  # data: URLs: side_by_side (reference | best), best_render


class StudioState(StudioInput, StudioOutput, total=False):
    reference: str  # the stored image's artifact id, set by the first node


def _options_given() -> type:
    hints = get_type_hints(RunOptions)
    given = make_dataclass(
        "RunOptionsGiven",
        [
            (option.name, hints[option.name] | None, field(default=None))
            for option in fields(RunOptions)
        ],
        frozen=True,
    )
    given.__doc__ = (
        "Run options as a client gives them: every RunOptions field, None meaning not given, "
        "so the preset's and the model family's defaults apply as they do in the CLI."
    )
    given.__module__ = __name__
    return given


#: The graph's context schema: :class:`~arpo.graph.context.RunOptions`' fields, all optional.
RunOptionsGiven: Any = _options_given()


def given_options(context: Any) -> dict[str, Any]:
    """The options a client set (a ``RunOptionsGiven``, a dict, or None for none)."""
    if context is None:
        return {}
    values = (
        context
        if isinstance(context, dict)
        else {option.name: getattr(context, option.name) for option in fields(context)}
    )
    return {name: value for name, value in values.items() if value is not None}
