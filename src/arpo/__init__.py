"""arpo: find the prompt inside an image (Automatic Reverse Prompt Optimization).

Importing ``arpo`` is cheap: torch, diffusers and open_clip load only when a function that needs
them runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arpo.config import Settings
from arpo.errors import (
    ArpoError,
    InvalidImageError,
    InvalidOptionError,
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMUnavailableError,
    ModelNotAvailableError,
    RunBusyError,
    RunCancelled,
    RunNotFoundError,
)

if TYPE_CHECKING:
    from arpo.api import (
        BatchSummary,
        Diagnosis,
        Remix,
        Result,
        RunDetails,
        RunList,
        Variations,
        caption,
        collect_garbage,
        compose,
        decompose,
        delete_run,
        doctor,
        edit_prompt,
        fuse,
        generate,
        get_toolbox,
        invert_folder,
        list_runs,
        resume,
        reverse_prompt,
        run_details,
        score,
        vary,
    )
    from arpo.graph.context import RunOptions
    from arpo.remix import PromptParts
    from arpo.tools.toolbox import Toolbox

__version__ = "0.1.0"

_LAZY = {
    "Result": "arpo.api",
    "caption": "arpo.api",
    "generate": "arpo.api",
    "get_toolbox": "arpo.api",
    "resume": "arpo.api",
    "reverse_prompt": "arpo.api",
    "score": "arpo.api",
    "Remix": "arpo.api",
    "Variations": "arpo.api",
    "compose": "arpo.api",
    "decompose": "arpo.api",
    "edit_prompt": "arpo.api",
    "fuse": "arpo.api",
    "vary": "arpo.api",
    "RunDetails": "arpo.api",
    "RunList": "arpo.api",
    "list_runs": "arpo.api",
    "run_details": "arpo.api",
    "delete_run": "arpo.api",
    "collect_garbage": "arpo.api",
    "doctor": "arpo.api",
    "Diagnosis": "arpo.api",
    "invert_folder": "arpo.api",
    "BatchSummary": "arpo.api",
    "PromptParts": "arpo.remix",
    "RunOptions": "arpo.graph.context",
    "Toolbox": "arpo.tools.toolbox",
}

__all__ = [
    "ArpoError",
    "BatchSummary",
    "Diagnosis",
    "InvalidImageError",
    "InvalidOptionError",
    "LLMError",
    "LLMOutputError",
    "LLMRequestError",
    "LLMUnavailableError",
    "ModelNotAvailableError",
    "PromptParts",
    "Remix",
    "Result",
    "RunBusyError",
    "RunCancelled",
    "RunDetails",
    "RunList",
    "RunNotFoundError",
    "RunOptions",
    "Settings",
    "Toolbox",
    "Variations",
    "caption",
    "collect_garbage",
    "compose",
    "decompose",
    "delete_run",
    "doctor",
    "edit_prompt",
    "fuse",
    "generate",
    "get_toolbox",
    "invert_folder",
    "list_runs",
    "resume",
    "reverse_prompt",
    "run_details",
    "score",
    "vary",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'arpo' has no attribute {name!r}")
