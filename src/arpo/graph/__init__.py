"""The ARPO loop as a LangGraph state machine.

``build_graph(toolbox, checkpointer=None)`` compiles it; ``arpo.graph.app:graph`` is a
checkpointer-free instance over settings-built models for ``langgraph.json``.
"""

from arpo.graph.context import RunOptions
from arpo.graph.graph import build_graph, open_checkpointer
from arpo.graph.state import ArpoState

__all__ = ["ArpoState", "RunOptions", "build_graph", "open_checkpointer"]
