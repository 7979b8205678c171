"""arpo as plain functions: what the CLI, the MCP server and Python programmers call.

One facade over modules by concept:

- :mod:`~arpo.api.runs`: ``reverse_prompt``, ``resume`` (and the life of a run's record);
- :mod:`~arpo.api.batch`: ``invert_folder``, a run per image of a folder and a caption file
  beside each;
- :mod:`~arpo.api.history`: ``list_runs``, ``run_details``, ``delete_run``, ``collect_garbage``;
- :mod:`~arpo.api.rendering`: ``generate``, ``score``, ``caption``;
- :mod:`~arpo.api.remix`: ``decompose``, ``compose``, ``edit_prompt``, ``fuse``, ``vary``;
- :mod:`~arpo.api.results`: the pydantic result types every face dumps as they are;
- :mod:`~arpo.api.toolboxes`: which models a call uses (a run's travel with it);
- :mod:`~arpo.api.doctor`: ``doctor``, whether this machine is ready for a run.

Each function takes an optional :class:`~arpo.tools.toolbox.Toolbox` (models already loaded);
without one, a process-wide Toolbox built from settings is used, so models load once. Importing
this package imports no torch.
"""

from __future__ import annotations

from arpo.api.batch import invert_folder
from arpo.api.doctor import doctor
from arpo.api.history import collect_garbage, delete_run, list_runs, run_details
from arpo.api.remix import compose, decompose, edit_prompt, fuse, vary
from arpo.api.rendering import caption, generate, score, unknown_words
from arpo.api.results import (
    BatchImage,
    BatchSummary,
    Check,
    Collected,
    Deleted,
    Diagnosis,
    Remix,
    RemixSide,
    Result,
    RunBrief,
    RunDetails,
    RunList,
    RunStep,
    Variations,
)
from arpo.api.runs import ProgressCallback, resume, reverse_prompt
from arpo.api.toolboxes import get_toolbox, toolbox_for_run

__all__ = [
    "BatchImage",
    "BatchSummary",
    "Check",
    "Collected",
    "Deleted",
    "Diagnosis",
    "ProgressCallback",
    "Remix",
    "RemixSide",
    "Result",
    "RunBrief",
    "RunDetails",
    "RunList",
    "RunStep",
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
    "toolbox_for_run",
    "unknown_words",
    "vary",
]
