"""The ARPO loop as a LangGraph state machine.

``build_graph(toolbox, checkpointer=None)`` compiles it (LangGraph Server runs it through
:mod:`arpo.langgraph_server`, which takes an image rather than an artifact id). Importing the
package (or :mod:`arpo.graph.context` for the run options) does not import LangGraph: a
command says what it loads before that import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arpo.graph.context import RunOptions
    from arpo.graph.graph import build_graph, open_checkpointer
    from arpo.graph.state import ArpoState

__all__ = ["ArpoState", "RunOptions", "build_graph", "open_checkpointer"]
_HOMES = {
    "ArpoState": "arpo.graph.state",
    "RunOptions": "arpo.graph.context",
    "build_graph": "arpo.graph.graph",
    "open_checkpointer": "arpo.graph.graph",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'arpo.graph' has no attribute {name!r}")
